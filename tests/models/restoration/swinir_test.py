"""SwinIR: PaddleGAN names/shapes (manifest from PaddleGAN's code, tests/fixtures/restoration),
strict `.pdparams` loading with parity against PaddleGAN's own outputs (saved buffers loaded,
not recomputed), odd input sizes, window partition / reverse, the relative-position index and
shifted-window mask, SwinIRModel's training step and the PaddleGAN config."""
import copy
import json
import math
import os
import sys

import numpy as np
import pytest
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
from parity import rule_tensor, write_pdparams  # noqa: E402

from ppgan.models import build_model  # noqa: E402
from ppgan.models.generators import build_generator  # noqa: E402
from ppgan.models.generators.swinir import (SwinIR, relative_position_index, shifted_window_mask,  # noqa: E402
                                            window_partition, window_reverse)
from ppgan.solver import build_optimizer  # noqa: E402
from ppgan.utils.errors import CheckpointError, ConfigError, DatasetError  # noqa: E402
from ppgan.weights import load_paddle_state_dict  # noqa: E402
from ppgan.weights.pdparams import _torch_name  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FIX = os.path.join(ROOT, "tests", "fixtures", "restoration")
with open(os.path.join(FIX, "swinir_manifest.json")) as _f:
    MANIFESTS = json.load(_f)
REFERENCE = np.load(os.path.join(FIX, "swinir_reference.npz"), allow_pickle=False)
REF_CASES = json.loads(str(REFERENCE["meta_json"]))["cases"]
BUFFERS = ("relative_position_index", "attn_mask")


def paddle_state(case):
    """Rule weights for `case` ('<manifest>' or '<manifest>@own_buffers': PaddleGAN's computed
    buffers from the fixture instead of the rule's zeros / noise)."""
    name, _, variant = case.partition("@")
    state = {n: rule_tensor(n, s, d) for n, s, d in MANIFESTS[name]["manifest"]}
    if variant == "own_buffers":
        for n in state:
            if n.endswith(BUFFERS):
                state[n] = REFERENCE[f"{case}_buf__{n}"]
    return state


def build(case):
    return SwinIR(**MANIFESTS[case.partition("@")[0]]["kwargs"])


# ---- names and shapes ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(MANIFESTS))
def test_state_dict_names_and_shapes_are_paddlegans(case):
    """PaddleGAN's names one to one (the config's net built on the meta device); shapes equal,
    Linear weights transposed ([in, out] in Paddle)."""
    with torch.device("meta"):
        net = build(case)
    ours = net.state_dict()
    theirs = {n: (s, d) for n, s, d in MANIFESTS[case]["manifest"]}
    assert set(ours) == set(theirs)
    for name, (shape, dtype) in theirs.items():
        assert _torch_name(name, ours) == name
        module = net.get_submodule(name.rpartition(".")[0])
        want = shape[::-1] if isinstance(module, nn.Linear) and name.endswith("weight") else shape
        assert list(ours[name].shape) == want, name
        assert ours[name].dtype == (torch.int64 if dtype == "int64" else torch.float32), name


@pytest.fixture(scope="module")
def pdparams_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("swinir")
    return {case: write_pdparams(d / f"{case.replace('@', '_')}.pdparams", paddle_state(case)) for case in REF_CASES}


@pytest.mark.parametrize("case", sorted(REF_CASES))
def test_pdparams_strict_load_matches_paddlegan_outputs(case, pdparams_files):
    """Rule weights -> .pdparams -> our converter (strict) -> PaddleGAN's recorded outputs: odd
    sizes (padded to the window), the img_size resolution (the stored masks), 1 / 3 channels,
    1conv / 3conv, no qkv bias, a window shrunk to img_size, x2 / x3 / x4 upsamplers."""
    net = build(case).eval()
    report = load_paddle_state_dict(net, pdparams_files[case], strict=True)
    assert not report["missing"] and not report["unexpected"]
    assert report["transposed"] and all(n.endswith("weight") and (".attn." in n or ".mlp." in n)
                                        for n in report["transposed"])
    for i in range(REF_CASES[case]):
        x, want = REFERENCE[f"{case}_in{i}"], REFERENCE[f"{case}_out{i}"]
        with torch.no_grad():
            got = net(torch.from_numpy(x)).numpy()
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=5e-5, rtol=1e-4)


def test_saved_buffers_are_loaded_not_recomputed(pdparams_files):
    """The rule file holds an all-zero relative_position_index and noise as attn_mask; the net
    uses them (its outputs matched PaddleGAN's on that file above), and they differ from what a
    fresh net computes."""
    fresh = build("tiny_denoise")
    net = build("tiny_denoise")
    load_paddle_state_dict(net, pdparams_files["tiny_denoise"], strict=True)
    state, fresh_state = net.state_dict(), fresh.state_dict()
    index_names = [n for n in state if n.endswith("relative_position_index")]
    mask_names = [n for n in state if n.endswith("attn_mask")]
    assert len(index_names) == 3 and len(mask_names) == 1  # depths [2, 1]: one shifted block
    for n in index_names:
        assert state[n].dtype == torch.int64 and not state[n].any() and fresh_state[n].any()
    file = paddle_state("tiny_denoise")
    for n in mask_names:
        torch.testing.assert_close(state[n], torch.from_numpy(file[n]))
        assert not torch.equal(state[n], fresh_state[n])


def test_computed_buffers_equal_paddlegans():
    """What our nets compute at build time is what PaddleGAN saves (the fixture's own_buffers)."""
    case = "tiny_denoise@own_buffers"
    fresh = build(case).state_dict()
    names = [k[len(f"{case}_buf__"):] for k in REFERENCE.files if k.startswith(f"{case}_buf__")]
    assert len(names) == 4
    for n in names:
        np.testing.assert_array_equal(fresh[n].numpy(), REFERENCE[f"{case}_buf__{n}"])


@pytest.mark.parametrize("drop", ["layers.0.residual_group.blocks.1.attn_mask",
                                  "layers.1.residual_group.blocks.0.attn.relative_position_index"])
def test_files_without_the_buffers_are_refused(drop, tmp_path):
    state = paddle_state("tiny_denoise")
    del state[drop]
    with pytest.raises(CheckpointError, match=drop.replace(".", r"\.")):
        load_paddle_state_dict(build("tiny_denoise"), write_pdparams(tmp_path / "w.pdparams", state), strict=True)


def test_a_window_size_that_does_not_fit_the_file_is_refused(tmp_path):
    path = write_pdparams(tmp_path / "w.pdparams", paddle_state("tiny_denoise"))
    kwargs = dict(MANIFESTS["tiny_denoise"]["kwargs"], window_size=2)
    with pytest.raises(CheckpointError, match="shape mismatches: .*relative_position"):
        load_paddle_state_dict(SwinIR(**kwargs), path, strict=True)


# ---- invariants ---------------------------------------------------------------------------------
@pytest.mark.parametrize("b,h,w,c,ws", [(1, 8, 8, 3, 4), (2, 12, 6, 5, 3), (3, 7, 14, 1, 7), (1, 5, 5, 2, 5)])
def test_window_partition_reverse_identity(b, h, w, c, ws):
    x = torch.randn(b, h, w, c)
    windows = window_partition(x, ws)
    assert windows.shape == (b * (h // ws) * (w // ws), ws, ws, c)
    # window k of image 0 is the k-th tile in row-major order
    torch.testing.assert_close(windows[1 if w // ws > 1 else 0],
                               x[0, :ws, ws:2 * ws] if w // ws > 1 else x[0, :ws, :ws], rtol=0, atol=0)
    torch.testing.assert_close(window_reverse(windows, ws, h, w), x, rtol=0, atol=0)


@pytest.mark.parametrize("wh,ww", [(4, 4), (8, 8), (3, 5)])
def test_relative_position_index_structure(wh, ww):
    idx = relative_position_index((wh, ww))
    n, size = wh * ww, (2 * wh - 1) * (2 * ww - 1)
    assert idx.shape == (n, n) and idx.dtype == torch.int64
    center = (wh - 1) * (2 * ww - 1) + ww - 1  # offset (0, 0)
    assert (idx.diagonal() == center).all()
    assert (idx + idx.T == 2 * center).all()  # offset (a, b) and (-a, -b)
    assert idx.min() == 0 and idx.max() == size - 1 and len(idx.unique()) == size


@pytest.mark.parametrize("h,w,ws", [(8, 8, 4), (12, 8, 4), (16, 24, 8)])
def test_shifted_window_mask(h, w, ws):
    shift = ws // 2
    mask = shifted_window_mask(h, w, ws, shift)
    nw = (h // ws) * (w // ws)
    assert mask.shape == (nw, ws * ws, ws * ws)
    assert set(mask.unique().tolist()) <= {0.0, -100.0} and (mask.diagonal(dim1=1, dim2=2) == 0).all()
    torch.testing.assert_close(mask, mask.transpose(1, 2))
    assert not mask[0].any()  # interior windows see no wrapped pixels
    assert mask[-1].any()  # the bottom-right window mixes four regions
    # the pixels a window may attend to are those from the same region of the unshifted map
    region = torch.zeros(h, w)
    region[h - ws:h - shift] += 1
    region[h - shift:] += 2
    region[:, w - ws:w - shift] += 3
    region[:, w - shift:] += 6
    win = window_partition(region.view(1, h, w, 1), ws).view(nw, -1)
    torch.testing.assert_close(mask == 0, win[:, :, None] == win[:, None, :])


def _random_net(**kwargs):
    torch.manual_seed(0)
    net = SwinIR(**kwargs).eval()
    for p in net.parameters():
        p.data.add_(0.02 * torch.randn_like(p))
    return net


TINY = dict(img_size=8, window_size=4, depths=[2], embed_dim=8, num_heads=[2])


@pytest.mark.parametrize("kwargs,hw", [
    (dict(TINY, upscale=1), (9, 13)),
    (dict(TINY, upscale=1), (2, 3)),  # too small to reflect
    (dict(TINY, upscale=2, upsampler="pixelshuffle"), (5, 7)),
    (dict(TINY, upscale=4, depths=[1], num_heads=[1], upsampler="nearest+conv"), (3, 6)),
    (dict(TINY, upscale=1, img_size=4, window_size=6), (7, 5)),  # window shrinks to 4
])
def test_any_size_input(kwargs, hw):
    """Odd sizes: the output is upscale x the input size, and it is the crop of the output on the
    padded image."""
    net = _random_net(**kwargs)
    x = torch.rand(1, 3, *hw)
    s = kwargs["upscale"]
    with torch.no_grad():
        out = net(x)
        full = net(net.check_image_size(x))
    assert out.shape == (1, 3, s * hw[0], s * hw[1])
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, full[..., : s * hw[0], : s * hw[1]])


def test_denoiser_with_zero_last_conv_is_the_identity():
    """Denoising variant: x + conv_last(...) (mean subtracted and added back)."""
    net = _random_net(upscale=1, img_size=8, window_size=4, depths=[1, 1], embed_dim=8, num_heads=[2, 2])
    nn.init.zeros_(net.conv_last.weight)
    nn.init.zeros_(net.conv_last.bias)
    x = torch.rand(2, 3, 8, 12)
    with torch.no_grad():
        torch.testing.assert_close(net(x), x)


@pytest.mark.parametrize("kwargs,match", [
    (dict(depths=[2, 2], num_heads=[2]), "as many num_heads as depths"),
    (dict(embed_dim=10, num_heads=[3]), "divisible"),
    (dict(upsampler="bicubic"), "upsampler must be one of"),
    (dict(upsampler="nearest+conv", upscale=2), "upscale 4 only"),
    (dict(upsampler="pixelshuffle", upscale=5), "upscale 5 is not supported"),
    (dict(resi_connection="2conv"), "resi_connection"),
    (dict(window_size=0), "window_size"),
    (dict(patch_size=2), "patch_size must be 1"),
])
def test_bad_constructor_arguments_are_config_errors(kwargs, match):
    cfg = dict(name="SwinIR", img_size=8, embed_dim=12, depths=[1], num_heads=[2], window_size=4)
    cfg.update(kwargs)
    with pytest.raises(ConfigError, match=match):
        build_generator(cfg)


# ---- model ----------------------------------------------------------------------------------------
MODEL = {"name": "SwinIRModel", "char_criterion": {"name": "CharbonnierLoss", "eps": 1e-9, "reduction": "mean"},
         "generator": {"name": "SwinIR", "upscale": 1, "img_size": 8, "window_size": 4, "depths": [2],
                       "embed_dim": 8, "num_heads": [2], "mlp_ratio": 2}}


@pytest.mark.parametrize("as_tuple", [False, True])
def test_model_train_iter_charbonnier_moves_every_parameter(as_tuple):
    torch.manual_seed(0)
    model = build_model(copy.deepcopy(MODEL))
    net = model.nets["generator"]
    g = torch.Generator().manual_seed(1)
    gt = torch.rand(2, 3, 8, 8, generator=g)
    lq = gt + 15 / 255 * torch.randn(2, 3, 8, 8, generator=g)
    model.setup_input((gt, lq, ["a", "b"]) if as_tuple else {"gt": gt, "lq": lq})
    opt = build_optimizer({"name": "Adam", "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
                          list(net.parameters()), 2e-4)
    opt.ppgan_net_names = ("generator",)
    before = {k: p.detach().clone() for k, p in net.named_parameters()}
    buffers = {k: b.clone() for k, b in net.named_buffers()}
    losses = model.train_iter({"optim": opt})
    assert set(losses) == {"loss"}
    loss = losses["loss"]
    assert loss.ndim == 0 and not loss.requires_grad and math.isfinite(loss)
    torch.testing.assert_close(loss, torch.sqrt((model.output - gt) ** 2 + 1e-9).mean())
    assert {k for k, p in net.named_parameters() if not torch.equal(before[k], p.detach())} == set(before)
    assert all(torch.equal(buffers[k], b) for k, b in net.named_buffers())  # index / masks stay
    model.test_iter({})
    assert model.output.shape == gt.shape


def test_model_without_criterion_cannot_train():
    cfg = copy.deepcopy(MODEL)
    del cfg["char_criterion"]
    model = build_model(cfg)
    model.setup_input({"gt": torch.rand(1, 3, 8, 8), "lq": torch.rand(1, 3, 8, 8)})
    with pytest.raises(ConfigError, match="char_criterion"):
        model.train_iter({})


def test_paddlegan_config_loads_and_builds():
    from ppgan.datasets import build_dataset
    from ppgan.utils.config import load_config

    cfg = load_config(os.path.join(ROOT, "configs", "swinir_denoising.yaml"))
    kwargs = {k: v for k, v in cfg["model"]["generator"].items() if k != "name"}
    assert kwargs == MANIFESTS["swinir_denoising"]["kwargs"]
    with torch.device("meta"):
        model = build_model(cfg["model"])
    assert list(model.nets) == ["generator"] and type(model).__name__ == "SwinIRModel"
    crit = model.pixel_criterion
    assert type(crit).__name__ == "CharbonnierLoss" and crit.eps == 1e-9 and crit.reduction == "mean"
    assert set(cfg["optimizer"]["net_names"]) <= set(model.nets)
    for split, folder in (("train", "trainH"), ("test", "CBSD68")):
        with pytest.raises(DatasetError, match=f"dataset folder not found: data/trainsets/{folder}"):
            build_dataset(cfg["dataset"][split])


def test_masks_come_from_the_weights_at_img_size_and_are_computed_once_per_pass_otherwise(monkeypatch):
    from ppgan.models.generators import swinir

    net = _random_net(upscale=1, img_size=8, window_size=4, depths=[2, 2, 2], embed_dim=8, num_heads=[2, 2, 2])
    calls = []
    real = swinir.shifted_window_mask
    monkeypatch.setattr(swinir, "shifted_window_mask", lambda *a, **k: calls.append(a[:2]) or real(*a, **k))
    with torch.no_grad():
        net(torch.rand(1, 3, 8, 8))
        assert calls == []  # three shifted blocks, all on the loaded attn_mask
        net(torch.rand(1, 3, 9, 14))
        assert calls == [(12, 16)]  # padded size; shared by the three shifted blocks


def test_published_checkpoint_layout_loads_with_key_generator(tmp_path):
    """PaddleGAN's SwinIR_Denoising.pdparams nests the weights under 'generator'."""
    path = write_pdparams(tmp_path / "nested.pdparams", {"generator": paddle_state("tiny_denoise")})
    net = build("tiny_denoise").eval()
    load_paddle_state_dict(net, path, strict=True, key="generator")
    x, want = REFERENCE["tiny_denoise_in1"], REFERENCE["tiny_denoise_out1"]
    with torch.no_grad():
        np.testing.assert_allclose(net(torch.from_numpy(x)).numpy(), want, atol=5e-5, rtol=1e-4)

"""NAFNet: PaddleGAN names/shapes (manifest from PaddleGAN's code, tests/fixtures/restoration),
strict `.pdparams` loading with parity against PaddleGAN's own outputs, odd input sizes, the
SimpleGate / SCA / zero-init invariants, NAFNetModel's training step and the PaddleGAN config."""
import copy
import json
import math
import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
from parity import rule_tensor, write_pdparams  # noqa: E402

from ppgan.models import build_model  # noqa: E402
from ppgan.models.generators import build_generator  # noqa: E402
from ppgan.models.generators.nafnet import LocalAvgPool2d, NAFBlock, NAFNet, NAFNetLocal, SimpleGate  # noqa: E402
from ppgan.solver import build_optimizer  # noqa: E402
from ppgan.utils.errors import CheckpointError, ConfigError, DatasetError  # noqa: E402
from ppgan.weights import load_paddle_state_dict  # noqa: E402
from ppgan.weights.pdparams import _torch_name  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FIX = os.path.join(ROOT, "tests", "fixtures", "restoration")
with open(os.path.join(FIX, "nafnet_manifest.json")) as _f:
    MANIFESTS = json.load(_f)
REFERENCE = np.load(os.path.join(FIX, "nafnet_reference.npz"), allow_pickle=False)
REF_CASES = json.loads(str(REFERENCE["meta_json"]))["cases"]


def paddle_state(case):
    return {n: rule_tensor(n, s, d) for n, s, d in MANIFESTS[case.partition("@")[0]]["manifest"]}


def build(case):
    """'<manifest>' -> NAFNet; '<manifest>@local<S>' -> NAFNetLocal(train_size=(1, C, S, S))."""
    name, _, variant = case.partition("@")
    kwargs = MANIFESTS[name]["kwargs"]
    if variant:
        size = int(variant[len("local"):])
        return NAFNetLocal(train_size=(1, kwargs["img_channel"], size, size), **kwargs)
    return NAFNet(**kwargs)


# ---- names and shapes ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(MANIFESTS))
def test_state_dict_names_and_shapes_are_paddlegans(case):
    """Every name / shape of PaddleGAN's state dict (the config's 116M-parameter net built on the
    meta device) is ours, one to one."""
    with torch.device("meta"):
        net = NAFNet(**MANIFESTS[case]["kwargs"])
    ours = {k: list(v.shape) for k, v in net.state_dict().items()}
    theirs = {n: s for n, s, _ in MANIFESTS[case]["manifest"]}
    assert ours == theirs
    assert all(_torch_name(n, ours) == n for n in theirs)


@pytest.fixture(scope="module")
def pdparams_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("nafnet")
    return {case: write_pdparams(d / f"{case.replace('@', '_')}.pdparams", paddle_state(case)) for case in REF_CASES}


@pytest.mark.parametrize("case", sorted(REF_CASES))
def test_pdparams_strict_load_matches_paddlegan_outputs(case, pdparams_files):
    """Rule weights -> .pdparams -> our converter (strict) -> PaddleGAN's recorded outputs, on odd
    sizes (zero-padded to 2**levels inside the net and cropped back) and batch 2; NAFNetLocal
    (same weights) on images larger and smaller than its training size."""
    net = build(case).eval()
    report = load_paddle_state_dict(net, pdparams_files[case], strict=True)
    assert not report["missing"] and not report["unexpected"] and not report["transposed"]
    for i in range(REF_CASES[case]):
        x, want = REFERENCE[f"{case}_in{i}"], REFERENCE[f"{case}_out{i}"]
        with torch.no_grad():
            got = net(torch.from_numpy(x)).numpy()
        assert got.shape == x.shape == want.shape
        np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("bad", ["drop", "extra", "shape"])
def test_pdparams_that_do_not_fit_are_refused_naming_the_key(bad, tmp_path):
    state = paddle_state("small")
    if bad == "drop":
        del state["middle_blks.0.sca.1.weight"]
    elif bad == "extra":
        state["middle_blks.0.sca.2.weight"] = np.zeros((1,), np.float32)
    else:
        state["ups.1.0.weight"] = np.zeros((16, 16, 1, 1), np.float32)
    path = write_pdparams(tmp_path / "bad.pdparams", state)
    net = NAFNet(**MANIFESTS["small"]["kwargs"])
    with pytest.raises(CheckpointError, match="ups.1.0.weight" if bad == "shape" else "middle_blks.0.sca"):
        load_paddle_state_dict(net, path, strict=True)


# ---- invariants ---------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [2, 6, 16])
def test_simple_gate_is_the_product_of_the_channel_halves(channels):
    x = torch.randn(2, channels, 5, 3)
    out = SimpleGate()(x)
    assert out.shape == (2, channels // 2, 5, 3)
    torch.testing.assert_close(out, x[:, : channels // 2] * x[:, channels // 2:], rtol=0, atol=0)


@pytest.mark.parametrize("c", [4, 8])
def test_block_starts_as_identity_and_sca_scales_each_channel(c):
    """beta = gamma = 0 at init (PaddleGAN's Constant(0)): a fresh block is the identity.
    SCA multiplies each channel by one number computed from the channel means."""
    torch.manual_seed(c)
    block = NAFBlock(c)
    x = torch.randn(2, c, 7, 5)
    torch.testing.assert_close(block(x), x, rtol=0, atol=0)
    y = torch.randn(2, c, 7, 5)  # sca acts on dw // 2 = c channels
    att = block.sca(y)
    assert att.shape == (2, c, 1, 1)
    want = block.sca[1](y.mean((2, 3), keepdim=True))
    torch.testing.assert_close(att, want)


def test_no_activation_function_anywhere():
    net = NAFNet(**MANIFESTS["small"]["kwargs"])
    kinds = {type(m).__name__ for m in net.modules()}
    assert not kinds & {"ReLU", "GELU", "LeakyReLU", "PReLU", "Sigmoid", "Tanh", "SiLU", "ReLU6"}, kinds


@pytest.mark.parametrize("kwargs,hw", [
    (dict(width=4, enc_blk_nums=[1, 1, 1], middle_blk_num=1, dec_blk_nums=[1, 1, 1]), (9, 17)),  # pads to 8s
    (dict(width=4, enc_blk_nums=[1], middle_blk_num=0, dec_blk_nums=[0]), (1, 3)),
    (dict(img_channel=1, width=2, enc_blk_nums=[], middle_blk_num=1, dec_blk_nums=[]), (5, 4)),
    (dict(width=4, enc_blk_nums=[0, 2], middle_blk_num=1, dec_blk_nums=[2, 0]), (15, 16)),
])
def test_any_size_in_same_size_out_and_padding_is_zeros(kwargs, hw):
    """Odd sizes come back at their size; the result equals running on the zero-padded image
    (PaddleGAN's check_image_size) and cropping; zero-init blocks make a fresh net the identity
    plus the intro/ending convs' residual."""
    torch.manual_seed(0)
    net = NAFNet(**kwargs).eval()
    for p in net.parameters():  # non-zero beta / gamma so every block acts
        p.data.add_(0.05 * torch.randn_like(p))
    c = kwargs.get("img_channel", 3)
    x = torch.rand(2, c, *hw)
    with torch.no_grad():
        out = net(x)
        m = net.padder_size
        ph, pw = (-hw[0]) % m, (-hw[1]) % m
        padded = torch.nn.functional.pad(x, (0, pw, 0, ph))
        full = net(padded)
    assert out.shape == x.shape and full.shape == padded.shape
    torch.testing.assert_close(out, full[..., : hw[0], : hw[1]])


@pytest.mark.parametrize("kwargs", [
    dict(enc_blk_nums=[1, 1], dec_blk_nums=[1]),
    dict(width=0),
    dict(enc_blk_nums=[-1], dec_blk_nums=[1]),
    dict(middle_blk_num=-2),
])
def test_bad_constructor_arguments_are_config_errors(kwargs):
    with pytest.raises(ConfigError, match="NAFNet"):
        build_generator(dict(name="NAFNet", **kwargs))


# ---- model ----------------------------------------------------------------------------------------
MODEL = {"name": "NAFNetModel", "psnr_criterion": {"name": "PSNRLoss"},
         "generator": {"name": "NAFNet", "img_channel": 3, "width": 8, "enc_blk_nums": [1, 1],
                       "middle_blk_num": 1, "dec_blk_nums": [1, 1]}}


def adamw(model, lr=1e-3):
    opt = build_optimizer({"name": "AdamW", "beta1": 0.9, "beta2": 0.9, "epsilon": 1e-8, "weight_decay": 0.0},
                          list(model.nets["generator"].parameters()), lr)
    opt.ppgan_net_names = ("generator",)
    return {"optim": opt}


@pytest.mark.parametrize("as_tuple", [False, True])
def test_model_train_iter_psnr_loss_moves_every_parameter(as_tuple):
    torch.manual_seed(0)
    model = build_model(copy.deepcopy(MODEL))
    g = torch.Generator().manual_seed(1)
    gt = torch.rand(2, 3, 16, 16, generator=g)
    lq = (gt + 0.1 * torch.randn(2, 3, 16, 16, generator=g)).clamp(0, 1)
    model.setup_input((gt, lq, ["a", "b"]) if as_tuple else {"gt": gt, "lq": lq, "lq_path": ["a", "b"]})
    net = model.nets["generator"]
    before = {k: p.detach().clone() for k, p in net.named_parameters()}
    losses = model.train_iter(adamw(model))
    assert set(losses) == {"loss"}
    loss = losses["loss"]
    assert torch.is_tensor(loss) and loss.ndim == 0 and not loss.requires_grad and math.isfinite(loss)
    mse = ((model.output - gt) ** 2).mean((1, 2, 3))  # the output before the step
    torch.testing.assert_close(loss, (10 / math.log(10)) * torch.log(mse + 1e-8).mean())  # minus PSNR
    moved = {k for k, p in net.named_parameters() if not torch.equal(before[k], p.detach())}
    # beta = gamma = 0: the first step reaches beta / gamma and the convs outside the blocks only
    in_blocks = {k for k in before if "blks." in k or "coders." in k}
    assert moved == {k for k in before if k not in in_blocks or k.endswith(("beta", "gamma"))}
    opts = adamw(model)
    model.train_iter(opts)
    model.train_iter(opts)
    moved = {k for k, p in net.named_parameters() if not torch.equal(before[k], p.detach())}
    assert moved == set(before)
    model.test_iter({})
    assert model.output.shape == gt.shape and set(model.visual_items) == {"lq", "output", "gt"}


def test_model_without_criterion_cannot_train():
    cfg = copy.deepcopy(MODEL)
    del cfg["psnr_criterion"]
    model = build_model(cfg)
    model.setup_input({"gt": torch.rand(1, 3, 8, 8), "lq": torch.rand(1, 3, 8, 8)})
    with pytest.raises(ConfigError, match="psnr_criterion"):
        model.train_iter(adamw(model))


def test_paddlegan_config_loads_and_builds():
    from ppgan.datasets import build_dataset
    from ppgan.utils.config import load_config

    cfg = load_config(os.path.join(ROOT, "configs", "nafnet_denoising.yaml"))
    assert cfg["model"]["generator"] == {"name": "NAFNet", "img_channel": 3, "width": 64,
                                         "enc_blk_nums": [2, 2, 4, 8], "middle_blk_num": 12,
                                         "dec_blk_nums": [2, 2, 2, 2]}
    with torch.device("meta"):  # 116M parameters: names and types only
        model = build_model(cfg["model"])
    assert list(model.nets) == ["generator"] and type(model).__name__ == "NAFNetModel"
    assert type(model.pixel_criterion).__name__ == "PSNRLoss"
    assert set(cfg["optimizer"]["net_names"]) <= set(model.nets)
    assert float(cfg["optimizer"]["epsilon"]) == 1e-8
    for split in ("train", "test"):
        with pytest.raises(DatasetError, match="dataset folder not found: data/SIDD"):
            build_dataset(cfg["dataset"][split])


def test_published_checkpoint_layout_loads_with_key_generator(tmp_path):
    """PaddleGAN's NAFNet_Denoising.pdparams nests the weights under 'generator'."""
    path = write_pdparams(tmp_path / "nested.pdparams", {"generator": paddle_state("small")})
    net = NAFNet(**MANIFESTS["small"]["kwargs"]).eval()
    load_paddle_state_dict(net, path, strict=True, key="generator")
    x, want = REFERENCE["small_in0"], REFERENCE["small_out0"]
    with torch.no_grad():
        np.testing.assert_allclose(net(torch.from_numpy(x)).numpy(), want, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("kernel,hw", [((4, 4), (4, 4)), ((3, 5), (7, 9)), ((9, 2), (6, 8)), ((1, 1), (3, 4))])
def test_local_pool_is_the_box_mean(kernel, hw):
    """Each output pixel of the valid region is the mean of its box; the border repeats the
    nearest valid value; a box covering the map gives the global mean."""
    x = torch.randn(2, 3, *hw, dtype=torch.float64)
    out = LocalAvgPool2d(kernel)(x)
    if kernel[0] >= hw[0] and kernel[1] >= hw[1]:
        torch.testing.assert_close(out, x.mean((2, 3), keepdim=True))
        return
    k1, k2 = min(kernel[0], hw[0]), min(kernel[1], hw[1])
    valid = torch.nn.functional.avg_pool2d(x, (k1, k2), stride=1)
    assert out.shape == x.shape
    top, left = (hw[0] - valid.shape[-2]) // 2, (hw[1] - valid.shape[-1]) // 2
    torch.testing.assert_close(out[..., top:top + valid.shape[-2], left:left + valid.shape[-1]], valid)
    torch.testing.assert_close(out[..., 0, 0], valid[..., 0, 0])
    torch.testing.assert_close(out[..., -1, -1], valid[..., -1, -1])


def test_nafnet_local_kernels_follow_the_training_size():
    """1.5x the training patch at each block's resolution; the config's net: 384 at full size."""
    with torch.device("meta"):
        net = NAFNetLocal(**MANIFESTS["nafnet_denoising"]["kwargs"])
    assert net.encoders[0][0].sca[0].kernel_size == (384, 384)
    assert net.encoders[3][0].sca[0].kernel_size == (48, 48)
    assert net.middle_blks[0].sca[0].kernel_size == (24, 24)
    assert net.decoders[0][0].sca[0].kernel_size == (48, 48) and net.decoders[3][1].sca[0].kernel_size == (384, 384)
    small = NAFNetLocal(**MANIFESTS["small"]["kwargs"], train_size=(1, 3, 10, 14))  # padded to 12 x 16
    assert small.encoders[0][0].sca[0].kernel_size == (12 * 15 // 10, 16 * 21 // 14)
    for bad in (dict(fast_imp=True), dict(train_size=(1, 3, 0, 8)), dict(train_size=(3, 8))):
        with pytest.raises(ConfigError, match="NAFNetLocal"):
            NAFNetLocal(**MANIFESTS["small"]["kwargs"], **bad)

"""BasicVSR++: PaddleGAN's names / shapes (manifests recorded from PaddleGAN's own code), strict
`.pdparams` loading through our converter with parity against PaddleGAN's outputs (odd sizes,
mirror-extended clips, same-size input), the flow-guided deformable alignment's maths, input
checks, PaddleGAN's two configs built and trained one step on their dataset layouts."""
import os
import sys

import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir))
from vsr_fixtures import VSRFixture, config_train_batch, shapes, tiny_config, train_one_step  # noqa: E402

from ppgan.models import build_model  # noqa: E402
from ppgan.models.generators import BasicVSRPlusPlus, build_generator  # noqa: E402
from ppgan.models.generators.basicvsr_plus_plus import SecondOrderDeformableAlignment  # noqa: E402
from ppgan.utils.config import load_config  # noqa: E402
from ppgan.utils.errors import CheckpointError, ConfigError  # noqa: E402
from ppgan.weights import load_paddle_state_dict  # noqa: E402
from vsr_fixtures import ROOT, write_pdparams  # noqa: E402

FIXTURES = ["basicvsrpp", "basicvsrpp_small_mirror", "basicvsrpp_hr_in"]


# ---- names, shapes, parity --------------------------------------------------------------------------
@pytest.mark.parametrize("name", FIXTURES)
def test_state_dict_is_paddlegans(name):
    fx = VSRFixture(name)
    ours = shapes(BasicVSRPlusPlus(**fx.kwargs))
    theirs = fx.shapes()
    assert list(ours) == list(theirs) and ours == theirs


def test_default_manifest_tricky_parts():
    """Read off PaddleGAN's code: 16 deformable groups (27 * 16 offset/mask channels from
    3C + 4 inputs), the DCN over [feat_n1, feat_n2], grid-propagation widths 2C..5C, SPyNet's
    buffers stored, and the fixed 64-wide upsampling tail."""
    s = VSRFixture("basicvsrpp").shapes()
    assert len(s) == 274
    assert s["deform_align_backward_1.conv_offset.0.weight"] == [64, 196, 3, 3]
    assert s["deform_align_forward_2.conv_offset.6.weight"] == [432, 64, 3, 3]
    assert s["deform_align_backward_2.dcn.weight"] == [64, 128, 3, 3] and s["deform_align_backward_2.dcn.bias"] == [64]
    assert [s[f"backbone_{b}.covn1.weight"][1] for b in ("backward_1", "forward_1", "backward_2", "forward_2")] == \
        [128, 192, 256, 320]
    assert s["backbone_forward_2.ResidualBlocks.block6.conv2.weight"] == [64, 64, 3, 3]
    assert s["feat_extract.ResidualBlocks.block4.conv1.bias"] == [64]
    assert s["reconstruction.covn1.weight"] == [64, 320, 3, 3]
    assert s["upsample2.upsample_conv.weight"] == [256, 64, 3, 3] and s["conv_last.weight"] == [3, 64, 3, 3]
    assert s["spynet.mean"] == [1, 3, 1, 1] and s["spynet.basic_module5.conv1.weight"] == [32, 8, 7, 7]
    hr = VSRFixture("basicvsrpp_hr_in").shapes()  # two stride-2 convs in front of the residual stack
    assert hr["feat_extract.0.weight"] == [16, 3, 3, 3] and hr["feat_extract.2.weight"] == [16, 16, 3, 3]
    assert hr["feat_extract.4.covn1.weight"] == [16, 16, 3, 3]


@pytest.mark.parametrize("name", FIXTURES)  # basicvsrpp: the configs' net (~5 s)
def test_pdparams_strict_load_matches_paddlegan(name, tmp_path):
    fx = VSRFixture(name)
    net = BasicVSRPlusPlus(**fx.kwargs).eval()
    report = fx.load_into(net, tmp_path)
    assert not report["missing"] and not report["unexpected"] and not report["transposed"]
    with torch.no_grad():
        fx.assert_matches(net(*fx.inputs))


@pytest.mark.parametrize("drop", ["spynet.std", "deform_align_forward_1.dcn.weight", "backbone_backward_2.covn1.bias"])
def test_pdparams_missing_a_tensor_are_refused(drop, tmp_path):
    fx = VSRFixture("basicvsrpp_small_mirror")
    state = fx.state()
    del state[drop]
    with pytest.raises(CheckpointError, match=drop.replace(".", r"\.")):
        load_paddle_state_dict(BasicVSRPlusPlus(**fx.kwargs), write_pdparams(tmp_path / "w.pdparams", state))


def test_spynet_buffers_are_loaded_not_kept(tmp_path):
    fx = VSRFixture("basicvsrpp_small_mirror")
    net = BasicVSRPlusPlus(**fx.kwargs)
    fx.load_into(net, tmp_path)
    assert not torch.allclose(net.spynet.mean, torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1))
    assert torch.equal(net.spynet.mean, torch.from_numpy(fx.state()["spynet.mean"]))


# ---- maths ---------------------------------------------------------------------------------------------------
def _alignment(dg=4, c=8):
    torch.manual_seed(0)
    return SecondOrderDeformableAlignment(2 * c, c, 3, padding=1, deformable_groups=dg, impl="torch").eval()


@pytest.mark.parametrize("dx,dy", [(0, 0), (2, 0), (0, -1), (1, 3)])
def test_alignment_offsets_are_the_flows(dx, dy):
    """conv_offset zero (its init): offsets = the flows (x, y swapped into DCN's (dy, dx)), mask 0.5.
    An integer translation flow then makes the DCN an ordinary conv of the translated features."""
    m, c = _alignment(), 8
    x = torch.rand(1, 2 * c, 11, 13)
    flow_1 = torch.tensor([float(dx), float(dy)]).view(1, 2, 1, 1).expand(1, 2, 11, 13)
    flow_2 = torch.zeros(1, 2, 11, 13)  # second half of the groups: not moved
    with torch.no_grad():
        out = m(x, torch.rand(1, 3 * c, 11, 13), flow_1, flow_2)
        shifted = torch.zeros_like(x)
        # feature at (i, j) <- x[i + dy, j + dx] for the feat_n1 half, zero outside
        src = x[:, :c]
        h, w = src.shape[-2:]
        ys, xs = slice(max(0, -dy), min(h, h - dy)), slice(max(0, -dx), min(w, w - dx))
        ys2, xs2 = slice(max(0, dy), min(h, h + dy)), slice(max(0, dx), min(w, w + dx))
        shifted[:, :c, ys, xs] = src[:, :, ys2, xs2]
        shifted[:, c:] = x[:, c:]
        # zero padding of the translated map = DCN's out-of-image zeros, except where a tap of the
        # padded conv reads inside the image: compare away from the borders
        want = 0.5 * F.conv2d(shifted, m.dcn.weight, None, padding=1) + m.dcn.bias.view(1, -1, 1, 1)
    b = 1 + max(abs(dx), abs(dy))
    torch.testing.assert_close(out[..., b:-b, b:-b], want[..., b:-b, b:-b], atol=1e-5, rtol=1e-5)


def test_odd_deformable_groups_refused():
    with pytest.raises(ConfigError, match="even"):
        SecondOrderDeformableAlignment(16, 8, deformable_groups=3)


def test_mirror_extended_clip_reuses_backward_flows(monkeypatch):
    net = BasicVSRPlusPlus(mid_channels=8, num_blocks=1).eval()
    calls = []
    real = net.spynet.forward
    monkeypatch.setattr(net.spynet, "forward", lambda a, b: calls.append(a.shape[0]) or real(a, b))
    clip = torch.rand(1, 2, 3, 64, 64)
    mirrored = torch.cat([clip, clip.flip(1)], dim=1)
    with torch.no_grad():
        fwd, bwd = net.compute_flow(mirrored)
        assert calls == [3] and torch.equal(fwd, bwd.flip(1))
        calls.clear()
        fwd, bwd = net.compute_flow(torch.cat([clip, clip], dim=1))  # not mirrored: both directions
        assert calls == [3, 3] and not torch.equal(fwd, bwd.flip(1))


@pytest.mark.parametrize("t,hw", [(1, (64, 64)), (2, (65, 71)), (3, (67, 64))])
def test_other_sizes_and_arguments(t, hw):
    torch.manual_seed(0)
    net = BasicVSRPlusPlus(mid_channels=8, num_blocks=1, dcn_impl="torch").eval()
    x = torch.rand(1, t, 3, *hw)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (1, t, 3, 4 * hw[0], 4 * hw[1]) and torch.isfinite(y).all()


def test_model_init_then_backward_reaches_every_parameter():
    torch.manual_seed(0)
    net = build_model({"name": "BasicVSRModel", "generator": {"name": "BasicVSRPlusPlus", "mid_channels": 8,
                                                              "num_blocks": 1}}).nets["generator"]
    net(torch.rand(1, 3, 3, 64, 64)).square().mean().backward()
    no_grad = {k for k, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0}
    assert no_grad == set()


@pytest.mark.parametrize("shape,kwargs,match", [
    ((1, 3, 64, 64), {}, r"\[N, T, 3, H, W\]"),
    ((1, 2, 1, 64, 64), {}, r"\[N, T, 3, H, W\]"),
    ((1, 2, 3, 63, 80), {}, "at least 64"),
    ((1, 2, 3, 80, 40), {}, "at least 64"),
    ((1, 2, 3, 256, 258), {"is_low_res_input": False}, "multiples of 4"),
    ((1, 2, 3, 128, 256), {"is_low_res_input": False}, "at least 256"),
])
def test_bad_inputs_are_refused(shape, kwargs, match):
    net = BasicVSRPlusPlus(mid_channels=8, num_blocks=1, **kwargs)
    with pytest.raises(ConfigError, match=match):
        net(torch.rand(*shape))


@pytest.mark.parametrize("mid", [4, 12, 20])
def test_bad_widths_are_refused(mid):
    with pytest.raises(ConfigError, match="multiple of 8"):
        BasicVSRPlusPlus(mid_channels=mid)


# ---- configs ------------------------------------------------------------------------------------------------
CONFIGS = ["basicvsr++_reds", "basicvsr++_vimeo90k_BD"]


@pytest.mark.parametrize("name", CONFIGS)
def test_paddlegan_config_loads_and_builds(name):
    cfg = load_config(os.path.join(ROOT, "configs", name + ".yaml"))
    model = build_model(cfg["model"])
    net = model.nets["generator"]
    assert type(model).__name__ == "BasicVSRModel" and isinstance(net, BasicVSRPlusPlus)
    assert (model.fix_iter, model.lr_mult) == (5000, 0.25)
    assert shapes(net) == VSRFixture("basicvsrpp").shapes()  # the published net's names and shapes
    assert isinstance(build_generator(cfg["model"]["generator"]), BasicVSRPlusPlus)


@pytest.mark.parametrize("name", CONFIGS)
def test_paddlegan_config_trains_one_step(name, tmp_path):
    cfg = tiny_config(name, mid_channels=8, num_blocks=1)
    batch = config_train_batch(cfg, tmp_path, frames=2)
    t = 4 if "vimeo" in name else 2  # MirrorVideoSequence doubles the Vimeo clip
    assert batch["lq"].shape == (1, t, 3, 64, 64) and batch["gt"].shape == (1, t, 3, 256, 256)
    model, losses, moved = train_one_step(cfg, batch)
    assert set(losses) == {"loss_pixel"}
    names = {k for k, _ in model.nets["generator"].named_parameters()}
    spynet = {k for k in names if k.startswith("spynet.")}
    assert moved == names - spynet  # fix_iter 5000: SPyNet frozen at the first iteration
    assert model.output.shape == batch["gt"].shape


@pytest.mark.parametrize("low_res,hw", [(True, (50, 45)), (False, (250, 203))])
def test_model_evaluates_any_size(low_res, hw):
    """BasicVSRModel pads what the net needs (64 px; 256 px and multiples of 4 for full-size
    input) and crops back."""
    from ppgan.metrics import build_metric

    torch.manual_seed(0)
    model = build_model({"name": "BasicVSRModel", "generator": {"name": "BasicVSRPlusPlus", "mid_channels": 8,
                                                                "num_blocks": 1, "is_low_res_input": low_res}})
    s = 4 if low_res else 1
    psnr = build_metric({"name": "PSNR", "crop_border": 0})
    model.setup_input({"lq": torch.rand(1, 2, 3, *hw), "gt": torch.rand(1, 2, 3, s * hw[0], s * hw[1])})
    model.test_iter({"psnr": psnr})
    assert model.output.shape == (1, 2, 3, s * hw[0], s * hw[1]) and len(psnr.results) == 1
    assert torch.isfinite(model.output).all()


@pytest.mark.parametrize("shape_change", ["wrong_shape", "extra_key"])
def test_published_layout_generator_key_and_bad_files(shape_change, tmp_path):
    """PaddleGAN's published VSR weights are {'generator': state}: loaded with key='generator'
    (without it: an error naming the key); a tensor of the wrong shape or an extra tensor is
    refused, naming it."""
    fx = VSRFixture("basicvsrpp_small_mirror")
    net = BasicVSRPlusPlus(**fx.kwargs)
    state = fx.state()
    path = write_pdparams(tmp_path / "BasicVSR++_reds_x4.pdparams", {"generator": state})
    assert not load_paddle_state_dict(net, path, key="generator")["missing"]
    with pytest.raises(CheckpointError, match="generator"):
        load_paddle_state_dict(net, path)
    if shape_change == "wrong_shape":
        name = "deform_align_backward_2.conv_offset.6.weight"
        state[name] = state[name][:-27]  # a net built with 15 deformable groups
    else:
        name = "deform_align_backward_3.dcn.weight"
        state[name] = state["deform_align_backward_2.dcn.weight"]
    bad = write_pdparams(tmp_path / "bad.pdparams", {"generator": state})
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
        load_paddle_state_dict(net, bad, key="generator")

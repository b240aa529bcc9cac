"""Super-resolution generators (RRDBNet, LESRCNNGenerator, PAN): PaddleGAN parity and behaviour.

Parity: fixture manifest -> rule weights in Paddle layout -> `load_paddle_state_dict(strict=True)`
-> eval forward on the fixture input -> PaddleGAN's output (fixtures made by PaddleGAN itself).
"""
import os
import sys

import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
from parity import Fixture  # noqa: E402

from ppgan.models.generators import GENERATORS, LESRCNNGenerator, PAN, RRDBNet, build_generator  # noqa: E402
from ppgan.weights import load_paddle_state_dict  # noqa: E402

PARITY = [
    ("esrgan_rrdbnet_small", RRDBNet),
    ("esrgan_rrdbnet_x4", RRDBNet),  # nb=23, the published ESRGAN / RealSR architecture
    ("lesrcnn_x4", LESRCNNGenerator),
    ("pan_x4", PAN),
]


def _load_fixture_model(name, cls, device="cpu"):
    fx = Fixture(name)
    model = cls(**fx.kwargs)
    report = load_paddle_state_dict(model, fx.paddle_state_dict(), strict=True)
    assert not report["transposed"]  # conv-only nets: nothing to transpose
    return fx, model.to(device).eval()


@pytest.mark.parametrize("name,cls", PARITY, ids=[p[0] for p in PARITY])
def test_parity_with_paddlegan(name, cls):
    fx, model = _load_fixture_model(name, cls)
    with torch.no_grad():
        out = model(*fx.inputs)
    fx.assert_matches(out)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name,cls", PARITY, ids=[p[0] for p in PARITY])
def test_parity_with_paddlegan_cuda(name, cls, monkeypatch):
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    fx, model = _load_fixture_model(name, cls, "cuda")
    with torch.no_grad():
        out = model(*[x.cuda() for x in fx.inputs])
    fx.assert_matches(out)


def test_registered_and_buildable():
    for name in ("RRDBNet", "LESRCNNGenerator", "PAN"):
        assert name in GENERATORS
    cfg = {"name": "PAN", "in_nc": 3, "out_nc": 3, "nf": 8, "unf": 6, "nb": 1, "scale": 2}
    net = build_generator(cfg)
    assert isinstance(net, PAN) and cfg["name"] == "PAN"


# ---------------------------------------------------------------- RRDBNet

def test_rrdbnet_small_config_odd_size():
    net = RRDBNet(3, 3, nf=8, nb=1, gc=4).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 13, 17))
    assert out.shape == (2, 3, 52, 68)
    assert net.RRDB_trunk[0].RDB1.conv5.weight.shape == (8, 8 + 4 * 4, 3, 3)


def _paddle_pixel_unshuffle(x, s):
    """PaddleGAN's rrdb_net.pixel_unshuffle, written in numpy."""
    b, c, h, w = x.shape
    return x.reshape(b, c, h // s, s, w // s, s).transpose(0, 1, 3, 5, 2, 4).reshape(b, c * s * s, h // s, w // s)


@pytest.mark.parametrize("scale,unshuffle", [(2, 2), (1, 4)])
def test_rrdbnet_unshuffle_scales(scale, unshuffle):
    torch.manual_seed(0)
    net = RRDBNet(3, 3, nf=8, nb=1, gc=4, scale=scale).eval()
    assert net.conv_first.weight.shape[1] == 3 * unshuffle ** 2
    # The same weights in a plain x4 net fed PaddleGAN's unshuffled input must agree exactly.
    ref = RRDBNet(3 * unshuffle ** 2, 3, nf=8, nb=1, gc=4, scale=4).eval()
    ref.load_state_dict(net.state_dict())
    x = torch.rand(1, 3, 16, 20)
    with torch.no_grad():
        out = net(x)
        want = ref(torch.from_numpy(_paddle_pixel_unshuffle(x.numpy(), unshuffle)))
    assert out.shape == (1, 3, 16 * scale, 20 * scale)
    torch.testing.assert_close(out, want, rtol=0, atol=0)


def test_rrdbnet_state_dict_names_do_not_depend_on_scale():
    names = {s: list(RRDBNet(3, 3, 8, 2, gc=4, scale=s).state_dict()) for s in (1, 2, 4)}
    assert names[1] == names[2] == names[4]
    assert "RRDB_trunk.1.RDB3.conv5.bias" in names[4]


def test_rrdbnet_rejects_bad_scale_and_size():
    with pytest.raises(ValueError, match=r"\(1, 2, 4\)"):
        RRDBNet(3, 3, 8, 1, gc=4, scale=3)
    with pytest.raises(ValueError, match="divisible by 2"):
        RRDBNet(3, 3, 8, 1, gc=4, scale=2)(torch.rand(1, 3, 9, 10))


# ---------------------------------------------------------------- PAN

@pytest.mark.parametrize("scale", [2, 3, 4])
def test_pan_scales_and_widths(scale):
    net = PAN(3, 3, nf=8, unf=6, nb=2, scale=scale).eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, 7, 9))
    assert out.shape == (1, 3, 7 * scale, 9 * scale)
    keys = set(net.state_dict())
    assert "SCPA_trunk.block1.PAConv.k4.weight" in keys
    assert ("upconv2.weight" in keys) == (scale == 4)


def test_pan_is_a_residual_over_bilinear_upscale():
    net = PAN(3, 3, nf=8, unf=6, nb=1, scale=3).eval()
    with torch.no_grad():
        net.conv_last.weight.zero_()
        net.conv_last.bias.zero_()
        x = torch.rand(1, 3, 5, 6)
        want = F.interpolate(x, scale_factor=3, mode="bilinear", align_corners=False)
        torch.testing.assert_close(net(x), want)


def test_pan_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        PAN(3, 3, 8, 6, 1, scale=8)
    with pytest.raises(ValueError, match="out_nc must equal in_nc"):
        PAN(3, 1, 8, 6, 1)


# ---------------------------------------------------------------- LESRCNN

@pytest.mark.parametrize("scale", [2, 3, 8])
def test_lesrcnn_other_scales(scale):
    net = LESRCNNGenerator(scale=scale).eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, 5, 7))
    assert out.shape == (1, 3, 5 * scale, 7 * scale)
    n_convs = {2: 1, 3: 1, 8: 3}[scale]
    up_keys = [k for k in net.state_dict() if k.startswith("upsample.")]
    assert len(up_keys) == 2 * n_convs and "upsample.up.body.0.weight" in up_keys


def test_lesrcnn_mean_shift_is_frozen_identity_with_mean():
    net = LESRCNNGenerator()
    w, b = net.sub_mean.shifter.weight, net.sub_mean.shifter.bias
    assert not w.requires_grad and not b.requires_grad
    torch.testing.assert_close(w.reshape(3, 3), torch.eye(3))
    torch.testing.assert_close(b, -torch.tensor([0.4488, 0.4371, 0.4040]))
    torch.testing.assert_close(net.add_mean.shifter.bias, -b)


def test_lesrcnn_multi_scale_matches_single_scale():
    torch.manual_seed(0)
    multi = LESRCNNGenerator(scale=4, multi_scale=True).eval()
    keys = set(multi.state_dict())
    assert {"upsample.up2.body.0.weight", "upsample.up3.body.0.weight", "upsample.up4.body.2.weight"} <= keys
    x = torch.rand(1, 3, 6, 5)
    for s in (2, 3, 4):
        single = LESRCNNGenerator(scale=s).eval()
        sd = {k.replace(f"upsample.up{s}.", "upsample.up."): v for k, v in multi.state_dict().items()
              if not k.startswith("upsample.") or k.startswith(f"upsample.up{s}.")}
        single.load_state_dict(sd, strict=True)
        with torch.no_grad():
            torch.testing.assert_close(multi(x, scale=s), single(x), rtol=0, atol=0)
    with torch.no_grad():
        assert multi(x).shape == (1, 3, 24, 20)  # default scale 4


def test_lesrcnn_rejects_bad_scale():
    with pytest.raises(ValueError, match=r"\(2, 3, 4, 8\)"):
        LESRCNNGenerator(scale=5)
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        LESRCNNGenerator(scale=8, multi_scale=True)
    with pytest.raises(ValueError, match="scale"):
        LESRCNNGenerator(scale=4)(torch.rand(1, 3, 4, 4), scale=2)


# ---------------------------------------------------------------- all

@pytest.mark.parametrize("make", [
    lambda: RRDBNet(3, 3, nf=8, nb=1, gc=4),
    lambda: RRDBNet(3, 3, nf=8, nb=1, gc=4, scale=2),
    lambda: PAN(3, 3, nf=8, unf=6, nb=2, scale=4),
    lambda: LESRCNNGenerator(scale=2),
], ids=["rrdbnet", "rrdbnet_x2", "pan", "lesrcnn"])
def test_backward_finite_grads(make):
    torch.manual_seed(0)
    net = make().train()
    x = torch.rand(2, 3, 8, 8)
    out = net(x)
    ((out - F.interpolate(x, size=out.shape[-2:], mode="bicubic", align_corners=False)) ** 2).mean().backward()
    for name, p in net.named_parameters():
        if not p.requires_grad:
            assert p.grad is None and ".shifter." in name
            continue
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for p in net.parameters() if p.requires_grad)

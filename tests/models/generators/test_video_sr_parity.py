"""Video SR generators (EDVRNet, BasicVSRNet) and their blocks (DCN, flow): PaddleGAN parity and behaviour.

Parity: fixture manifest -> rule weights in Paddle layout -> `load_paddle_state_dict(strict=True)`
-> eval forward on the fixture input -> PaddleGAN's output (fixtures made by PaddleGAN itself).
The deformable conv is also checked against a naive loop written from the DCNv2 definition.
"""
import math
import os
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
from parity import Fixture  # noqa: E402

from ppgan.models.generators import GENERATORS, BasicVSRNet, EDVRNet, build_generator  # noqa: E402
from ppgan.models.generators.basicvsr import SPyNet  # noqa: E402
from ppgan.models.generators.edvr import DCNPack  # noqa: E402
from ppgan.modules import dcn as dcn_mod  # noqa: E402
from ppgan.modules.dcn import ModulatedDeformConv2d, deform_conv2d  # noqa: E402
from ppgan.modules.flow import flow_warp  # noqa: E402
from ppgan.weights import load_paddle_state_dict  # noqa: E402

PARITY = [
    ("edvr_dcnpack", DCNPack),
    ("edvr_m_wo_tsa", EDVRNet),
    ("edvr_l_w_tsa", EDVRNet),  # nf=128, 40 back blocks: the published EDVR-L (~2 s)
    ("basicvsr_spynet", SPyNet),
    ("basicvsr_small", BasicVSRNet),
    ("basicvsr", BasicVSRNet),  # 2 x 30 blocks: the published BasicVSR (~3 s)
]
PARITY_IDS = [p[0] for p in PARITY]


def _load_fixture_model(name, cls, device="cpu", **extra):
    fx = Fixture(name)
    model = cls(**fx.kwargs, **extra)
    report = load_paddle_state_dict(model, fx.paddle_state_dict(), strict=True)
    assert not report["transposed"]  # conv-only nets: nothing to transpose
    return fx, model.to(device).eval()


def _call(model, inputs):
    if isinstance(model, DCNPack):  # PaddleGAN calls it as model([x, offset_feat])
        return model(list(inputs))
    return model(*inputs)


@pytest.mark.parametrize("name,cls", PARITY, ids=PARITY_IDS)
def test_parity_with_paddlegan(name, cls):
    fx, model = _load_fixture_model(name, cls)
    with torch.no_grad():
        out = _call(model, fx.inputs)
    fx.assert_matches(out)


@pytest.mark.parametrize("name,cls", [("edvr_dcnpack", DCNPack), ("edvr_m_wo_tsa", EDVRNet)])
def test_parity_pure_torch_dcn(name, cls):
    """The pure-PyTorch DCN path alone reproduces PaddleGAN (whatever 'auto' picks here)."""
    fx, model = _load_fixture_model(name, cls, **{"impl" if cls is DCNPack else "dcn_impl": "torch"})
    with torch.no_grad():
        out = _call(model, fx.inputs)
    fx.assert_matches(out)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name,cls", PARITY, ids=PARITY_IDS)
def test_parity_with_paddlegan_cuda(name, cls, monkeypatch):
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    fx, model = _load_fixture_model(name, cls, "cuda")
    with torch.no_grad():
        out = _call(model, [x.cuda() for x in fx.inputs])
    fx.assert_matches(out)


def test_registered_and_buildable():
    assert "EDVRNet" in GENERATORS and "BasicVSRNet" in GENERATORS
    cfg = {"name": "EDVRNet", "nf": 16, "nframes": 3, "groups": 4, "front_RBs": 1, "back_RBs": 1}
    net = build_generator(cfg)
    assert isinstance(net, EDVRNet) and cfg["name"] == "EDVRNet"
    assert isinstance(build_generator({"name": "BasicVSRNet", "mid_channels": 8, "num_blocks": 1}), BasicVSRNet)


# ---------------------------------------------------------------- deformable conv

def _bilinear_zero(img, y, x):
    """DCN bilinear rule: 0 outside (-1, H) x (-1, W); corners outside the image count 0."""
    h, w = img.shape
    if y <= -1 or y >= h or x <= -1 or x >= w:
        return 0.0
    y0, x0 = math.floor(y), math.floor(x)
    val = 0.0
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                val += wy * wx * img[yy, xx]
    return val


def naive_deform_conv2d(x, offset, weight, bias, stride, padding, dilation, mask):
    """Loop-by-loop modulated deformable conv in float64 numpy, from the DCNv2 definition."""
    x, offset, weight = (t.detach().double().numpy() for t in (x, offset, weight))
    n, c, h, w = x.shape
    out_c, cpg, kh, kw = weight.shape
    groups, taps = c // cpg, kh * kw
    ho, wo = offset.shape[2:]
    dg = offset.shape[1] // (2 * taps)
    cg = c // dg
    mask = np.ones((n, dg * taps, ho, wo)) if mask is None else mask.detach().double().numpy()
    cols = np.zeros((n, c, taps, ho, wo))
    for b in range(n):
        for ci in range(c):
            g = ci // cg
            for ky in range(kh):
                for kx in range(kw):
                    k = ky * kw + kx
                    for i in range(ho):
                        for j in range(wo):
                            dy = offset[b, g * 2 * taps + 2 * k, i, j]
                            dx = offset[b, g * 2 * taps + 2 * k + 1, i, j]
                            py = i * stride[0] - padding[0] + ky * dilation[0] + dy
                            px = j * stride[1] - padding[1] + kx * dilation[1] + dx
                            cols[b, ci, k, i, j] = _bilinear_zero(x[b, ci], py, px) * mask[b, g * taps + k, i, j]
    out = np.zeros((n, out_c, ho, wo))
    opg = out_c // groups
    for gi in range(groups):
        wg = weight[gi * opg:(gi + 1) * opg].reshape(opg, cpg, taps)
        out[:, gi * opg:(gi + 1) * opg] = np.einsum("ock,nckhw->nohw", wg, cols[:, gi * cpg:(gi + 1) * cpg])
    if bias is not None:
        out += bias.detach().double().numpy().reshape(1, -1, 1, 1)
    return out


# (n, c, h, w, out_c, kernel, stride, padding, dilation, groups, dg, with_mask, integer_offsets)
DCN_CASES = {
    "basic_dg2": (2, 4, 5, 7, 6, 3, 1, 1, 1, 1, 2, True, False),
    "stride2_dil2_groups2_rect": (1, 4, 7, 8, 4, (3, 2), 2, 2, 2, 2, 1, True, False),
    "no_mask_h1": (1, 2, 1, 5, 3, 3, 1, 1, 1, 1, 1, False, False),
    "integer_offsets_edges": (1, 2, 4, 5, 2, 3, 1, 1, 1, 1, 2, True, True),
}


def _dcn_inputs(case, seed=0):
    n, c, h, w, out_c, k, s, p, d, g, dg, with_mask, integer = case
    kh, kw = (k, k) if isinstance(k, int) else k
    gen = torch.Generator().manual_seed(seed)
    ho = (h + 2 * p - d * (kh - 1) - 1) // s + 1
    wo = (w + 2 * p - d * (kw - 1) - 1) // s + 1
    x = torch.randn(n, c, h, w, generator=gen)
    if integer:  # exact integer sample points, incl. -1 and H/W: the boundary rule itself
        offset = torch.randint(-3, 4, (n, 2 * dg * kh * kw, ho, wo), generator=gen).float()
    else:  # several pixels: many samples fall partly or fully outside the image
        offset = 3 * torch.randn(n, 2 * dg * kh * kw, ho, wo, generator=gen)
    mask = torch.rand(n, dg * kh * kw, ho, wo, generator=gen) if with_mask else None
    weight = torch.randn(out_c, c // g, kh, kw, generator=gen)
    bias = torch.randn(out_c, generator=gen)
    return x, offset, weight, bias, (s, s), (p, p), (d, d), mask


@pytest.mark.parametrize("case", DCN_CASES.values(), ids=DCN_CASES.keys())
def test_dcn_torch_matches_naive_loop(case):
    x, offset, weight, bias, s, p, d, mask = _dcn_inputs(case)
    got = deform_conv2d(x, offset, weight, bias, s, p, d, mask=mask, impl="torch")
    want = naive_deform_conv2d(x, offset, weight, bias, s, p, d, mask)
    assert got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("budget", [1, 2 * 4 * 5 * 7])  # one tap per matmul; 2,2,2,2,1 taps
def test_dcn_tap_chunking_gives_the_same_result(budget, monkeypatch):
    x, offset, weight, bias, s, p, d, mask = _dcn_inputs(DCN_CASES["basic_dg2"])
    want = deform_conv2d(x, offset, weight, bias, s, p, d, mask=mask, impl="torch")
    monkeypatch.setattr(dcn_mod, "_COLUMN_BUDGET", budget)
    got = deform_conv2d(x, offset, weight, bias, s, p, d, mask=mask, impl="torch")
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not dcn_mod.TORCHVISION_AVAILABLE, reason="torchvision does not import")
@pytest.mark.parametrize("case", DCN_CASES.values(), ids=DCN_CASES.keys())
def test_dcn_torch_matches_torchvision(case):
    x, offset, weight, bias, s, p, d, mask = _dcn_inputs(case)
    got = deform_conv2d(x, offset, weight, bias, s, p, d, mask=mask, impl="torch")
    want = deform_conv2d(x, offset, weight, bias, s, p, d, mask=mask, impl="torchvision")
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("stride,padding,dilation,groups,dg", [(1, 1, 1, 1, 1), (2, 0, 1, 2, 2), (1, 2, 2, 1, 4)])
def test_dcn_zero_offset_unit_mask_is_conv2d(stride, padding, dilation, groups, dg):
    torch.manual_seed(0)
    x = torch.randn(2, 8, 9, 11)
    weight, bias = torch.randn(6, 8 // groups, 3, 3), torch.randn(6)
    want = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    ho, wo = want.shape[2:]
    offset = torch.zeros(2, 2 * dg * 9, ho, wo)
    for mask in (None, torch.ones(2, dg * 9, ho, wo)):
        got = deform_conv2d(x, offset, weight, bias, stride, padding, dilation, mask=mask, impl="torch")
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_dcn_integer_shift_equals_shifted_conv():
    """A uniform offset (dy, dx) = (+1, -2) equals a conv of the input shifted by that much
    (compared where neither side reads outside the image)."""
    torch.manual_seed(0)
    x, weight = torch.randn(1, 3, 8, 9), torch.randn(4, 3, 3, 3)
    offset = torch.zeros(1, 18, 8, 9)
    offset[:, 0::2], offset[:, 1::2] = 1.0, -2.0
    shifted = torch.zeros_like(x)
    shifted[:, :, :-1, 2:] = x[:, :, 1:, :-2]  # shifted[y, x] = x[y + 1, x - 2]
    got = deform_conv2d(x, offset, weight, None, 1, 1, 1, impl="torch")
    want = F.conv2d(shifted, weight, None, 1, 1)
    torch.testing.assert_close(got[:, :, 1:-2, 3:-1], want[:, :, 1:-2, 3:-1], rtol=1e-5, atol=1e-5)


def test_dcn_gradcheck():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    # fractional offsets keep every sample point away from bilinear kinks (integers)
    offset = (0.25 + 0.5 * torch.rand(1, 18, 3, 4, generator=gen, dtype=torch.float64)
              + torch.randint(-2, 2, (1, 18, 3, 4), generator=gen)).requires_grad_()
    mask = torch.rand(1, 9, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2, 2, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(2, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda *a: deform_conv2d(a[0], a[1], a[2], a[3], 1, 1, 1, mask=a[4], impl="torch"),
        (x, offset, weight, bias, mask))


def test_dcn_backward_finite_with_far_offsets():
    x, offset, weight, bias, s, p, d, mask = _dcn_inputs(DCN_CASES["basic_dg2"])
    leaves = [t.clone().requires_grad_() for t in (x, 10 * offset, weight, bias, mask)]
    out = deform_conv2d(leaves[0], leaves[1], leaves[2], leaves[3], s, p, d, mask=leaves[4], impl="torch")
    out.square().mean().backward()
    for t in leaves:
        assert t.grad is not None and torch.isfinite(t.grad).all()
    assert leaves[1].grad.abs().sum() > 0


def test_dcn_argument_checks():
    x, w = torch.randn(1, 4, 5, 5), torch.randn(4, 4, 3, 3)
    with pytest.raises(ValueError, match="impl"):
        deform_conv2d(x, torch.zeros(1, 18, 5, 5), w, None, 1, 1, impl="cuda")
    with pytest.raises(ValueError, match="offset"):
        deform_conv2d(x, torch.zeros(1, 17, 5, 5), w, None, 1, 1)
    with pytest.raises(ValueError, match="output size"):
        deform_conv2d(x, torch.zeros(1, 18, 4, 5), w, None, 1, 1)
    with pytest.raises(ValueError, match="mask"):
        deform_conv2d(x, torch.zeros(1, 18, 5, 5), w, None, 1, 1, mask=torch.ones(1, 18, 5, 5))
    with pytest.raises(ValueError, match="deformable groups"):
        deform_conv2d(x, torch.zeros(1, 54, 5, 5), w, None, 1, 1)
    with pytest.raises(ValueError, match="deformable_groups"):
        ModulatedDeformConv2d(6, 6, 3, deformable_groups=4)


@pytest.mark.skipif(dcn_mod.TORCHVISION_AVAILABLE, reason="torchvision imports here")
def test_dcn_torchvision_impl_without_torchvision_names_the_import_error():
    assert dcn_mod._TV_IMPORT_ERROR is not None
    with pytest.raises(RuntimeError, match="torchvision does not import"):
        ModulatedDeformConv2d(4, 4, 3, impl="torchvision")


def test_modulated_deform_conv_module_layout_and_init():
    torch.manual_seed(0)
    m = ModulatedDeformConv2d(32, 16, 3, padding=1, deformable_groups=4, groups=2)
    assert [k for k, _ in m.named_parameters()] == ["weight", "bias"]
    assert m.weight.shape == (16, 16, 3, 3)
    assert abs(m.weight.std().item() - math.sqrt(2 / (9 * 32))) < 0.02  # Paddle DeformConv2D init
    assert m.bias.abs().max() == 0
    with pytest.raises(ValueError, match="deformable_groups=4"):
        m(torch.randn(1, 32, 4, 4), torch.zeros(1, 18, 4, 4))


def test_dcnpack_at_init_is_half_masked_conv():
    """conv_offset_mask starts at zero: offsets 0, mask sigmoid(0) = 0.5."""
    torch.manual_seed(0)
    pack = DCNPack(num_filters=16, deformable_groups=4, impl="torch")
    x, feat = torch.randn(2, 16, 6, 7), torch.randn(2, 16, 6, 7)
    want = 0.5 * F.conv2d(x, pack.dcn.weight, None, 1, 1) + pack.dcn.bias.reshape(1, -1, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(pack([x, feat]), want, rtol=1e-5, atol=1e-5)
    assert set(pack.state_dict()) == {"conv_offset_mask.weight", "conv_offset_mask.bias", "dcn.weight", "dcn.bias"}
    with pytest.raises(ValueError, match="extra_offset_mask"):
        DCNPack(16, extra_offset_mask=False)


# ---------------------------------------------------------------- flow

def test_flow_warp_identity_and_integer_shift():
    x = torch.randn(2, 3, 5, 6)
    torch.testing.assert_close(flow_warp(x, torch.zeros(2, 5, 6, 2)), x)
    flow = torch.zeros(2, 5, 6, 2)
    flow[..., 0], flow[..., 1] = 2.0, -1.0  # sample at (x + 2, y - 1)
    out = flow_warp(x, flow)
    torch.testing.assert_close(out[:, :, 1:, :-2], x[:, :, :-1, 2:])
    assert out[:, :, 0].abs().max() == 0 and out[:, :, :, -2:].abs().max() == 0  # zeros padding
    border = flow_warp(x, flow, padding_mode="border")
    torch.testing.assert_close(border[:, :, 0, :-2], x[:, :, 0, 2:])
    with pytest.raises(ValueError, match="flow must be"):
        flow_warp(x, torch.zeros(2, 2, 5, 6))


def test_spynet_any_size_and_buffers():
    torch.manual_seed(0)
    net = SPyNet().eval()
    assert {"mean", "std", "basic_module5.conv5.bias"} <= set(net.state_dict())
    torch.testing.assert_close(net.std.flatten(), torch.tensor([0.229, 0.224, 0.225]))
    with torch.no_grad():
        flow = net(torch.rand(2, 3, 40, 50), torch.rand(2, 3, 40, 50))
    assert flow.shape == (2, 2, 40, 50) and torch.isfinite(flow).all()


# ---------------------------------------------------------------- EDVRNet

def _tiny_edvr(**kw):
    args = dict(nf=16, nframes=3, groups=4, front_RBs=1, back_RBs=1, dcn_impl="torch")
    args.update(kw)
    return EDVRNet(**args)


@pytest.mark.parametrize("w_TSA", [True, False])
def test_edvr_tiny_forward(w_TSA):
    torch.manual_seed(0)
    net = _tiny_edvr(w_TSA=w_TSA).eval()
    x = torch.rand(1, 3, 3, 20, 28)
    with torch.no_grad():
        out = net(x)
    assert out.shape == (1, 3, 80, 112) and torch.isfinite(out).all()
    keys = set(net.state_dict())
    assert "PCDModule.PCD_Align_cascade_dcn.dcn.weight" in keys
    assert ("TSAModule.sAtt_L2.weight" in keys) == w_TSA
    assert ("TSAModule.weight" in keys) == (not w_TSA)
    assert net.TSAModule.__class__.__name__ == ("TSAFusion" if w_TSA else "Conv2d")


def test_edvr_tiny_batch_is_independent():
    torch.manual_seed(0)
    net = _tiny_edvr().eval()
    x = torch.rand(2, 3, 3, 12, 16)
    with torch.no_grad():
        both = net(x)
        torch.testing.assert_close(both[1:], net(x[1:]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("HR_in,size,out_size", [(False, (12, 16), (48, 64)), (True, (32, 48), (32, 48))])
def test_edvr_predeblur(HR_in, size, out_size):
    torch.manual_seed(0)
    net = _tiny_edvr(predeblur=True, HR_in=HR_in, center=0).eval()
    assert "pre_deblur.RB_L1_5.conv2.weight" in net.state_dict() and "cov_1.weight" in net.state_dict()
    with torch.no_grad():
        out = net(torch.rand(1, 3, 3, *size))
    assert out.shape == (1, 3, *out_size)


def test_edvr_backward_finite_grads():
    torch.manual_seed(0)
    net = _tiny_edvr().train()
    x = torch.rand(2, 3, 3, 12, 16)
    out = net(x)
    (out - F.interpolate(x[:, 1], scale_factor=4, mode="bicubic", align_corners=False)).square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    # offsets start at zero but still learn (their gradient reaches conv_offset_mask)
    assert net.PCDModule.PCD_Align_L1_dcn.conv_offset_mask.weight.grad.abs().sum() > 0


def test_edvr_rejects_bad_arguments():
    with pytest.raises(ValueError, match="scale_factor=4"):
        _tiny_edvr(scale_factor=2)
    with pytest.raises(ValueError, match="center"):
        _tiny_edvr(center=3)
    with pytest.raises(ValueError, match="predeblur"):
        _tiny_edvr(HR_in=True)
    with pytest.raises(ValueError, match="groups"):
        _tiny_edvr(groups=5)
    net = _tiny_edvr()
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.rand(1, 3, 3, 18, 28))
    with pytest.raises(ValueError, match=r"\[N, 3, 3, H, W\]"):
        net(torch.rand(1, 5, 3, 20, 28))


# ---------------------------------------------------------------- BasicVSRNet

def test_basicvsr_tiny_forward_not_multiple_of_32():
    torch.manual_seed(0)
    net = BasicVSRNet(mid_channels=8, num_blocks=1).eval()
    assert "backward_resblocks.covn1.weight" in net.state_dict()
    assert "forward_resblocks.ResidualBlocks.block0.conv2.bias" in net.state_dict()
    with torch.no_grad():
        out = net(torch.rand(1, 5, 3, 64, 72))
    assert out.shape == (1, 5, 3, 256, 288) and torch.isfinite(out).all()


def test_basicvsr_mirror_extended_reuses_backward_flows(monkeypatch):
    torch.manual_seed(0)
    net = BasicVSRNet(mid_channels=8, num_blocks=1).eval()
    half = torch.rand(1, 2, 3, 64, 64)
    lrs = torch.cat([half, half.flip(1)], 1)
    assert net.check_if_mirror_extended(lrs) and not net.check_if_mirror_extended(lrs[:, :3])
    with torch.no_grad():
        short = net(lrs)
        monkeypatch.setattr(BasicVSRNet, "check_if_mirror_extended", staticmethod(lambda lrs: False))
        full = net(lrs)
    torch.testing.assert_close(short, full, rtol=1e-4, atol=1e-4)


def test_basicvsr_backward_finite_grads():
    torch.manual_seed(0)
    net = BasicVSRNet(mid_channels=8, num_blocks=1).train()
    lrs = torch.rand(1, 3, 3, 64, 64)
    out = net(lrs)
    assert out.shape == (1, 3, 3, 256, 256)
    out.square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert net.spynet.basic_module5.conv5.weight.grad.abs().sum() > 0  # flows are learned too


def test_basicvsr_single_frame_and_size_check():
    net = BasicVSRNet(mid_channels=8, num_blocks=1).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 1, 3, 64, 64)).shape == (1, 1, 3, 256, 256)
    with pytest.raises(ValueError, match="at least 64"):
        net(torch.rand(1, 5, 3, 32, 48))

"""The deformable conv in half precision: coordinates stay float32, the output is in the compute
dtype, and the result is the float32 one to bf16 rounding (CPU bf16, direct and under autocast)."""
import pytest
import torch

from ppgan.modules.dcn import ModulatedDeformConv2d, deform_conv2d


def _inputs(width=320, seed=0):
    """A wide map (coordinates up to ~width, where bf16 has a 2-pixel spacing) with fractional
    offsets that bf16 represents exactly, so only the coordinate maths can move the samples."""
    g = torch.Generator().manual_seed(seed)
    n, c, h, dg, k = 1, 8, 5, 2, 3
    x = torch.rand(n, c, h, width, generator=g)
    offset = torch.randint(-12, 13, (n, 2 * dg * k * k, h, width), generator=g).float() / 4  # multiples of 0.25
    mask = torch.rand(n, dg * k * k, h, width, generator=g)
    weight = torch.randn(6, c, k, k, generator=g) * 0.2
    bias = torch.randn(6, generator=g)
    return [t.bfloat16().float() for t in (x, offset, weight, bias, mask)]  # values exact in bf16


def _close_to(got, want, rel=0.02):
    err = (got.float() - want).abs().max().item()
    assert err <= rel * want.abs().max().item(), f"max error {err} vs scale {want.abs().max().item()}"


def test_direct_bf16_keeps_fp32_coordinates_and_returns_bf16():
    x, offset, weight, bias, mask = _inputs()
    want = deform_conv2d(x, offset, weight, bias, 1, 1, 1, mask=mask, impl="torch")
    got = deform_conv2d(*(t.bfloat16() for t in (x, offset, weight, bias)), 1, 1, 1,
                        mask=mask.bfloat16(), impl="torch")
    assert got.dtype == torch.bfloat16
    _close_to(got, want)


def test_autocast_bf16_output_in_compute_dtype_and_close_to_fp32():
    x, offset, weight, bias, mask = _inputs(seed=1)
    layer = ModulatedDeformConv2d(8, 6, 3, padding=1, deformable_groups=2, impl="torch")
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
        want = layer(x, offset, mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            # offsets as a conv under autocast would hand them over: in bf16
            got = layer(x, offset.bfloat16(), mask.bfloat16())
            got_auto = deform_conv2d(x, offset.bfloat16(), weight, bias, 1, 1, 1, mask=mask, impl="auto")
    assert want.dtype == torch.float32 and got.dtype == got_auto.dtype == torch.bfloat16
    _close_to(got, want)
    _close_to(got_auto, want)


@pytest.mark.parametrize("budget", [1 << 24, 8 * 5 * 320 * 2])  # all taps in one matmul; 2 taps a chunk
def test_half_precision_chunking_and_no_mask(budget, monkeypatch):
    from ppgan.modules import dcn as dcn_mod

    x, offset, weight, bias, _ = _inputs(seed=2)
    want = deform_conv2d(x, offset, weight, bias, 1, 1, 1, impl="torch")
    monkeypatch.setattr(dcn_mod, "_COLUMN_BUDGET", budget)
    with torch.no_grad():
        got = deform_conv2d(*(t.bfloat16() for t in (x, offset, weight, bias)), 1, 1, 1, impl="torch")
    assert got.dtype == torch.bfloat16
    _close_to(got, want)

"""Predictors in bf16 on the CPU: nets that declare `half_mode = 'direct'` run as a bf16 copy (the
fp32 net untouched), others under autocast; a non-finite half-precision output is redone in fp32."""
import pytest
import torch
import torch.nn as nn

from ppgan.apps.base_predictor import BasePredictor, half_mode
from ppgan.models.generators import RRDBNet
from ppgan.utils.errors import PPGANError


class Conv(nn.Module):
    """One 3x3 conv that records the dtypes it ran with; overflows (inf) when not in fp32 if asked."""

    half_mode = "direct"

    def __init__(self, overflow=False):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.overflow, self.runs = overflow, []

    def forward(self, x):
        self.runs.append((x.dtype, self.conv.weight.dtype, torch.is_autocast_enabled("cpu")))
        y = self.conv(x)
        return y * float("inf") if self.overflow and y.dtype != torch.float32 else y


class Wrapper(nn.Module):
    """A wrapper with state of its own around a net that declares its half mode (as the video apps'
    clip wrapper): the wrapper's state must land on the wrapper the caller holds."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


def test_direct_bf16_runs_a_cast_copy_and_keeps_the_fp32_net():
    pred = BasePredictor(device="cpu", half="bf16", verbose=False)
    assert (pred.precision, pred.compute_dtype, pred.half) == ("bf16", torch.bfloat16, True)
    torch.manual_seed(0)
    net = Conv()
    x = torch.rand(1, 3, 20, 24)
    want = net.conv(x).detach()
    out = pred.forward_image(net, x, tile=0)
    half_copy = pred.half_net(net).half_net
    assert half_copy.runs == [(torch.bfloat16, torch.bfloat16, False)]  # cast copy, no autocast
    assert net.runs == [] and net.conv.weight.dtype == torch.float32  # the fp32 net is untouched
    assert out.dtype == torch.float32 and out.is_contiguous()
    torch.testing.assert_close(out, want, rtol=0.02, atol=0.02)
    pred.forward_image(net, x, tile=0)
    assert pred.half_net(net).half_net is half_copy and len(half_copy.runs) == 2  # made once


def test_a_net_without_half_mode_runs_under_autocast():
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.runs = nn.Conv2d(3, 3, 1), []

        def forward(self, x):
            self.runs.append((self.conv.weight.dtype, torch.is_autocast_enabled("cpu"),
                              torch.get_autocast_dtype("cpu")))
            return self.conv(x)

    net = Plain()
    assert half_mode(net) == ("autocast", "")
    BasePredictor(device="cpu", half="bf16", verbose=False).forward_image(net, torch.rand(1, 3, 8, 8), tile=0)
    assert net.runs == [(torch.float32, True, torch.bfloat16)]


def test_non_finite_half_output_is_redone_in_fp32():
    pred = BasePredictor(device="cpu", half="bf16", verbose=False)
    torch.manual_seed(0)
    net = Wrapper(Conv(overflow=True))
    assert half_mode(net) == ("direct", "inner")
    x = torch.rand(1, 3, 16, 16)
    out = pred.forward_image(net, x, tile=0)
    assert torch.isfinite(out).all() and pred.stats["fp32_retries"] == 1
    torch.testing.assert_close(out, net.inner.conv(x).detach())  # exactly the fp32 result
    assert [r[:2] for r in net.inner.runs] == [(torch.float32, torch.float32)]  # the retry
    assert net.calls == 2 and net.inner.__class__ is Conv and net.inner.conv.weight.dtype == torch.float32


def test_rrdbnet_in_bf16_matches_fp32():
    torch.manual_seed(0)
    net = RRDBNet(3, 3, nf=8, nb=2, gc=4).eval()
    x = torch.rand(1, 3, 24, 20)
    fp32 = BasePredictor(device="cpu", verbose=False).forward_image(net, x, tile=0)
    bf16 = BasePredictor(device="cpu", half="bf16", verbose=False).forward_image(net, x, tile=0)
    assert bf16.dtype == torch.float32 and bf16.shape == fp32.shape
    assert (bf16 - fp32).abs().max() <= 0.03 * fp32.abs().max()
    assert next(net.parameters()).dtype == torch.float32


@pytest.mark.parametrize("half, precision", [(None, "fp32"), (False, "fp32"), ("fp32", "fp32"),
                                             ("bfloat16", "bf16"), ("BF16", "bf16")])
def test_precision_argument_on_cpu(half, precision):
    pred = BasePredictor(device="cpu", half=half, verbose=False)
    assert pred.precision == precision and pred.half == (precision != "fp32")


def test_bad_precision_arguments():
    with pytest.raises(PPGANError, match="half precision needs a CUDA device"):
        BasePredictor(device="cpu", half="fp16")
    with pytest.raises(PPGANError, match="unknown precision 'int8'"):
        BasePredictor(device="cpu", half="int8")


class Clip(nn.Module):
    """[N, T*3, H, W] -> EDVR -> [N, 3, 4H, 4W], as the video apps tile clips."""

    size_multiple = 4

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        n, tc, h, w = x.shape
        return self.net(x.reshape(n, tc // 3, 3, h, w))


def test_edvr_in_bf16_matches_fp32():
    from ppgan.models.generators import EDVRNet

    torch.manual_seed(0)
    edvr = EDVRNet(nf=8, nframes=3, groups=2, front_RBs=1, back_RBs=1, dcn_impl="torch").eval()
    with torch.no_grad():  # offsets of a few pixels instead of the zero init
        for name, p in edvr.named_parameters():
            if "conv_offset_mask" in name:
                p.normal_(0, 0.05)
    clip = Clip(edvr)
    assert half_mode(clip) == ("direct", "net")
    x = torch.rand(1, 9, 16, 20)
    fp32 = BasePredictor(device="cpu", verbose=False).forward_image(clip, x, tile=0)
    bf16 = BasePredictor(device="cpu", half="bf16", verbose=False).forward_image(clip, x, tile=0)
    assert bf16.dtype == torch.float32 and bf16.shape == fp32.shape == (1, 3, 64, 80)
    assert (bf16 - fp32).abs().max() <= 0.03 * fp32.abs().max()
    assert clip.net is edvr and next(edvr.parameters()).dtype == torch.float32

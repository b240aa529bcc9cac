"""EdgeLoss and PSNRLoss (PaddleGAN's pixel_loss.py semantics)."""
import math
import os

import numpy as np
import pytest
import torch

from ppgan.models.criterions import build_criterion
from ppgan.models.criterions.pixel_loss import EdgeLoss, PSNRLoss
from ppgan.utils.errors import ConfigError


def _edge_reference(x, y, eps=1e-12):
    """Straight numpy transcription of PaddleGAN's EdgeLoss (3 channels, replicate pad, sum)."""
    k = np.array([.05, .25, .4, .25, .05])
    k2 = np.outer(k, k)

    def gauss(img):
        p = np.pad(img, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="edge")
        out = np.zeros_like(img)
        h, w = img.shape[2:]
        for i in range(5):
            for j in range(5):
                out += k2[i, j] * p[:, :, i:i + h, j:j + w]
        return out

    def lap(img):
        f = gauss(img)
        up = np.zeros_like(f)
        up[:, :, ::2, ::2] = f[:, :, ::2, ::2] * 4
        return img - gauss(up)

    return np.sqrt((lap(x) - lap(y)) ** 2 + eps).sum()


@pytest.mark.parametrize("shape", [(1, 3, 8, 8), (2, 3, 7, 9), (1, 3, 5, 12)])
def test_edge_loss_matches_transcription(shape):
    g = torch.Generator().manual_seed(sum(shape))
    x, y = torch.rand(shape, generator=g, dtype=torch.float64), torch.rand(shape, generator=g, dtype=torch.float64)
    got = EdgeLoss()(x, y).item()
    want = _edge_reference(x.numpy(), y.numpy())
    assert got == pytest.approx(want, rel=1e-6)


def test_edge_loss_properties():
    loss = build_criterion({"name": "EdgeLoss"})
    x = torch.rand(2, 3, 16, 16)
    # identical images: only the eps floor is left, sqrt(1e-12) per element (reduction 'sum')
    assert loss(x, x).item() == pytest.approx(x.numel() * 1e-6, rel=1e-3)
    # sum reduction scales with size; mean does not
    y = torch.rand(2, 3, 16, 16)
    total = loss(x, y)
    mean = EdgeLoss(reduction="mean")(x, y)
    assert total.item() == pytest.approx(mean.item() * x.numel(), rel=1e-5)
    # gradient flows to pred only
    p, t = x.clone().requires_grad_(), y.clone().requires_grad_()
    loss(p, t).backward()
    assert p.grad is not None and p.grad.abs().sum() > 0 and t.grad is None
    # any channel count
    assert torch.isfinite(EdgeLoss()(torch.rand(1, 1, 9, 9), torch.rand(1, 1, 9, 9)))


@pytest.mark.parametrize("kwargs", [dict(), dict(loss_weight=0.5), dict(toY=True)])
def test_psnr_loss_is_minus_psnr(kwargs):
    loss = build_criterion({"name": "PSNRLoss", **kwargs})
    g = torch.Generator().manual_seed(3)
    gt = torch.rand(3, 3, 10, 11, generator=g)
    pred = (gt + 0.05 * torch.randn(gt.shape, generator=g)).clamp(0, 1)
    if kwargs.get("toY"):
        coef = torch.tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1)
        a = ((pred * coef).sum(1, keepdim=True) + 16) / 255
        b = ((gt * coef).sum(1, keepdim=True) + 16) / 255
    else:
        a, b = pred, gt
    mse = ((a - b) ** 2).mean(dim=(1, 2, 3)).double()
    psnr = 10 * torch.log10(1.0 / (mse + 1e-8))
    want = -kwargs.get("loss_weight", 1.0) * psnr.mean().item()
    assert loss(pred, gt).item() == pytest.approx(want, rel=1e-5)
    assert loss(gt, gt).item() == pytest.approx(-kwargs.get("loss_weight", 1.0) * 80.0, rel=1e-4)


@pytest.mark.parametrize("bad", [dict(name="PSNRLoss", reduction="sum"), dict(name="PSNRLoss", reduction="none"),
                                 dict(name="EdgeLoss", reduction="max")])
def test_bad_reduction_is_config_error(bad):
    with pytest.raises(ConfigError, match="reduction"):
        build_criterion(bad)


def test_psnr_loss_toY_needs_rgb():
    with pytest.raises(ConfigError, match="3-channel"):
        PSNRLoss(toY=True)(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 4))


def test_psnr_loss_lower_for_better_prediction():
    loss = PSNRLoss()
    gt = torch.rand(1, 3, 8, 8)
    assert loss(gt + 0.01, gt) < loss(gt + 0.1, gt)
    assert loss(gt + 0.1, gt).item() == pytest.approx(-10 * math.log10(1 / (0.01 + 1e-8)), rel=1e-4)


_FIX = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "fixtures",
                    "restoration", "pixel_losses_reference.npz")
_REF = np.load(_FIX, allow_pickle=False)


@pytest.mark.parametrize("i", range(3))
def test_losses_match_paddlegan_recorded(i):
    """Values of PaddleGAN's own EdgeLoss / PSNRLoss (make_mpr_invdn_reference.py, paddle on CPU)."""
    x, y = torch.from_numpy(_REF[f"x{i}"]), torch.from_numpy(_REF[f"y{i}"])
    assert EdgeLoss()(x, y).item() == pytest.approx(float(_REF[f"edge{i}"]), rel=1e-5)
    assert PSNRLoss()(x, y).item() == pytest.approx(float(_REF[f"psnr{i}"]), rel=1e-5)
    assert PSNRLoss(loss_weight=0.5, toY=True)(x, y).item() == pytest.approx(float(_REF[f"psnr_y{i}"]), rel=1e-5)
    # PaddleGAN's CharbonnierLoss() sums, which MPRModel reproduces for configs without a reduction
    char = build_criterion({"name": "CharbonnierLoss", "reduction": "sum"})
    assert char(x, y).item() == pytest.approx(float(_REF[f"char{i}"]), rel=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_give_float32_losses(dtype):
    x = torch.rand(1, 3, 8, 8).to(dtype).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        edge, psnr = EdgeLoss()(x, x.detach()), PSNRLoss()(x, x.detach())
    assert edge.dtype == psnr.dtype == torch.float32
    assert psnr.item() == pytest.approx(-80.0, rel=1e-4)  # the 1e-8 floor survives
    (edge + psnr).backward()
    assert torch.isfinite(x.grad).all()

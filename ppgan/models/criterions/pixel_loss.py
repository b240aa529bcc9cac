"""Pixel losses: a pure function per loss plus a thin module with `loss_weight` and `reduction`."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ...utils.errors import ConfigError
from .builder import CRITERIONS

REDUCTIONS = ("none", "mean", "sum")


def _reduce(loss, reduction):
    return loss if reduction == "none" else loss.mean() if reduction == "mean" else loss.sum()


def _full_precision(*tensors):
    """float16 / bfloat16 tensors as float32 (float32 / float64 unchanged)."""
    return [t if t.dtype in (torch.float32, torch.float64) else t.float() for t in tensors]


def charbonnier_loss(pred, target, eps=1e-12, reduction="mean"):
    return _reduce(torch.sqrt((pred - target) ** 2 + eps), reduction)


class _PixelLoss(nn.Module):
    def __init__(self, loss_weight=1.0, reduction="mean"):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ConfigError(f"reduction must be one of {', '.join(REDUCTIONS)}; got {reduction!r}")
        self.loss_weight = float(loss_weight)
        self.reduction = reduction


@CRITERIONS.register()
class L1Loss(_PixelLoss):
    """loss_weight * |pred - target| (reduction 'mean' | 'sum' | 'none')."""

    def forward(self, pred, target, **kwargs):
        return self.loss_weight * F.l1_loss(pred, target, reduction=self.reduction)


@CRITERIONS.register()
class MSELoss(_PixelLoss):
    """loss_weight * (pred - target)^2 (reduction 'mean' | 'sum' | 'none')."""

    def forward(self, pred, target, **kwargs):
        return self.loss_weight * F.mse_loss(pred, target, reduction=self.reduction)


@CRITERIONS.register()
class CharbonnierLoss(_PixelLoss):
    """loss_weight * sqrt((pred - target)^2 + eps), a smooth L1 (eps default 1e-12)."""

    def __init__(self, eps=1e-12, loss_weight=1.0, reduction="mean"):
        super().__init__(loss_weight, reduction)
        self.eps = eps

    def forward(self, pred, target, **kwargs):
        return self.loss_weight * charbonnier_loss(pred, target, self.eps, self.reduction)


@CRITERIONS.register()
class BCEWithLogitsLoss(_PixelLoss):
    """loss_weight * BCE(sigmoid(pred), target) on raw logits (reduction 'mean' | 'sum' | 'none');
    U-GAT-IT's CAM loss. Computed in float32 (safe under autocast)."""

    def forward(self, pred, target, **kwargs):
        return self.loss_weight * F.binary_cross_entropy_with_logits(pred.float(), target.float(),
                                                                     reduction=self.reduction)


@CRITERIONS.register()
class EdgeLoss(nn.Module):
    """Charbonnier distance between the Laplacian (difference-of-Gaussians) images of pred and
    target, MPRNet's edge loss. PaddleGAN's defaults: eps 1e-12 and reduction 'sum' (its
    CharbonnierLoss default); the 5x5 Gaussian is the outer product of [.05, .25, .4, .25, .05]
    applied per channel with replicate padding, the target carries no gradient. Computed in
    float32 (safe under autocast)."""

    def __init__(self, eps=1e-12, reduction="sum", loss_weight=1.0):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ConfigError(f"reduction must be one of {', '.join(REDUCTIONS)}; got {reduction!r}")
        self.eps = eps
        self.reduction = reduction
        self.loss_weight = float(loss_weight)
        k = torch.tensor([.05, .25, .4, .25, .05])
        self.register_buffer("kernel", torch.outer(k, k)[None, None], persistent=False)

    def conv_gauss(self, img):
        c = img.shape[1]
        kernel = self.kernel.to(img).expand(c, 1, -1, -1)
        pad = self.kernel.shape[-1] // 2
        return F.conv2d(F.pad(img, [pad] * 4, mode="replicate"), kernel, groups=c)

    def laplacian(self, img):
        filtered = self.conv_gauss(img)
        up = torch.zeros_like(filtered)
        up[:, :, ::2, ::2] = filtered[:, :, ::2, ::2] * 4
        return img - self.conv_gauss(up)

    def forward(self, pred, target, **kwargs):
        # full precision, autocast off: eps 1e-12 vanishes in fp16 (0/0 gradients), pixel sums overflow it
        pred, target = _full_precision(pred, target.detach())
        with torch.autocast(pred.device.type, enabled=False):
            loss = charbonnier_loss(self.laplacian(pred), self.laplacian(target), self.eps, self.reduction)
        return self.loss_weight * loss


@CRITERIONS.register()
class PSNRLoss(nn.Module):
    """loss_weight * 10/ln(10) * mean over the batch of log(MSE per image + 1e-8), i.e. minus the
    PSNR of images in [0, 1] (NAFNet's loss). `toY` compares the BT.601 luma (0..1 scale) of RGB
    inputs instead. Only reduction 'mean' exists (as in PaddleGAN). Computed in float32."""

    def __init__(self, loss_weight=1.0, reduction="mean", toY=False):
        super().__init__()
        if reduction != "mean":
            raise ConfigError(f"PSNRLoss supports only reduction 'mean'; got {reduction!r}")
        self.loss_weight = float(loss_weight)
        self.reduction = reduction
        self.scale = 10 / math.log(10)
        self.toY = bool(toY)
        self.register_buffer("coef", torch.tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1),
                             persistent=False)

    def _luma(self, img):
        if img.shape[1] != 3:
            raise ConfigError(f"PSNRLoss(toY=True) needs 3-channel RGB input; got {img.shape[1]} channels")
        return ((img * self.coef.to(img)).sum(1, keepdim=True) + 16.) / 255.

    def forward(self, pred, target, **kwargs):
        pred, target = _full_precision(pred, target)  # the 1e-8 floor vanishes in fp16 (log 0)
        with torch.autocast(pred.device.type, enabled=False):
            if self.toY:
                pred, target = self._luma(pred), self._luma(target)
            mse = ((pred - target) ** 2).mean(dim=(1, 2, 3))
            return self.loss_weight * self.scale * torch.log(mse + 1e-8).mean()

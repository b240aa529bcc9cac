"""Pixel losses: a pure function per loss plus a thin module with `loss_weight` and `reduction`."""
import torch
import torch.nn.functional as F
from torch import nn

from ...utils.errors import ConfigError
from .builder import CRITERIONS

REDUCTIONS = ("none", "mean", "sum")


def _reduce(loss, reduction):
    return loss if reduction == "none" else loss.mean() if reduction == "mean" else loss.sum()


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

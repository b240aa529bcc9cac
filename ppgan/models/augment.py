"""Differentiable augmentation for GAN training on small data sets (DiffAugment, Zhao et al.
2020; applied with a per-sample probability as in ADA, Karras et al. 2020).

The same random transform family is applied to every image the discriminator sees, real and
fake, in both the D and the G step; the ops are differentiable in the image, so the generator
learns through them. Nothing here reads a value back from the device.

    aug = DiffAugment("color,translation,cutout", prob=1.0)
    logits = net_d(aug(images))
"""
import torch

from ..utils.errors import ConfigError

POLICIES = ("color", "translation", "cutout")


def _per_sample(x, shape=(1, 1, 1)):
    return torch.rand(x.shape[0], *shape, device=x.device, dtype=x.dtype)


def brightness(x):
    return x + (_per_sample(x) - 0.5)


def saturation(x):
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_per_sample(x) * 2) + mean


def contrast(x):
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_per_sample(x) + 0.5) + mean


def translation(x, ratio=0.125):
    """Shift every image by a whole number of pixels in [-ratio*size, ratio*size] per axis,
    filling with zeros."""
    n, _, h, w = x.shape
    sy, sx = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    dy = torch.randint(-sy, sy + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sx, sx + 1, (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1) - dy            # source row of each output row
    xs = torch.arange(w, device=x.device).view(1, 1, w) - dx
    inside = ((ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)).unsqueeze(1)
    index = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).view(n, 1, h * w).expand(-1, x.shape[1], -1)
    out = x.reshape(n, x.shape[1], h * w).gather(2, index).view_as(x)
    return out * inside.to(x.dtype)


def cutout(x, ratio=0.5):
    """Zero one square of side ratio*size at a random place in every image."""
    n, _, h, w = x.shape
    ch, cw = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    hole = (ys >= cy - ch // 2) & (ys < cy - ch // 2 + ch) & (xs >= cx - cw // 2) & (xs < cx - cw // 2 + cw)
    return x * (~hole).unsqueeze(1).to(x.dtype)


OPS = {"color": (brightness, saturation, contrast), "translation": (translation,), "cutout": (cutout,)}


class DiffAugment:
    """Callable: images [N, C, H, W] -> augmented images of the same shape.

    Args:
        policy (str | list[str]): ops among 'color' (brightness, saturation, contrast),
            'translation' (up to 1/8 of the size) and 'cutout' (a square of half the size),
            comma-separated or a list. Default: all three.
        prob (float): probability, per image and per op, that the op is applied (1.0 is
            DiffAugment; lower values are ADA's fixed-p form). Default 1.0.
    """

    def __init__(self, policy="color,translation,cutout", prob=1.0):
        names = [p.strip() for p in (policy.split(",") if isinstance(policy, str) else policy) if p.strip()]
        bad = [p for p in names if p not in POLICIES]
        if bad or not names:
            raise ConfigError(f"augment.policy: unknown op {bad[0] if bad else repr(policy)}; "
                              f"use a comma-separated subset of {', '.join(POLICIES)}")
        if not 0.0 <= float(prob) <= 1.0:
            raise ConfigError(f"augment.prob must be in [0, 1], got {prob}")
        self.policy, self.prob = names, float(prob)

    def __call__(self, x):
        if self.prob <= 0:
            return x
        for name in self.policy:
            for op in OPS[name]:
                y = op(x)
                if self.prob < 1:
                    keep = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < self.prob
                    y = torch.where(keep, y, x)
                x = y
        return x


def build_augment(cfg):
    """None / False -> None; True -> DiffAugment(); a dict -> DiffAugment(**cfg)."""
    if cfg in (None, False):
        return None
    if cfg is True:
        return DiffAugment()
    if not isinstance(cfg, dict):
        raise ConfigError(f"augment must be a mapping such as {{policy: 'color,translation,cutout', prob: 1.0}}, "
                          f"got {cfg!r}")
    unknown = set(cfg) - {"policy", "prob"}
    if unknown:
        raise ConfigError(f"unknown key 'augment.{sorted(unknown)[0]}' (valid: policy, prob)")
    return DiffAugment(**cfg)


__all__ = ["DiffAugment", "build_augment", "translation", "cutout", "brightness", "saturation", "contrast"]

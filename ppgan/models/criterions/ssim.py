"""PaddleGAN's SSIM criterion (`ppgan/models/criterions/ssim.py` there): a differentiable SSIM
with an 11x11 Gaussian window (sigma 1.5), zero padding and the mean over the map. PReNet's
config trains with it; a model minimises its negative (`higher_is_better`)."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from .builder import CRITERIONS


def gaussian_window(window_size, channels, sigma=1.5, dtype=torch.float32, device=None):
    """Normalised 2-D Gaussian [channels, 1, k, k] for a depthwise conv."""
    c = window_size // 2
    g = torch.tensor([math.exp(-((x - c) ** 2) / (2.0 * sigma ** 2)) for x in range(window_size)],
                     dtype=torch.float64)
    g = g / g.sum()
    w = (g[:, None] * g[None, :]).to(dtype=dtype, device=device)
    return w.expand(channels, 1, window_size, window_size).contiguous()


def ssim(img1, img2, window_size=11, size_average=True):
    """Differentiable SSIM of [N, C, H, W] images in [0, 1] (C1 = 0.01**2, C2 = 0.03**2), local
    statistics from a zero-padded Gaussian window. Returns the mean (a 0-dim tensor), or one value
    per image when not `size_average`."""
    if img1.shape != img2.shape or img1.ndim != 4:
        raise ValueError(f"ssim needs two [N, C, H, W] tensors of one shape, got {tuple(img1.shape)} "
                         f"and {tuple(img2.shape)}")
    ch = img1.shape[1]
    window = gaussian_window(window_size, ch, dtype=img1.dtype, device=img1.device)

    def filt(x):
        return F.conv2d(x, window, padding=window_size // 2, groups=ch)

    mu1, mu2 = filt(img1), filt(img2)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = filt(img1 * img1) - mu1_sq
    sigma2_sq = filt(img2 * img2) - mu2_sq
    sigma12 = filt(img1 * img2) - mu12
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    ssim_map = ((2 * mu12 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))
    return ssim_map.mean() if size_average else ssim_map.mean(dim=(1, 2, 3))


@CRITERIONS.register()
class SSIM(nn.Module):
    """PaddleGAN's SSIM criterion: `forward(pred, target)` is the SSIM (higher is better; a model
    minimises its negative, see `higher_is_better`).

    Args:
        window_size (int): Gaussian window side (default 11).
        size_average (bool): mean over the batch (default True) or one value per image.
    """

    higher_is_better = True

    def __init__(self, window_size=11, size_average=True):
        super().__init__()
        if window_size < 1 or window_size % 2 == 0:
            raise ValueError(f"SSIM window_size must be odd and >= 1, got {window_size}")
        self.window_size, self.size_average = int(window_size), bool(size_average)

    def forward(self, img1, img2):
        return ssim(img1, img2, self.window_size, self.size_average)

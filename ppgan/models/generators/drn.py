"""DRN: dual regression network for single-image super-resolution (the primal network), PaddleGAN layout.

Paper: Guo et al., "Closed-loop Matters: Dual Regression Networks for Single Image
Super-Resolution", CVPR 2020, https://arxiv.org/abs/2003.07018.
Reference: https://github.com/guoyongcs/DRN as ported by PaddleGAN `ppgan/models/generators/drn.py`.

The primal network works at the target size: the input is bicubically upsampled by max(scale),
pushed down `len(scale)` times by stride-2 `DownBlock`s (a U-Net-like encoder), then brought back
up phase by phase (RCAB blocks, x2 pixel shuffle, concatenation with the encoder copy), emitting
one image per level. The dual networks (`DownBlock`s mapping each output back to the level
below) live in the model (`ppgan.models.drn_model.DRN`).

Attribute names are PaddleGAN's (`sub_mean`, `head`, `down.<p>.dual_module.<i>`,
`up_blocks.<p>.<b>.body.3.conv_du.0`, `tail.<i>`, `add_mean`), so `.pdparams` load by name. The
mean-shift 1x1 convs are fixed (requires_grad False) but stored in PaddleGAN's checkpoints, so
they are loaded, not recomputed.
"""
import math
import re

import torch
import torch.nn.functional as F
from torch import nn

from ...modules.sr_blocks import Upsampler
from ...utils.errors import ConfigError
from .builder import GENERATORS
from .rcan import RCAB, RGB_MEAN, RGB_STD, MeanShift

__all__ = ["DownBlock", "DRNGenerator", "parse_scale"]


def _conv(cin, cout, kernel_size, bias=True):
    return nn.Conv2d(cin, cout, kernel_size, padding=kernel_size // 2, bias=bias)


def parse_scale(scale):
    """DRN's `scale` as a tuple (2, 4, ..., 2**phases).

    Accepts that tuple (or list), the string PaddleGAN's YAML gives for `scale: (2, 4)`, or the
    final factor alone (4 -> (2, 4)). Each phase doubles the size, so other tuples are refused.
    """
    value = scale
    if isinstance(value, str):
        parts = [p for p in re.split(r"[\s,()\[\]]+", value) if p]
        if not parts or not all(p.isdigit() for p in parts):
            raise ConfigError(f"DRN scale must look like (2, 4), got {scale!r}")
        value = [int(p) for p in parts]
        value = value[0] if len(value) == 1 else value
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 2 or value & (value - 1):
            raise ConfigError(f"DRN scale must be a power of two >= 2 or a tuple like (2, 4), got {scale!r}")
        value = [2 ** (i + 1) for i in range(int(math.log2(value)))]
    if not isinstance(value, (list, tuple)) or not value or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"DRN scale must be a power of two or a tuple like (2, 4), got {scale!r}")
    expected = tuple(2 ** (i + 1) for i in range(len(value)))
    if tuple(value) != expected:
        raise ConfigError(f"DRN scale must be {expected} for {len(value)} phase(s) (each doubles), got {scale!r}")
    return expected


class DownBlock(nn.Module):
    """Stride-2 downsampling by `scale` (log2(scale) stride-2 convs + LeakyReLU, then a conv):
    [N, in_channels, H, W] -> [N, out_channels, H / scale, W / scale] (rounded up). Biasless.
    The dual network of DRN, and the encoder steps of its primal network.

    Args:
        negval (float): LeakyReLU negative slope.
        n_feats (int): hidden channels when `nFeat` is None.
        n_colors (int): image channels (in / out channels when those are None).
        scale (int): power-of-two downsampling factor.
        nFeat (int | None): hidden channels (default n_feats).
        in_channels (int | None): input channels (default n_colors).
        out_channels (int | None): output channels (default n_colors).
    """

    def __init__(self, negval, n_feats, n_colors, scale, nFeat=None, in_channels=None, out_channels=None):
        super().__init__()
        scale = int(scale)
        if scale < 2 or scale & (scale - 1):
            raise ConfigError(f"DownBlock scale must be a power of two >= 2, got {scale}")
        nFeat = n_feats if nFeat is None else nFeat
        in_channels = n_colors if in_channels is None else in_channels
        out_channels = n_colors if out_channels is None else out_channels
        blocks = [nn.Sequential(nn.Conv2d(in_channels, nFeat, 3, stride=2, padding=1, bias=False),
                                nn.LeakyReLU(negval))]
        for _ in range(1, int(math.log2(scale))):
            blocks.append(nn.Sequential(nn.Conv2d(nFeat, nFeat, 3, stride=2, padding=1, bias=False),
                                        nn.LeakyReLU(negval)))
        blocks.append(nn.Conv2d(nFeat, out_channels, 3, stride=1, padding=1, bias=False))
        self.dual_module = nn.Sequential(*blocks)

    def forward(self, x):
        return self.dual_module(x)


@GENERATORS.register()
class DRNGenerator(nn.Module):
    """DRN primal network: [N, n_colors, H, W] -> list of len(scale) + 1 images
    [N, n_colors, H * 2**i, W * 2**i], i = 0 .. len(scale) (the last is the SR result).

    Inputs are images in [0, rgb_range] (PaddleGAN's config feeds [0, 255]); the DIV2K mean times
    `rgb_range` is subtracted after the bicubic upsampling and added back to every output. Any
    H, W (the encoder's stride-2 convs undo the exact x2**k upsampling).

    Args:
        scale (tuple[int] | str | int): (2, 4) for x4 (PaddleGAN writes `scale: (2, 4)`), (2,)
            for x2, (2, 4, 8) for x8; an int is read as its tuple (4 -> (2, 4)).
        n_blocks (int): RCAB blocks per up phase (default 30).
        n_feats (int): channels at full resolution; doubled per encoder step (default 16).
        n_colors (int): image channels (default 3).
        rgb_range (float): input value range (default 255).
        negval (float): LeakyReLU slope of the encoder (default 0.2).
        kernel_size (int): conv kernel size (default 3).
    """

    def __init__(self, scale, n_blocks=30, n_feats=16, n_colors=3, rgb_range: float = 255, negval=0.2, kernel_size=3):
        super().__init__()
        self.scale = parse_scale(scale)
        self.phase = phase = len(self.scale)
        if n_colors != 3:
            raise ConfigError(f"DRNGenerator needs n_colors=3 (its mean shift is RGB), got {n_colors}")
        if n_feats < 8:
            # channel attention squeezes by 16 and the narrowest RCAB has 2 * n_feats channels
            raise ConfigError(f"DRNGenerator n_feats must be >= 8, got {n_feats}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ConfigError(f"DRNGenerator kernel_size must be odd ('same' padding), got {kernel_size}")
        self.n_feats, self.n_colors, self.rgb_range, self.negval = n_feats, n_colors, rgb_range, negval
        k = kernel_size

        self.sub_mean = MeanShift(rgb_range, RGB_MEAN, RGB_STD)
        self.head = _conv(n_colors, n_feats, k)
        self.down = nn.ModuleList(
            DownBlock(negval, n_feats, n_colors, 2, n_feats * 2 ** p, n_feats * 2 ** p, n_feats * 2 ** (p + 1))
            for p in range(phase))

        # up phase i: RCABs and a x2 upsampler at `width` channels, then a 1x1 conv to the width of
        # the encoder copy it is concatenated with (so phase i > 0 sees twice the conv's output)
        up_blocks = []
        for i in range(phase):
            width = n_feats * 2 ** (phase - i + (i > 0))
            body = [RCAB(width, k) for _ in range(n_blocks)]
            body += [Upsampler(2, width), _conv(width, n_feats * 2 ** (phase - i - 1), 1)]
            up_blocks.append(nn.Sequential(*body))
        self.up_blocks = nn.ModuleList(up_blocks)

        self.tail = nn.ModuleList([_conv(n_feats * 2 ** phase, n_colors, k)]
                                  + [_conv(n_feats * 2 ** p, n_colors, k) for p in range(phase, 0, -1)])
        self.add_mean = MeanShift(rgb_range, RGB_MEAN, RGB_STD, 1)

    def forward(self, x):
        """x: [N, 3, H, W] in [0, rgb_range] -> [lowest, ..., SR]: len(scale) + 1 images."""
        if x.ndim != 4 or x.shape[1] != self.n_colors:
            raise ValueError(f"DRNGenerator needs [N, {self.n_colors}, H, W], got {tuple(x.shape)}")
        x = F.interpolate(x, scale_factor=self.scale[-1], mode="bicubic", align_corners=False)
        x = self.head(self.sub_mean(x))
        copies = []
        for down in self.down:
            copies.append(x)
            x = down(x)
        results = [self.add_mean(self.tail[0](x))]
        for i, up in enumerate(self.up_blocks):
            x = torch.cat((up(x), copies[self.phase - i - 1]), 1)
            results.append(self.add_mean(self.tail[i + 1](x)))
        return results

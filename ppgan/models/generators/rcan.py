"""RCAN: residual channel attention network for single-image super-resolution, PaddleGAN layout.

Paper: Zhang et al., "Image Super-Resolution Using Very Deep Residual Channel Attention
Networks", ECCV 2018, https://arxiv.org/abs/1807.02758.
Reference: https://github.com/yulunzhang/RCAN (EDSR-PyTorch code base) as ported by PaddleGAN
`ppgan/models/generators/rcan.py` (via kongdebug/RCAN-Paddle).

Attribute names are PaddleGAN's (`sub_mean`, `head.0`, `body.<g>.body.<b>.body.3.conv_du.0`,
`tail.0.0`, `add_mean`), so `.pdparams` load by name. The mean-shift 1x1 convs are fixed
(requires_grad False) but kept as parameters, as in PaddleGAN's checkpoints.
"""
import torch
from torch import nn

from ...utils.errors import ConfigError
from ...modules.sr_blocks import Upsampler, paddle_default_init_
from .builder import GENERATORS

RGB_MEAN = (0.4488, 0.4371, 0.4040)  # DIV2K mean, as EDSR / RCAN
RGB_STD = (1.0, 1.0, 1.0)


def default_conv(in_channels, out_channels, kernel_size, bias=True):
    """'same'-padded conv with Xavier-uniform weights and zero bias (PaddleGAN's `default_conv`)."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)
    nn.init.xavier_uniform_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


class MeanShift(nn.Conv2d):
    """Fixed 1x1 conv adding (sign=+1) or subtracting (sign=-1) `rgb_range * rgb_mean`, per
    channel divided by `rgb_std`: [N, 3, H, W] -> [N, 3, H, W]."""

    def __init__(self, rgb_range, rgb_mean, rgb_std, sign=-1):
        super().__init__(3, 3, kernel_size=1)
        std = torch.tensor(rgb_std, dtype=torch.float32)
        with torch.no_grad():
            self.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1) / std.reshape(3, 1, 1, 1))
            self.bias.copy_(sign * rgb_range * torch.tensor(rgb_mean, dtype=torch.float32) / std)
        self.requires_grad_(False)


class CALayer(nn.Module):
    """Channel attention: x * sigmoid(conv(relu(conv(global_avg_pool(x))))); [N, C, H, W] -> same.

    Args:
        channel (int): channels C.
        reduction (int): squeeze ratio of the bottleneck (default 16).
    """

    def __init__(self, channel, reduction=16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(
            nn.Conv2d(channel, channel // reduction, 1, padding=0, bias=True), nn.ReLU(),
            nn.Conv2d(channel // reduction, channel, 1, padding=0, bias=True), nn.Sigmoid())
        paddle_default_init_(self.conv_du)

    def forward(self, x):
        return x * self.conv_du(self.avg_pool(x))


class RCAB(nn.Module):
    """Residual channel attention block: x + CA(conv(relu(conv(x)))); [N, C, H, W] -> same.

    Args:
        n_feat (int): channels C.
        kernel_size (int): conv kernel size.
        reduction (int): channel-attention squeeze ratio (default 16).
        bias (bool): conv biases (default True).
        bn (bool): BatchNorm after each conv (default False).
    """

    def __init__(self, n_feat, kernel_size, reduction=16, bias=True, bn=False):
        super().__init__()
        body = []
        for i in range(2):
            body.append(default_conv(n_feat, n_feat, kernel_size, bias=bias))
            if bn:
                body.append(nn.BatchNorm2d(n_feat))
            if i == 0:
                body.append(nn.ReLU())
        body.append(CALayer(n_feat, reduction))
        self.body = nn.Sequential(*body)

    def forward(self, x):
        return self.body(x) + x


class ResidualGroup(nn.Module):
    """`n_resblocks` RCABs and a conv, with a skip: [N, C, H, W] -> same.

    Args:
        n_feat (int): channels C.
        kernel_size (int): conv kernel size.
        reduction (int): channel-attention squeeze ratio.
        n_resblocks (int): number of RCABs.
    """

    def __init__(self, n_feat, kernel_size, reduction, n_resblocks):
        super().__init__()
        body = [RCAB(n_feat, kernel_size, reduction) for _ in range(n_resblocks)]
        body.append(default_conv(n_feat, n_feat, kernel_size))
        self.body = nn.Sequential(*body)

    def forward(self, x):
        return self.body(x) + x


@GENERATORS.register()
class RCAN(nn.Module):
    """RCAN: [N, n_colors, H, W] -> [N, n_colors, scale*H, scale*W].

    Inputs are images in [0, rgb_range] (PaddleGAN's config feeds [0, 255]); the DIV2K mean
    times `rgb_range` is subtracted first and added back at the end. Any H, W.

    Args:
        scale (int): upscaling factor, 3 or a power of two.
        n_resgroups (int): residual groups (10 in the paper).
        n_resblocks (int): RCABs per group (20 in the paper).
        n_feats (int): feature channels (default 64).
        n_colors (int): image channels; the mean shift needs 3 (default 3).
        rgb_range (float): value range of the images (default 255).
        kernel_size (int): conv kernel size (default 3).
        reduction (int): channel-attention squeeze ratio (default 16).
    """

    def __init__(self, scale, n_resgroups, n_resblocks, n_feats=64, n_colors=3, rgb_range=255,
                 kernel_size=3, reduction=16):
        super().__init__()
        if n_colors != 3:
            raise ConfigError(f"RCAN's mean shift works on RGB: n_colors must be 3, got {n_colors}")
        if n_feats < reduction:
            raise ConfigError(f"n_feats ({n_feats}) must be at least reduction ({reduction})")
        self.scale = scale
        self.sub_mean = MeanShift(rgb_range, RGB_MEAN, RGB_STD, -1)
        self.head = nn.Sequential(default_conv(n_colors, n_feats, kernel_size))
        body = [ResidualGroup(n_feats, kernel_size, reduction, n_resblocks) for _ in range(n_resgroups)]
        body.append(default_conv(n_feats, n_feats, kernel_size))
        self.body = nn.Sequential(*body)
        upsampler = Upsampler(scale, n_feats)  # raises for unsupported scales
        for m in upsampler:
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        self.tail = nn.Sequential(upsampler, default_conv(n_feats, n_colors, kernel_size))
        self.add_mean = MeanShift(rgb_range, RGB_MEAN, RGB_STD, 1)

    def forward(self, x):
        """x: [N, 3, H, W] in [0, rgb_range] -> [N, 3, scale*H, scale*W]."""
        x = self.head(self.sub_mean(x))
        res = self.body(x) + x  # long skip over all residual groups
        return self.add_mean(self.tail(res))


"""LESRCNN generator, PaddleGAN layout.

Paper: Tian et al., "Lightweight Image Super-Resolution with Enhanced CNN",
Knowledge-Based Systems 205, 2020, https://arxiv.org/abs/2007.04344.
Reference: https://github.com/hellloxiaotian/LESRCNN and PaddleGAN
`ppgan/models/generators/lesrcnn.py`.

Attribute names follow PaddleGAN (`sub_mean.shifter`, `conv1.0` ... `conv17.0`,
`conv17_1.0` ... `conv17_4.0`, `conv18.0`, `upsample.up.body.<i>`), so `.pdparams` load by name.
"""
import torch
from torch import nn

from ...utils.errors import ConfigError
from ...modules.sr_blocks import Upsampler, paddle_default_init_
from .builder import GENERATORS

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


class MeanShift(nn.Module):
    """Adds (or subtracts) a per-channel RGB mean with a frozen 1x1 conv; [N, 3, H, W] -> same.

    The conv (identity weight, bias = +/- mean) is a real, non-trainable layer because PaddleGAN
    stores it in its checkpoints as `<name>.shifter.weight` / `.bias`, and loading takes its values.

    Args:
        mean_rgb (tuple[float]): the three channel means.
        sub (bool): subtract (True) or add (False) the mean.
    """

    def __init__(self, mean_rgb, sub):
        super().__init__()
        sign = -1.0 if sub else 1.0
        self.shifter = nn.Conv2d(3, 3, 1, 1, 0)
        with torch.no_grad():
            self.shifter.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1))
            self.shifter.bias.copy_(sign * torch.tensor(mean_rgb, dtype=torch.float32))
        self.shifter.requires_grad_(False)

    def forward(self, x):
        return self.shifter(x)


class _UpsampleBlock(nn.Module):
    """`body`: conv + pixel-shuffle upsampler of 64-channel features by `scale`."""

    def __init__(self, n_channels, scale, group=1):
        super().__init__()
        self.body = Upsampler(scale, n_channels, groups=group)

    def forward(self, x):
        return self.body(x)


class UpsampleBlock(nn.Module):
    """One upsampler (`up`), or one per scale 2/3/4 (`up2`, `up3`, `up4`) when `multi_scale`.

    Args:
        n_channels (int): feature channels C; [N, C, H, W] -> [N, C, s*H, s*W].
        scale (int): the single scale (ignored when `multi_scale`).
        multi_scale (bool): build x2, x3 and x4 upsamplers, chosen per call.
        group (int): conv groups.
    """

    def __init__(self, n_channels, scale, multi_scale, group=1):
        super().__init__()
        self.multi_scale = multi_scale
        if multi_scale:
            self.up2 = _UpsampleBlock(n_channels, 2, group)
            self.up3 = _UpsampleBlock(n_channels, 3, group)
            self.up4 = _UpsampleBlock(n_channels, 4, group)
        else:
            self.up = _UpsampleBlock(n_channels, scale, group)

    def forward(self, x, scale):
        if self.multi_scale:
            return getattr(self, f"up{scale}")(x)
        return self.up(x)


def _conv(in_ch, out_ch, kernel_size, relu):
    """PaddleGAN's `nn.Sequential(Conv2D(bias=False)[, ReLU])`, so weights are `<name>.0.weight`."""
    layers = [nn.Conv2d(in_ch, out_ch, kernel_size, 1, kernel_size // 2, bias=False)]
    return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)


@GENERATORS.register()
class LESRCNNGenerator(nn.Module):
    """LESRCNN: [N, 3, H, W] RGB in [0, 1] -> [N, 3, s*H, s*W] (not clamped).

    An information-extraction chain of eight (3x3 conv + ReLU, 1x1 conv) residual pairs on 64
    channels, a shared pixel-shuffle upsampler applied to both the chain's output and the first
    layer's features (summed), then four 3x3 conv + ReLU and a 3x3 conv to RGB. Convs start from
    Paddle's default init; the mean shifters are frozen.

    Args:
        scale (int): upscaling factor: 2, 3, 4 (default) or 8; with `multi_scale`, the default
            scale of `forward` (2, 3 or 4).
        multi_scale (bool): build x2, x3 and x4 upsamplers and pick one per `forward` call
            (default False).
        group (int): accepted for PaddleGAN config compatibility and ignored, as in PaddleGAN
            (its upsampler is built with group=1 whatever this says), so its checkpoints load.
    """

    SUPPORTED_SCALES = (2, 3, 4, 8)
    MULTI_SCALES = (2, 3, 4)

    def __init__(self, scale=4, multi_scale=False, group=1):
        super().__init__()
        allowed = self.MULTI_SCALES if multi_scale else self.SUPPORTED_SCALES
        if scale not in allowed:
            raise ConfigError(f"LESRCNNGenerator(multi_scale={multi_scale}) scale must be one of "
                             f"{allowed}, got {scale!r}")
        self.scale = scale
        self.multi_scale = multi_scale
        features = 64

        self.sub_mean = MeanShift(DIV2K_RGB_MEAN, sub=True)
        self.add_mean = MeanShift(DIV2K_RGB_MEAN, sub=False)
        self.conv1 = _conv(3, features, 3, relu=False)
        # conv2..conv17: eight residual pairs, even = 3x3 conv + ReLU, odd = 1x1 conv.
        for i in range(2, 18):
            setattr(self, f"conv{i}", _conv(features, features, 3 if i % 2 == 0 else 1, relu=i % 2 == 0))
        for i in range(1, 5):
            setattr(self, f"conv17_{i}", _conv(features, features, 3, relu=True))
        self.conv18 = _conv(features, 3, 3, relu=False)
        self.ReLU = nn.ReLU()
        self.upsample = UpsampleBlock(features, scale=scale, multi_scale=multi_scale, group=1)
        for child in self.children():
            if not isinstance(child, MeanShift):
                paddle_default_init_(child)

    def forward(self, x, scale=None):
        """x: [N, 3, H, W] -> [N, 3, s*H, s*W]; `scale` picks the upsampler of a multi-scale net."""
        if scale is None:
            scale = self.scale
        allowed = self.MULTI_SCALES if self.multi_scale else (self.scale,)
        if scale not in allowed:
            raise ConfigError(f"this LESRCNNGenerator runs at scale {allowed}, got {scale!r}")
        x = self.sub_mean(x)
        x1 = self.conv1(x)
        feat = x1
        for i in range(2, 18, 2):  # feat + conv_{i+1}(conv_i(relu(feat)))
            feat = feat + getattr(self, f"conv{i + 1}")(getattr(self, f"conv{i}")(self.ReLU(feat)))
        # The same upsampler serves the deep features and the first layer's (long skip).
        up = self.upsample(self.ReLU(x1), scale) + self.upsample(self.ReLU(feat), scale)
        out = self.ReLU(up)
        for i in range(1, 5):
            out = getattr(self, f"conv17_{i}")(out)
        return self.add_mean(self.conv18(out))

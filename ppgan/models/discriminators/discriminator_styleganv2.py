"""StyleGAN2 residual discriminator (Karras et al., CVPR 2020, https://arxiv.org/abs/1912.04958,
config F), PaddleGAN layout.

Reference implementations: NVlabs/stylegan2-ada-pytorch `training/networks.py`
(`DiscriminatorBlock`, `MinibatchStdLayer`) and rosinality/stylegan2-pytorch, which PaddleGAN's
`discriminator_styleganv2.py` follows; sub-module names are PaddleGAN's (`convs.<i>`,
`final_conv`, `final_linear`) so its `.pdparams` load by name.
"""
import math

import torch
from torch import nn

from ...modules.equalized import EqualConv2D, EqualLinear
from ...modules.fused_act import FusedLeakyReLU
from ...modules.upfirdn2d import Upfirdn2dBlur
from ...utils.errors import ConfigError
from ..generators.generator_styleganv2 import check_size, stylegan_channels
from .builder import DISCRIMINATORS


def minibatch_stddev(x, group_size=4, num_features=1, eps=1e-8):
    """Append the minibatch standard deviation as `num_features` extra channels (Karras et al.
    2018, section 3): within groups of `group_size` samples, the std of every feature over the
    group, averaged over channels (per feature split) and pixels.

    The group is the largest divisor of the batch that is <= group_size (PaddleGAN fails on
    batches not divisible by min(batch, 4)); samples i, i + N/G, i + 2N/G, ... form a group, as
    PaddleGAN / stylegan2-ada.

    Args:
        x (Tensor): [N, C, H, W], C divisible by num_features.
    Returns:
        Tensor: [N, C + num_features, H, W].
    """
    batch, channel, height, width = x.shape
    group = min(batch, group_size)
    while batch % group:
        group -= 1
    y = x.reshape(group, -1, num_features, channel // num_features, height, width)
    y = torch.sqrt(y.var(0, unbiased=False) + eps)  # [N/G, F, C/F, H, W]
    y = y.mean([2, 3, 4], keepdim=True).squeeze(2)  # [N/G, F, 1, 1]
    y = y.repeat(group, 1, height, width)  # [N, F, H, W]
    return torch.cat([x, y], 1)


class ConvLayer(nn.Sequential):
    """[FIR blur + stride 2 when downsampling] -> EqualConv2D -> [FusedLeakyReLU].

    With `activate` the bias lives in the FusedLeakyReLU (`<i>.bias`), else in the conv, as
    PaddleGAN.
    """

    def __init__(self, in_channel, out_channel, kernel_size, downsample=False, blur_kernel=(1, 3, 3, 1), bias=True,
                 activate=True):
        layers = []
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Upfirdn2dBlur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2D(in_channel, out_channel, kernel_size, padding=padding, stride=stride,
                                  bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_channel, bias=bias))
        super().__init__(*layers)
        self.padding = padding


class ResBlock(nn.Module):
    """Two 3x3 ConvLayers (the second downsamples) plus a 1x1 downsampling skip, summed / sqrt 2.
    (As PaddleGAN, the convolutions use the default [1, 3, 3, 1] blur whatever `blur_kernel` is.)"""

    def __init__(self, in_channel, out_channel, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.conv1 = ConvLayer(in_channel, in_channel, 3)
        self.conv2 = ConvLayer(in_channel, out_channel, 3, downsample=True)
        self.skip = ConvLayer(in_channel, out_channel, 1, downsample=True, activate=False, bias=False)

    def forward(self, input):
        out = self.conv2(self.conv1(input))
        return (out + self.skip(input)) / math.sqrt(2)


@DISCRIMINATORS.register()
class StyleGANv2Discriminator(nn.Module):
    """StyleGAN2 residual discriminator: image [N, 3, size, size] -> logits [N, 1].

    Args:
        size (int): input resolution, a power of two in 4..1024.
        channel_multiplier (int): width of the >= 64 px layers (default 2).
        blur_kernel (list): FIR taps (default [1, 3, 3, 1]).
        narrow (float): scale every layer's channels (default 1.0 = PaddleGAN's widths). Not a
            PaddleGAN argument of this class.
    """

    def __init__(self, size, channel_multiplier=2, blur_kernel=(1, 3, 3, 1), narrow=1.0):
        super().__init__()
        check_size(size, "StyleGANv2Discriminator")
        self.size = size
        channels = stylegan_channels(channel_multiplier, narrow)
        convs = [ConvLayer(3, channels[size], 1)]
        in_channel = channels[size]
        for i in range(int(math.log2(size)), 2, -1):
            out_channel = channels[2 ** (i - 1)]
            convs.append(ResBlock(in_channel, out_channel, blur_kernel))
            in_channel = out_channel
        self.convs = nn.Sequential(*convs)
        self.stddev_group = 4
        self.stddev_feat = 1
        self.final_conv = ConvLayer(in_channel + 1, channels[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(channels[4] * 4 * 4, channels[4], activation="fused_lrelu"),
            EqualLinear(channels[4], 1),
        )

    def forward(self, input):
        if input.ndim != 4 or input.shape[1] != 3 or input.shape[2:] != (self.size, self.size):
            raise ConfigError(f"StyleGANv2Discriminator(size={self.size}) expects [N, 3, {self.size}, {self.size}] "
                              f"images, got {list(input.shape)}")
        out = self.convs(input)
        out = minibatch_stddev(out, self.stddev_group, self.stddev_feat)
        out = self.final_conv(out)
        return self.final_linear(out.reshape(out.shape[0], -1))

"""Progressive-growing GAN discriminator (Karras et al., ICLR 2018,
https://arxiv.org/abs/1710.10196; reference tkarras/progressive_growing_of_gans `networks.py`,
`D_paper`): the mirror of `PGGANGenerator`.

Per resolution a 1x1 fromRGB, two 3x3 convs and 2x average pooling; the 4x4 block appends the
minibatch standard deviation (section 3), then conv 3x3, dense and a linear output. Equalised
learning rate everywhere, leaky ReLU 0.2, no normalisation. While a resolution fades in:
    h = alpha * block_d(fromRGB_d(x)) + (1 - alpha) * fromRGB_{d-1}(avgpool2(x)).
"""
import math

import torch.nn.functional as F
from torch import nn

from ...modules.equalized import EqualConv2D, EqualLinear
from ...modules.fused_act import FusedLeakyReLU
from ...utils.errors import ConfigError
from ..generators.generator_pggan import check_depth, pggan_channels
from .builder import DISCRIMINATORS
from .discriminator_styleganv2 import minibatch_stddev


def _conv(in_channel, out_channel, kernel_size):
    return nn.Sequential(EqualConv2D(in_channel, out_channel, kernel_size, padding=kernel_size // 2, bias=False),
                         FusedLeakyReLU(out_channel))


@DISCRIMINATORS.register()
class PGGANDiscriminator(nn.Module):
    """PGGAN discriminator for images of 4x4 up to `size`.

    Args:
        size (int): final resolution, a power of two >= 4.
        in_channels (int): image channels (default 3).
        fmap_base (int), fmap_decay (float), fmap_max (int): as `PGGANGenerator`.
        mbstd_group_size (int): minibatch-stddev group (default 4; 0 disables it).
    forward(x [N, in_channels, R, R], depth=None, alpha=1.0) -> logits [N, 1], with
        R = 4 * 2^depth (depth None: the final size).
    """

    def __init__(self, size, in_channels=3, fmap_base=8192, fmap_decay=1.0, fmap_max=512, mbstd_group_size=4):
        super().__init__()
        if size < 4 or size & (size - 1):
            raise ConfigError(f"PGGANDiscriminator size must be a power of two >= 4, got {size}")
        self.size = size
        self.in_channels = in_channels
        self.max_depth = int(math.log2(size)) - 2
        self.mbstd_group_size = mbstd_group_size
        nf = [pggan_channels(d + 1, fmap_base, fmap_decay, fmap_max) for d in range(self.max_depth + 1)]
        self.channels = nf
        self.from_rgbs = nn.ModuleList([_conv(in_channels, c, 1) for c in nf])
        # blocks[d] takes depth d's features (nf[d], 4*2^d px) to depth d-1's (nf[d-1], half size)
        self.blocks = nn.ModuleList([nn.Identity()])
        for d in range(1, self.max_depth + 1):
            self.blocks.append(nn.Sequential(_conv(nf[d], nf[d], 3), _conv(nf[d], nf[d - 1], 3)))
        extra = 1 if mbstd_group_size > 0 else 0
        self.final_conv = _conv(nf[0] + extra, nf[0], 3)
        self.final_linear = nn.Sequential(EqualLinear(nf[0] * 16, nf[0], activation="fused_lrelu"),
                                          EqualLinear(nf[0], 1))

    def forward(self, x, depth=None, alpha=1.0):
        depth = self.max_depth if depth is None else depth
        check_depth(depth, self.max_depth, alpha, "PGGANDiscriminator")
        res = 4 * 2 ** depth
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[2:] != (res, res):
            raise ConfigError(f"PGGANDiscriminator at depth {depth} expects [N, {self.in_channels}, {res}, {res}] "
                              f"images, got {list(x.shape)}")
        h = self.from_rgbs[depth](x)
        if depth > 0:
            h = F.avg_pool2d(self.blocks[depth](h), 2)
            if alpha < 1:
                h = alpha * h + (1 - alpha) * self.from_rgbs[depth - 1](F.avg_pool2d(x, 2))
        for d in range(depth - 1, 0, -1):
            h = F.avg_pool2d(self.blocks[d](h), 2)
        if self.mbstd_group_size > 0:
            h = minibatch_stddev(h, self.mbstd_group_size)
        h = self.final_conv(h)
        return self.final_linear(h.reshape(h.shape[0], -1))

"""Progressive-growing GAN generator (Karras et al., "Progressive Growing of GANs for Improved
Quality, Stability, and Variation", ICLR 2018, https://arxiv.org/abs/1710.10196; reference
implementation tkarras/progressive_growing_of_gans `networks.py`, `G_paper`).

PaddleGAN has no PGGAN; the layout is the paper's: z -> pixel norm -> dense to 4x4 -> conv 3x3,
then per resolution nearest 2x upsampling and two 3x3 convs, every conv followed by leaky ReLU
(0.2) and pixel norm; one 1x1 toRGB per resolution. All layers have an equalised learning rate
(`ppgan.modules.equalized`). While a resolution fades in, the output blends the new block's RGB
with the nearest-upsampled RGB of the previous resolution:
    out = alpha * toRGB_d(block_d(x)) + (1 - alpha) * up2(toRGB_{d-1}(x)).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ...modules.equalized import EqualConv2D, EqualLinear
from ...modules.fused_act import FusedLeakyReLU
from ...utils.errors import ConfigError
from .builder import GENERATORS
from .generator_styleganv2 import PixelNorm


def pggan_channels(stage, fmap_base=8192, fmap_decay=1.0, fmap_max=512):
    """Feature maps at `stage` (resolution 2 ** (stage + 1)): min(fmap_base / 2^(stage*decay), fmap_max)."""
    return max(1, min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max))


def check_depth(depth, max_depth, alpha, what):
    if not isinstance(depth, int) or not 0 <= depth <= max_depth:
        raise ConfigError(f"{what} depth must be an int in 0..{max_depth}, got {depth!r}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ConfigError(f"{what} alpha must be in [0, 1], got {alpha}")


class PGGANConvBlock(nn.Sequential):
    """Equalised conv (no bias) -> bias + leaky ReLU 0.2 (x sqrt 2) [-> pixel norm]."""

    def __init__(self, in_channel, out_channel, kernel_size, pixel_norm=True):
        layers = [EqualConv2D(in_channel, out_channel, kernel_size, padding=kernel_size // 2, bias=False),
                  FusedLeakyReLU(out_channel)]
        if pixel_norm:
            layers.append(PixelNorm())
        super().__init__(*layers)


@GENERATORS.register()
class PGGANGenerator(nn.Module):
    """PGGAN generator growing from 4x4 to `size`.

    Args:
        size (int): final resolution, a power of two >= 4.
        latent_dim (int): size of z (default 512).
        out_channels (int): image channels (default 3).
        fmap_base (int), fmap_decay (float), fmap_max (int): channels per resolution R are
            min(fmap_base / (R/2) ** fmap_decay, fmap_max) (defaults 8192, 1.0, 512 = the paper's).
        normalize_latent (bool): pixel-normalise z first (default True).
    forward(z [N, latent_dim] (or [N, latent_dim, 1, 1]), depth=None, alpha=1.0):
        depth 0..max_depth gives images [N, out_channels, 4 * 2^depth, 4 * 2^depth] (None: the
        final size); alpha in [0, 1] fades in the depth's block (1: the block alone). Output is
        linear (no tanh), as in the paper.
    """

    def __init__(self, size, latent_dim=512, out_channels=3, fmap_base=8192, fmap_decay=1.0, fmap_max=512,
                 normalize_latent=True):
        super().__init__()
        if size < 4 or size & (size - 1):
            raise ConfigError(f"PGGANGenerator size must be a power of two >= 4, got {size}")
        self.size = size
        self.latent_dim = latent_dim
        self.max_depth = int(math.log2(size)) - 2
        nf = [pggan_channels(d + 1, fmap_base, fmap_decay, fmap_max) for d in range(self.max_depth + 1)]
        self.channels = nf
        self.normalize = PixelNorm() if normalize_latent else nn.Identity()
        # 4x4 block: dense z -> [C, 4, 4] (the paper's 4x4 "conv" on a 1x1 input), conv 3x3
        self.dense = EqualLinear(latent_dim, nf[0] * 16, bias=False)
        self.dense_act = FusedLeakyReLU(nf[0])
        self.blocks = nn.ModuleList([PGGANConvBlock(nf[0], nf[0], 3)])
        for d in range(1, self.max_depth + 1):
            self.blocks.append(nn.Sequential(PGGANConvBlock(nf[d - 1], nf[d], 3), PGGANConvBlock(nf[d], nf[d], 3)))
        self.to_rgbs = nn.ModuleList([EqualConv2D(c, out_channels, 1) for c in nf])
        self.pixel_norm = PixelNorm()

    def random_inputs(self, batch_size, generator=None, device=None):
        """z [batch_size, latent_dim] ~ N(0, 1)."""
        return torch.randn(batch_size, self.latent_dim, generator=generator, device=device)

    def forward(self, z, depth=None, alpha=1.0):
        depth = self.max_depth if depth is None else depth
        check_depth(depth, self.max_depth, alpha, "PGGANGenerator")
        z = self.normalize(z.reshape(z.shape[0], -1))
        x = self.dense(z).reshape(z.shape[0], self.channels[0], 4, 4)
        x = self.blocks[0](self.pixel_norm(self.dense_act(x)))
        prev = None
        for d in range(1, depth + 1):
            if d == depth:
                prev = x
            x = self.blocks[d](F.interpolate(x, scale_factor=2, mode="nearest"))
        out = self.to_rgbs[depth](x)
        if prev is not None and alpha < 1:
            skip = F.interpolate(self.to_rgbs[depth - 1](prev), scale_factor=2, mode="nearest")
            out = alpha * out + (1 - alpha) * skip
        return out

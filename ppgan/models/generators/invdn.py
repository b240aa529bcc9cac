"""InvDN: invertible denoising network (Liu et al., CVPR 2021, https://arxiv.org/abs/2104.10546),
PaddleGAN's `InvDN`.

An invertible network: `down_num` levels of a Haar wavelet step (C -> 4C channels at half size)
followed by `block_num[i]` affine coupling blocks (`InvBlockExp`). Run forward on a noisy image
it gives a latent whose first `channel_out` channels are a clean low-resolution image and the
rest hold the noise; `forward(x, noise)` keeps the low-resolution part, replaces the rest with
`noise` (a fresh Gaussian sample: the latent resampling done at test time too) and runs the
network backwards to a clean full-size image. `transform(x, rev)` runs one direction alone;
`transform(transform(x), rev=True)` gives x back up to float rounding.

Weights: PaddleGAN's names (`operations.<i>...`). The Haar filters (`operations.<i>.haar_weights`,
a frozen parameter in PaddleGAN) are a buffer here, saved and loaded with the weights like
PaddleGAN's, not recomputed. H and W must be multiples of `scale` (`size_multiple`).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ...utils.errors import ConfigError
from .builder import GENERATORS


@torch.no_grad()
def _paddle_kaiming_uniform_(conv):
    """PaddleGAN's ResBlock init, KaimingUniform(negative_slope=sqrt(5)) on weight and bias:
    weight uniform +-1/sqrt(fan_in); Paddle takes a 1-D bias's fan_in as its length, so the
    bias is uniform +-1/sqrt(out_channels)."""
    fan_in = conv.weight[0].numel()
    nn.init.uniform_(conv.weight, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
    bound = 1 / math.sqrt(conv.bias.numel())
    nn.init.uniform_(conv.bias, -bound, bound)


class ResBlock(nn.Module):
    """The coupling sub-network: two 64-channel conv + LeakyReLU(0.2), then a conv of
    [input, features] to `channel_out` channels."""

    def __init__(self, channel_in, channel_out, feature=64):
        super().__init__()
        self.conv1 = nn.Conv2d(channel_in, feature, 3, padding=1)
        self.relu1 = nn.LeakyReLU(0.2)
        self.conv2 = nn.Conv2d(feature, feature, 3, padding=1)
        self.conv3 = nn.Conv2d(feature + channel_in, channel_out, 3, padding=1)
        for c in (self.conv1, self.conv2, self.conv3):
            _paddle_kaiming_uniform_(c)

    def forward(self, x):
        residual = self.relu1(self.conv2(self.relu1(self.conv1(x))))
        return self.conv3(torch.cat((x, residual), 1))


class InvBlockExp(nn.Module):
    """Affine coupling on a split (x1: the first `channel_split_num` channels, x2: the rest):
    y1 = x1 + F(x2); y2 = x2 * exp(s) + G(y1) with s = clamp * (2 sigmoid(H(y1)) - 1); exactly
    invertible."""

    def __init__(self, subnet_constructor, channel_num, channel_split_num, clamp=1.0):
        super().__init__()
        self.split_len1 = channel_split_num
        self.split_len2 = channel_num - channel_split_num
        self.clamp = clamp
        self.F = subnet_constructor(self.split_len2, self.split_len1)
        self.G = subnet_constructor(self.split_len1, self.split_len2)
        self.H = subnet_constructor(self.split_len1, self.split_len2)

    def _scale(self, y1):
        return self.clamp * (torch.sigmoid(self.H(y1)) * 2 - 1)

    def forward(self, x, rev=False):
        x1, x2 = x[:, : self.split_len1], x[:, self.split_len1: self.split_len1 + self.split_len2]
        if not rev:
            y1 = x1 + self.F(x2)
            y2 = x2 * torch.exp(self._scale(y1)) + self.G(y1)
        else:
            y2 = (x2 - self.G(x1)) / torch.exp(self._scale(x1))
            y1 = x1 - self.F(y2)
        return torch.cat((y1, y2), 1)


def haar_filters(channel_in):
    """The Haar analysis filters [4 * channel_in, 1, 2, 2]: average, then the three detail bands,
    repeated for each channel (what PaddleGAN stores in `haar_weights`)."""
    w = torch.ones(4, 1, 2, 2)
    w[1, 0, 0, 1] = w[1, 0, 1, 1] = -1
    w[2, 0, 1, 0] = w[2, 0, 1, 1] = -1
    w[3, 0, 1, 0] = w[3, 0, 0, 1] = -1
    return torch.cat([w] * channel_in, 0)


class HaarDownsampling(nn.Module):
    """One Haar wavelet step, [N, C, H, W] -> [N, 4C, H/2, W/2] ordered band-major (all channels'
    averages first), and its exact inverse (`rev`)."""

    def __init__(self, channel_in):
        super().__init__()
        self.channel_in = channel_in
        self.register_buffer("haar_weights", haar_filters(channel_in))

    def forward(self, x, rev=False):
        n, c, h, w = x.shape
        if not rev:
            out = F.conv2d(x, self.haar_weights.to(x.dtype), stride=2, groups=self.channel_in) / 4.0
            out = out.reshape(n, self.channel_in, 4, h // 2, w // 2).transpose(1, 2)
            return out.reshape(n, self.channel_in * 4, h // 2, w // 2)
        out = x.reshape(n, 4, self.channel_in, h, w).transpose(1, 2).reshape(n, self.channel_in * 4, h, w)
        return F.conv_transpose2d(out, self.haar_weights.to(x.dtype), stride=2, groups=self.channel_in)


@GENERATORS.register()
class InvDN(nn.Module):
    """Args (PaddleGAN's):
        channel_in (int): image channels (3).
        channel_out (int): latent channels kept as the clean low-resolution image (3).
        block_num (list[int]): coupling blocks after each Haar step ([8, 8]).
        scale (int): total down-scaling, a power of 2 equal to 2 ** down_num (4).
        down_num (int): Haar steps (2).
    `forward(x, noise=None)` -> (restored [N, channel_in, H, W], latent [N, channel_in * 4 **
    down_num, H / scale, W / scale]); `noise` [N, >= noise_channels, >= H / scale, >= W / scale]
    (cropped to the latent's size, PaddleGAN's full-size noise fits), None: a standard normal
    sample. The clean low-resolution image is `latent[:, :channel_out]`.
    """

    def __init__(self, channel_in=3, channel_out=3, block_num=(8, 8), scale=4, down_num=2):
        super().__init__()
        down = math.log2(scale) if scale and scale > 0 else -1
        if down != int(down) or int(down) != down_num or down_num < 1:
            raise ConfigError(f"InvDN needs scale = 2 ** down_num; got scale {scale}, down_num {down_num}")
        if len(block_num) < down_num:
            raise ConfigError(f"InvDN block_num needs {down_num} entries (one per Haar step); got {list(block_num)}")
        self.down_num = int(down_num)
        self.channel_in, self.channel_out = int(channel_in), int(channel_out)
        self.size_multiple = int(scale)
        operations = []
        channels = self.channel_in
        for i in range(self.down_num):
            operations.append(HaarDownsampling(channels))
            channels *= 4
            operations += [InvBlockExp(ResBlock, channels, self.channel_out) for _ in range(block_num[i])]
        self.operations = nn.ModuleList(operations)
        self.latent_channels = channels
        self.noise_channels = channels - self.channel_out

    def transform(self, x, rev=False):
        """All operations forward (image -> latent), or backward with `rev` (latent -> image)."""
        for op in (reversed(self.operations) if rev else self.operations):
            x = op(x, rev)
        return x

    def forward(self, x, noise=None):
        h, w = x.shape[-2:]
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(f"InvDN needs H and W multiples of {self.size_multiple}; got {h}x{w}")
        lq = self.transform(x)
        n, _, lh, lw = lq.shape
        if noise is None:
            noise = torch.randn(n, self.noise_channels, lh, lw, device=x.device, dtype=x.dtype)
        noise = noise[:, : self.noise_channels, :lh, :lw]
        out = self.transform(torch.cat((lq[:, : self.channel_out], noise), 1), rev=True)
        return out, lq

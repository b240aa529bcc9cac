"""Building blocks shared by the super-resolution generators (PaddleGAN layout).

`make_layer` stacks blocks for RRDBNet (`RRDB_trunk.<i>`), PAN (`SCPA_trunk.block<i>`) and the
video SR nets; `Upsampler` is the EDSR-style conv + pixel-shuffle upsampler of LESRCNN, RCAN and
DRN (Lim et al., "Enhanced Deep Residual Networks for Single Image Super-Resolution", CVPRW 2017,
https://arxiv.org/abs/1707.02921); `PixelShufflePack` and `ResidualBlockNoBN` are the blocks of
EDVR / BasicVSR / IconVSR. Sub-module names follow PaddleGAN (`ppgan/models/generators/
{lesrcnn,basicvsr,edvr}.py`), itself following BasicSR `basicsr/archs/arch_util.py`, so
`.pdparams` checkpoints load by name.
"""
import math

import torch
from torch import nn
from ..utils.errors import ConfigError


def paddle_default_init_(module):
    """Initialise every Conv2d under `module` as Paddle's `nn.Conv2D` does by default.

    Paddle draws conv weights from N(0, sqrt(2 / (k_h * k_w * in_channels))) and sets biases to 0;
    PaddleGAN's SR generators train from that init, PyTorch's default is a smaller uniform.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]  # Paddle ignores groups here
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_in))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def make_layer(block, num_blocks, name_fmt=None, **kwargs):
    """Stack `num_blocks` instances of `block(**kwargs)` in an `nn.Sequential`.

    Args:
        block (callable): returns an `nn.Module` when called with `**kwargs`.
        num_blocks (int): number of blocks (>= 0).
        name_fmt (str | None): child name pattern, e.g. 'block{}' (PaddleGAN `make_multi_blocks`,
            names 'block0', 'block1', ...); None gives '0', '1', ... (PaddleGAN `make_layer`).
        **kwargs: constructor arguments for every block.
    Returns:
        nn.Sequential: the blocks, applied in order.
    """
    if num_blocks < 0:
        raise ConfigError(f"num_blocks must be >= 0, got {num_blocks}")
    seq = nn.Sequential()
    for i in range(num_blocks):
        seq.add_module(str(i) if name_fmt is None else name_fmt.format(i), block(**kwargs))
    return seq


class Upsampler(nn.Sequential):
    """Conv + pixel-shuffle upsampler: [N, C, H, W] -> [N, C, s*H, s*W].

    Scale 2**k uses k stages of (conv C -> 4C, PixelShuffle(2)); scale 3 one stage of
    (conv C -> 9C, PixelShuffle(3)). No activation between stages. Children are numbered
    '0' (conv), '1' (shuffle), '2' (conv), ... as in PaddleGAN.

    Args:
        scale (int): upsampling factor, 3 or a power of two >= 2.
        num_feat (int): channels C of input and output.
        kernel_size (int): conv kernel size (default 3, 'same' padding).
        groups (int): conv groups (default 1).
        bias (bool): conv bias (default True).
    """

    def __init__(self, scale, num_feat, kernel_size=3, groups=1, bias=True):
        if scale == 3:
            factors = [3]
        elif scale >= 2 and scale & (scale - 1) == 0:
            factors = [2] * int(math.log2(scale))
        else:
            raise ConfigError(f"Upsampler scale must be 3 or a power of two >= 2, got {scale}")
        layers = []
        for f in factors:
            layers += [nn.Conv2d(num_feat, f * f * num_feat, kernel_size, 1, kernel_size // 2,
                                 groups=groups, bias=bias),
                       nn.PixelShuffle(f)]
        super().__init__(*layers)
        self.scale = scale


class PixelShufflePack(nn.Module):
    """One conv then PixelShuffle: [N, in_channels, H, W] -> [N, out_channels, s*H, s*W].

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        scale_factor (int): upsampling factor s.
        upsample_kernel (int): conv kernel size (odd; 'same' padding).
    """

    def __init__(self, in_channels, out_channels, scale_factor, upsample_kernel):
        super().__init__()
        self.scale_factor = scale_factor
        self.upsample_conv = nn.Conv2d(in_channels, out_channels * scale_factor * scale_factor,
                                       upsample_kernel, padding=(upsample_kernel - 1) // 2)
        self.pixel_shuffle = nn.PixelShuffle(scale_factor)
        _scaled_kaiming_(self.upsample_conv, 1.0)

    def forward(self, x):
        return self.pixel_shuffle(self.upsample_conv(x))


class ResidualBlockNoBN(nn.Module):
    """Conv-ReLU-Conv residual block without normalisation: x + res_scale * conv2(relu(conv1(x))).

    Args:
        nf (int): channels (default 64); shape [N, nf, H, W] in and out.
        res_scale (float): residual scale (default 1.0).
    """

    def __init__(self, nf=64, res_scale=1.0):
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.relu = nn.ReLU()
        if res_scale == 1.0:
            # Small residual branch at init (BasicSR/PaddleGAN: kaiming * 0.1) keeps deep stacks stable.
            _scaled_kaiming_(self.conv1, 0.1)
            _scaled_kaiming_(self.conv2, 0.1)

    def forward(self, x):
        return x + self.conv2(self.relu(self.conv1(x))) * self.res_scale


@torch.no_grad()
def _scaled_kaiming_(conv, scale):
    nn.init.kaiming_normal_(conv.weight)
    conv.weight.mul_(scale)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)

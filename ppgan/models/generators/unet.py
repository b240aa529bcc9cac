"""U-Net generator of pix2pix (Isola et al., 2017, https://arxiv.org/abs/1611.07004), PaddleGAN layout.

Reference: PaddleGAN ppgan/models/generators/unet.py (after junyanz/pytorch-CycleGAN-and-pix2pix).
Sub-module names follow PaddleGAN (`model.model.1.model.3...`), so `.pdparams` load by name.
"""
import torch
from torch import nn

from ...utils.errors import ConfigError
from ...modules.blocks import build_translation_norm_layer
from .builder import GENERATORS


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: x -> concat([x, up(sub(down(x)))]) (the outermost level returns no concat).

    `model` is a Sequential, as in PaddleGAN:
        outermost: [Conv(0), sub(1), ReLU, ConvT(3, with bias), Tanh]
        innermost: [LeakyReLU, Conv(1), ReLU, ConvT(3), norm(4)]
        otherwise: [LeakyReLU, Conv(1), norm(2), sub(3), ReLU, ConvT(5), norm(6), (Dropout)]

    Args:
        outer_nc (int): channels this level returns to (before the skip concat).
        inner_nc (int): channels of its down conv.
        input_nc (int | None): input channels (default: outer_nc).
        submodule (nn.Module | None): the next level inwards (None for the innermost).
        outermost, innermost (bool): position in the U.
        norm_layer (callable): `f(num_features) -> nn.Module`.
        use_bias (bool): biases of the down conv and the inner up convs.
        use_dropout (bool): Dropout(0.5) at the end of the middle levels.
    """

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False,
                 innermost=False, norm_layer=nn.BatchNorm2d, use_bias=False, use_dropout=False):
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, 2, 1, bias=use_bias)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1)
            layers = [downconv, submodule, nn.ReLU(), upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, 2, 1, bias=use_bias)
            layers = [nn.LeakyReLU(0.2), downconv, nn.ReLU(), upconv, norm_layer(outer_nc)]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=use_bias)
            layers = [nn.LeakyReLU(0.2), downconv, norm_layer(inner_nc), submodule,
                      nn.ReLU(), upconv, norm_layer(outer_nc)]
            layers += [nn.Dropout(0.5)] if use_dropout else []
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)  # skip first, as PaddleGAN


@GENERATORS.register()
class UnetGenerator(nn.Module):
    """U-Net: image [N, input_nc, H, W] -> image [N, output_nc, H, W] in [-1, 1].

    H and W must be multiples of 2**num_downs (num_downs=8: 256x256 -> 1x1 at the bottleneck).

    Args:
        input_nc (int): input channels.
        output_nc (int): output channels.
        num_downs (int): stride-2 downsamplings, >= 5 (the five outer levels always exist).
        ngf (int): channels of the outermost conv (default 64); inner levels go up to 8 * ngf.
        norm_type (str): 'batch' (default; batch statistics in eval mode too, as PaddleGAN),
            'instance' (fixed affine; convs get biases) or 'none'.
        use_dropout (bool): Dropout(0.5) in the 8 * ngf middle levels (default False).
    """

    def __init__(self, input_nc, output_nc, num_downs, ngf=64, norm_type="batch", use_dropout=False):
        super().__init__()
        self.size_multiple = 2 ** num_downs  # H, W needed by the encoder (see ppgan.utils.inference)
        if num_downs < 5:
            raise ConfigError(f"num_downs must be >= 5, got {num_downs}")
        self.num_downs = num_downs
        norm_layer, use_bias = build_translation_norm_layer(norm_type)
        kw = dict(norm_layer=norm_layer, use_bias=use_bias)
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, **kw)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=use_dropout, **kw)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, **kw)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, **kw)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, **kw)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block,
                                             outermost=True, **kw)

    def forward(self, input):
        h, w = input.shape[-2:]
        m = 2 ** self.num_downs
        if h % m or w % m:
            raise ConfigError(f"UnetGenerator(num_downs={self.num_downs}) needs H and W divisible by {m}, "
                             f"got {h}x{w}")
        return self.model(input)

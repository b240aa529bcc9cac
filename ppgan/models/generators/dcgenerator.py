"""DCGAN generator (Radford et al., 2015, https://arxiv.org/abs/1511.06434), PaddleGAN layout.

Sub-module names follow PaddleGAN's `DCGenerator` (`model.<i>`), so `.pdparams` load by name.
"""
import math

import torch
from torch import nn

from ...utils.errors import ConfigError
from ...modules.norm import build_norm_layer
from .builder import GENERATORS


@GENERATORS.register()
class DCGenerator(nn.Module):
    """Transposed-conv generator: z [N, input_nz, 1, 1] -> image [N, output_nc, S, S] in [-1, 1].

    Args:
        input_nz (int): latent size.
        input_nc (int): accepted for PaddleGAN config compatibility; unused.
        output_nc (int): output channels.
        ngf (int): channels of the last hidden layer (default 64); earlier layers double it.
        norm_type (str): 'batch' (default), 'instance' or 'none'.
        padding_type (str): accepted for PaddleGAN compatibility; unused.
        output_size (int): S, a power of two >= 8 (default 64, PaddleGAN's only size).
    """

    def __init__(self, input_nz, input_nc, output_nc, ngf=64, norm_type="batch",
                 padding_type="reflect", output_size=64):
        super().__init__()
        if output_size < 8 or output_size & (output_size - 1):
            raise ConfigError(f"output_size must be a power of two >= 8, got {output_size}")
        self.input_nz = input_nz
        # PaddleGAN's batch branch uses plain BatchNorm2D (running stats in eval mode).
        norm_layer = nn.BatchNorm2d if norm_type == "batch" else build_norm_layer(norm_type)
        n_mid = int(math.log2(output_size)) - 3  # stride-2 blocks between the 4x4 seed and the last layer
        mult = 2 ** n_mid
        # PaddleGAN: use_bias is False for every norm_type (its partial() never equals BatchNorm2D).
        layers = [nn.ConvTranspose2d(input_nz, ngf * mult, 4, 1, 0, bias=False),
                  norm_layer(ngf * mult), nn.ReLU()]
        for i in range(n_mid):
            m = 2 ** (n_mid - i)
            layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 4, 2, 1, bias=False),
                       norm_layer(ngf * m // 2), nn.ReLU()]
        layers += [nn.ConvTranspose2d(ngf, output_nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def random_inputs(self, batch_size, generator=None, device=None):
        return torch.randn(batch_size, self.input_nz, 1, 1, generator=generator, device=device)

    def forward(self, x):
        if x.ndim == 2:
            x = x[:, :, None, None]
        return self.model(x)

"""DCGAN discriminator (Radford et al., 2015), PaddleGAN layout (`model.<i>`)."""
import math

from torch import nn

from ...utils.errors import ConfigError
from ...modules.norm import build_norm_layer
from .builder import DISCRIMINATORS


@DISCRIMINATORS.register()
class DCDiscriminator(nn.Module):
    """image [N, input_nc, S, S] -> raw logit [N, 1, 1, 1] (no sigmoid).

    Args:
        input_nc (int): input channels.
        ndf (int): channels of the first conv (default 64); doubled per level up to 8x.
        norm_type (str): 'batch', 'instance' (default, as PaddleGAN) or 'none'.
        input_size (int): S, a power of two >= 8 (default 64, PaddleGAN's only size).
    """

    def __init__(self, input_nc, ndf=64, norm_type="instance", input_size=64):
        super().__init__()
        if input_size < 8 or input_size & (input_size - 1):
            raise ConfigError(f"input_size must be a power of two >= 8, got {input_size}")
        # PaddleGAN's batch branch uses plain BatchNorm2D (running stats in eval mode).
        norm_layer = nn.BatchNorm2d if norm_type == "batch" else build_norm_layer(norm_type)
        n_down = int(math.log2(input_size)) - 2  # stride-2 convs down to 4x4
        # PaddleGAN quirk kept for checkpoint compatibility: the first conv has no bias; the
        # middle convs have one only with batch norm.
        layers = [nn.Conv2d(input_nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_down):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=norm_type == "batch"),
                       norm_layer(ndf * mult), nn.LeakyReLU(0.2)]
        layers += [nn.Conv2d(ndf * mult, 1, 4, 1, 0)]
        self.model = nn.Sequential(*layers)

    def forward(self, input):
        return self.model(input)

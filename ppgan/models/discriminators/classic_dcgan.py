"""Discriminator of the classic 32x32 RGB DCGAN recipe (Chollet, 2017, ch. 8.5)."""
from torch import nn

from ...utils.errors import ConfigError
from .builder import DISCRIMINATORS


@DISCRIMINATORS.register()
class ClassicDCDiscriminator(nn.Module):
    """conv 3x3, three conv 4x4 stride 2, dropout, one logit (no sigmoid).

    Args:
        input_nc (int): input channels (default 3).
        ndf (int): conv channels (default 128).
        size (int): input size, divisible by 8 (default 32).
        dropout (float): dropout before the logit (default 0.4).
    """

    def __init__(self, input_nc=3, ndf=128, size=32, dropout=0.4):
        super().__init__()
        if size % 8:
            raise ConfigError(f"size must be divisible by 8, got {size}")
        self.convs = nn.Sequential(
            nn.Conv2d(input_nc, ndf, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(ndf, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(ndf, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(ndf, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(ndf * (size // 8) ** 2, 1))

    def forward(self, x):
        return self.head(self.convs(x))

"""The classic 32x32 RGB DCGAN recipe (Chollet, "Deep Learning with Python", 2017, ch. 8.5),
as trained on the CIFAR-10 frog class: dense seed at half resolution, 5x5 convs, one 4x4
stride-2 transposed conv, LeakyReLU throughout, 7x7 tanh output."""
import torch
from torch import nn

from ...utils.errors import ConfigError
from .builder import GENERATORS


@GENERATORS.register()
class ClassicDCGenerator(nn.Module):
    """z [N, latent_dim] -> image [N, output_nc, size, size] in [-1, 1].

    Args:
        latent_dim (int): latent size (default 32).
        output_nc (int): output channels (default 3).
        size (int): output size, even (default 32).
        dense_channels (int): channels of the dense seed at size/2 (default 128).
        conv_channels (int): channels of the conv layers (default 256).
    """

    def __init__(self, latent_dim=32, output_nc=3, size=32, dense_channels=128, conv_channels=256):
        super().__init__()
        if size % 2:
            raise ConfigError(f"size must be even, got {size}")
        self.latent_dim, self.half, self.dense_channels = latent_dim, size // 2, dense_channels
        self.dense = nn.Sequential(nn.Linear(latent_dim, dense_channels * self.half ** 2), nn.LeakyReLU(0.2))
        c = conv_channels
        self.convs = nn.Sequential(
            nn.Conv2d(dense_channels, c, 5, padding=2), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(c, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(c, c, 5, padding=2), nn.LeakyReLU(0.2),
            nn.Conv2d(c, c, 5, padding=2), nn.LeakyReLU(0.2),
            nn.Conv2d(c, output_nc, 7, padding=3), nn.Tanh(),
        )

    def random_inputs(self, batch_size, generator=None, device=None):
        return torch.randn(batch_size, self.latent_dim, generator=generator, device=device)

    def forward(self, z):
        x = self.dense(z).view(z.shape[0], self.dense_channels, self.half, self.half)
        return self.convs(x)

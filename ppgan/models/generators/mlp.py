"""Fully-connected GAN generator with a low-dimensional latent (Goodfellow et al., 2014).

With `latent_dim=2` the whole latent plane can be drawn as one image grid (the classic
"latent space walk" figure): `latent_grid(n)` gives the n x n latents, evenly spaced in
probability under the prior (normal quantiles, or a uniform grid for a uniform prior).
"""
import numpy as np
import torch
from torch import nn

from ...utils.errors import ConfigError
from .builder import GENERATORS


@GENERATORS.register()
class MLPGenerator(nn.Module):
    """z [N, latent_dim] -> MLP -> image [N, output_nc, size, size] in [-1, 1].

    Args:
        latent_dim (int): latent size (default 2).
        output_nc (int): output channels (default 1).
        size (int): output image size (default 32).
        hidden_dims (list[int]): hidden layer widths (default [256, 512]).
        latent_dist (str): prior, 'normal' (default) or 'uniform' on [-1, 1].
    """

    def __init__(self, latent_dim=2, output_nc=1, size=32, hidden_dims=(256, 512), latent_dist="normal"):
        super().__init__()
        if latent_dist not in ("normal", "uniform"):
            raise ConfigError(f"latent_dist must be 'normal' or 'uniform', got {latent_dist!r}")
        self.latent_dim, self.output_nc, self.size, self.latent_dist = latent_dim, output_nc, size, latent_dist
        layers, prev = [], latent_dim
        for h in hidden_dims:
            layers += [nn.Linear(prev, h), nn.BatchNorm1d(h), nn.LeakyReLU(0.2)]
            prev = h
        layers += [nn.Linear(prev, output_nc * size * size), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def random_inputs(self, batch_size, generator=None, device=None):
        if self.latent_dist == "normal":
            return torch.randn(batch_size, self.latent_dim, generator=generator, device=device)
        return torch.rand(batch_size, self.latent_dim, generator=generator, device=device) * 2 - 1

    def latent_grid(self, n=16, extent=0.95):
        """n*n latents covering the plane (row-major, first latent varies along a row).

        Only for latent_dim == 2. `extent` is the probability mass covered per axis."""
        if self.latent_dim != 2:
            raise ConfigError("latent_grid needs latent_dim == 2")
        q = np.linspace((1 - extent) / 2, 1 - (1 - extent) / 2, n)
        axis = torch.special.ndtri(torch.from_numpy(q)).numpy() if self.latent_dist == "normal" else 2 * q - 1
        yy, xx = np.meshgrid(axis[::-1], axis, indexing="ij")
        return torch.from_numpy(np.stack([xx.ravel(), yy.ravel()], 1).astype(np.float32))

    def forward(self, z):
        return self.model(z).view(z.shape[0], self.output_nc, self.size, self.size)

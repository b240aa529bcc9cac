"""Variational auto-encoder nets (Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014).

`VAEEncoder` maps an image to the mean and log-variance of a diagonal Gaussian q(z|x);
`VAEDecoder` maps a latent z to the parameters of p(x|z). The decoder is registered as a
generator with `random_inputs` (z ~ N(0, I), the prior) and, for 2-D latents, `latent_grid`
(the same grid as `MLPGenerator`'s), so `GANPredictor` / `applications/tools/gan_generate.py`
draw samples, interpolations and the whole latent plane from a VAE weight file's `netG` exactly
as from the 2-D-latent GAN's. The ELBO itself is in `ppgan/models/vae_model.py`.

Reference code read for facts: the paper's appendix C (MLP encoder/decoder, Gaussian q(z|x),
Bernoulli p(x|z) for binarised MNIST) and pytorch/examples `vae/main.py` (the closed-form KL).
"""
import torch
from torch import nn

from ...utils.errors import ConfigError
from .builder import GENERATORS
from .mlp import MLPGenerator

ARCHS = ("mlp", "conv")


def _check(arch, size, latent_dim):
    if arch not in ARCHS:
        raise ConfigError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}")
    if int(latent_dim) < 1:
        raise ConfigError(f"latent_dim must be >= 1, got {latent_dim}")
    if arch == "conv" and (size < 8 or size % 4):
        raise ConfigError(f"arch 'conv' needs a size divisible by 4 and >= 8, got {size}")


@GENERATORS.register()
class VAEEncoder(nn.Module):
    """image [N, input_nc, size, size] in [-1, 1] -> (mu [N, latent_dim], logvar [N, latent_dim]).

    Args:
        input_nc (int): image channels (default 1).
        size (int): image side (default 32).
        latent_dim (int): latent size (default 2).
        hidden_dims (list[int]): MLP widths, first layer first (default [512, 256]); for
            arch 'conv' the two conv widths (stride 2 each) then one linear width.
        arch (str): 'mlp' (default, the paper's) or 'conv'.
    """

    def __init__(self, input_nc=1, size=32, latent_dim=2, hidden_dims=(512, 256), arch="mlp"):
        super().__init__()
        _check(arch, size, latent_dim)
        hidden_dims = list(hidden_dims)
        self.latent_dim, self.arch = int(latent_dim), arch
        if arch == "mlp":
            layers, prev = [nn.Flatten()], input_nc * size * size
            for h in hidden_dims:
                layers += [nn.Linear(prev, h), nn.LeakyReLU(0.2)]
                prev = h
        else:
            if len(hidden_dims) != 3:
                raise ConfigError(f"arch 'conv' needs hidden_dims [conv1, conv2, linear], got {hidden_dims}")
            c1, c2, h = hidden_dims
            layers = [nn.Conv2d(input_nc, c1, 4, 2, 1), nn.LeakyReLU(0.2),
                      nn.Conv2d(c1, c2, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(),
                      nn.Linear(c2 * (size // 4) ** 2, h), nn.LeakyReLU(0.2)]
            prev = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(prev, 2 * self.latent_dim)  # [mu | logvar]

    def forward(self, x):
        mu, logvar = self.head(self.body(x)).chunk(2, dim=1)
        return mu, logvar


@GENERATORS.register()
class VAEDecoder(nn.Module):
    """z [N, latent_dim] -> image [N, output_nc, size, size] in [-1, 1].

    `logits(z)` gives the pre-activation `a`; the image is `tanh(a / 2) = 2 * sigmoid(a) - 1`,
    i.e. the Bernoulli mean sigmoid(a) mapped to [-1, 1] (the ELBO's BCE term reads `a` as
    logits; its Gaussian term reads the image as the mean).

    Args:
        latent_dim (int): latent size (default 2).
        output_nc (int): image channels (default 1).
        size (int): image side (default 32).
        hidden_dims (list[int]): MLP widths, first layer first (default [256, 512]); for
            arch 'conv' one linear width then the two transposed-conv widths.
        arch (str): 'mlp' (default) or 'conv'.
    """

    latent_dist = "normal"  # the prior, for `latent_grid`
    latent_grid = MLPGenerator.latent_grid  # the 2-D-latent GAN's plane: normal quantiles per axis

    def __init__(self, latent_dim=2, output_nc=1, size=32, hidden_dims=(256, 512), arch="mlp"):
        super().__init__()
        _check(arch, size, latent_dim)
        hidden_dims = list(hidden_dims)
        self.latent_dim, self.output_nc, self.size, self.arch = int(latent_dim), output_nc, size, arch
        if arch == "mlp":
            layers, prev = [], self.latent_dim
            for h in hidden_dims:
                layers += [nn.Linear(prev, h), nn.LeakyReLU(0.2)]
                prev = h
            layers += [nn.Linear(prev, output_nc * size * size)]
        else:
            if len(hidden_dims) != 3:
                raise ConfigError(f"arch 'conv' needs hidden_dims [linear, conv1, conv2], got {hidden_dims}")
            h, c1, c2 = hidden_dims
            s = size // 4
            layers = [nn.Linear(self.latent_dim, h), nn.LeakyReLU(0.2),
                      nn.Linear(h, c1 * s * s), nn.LeakyReLU(0.2), nn.Unflatten(1, (c1, s, s)),
                      nn.ConvTranspose2d(c1, c2, 4, 2, 1), nn.LeakyReLU(0.2),
                      nn.ConvTranspose2d(c2, output_nc, 4, 2, 1)]
        self.model = nn.Sequential(*layers)

    def random_inputs(self, batch_size, generator=None, device=None):
        """z ~ N(0, I): [batch_size, latent_dim]."""
        return torch.randn(batch_size, self.latent_dim, generator=generator, device=device)

    def logits(self, z):
        return self.model(z).view(z.shape[0], self.output_nc, self.size, self.size)

    def forward(self, z):
        return torch.tanh(0.5 * self.logits(z))

"""DCGAN generator (Radford et al., 2015, https://arxiv.org/abs/1511.06434), PaddleGAN layout.

Sub-module names follow PaddleGAN's `DCGenerator` (`model.<i>`), so `.pdparams` load by name.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ...utils.errors import ConfigError
from ...modules.improved_gan import VirtualBatchNorm2d
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
        norm_type (str): 'batch' (default), 'instance', 'none' or 'virtual_batch' (virtual batch
            norm, Salimans et al. 2016: every forward also runs a reference batch of latents
            drawn once at construction, kept in the buffer `vbn_ref_z` so checkpoints hold it).
        padding_type (str): accepted for PaddleGAN compatibility; unused.
        output_size (int): S, a power of two >= 8 (default 64, PaddleGAN's only size).
        vbn_ref_size (int): reference batch size for 'virtual_batch' (default 32).
        vbn_seed (int): seed of the reference latents (default 20160610, an arbitrary large seed:
            not one of the small seeds that sample grids and evaluation tools draw latents with,
            whose first latents would then be the reference batch's; the adversarial loss never
            sees the reference rows' images, and in a test run G turned them, and those samples,
            into noise).
        n_categorical (int): K > 0 adds InfoGAN's categorical code (Chen et al., 2016): a one-hot
            vector of K values drawn uniformly, appended to the noise (the first layer takes
            input_nz + K channels). Unsupervised: `GANModel` makes the code recoverable from the
            image (its `netQ`), so the code becomes a factor of variation of its own. Default 0
            (PaddleGAN's generator). Codes are drawn from the buffer `code_prior` (relative
            weights, uniform at first; a self-conditioned `GANModel` sets it to its clusters'
            sizes, so samples follow the data's mix of clusters). Files saved before the
            buffer existed load with the uniform prior.
    """

    optional_state_keys = ("code_prior",)  # may be absent from a file: `_load_from_state_dict` fills it

    def __init__(self, input_nz, input_nc, output_nc, ngf=64, norm_type="batch",
                 padding_type="reflect", output_size=64, vbn_ref_size=32, vbn_seed=20160610,
                 n_categorical=0):
        super().__init__()
        if output_size < 8 or output_size & (output_size - 1):
            raise ConfigError(f"output_size must be a power of two >= 8, got {output_size}")
        if int(n_categorical) < 0 or int(n_categorical) == 1:
            raise ConfigError(f"n_categorical must be 0 (off) or >= 2, got {n_categorical}")
        self.input_nz = input_nz
        self.n_categorical = int(n_categorical)
        self.output_nc = output_nc
        self.vbn_ref_size = 0
        if self.n_categorical:
            self.register_buffer("code_prior", torch.ones(self.n_categorical))
        if norm_type == "virtual_batch":
            if int(vbn_ref_size) < 1:
                raise ConfigError(f"vbn_ref_size must be >= 1, got {vbn_ref_size}")
            self.vbn_ref_size = int(vbn_ref_size)
            gen = torch.Generator().manual_seed(int(vbn_seed))
            ref = torch.randn(self.vbn_ref_size, input_nz, 1, 1, generator=gen)
            if self.n_categorical:
                codes = torch.arange(self.vbn_ref_size) % self.n_categorical
                ref = torch.cat([ref, F.one_hot(codes, self.n_categorical).to(ref.dtype)[:, :, None, None]], 1)
            self.register_buffer("vbn_ref_z", ref)

            def norm_layer(c):
                return VirtualBatchNorm2d(c, self.vbn_ref_size)
        else:
            # PaddleGAN's batch branch uses plain BatchNorm2D (running stats in eval mode).
            norm_layer = nn.BatchNorm2d if norm_type == "batch" else build_norm_layer(norm_type)
        n_mid = int(math.log2(output_size)) - 3  # stride-2 blocks between the 4x4 seed and the last layer
        mult = 2 ** n_mid
        # PaddleGAN: use_bias is False for every norm_type (its partial() never equals BatchNorm2D).
        layers = [nn.ConvTranspose2d(input_nz + self.n_categorical, ngf * mult, 4, 1, 0, bias=False),
                  norm_layer(ngf * mult), nn.ReLU()]
        for i in range(n_mid):
            m = 2 ** (n_mid - i)
            layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 4, 2, 1, bias=False),
                       norm_layer(ngf * m // 2), nn.ReLU()]
        layers += [nn.ConvTranspose2d(ngf, output_nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def random_inputs(self, batch_size, generator=None, device=None, codes=None):
        """z [N, input_nz (+ K), 1, 1]: standard normal noise, then the one-hot code if any (the
        given `codes` [N], else codes drawn from `code_prior`)."""
        z = torch.randn(batch_size, self.input_nz, 1, 1, generator=generator, device=device)
        if not self.n_categorical:
            return z
        if codes is None:
            codes = self.random_codes(batch_size, generator=generator, device=device)
        return self.with_code(z, codes)

    def random_codes(self, batch_size, generator=None, device=None):
        """[N] int64 code values drawn from `code_prior` (on `device`; drawn where `generator` lives)."""
        where = generator.device if generator is not None else device
        prior = self.code_prior.to(where if where is not None else self.code_prior.device)
        codes = torch.multinomial(prior, batch_size, replacement=True, generator=generator)
        return codes.to(device) if device is not None else codes

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "code_prior"
        if self.n_categorical and key not in state_dict:  # an InfoGAN file from before the prior
            state_dict[key] = torch.ones(self.n_categorical)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def with_code(self, noise, codes):
        """Latents from noise [N, input_nz(, 1, 1)] and code values [N] int64 in 0..K-1."""
        onehot = F.one_hot(codes.to(noise.device).long(), self.n_categorical).to(noise.dtype)
        return torch.cat([noise.reshape(noise.shape[0], -1), onehot], 1)[:, :, None, None]

    def code_of(self, z):
        """The categorical code values [N] of latents z (argmax of the one-hot part)."""
        return z.reshape(z.shape[0], -1)[:, self.input_nz:].argmax(1)

    def forward(self, x):
        if x.ndim == 2:
            x = x[:, :, None, None]
        if self.vbn_ref_size:  # the reference batch runs first; its rows are dropped at the end
            r = self.vbn_ref_size
            return self.model(torch.cat([self.vbn_ref_z.to(x.dtype), x]))[r:]
        return self.model(x)

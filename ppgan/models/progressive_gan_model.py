"""Progressive growing of GANs (Karras et al., ICLR 2018, https://arxiv.org/abs/1710.10196).

Training starts at 4x4 and grows to the nets' `size` one resolution at a time. Each new
resolution first fades in for `fade_iters` iterations (alpha rises linearly from 0 to 1: the
new block's output is blended with the upsampled output of the previous resolution, in G and
mirrored in D), then trains alone for `stable_iters`. The schedule is a function of the
trainer's iteration alone, so `--resume` continues it exactly; after the last phase training
goes on at the full size. Real images are box-downsampled to the current resolution and, during
a fade-in, blended with their 2x-coarser version in the same proportion as the fakes (the
paper's smooth transition of the training data).

Loss: WGAN-GP with the drift term, as in the paper (D: D(fake) - D(real) + gp_weight * GP +
drift * D(real)^2; G: -D(fake)) when `gan_criterion.gan_mode` is 'wgangp' (the default);
with 'vanilla' / 'logistic' / 'lsgan' / 'hinge' the criterion is used as is, without GP or drift.
The equalised learning rate, pixel norm and minibatch stddev are in the nets
(PGGANGenerator / PGGANDiscriminator). The generator's moving average `netG_ema` (the paper's
Gs, decay 0.999) makes the sample grids. Adam's state is reset when a new resolution starts
(the reference implementation's `reset_opt_for_new_lod`).
"""
import copy

import torch
import torch.nn.functional as F

from ..utils.errors import ConfigError
from .base_model import BaseModel
from .builder import MODELS
from .criterions.builder import build_criterion
from .criterions.gan_loss import gradient_penalty
from .discriminators.builder import build_discriminator
from .ema import ema_update
from .generators.builder import build_generator

PARAM_KEYS = ("fade_iters", "stable_iters", "start_depth", "gp_weight", "drift", "ema_decay", "reset_optimizer",
              "n_samples", "samples_every_row", "sample_seed")


def phase_at(it, max_depth, fade_iters, stable_iters, start_depth=0):
    """(depth, alpha) at iteration `it`: depth `start_depth` stable, then for every further depth
    a fade-in (alpha (k + 1) / fade_iters at its k-th iteration) and a stable phase."""
    depth, left = start_depth, it - stable_iters
    if left < 0:
        return depth, 1.0
    while depth < max_depth:
        depth += 1
        if left < fade_iters:
            return depth, (left + 1) / fade_iters
        left -= fade_iters + stable_iters
        if left < 0:
            return depth, 1.0
    return max_depth, 1.0


def resize_real(real, depth, alpha):
    """Reals at resolution 4 * 2 ** depth (box filter), blended during a fade-in with their
    2x-downsampled, nearest-upsampled version (weight 1 - alpha)."""
    size = 4 * 2 ** depth
    if real.shape[-1] != size:
        real = F.adaptive_avg_pool2d(real, size) if real.shape[-1] % size else F.avg_pool2d(real, real.shape[-1] // size)
    if alpha < 1 and depth > 0:
        coarse = F.interpolate(F.avg_pool2d(real, 2), scale_factor=2, mode="nearest")
        real = alpha * real + (1 - alpha) * coarse
    return real


@MODELS.register()
class ProgressiveGAN(BaseModel):
    """Args:
        generator (dict): a PGGANGenerator config (forward(z, depth, alpha), `max_depth`, `latent_dim`).
        discriminator (dict | None): a PGGANDiscriminator config (forward(x, depth, alpha)).
        gan_criterion (dict | None): GANLoss config; default {gan_mode: wgangp}.
        params (dict): fade_iters / stable_iters (iterations of each fade-in and stable phase;
            default 600 / 600), start_depth (default 0 = 4x4), gp_weight (default 10), drift
            (epsilon_drift, default 0.001), ema_decay (netG_ema, default 0.999), reset_optimizer
            (clear Adam's state at every new resolution, default true), n_samples /
            samples_every_row / sample_seed (the fixed sample grid, default 32 / 8 / 0).
        image_key (str | None): the batch entry with the images (default 'img', else 'A').
    Batches: {'img': [N, C, size, size] in [-1, 1]} at the final size.
    """

    def __init__(self, generator, discriminator=None, gan_criterion=None, params=None, image_key=None):
        super().__init__(params)
        self.check_param_keys(PARAM_KEYS)
        p = self.params
        self.fade_iters = int(p.get("fade_iters", 600))
        self.stable_iters = int(p.get("stable_iters", 600))
        self.start_depth = int(p.get("start_depth", 0))
        self.gp_weight = float(p.get("gp_weight", 10.0))
        self.drift = float(p.get("drift", 0.001))
        self.ema_decay = float(p.get("ema_decay", 0.999))
        self.reset_optimizer = bool(p.get("reset_optimizer", True))
        self.n_samples = int(p.get("n_samples", 32))
        self.samples_every_row = int(p.get("samples_every_row", 8))
        self.sample_seed = int(p.get("sample_seed", 0))
        if self.fade_iters < 1 or self.stable_iters < 0:
            raise ConfigError("model.params.fade_iters must be >= 1 and stable_iters >= 0")
        if not 0.0 <= self.ema_decay <= 1.0:
            raise ConfigError(f"model.params.ema_decay must be in [0, 1], got {self.ema_decay}")
        self.image_key = image_key

        gen = build_generator(generator)
        self.max_depth = int(gen.max_depth)
        if not 0 <= self.start_depth <= self.max_depth:
            raise ConfigError(f"model.params.start_depth must be in 0..{self.max_depth}, got {self.start_depth}")
        self.latent_dim = int(gen.latent_dim)
        self.nets["netG"] = gen
        if discriminator:
            disc = build_discriminator(discriminator)
            if int(getattr(disc, "max_depth", self.max_depth)) != self.max_depth:
                raise ConfigError("model.discriminator.size must equal model.generator.size")
            self.nets["netD"] = disc
            self.nets["netG_ema"] = copy.deepcopy(gen)
            self.nets["netG_ema"].requires_grad_(False)
        self.criterionGAN = build_criterion(gan_criterion or {"name": "GANLoss", "gan_mode": "wgangp"})
        self._fixed_z = None
        self.real = None

    def train(self):
        super().train()
        if "netG_ema" in self.nets:
            self.nets["netG_ema"].eval()

    def phase(self, it=None):
        """(depth, alpha) of iteration `it` (default: the current one)."""
        it = self.current_iter if it is None else it
        return phase_at(it, self.max_depth, self.fade_iters, self.stable_iters, self.start_depth)

    @property
    def total_phase_iters(self):
        """Iterations until the last resolution has faded in and been trained stably."""
        return self.stable_iters + (self.max_depth - self.start_depth) * (self.fade_iters + self.stable_iters)

    # ---- inputs ---------------------------------------------------------------------------
    def setup_input(self, input):
        self.real = self.image_batch(input, self.image_key)

    # ---- training -------------------------------------------------------------------------
    def train_iter(self, optimizers=None):
        net_g, net_d, crit = self.nets["netG"], self.nets["netD"], self.criterionGAN
        opt_g, opt_d = self.optimizer_for("netG", optimizers), self.optimizer_for("netD", optimizers)
        depth, alpha = self.phase()
        if self.reset_optimizer and self.current_iter > 0 and self.phase(self.current_iter - 1)[0] != depth:
            for opt in (opt_g, opt_d):
                opt.state.clear()
        real = resize_real(self.real, depth, alpha)
        z = torch.randn(real.shape[0], self.latent_dim, device=self.device)
        fake = net_g(z, depth, alpha)

        # D step
        opt_d.zero_grad(set_to_none=True)
        pred_fake = net_d(fake.detach(), depth, alpha).float()
        pred_real = net_d(real, depth, alpha).float()
        if crit.gan_mode == "wgangp":
            l_fake, l_real = pred_fake.mean(), -pred_real.mean()
            with torch.autocast(self.device.type, enabled=False):
                gp = gradient_penalty(net_d, real.float(), fake.float(), depth, alpha, weight=self.gp_weight)
            drift = self.drift * pred_real.pow(2).mean()
            total = l_fake + l_real + gp + drift
            losses = {"D_fake_loss": l_fake.detach(), "D_real_loss": l_real.detach(), "D_gp_loss": gp.detach(),
                      "D_drift_loss": drift.detach()}
        else:
            l_fake, l_real = crit(pred_fake, False, is_disc=True), crit(pred_real, True, is_disc=True)
            total = l_fake + l_real
            losses = {"D_fake_loss": l_fake.detach(), "D_real_loss": l_real.detach()}
        self.backward(total)
        self.optimizer_step(opt_d)

        # G step
        opt_g.zero_grad(set_to_none=True)
        with self.frozen(net_d):
            loss_g = crit(net_d(fake, depth, alpha).float(), True)
            self.backward(loss_g)
        self.optimizer_step(opt_g)
        losses["G_adv_loss"] = loss_g.detach()
        self.accumulate()
        self.fake = self.keep(fake)
        self.depth, self.alpha = depth, alpha
        return losses

    @torch.no_grad()
    def accumulate(self, decay=None):
        """netG_ema <- decay * netG_ema + (1 - decay) * netG (parameters; buffers copied)."""
        if "netG_ema" not in self.nets:
            return
        decay = self.ema_decay if decay is None else decay
        ema, gen = self.nets["netG_ema"], self.nets["netG"]
        ema_update(ema, gen, 1.0 - decay)

    # ---- sampling / evaluation ------------------------------------------------------------
    @torch.no_grad()
    def sample(self, z, depth=None, alpha=None, full_size=True):
        """Images of netG_ema (netG without a discriminator) for z at the current phase (or
        `depth`/`alpha`), nearest-upsampled to the final size when `full_size`."""
        net = self.nets.get("netG_ema", self.nets["netG"])
        cur_depth, cur_alpha = self.phase()
        depth = cur_depth if depth is None else depth
        alpha = (cur_alpha if depth == cur_depth else 1.0) if alpha is None else alpha
        img = net(z, depth, alpha)
        if full_size and depth < self.max_depth:
            img = F.interpolate(img, scale_factor=2 ** (self.max_depth - depth), mode="nearest")
        return img

    def fixed_noise(self):
        if self._fixed_z is None:
            gen = torch.Generator().manual_seed(self.sample_seed)
            self._fixed_z = torch.randn(self.n_samples, self.latent_dim, generator=gen)
        return self._fixed_z.to(self.device)

    @torch.no_grad()
    def visuals(self):
        return {"fixed_samples_ema": self.sample(self.fixed_noise()).clamp(-1, 1)}

    @torch.no_grad()
    def test_iter(self, metrics=None):
        batch = self.real.shape[0] if self.real is not None else self.n_samples
        fake = self.sample(torch.randn(batch, self.latent_dim, device=self.device)).clamp(-1, 1)
        self.visual_items["fake"] = fake
        if self.real is not None:
            self.visual_items["real"] = self.real
        for metric in (metrics or {}).values():
            metric.update(fake, self.real)

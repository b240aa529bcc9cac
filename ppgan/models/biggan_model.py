"""BigGAN (Brock, Donahue & Simonyan, ICLR 2019, https://arxiv.org/abs/1809.11096).

A class-conditional GAN trained with the hinge loss:
    D: E[max(0, 1 - D(x, y))] + E[max(0, 1 + D(G(z, y'), y'))]      G: -E[D(G(z, y'), y')]
with `num_D_steps` discriminator steps per generator step (the loader batch is split into that
many equal chunks, one per D step; fakes use fresh z and uniformly drawn classes y'), orthogonal
regularisation of G's weights (paper eq. 3, `ortho_reg` * sum ||W W^T * (1 - I)||_F^2, the
shared class embedding excluded as in the reference) added to G's loss, and an exponential
moving average of G's weights (`netG_ema`, decay `ema_decay`, a plain copy before
`ema_start_iters`; buffers are copied) that makes the sample grids, the validation samples and,
preferred by `GANPredictor`, the samples of `gan_generate.py`. Spectral norm, class-conditional
batch norm, self-attention and the projection head are in the nets (`BigGANGenerator`,
`BigGANDiscriminator`). Truncation is a sampling-time choice (`gan_generate.py --truncation`).
Reference code read for facts: ajbrock/BigGAN-PyTorch (`train_fns.py`, `utils.py` `ortho`, `ema`).
"""
import copy

import torch

from ..modules.biggan_layers import orthogonal_regularization
from ..utils.errors import ConfigError
from .base_model import BaseModel
from .builder import MODELS
from .criterions.builder import build_criterion
from .discriminators.builder import build_discriminator
from .ema import ema_update, fill_averages, fixed_grids, state_with_averages
from .generators.builder import build_generator

PARAM_KEYS = ("num_D_steps", "ortho_reg", "ema_decay", "ema_start_iters", "n_samples", "samples_every_row",
              "sample_seed")


@MODELS.register()
class BigGANModel(BaseModel):
    """Args:
        generator (dict): a BigGANGenerator config (any class-conditional generator with
            `random_inputs(n)` -> [z, class_id] and `n_class`).
        discriminator (dict | None): a BigGANDiscriminator config, called as D(img, class_id).
        gan_criterion (dict | None): GANLoss config; default {gan_mode: hinge}.
        params (dict): num_D_steps (D steps per G step, the batch is split among them;
            default 2), ortho_reg (orthogonal regularisation weight; default 1e-4, 0 = off),
            ema_decay (netG_ema; default 0.999, 0 = no EMA net), ema_start_iters (EMA is a copy
            of G before; default 0), n_samples / samples_every_row / sample_seed (the fixed
            grid: row r shows class r % n_class; default 100 / 10 / 0).
    Batches: {'img': [N, C, H, W] in [-1, 1], 'class_id': [N] int64}, N divisible by num_D_steps.
    Losses: D_real_loss, D_fake_loss (means over the D steps), G_adv_loss, and G_ortho_loss
    when ortho_reg > 0.
    """

    def __init__(self, generator, discriminator=None, gan_criterion=None, params=None):
        super().__init__(params)
        self.check_param_keys(PARAM_KEYS)
        p = self.params
        self.num_D_steps = int(p.get("num_D_steps", 2))
        self.ortho_reg = float(p.get("ortho_reg", 1e-4))
        self.ema_decay = float(p.get("ema_decay", 0.999))
        self.ema_start_iters = int(p.get("ema_start_iters", 0))
        self.n_samples = int(p.get("n_samples", 100))
        self.samples_every_row = int(p.get("samples_every_row", 10))
        self.sample_seed = int(p.get("sample_seed", 0))
        if self.num_D_steps < 1:
            raise ConfigError(f"model.params.num_D_steps must be >= 1, got {self.num_D_steps}")
        if self.ortho_reg < 0:
            raise ConfigError(f"model.params.ortho_reg must be >= 0, got {self.ortho_reg}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"model.params.ema_decay must be in [0, 1), got {self.ema_decay}")

        net_g = build_generator(generator)
        self.n_class = int(getattr(net_g, "n_class", 0))
        if self.n_class < 1 or not hasattr(net_g, "random_inputs"):
            raise ConfigError(f"BigGANModel needs a class-conditional generator with n_class >= 1 and "
                              f"random_inputs(); {type(net_g).__name__} is not")
        self.nets["netG"] = net_g
        if discriminator is not None:
            net_d = build_discriminator(discriminator)
            if int(getattr(net_d, "n_class", self.n_class)) != self.n_class:
                raise ConfigError(f"model.discriminator.n_class ({net_d.n_class}) must equal "
                                  f"model.generator.n_class ({self.n_class})")
            self.nets["netD"] = net_d
        if self.ema_decay > 0:
            self.nets["netG_ema"] = copy.deepcopy(net_g).requires_grad_(False).eval()
        self.criterionGAN = build_criterion(gan_criterion or {"name": "GANLoss", "gan_mode": "hinge"})
        self._fixed_inputs = None
        self.real = self.real_class = self.fake = None

    # ---- runtime ---------------------------------------------------------------------------
    def train(self):
        super().train()
        if "netG_ema" in self.nets:
            self.nets["netG_ema"].eval()

    def fill_missing_ema(self, loaded):
        """`--load` of a file with netG but no netG_ema: start the average from netG."""
        return fill_averages(self.nets, loaded)

    def load_state_dict(self, state, strict=True):
        """As BaseModel's; a state without netG_ema (saved with ema_decay 0) fills it from netG."""
        super().load_state_dict(state_with_averages(self.nets, state), strict=strict)

    def sampler(self):
        """The net that makes samples: netG_ema when the model keeps one, else netG."""
        return self.nets.get("netG_ema", self.nets["netG"])

    # ---- inputs ----------------------------------------------------------------------------
    def setup_input(self, input):
        if isinstance(input, (list, tuple)):
            input = input[0]
        if not isinstance(input, dict) or "class_id" not in input:
            raise ConfigError("BigGANModel is class-conditional: the dataset must give 'class_id' with 'img' "
                              "(e.g. digits with return_label: true)")
        self.real = input["img"].to(self.device, non_blocking=True)
        self.real_class = input["class_id"].to(self.device, non_blocking=True).long()

    def fixed_inputs(self):
        """The same latents for every sample grid; row r (of `samples_every_row`) is class r % n_class."""
        if self._fixed_inputs is None:
            gen = torch.Generator().manual_seed(self.sample_seed)
            z, _ = self.nets["netG"].random_inputs(self.n_samples, generator=gen)
            classes = (torch.arange(self.n_samples) // self.samples_every_row) % self.n_class
            self._fixed_inputs = [z, classes]
        return [t.to(self.device) for t in self._fixed_inputs]

    # ---- training --------------------------------------------------------------------------
    def g_ortho_params(self):
        """G's weights under orthogonal regularisation: all but the shared class embedding."""
        net_g = self.nets["netG"]
        shared = {id(p) for p in net_g.shared.parameters()} if hasattr(net_g, "shared") else set()
        return [p for p in net_g.parameters() if id(p) not in shared]

    @torch.no_grad()
    def update_ema(self):
        """netG_ema <- lerp towards netG by 1 - ema_decay (a copy before ema_start_iters);
        buffers (BN statistics, spectral-norm vectors) are copied."""
        ema, net_g = self.nets["netG_ema"], self.nets["netG"]
        weight = 1.0 if self.current_iter < self.ema_start_iters else 1.0 - self.ema_decay
        ema_update(ema, net_g, weight)

    def train_iter(self, optimizers=None):
        net_g, net_d, crit = self.nets["netG"], self.nets["netD"], self.criterionGAN
        opt_g, opt_d = self.optimizer_for("netG", optimizers), self.optimizer_for("netD", optimizers)
        n = self.real.shape[0]
        if n % self.num_D_steps:
            raise ConfigError(f"batch size {n} is not divisible by model.params.num_D_steps ({self.num_D_steps})")
        chunk = n // self.num_D_steps

        # D steps: one chunk of reals each, fakes from fresh z and random classes (G not trained here)
        d_real = d_fake = 0.0
        for real, real_class in zip(self.real.split(chunk), self.real_class.split(chunk)):
            z, y = net_g.random_inputs(chunk, device=self.device)
            with torch.no_grad():
                fake = net_g(z, y)
            opt_d.zero_grad(set_to_none=True)
            loss_real = crit(net_d(real, real_class), True, is_disc=True)
            loss_fake = crit(net_d(fake, y), False, is_disc=True)
            self.backward(loss_real + loss_fake)
            self.optimizer_step(opt_d)
            d_real, d_fake = d_real + loss_real.detach(), d_fake + loss_fake.detach()
        losses = {"D_real_loss": d_real / self.num_D_steps, "D_fake_loss": d_fake / self.num_D_steps}

        # G step with D frozen: adversarial term + orthogonal regularisation
        opt_g.zero_grad(set_to_none=True)
        z, y = net_g.random_inputs(chunk, device=self.device)
        fake = net_g(z, y)
        with self.frozen(net_d):
            loss_g = crit(net_d(fake, y), True)
        losses["G_adv_loss"] = loss_g
        if self.ortho_reg > 0:
            loss_ortho = self.ortho_reg * orthogonal_regularization(self.g_ortho_params())
            losses["G_ortho_loss"] = loss_ortho
            loss_g = loss_g + loss_ortho
        self.backward(loss_g)
        self.optimizer_step(opt_g)
        if "netG_ema" in self.nets:
            self.update_ema()
        self.fake = self.keep(fake)
        return {k: v.detach() for k, v in losses.items()}

    # ---- evaluation ------------------------------------------------------------------------
    @torch.no_grad()
    def test_iter(self, metrics=None):
        """Samples of the batch's classes from the sampling net; metrics get (fake, class ids)
        when they declare `needs_class_id`, else (fake, real)."""
        net = self.sampler()
        was_training = net.training
        net.eval()
        z, _ = net.random_inputs(self.real.shape[0], device=self.device)
        self.fake = net(z, self.real_class)
        net.train(was_training)
        self.visual_items["fake"] = self.fake
        self.visual_items["real"] = self.real
        for metric in (metrics or {}).values():
            if getattr(metric, "needs_class_id", False):
                metric.update(self.fake, self.real_class)
            else:
                metric.update(self.fake, self.real)

    @torch.no_grad()
    def visuals(self):
        """The fixed grid from netG ('fixed_samples') and from netG_ema ('fixed_samples_ema')."""
        return fixed_grids(self.nets, self.fixed_inputs())

"""Unconditional and class-conditional GANs (Goodfellow et al., 2014; Mirza & Osindero, 2014).

PaddleGAN's `GANModel` interface and config keys (`generator`, `discriminator`,
`gan_criterion`, `params`). `DCGANModel` is the same model under PaddleGAN's DCGAN name.
"""
import torch

from ..modules.init import init_weights
from .base_model import BaseModel
from .builder import MODELS
from .criterions.builder import build_criterion
from .criterions.gan_loss import gradient_penalty
from .discriminators.builder import build_discriminator
from .generators.builder import build_generator

PARAM_KEYS = ("disc_iters", "disc_start_iters", "samples_every_row", "visual_interval", "gp_weight",
              "clip_value", "init_type", "init_gain", "n_samples", "sample_seed")


@MODELS.register()
class GANModel(BaseModel):
    """Args:
        generator (dict): generator config; the net must offer `random_inputs(batch_size)`
            returning z or [z, class_id] (conditional).
        discriminator (dict): discriminator config; called as D(img) or D(img, class_id).
        gan_criterion (dict): a `GANLoss` config (gan_mode vanilla | lsgan | wgan | wgangp | hinge).
        params (dict): disc_iters (G steps once every k iterations, default 1),
            disc_start_iters (no G step before, default 0), gp_weight (WGAN-GP, default 10),
            clip_value (WGAN weight clipping, default 0.01), init_type / init_gain
            (default normal / 0.02), samples_every_row (grid width, default 8),
            n_samples (fixed samples in the grid, default 64), sample_seed (default 0).
    Batches: {'img': [N, C, H, W] in [-1, 1], optional 'class_id': [N] int64}.
    """

    def __init__(self, generator, discriminator=None, gan_criterion=None, params=None):
        super().__init__(params)
        self.check_param_keys(PARAM_KEYS)
        p = self.params
        self.disc_iters = int(p.get("disc_iters", 1))
        self.disc_start_iters = int(p.get("disc_start_iters", 0))
        self.samples_every_row = int(p.get("samples_every_row", 8))
        self.gp_weight = float(p.get("gp_weight", 10.0))
        self.clip_value = float(p.get("clip_value", 0.01))
        self.n_samples = int(p.get("n_samples", 64))
        self.sample_seed = int(p.get("sample_seed", 0))
        init_type, init_gain = p.get("init_type", "normal"), float(p.get("init_gain", 0.02))

        self.nets["netG"] = init_weights(build_generator(generator), init_type, init_gain)
        if discriminator is not None:
            self.nets["netD"] = init_weights(build_discriminator(discriminator), init_type, init_gain)
        self.criterionGAN = build_criterion(gan_criterion) if gan_criterion else None
        self.n_class = int(getattr(self.nets["netG"], "n_class", 0))
        self._fixed_inputs = None

    # ---- inputs --------------------------------------------------------------------------
    def setup_input(self, input):
        if isinstance(input, (list, tuple)):
            input = input[0]
        if not isinstance(input, dict):
            input = {"img": input}
        self.real = input["img"].to(self.device, non_blocking=True)
        self.real_class = input["class_id"].to(self.device).long() if "class_id" in input and self.n_class else None

    def _g_inputs(self, batch_size):
        inputs = self.nets["netG"].random_inputs(batch_size, device=self.device)
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if self.n_class and self.real_class is not None:
            inputs[1] = self.real_class  # sample fakes with the batch's labels (GP needs pairs)
        return inputs

    def fixed_inputs(self):
        """The same latents (and, row by row, classes 0..n_class-1) for every sample grid."""
        if self._fixed_inputs is None:
            gen = torch.Generator().manual_seed(self.sample_seed)
            inputs = self.nets["netG"].random_inputs(self.n_samples, generator=gen)
            inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
            if self.n_class:
                rows = torch.arange(self.n_samples) // self.samples_every_row
                inputs[1] = rows % self.n_class
            self._fixed_inputs = inputs
        return [t.to(self.device) for t in self._fixed_inputs]

    # ---- training ------------------------------------------------------------------------
    def _d_loss(self, net_d, fake, cond):
        crit = self.criterionGAN
        pred_fake = net_d(fake.detach(), *cond)
        pred_real = net_d(self.real, *cond)
        losses = {"D_fake_loss": crit(pred_fake, False, is_disc=True),
                  "D_real_loss": crit(pred_real, True, is_disc=True)}
        total = losses["D_fake_loss"] + losses["D_real_loss"]
        if crit.gan_mode in ("vanilla", "lsgan"):
            total = total * 0.5
        if crit.gan_mode == "wgangp":
            with torch.autocast(self.device.type, enabled=False):
                losses["D_gp_loss"] = gradient_penalty(net_d, self.real.float(), fake.float(),
                                                       *cond, weight=self.gp_weight)
            total = total + losses["D_gp_loss"]
        return total, losses

    def train_iter(self, optimizers=None):
        net_g, net_d = self.nets["netG"], self.nets["netD"]
        opt_g, opt_d = self.optimizer_for("netG", optimizers), self.optimizer_for("netD", optimizers)
        g_inputs = self._g_inputs(self.real.shape[0])
        cond = g_inputs[1:2] if self.n_class else []
        fake = net_g(*g_inputs)

        # D step: D learns, G's output is detached.
        opt_d.zero_grad(set_to_none=True)
        loss_d, losses = self._d_loss(net_d, fake, cond)
        self.backward(loss_d)
        self.optimizer_step(opt_d)
        if self.criterionGAN.gan_mode == "wgan":
            with torch.no_grad():
                for p in net_d.parameters():
                    p.clamp_(-self.clip_value, self.clip_value)

        # G step every `disc_iters` iterations, with D frozen (its parameters take no gradient).
        if self.current_iter >= self.disc_start_iters and self.current_iter % self.disc_iters == 0:
            opt_g.zero_grad(set_to_none=True)
            with self.frozen(net_d):
                loss_g = self.criterionGAN(net_d(fake, *cond), True)
                self.backward(loss_g)
            self.optimizer_step(opt_g)
            losses["G_adv_loss"] = loss_g
        self.fake = self.keep(fake)
        return {k: v.detach() for k, v in losses.items()}

    # ---- evaluation ----------------------------------------------------------------------
    @torch.no_grad()
    def test_iter(self, metrics=None):
        """Generate a batch like the current real one; metrics get (fake, real), or
        (fake, requested class ids) when they declare `needs_class_id`."""
        net_g = self.nets["netG"]
        was_training = net_g.training
        net_g.eval()
        g_inputs = self._g_inputs(self.real.shape[0])
        self.fake = net_g(*g_inputs)
        net_g.train(was_training)
        self.visual_items["fake"] = self.fake
        self.visual_items["real"] = self.real
        for metric in (metrics or {}).values():
            if getattr(metric, "needs_class_id", False):
                if self.n_class:
                    metric.update(self.fake, g_inputs[1])
            else:
                metric.update(self.fake, self.real)

    @torch.no_grad()
    def visuals(self):
        net_g = self.nets["netG"]
        was_training = net_g.training
        net_g.eval()
        out = {"fixed_samples": net_g(*self.fixed_inputs())}
        net_g.train(was_training)
        return out


@MODELS.register()
class DCGANModel(GANModel):
    """PaddleGAN's DCGAN model name (configs/dcgan_mnist.yaml): a `GANModel` without `params`."""

    def __init__(self, generator, discriminator=None, gan_criterion=None, params=None):
        super().__init__(generator, discriminator, gan_criterion, params)

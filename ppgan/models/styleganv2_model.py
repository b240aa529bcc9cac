"""StyleGAN2 training (Karras et al., 2020, "Analyzing and Improving the Image Quality of StyleGAN").

PaddleGAN's `StyleGAN2Model` name and config keys (configs/stylegan_v2_256_ffhq.yaml): nets
'gen', 'disc' and 'gen_ema'; optimizers optimG (net_names [gen]) and optimD ([disc]).

One iteration:
  D step   non-saturating logistic loss on real and (detached) fake images; every
           `params.disc_iters` iterations (lazy regularisation) the R1 penalty
           r1_reg_weight / 2 * E||grad_x D(x)||^2 on the reals, times `disc_iters`, is added.
  G step   non-saturating loss softplus(-D(G(z))); every `params.gen_iters` iterations the
           path-length penalty on a batch of batch / path_batch_shrink, times `gen_iters`, is
           added (its running mean `mean_path_length` decays by `path_decay`).
  EMA      gen_ema <- lerp(gen_ema, gen, 1 - ema_decay), ema_decay 0.5 ** (32 / 10000).
Latents are mixed (two z, a random crossover layer) with probability `mixing_prob`.
A lazy step is taken on iterations i (0-based, the trainer's count) with i % interval == 0, so
resuming at any iteration continues the schedule; R1 and path length run in float32 even
under AMP. The learning rates of optimG / optimD are multiplied by c = k / (k + 1) (k the
interval; PaddleGAN and the paper); the paper also raises Adam's betas to the power c, which
`params.adjust_betas: true` does (PaddleGAN's config gives them already adjusted, so off by
default). With `augment` (see `ppgan.models.augment`) every image D sees is augmented
differentiably (DiffAugment), for small data sets.

The running path-length mean and the regularisation counters are part of `state_dict()` (the
'_train_state' entry beside the nets), so `--resume` continues them; the EMA generator is a net.
Nothing in a step reads a value back from the device.
"""
import copy
import math
import random

import torch

from ..utils.errors import ConfigError
from .augment import build_augment
from .base_model import BaseModel
from .builder import MODELS
from .criterions.builder import build_criterion
from .discriminators.builder import build_discriminator
from .generators.builder import build_generator

TRAIN_STATE = "_train_state"  # checkpoint 'nets' entry with the counters (not a net)
PARAM_KEYS = ("gen_iters", "disc_iters", "disc_start_iters", "visual_iters", "ema_decay", "path_decay",
              "adjust_betas", "n_samples", "samples_every_row", "sample_seed", "sample_truncation")
COUNTERS = ("r1_steps", "path_steps", "ema_steps")


def r1_penalty(real_pred, real_img):
    """E ||grad_x D(x)||^2 over the batch (Mescheder et al., 2018, eq. 9), with a graph."""
    (grad,) = torch.autograd.grad(real_pred.sum(), real_img, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def path_length_penalty(fake_img, latents, mean_path_length, decay=0.01):
    """(penalty, mean path length of the batch, updated running mean), as in the paper: the
    Jacobian-vector norm |J_w^T y| for image-space noise y ~ N(0, I) / sqrt(H W)."""
    noise = torch.randn_like(fake_img) / math.sqrt(fake_img.shape[2] * fake_img.shape[3])
    (grad,) = torch.autograd.grad((fake_img * noise).sum(), latents, create_graph=True)
    path_lengths = grad.pow(2).sum(2).mean(1).sqrt()
    path_mean = mean_path_length + decay * (path_lengths.mean() - mean_path_length)
    penalty = (path_lengths - path_mean).pow(2).mean()
    return penalty, path_lengths.detach().mean(), path_mean.detach()


@MODELS.register()
class StyleGAN2Model(BaseModel):
    """Args:
        generator (dict): a StyleGANv2Generator config (style_dim, n_latent, get_latent(z)).
        discriminator (dict | None): a StyleGANv2Discriminator config (None: generation only).
        gan_criterion (dict | None): GANLoss config; default {gan_mode: logistic}.
        num_style_feat (int): z size; the generator's `style_dim` when it has one (default 512).
        mixing_prob (float): probability of style mixing per batch (default 0.9).
        r1_reg_weight (float): gamma of R1 (default 10; 0 turns R1 off).
        path_reg_weight (float): weight of the path-length penalty (default 2; 0 turns it off).
        path_batch_shrink (float): path-length batch = batch / this (default 2).
        params (dict): gen_iters (path-length interval, default 4), disc_iters (R1 interval,
            default 16), disc_start_iters (no G step before, default 0), ema_decay (default
            0.5 ** (32 / 10000)), path_decay (default 0.01), adjust_betas (default false),
            n_samples / samples_every_row / sample_seed (the fixed sample grid, default 16 / 4 / 0),
            sample_truncation (a second, truncated grid when < 1; default 0.7), visual_iters (ignored).
        max_eval_steps (int): kept for PaddleGAN configs (unused).
        augment (dict | bool | None): DiffAugment for D's inputs, e.g. {policy: 'color,translation,cutout',
            prob: 1.0}; default none.
        image_key (str | None): the batch entry holding the images; default 'img', else 'A' (PaddleGAN).
    """

    def __init__(self, generator, discriminator=None, gan_criterion=None, num_style_feat=512, mixing_prob=0.9,
                 r1_reg_weight=10.0, path_reg_weight=2.0, path_batch_shrink=2.0, params=None,
                 max_eval_steps=50000, augment=None, image_key=None):
        super().__init__(params)
        self.check_param_keys(PARAM_KEYS)
        p = self.params
        self.gen_iters = int(p.get("gen_iters", 4))
        self.disc_iters = int(p.get("disc_iters", 16))
        self.disc_start_iters = int(p.get("disc_start_iters", 0))
        self.ema_decay = float(p.get("ema_decay", 0.5 ** (32 / (10 * 1000))))
        self.path_decay = float(p.get("path_decay", 0.01))
        self.adjust_betas = bool(p.get("adjust_betas", False))
        self.n_samples = int(p.get("n_samples", 16))
        self.samples_every_row = int(p.get("samples_every_row", 4))
        self.sample_seed = int(p.get("sample_seed", 0))
        self.sample_truncation = float(p.get("sample_truncation", 0.7))
        if self.gen_iters < 0 or self.disc_iters < 0:
            raise ConfigError("model.params.gen_iters and disc_iters must be >= 0 (0: no regularisation)")
        if not 0.0 <= self.ema_decay <= 1.0:
            raise ConfigError(f"model.params.ema_decay must be in [0, 1], got {self.ema_decay}")
        if not 0.0 <= float(mixing_prob) <= 1.0:
            raise ConfigError(f"model.mixing_prob must be in [0, 1], got {mixing_prob}")
        if float(path_batch_shrink) <= 0:
            raise ConfigError(f"model.path_batch_shrink must be > 0, got {path_batch_shrink}")
        self.mixing_prob = float(mixing_prob)
        self.r1_reg_weight = float(r1_reg_weight)
        self.path_reg_weight = float(path_reg_weight)
        self.path_batch_shrink = float(path_batch_shrink)
        self.max_eval_steps = int(max_eval_steps)
        self.image_key = image_key

        gen = build_generator(generator)
        self.num_style_feat = int(getattr(gen, "style_dim", num_style_feat))
        self.n_latent = int(getattr(gen, "n_latent", 2))
        self.nets["gen"] = gen
        if discriminator:
            self.nets["disc"] = build_discriminator(discriminator)
            self.nets["gen_ema"] = copy.deepcopy(gen)   # starts equal to gen (buffers included)
            self.nets["gen_ema"].requires_grad_(False)
        self.gan_criterion = build_criterion(gan_criterion or {"name": "GANLoss", "gan_mode": "logistic"})
        self.augment = build_augment(augment)
        self.mean_path_length = torch.zeros(())
        self.counters = dict.fromkeys(COUNTERS, 0)
        self._fixed_z = None
        self.real = None

    # ---- runtime --------------------------------------------------------------------------
    def setup_runtime(self, device=None, scaler=None, distributed=False):
        super().setup_runtime(device, scaler, distributed)
        self.mean_path_length = self.mean_path_length.to(self.device)

    def train(self):
        super().train()
        if "gen_ema" in self.nets:
            self.nets["gen_ema"].eval()

    @property
    def sample_net(self):
        """The generator used for samples and evaluation: the EMA one when training."""
        return self.nets.get("gen_ema", self.nets["gen"])

    def optimizer_config(self, optimizer, lr_scheduler):
        """Lazy regularisation: optimG's / optimD's learning rate times c = k / (k + 1) (k =
        gen_iters / disc_iters), and with params.adjust_betas their betas to the power c."""
        if not isinstance(optimizer, dict) or "name" in optimizer:
            raise ConfigError("StyleGAN2Model needs two optimizers, e.g. optimG {name: Adam, net_names: [gen]} "
                              "and optimD {name: Adam, net_names: [disc]}")
        base_lr = (lr_scheduler or {}).get("learning_rate")
        out = {}
        for name, ocfg in optimizer.items():
            if not isinstance(ocfg, dict):
                raise ConfigError(f"optimizer '{name}' must be a mapping with a 'name'")
            nets = list(ocfg.get("net_names") or [])
            if not nets:
                raise ConfigError(f"optimizer.{name}.net_names is required for StyleGAN2Model ([gen] or [disc])")
            if "gen_ema" in nets:
                raise ConfigError(f"optimizer.{name}.net_names: gen_ema is the moving average of gen, not trained")
            ocfg = dict(ocfg)
            k = self.gen_iters if "gen" in nets and self.path_reg_weight > 0 else \
                self.disc_iters if "disc" in nets and self.r1_reg_weight > 0 else 0
            if k > 0:
                c = k / (k + 1)
                lr = ocfg.get("learning_rate", base_lr)
                if lr is not None:
                    ocfg["learning_rate"] = float(lr) * c
                if self.adjust_betas:
                    ocfg["beta1"] = float(ocfg.get("beta1", 0.9)) ** c
                    ocfg["beta2"] = float(ocfg.get("beta2", 0.999)) ** c
            out[name] = ocfg
        return out, lr_scheduler

    # ---- inputs ---------------------------------------------------------------------------
    def setup_input(self, input):
        self.real = self.image_batch(input, self.image_key)

    def make_noise(self, batch, num_noise=1):
        """`num_noise` z batches [batch, num_style_feat] (a tensor when 1, else a list)."""
        zs = [torch.randn(batch, self.num_style_feat, device=self.device) for _ in range(num_noise)]
        return zs[0] if num_noise == 1 else zs

    def mixing_noise(self, batch, prob=None):
        """(styles list, inject_index): two z and a crossover layer with probability `prob`."""
        prob = self.mixing_prob if prob is None else prob
        if prob > 0 and self.n_latent > 1 and random.random() < prob:
            return self.make_noise(batch, 2), random.randint(1, self.n_latent - 1)
        return [self.make_noise(batch, 1)], None

    def _generate(self, net, batch, return_latents=False):
        styles, inject = self.mixing_noise(batch)
        return net(styles, return_latents=return_latents, inject_index=inject)

    def _disc(self, img):
        return self.nets["disc"](self.augment(img) if self.augment is not None else img)

    # ---- training -------------------------------------------------------------------------
    def train_iter(self, optimizers=None):
        gen, crit = self.nets["gen"], self.gan_criterion
        opt_g, opt_d = self.optimizer_for("gen", optimizers), self.optimizer_for("disc", optimizers)
        it, batch = self.current_iter, self.real.shape[0]
        amp = torch.is_autocast_enabled(self.device.type)

        # D step: logistic loss, plus lazy R1 on the reals
        with torch.no_grad():
            fake = self._generate(gen, batch)[0]
        d_reg = self.r1_reg_weight > 0 and self.disc_iters > 0 and it % self.disc_iters == 0
        real = self.real.detach().requires_grad_(True) if d_reg else self.real
        opt_d.zero_grad(set_to_none=True)
        fake_pred, real_pred = self._disc(fake).float(), self._disc(real).float()
        l_d = crit(real_pred, True, is_disc=True) + crit(fake_pred, False, is_disc=True)
        losses = {"l_d": l_d.detach(), "real_score": real_pred.detach().mean(), "fake_score": fake_pred.detach().mean()}
        total = l_d
        if d_reg:
            if amp:  # the penalty in float32: a fresh pass outside autocast
                with torch.autocast(self.device.type, enabled=False):
                    real = self.real.detach().float().requires_grad_(True)
                    real_pred = self._disc(real).float()
                    penalty = r1_penalty(real_pred, real)
            else:
                penalty = r1_penalty(real_pred, real)
            l_r1 = self.r1_reg_weight / 2 * penalty * self.disc_iters
            total = total + l_r1
            losses["l_d_r1"] = l_r1.detach()
            self.counters["r1_steps"] += 1
        self.backward(total)
        self.optimizer_step(opt_d)

        # G step: non-saturating loss, plus lazy path-length regularisation
        if it >= self.disc_start_iters:
            opt_g.zero_grad(set_to_none=True)
            with self.frozen(self.nets["disc"]):
                fake = self._generate(gen, batch)[0]
                l_g = crit(self._disc(fake).float(), True)
                losses["l_g"] = l_g.detach()
                total = l_g
                if self.path_reg_weight > 0 and self.gen_iters > 0 and it % self.gen_iters == 0:
                    path_batch = max(1, int(batch // self.path_batch_shrink))
                    with torch.autocast(self.device.type, enabled=False):
                        img, latents = self._generate(gen, path_batch, return_latents=True)
                        penalty, path_length, path_mean = path_length_penalty(
                            img.float(), latents, self.mean_path_length, self.path_decay)
                    l_pl = self.path_reg_weight * self.gen_iters * penalty
                    total = total + l_pl
                    self.mean_path_length = path_mean
                    losses.update(l_g_path=l_pl.detach(), path_length=path_length)
                    self.counters["path_steps"] += 1
                self.backward(total)
            self.optimizer_step(opt_g)
            self.accumulate()
        self.fake = self.keep(fake)
        return losses

    @torch.no_grad()
    def accumulate(self, decay=None):
        """gen_ema <- decay * gen_ema + (1 - decay) * gen (parameters); buffers are copied."""
        if "gen_ema" not in self.nets:
            return
        decay = self.ema_decay if decay is None else decay
        ema, gen = self.nets["gen_ema"], self.nets["gen"]
        ema_p, gen_p = list(ema.parameters()), list(gen.parameters())
        torch._foreach_lerp_(ema_p, gen_p, 1.0 - decay)
        for b_ema, b in zip(ema.buffers(), gen.buffers()):
            b_ema.copy_(b)
        self.counters["ema_steps"] += 1

    # ---- sampling / evaluation ------------------------------------------------------------
    @torch.no_grad()
    def mean_latent(self, n=4096, net=None):
        """The mean W of `n` fixed z (the truncation centre), [1, style_dim]."""
        net = net or self.sample_net
        gen = torch.Generator().manual_seed(self.sample_seed + 1)
        z = torch.randn(n, self.num_style_feat, generator=gen).to(self.device)
        return net.get_latent(z).mean(0, keepdim=True)

    @torch.no_grad()
    def sample(self, z, truncation=1.0, net=None, randomize_noise=True):
        """Images for z [N, num_style_feat] with the truncation trick (W pulled to the mean);
        `randomize_noise=False` uses the generator's stored noise maps (repeatable images)."""
        net = net or self.sample_net
        mean = self.mean_latent(net=net) if truncation < 1 else None
        return net([z], truncation=truncation, truncation_latent=mean, randomize_noise=randomize_noise)[0]

    def fixed_noise(self):
        if self._fixed_z is None:
            gen = torch.Generator().manual_seed(self.sample_seed)
            self._fixed_z = torch.randn(self.n_samples, self.num_style_feat, generator=gen)
        return self._fixed_z.to(self.device)

    @torch.no_grad()
    def visuals(self):
        z = self.fixed_noise()
        out = {"fixed_samples_ema": self.sample(z, randomize_noise=False)}
        if self.sample_truncation < 1:
            out[f"fixed_samples_ema_trunc{self.sample_truncation:g}"] = self.sample(z, self.sample_truncation,
                                                                                  randomize_noise=False)
        return {k: v.clamp(-1, 1) for k, v in out.items()}

    @torch.no_grad()
    def test_iter(self, metrics=None):
        batch = self.real.shape[0] if self.real is not None else self.n_samples
        fake = self.sample(self.make_noise(batch))
        self.visual_items["fake_img"] = fake
        if self.real is not None:
            self.visual_items["real_img"] = self.real
        for metric in (metrics or {}).values():
            metric.update(fake, self.real)

    # ---- checkpoint state -----------------------------------------------------------------
    def state_dict(self):
        state = super().state_dict()
        state[TRAIN_STATE] = {"mean_path_length": self.mean_path_length.detach().clone(),
                              **{k: torch.tensor(v, dtype=torch.int64) for k, v in self.counters.items()}}
        return state

    def load_state_dict(self, state, strict=True):
        super().load_state_dict({k: v for k, v in state.items() if k != TRAIN_STATE}, strict=strict)
        saved = state.get(TRAIN_STATE) or {}
        if "mean_path_length" in saved:
            self.mean_path_length = torch.as_tensor(saved["mean_path_length"]).float().to(self.device)
        for k in COUNTERS:
            if k in saved:
                self.counters[k] = int(saved[k])

"""StarGAN v2: diverse image synthesis for multiple domains (Choi et al., CVPR 2020,
https://arxiv.org/abs/1912.01865; reference code clovaai/stargan-v2, PaddleGAN's port).

PaddleGAN's `StarGANv2Model` name, config keys (configs/starganv2_celeba_hq.yaml,
starganv2_afhq.yaml), batch keys and `self.nets` names: generator, style_encoder,
mapping_network, discriminator, and fan when the generator's high-pass path is on (w_hpf > 0).
The moving averages are nets too (generator_ema, style_encoder_ema, mapping_network_ema), so
checkpoints hold them; they are what inference (test_iter, the sample grids,
`latent_synthesis`, `reference_synthesis`) uses. One optimizer per trained net, found by
`net_names` (PaddleGAN's config names them generator, style_encoder, mapping_network,
discriminator).

One iteration (the paper's Algorithm; the reference code's order):
  D, latent   adv(D(x, y), 1) + adv(D(G(x, M(z, y~)), y~), 0) + lambda_reg * R1, then a D step
  D, ref      the same with the style S(x_ref, y~) of a reference image, then a D step
  G, latent   adv(D(G(x, s~), y~), 1) + lambda_sty |s~ - S(G(x, s~), y~)|
              - lambda_ds |G(x, s~) - G(x, s~2)| + lambda_cyc |G(G(x, s~), S(x, y)) - x|,
              with s~ = M(z, y~), s~2 = M(z2, y~); steps G, M and S
  G, ref      the same with s~ = S(x_ref, y~), s~2 = S(x_ref2, y~); steps G only
  EMA         net_ema <- beta * net_ema + (1 - beta) * net, beta 0.999, for G, M and S
adv is the logistic (BCE-with-logits) loss, R1 = 0.5 E ||grad_x D(x, y)||^2 on the reals, and
lambda_ds decays linearly to 0 over `ds_iter` iterations (default: the run's length).

Where this differs from PaddleGAN's code, it follows the reference code (and the paper):
  - the EMA keeps 0.999 of the average (PaddleGAN's `soft_update` keeps 0.001 of it, so its
    "EMA" nets are nearly copies of the trained nets), and evaluation does not update it;
  - the second image of the diversity term is detached (clovaai: otherwise its gradient
    mirrors the first one's);
  - FAN heatmaps take no gradient (clovaai's `get_heatmap` is under no_grad);
  - the EMA nets start as copies of the (He-initialised) trained nets.
lambda_ds is a function of the iteration (`current_iter`), not a counter, so --resume
continues the schedule. Nothing in a step reads a value back from the device.
"""
import copy
import logging

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.errors import ConfigError, PPGANError
from ..utils.logger import current_logger
from .base_model import BaseModel
from .builder import MODELS
from .criterions.gan_loss import r1_penalty
from .ema import copy_net, ema_update
from .discriminators.builder import build_discriminator
from .generators.builder import build_generator

TRAINED = ("generator", "style_encoder", "mapping_network")  # the nets with a moving average
EMA_SUFFIX = "_ema"
# PaddleGAN's constructor defaults, for checking that the nets' settings agree
DEFAULTS = {"style_dim": 64, "num_domains": 2, "latent_dim": 16, "img_size": 256, "w_hpf": 1}


def he_init(module):
    """Kaiming-normal (fan_in, ReLU gain) weights and zero biases for conv and linear layers,
    as the reference code initialises every trained net."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def adv_loss(logits, target):
    """Logistic GAN loss of D's logits [B] against a constant target 1 (real) or 0 (fake)."""
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(target)))


def r1_reg(d_out, x_in):
    """Zero-centred gradient penalty on real images: 0.5 * E ||grad_x D(x)||^2 (with a graph)."""
    return 0.5 * r1_penalty(d_out.float(), x_in)


@torch.no_grad()
def soft_update(source, target, beta=0.999):
    """target <- beta * target + (1 - beta) * source, for parameters; buffers are copied."""
    ema_update(target, source, 1.0 - beta)


def _log_warning(message):
    """Warning line to the running trainer's log (the `ppgan` logger outside a run)."""
    (current_logger() or logging.getLogger("ppgan")).warning(message)


def _value(cfg, key):
    return (cfg or {}).get(key, DEFAULTS[key])


@MODELS.register()
class StarGANv2Model(BaseModel):
    """Args:
        generator (dict): StarGANv2Generator config (img_size, style_dim, max_conv_dim, w_hpf;
            `dim_in` narrows the first layer for small demos).
        style (dict): StarGANv2Style config (the style encoder S; img_size, style_dim, num_domains).
        mapping (dict): StarGANv2Mapping config (the mapping network M; latent_dim, style_dim,
            num_domains).
        discriminator (dict | None): StarGANv2Discriminator config; None builds an inference-only
            model (no training).
        fan (dict | None): FAN config (face landmark heatmaps for the generator's high-pass
            masks); required when generator.w_hpf > 0, unused otherwise. PaddleGAN's
            `fname_pretrained: None` (a string in YAML) is read as None: a randomly initialised
            FAN, which is only useful for tests; give a wing.pdparams path for real training.
        latent_dim (int): size of z (default 16; must match mapping.latent_dim).
        lambda_reg (float): weight of R1 (default 1).
        lambda_sty (float): weight of the style reconstruction loss (default 1).
        lambda_ds (float): initial weight of the diversity-sensitive loss (default 1).
        lambda_cyc (float): weight of the cycle loss (default 1).
        ds_iter (int | None): iterations over which lambda_ds decays linearly to 0; None: the
            run's total iterations (the trainer calls `set_total_iter`; PaddleGAN's behaviour),
            or no decay when nothing set it.
        ema_beta (float): decay of the moving averages (default 0.999).
    Batch: {'src': [B, 3, H, W] in [-1, 1], 'src_cls': [B] int64 domain, 'ref', 'ref2' (training
        only), 'ref_cls'}, as StarGANv2Dataset yields.
    """

    def __init__(self, generator, style=None, mapping=None, discriminator=None, fan=None, latent_dim=16,
                 lambda_reg=1.0, lambda_sty=1.0, lambda_ds=1.0, lambda_cyc=1.0, ds_iter=None, ema_beta=0.999):
        super().__init__()
        if not isinstance(style, dict) or not isinstance(mapping, dict):
            raise ConfigError("StarGANv2Model needs model.style (StarGANv2Style) and model.mapping "
                              "(StarGANv2Mapping) configs")
        for name, value in (("lambda_reg", lambda_reg), ("lambda_sty", lambda_sty), ("lambda_ds", lambda_ds),
                            ("lambda_cyc", lambda_cyc)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"model.{name} must be a number >= 0, got {value!r}")
        if not isinstance(ema_beta, (int, float)) or isinstance(ema_beta, bool) or not 0.0 <= ema_beta <= 1.0:
            raise ConfigError(f"model.ema_beta must be in [0, 1], got {ema_beta!r}")
        if ds_iter is not None and (not isinstance(ds_iter, int) or isinstance(ds_iter, bool) or ds_iter < 1):
            raise ConfigError(f"model.ds_iter must be an integer >= 1 (or null: the run's length), got {ds_iter!r}")
        self.w_hpf = float(_value(generator, "w_hpf"))
        if self.w_hpf > 0 and not isinstance(fan, dict):
            raise ConfigError(f"model.fan (a FAN config) is required when model.generator.w_hpf > 0 "
                              f"(w_hpf is {self.w_hpf:g})")
        self._check_agreement(generator, style, mapping, discriminator, latent_dim)

        self.latent_dim = int(latent_dim)
        self.lambda_reg, self.lambda_sty = float(lambda_reg), float(lambda_sty)
        self.initial_lambda_ds, self.lambda_cyc = float(lambda_ds), float(lambda_cyc)
        self.ds_iter, self.total_iter = ds_iter, None
        self.ema_beta = float(ema_beta)

        self.nets["generator"] = build_generator(generator)
        self.nets["style_encoder"] = build_generator(style)
        self.nets["mapping_network"] = build_generator(mapping)
        if discriminator:
            self.nets["discriminator"] = build_discriminator(discriminator)
        for net in self.nets.values():
            net.apply(he_init)
        if self.w_hpf > 0:
            self.nets["fan"] = build_generator(fan).eval().requires_grad_(False)
            if getattr(self.nets["fan"], "fname_pretrained", None) is None:
                _log_warning("model.fan has no fname_pretrained: the FAN is randomly initialised, so the "
                             "generator's high-pass masks carry no face landmarks; for face data set "
                             "model.fan.fname_pretrained to 'wing' (the catalogue's wing.pdparams) or a path "
                             "(or generator.w_hpf: 0)")
        for name in TRAINED:  # the averages start at the initial weights and are never trained
            self.nets[name + EMA_SUFFIX] = copy.deepcopy(self.nets[name]).requires_grad_(False).eval()
        self.input = None
        self._fixed_z = None

    @staticmethod
    def _check_agreement(generator, style, mapping, discriminator, latent_dim):
        """ConfigError naming both keys when two nets' settings cannot work together."""
        pairs = [("generator", generator, "style", style, "style_dim"),
                 ("generator", generator, "mapping", mapping, "style_dim"),
                 ("style", style, "mapping", mapping, "num_domains"),
                 ("generator", generator, "style", style, "img_size")]
        if discriminator:
            pairs += [("style", style, "discriminator", discriminator, "num_domains"),
                      ("generator", generator, "discriminator", discriminator, "img_size")]
        for a, cfg_a, b, cfg_b, key in pairs:
            if _value(cfg_a, key) != _value(cfg_b, key):
                raise ConfigError(f"model.{a}.{key} ({_value(cfg_a, key)}) and model.{b}.{key} "
                                  f"({_value(cfg_b, key)}) must be equal")
        if _value(mapping, "latent_dim") != latent_dim:
            raise ConfigError(f"model.latent_dim ({latent_dim}) and model.mapping.latent_dim "
                              f"({_value(mapping, 'latent_dim')}) must be equal")

    # ---- runtime --------------------------------------------------------------------------
    def setup_runtime(self, device=None, scaler=None, distributed=False):
        if scaler is not None:
            raise ConfigError("StarGANv2Model steps the discriminator's optimizer twice per iteration, which "
                              "fp16's GradScaler does not allow; use amp: bf16 or none")
        super().setup_runtime(device, scaler, distributed)

    def train(self):
        super().train()
        for name in self.nets:
            if name == "fan" or name.endswith(EMA_SUFFIX):
                self.nets[name].eval()

    def set_total_iter(self, total_iter):
        """The run's length (PaddleGAN's BaseModel API): lambda_ds reaches 0 there unless
        `ds_iter` is set."""
        self.total_iter = int(total_iter)

    def lambda_ds(self, it=None):
        """The diversity-sensitive weight at iteration `it` (default: the current one):
        lambda_ds * (1 - it / ds_iter), not below 0."""
        span = self.ds_iter or self.total_iter
        it = self.current_iter if it is None else it
        if not span:
            return self.initial_lambda_ds
        return self.initial_lambda_ds * max(0.0, 1.0 - it / span)

    def optimizer_config(self, optimizer, lr_scheduler):
        """Check that no optimizer names a moving average or the FAN (neither is trained)."""
        groups = {"optim": optimizer} if isinstance(optimizer, dict) and "name" in optimizer else optimizer
        for name, ocfg in (groups or {}).items():
            names = ocfg.get("net_names") if isinstance(ocfg, dict) else None
            for net in names or ():
                if net == "fan" or str(net).endswith(EMA_SUFFIX):
                    raise ConfigError(f"optimizer.{name}.net_names: '{net}' is not trained "
                                      "(the FAN is fixed; *_ema nets are moving averages)")
        return optimizer, lr_scheduler

    def ema(self, name):
        """The moving average of net `name` (what inference uses)."""
        return self.nets[name + EMA_SUFFIX]

    def fill_missing_ema(self, loaded):
        """After loading weights for the nets named in `loaded`: a file that holds a trained net
        but not its average (PaddleGAN's checkpoints save no averages; its released files hold
        the reference code's averaged nets under the plain names) fills the average from it.
        Returns the names of the averages filled."""
        filled = []
        for name in TRAINED:
            if name in loaded and name + EMA_SUFFIX not in loaded:
                copy_net(self.ema(name), self.nets[name])
                filled.append(name + EMA_SUFFIX)
        return filled

    def load_state_dict(self, state, strict=True):
        state = dict(state)
        for name in TRAINED:
            if name in state and name + EMA_SUFFIX not in state:
                state[name + EMA_SUFFIX] = state[name]
        super().load_state_dict(state, strict=strict)

    # ---- inputs ---------------------------------------------------------------------------
    def setup_input(self, input):
        """Keep the batch on the device: src, src_cls, ref, ref_cls (+ ref2 when training), and
        draw the two latent codes of the latent-guided step."""
        missing = [k for k in ("src", "src_cls", "ref", "ref_cls") if k not in input]
        if missing:
            raise PPGANError(f"StarGANv2Model: the batch has no {', '.join(missing)} (it has "
                             f"{', '.join(map(str, input))}); use StarGANv2Dataset")
        batch = {}
        for key in ("src", "ref", "ref2"):
            if key in input:
                batch[key] = input[key].to(self.device, non_blocking=True).float()
        for key in ("src_cls", "ref_cls"):
            batch[key] = torch.as_tensor(input[key]).to(self.device, non_blocking=True).long().reshape(-1)
        n = batch["src"].shape[0]
        batch["z_trg"] = torch.randn(n, self.latent_dim, device=self.device)
        batch["z_trg2"] = torch.randn(n, self.latent_dim, device=self.device)
        self.input = batch

    @torch.no_grad()
    def heatmap(self, x):
        """The FAN's two high-pass masks for images `x` (None when w_hpf is 0)."""
        if self.w_hpf <= 0:
            return None
        return self.nets["fan"].get_heatmap(x)

    # ---- losses ---------------------------------------------------------------------------
    def d_loss(self, x_real, y_org, y_trg, style_fn, masks):
        """(total, {real, fake, reg}) of one discriminator pass; `style_fn()` gives the target style."""
        disc, gen = self.nets["discriminator"], self.nets["generator"]
        x_real = x_real.detach().requires_grad_(True)
        out = disc(x_real, y_org)
        loss_real = adv_loss(out, 1)
        loss_reg = r1_reg(out, x_real)
        with torch.no_grad():
            x_fake = gen(x_real.detach(), style_fn(), masks=masks)
        loss_fake = adv_loss(disc(x_fake, y_trg), 0)
        total = loss_real + loss_fake + self.lambda_reg * loss_reg
        return total, {"real": loss_real, "fake": loss_fake, "reg": loss_reg}

    def g_loss(self, x_real, y_org, y_trg, style_fns, masks, lambda_ds):
        """(total, {adv, sty, ds, cyc}) of one generator pass; `style_fns` give the two target styles."""
        gen, enc, disc = self.nets["generator"], self.nets["style_encoder"], self.nets["discriminator"]
        s_trg = style_fns[0]()
        x_fake = gen(x_real, s_trg, masks=masks)
        loss_adv = adv_loss(disc(x_fake, y_trg), 1)
        # style reconstruction: the encoder recovers the style the image was made with
        loss_sty = (enc(x_fake, y_trg) - s_trg).abs().mean()
        # diversity sensitive: two styles give different images (no gradient through the second)
        with torch.no_grad():
            x_fake2 = gen(x_real, style_fns[1](), masks=masks)
        loss_ds = (x_fake - x_fake2).abs().mean()
        # cycle consistency: back to the source domain with the source's own style
        masks_fake = self.heatmap(x_fake)
        x_rec = gen(x_fake, enc(x_real, y_org), masks=masks_fake)
        loss_cyc = (x_rec - x_real).abs().mean()
        total = loss_adv + self.lambda_sty * loss_sty - lambda_ds * loss_ds + self.lambda_cyc * loss_cyc
        return total, {"adv": loss_adv, "sty": loss_sty, "ds": loss_ds, "cyc": loss_cyc}

    # ---- training -------------------------------------------------------------------------
    def train_iter(self, optimizers=None):
        if "discriminator" not in self.nets:
            raise ConfigError("StarGANv2Model was built without model.discriminator: it can translate, not train")
        if self.input is None or "ref2" not in self.input:
            raise PPGANError("StarGANv2Model training needs 'ref2' images in every batch (StarGANv2Dataset "
                             "with is_train: true)")
        b = self.input
        x_real, y_org, y_trg = b["src"], b["src_cls"], b["ref_cls"]
        gen, enc, mapping, disc = (self.nets[n] for n in ("generator", "style_encoder", "mapping_network",
                                                          "discriminator"))
        opt_d = self.optimizer_for("discriminator", optimizers)
        opt_g, opt_s, opt_m = (self.optimizer_for(n, optimizers) for n in TRAINED)
        latent = (lambda: mapping(b["z_trg"], y_trg), lambda: mapping(b["z_trg2"], y_trg))
        ref = (lambda: enc(b["ref"], y_trg), lambda: enc(b["ref2"], y_trg))
        masks = self.heatmap(x_real)
        lambda_ds = self.lambda_ds()
        losses = {}

        # discriminator: once with latent-guided fakes, once with reference-guided ones
        for tag, styles in (("latent", latent), ("ref", ref)):
            total, terms = self.d_loss(x_real, y_org, y_trg, styles[0], masks)
            opt_d.zero_grad(set_to_none=True)
            self.backward(total)
            self.optimizer_step(opt_d)
            losses.update({f"D/{tag}_{k}": v.detach() for k, v in terms.items()})

        # generator, latent-guided: G, M and S learn (D takes no gradient)
        with self.frozen(disc):
            total, terms = self.g_loss(x_real, y_org, y_trg, latent, masks, lambda_ds)
            steps = self._distinct([opt_g, opt_m, opt_s])
            for opt in steps:
                opt.zero_grad(set_to_none=True)
            self.backward(total)
            for opt in steps:
                self.optimizer_step(opt)
        losses.update({f"G/latent_{k}": v.detach() for k, v in terms.items()})

        # generator, reference-guided: only G learns (gradients still flow through S and D)
        with self.frozen(disc, enc, mapping):
            total, terms = self.g_loss(x_real, y_org, y_trg, ref, masks, lambda_ds)
            opt_g.zero_grad(set_to_none=True)
            self.backward(total)
            self.optimizer_step(opt_g)
        losses.update({f"G/ref_{k}": v.detach() for k, v in terms.items()})

        for name in TRAINED:
            soft_update(self.nets[name], self.ema(name), self.ema_beta)
        losses["G/lambda_ds"] = lambda_ds
        return losses

    @staticmethod
    def _distinct(opts):
        out = []
        for opt in opts:
            if all(opt is not o for o in out):
                out.append(opt)
        return out

    # ---- inference (moving-average nets) --------------------------------------------------
    def _domains(self, y, n):
        y = torch.as_tensor(y, device=self.device).long().reshape(-1)
        return y.expand(n) if y.numel() == 1 else y

    @torch.no_grad()
    def latent_synthesis(self, x_src, y_trg, z=None):
        """Images [N, 3, H, W] in [-1, 1]: `x_src` [N, 3, H, W] translated to domains `y_trg`
        (an int or [N] ints) with styles from latent codes `z` [N, latent_dim] (default: random)
        through the averaged mapping network."""
        x_src = x_src.to(self.device).float()
        y_trg = self._domains(y_trg, x_src.shape[0])
        if z is None:
            z = torch.randn(x_src.shape[0], self.latent_dim, device=self.device)
        s = self.ema("mapping_network")(z.to(self.device).float(), y_trg)
        return self.ema("generator")(x_src, s, masks=self.heatmap(x_src))

    @torch.no_grad()
    def reference_synthesis(self, x_src, x_ref, y_ref):
        """Images [N, 3, H, W] in [-1, 1]: `x_src` rendered in the style of reference images
        `x_ref` of domains `y_ref` (an int or ints, one per reference). One reference styles
        every source; one source takes every reference's style; else one reference per source."""
        x_src, x_ref = x_src.to(self.device).float(), x_ref.to(self.device).float()
        s = self.ema("style_encoder")(x_ref, self._domains(y_ref, x_ref.shape[0]))
        n_src, n_ref = x_src.shape[0], s.shape[0]
        if n_src != n_ref:
            if n_src != 1 and n_ref != 1:
                raise ValueError(f"reference_synthesis: {n_src} sources and {n_ref} references; give as many "
                                 "of each, or one of either")
            x_src, s = x_src.expand(max(n_src, n_ref), -1, -1, -1), s.expand(max(n_src, n_ref), -1)
        return self.ema("generator")(x_src, s, masks=self.heatmap(x_src))

    def fixed_noise(self, n):
        if self._fixed_z is None or self._fixed_z.shape[0] < n:
            self._fixed_z = torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(0))
        return self._fixed_z[:n].to(self.device)

    @torch.no_grad()
    def translate_batch(self, max_images=None):
        """{src, ref, fake_ref, fake_latent} for the current batch (at most `max_images`): each
        source in the style of its reference, and in the reference's domain from a fixed z."""
        b = self.input
        n = b["src"].shape[0] if max_images is None else min(max_images, b["src"].shape[0])
        src, ref, y = b["src"][:n], b["ref"][:n], b["ref_cls"][:n]
        return {"src": src, "ref": ref, "fake_ref": self.reference_synthesis(src, ref, y),
                "fake_latent": self.latent_synthesis(src, y, self.fixed_noise(n))}

    @torch.no_grad()
    def test_iter(self, metrics=None):
        """Reference- and latent-guided translations of the batch (averaged nets) into
        `visual_items`; metrics get (reference-guided fake, reference image)."""
        items = self.translate_batch()
        self.visual_items.clear()
        self.visual_items.update({k: v.clamp(-1, 1) for k, v in items.items()})
        for metric in (metrics or {}).values():
            if not getattr(metric, "needs_class_id", False):
                metric.update(items["fake_ref"], items["ref"])

    def visuals(self):
        """Sample grids of the last batch seen (up to 8 images)."""
        if self.input is None:
            return {}
        return {k: v.clamp(-1, 1) for k, v in self.translate_batch(8).items()}

"""Discriminator-only generation: images made by gradient ascent on a trained GAN discriminator's
score, starting from noise, with no generator at all.

A discriminator D(x) is a learned "realness" score; the course's question is whether that score
alone can generate: start from noise x_0 and climb it,

    g_t     = grad_x D(x_t)                                 (the raw logit; the mean for patch Ds)
    x_{t+1} = clip(x_t + step_size * g_t / rms(g_t) + noise * eps_t, -1, 1),   eps_t ~ N(0, I)

The gradient is divided by its root-mean-square per image, so `step_size` is the (RMS) change of
a pixel per step in [-1, 1] units whatever the scale of D's logits; `noise` > 0 adds Langevin-like
exploration. D runs in eval mode (batch-norm running statistics, no dropout), so the samples of a
batch do not interact and the result does not depend on the batch size (unless D compares the
samples of a batch, as ImprovedGAN's minibatch discrimination does). What comes out is what D
rewards: usually its score rises far above that of real images while the pixels stay
noise-like or only digit-like in places, the reason a GAN trains a generator instead of inverting D.
"""
import inspect
import math
import os

import torch

from ..models.discriminators import build_discriminator
from ..utils.config import load_config
from ..utils.errors import PPGANError
from ..utils.visual import save_grid
from ..weights import load, load_into
from .base_predictor import BasePredictor

INITS = ("uniform", "normal", "generator")


def _image_shape(net, model_cfg):
    """(C, S) of the images the discriminator `net` reads: its config's `input_nc` and `input_size`
    / `size`, else its constructor's defaults, else the generator config's; None where none says."""
    d = model_cfg.get("discriminator") or {}
    g = model_cfg.get("generator") if isinstance(model_cfg.get("generator"), dict) else {}
    defaults = {k: v.default for k, v in inspect.signature(type(net).__init__).parameters.items()
                if v.default is not inspect.Parameter.empty}

    def first(keys, gen_keys):
        for source in (d, defaults):
            for k in keys:
                if source.get(k) is not None:
                    return int(source[k])
        return next((int(g[k]) for k in gen_keys if g.get(k) is not None), None)

    channels = first(("input_nc", "in_channels"), ("output_nc",)) or 1
    return channels, first(("input_size", "size"), ("output_size", "size"))


class DiscriminatorSampler(BasePredictor):
    """Args:
        weight_path (str): a `*_weight.pth` / `*_checkpoint.pth` of a GAN run with a `netD`
            (e.g. configs/dcgan_digits.yaml); the model config is read from the file.
        config (str | dict | None): the training config, when the file carries none.
        device (str): 'auto', 'cpu' or 'cuda'.
        size (int | None): image side, when neither the discriminator's nor the generator's
            config says (DCDiscriminator `input_size`, MLPDiscriminator `size`).
    """

    batch_size = 256

    def __init__(self, weight_path, config=None, device="auto", size=None):
        super().__init__(device, half=False, verbose=False)
        if not weight_path:
            raise PPGANError("DiscriminatorSampler needs weight_path (a *_weight.pth of a GAN run with netD)")
        weights = load(weight_path)
        model_cfg = None
        if config is not None:
            cfg = load_config(config) if isinstance(config, str) else config
            model_cfg = cfg["model"] if "model" in cfg else cfg
        model_cfg = model_cfg or weights.config
        if not isinstance(model_cfg, dict) or not isinstance(model_cfg.get("discriminator"), dict):
            raise PPGANError(f"{weight_path}: no discriminator config (model "
                             f"{(model_cfg or {}).get('name', '?')}); pass the training config with --config, "
                             "or a weight file of a GAN run (it must hold netD)")
        if "netD" not in weights.states:
            raise PPGANError(f"{weight_path} holds no discriminator weights 'netD' (has: "
                             f"{', '.join(map(str, weights.states))})")
        self.netD = build_discriminator(model_cfg["discriminator"])
        required = [p for p in inspect.signature(self.netD.forward).parameters.values()
                    if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(required) != 1:
            raise PPGANError(f"discriminator {type(self.netD).__name__} takes {len(required)} inputs; "
                             "D-only sampling needs an unconditional one, D(image)")
        self.n_class = int(getattr(self.netD, "n_class", 0) or 0)
        if self.n_class and not hasattr(self.netD, "class_scores"):
            raise PPGANError(f"discriminator {type(self.netD).__name__} is class-conditional ({self.n_class} classes) "
                             "and cannot score an image without a class; D-only sampling needs D(image)")
        load_into(self.netD, weights, name="netD")
        self.netD.to(self.device).eval()
        for p in self.netD.parameters():
            p.requires_grad_(False)
        self.channels, cfg_size = _image_shape(self.netD, model_cfg)
        self.size = int(size or cfg_size or 0)
        if self.size < 1:
            raise PPGANError("cannot tell the discriminator's image size from the config: pass size")
        self.model_cfg = model_cfg
        self._weight_path, self._config = weight_path, config

    def score(self, x):
        """D's raw score (logit) per image [N] (the mean over D's outputs for patch discriminators;
        for a discriminator conditioned on K classes or clusters, as a self-conditioned GAN's, the
        soft maximum over them: log(mean_y exp D(x, y)), so the climb may settle in any class)."""
        x = x.to(self.device)
        if self.n_class:
            return torch.logsumexp(self.netD.class_scores(x).float(), 1) - math.log(self.n_class)
        return self.netD(x).flatten(1).mean(1)

    @torch.no_grad()
    def scores(self, x):
        """`score` over x in batches, on the CPU."""
        b = self.batch_size
        return torch.cat([self.score(x[i:i + b]).float().cpu() for i in range(0, len(x), b)])

    def initial(self, n, seed=0, init="uniform"):
        """n starting images [n, C, S, S] in [-1, 1]: 'uniform' U(-1, 1), 'normal' N(0, 0.5^2)
        clipped, or 'generator': the same file's generator samples (as gan_generate.py draws them
        with `seed`), to see what D's gradient does to a GAN's own samples."""
        if init not in INITS:
            raise PPGANError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        if init == "generator":
            from .gan_predictor import GANPredictor

            pred = GANPredictor(config=self._config, weight_path=self._weight_path, device=self.device.type)
            if pred.n_class:
                raise PPGANError("init 'generator' needs an unconditional generator")
            x = pred.generate(n, seed=seed)[0]
            if x.shape[1:] != (self.channels, self.size, self.size):
                raise PPGANError(f"the generator makes {tuple(x.shape[1:])} images, D reads "
                                 f"{(self.channels, self.size, self.size)}")
            return x
        gen = torch.Generator().manual_seed(seed)
        shape = (n, self.channels, self.size, self.size)
        if init == "uniform":
            return torch.rand(shape, generator=gen) * 2 - 1
        return (0.5 * torch.randn(shape, generator=gen)).clamp_(-1, 1)

    def ascend(self, x, steps=200, step_size=0.02, noise=0.0, seed=0):
        """Gradient ascent on D's score from images x [N, C, S, S] in [-1, 1]; the result (CPU).
        Without noise the result does not depend on `batch_size`; with noise its draws follow the batches."""
        if steps < 0 or step_size < 0 or noise < 0:
            raise PPGANError(f"steps, step_size and noise must be >= 0, got {steps}, {step_size}, {noise}")
        gen = torch.Generator().manual_seed(seed + 1)
        out = []
        for i in range(0, len(x), self.batch_size):
            xb = x[i:i + self.batch_size].to(self.device).float().clone()
            for _ in range(steps):
                xb.requires_grad_(True)
                with torch.enable_grad():
                    (grad,) = torch.autograd.grad(self.score(xb).sum(), xb)
                rms = grad.flatten(1).pow(2).mean(1).sqrt().clamp_min(1e-12).view(-1, 1, 1, 1)
                with torch.no_grad():
                    xb = xb + step_size * grad / rms
                    if noise > 0:
                        xb = xb + noise * torch.randn(xb.shape, generator=gen).to(xb.device)
                    xb = xb.clamp(-1, 1)
            out.append(xb.detach().cpu())
        return torch.cat(out) if out else x.new_zeros((0, self.channels, self.size, self.size))

    def sample(self, n=64, steps=200, step_size=0.02, noise=0.0, seed=0, init="uniform"):
        """(start images, final images, D scores before [n], after [n]), images in [-1, 1] on the CPU."""
        if n < 1:
            raise PPGANError(f"n must be >= 1, got {n}")
        x0 = self.initial(n, seed, init)
        x = self.ascend(x0, steps, step_size, noise, seed)
        return x0, x, self.scores(x0), self.scores(x)

    def run(self, n=64, steps=200, step_size=0.02, noise=0.0, seed=0, init="uniform",
            output=os.path.join("output", "DOnlySampling")):
        """Write start.png (the noise) and samples.png (after the ascent) into `output`; return
        {'start', 'samples': paths, 'score_before', 'score_after': mean D scores, 'images': tensor}."""
        x0, x, s0, s1 = self.sample(n, steps, step_size, noise, seed, init)
        nrow = max(1, int(round(n ** 0.5)))
        return {"start": save_grid(x0, os.path.join(output, "start.png"), nrow=nrow),
                "samples": save_grid(x, os.path.join(output, "samples.png"), nrow=nrow),
                "score_before": float(s0.mean()), "score_after": float(s1.mean()), "images": x}

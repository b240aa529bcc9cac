"""Generate images from a trained GAN: sample grid, interpolation strip, 2-D latent plane.

Memory stays bounded whatever the number of samples: latents are drawn and run through the
generator in batches (`batch_size` images, fewer for large images: at most `BATCH_PIXELS` output
pixels per batch), and a grid holds at most `max_grid_pixels` pixels; more samples than one grid
holds are written as several numbered grids (samples_00000.png, samples_00001.png, ...), each
assembled from its batches and written before the next is generated. The batch size depends only
on the generator (never on free memory), so a seed gives the same images on every machine.

A weight file that holds a moving average of the generator (`netG_ema`, written by models with
`ema_decay`) is sampled through it unless `use_ema=False`. `truncation` (BigGAN's truncation
trick, Brock et al. 2019, sec. 3.1) draws z from the standard normal truncated to [-t, t]: each
sample's z is mapped through its normal quantile, so with the same seed sample i at threshold t
is sample i of the untruncated draw pulled towards 0 (a sweep over t shows the same images
losing variety and gaining fidelity).
"""
import math
import os

import torch
from torch.special import ndtr, ndtri

from ..models.generators import build_generator
from ..utils.config import load_config
from ..utils.errors import CheckpointError, PPGANError
from ..utils.visual import save_grid
from ..weights import load, load_into
from .base_predictor import BasePredictor

MAX_GRID_PIXELS = 1 << 23  # 8 megapixels per grid file (e.g. 2896 x 2896)
BATCH_PIXELS = 1 << 22     # output pixels per generator batch (64 images of 256 x 256)
GRID_PADDING = 2           # pixels between and around the images of a grid (`save_grid`)


def _describe(model_cfg):
    """'GANModel (generator DCGenerator)': what a model config builds, for messages."""
    name = _generator_name(model_cfg)
    return f"{model_cfg.get('name', '?')}" + (f" (generator {name})" if name else "")


def _generator_name(model_cfg):
    gen = model_cfg.get("generator")
    return gen.get("name") if isinstance(gen, dict) else None


def _generator_diff(saved, model_cfg, limit=3):
    """'generator.ngf (32 in the file, 16 here)', ... for the first generator settings that differ."""
    a, b = saved.get("generator") or {}, model_cfg.get("generator") or {}
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return []
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return [f"generator.{k} ({a.get(k)!r} in the file, {b.get(k)!r} here)" for k in keys[:limit]]


def truncate_latent(z, threshold):
    """z ~ N(0, 1) elementwise -> the standard normal truncated to [-threshold, threshold], by
    quantile: u = Phi(z) is uniform, and Phi^-1(Phi(-t) + u (Phi(t) - Phi(-t))) follows the
    truncated normal. Monotone in z, so every sample keeps its place. `threshold` > 0."""
    t = float(threshold)
    if not t > 0:
        raise PPGANError(f"truncation must be > 0, got {threshold}")
    lo = ndtr(torch.tensor(-t, dtype=torch.float64))
    u = ndtr(z.double())
    return ndtri(lo + u * (1 - 2 * lo)).clamp(-t, t).to(z.dtype)


def parse_truncations(text):
    """'0.2,0.4,1' -> [0.2, 0.4, 1.0]; PPGANError for an empty list, a non-number or a value <= 0."""
    values = []
    for part in str(text).split(","):
        try:
            v = float(part)
        except ValueError:
            raise PPGANError(f"truncation values must be numbers separated by commas, got {part.strip()!r}") from None
        if not v > 0 or math.isinf(v):
            raise PPGANError(f"truncation values must be > 0 and finite, got {part.strip()}")
        values.append(v)
    return values


def slerp(a, b, t):
    """Spherical interpolation between latent batches a, b (rows) at fraction t."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


class GANPredictor(BasePredictor):
    """Args:
        config (str | dict | None): the training config (path or dict). Optional when the
            weight file was written by ppgan (it stores the model config).
        weight_path (str): a `*_weight.pth` / `*_checkpoint.pth` of ours, or a PaddleGAN
            `.pdparams` holding `netG` (then `config` is required); any file
            `ppgan.weights.load` reads.
        device (str): 'auto', 'cpu' or 'cuda'.
        use_ema (bool): sample through the file's moving-average generator `netG_ema` when it
            has one (default True); False: the trained `netG`. `net_name` says which was loaded.
    """

    batch_size = 64  # images per generator call (fewer when they are large; see BATCH_PIXELS)

    def __init__(self, config=None, weight_path=None, device="auto", use_ema=True):
        super().__init__(device)
        if not weight_path:
            raise PPGANError("GANPredictor needs weight_path (a *_weight.pth from training)")
        model_cfg = None
        if config is not None:
            cfg = load_config(config) if isinstance(config, str) else config
            model_cfg = cfg["model"] if "model" in cfg else cfg
        weights = load(weight_path)
        if model_cfg is None:
            model_cfg = weights.config
            if model_cfg is None:
                what = "a .pdparams file" if weights.format == "pdparams" else weight_path
                raise PPGANError(f"{what} carries no model config: pass --config too")
        saved = weights.config if isinstance(weights.config, dict) else None
        if saved is not None and _generator_name(saved) != _generator_name(model_cfg):
            raise PPGANError(f"{weight_path} was written by model {_describe(saved)}, the config builds "
                             f"{_describe(model_cfg)}; drop --config (the file carries its own) or pass the one "
                             "it was trained with")
        if not isinstance(model_cfg.get("generator"), dict):
            raise PPGANError(f"model {model_cfg.get('name', '?')} has no 'generator' section: not a GAN this tool "
                             "can sample")
        self.netG = build_generator(model_cfg["generator"])
        if not hasattr(self.netG, "random_inputs"):
            raise PPGANError(f"generator {type(self.netG).__name__} of model {model_cfg.get('name', '?')} turns "
                             "images into images, it does not draw from latent vectors: gan_generate needs a GAN "
                             "trained from noise (e.g. configs/dcgan_digits.yaml)")
        try:
            self.net_name = "netG_ema" if use_ema and "netG_ema" in weights.states else "netG"
            load_into(self.netG, weights, name=self.net_name)
        except CheckpointError as e:
            diff = _generator_diff(saved, model_cfg) if saved is not None else []
            if not diff:
                raise
            raise CheckpointError(f"{e}; the config differs in {', '.join(diff)}") from None
        self.weight_files = list(weights.files)
        self.model_cfg = model_cfg
        self.netG.to(self.device).eval()
        self.n_class = int(getattr(self.netG, "n_class", 0))

    def _latents(self, n, gen, truncation=None):
        """n latents of the generator; `truncation` truncates the normal noise only (an InfoGAN
        generator's one-hot code, its last `n_categorical` entries, is kept)."""
        z = self.netG.random_inputs(n, generator=gen)
        z = z[0] if isinstance(z, (list, tuple)) else z
        if truncation is None:
            return z
        k = int(getattr(self.netG, "n_categorical", 0))
        if not k:
            return truncate_latent(z, truncation)
        flat = z.reshape(n, -1).clone()
        flat[:, :-k] = truncate_latent(flat[:, :-k], truncation)
        return flat.reshape(z.shape)

    def _forward(self, z, classes=None):
        z = z.to(self.device)
        if self.n_class:
            return self.netG(z, classes.to(self.device)).float().cpu()
        return self.netG(z).float().cpu()

    def _forward_batched(self, z, classes=None):
        """`_forward` over `z` in batches of `_batch()` rows (the latents are already drawn)."""
        b = self._batch()
        return torch.cat([self._forward(z[i:i + b], None if classes is None else classes[i:i + b])
                          for i in range(0, z.shape[0], b)])

    @torch.no_grad()
    def image_shape(self):
        """(C, H, W) of one generated image (from one forward pass, kept)."""
        if getattr(self, "_image_shape", None) is None:
            z = self._latents(1, torch.Generator().manual_seed(0))
            self._image_shape = tuple(self._forward(z, torch.zeros(1, dtype=torch.long)).shape[1:])
        return self._image_shape

    def _batch(self):
        """Images per generator call: `batch_size`, fewer for large images (at most BATCH_PIXELS)."""
        _, h, w = self.image_shape()
        return max(1, min(self.batch_size, BATCH_PIXELS // (h * w)))

    def _classes(self, start, count, class_id, nrow):
        """Class ids of samples start..start+count: `class_id`, or classes cycling row by row."""
        if not self.n_class:
            return None
        if class_id is not None:
            return torch.full((count,), int(class_id))
        return (torch.arange(start, start + count) // nrow) % self.n_class

    @torch.no_grad()
    def batches(self, n, class_id=None, seed=0, nrow=None, truncation=None):
        """Yield (images [b, C, H, W] in [-1, 1], class ids or None) for n samples, a batch at a
        time (the samples `generate` returns, in order, without holding them all); `truncation`:
        z from the normal truncated to [-truncation, truncation] (None: untruncated)."""
        self._check_class(class_id)
        gen = torch.Generator().manual_seed(seed)
        nrow = nrow or (self.n_class if self.n_class and class_id is None else math.ceil(math.sqrt(n)))
        b = self._batch()
        for start in range(0, n, b):
            count = min(b, n - start)
            classes = self._classes(start, count, class_id, nrow)
            yield self._forward(self._latents(count, gen, truncation), classes), classes

    @torch.no_grad()
    def generate(self, n=64, class_id=None, seed=0, nrow=None, truncation=None):
        """n samples [n, C, H, W] in [-1, 1] (all in memory: use `batches` or `run` for many);
        conditional models cycle classes row by row unless `class_id` is given; `truncation` as
        in `batches`."""
        parts = list(self.batches(n, class_id, seed, nrow, truncation))
        classes = torch.cat([c for _, c in parts]) if self.n_class else None
        return torch.cat([imgs for imgs, _ in parts]), classes

    @torch.no_grad()
    def interpolate(self, rows=4, steps=10, class_id=None, seed=0, truncation=None):
        """`rows` strips of `steps` images walking between two random latents (slerp); the code of an
        InfoGAN or self-conditioned generator (a cluster) stays the one of the strip's first latent
        (the walk is in the noise)."""
        gen = torch.Generator().manual_seed(seed + 1)
        a, b = self._latents(rows, gen, truncation), self._latents(rows, gen, truncation)
        shape = a.shape[1:]
        a, b = a.reshape(rows, -1), b.reshape(rows, -1)
        k = int(getattr(self.netG, "n_categorical", 0))
        t = torch.linspace(0, 1, steps)
        if k:
            code = a[:, -k:].repeat_interleave(steps, 0)
            noise = torch.stack([slerp(a[:, :-k], b[:, :-k], float(ti)) for ti in t], 1).reshape(rows * steps, -1)
            z = torch.cat([noise, code], 1).reshape(rows * steps, *shape)
        else:
            z = torch.stack([slerp(a, b, float(ti)) for ti in t], 1).reshape(rows * steps, *shape)
        classes = None
        if self.n_class:
            self._check_class(class_id)
            per_row = torch.full((rows,), int(class_id)) if class_id is not None else torch.arange(rows) % self.n_class
            classes = per_row.repeat_interleave(steps)
        return self._forward_batched(z, classes)

    @torch.no_grad()
    def latent_plane(self, n=16):
        """The whole 2-D latent plane as an n x n grid (generators with `latent_grid`)."""
        if not hasattr(self.netG, "latent_grid") or getattr(self.netG, "latent_dim", 0) != 2:
            return None
        return self._forward_batched(self.netG.latent_grid(n))

    def _check_class(self, class_id):
        if class_id is not None and not self.n_class:
            raise PPGANError("class_id given, but this generator is not class-conditional")
        if class_id is not None and not 0 <= int(class_id) < self.n_class:
            raise PPGANError(f"class_id must be in 0..{self.n_class - 1}, got {class_id}")

    def grid_pixels(self, count, ncol, padding=GRID_PADDING):
        """Pixels of a grid of `count` images, `ncol` per row (as `save_grid` lays it out)."""
        _, h, w = self.image_shape()
        ncol = min(ncol, count)
        return (math.ceil(count / ncol) * (h + padding) + padding) * (ncol * (w + padding) + padding)

    def images_per_grid(self, n, nrow=None, max_grid_pixels=MAX_GRID_PIXELS):
        """How many of n samples one grid file takes: all n if they fit in `max_grid_pixels`; else
        the most that do (whole rows of `nrow` when the row width is fixed; a square otherwise),
        at least one row."""
        if nrow:  # conditional models: rows of n_class images, one class per row
            _, h, w = self.image_shape()
            width = min(nrow, n) * (w + GRID_PADDING) + GRID_PADDING
            rows = (max_grid_pixels // width - GRID_PADDING) // (h + GRID_PADDING)
            return min(n, max(1, rows) * nrow)
        if self.grid_pixels(n, math.ceil(math.sqrt(n))) <= max_grid_pixels:
            return n
        side = max(1, math.isqrt(max_grid_pixels // self.grid_pixels(1, 1)) + 1)
        while side > 1 and self.grid_pixels(side * side, side) > max_grid_pixels:
            side -= 1
        return side * side

    def run(self, n=64, class_id=None, seed=0, output=os.path.join("output", "GANGenerate"), steps=10, plane=16,
            max_grid_pixels=MAX_GRID_PIXELS, truncation=None):
        """Write samples.png, interpolation.png (and latent_plane.png for 2-D latents) into
        the folder `output`; return {name: path}. More samples than one grid of at most
        `max_grid_pixels` pixels holds go to samples_00000.png, samples_00001.png, ... (then
        'samples' maps to the list of paths), generated one grid at a time. `truncation`: z
        from the truncated normal for the samples and the interpolation (None: untruncated)."""
        self._check_class(class_id)
        if truncation is not None:
            truncate_latent(torch.zeros(1), truncation)  # a bad value fails before any file is written
        if int(max_grid_pixels) < 1:
            raise PPGANError(f"max_grid_pixels must be >= 1, got {max_grid_pixels}")
        rows = min(self.n_class, 10) if self.n_class and class_id is None else 4
        if self.grid_pixels(rows * steps, steps) > max_grid_pixels:
            _, h, w = self.image_shape()
            most = (max_grid_pixels // (rows * (h + GRID_PADDING) + GRID_PADDING) - GRID_PADDING) // (w + GRID_PADDING)
            fix = f"use at most {most} steps" if most >= 2 else \
                f"raise max_grid_pixels to at least {self.grid_pixels(rows * 2, 2)} (2 steps)"
            raise PPGANError(f"{steps} interpolation steps make a strip of {self.grid_pixels(rows * steps, steps)} "
                             f"pixels ({rows} rows of {steps} images of {w}x{h}), more than the {max_grid_pixels} "
                             f"a grid may have: {fix}")
        paths = {"samples": self._write_samples(n, class_id, seed, output, max_grid_pixels, truncation)}
        strip = self.interpolate(rows=rows, steps=steps, class_id=class_id, seed=seed, truncation=truncation)
        paths["interpolation"] = save_grid(strip, os.path.join(output, "interpolation.png"), nrow=steps)
        plane_imgs = self.latent_plane(plane)
        if plane_imgs is not None:
            paths["latent_plane"] = save_grid(plane_imgs, os.path.join(output, "latent_plane.png"), nrow=plane,
                                              padding=0)
        return paths

    def truncation_sweep(self, values, n=64, class_id=None, seed=0, output=os.path.join("output", "GANGenerate"),
                         max_grid_pixels=MAX_GRID_PIXELS):
        """One sample grid per truncation value, the same seed (so the same samples, truncated
        more or less): truncation_0.20.png, ...; returns {'truncation_0.20': path, ...}."""
        self._check_class(class_id)
        values = list(values)
        if not values:
            raise PPGANError("truncation sweep needs at least one value")
        for v in values:
            truncate_latent(torch.zeros(1), v)
        return {f"truncation_{v:.2f}": self._write_samples(n, class_id, seed, output, max_grid_pixels, v,
                                                           name=f"truncation_{v:.2f}")
                for v in values}

    def _write_samples(self, n, class_id, seed, output, max_grid_pixels, truncation=None, name="samples"):
        """<name>.png, or numbered grids of `images_per_grid` samples each; the path(s)."""
        fixed_row = self.n_class if self.n_class and class_id is None else None
        per_grid = self.images_per_grid(n, fixed_row, max_grid_pixels)
        if per_grid >= n:
            samples, _ = self.generate(n, class_id, seed, nrow=fixed_row, truncation=truncation)
            return save_grid(samples, os.path.join(output, f"{name}.png"),
                             nrow=fixed_row or math.ceil(math.sqrt(n)))
        n_files = math.ceil(n / per_grid)
        digits = max(5, len(str(n_files - 1)))
        paths, pending, count, written = [], [], 0, 0
        for imgs, _ in self.batches(n, class_id, seed, nrow=fixed_row, truncation=truncation):
            pending.append(imgs)
            count += imgs.shape[0]
            while count >= per_grid or (count and written + count == n):  # a full grid, or the last one
                block = torch.cat(pending)
                take = min(per_grid, count)
                path = os.path.join(output, f"{name}_{len(paths):0{digits}d}.png")
                paths.append(save_grid(block[:take], path, nrow=fixed_row or math.ceil(math.sqrt(take))))
                written += take
                pending, count = [block[take:]], count - take
        return paths

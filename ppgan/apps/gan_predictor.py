"""Generate images from a trained GAN: sample grid, interpolation strip, 2-D latent plane."""
import math
import os

import torch

from ..models.generators import build_generator
from ..utils.config import load_config
from ..utils.errors import PPGANError
from ..utils.visual import save_grid
from ..weights import load, load_into
from .base_predictor import BasePredictor


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
    """

    def __init__(self, config=None, weight_path=None, device="auto"):
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
        self.netG = build_generator(model_cfg["generator"])
        load_into(self.netG, weights, name="netG")
        self.weight_files = list(weights.files)
        self.model_cfg = model_cfg
        self.netG.to(self.device).eval()
        self.n_class = int(getattr(self.netG, "n_class", 0))

    def _latents(self, n, gen):
        z = self.netG.random_inputs(n, generator=gen)
        return z[0] if isinstance(z, (list, tuple)) else z

    def _forward(self, z, classes=None):
        z = z.to(self.device)
        if self.n_class:
            return self.netG(z, classes.to(self.device)).float().cpu()
        return self.netG(z).float().cpu()

    @torch.no_grad()
    def generate(self, n=64, class_id=None, seed=0, nrow=None):
        """n samples [n, C, H, W] in [-1, 1]; conditional models cycle classes row by row
        unless `class_id` is given."""
        gen = torch.Generator().manual_seed(seed)
        z = self._latents(n, gen)
        nrow = nrow or (self.n_class if self.n_class and class_id is None else math.ceil(math.sqrt(n)))
        classes = None
        if self.n_class:
            self._check_class(class_id)
            classes = torch.full((n,), int(class_id)) if class_id is not None else \
                (torch.arange(n) // nrow) % self.n_class
        return self._forward(z, classes), classes

    @torch.no_grad()
    def interpolate(self, rows=4, steps=10, class_id=None, seed=0):
        """`rows` strips of `steps` images walking between two random latents (slerp)."""
        gen = torch.Generator().manual_seed(seed + 1)
        a, b = self._latents(rows, gen), self._latents(rows, gen)
        shape = a.shape[1:]
        a, b = a.reshape(rows, -1), b.reshape(rows, -1)
        t = torch.linspace(0, 1, steps)
        z = torch.stack([slerp(a, b, float(ti)) for ti in t], 1).reshape(rows * steps, *shape)
        classes = None
        if self.n_class:
            self._check_class(class_id)
            per_row = torch.full((rows,), int(class_id)) if class_id is not None else torch.arange(rows) % self.n_class
            classes = per_row.repeat_interleave(steps)
        return self._forward(z, classes)

    @torch.no_grad()
    def latent_plane(self, n=16):
        """The whole 2-D latent plane as an n x n grid (generators with `latent_grid`)."""
        if not hasattr(self.netG, "latent_grid") or getattr(self.netG, "latent_dim", 0) != 2:
            return None
        return self._forward(self.netG.latent_grid(n))

    def _check_class(self, class_id):
        if class_id is not None and not 0 <= int(class_id) < self.n_class:
            raise PPGANError(f"class_id must be in 0..{self.n_class - 1}, got {class_id}")

    def run(self, n=64, class_id=None, seed=0, output="output_dir/gan_generate", steps=10, plane=16):
        """Write samples.png, interpolation.png (and latent_plane.png for 2-D latents) into
        the folder `output`; return {name: path}."""
        if class_id is not None and not self.n_class:
            raise PPGANError("class_id given, but this generator is not class-conditional")
        samples, classes = self.generate(n, class_id, seed)
        nrow = self.n_class if self.n_class and class_id is None else math.ceil(math.sqrt(n))
        paths = {"samples": save_grid(samples, os.path.join(output, "samples.png"), nrow=nrow)}
        rows = min(self.n_class, 10) if self.n_class and class_id is None else 4
        strip = self.interpolate(rows=rows, steps=steps, class_id=class_id, seed=seed)
        paths["interpolation"] = save_grid(strip, os.path.join(output, "interpolation.png"), nrow=steps)
        plane_imgs = self.latent_plane(plane)
        if plane_imgs is not None:
            paths["latent_plane"] = save_grid(plane_imgs, os.path.join(output, "latent_plane.png"), nrow=plane,
                                              padding=0)
        return paths


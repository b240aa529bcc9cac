"""StyleGAN2 applications, with PaddleGAN's class names and arguments: sample grids
(`StyleGANv2Predictor`), mixing two W+ latents level by level (`StyleGANv2MixingPredictor`),
projecting an image into W+ (`StyleGANv2FittingPredictor`) and a latent interpolation video
(`StyleGANv2Predictor.interpolation_video`).

Paper: Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020
(https://arxiv.org/abs/1912.04958); projection after its Section 5 / rosinality's
`projector.py` as PaddleGAN's `styleganv2fitting_predictor.py` runs it (LPIPS + MSE, Adam on
the W+ latent, learning rate decayed exponentially).

Everything random is drawn from a `torch.Generator` seeded by `seed` on the CPU, so a seed gives
the same images on every device; the layers' noise is the generator's stored noise buffers
(`randomize_noise=False`), and the truncation centre is the mean w of 10,240 z drawn with a
fixed seed, so truncation 0 gives the same "mean image" for every seed.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

from ..models.generators import StyleGANv2Generator
from ..utils.errors import CheckpointError, ConfigError
from ..utils.visual import make_grid, save_image, tensor2img
from .base_predictor import BasePredictor, log

PADDLEGAN = "https://paddlegan.bj.bcebos.com"
# PaddleGAN's `model_cfgs` (ppgan/apps/styleganv2_predictor.py); catalogue names 'stylegan2-<type>'.
MODEL_CFGS = {
    "ffhq-config-f": {"url": f"{PADDLEGAN}/models/stylegan2-ffhq-config-f.pdparams", "size": 1024, "style_dim": 512,
                      "n_mlp": 8, "channel_multiplier": 2},
    "animeface-512": {"url": f"{PADDLEGAN}/models/stylegan2-animeface-512.pdparams", "size": 512, "style_dim": 512,
                      "n_mlp": 8, "channel_multiplier": 2},
}
MEAN_STYLE_SEED = 0x5eed  # the truncation centre does not depend on the sampling seed
MEAN_STYLE_SAMPLES = 10 * 1024  # PaddleGAN: the mean of 10 means of 1024 w
GENERATOR_KEYS = ("gen_ema", "gen", "generator", "netG_ema", "netG")  # in training files, EMA first


def make_image(tensor):
    """[N, 3, H, W] in [-1, 1] -> uint8 [N, H, W, 3] (PaddleGAN's helper)."""
    return ((tensor.detach().float() + 1) / 2 * 255).round().clamp(0, 255).permute(0, 2, 3, 1).cpu().numpy() \
        .astype(np.uint8)


def _weights_file(model_type):
    from ..weights import WEIGHTS, download, resolve_weight, weights_dir

    name = f"stylegan2-{model_type}"
    if name in WEIGHTS:
        return resolve_weight(name)
    url = MODEL_CFGS[model_type]["url"]
    path = os.path.join(weights_dir(), os.path.basename(url))
    return path if os.path.isfile(path) else download(url, path)


def _generator_state(weights):
    for key in GENERATOR_KEYS:
        if key in weights.states:
            return weights.states[key]
    return weights.state()


class StyleGANv2Predictor(BasePredictor):
    """Sample grids from a StyleGAN2 generator (PaddleGAN's arguments).

    Args:
        output_path (str): folder for the files. Default: 'output_dir'.
        weight_path (str | None): a generator file: PaddleGAN's `.pdparams` (flat), or a
            training weight / checkpoint file (the EMA generator `gen_ema` preferred); our files
            carry the generator's config, which then overrides size .. channel_multiplier.
        model_type (str | None): 'ffhq-config-f' or 'animeface-512' (PaddleGAN's pretrained
            files, downloaded to `$PPGAN_HOME/weights`) when no weight_path.
        seed (int | None): default seed of `run`. None: a random one.
        size, style_dim, n_mlp, channel_multiplier: the generator's (ignored with model_type).
        device (str): 'auto', 'cpu' or 'cuda'. Default: 'auto'.
    """

    def __init__(self, output_path="output_dir", weight_path=None, model_type=None, seed=None, size=1024,
                 style_dim=512, n_mlp=8, channel_multiplier=2, device="auto", verbose=False):
        from ..weights import apply_state, load

        super().__init__(device=device, half=False, verbose=verbose)
        self.output_path = output_path
        self.seed = seed
        kwargs = {"size": size, "style_dim": style_dim, "n_mlp": n_mlp, "channel_multiplier": channel_multiplier}
        if weight_path is None:
            if model_type is None:
                raise ConfigError("StyleGANv2 needs --weight_path FILE or --model_type "
                                  f"({', '.join(MODEL_CFGS)})")
            if model_type not in MODEL_CFGS:
                raise ConfigError(f"unknown --model_type {model_type!r}; known: {', '.join(MODEL_CFGS)}")
            kwargs.update({k: v for k, v in MODEL_CFGS[model_type].items() if k != "url"})
            weight_path = _weights_file(model_type)
        weights = load(weight_path)
        gcfg = (weights.config or {}).get("generator") if isinstance(weights.config, dict) else None
        if isinstance(gcfg, dict) and gcfg.get("name") == "StyleGANv2Generator":
            kwargs = {k: v for k, v in gcfg.items() if k != "name"}
        try:
            self.generator = StyleGANv2Generator(**kwargs)
        except TypeError as e:
            raise ConfigError(f"{weight_path}: generator arguments do not fit StyleGANv2Generator: {e}") from None
        try:
            apply_state(self.generator, _generator_state(weights), weights.format, weights.path or "the state dict")
        except CheckpointError as e:
            raise CheckpointError(f"{e} (built with size={self.generator.size}, style_dim={self.generator.style_dim}, "
                                  f"n_mlp={len(self.generator.style) - 1}: pass the --size/--style_dim/--n_mlp/"
                                  "--channel_multiplier the file was trained with)") from None
        self.generator.eval().requires_grad_(False).to(self.device)
        self._mean_style = None

    # ---- latents -----------------------------------------------------------------------------
    @property
    def n_latent(self):
        return self.generator.n_latent

    @torch.no_grad()
    def mean_style(self):
        """The truncation centre: mean w of `MEAN_STYLE_SAMPLES` z drawn with a fixed seed, [1, D]."""
        if self._mean_style is None:
            gen = torch.Generator().manual_seed(MEAN_STYLE_SEED)
            z = torch.randn(MEAN_STYLE_SAMPLES, self.generator.style_dim, generator=gen)
            w = torch.cat([self.generator.style(c.to(self.device)) for c in z.split(1024)])
            self._mean_style = w.mean(0, keepdim=True)
        return self._mean_style

    def _rng(self, seed):
        seed = self.seed if seed is None else seed
        if seed is None:
            seed = int(torch.randint(0, 2 ** 31 - 1, ()))
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
        return torch.Generator().manual_seed(int(seed))

    def random_z(self, n, seed=None):
        """z [n, style_dim] from the seeded CPU generator."""
        return torch.randn(n, self.generator.style_dim, generator=self._rng(seed)).to(self.device)

    @torch.no_grad()
    def w_plus(self, z, truncation=1.0):
        """W+ latents [N, n_latent, D] of z [N, D], truncated towards `mean_style()`."""
        _check_truncation(truncation)
        w = self.generator.style(z.to(self.device))
        w = self.mean_style() + truncation * (w - self.mean_style())
        return w.unsqueeze(1).repeat(1, self.n_latent, 1)

    @torch.no_grad()
    def synthesize(self, latent):
        """Images [N, 3, size, size] in [-1, 1] (clamped) of W+ latents [N, n_latent, D]."""
        latent = latent.to(self.device, torch.float32)
        out = torch.cat([self.generator([c], input_is_latent=True, randomize_noise=False)[0]
                         for c in latent.split(16)])
        return out.clamp(-1, 1)

    # ---- the app -----------------------------------------------------------------------------
    def run(self, n_row=3, n_col=5, seed=None, truncation=0.7):
        """Write `sample.png` (an n_row x n_col grid) and `sample_mixing_0.png` /
        `sample_mixing_1.png` (PaddleGAN's style-mixing grids: coarse styles of the row images with
        the fine styles of the column images) under `output_path`.

        Args:
            n_row, n_col (int): grid shape (PaddleGAN's positional order).
            seed (int | None): default: the constructor's seed.
            truncation (float): in [0, 1]; 0 gives the mean image. Default: 0.7 (PaddleGAN's).
        Returns:
            ndarray: the sample grid, uint8 [H, W, 3].
        """
        for name, v in (("n_row", n_row), ("n_col", n_col)):
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {v!r}")
        _check_truncation(truncation)
        rng = self._rng(seed)
        z = torch.randn(n_row * n_col, self.generator.style_dim, generator=rng)
        images = self.synthesize(self.w_plus(z, truncation))
        grid = tensor2img(make_grid(images.cpu(), nrow=n_col), (-1., 1.))
        os.makedirs(self.output_path, exist_ok=True)
        save_image(grid, os.path.join(self.output_path, "sample.png"))
        for j in range(2):
            mixing = self.style_mixing_grid(n_col, n_row, rng, truncation)
            save_image(tensor2img(make_grid(mixing.cpu(), nrow=n_col + 1), (-1., 1.)),
                       os.path.join(self.output_path, f"sample_mixing_{j}.png"))
        return grid

    @torch.no_grad()
    def style_mixing_grid(self, n_source, n_target, rng, truncation=0.7):
        """PaddleGAN's style-mixing table [(n_target + 1) * (n_source + 1), 3, S, S]: a black
        corner, the sources along the top, each target down the left followed by the target's
        coarse styles (layers < n_latent // 2) mixed with each source's fine ones."""
        d = self.generator.style_dim
        src = self.w_plus(torch.randn(n_source, d, generator=rng), truncation)
        tgt = self.w_plus(torch.randn(n_target, d, generator=rng), truncation)
        cut = self.n_latent // 2
        size = self.generator.size
        rows = [-torch.ones(1, 3, size, size, device=self.device), self.synthesize(src)]
        tgt_img = self.synthesize(tgt)
        for i in range(n_target):
            mixed = torch.cat([tgt[i:i + 1, :cut].expand(n_source, -1, -1), src[:, cut:]], 1)
            rows += [tgt_img[i:i + 1], self.synthesize(mixed)]
        return torch.cat(rows)

    @torch.no_grad()
    def interpolation_video(self, path, seeds=(0, 1, 2), frames_per_seed=30, fps=30, truncation=0.7, crf=18,
                            codec=None):
        """A video through the w of `seeds` in turn (linear in W, looping back to the first),
        encoded by `ppgan.video.encode.VideoWriter` (atomic: the file appears when complete).
        Returns `path`."""
        from ..video.encode import VideoWriter

        seeds = list(seeds)
        if len(seeds) < 2 or int(frames_per_seed) < 1:
            raise ConfigError(f"an interpolation video needs >= 2 seeds and frames_per_seed >= 1, "
                              f"got {len(seeds)} seeds and {frames_per_seed}")
        keys = torch.cat([self.w_plus(self.random_z(1, s), truncation) for s in seeds])
        keys = torch.cat([keys, keys[:1]])
        size = self.generator.size
        with VideoWriter(path, size, size, fps, codec=codec, crf=crf) as writer:
            for k in range(len(seeds)):
                for t in torch.arange(int(frames_per_seed), dtype=torch.float32) / int(frames_per_seed):
                    frame = self.synthesize(torch.lerp(keys[k:k + 1], keys[k + 1:k + 2], float(t)))
                    writer.write(make_image(frame)[0])
        return path


def _check_truncation(truncation):
    if not isinstance(truncation, (int, float)) or not 0 <= truncation <= 1:
        raise ConfigError(f"truncation must be in [0, 1], got {truncation!r}")


def load_latent(path, n_latent, style_dim):
    """A W+ latent [1, n_latent, D] from a `.npy` file: [n_latent, D] (what fitting saves),
    [1, n_latent, D], or one w [D] / [1, D] (repeated over the levels)."""
    from ..utils.io import read_regular

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise OSError(f"latent file {path} does not exist")
    try:
        import io

        arr = np.load(io.BytesIO(read_regular(path, max_bytes=1 << 30)), allow_pickle=False)
    except ValueError as e:
        raise ConfigError(f"{path} is not a .npy latent: {str(e).splitlines()[0]}") from None
    if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.floating):
        raise ConfigError(f"{path} is not a float latent array")
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 1:
        arr = np.repeat(arr[None], n_latent, 0)
    if arr.shape != (n_latent, style_dim):
        raise ConfigError(f"{path}: latent shape {arr.shape} does not fit this generator "
                          f"({n_latent} levels x {style_dim})")
    if not np.isfinite(arr).all():
        raise ConfigError(f"{path}: the latent holds NaN or Inf")
    return torch.from_numpy(arr.astype(np.float32))[None]


class StyleGANv2MixingPredictor(StyleGANv2Predictor):
    """Mix two W+ latents level by level: level i = w1_i * weights[i] + w2_i * (1 - weights[i]);
    weights of 1 / 0 take each level from one latent (coarse levels shape pose and face, fine
    ones colour and texture)."""

    @torch.no_grad()
    def run(self, latent1, latent2, weights=None):
        """Write src1/src2/dst `.mixing.png` under `output_path`; return the three uint8 images.

        Args:
            latent1, latent2 (str | Tensor): `.npy` files (as fitting writes) or W+ tensors.
            weights (list[float] | None): one per level (n_latent of them); None: 0.5 each.
        """
        n, d = self.n_latent, self.generator.style_dim
        weights = [0.5] * n if weights is None else [float(w) for w in weights]
        if len(weights) != n:
            raise ConfigError(f"--weights needs one value per latent level ({n} for size {self.generator.size}), "
                              f"got {len(weights)}")
        lat = [load_latent(x, n, d) if not torch.is_tensor(x) else x.reshape(1, n, d).float()
               for x in (latent1, latent2)]
        w = torch.tensor(weights).view(1, n, 1)
        mix = lat[0] * w + lat[1] * (1 - w)
        imgs = make_image(self.synthesize(torch.cat([lat[0], lat[1], mix])))
        os.makedirs(self.output_path, exist_ok=True)
        for name, img in zip(("src1", "src2", "dst"), imgs):
            save_image(img, os.path.join(self.output_path, f"{name}.mixing.png"))
        return imgs[0], imgs[1], imgs[2]


def get_lr(t, initial_lr, final_lr):
    """PaddleGAN's schedule: exponential from initial_lr (t = 0) to final_lr (t = 1)."""
    return initial_lr * (final_lr / initial_lr) ** t


class StyleGANv2FittingPredictor(StyleGANv2Predictor):
    """Project an image into W+ (Adam on the latent; LPIPS + mse_weight * MSE, or MSE alone),
    then regenerate it.

    Extra args:
        lpips_weight_path (str | None): LPIPS linear-layer file (see `ppgan.metrics.LPIPS`);
            'deterministic' for tests. Only read when the loss uses LPIPS.
        lpips_backbone_path (str | None): its VGG16 file.
    """

    def __init__(self, *args, lpips_weight_path=None, lpips_backbone_path=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lpips_weight_path, self.lpips_backbone_path = lpips_weight_path, lpips_backbone_path
        self._percept = None

    def _lpips(self):
        if self._percept is None:
            from ..metrics.lpips import LPIPS

            self._percept = LPIPS("vgg", weight_path=self.lpips_weight_path,
                                  backbone_path=self.lpips_backbone_path).to(self.device)
        return self._percept

    def _target(self, image):
        """The image as [1, 3, R, R] in [-1, 1], R = min(256, size): shorter side resized, centre crop."""
        import cv2

        from ..utils.image import imread

        if torch.is_tensor(image):
            return image.float().to(self.device)
        img = imread(image, "rgb") if isinstance(image, (str, os.PathLike)) else np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ConfigError(f"fitting needs an RGB uint8 image, got {img.dtype} {img.shape}")
        res = min(256, self.generator.size)
        h, w = img.shape[:2]
        scale = res / min(h, w)
        img = cv2.resize(img, (max(res, round(w * scale)), max(res, round(h * scale))), interpolation=cv2.INTER_AREA)
        top, left = (img.shape[0] - res) // 2, (img.shape[1] - res) // 2
        img = img[top:top + res, left:left + res]
        return (torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1).to(self.device)

    def fit(self, target, latent_in=None, latent_level=None, step=100, start_lr=0.1, final_lr=0.025, mse_weight=1.,
            loss="lpips"):
        """Optimise a W+ latent so the generator reproduces `target` [1, 3, R, R] in [-1, 1].

        Returns:
            (latent [1, n_latent, D], losses: list of floats, one per step)
        """
        if loss not in ("lpips", "mse"):
            raise ConfigError(f"loss must be 'lpips' or 'mse', got {loss!r}")
        if int(step) < 1 or start_lr <= 0 or final_lr <= 0:
            raise ConfigError(f"fitting needs step >= 1 and learning rates > 0, got {step}, {start_lr}, {final_lr}")
        n = self.n_latent
        levels = [i for i in range(12) if i < n] if latent_level is None else sorted(set(int(i) for i in latent_level))
        if not levels or levels[0] < 0 or levels[-1] >= n:
            raise ConfigError(f"latent_level must be indices in 0..{n - 1}, got {latent_level}")
        if latent_in is None:
            latent_in = self.mean_style().unsqueeze(1).repeat(1, n, 1)
        latent_in = latent_in.to(self.device).detach().clone()
        mask = torch.zeros(1, n, 1, device=self.device)
        mask[:, levels] = 1.
        var = latent_in.clone().requires_grad_(True)
        opt = torch.optim.Adam([var], lr=start_lr)
        percept = self._lpips() if loss == "lpips" else None
        res = target.shape[-1]
        losses = []
        for i in range(int(step)):
            for group in opt.param_groups:
                group["lr"] = get_lr(i / int(step), start_lr, final_lr)
            latent = var * mask + latent_in * (1 - mask)  # levels outside latent_level stay fixed
            img = self.generator([latent], input_is_latent=True, randomize_noise=False)[0]
            if img.shape[-1] > res:  # PaddleGAN: average-pool the output down to the target's size
                img = F.avg_pool2d(img, img.shape[-1] // res)
            mse = F.mse_loss(img, target)
            total = mse_weight * mse if percept is None else percept(img, target).sum() + mse_weight * mse
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            losses.append(float(total.detach()))
        return (var * mask + latent_in * (1 - mask)).detach(), losses

    def run(self, image, need_align=False, start_lr=0.1, final_lr=0.025, latent_level=None, step=100, mse_weight=1,
            pre_latent=None, loss="lpips"):
        """Fit `image` (a file or an RGB uint8 array), write `src.fitting.png`, `dst.fitting.png`
        and the latent `dst.fitting.npy` ([n_latent, D]) under `output_path`; return
        (source image, regenerated image, latent), as PaddleGAN.

        latent_level default: levels 0..11 (PaddleGAN's), those the generator has.
        """
        from ..utils.io import atomic_path

        if need_align:
            raise ConfigError("--need_align is not supported: crop and align the face first "
                              "(applications/tools/face_detect.py), then fit the aligned image")
        target = self._target(image)
        latent_in = None
        if pre_latent is not None:
            latent_in = load_latent(pre_latent, self.n_latent, self.generator.style_dim)
        latent, losses = self.fit(target, latent_in, latent_level, step, start_lr, final_lr, mse_weight, loss)
        if self.verbose:
            log(f"[ppgan] fitting loss {losses[0]:.4f} -> {losses[-1]:.4f} in {len(losses)} steps")
        dst_img = make_image(self.synthesize(latent))[0]
        src_img = make_image(target)[0]
        dst_latent = latent[0].cpu().numpy()
        os.makedirs(self.output_path, exist_ok=True)
        save_image(src_img, os.path.join(self.output_path, "src.fitting.png"))
        save_image(dst_img, os.path.join(self.output_path, "dst.fitting.png"))
        with atomic_path(os.path.join(self.output_path, "dst.fitting.npy"), suffix=".npy") as tmp:
            np.save(tmp, dst_latent)
        return src_img, dst_img, dst_latent

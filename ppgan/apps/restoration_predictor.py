"""Image restoration apps with PaddleGAN's names: `SwinIRPredictor`, `NAFNetPredictor` (denoising),
`MPRPredictor` (deblurring, denoising, deraining) and `InvDNPredictor` (denoising).

    from ppgan.apps import SwinIRPredictor, MPRPredictor
    pred_img, out_path = SwinIRPredictor(output_path='output_dir').run('noisy.png')
    # -> (array, 'output_dir/Denoising/noisy_restoration.png'), PaddleGAN's folder and name
    MPRPredictor(task='Deraining').run('rainy/')       # a folder: BatchResult (outputs, skipped, failed)
    MPRPredictor(task='deblur').run('shaky.mp4')       # a video: (None, 'output_dir/Deblurring/shaky_restoration.mp4')

Each predictor builds PaddleGAN's net with the kwargs of PaddleGAN's predictor (the catalogue
entries `swinir-denoising`, `nafnet-denoising`, `mpr-deblurring|denoising|deraining`,
`invdn-denoising`: `ppgan download NAME`, or `weight_path=` for a local `.pdparams`). The output
has the input's size (and layout: gray stays gray, alpha and 16-bit are kept).

Padding is PaddleGAN's: SwinIR mirrors the image by a whole window past its bottom/right edge
(`(h // 8 + 1) * 8`), NAFNet zero-pads to a multiple of 16, MPRNet reflects to a multiple of 8,
InvDN (which PaddleGAN does not pad) reflects to a multiple of 4; the result is cropped back.

Tiles (`tile`, `tile_overlap`; default: the whole image when it fits the memory budget of
`ppgan.apps.base_predictor`, else tiles of that budget), always aligned to the padding multiple:
- SwinIR and InvDN have a finite receptive field, so the default overlap is their receptive
  radius and tiled output equals whole-image output to float rounding. SwinIR: each Swin block
  spreads a pixel's influence by less than one window (window - 1 pixels, shifted windows
  included), plus one pixel per 3x3 conv: 6 x 6 x 7 + 9 = 261 for PaddleGAN's denoiser. InvDN:
  each coupling block is two 3-conv sub-nets deep, run forward and back, at 1/2 and 1/4 size:
  2 x 6 x (8 x 2 + 8 x 4) + 2 x 4 = 584. Lower `tile_overlap` trades exactness for speed.
- NAFNet and MPRNet pool globally (NAFNet's simplified channel attention, MPRNet's channel
  attention layers) and MPRNet also splits the image into halves and quarters, so no overlap
  makes their tiles exact: tiled output approximates whole-image output (default overlap 64), and
  a log line says so. NAFNet's authors find such local pooling harmless or better at test time
  (TLC, Chu et al. 2022), but here that is not measured: no published weights offline.

InvDN draws Gaussian noise for its latent; here it comes from `seed` (default 0) for each image,
made for the whole image before any tiling (so tiles agree) and the same for every video frame.
`disable_mc=False` (PaddleGAN's default) averages 8 flipped / transposed passes (Monte Carlo
self-ensemble), each with its own noise.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.errors import ConfigError
from .base_predictor import ImagePredictor, to_numpy, to_tensor

APPROX_OVERLAP = 64  # NAFNet / MPRNet: global pooling, no exact overlap exists

# PaddleGAN's task names (its output subfolders) and the short names of the CLIs.
MPR_TASKS = {"deblurring": "Deblurring", "deblur": "Deblurring", "denoising": "Denoising", "denoise": "Denoising",
             "deraining": "Deraining", "derain": "Deraining"}
MPR_MODELS = {"Deblurring": "mpr-deblurring", "Denoising": "mpr-denoising", "Deraining": "mpr-deraining"}


def mpr_task(task):
    """PaddleGAN's task name ('Deblurring', 'Denoising', 'Deraining') for any accepted spelling."""
    key = str(task).strip().lower()
    if key not in MPR_TASKS:
        raise ConfigError(f"unknown MPRNet task {task!r}: use deblur, denoise or derain "
                          "(PaddleGAN's Deblurring, Denoising, Deraining)")
    return MPR_TASKS[key]


def _round_up(v, m):
    return -(-int(v) // int(m)) * int(m)


def _reflect_index(n, total):
    """Indices 0..total-1 of a length-n axis reflected past its end (numpy's 'reflect', repeated
    for pads longer than the axis; a length-1 axis repeats)."""
    i = torch.arange(total)
    if n == 1:
        return torch.zeros_like(i)
    i = i % (2 * n - 2)
    return torch.where(i < n, i, 2 * n - 2 - i)


def reflect_pad(x, ph, pw):
    """[..., H, W] reflected by `ph` rows below and `pw` columns right (any sizes, as numpy)."""
    h, w = x.shape[-2:]
    if ph:
        x = x.index_select(-2, _reflect_index(h, h + ph))
    if pw:
        x = x.index_select(-1, _reflect_index(w, w + pw))
    return x


class _FirstOutput(nn.Module):
    """net(x)[0] (MPRNet returns its three stages, the final one first; InvDN returns the image and
    its latent), with the tile alignment `size_multiple` and the memory estimate of the net."""

    def __init__(self, net, size_multiple):
        super().__init__()
        self.net = net
        self.size_multiple = int(size_multiple)
        self.out_channels = 3
        if hasattr(net, "inference_bytes_per_pixel"):
            self.inference_bytes_per_pixel = net.inference_bytes_per_pixel

    def forward(self, x):
        out = self.net(x)
        return out[0] if isinstance(out, (list, tuple)) else out


class _InvDNWithNoise(nn.Module):
    """InvDN on [N, channel_in + noise_planes, H, W]: the image, then its latent noise
    pixel-shuffled to full size (the noise of latent pixel (i, j) sits in the scale x scale block
    of image pixels it covers; 45 channels at 1/4 size -> 3 planes), so tiles cut image and noise
    alike and every tile sees the noise of the whole-image pass."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.scale = 1  # the image keeps its size (the net's own `scale` is its down-scaling)
        self.size_multiple = int(net.size_multiple)
        self.out_channels = 3
        self.noise_planes = noise_planes(net)

    def forward(self, x):
        c = self.net.channel_in
        noise = F.pixel_unshuffle(x[:, c:], self.size_multiple)[:, : self.net.noise_channels]
        return self.net(x[:, :c], noise)[0][:, :c]


def noise_planes(net):
    """Full-size planes that hold InvDN's latent noise pixel-shuffled (noise channels rounded up to
    scale ** 2)."""
    s2 = int(net.size_multiple) ** 2
    return _round_up(net.noise_channels, s2) // s2


def swinir_overlap(net, multiple):
    """SwinIR's receptive radius: window - 1 per Swin block (shifted or not, a block mixes pixels
    only within one window), one per 3x3 conv (conv_first, each RSTB's conv, conv_after_body,
    conv_last; '3conv' has two 3x3 each), rounded up to `multiple`."""
    convs = 2 if isinstance(net.conv_after_body, nn.Sequential) else 1  # '3conv': 3x3, 1x1, 3x3
    radius = 2 + convs * (1 + len(net.layers))
    for layer in net.layers:
        radius += sum(int(b.window_size) - 1 for b in layer.residual_group.blocks)
    return _round_up(radius, multiple)


def invdn_overlap(net):
    """InvDN's receptive radius: each coupling block is two 3-conv sub-nets deep (F, then G / H)
    at 1/2**level size, run forward then backward; plus a Haar block of slack each way."""
    radius, level, scale = 0, 0, int(net.size_multiple)
    for op in net.operations:
        if hasattr(op, "haar_weights"):
            level += 1
        else:
            radius += 6 * 2 ** level
    return _round_up(2 * radius + 2 * scale, scale)


class RestorationPredictor(ImagePredictor):
    """The shared part of the four apps: the catalogue model `model`, PaddleGAN's padding, tiles.

    Args:
        output_path (str): output folder (PaddleGAN's argument); results go to
            `<output_path>/<task>/<name>_restoration.<ext>`. `output=` is accepted too.
        weight_path (str | None): a weight file (PaddleGAN `.pdparams`, ours) overriding the
            catalogue's sources (cache, download).
        seed (int | None): PaddleGAN's argument; used by InvDN's noise only.
        model (str | WeightSpec | None): another catalogue entry (or spec) of the same net.
        tile (int | None): tile size in input pixels; None: the whole image when it fits the memory
            budget, 0: never tile.
        tile_overlap (int | None): context pixels around each tile; None: the net's default (module
            docstring).
        device (str), half (bool | str | None), verbose (bool): as every predictor.
    """

    suffix = "_restoration"  # PaddleGAN's `<name>_restoration.<ext>`
    arch = None  # the GENERATORS name its catalogue entries build
    default_model = None
    task = "Denoising"

    def __init__(self, output_path="output_dir", weight_path=None, seed=None, model=None, tile=None,
                 tile_overlap=None, device="auto", half=None, verbose=True, output=None):
        super().__init__(output=output or output_path, device=device, half=half, verbose=verbose)
        self.name = self.task  # PaddleGAN writes into <output_path>/<task>
        if tile is not None and int(tile) < 0:
            raise ConfigError(f"tile must be >= 0 (0 = no tiling), got {tile}")
        if tile_overlap is not None and int(tile_overlap) < 0:
            raise ConfigError(f"tile_overlap must be >= 0, got {tile_overlap}")
        self.seed = 0 if seed is None else int(seed)
        self.load_model_or_explain(model or self.default_model, weight_path)
        self.runner = self.wrap(self.net)
        self.tile = tile
        self.tile_overlap = int(self.exact_overlap() if tile_overlap is None else tile_overlap)
        self._warned_approx = False
        self._log(f"[ppgan] {type(self).__name__}: {self.model_name}, tile overlap {self.tile_overlap}")

    def load_model_or_explain(self, name, weight_path):
        """`load_model`; a failed download also names the catalogue entry to fetch elsewhere."""
        from ..weights import DownloadError, get_spec

        spec = get_spec(name)
        if spec.arch != self.arch:
            raise ConfigError(f"{type(self).__name__} runs {self.arch} weights; '{spec.name}' is a {spec.arch} model")
        try:
            return self.load_model(name, weight_path)
        except DownloadError as e:
            label = getattr(name, "name", name)
            raise DownloadError(f"{e} (`ppgan download {label}` fetches it into the cache)") from None

    # -- per-net pieces ---------------------------------------------------------------------------
    def wrap(self, net):
        """The module `forward_image` runs: image in, image out, `size_multiple` = the pad multiple."""
        return _FirstOutput(net, self.pad_multiple(net))

    def pad_multiple(self, net):
        return int(getattr(net, "size_multiple", 1) or 1)

    def exact_overlap(self):
        """The receptive radius when tiles can be exact, else `APPROX_OVERLAP`."""
        return APPROX_OVERLAP

    exact_tiles = False

    def pad(self, x):
        """PaddleGAN's padding of [N, C, H, W] to the pad multiple: reflect bottom / right."""
        m = self.runner.size_multiple
        return reflect_pad(x, (-x.shape[-2]) % m, (-x.shape[-1]) % m)

    # -- inference --------------------------------------------------------------------------------
    def predict_rgb(self, rgb):
        return to_numpy(self.predict_tensor(to_tensor(rgb)))

    def predict_tensor(self, x):
        """[N, 3, H, W] in [0, 1] -> [N, 3, H, W] in [0, 1] (CPU)."""
        h, w = x.shape[-2:]
        out = self.restore(self.pad(x.float().cpu()))
        return out[..., :h, :w].clamp_(0, 1)

    def restore(self, x):
        """The net on a padded [N, 3, H, W] batch (tiled as configured)."""
        return self.forward_tiled(self.runner, x)

    def forward_tiled(self, runner, x):
        tile = self.tile
        if not self.exact_tiles and not self._warned_approx and tile != 0:
            side = max(x.shape[-2:])
            auto = tile is None and x.shape[-2] * x.shape[-1] > self.auto_tile(runner) ** 2
            if auto or (tile is not None and tile < side):
                self._warned_approx = True
                self._log(f"[ppgan] {self.model_name} pools over the whole image: tiled output approximates it "
                          "(use --tile 0 for the exact whole-image result if memory allows)")
        return self.forward_image(runner, x, tile=tile, overlap=self.tile_overlap, scale=1)

    def stage_params(self):
        return {"tile_overlap": self.tile_overlap}

    def run(self, images_path=None, output_path=None, skip_existing=False, video_options=None, progress=True,
            keep_frames=False):
        """PaddleGAN's `run(images_path)`: an image, a folder, a glob or a video (see
        `ImagePredictor.run` for what it returns)."""
        if images_path is None:
            raise ConfigError(f"{type(self).__name__}.run needs images_path (an image, folder, glob or video)")
        return super().run(images_path, output_path=output_path, skip_existing=skip_existing,
                           video_options=video_options, progress=progress, keep_frames=keep_frames)


class SwinIRPredictor(RestorationPredictor):
    """SwinIR denoising (PaddleGAN's `SwinIRPredictor`; weights `swinir-denoising`).

    Args: as `RestorationPredictor`, and `window_size` (int): the padding multiple (PaddleGAN's
    argument, default 8; combined with the net's own window sizes).
    """

    arch = "SwinIR"

    default_model = "swinir-denoising"
    exact_tiles = True

    def __init__(self, output_path="output_dir", weight_path=None, seed=None, window_size=8, model=None, tile=None,
                 tile_overlap=None, device="auto", half=None, verbose=True, output=None):
        if int(window_size) < 1:
            raise ConfigError(f"window_size must be >= 1, got {window_size}")
        self.window_size = int(window_size)
        super().__init__(output_path=output_path, weight_path=weight_path, seed=seed, model=model, tile=tile,
                         tile_overlap=tile_overlap, device=device, half=half, verbose=verbose, output=output)

    def pad_multiple(self, net):
        return math.lcm(self.window_size, int(getattr(net, "pad_multiple", 0) or getattr(net, "window_size", 1)))

    def exact_overlap(self):
        return swinir_overlap(self.net, self.runner.size_multiple)

    def pad(self, x):
        """PaddleGAN's: mirror (flip and concatenate) to `(h // m + 1) * m` rows and columns, so a
        whole window is added even when h is a multiple (its predictor does the same)."""
        m = self.runner.size_multiple
        h, w = x.shape[-2:]
        ph, pw = (h // m + 1) * m, (w // m + 1) * m
        while x.shape[-2] < ph:  # one flip is enough unless the image is smaller than a window
            x = torch.cat([x, x.flip(-2)], -2)
        while x.shape[-1] < pw:
            x = torch.cat([x, x.flip(-1)], -1)
        return x[..., :ph, :pw]


class NAFNetPredictor(RestorationPredictor):
    """NAFNet denoising (PaddleGAN's `NAFNetPredictor`; weights `nafnet-denoising`). Args: as
    `RestorationPredictor`; `window_size` is accepted for PaddleGAN compatibility, unused."""

    arch = "NAFNet"

    default_model = "nafnet-denoising"

    def __init__(self, output_path="output_dir", weight_path=None, seed=None, window_size=8, model=None, tile=None,
                 tile_overlap=None, device="auto", half=None, verbose=True, output=None):
        super().__init__(output_path=output_path, weight_path=weight_path, seed=seed, model=model, tile=tile,
                         tile_overlap=tile_overlap, device=device, half=half, verbose=verbose, output=output)

    def pad_multiple(self, net):
        return int(getattr(net, "padder_size", 0) or 2 ** len(net.encoders))

    def pad(self, x):
        """PaddleGAN's NAFNet pads with zeros (its `check_image_size`)."""
        m = self.runner.size_multiple
        h, w = x.shape[-2:]
        return F.pad(x, (0, (-w) % m, 0, (-h) % m))


class MPRPredictor(RestorationPredictor):
    """MPRNet (PaddleGAN's `MPRPredictor`): `task` 'Deblurring' (default), 'Denoising' or
    'Deraining' (also 'deblur', 'denoise', 'derain'); weights `mpr-<task>`. Unlike PaddleGAN's
    predictor the image is not shrunk to 640 pixels: large images run in tiles instead."""

    arch = "MPRNet"

    def __init__(self, output_path="output_dir", weight_path=None, seed=None, task="Deblurring", model=None,
                 tile=None, tile_overlap=None, device="auto", half=None, verbose=True, output=None):
        self.task = mpr_task(task or "Deblurring")
        self.default_model = MPR_MODELS[self.task]
        super().__init__(output_path=output_path, weight_path=weight_path, seed=seed, model=model, tile=tile,
                         tile_overlap=tile_overlap, device=device, half=half, verbose=verbose, output=output)

    def stage_params(self):
        return {"task": self.task, "tile_overlap": self.tile_overlap}


class InvDNPredictor(RestorationPredictor):
    """InvDN denoising (PaddleGAN's `InvDNPredictor`; weights `invdn-denoising`).

    Args: as `RestorationPredictor`; `seed` (default 0) draws the latent noise; `disable_mc`
    (bool): one pass instead of PaddleGAN's 8-pass Monte Carlo self-ensemble (also a `run` argument,
    as PaddleGAN's `run(images_path, disable_mc)`).
    """

    arch = "InvDN"

    default_model = "invdn-denoising"
    exact_tiles = True

    def __init__(self, output_path="output_dir", weight_path=None, seed=None, disable_mc=False, model=None,
                 tile=None, tile_overlap=None, device="auto", half=None, verbose=True, output=None):
        self.disable_mc = bool(disable_mc)
        super().__init__(output_path=output_path, weight_path=weight_path, seed=seed, model=model, tile=tile,
                         tile_overlap=tile_overlap, device=device, half=half, verbose=verbose, output=output)

    def wrap(self, net):
        return _InvDNWithNoise(net)

    def exact_overlap(self):
        return invdn_overlap(self.net)

    def noise(self, n, h, w, generator):
        """[n, planes, h, w] standard normal noise laid out for `_InvDNWithNoise` (the same for each
        of the n images)."""
        planes = self.runner.noise_planes
        z = torch.randn(1, planes, h, w, generator=generator)
        return z.expand(n, -1, -1, -1)

    def restore(self, x):
        n, _, h, w = x.shape
        gen = torch.Generator().manual_seed(self.seed)
        if self.disable_mc:
            return self.forward_tiled(self.runner, torch.cat([x, self.noise(n, h, w, gen)], 1))
        total = None
        for k in range(8):  # PaddleGAN's order: x, v, h, hv, t, tv, th, thv
            v = x
            if k & 1:
                v = v.flip(-1)
            if k & 2:
                v = v.flip(-2)
            if k & 4:
                v = v.transpose(-2, -1)
            vh, vw = v.shape[-2:]
            y = self.forward_tiled(self.runner, torch.cat([v, self.noise(n, vh, vw, gen)], 1))
            if k & 4:
                y = y.transpose(-2, -1)
            if k & 2:
                y = y.flip(-2)
            if k & 1:
                y = y.flip(-1)
            total = y if total is None else total + y
        return total / 8

    def stage_params(self):
        return {"seed": self.seed, "disable_mc": self.disable_mc, "tile_overlap": self.tile_overlap}

    def run(self, images_path=None, disable_mc=None, output_path=None, skip_existing=False, video_options=None,
            progress=True, keep_frames=False):
        """PaddleGAN's `run(images_path, disable_mc=False)`; `disable_mc=None` keeps the constructor's."""
        keep = self.disable_mc
        if disable_mc is not None:
            self.disable_mc = bool(disable_mc)
        try:
            return super().run(images_path, output_path=output_path, skip_existing=skip_existing,
                               video_options=video_options, progress=progress, keep_frames=keep_frames)
        finally:
            self.disable_mc = keep


PREDICTORS = {"swinir": SwinIRPredictor, "nafnet": NAFNetPredictor, "mprnet": MPRPredictor, "invdn": InvDNPredictor}

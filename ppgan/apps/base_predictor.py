"""Base classes of the one-shot applications (`ppgan/apps/*_predictor.py`).

`BasePredictor` owns what every app shares: the device (CUDA when present, printed at start;
`device='cuda'` without a GPU is an error, never a silent CPU fall-back), half precision on
CUDA with an automatic fp32 retry of any tile whose output is not finite, and a tile size
chosen from the device's memory (its total, not what happens to be free, so that a second run
gives the same output; see `memory_budget`) that is halved and retried on out-of-memory.

`ImagePredictor` adds the image conventions: `predict(img)` takes an HxWxC uint8 RGB array
(also HxW gray, HxWx4 RGBA and uint16 images) and returns an array in the same layout and
depth; `run(input)` takes an image file, a folder (recursively, output tree mirrored), a glob
or a video, and writes under `output`.
"""
import functools
import math
import os
import sys

import numpy as np
import torch

from ..utils.device import resolve_device
from ..utils.errors import PPGANError
from ..utils.tiling import tiled_forward

OOM_ERRORS = (torch.OutOfMemoryError,) if hasattr(torch, "OutOfMemoryError") else (torch.cuda.OutOfMemoryError,)
MIN_TILE = 32


def log(msg):
    """Progress / status line on stderr (through tqdm, so bars stay intact)."""
    try:
        from tqdm import tqdm

        tqdm.write(msg, file=sys.stderr)
    except ImportError:  # pragma: no cover
        print(msg, file=sys.stderr)


@functools.lru_cache(maxsize=None)  # a total: read once per device, not for every frame
def memory_budget(device):
    """Bytes of activations one tile may use: a quarter of the GPU's total memory on CUDA; on CPU
    an eighth of the RAM, between 1 and 4 GiB. Taken from totals, not from what happens to be
    free, so the tile size (and with it the exact output) does not change from run to run."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory // 4
    total = 8 << 30
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    total = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    return min(max(total // 8, 1 << 30), 4 << 30)


class _HalfWithFallback(torch.nn.Module):
    """Runs the wrapped net under fp16 autocast; a window whose output is not finite (fp16
    overflow: the 'black frames' of other tools) is computed again in fp32."""

    def __init__(self, net, counter, device_type="cuda"):
        super().__init__()
        self.net = net
        self.counter = counter
        self.device_type = device_type
        for attr in ("size_multiple", "min_input_size", "fixed_input_size"):
            if hasattr(net, attr):
                setattr(self, attr, getattr(net, attr))

    def forward(self, x):
        with torch.autocast(self.device_type, dtype=torch.float16):
            out = self.net(x)
        if not torch.isfinite(out).all():
            self.counter["fp32_retries"] += 1
            out = self.net(x.float())
        return out.float()


class BasePredictor:
    """Args:
        device (str): 'auto' (CUDA when present), 'cpu' or 'cuda' (an error without a GPU).
        half (bool | None): fp16 inference; None = on CUDA only. True on CPU is an error.
        verbose (bool): print the device and retries on stderr.
    """

    def __init__(self, device="auto", half=None, verbose=True):
        self.device = resolve_device(device)
        if half and self.device.type != "cuda":
            raise PPGANError("half precision needs a CUDA device; drop --half or use --device cuda")
        self.half = self.device.type == "cuda" if half is None else bool(half)
        self.verbose = verbose
        self.stats = {"fp32_retries": 0, "oom_retries": 0}
        if verbose:
            name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "CPU"
            log(f"[ppgan] device: {self.device} ({name}), precision: {'fp16' if self.half else 'fp32'}")

    def _log(self, msg):
        if self.verbose:
            log(msg)

    # -- inference helpers ------------------------------------------------------------------
    def auto_tile(self, net):
        """Largest square tile (input pixels per side, a multiple of 32) whose activations fit in
        `memory_budget`: the net's `inference_bytes_per_pixel` attribute (per input pixel, fp32)
        or 16 KB (ESRGAN x4 at nf 64)."""
        bpp = getattr(net, "inference_bytes_per_pixel", 16384)
        if self.half:
            bpp /= 2
        side = int(math.sqrt(memory_budget(self.device) / bpp))
        return max(MIN_TILE, min(side // 32 * 32, 2048))

    def forward_image(self, net, x, tile=None, overlap=16, scale=None):
        """`net(x)` for a CPU float32 [N, C, H, W] tensor of any size, returned as CPU float32.

        Windows of `tile` input pixels (None: from free memory; 0: whole image) with `overlap`
        pixels of context (see `ppgan.utils.tiling`); on out-of-memory the tile is halved and
        the image is done again (logged), down to 32 pixels; a net with `tileable = False`
        (image-global operations) is always run whole."""
        run_net = _HalfWithFallback(net, self.stats) if self.half else net
        h, w = x.shape[-2:]
        if not getattr(net, "tileable", True):
            tile = 0
        if tile is None:
            tile = self.auto_tile(net)
            if h * w <= tile * tile:  # the whole image fits the budget: one window, exact
                tile = 0
        tile = int(tile) or max(h, w)
        while True:
            try:
                with torch.no_grad():
                    before = self.stats["fp32_retries"]
                    out = tiled_forward(run_net, x, scale=scale, tile=min(tile, max(h, w)), overlap=overlap,
                                        out_device="cpu", device=self.device)
                    if self.stats["fp32_retries"] > before:
                        self._log(f"[ppgan] {self.stats['fp32_retries'] - before} tile(s) overflowed in fp16 "
                                  f"and were recomputed in fp32")
                    return out.float()
            except OOM_ERRORS:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if not getattr(net, "tileable", True):
                    raise PPGANError(f"out of memory on {self.device}; {type(net).__name__} sees the whole "
                                     f"image at once and cannot be tiled: use a smaller input size") from None
                if tile <= MIN_TILE:
                    raise PPGANError(f"out of memory even with {MIN_TILE}-pixel tiles on {self.device}") from None
                self.stats["oom_retries"] += 1
                tile = max(MIN_TILE, tile // 2)
                self._log(f"[ppgan] out of memory: retrying with {tile}-pixel tiles")

    @torch.no_grad()
    def run(self, *args, **kwargs):
        raise NotImplementedError


# -- image layout conversion ------------------------------------------------------------------
def split_image(img):
    """Array from `imread(mode='unchanged')` / the user -> (rgb float32 HxWx3 in [0, 1], alpha
    float32 HxW in [0, 1] or None, layout) where layout = (was_gray, dtype)."""
    img = np.asarray(img)
    if img.dtype == np.uint8:
        scale = 255.0
    elif img.dtype == np.uint16:
        scale = 65535.0
    elif img.dtype in (np.float32, np.float64):
        scale = 1.0
    else:
        raise PPGANError(f"unsupported image dtype {img.dtype}: use uint8, uint16 or float in [0, 1]")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        rgb, alpha, gray = np.repeat(img[..., None], 3, axis=2), None, True
    elif img.ndim == 3 and img.shape[2] in (3, 4):
        rgb, alpha, gray = img[..., :3], (img[..., 3] if img.shape[2] == 4 else None), False
    else:
        raise PPGANError(f"unsupported image shape {img.shape}: expected HxW, HxWx3 or HxWx4")
    if min(img.shape[:2]) < 1:
        raise PPGANError(f"empty image of shape {img.shape}")
    rgb = rgb.astype(np.float32) / scale
    alpha = None if alpha is None else alpha.astype(np.float32) / scale
    return rgb, alpha, (gray, img.dtype)


def merge_image(rgb, alpha, layout, keep_gray=True):
    """Inverse of `split_image` for the processed arrays (float32 in [0, 1])."""
    gray, dtype = layout
    rgb = np.clip(rgb, 0.0, 1.0)
    if gray and keep_gray and alpha is None:
        out = rgb.mean(axis=2) if rgb.ndim == 3 else rgb
    elif alpha is not None:
        out = np.concatenate([rgb, np.clip(alpha, 0.0, 1.0)[..., None]], axis=2)
    else:
        out = rgb
    if dtype == np.uint8:
        return (out * 255.0 + 0.5).astype(np.uint8)
    if dtype == np.uint16:
        return (out * 65535.0 + 0.5).astype(np.uint16)
    return out.astype(dtype)


def to_tensor(rgb):
    """HxWx3 float32 -> [1, 3, H, W]."""
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]


def to_numpy(t):
    """[1, C, H, W] -> HxWxC float32."""
    return t[0].permute(1, 2, 0).numpy()


class ImagePredictor(BasePredictor):
    """An image-to-image app. Subclasses implement `predict_rgb(rgb) -> rgb` on float32 HxWx3
    arrays in [0, 1] (and may override `predict_alpha`), and set `name` (output subfolder),
    `suffix` (added to output file names) and `keep_gray` (False for colourisation)."""

    name = "output"
    suffix = ""
    keep_gray = True

    def __init__(self, output="output", device="auto", half=None, verbose=True):
        super().__init__(device=device, half=half, verbose=verbose)
        self.output = output

    def load_model(self, name, weight_path=None):
        """Build the model `name` of `ppgan.apps.weights` with its weights (`weight_path` overrides
        the table's sources) on this predictor's device; sets `spec`, `model_name` and `net`."""
        from .weights import build_from_spec, get_spec

        self.spec = get_spec(name)
        self.model_name = self.spec.name
        self.net = build_from_spec(self.spec, weight_path=weight_path, device=self.device)
        return self.net

    def predict_rgb(self, rgb):
        raise NotImplementedError

    def predict_alpha(self, alpha, out_hw):
        """Alpha channel, processed separately: resized (bicubic) to the output size."""
        import cv2

        if alpha.shape[:2] == tuple(out_hw):
            return alpha
        return cv2.resize(alpha, (out_hw[1], out_hw[0]), interpolation=cv2.INTER_CUBIC)

    def predict(self, img):
        """HxWx3 uint8 RGB -> processed HxWx3 uint8 RGB. Also takes HxW gray, HxWx4 RGBA and
        uint16 / float images: the output has the input's channels (gray stays gray unless the
        app adds colour) and depth; alpha is processed separately and kept."""
        rgb, alpha, layout = split_image(img)
        out = self.predict_rgb(rgb)
        if alpha is not None:
            alpha = self.predict_alpha(alpha, out.shape[:2])
        return merge_image(out, alpha, layout, keep_gray=self.keep_gray)

    # -- files ------------------------------------------------------------------------------
    def output_dir(self):
        return os.path.join(self.output, self.name) if self.name else self.output

    def run_image(self, path, out_path):
        from ..utils.image import imread, imwrite

        img = imread(path, mode="unchanged")
        imwrite(out_path, self.predict(img))
        return out_path

    def frame_stage(self):
        """A `ppgan.utils.video.FrameStage` applying `predict` to every frame (RGB uint8)."""
        from ..utils.video import FrameStage

        pred = self

        class _Stage(FrameStage):
            def push(self, frames):
                return [pred.predict(f) for f in frames]

            def describe(self):
                return pred.describe()

        return _Stage()

    def describe(self):
        """What determines this predictor's output (used to invalidate resumable video parts)."""
        return f"{type(self).__name__}"

    def video_stages(self):
        return [self.frame_stage()]

    def run(self, input, output_path=None, skip_existing=False, video_options=None, progress=True):
        """Process `input` (image, folder, glob or video). Returns the output path (one input)
        or a `ppgan.apps.inputs.BatchResult` (folder / glob)."""
        from .inputs import run_inputs

        return run_inputs(self, input, output_path=output_path, skip_existing=skip_existing,
                          video_options=video_options or {}, progress=progress)

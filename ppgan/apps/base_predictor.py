"""Base classes of the one-shot applications (`ppgan/apps/*_predictor.py`).

`BasePredictor` owns what every app shares: the device (CUDA when present, printed at start;
`device='cuda'` without a GPU is an error, never a silent CPU fall-back), half precision
(fp16 by default on CUDA, bf16 on request also on CPU; nets that allow it run cast to that dtype,
channels-last on CUDA, others under autocast) with an automatic fp32 retry of any tile whose
output is not finite, and a tile size
chosen from the device's memory (its total, not what happens to be free, so that a second run
gives the same output; see `memory_budget`) that is halved and retried on out-of-memory. Running
out of CPU memory (torch's allocator, numpy's MemoryError, an address-space limit set by
`ulimit -v`) is handled like CUDA's: smaller tiles, then one line naming the memory needed.

`ImagePredictor` adds the image conventions: `predict(img)` takes an HxWxC uint8 RGB array
(also HxW gray, HxWx4 RGBA and uint16 images) and returns an array in the same layout and
depth; `run(input)` takes an image file, a folder (recursively, output tree mirrored), a glob
or a video, writes under `output` and returns what PaddleGAN's predictors return
(`(pred_img, out_path)`, `(frame_pattern, video_path)`; `run_files` returns the path only).
"""
import copy
import functools
import math
import os
import sys
import weakref

import numpy as np
import torch

from ..utils.device import resolve_device
from ..utils.errors import ConfigError, PPGANError
from ..utils.inference import (address_space_limit, address_space_room, checked_cpu_kernels, failed_allocation,
                               format_bytes, is_out_of_memory, memory_situation)
from ..utils.tiling import tiled_forward

# What running out of memory raises: CUDA's OutOfMemoryError, MemoryError (numpy's too) and the
# RuntimeError of torch's CPU allocator (`is_out_of_memory` tells those from other RuntimeErrors).
OOM_ERRORS = ((torch.OutOfMemoryError,) if hasattr(torch, "OutOfMemoryError") else (torch.cuda.OutOfMemoryError,)) \
    + (MemoryError, RuntimeError)
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
    budget = min(max(total // 8, 1 << 30), 4 << 30)
    limit = address_space_limit()  # `ulimit -v`: a fixed setting too, so still the same tiles every run
    return min(budget, max(limit // 8, 64 << 20)) if limit else budget


PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
_PRECISION_ALIASES = {"float32": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16"}


def half_mode(net):
    """How `net` runs in half precision, and which module that applies to: ('direct', path) when
    `net` or a module inside it (at `path`, '' for `net` itself) declares `half_mode = 'direct'`
    (only ops that are safe and faster with the whole module cast to fp16/bf16), else
    ('autocast', '')."""
    for path, module in net.named_modules():
        mode = getattr(module, "half_mode", None)
        if mode is not None:
            return mode, path
    return "autocast", ""


class _HalfWithFallback(torch.nn.Module):
    """Runs the wrapped net in half precision (`dtype`); a window whose output is not finite (fp16
    overflow: the 'black frames' of other tools) is computed again in fp32 by the untouched net.

    mode 'autocast': the net under `torch.autocast(device_type, dtype)`. mode 'direct': a copy of
    the module at `path` (see `half_mode`) cast to `dtype` (channels-last on CUDA) runs in its
    place, on an input cast likewise: `half_net` when given (`BasePredictor.half_net` keeps one per
    net), else made here."""

    def __init__(self, net, counter, device_type="cuda", dtype=torch.float16, mode="autocast", path="",
                 half_net=None):
        super().__init__()
        self.net = net
        self.counter = counter
        self.device_type, self.dtype, self.mode, self.path = device_type, dtype, mode, path
        self.memory_format = torch.channels_last if device_type == "cuda" else torch.contiguous_format
        for attr in ("size_multiple", "min_input_size", "fixed_input_size"):
            if hasattr(net, attr):
                setattr(self, attr, getattr(net, attr))
        if mode == "direct":
            if half_net is None:
                half_net = copy.deepcopy(net.get_submodule(path)).to(dtype)
                if device_type == "cuda":
                    half_net = half_net.to(memory_format=self.memory_format)
            self.half_net = half_net
        elif mode != "autocast":
            raise ValueError(f"half mode must be 'direct' or 'autocast', got {mode!r}")

    def _run_half(self, x):
        if self.mode == "autocast":
            with torch.autocast(self.device_type, dtype=self.dtype):
                return self.net(x)
        x = x.to(self.dtype, memory_format=self.memory_format) if x.ndim == 4 else x.to(self.dtype)
        if not self.path:
            return self.half_net(x)
        parent_path, _, name = self.path.rpartition(".")
        parent = self.net.get_submodule(parent_path)
        full = getattr(parent, name)
        setattr(parent, name, self.half_net)  # the wrapper around it keeps its own state
        try:
            return self.net(x)
        finally:
            setattr(parent, name, full)

    def forward(self, x):
        out = self._run_half(x)
        if not torch.isfinite(out).all():
            self.counter["fp32_retries"] += 1
            out = self.net(x.float())
        return out.to(torch.float32, memory_format=torch.contiguous_format)


class BasePredictor:
    """Args:
        device (str): 'auto' (CUDA when present), 'cpu' or 'cuda' (an error without a GPU).
        half (bool | str | None): inference precision. None: fp16 on CUDA, fp32 on CPU; True: fp16
            (CUDA only, an error on CPU); False: fp32; or 'fp32' | 'fp16' | 'bf16' ('bf16' also
            runs on CPU). Nets that declare `half_mode = 'direct'` (RRDBNet, EDVRNet, ...) run as a
            copy cast to that dtype, channels-last on CUDA; others under autocast. Windows whose
            output is not finite are redone in fp32 either way.
        verbose (bool): print the device and retries on stderr.
        tile_progress (attribute, bool): show the progress of the tiles of one image (a bar on a
            terminal, log lines otherwise); `run` sets it for single images (default False: video
            frames and `predict` calls are silent).

    Attributes:
        precision (str): what the nets run in: 'fp32', 'fp16' or 'bf16' (part of a video job's
            resume key); `compute_dtype` is the same as a torch dtype; `half` is precision != 'fp32'.
    """

    def __init__(self, device="auto", half=None, verbose=True):
        self.device = resolve_device(device)
        self.precision = self._parse_precision(half)
        self.compute_dtype = PRECISIONS[self.precision]
        self.half = self.precision != "fp32"
        self.verbose = verbose
        self.stats = {"fp32_retries": 0, "oom_retries": 0}
        self.tile_progress = False
        self._half_copies = weakref.WeakKeyDictionary()  # net -> its cast copy (direct mode)
        if verbose:
            name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "CPU"
            log(f"[ppgan] device: {self.device} ({name}), precision: {self.precision}")
        if checked_cpu_kernels(self.device):
            self._log(f"[ppgan] address-space limit (ulimit -v) {format_bytes(address_space_limit())}: oneDNN kernels "
                      "off (they can crash instead of failing cleanly when memory runs out)")

    def _parse_precision(self, half):
        cuda = self.device.type == "cuda"
        if half is None:
            return "fp16" if cuda else "fp32"
        if isinstance(half, bool):
            precision = "fp16" if half else "fp32"
        else:
            precision = _PRECISION_ALIASES.get(str(half).lower(), str(half).lower())
            if precision not in PRECISIONS:
                raise ConfigError(f"unknown precision {half!r}: use one of {', '.join(PRECISIONS)}")
        if precision == "fp16" and not cuda:
            raise PPGANError("half precision needs a CUDA device; drop --half or use --device cuda "
                             "(bf16 runs on the CPU)")
        if precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
            raise PPGANError(f"{torch.cuda.get_device_name(self.device)} has no bf16 support: use fp16")
        return precision

    def half_net(self, net):
        """`net` wrapped to run in this predictor's half precision; a cast copy (direct mode) is
        made once per net and kept while the net lives."""
        mode, path = half_mode(net)
        wrapped = _HalfWithFallback(net, self.stats, self.device.type, self.compute_dtype, mode, path,
                                    half_net=self._half_copies.get(net))
        if mode == "direct":
            self._half_copies[net] = wrapped.half_net  # (holds no reference to net)
        return wrapped

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
        run_net = self.half_net(net) if self.half else net
        h, w = x.shape[-2:]
        if not getattr(net, "tileable", True):
            tile = 0
        if tile is None:
            tile = self.auto_tile(net)
            if h * w <= tile * tile:  # the whole image fits the budget: one window, exact
                tile = 0
        tile = int(tile) or max(h, w)
        io_bytes, out_elems = self._io_bytes(net, x, scale)
        room = address_space_room()
        if room is not None and io_bytes > room:  # under `ulimit -v`: the output tensor cannot fit at all
            raise self._out_of_memory(net, x, scale, tile, overlap, io_bytes, None, True)
        while True:
            try:
                with torch.no_grad():
                    before = self.stats["fp32_retries"]
                    label = f"{type(self).__name__} {w}x{h}" if self.verbose and getattr(self, "tile_progress", False) \
                        else None
                    out = tiled_forward(run_net, x, scale=scale, tile=min(tile, max(h, w)), overlap=overlap,
                                        out_device="cpu", device=self.device, progress=label)
                    if self.stats["fp32_retries"] > before:
                        self._log(f"[ppgan] {self.stats['fp32_retries'] - before} tile(s) overflowed in {self.precision} "
                                  f"and were recomputed in fp32")
                    return out.float()
            except OOM_ERRORS as e:
                if not is_out_of_memory(e):
                    raise
                failed = failed_allocation(e)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                # the output tensor itself did not fit (it is allocated whole): smaller tiles cannot help
                output_failed = failed is not None and failed in (out_elems * 4, out_elems * 2)
                whole = not getattr(net, "tileable", True)
                if whole or output_failed or tile <= MIN_TILE:
                    raise self._out_of_memory(net, x, scale, tile, overlap, io_bytes, failed,
                                              whole or output_failed) from None
                self.stats["oom_retries"] += 1
                tile = max(MIN_TILE, tile // 2)
                self._log(f"[ppgan] out of memory: retrying with {tile}-pixel tiles")

    def _io_bytes(self, net, x, scale):
        """(bytes of the float32 input and output tensors, output elements) of `forward_image`."""
        s = int(scale or getattr(net, "scale", 0) or getattr(net, "upscale", 0) or 1)
        n, c, h, w = x.shape
        out_elems = n * int(getattr(net, "out_channels", 0) or c) * h * s * w * s
        return x.numel() * 4 + out_elems * 4, out_elems

    def _out_of_memory(self, net, x, scale, tile, overlap, io_bytes, failed, whole):
        """The one-line PPGANError for an image `forward_image` could not fit in memory; `whole`:
        smaller tiles would not help (an untileable net, or the output tensor does not fit)."""
        h, w = x.shape[-2:]
        s = int(scale or getattr(net, "scale", 0) or getattr(net, "upscale", 0) or 1)
        what = f"a {w}x{h} image" + (f" at x{s}" if s > 1 else "")
        could_not = f"; could not allocate {format_bytes(failed)}" if failed else ""
        bpp = getattr(net, "inference_bytes_per_pixel", 16384) / (2 if self.half else 1)
        if not getattr(net, "tileable", True):
            need = io_bytes + bpp * h * w
            how = f"{type(net).__name__} sees the whole image at once and cannot be tiled: use a smaller image"
        else:
            side = min(tile, max(h, w)) + 2 * overlap
            need = io_bytes + bpp * side * side
            how = ("the output alone does not fit: use a smaller image" if whole else
                   f"even {MIN_TILE}-pixel tiles do not fit: use a smaller image")
        return PPGANError(f"out of memory on {self.device}: {what} needs about {format_bytes(need)} "
                          f"({format_bytes(io_bytes)} for the input and output tensors){could_not}"
                          f"{memory_situation()}; {how}, free memory or raise the limit")

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
    if dtype in (np.uint8, np.uint16):  # out is a copy made here: scaled in place (no 4x-size temporaries)
        out *= 255.0 if dtype == np.uint8 else 65535.0
        out += 0.5
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
    weight_files = ()  # set by load_model: the weight files read

    def __init__(self, output="output", device="auto", half=None, verbose=True):
        super().__init__(device=device, half=half, verbose=verbose)
        self.output = output

    def load_model(self, name, weight_path=None):
        """Build the catalogue model `name` (`ppgan.weights.catalog`) with its weights, read by
        `ppgan.weights.load` (`weight_path` overrides the catalogue's sources), on this predictor's
        device; sets `spec`, `model_name`, `net` and `weight_files` (every file read, e.g. an ncnn
        model's .param and .bin, for fingerprints)."""
        from ..weights import get_spec
        from .pretrained import build_pretrained

        self.spec = get_spec(name)
        self.model_name = self.spec.name
        self.net, weights = build_pretrained(self.spec, weight_path=weight_path, device=self.device)
        self.weight_files = list(weights.files)
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
        import cv2

        from ..utils.image import imread, imwrite

        img = None
        try:
            img = imread(path, mode="unchanged")
            out = self.predict(img)
            imwrite(out_path, out)
            if getattr(self, "_want_image", False):  # `run` returns it (PaddleGAN's pred_img)
                self._last_image = out
        except (MemoryError, RuntimeError, cv2.error) as e:  # numpy / OpenCV ran out of memory
            if not is_out_of_memory(e):
                raise
            raise self._image_out_of_memory(path, img, e) from None
        return out_path

    def _image_out_of_memory(self, path, img, exc):
        """The one-line PPGANError for an image file that did not fit in memory (`img` None: reading it)."""
        failed = failed_allocation(exc)
        what = "reading" if img is None else "processing"
        size = ""
        if img is not None:
            h, w = img.shape[:2]
            s = int(getattr(self, "scale", 1) or 1)
            out_bytes = h * s * w * s * (img.shape[2] if img.ndim == 3 else 1) * 4
            size = f" (a {w}x{h} image" + (f" at x{s}" if s > 1 else "") + \
                f"; its output alone takes {format_bytes(out_bytes)} as float32)"
        could_not = f": could not allocate {format_bytes(failed)}" if failed else ""
        return PPGANError(f"out of memory {what} {path}{size}{could_not}{memory_situation()}; use a smaller image, "
                          "free memory or raise the limit")

    # -- video ------------------------------------------------------------------------------
    def frame_stage(self):
        """This predictor as a stage of `ppgan.video.process_video` (see `PredictorStage`)."""
        from .predictor_stage import PredictorStage

        return PredictorStage(self)

    def video_stages(self):
        return [self.frame_stage()]

    def stage_params(self):
        """The app's own settings that change its output (beyond model, weights, precision, tile and
        overlap, which `PredictorStage.identity` adds): part of a video job's resume key."""
        return {}

    def predict_tensor(self, x):
        """Optional batched path: [N, 3, H, W] float32 RGB in [0, 1] (on this predictor's device, or
        the CPU) -> [N, 3, H', W'] float32 in [0, 1] on the CPU. Apps whose `predict_rgb` is one
        forward pass implement it; `predict_batch` then runs video frames as one batch."""
        raise NotImplementedError

    def predict_batch(self, frames):
        """HxWx3 uint8 RGB frames of one size -> the processed frames, as `predict` would return them.
        With a `predict_tensor`, the frames go to the device as one uint8 batch (through a reused
        pinned buffer on CUDA) and are converted there; otherwise they are predicted one by one."""
        if not frames:
            return []
        batchable = type(self).predict_tensor is not ImagePredictor.predict_tensor
        if not batchable or any(f.dtype != np.uint8 or f.ndim != 3 or f.shape != frames[0].shape or f.shape[2] != 3
                                for f in frames):
            return [self.predict(f) for f in frames]
        x = self._frames_to_device(frames).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
        y = self.predict_tensor(x)
        # as merge_image: clip, * 255 + 0.5, truncate (the same float32 operations, so the same bytes)
        y = y.clamp_(0.0, 1.0).mul_(255.0).add_(0.5).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
        return list(y)

    def _frames_to_device(self, frames):
        """[N, H, W, 3] uint8 tensor of `frames` on the device; on CUDA copied from a pinned host
        buffer (kept for the next batch of the same shape) without blocking the host."""
        if self.device.type != "cuda":
            return torch.from_numpy(np.stack(frames))
        n, shape = len(frames), frames[0].shape
        pinned = getattr(self, "_pinned", None)
        if pinned is None or tuple(pinned[0].shape[1:]) != shape or pinned[0].shape[0] < n:
            pinned = self._pinned = (torch.empty((n,) + shape, dtype=torch.uint8, pin_memory=True),
                                     torch.cuda.Event())
        buf, copied = pinned
        copied.synchronize()  # the previous batch's copy out of this buffer has finished
        np.stack(frames, out=buf[:n].numpy())
        x = buf[:n].to(self.device, non_blocking=True)
        copied.record()
        return x

    def run_files(self, input, output_path=None, skip_existing=False, video_options=None, progress=True,
                  keep_frames=False):
        """Process `input` (image, folder, glob or video) and write the results. Returns the output
        path (one input) or a `ppgan.apps.inputs.BatchResult` (folder / glob). See `run`."""
        from .inputs import run_inputs

        video_options = dict(video_options or {})
        if getattr(self, "batch_size", None):
            video_options.setdefault("batch_size", self.batch_size)
        return run_inputs(self, input, output_path=output_path, skip_existing=skip_existing,
                          video_options=video_options, progress=progress, keep_frames=keep_frames)

    def run(self, input, output_path=None, skip_existing=False, video_options=None, progress=True,
            keep_frames=False):
        """Process `input` and return what PaddleGAN's predictors return:

        - an image -> `(pred_img, out_path)`: the result as an HxWxC numpy array (uint8 RGB for
          8-bit input; PaddleGAN returns a PIL image: `PIL.Image.fromarray(pred_img)` gives one)
          and the file written;
        - a video -> `(frame_pattern, out_path)`: with `keep_frames=True` the processed frames are
          also written to `<folder>/<stem>_frames/%08d.png` and `frame_pattern` is that pattern;
          otherwise it is None (frames are never all held in memory);
        - a folder or glob -> a `ppgan.apps.inputs.BatchResult` (outputs, skipped, failed).

        `self.last_output` keeps the output path (or BatchResult) of the last call; `run_files`
        returns only that."""
        from .inputs import frames_dir_of, is_video_path

        self._want_image = True
        self._last_image = None
        try:
            result = self.run_files(input, output_path=output_path, skip_existing=skip_existing,
                                    video_options=video_options, progress=progress, keep_frames=keep_frames)
        finally:
            self._want_image = False
        self.last_output = result
        if not isinstance(result, (str, os.PathLike)):
            return result
        if is_video_path(input):
            pattern = os.path.join(frames_dir_of(result), "%08d.png")
            return (pattern if keep_frames and os.path.isdir(frames_dir_of(result)) else None), result
        img, self._last_image = self._last_image, None
        if img is None:  # skipped: its output existed
            from ..utils.image import imread

            img = imread(result, mode="unchanged")
        return img, result

"""Image transforms declared in config, with PaddleGAN's names and arguments.

Each transform is a function over a list of images (HxWxC numpy arrays; several images for
paired data, all transformed with ONE random draw) plus a `numpy.random.Generator`. The
registered classes are thin wrappers that hold the config arguments, so PaddleGAN pipelines
such as
    transforms:
      - {name: Resize, size: [64, 64], interpolation: bicubic}
      - {name: Normalize, mean: [127.5], std: [127.5], keys: [image]}
load unchanged (`keys` is accepted and ignored: every image of the sample is transformed).
Images stay HWC until `Transpose` (HWC -> CHW); a pipeline without it is transposed at the end.
"""
import os

import cv2
import numpy as np

from ..utils.errors import ConfigError, DatasetError
from ..utils.image import IMAGE_EXTENSIONS, imread
from ..utils.registry import Registry

TRANSFORMS = Registry("transform")

INTERP = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC,
          "area": cv2.INTER_AREA, "lanczos": cv2.INTER_LANCZOS4}


def _pair(size):
    if isinstance(size, int):
        return size, size
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise ConfigError(f"size must be an int or [h, w], got {size!r}")


# ---- functions --------------------------------------------------------------------------------
def resize(img, size, interpolation="bilinear"):
    """Resize to (h, w); an int size scales the short side to it, keeping the aspect ratio."""
    h, w = img.shape[:2]
    if isinstance(size, int):
        scale = size / min(h, w)
        oh, ow = max(1, round(h * scale)), max(1, round(w * scale))
    else:
        oh, ow = _pair(size)
    out = cv2.resize(img, (ow, oh), interpolation=INTERP[interpolation])
    return out[..., None] if img.ndim == 3 and out.ndim == 2 else out


def crop(img, top, left, h, w):
    return img[top:top + h, left:left + w]


def random_crop_params(shape, size, rng):
    h, w = shape[:2]
    ch, cw = _pair(size)
    if ch > h or cw > w:
        raise DatasetError(f"crop {ch}x{cw} is larger than the image {h}x{w}")
    return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw


def normalize(img, mean, std):
    mean = np.asarray(mean, dtype=np.float32)
    std = np.asarray(std, dtype=np.float32)
    img = img.astype(np.float32)
    if img.ndim == 3 and img.shape[0] == mean.size and img.shape[-1] != mean.size:  # CHW
        return (img - mean[:, None, None]) / std[:, None, None]
    return (img - mean) / std


# ---- registered wrappers ----------------------------------------------------------------------
class Transform:
    """Base: `__call__(images, rng) -> images`; subclasses implement `apply(images, rng)`.
    `makes_chw`: the transform leaves CHW arrays (HWC before it)."""

    makes_chw = False

    def __init__(self, keys=None):
        self.keys = keys

    def __call__(self, images, rng):
        return self.apply(list(images), rng)

    def apply(self, images, rng):
        raise NotImplementedError


@TRANSFORMS.register()
class Resize(Transform):
    def __init__(self, size, interpolation="bilinear", keys=None):
        super().__init__(keys)
        if interpolation not in INTERP:
            raise ConfigError(f"Resize interpolation must be one of {', '.join(INTERP)}; got {interpolation!r}")
        self.size = size if isinstance(size, int) else _pair(size)
        self.interpolation = interpolation

    def apply(self, images, rng):
        return [resize(im, self.size, self.interpolation) for im in images]


@TRANSFORMS.register("PairedRandomCrop")
class RandomCrop(Transform):
    def __init__(self, size, keys=None):
        super().__init__(keys)
        self.size = _pair(size)

    def apply(self, images, rng):
        params = random_crop_params(images[0].shape, self.size, rng)
        return [crop(im, *params) for im in images]


@TRANSFORMS.register()
class CenterCrop(Transform):
    def __init__(self, size, keys=None):
        super().__init__(keys)
        self.size = _pair(size)

    def apply(self, images, rng):
        h, w = images[0].shape[:2]
        ch, cw = self.size
        return [crop(im, max(0, (h - ch) // 2), max(0, (w - cw) // 2), ch, cw) for im in images]


@TRANSFORMS.register("PairedRandomHorizontalFlip")
class RandomHorizontalFlip(Transform):
    def __init__(self, prob=0.5, keys=None):
        super().__init__(keys)
        self.prob = float(prob)

    def apply(self, images, rng):
        return [im[:, ::-1] for im in images] if rng.random() < self.prob else images


@TRANSFORMS.register("PairedRandomVerticalFlip")
class RandomVerticalFlip(Transform):
    def __init__(self, prob=0.5, keys=None):
        super().__init__(keys)
        self.prob = float(prob)

    def apply(self, images, rng):
        return [im[::-1] for im in images] if rng.random() < self.prob else images


@TRANSFORMS.register()
class Transpose(Transform):
    """HWC -> CHW (order (2, 0, 1))."""

    makes_chw = True

    def __init__(self, order=(2, 0, 1), keys=None):
        super().__init__(keys)
        self.order = tuple(order)

    def apply(self, images, rng):
        return [(im[..., None] if im.ndim == 2 else im).transpose(self.order) for im in images]


@TRANSFORMS.register()
class Normalize(Transform):
    """(img - mean) / std per channel; works before or after Transpose."""

    def __init__(self, mean, std, keys=None, to_rgb=False):
        super().__init__(keys)
        self.mean, self.std = list(mean), list(std)
        if len(self.mean) != len(self.std):
            raise ConfigError("Normalize mean and std must have the same length")

    def apply(self, images, rng):
        return [normalize(im, self.mean, self.std) for im in images]


@TRANSFORMS.register()
class Grayscale(Transform):
    """RGB -> one channel (ITU-R 601 luma), kept as HxWx1."""

    def __init__(self, keys=None):
        super().__init__(keys)

    def apply(self, images, rng):
        out = []
        for im in images:
            if im.ndim == 3 and im.shape[2] == 3:
                im = cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2GRAY)[..., None]
            out.append(im)
        return out


@TRANSFORMS.register()
class PairedToTensor(Transform):
    """PaddleGAN's `PairedToTensor` (paddle.vision `ToTensor` on every image): HWC -> CHW
    float32, uint8 images divided by 255 (into [0, 1]), float images kept as they are.

    Args:
        data_format (str): 'CHW' (default) or 'HWC' (no transposition, only the conversion).
        keys (list[str] | None): accepted for PaddleGAN configs; every image is converted.
    """

    def __init__(self, data_format="CHW", keys=None):
        super().__init__(keys)
        if data_format not in ("CHW", "HWC"):
            raise ConfigError(f"PairedToTensor data_format must be CHW or HWC, got {data_format!r}")
        self.data_format = data_format
        self.makes_chw = data_format == "CHW"

    def apply(self, images, rng):
        out = []
        for im in images:
            im = im[..., None] if im.ndim == 2 else im
            arr = im.astype(np.float32) / 255.0 if im.dtype == np.uint8 else im.astype(np.float32)
            out.append(np.ascontiguousarray(arr.transpose(2, 0, 1) if self.makes_chw else arr))
        return out


class Compose:
    """A pipeline built from a list of transform configs.

    `__call__(images, rng)` returns the transformed list; `has_transpose` tells whether the
    pipeline already produced CHW arrays."""

    def __init__(self, cfgs):
        self.transforms = []
        for i, cfg in enumerate(cfgs or []):
            if not isinstance(cfg, dict) or "name" not in cfg:
                raise ConfigError(f"transform #{i + 1} must be a mapping with a 'name' key, got {cfg!r}")
            self.transforms.append(TRANSFORMS.build(cfg))
        self.has_transpose = any(t.makes_chw for t in self.transforms)

    def __call__(self, images, rng):
        single = not isinstance(images, (list, tuple))
        images = [images] if single else list(images)
        images = [im[..., None] if im.ndim == 2 else im for im in images]
        for t in self.transforms:
            try:
                images = t(images, rng)
            except Exception as e:
                raise DatasetError(f"transform {type(t).__name__} failed: {e}") from e
        return images[0] if single else images


# ---- super-resolution and video transforms ------------------------------------------------------
# Sequences (lists of frames) reach these transforms flattened into one list of images (see
# `ppgan.datasets.vsr_dataset.SequenceTransforms`), so one draw covers every frame of LQ and GT.
def sr_paired_crop_params(images, scale, gt_patch_size, rng):
    """One LQ crop position for GT and LQ images told apart by size: an image of the largest
    size is GT; one whose size times `scale` is that size is LQ. Returns a list of
    (top, left, size) per image, LQ crops at GT crop / scale."""
    scale = int(scale)
    if gt_patch_size % scale:
        raise DatasetError(f"gt_patch_size {gt_patch_size} is not a multiple of scale {scale}")
    lq_patch = gt_patch_size // scale
    gh = max(im.shape[0] for im in images)
    gw = max(im.shape[1] for im in images)
    if gh % scale or gw % scale:
        raise DatasetError(f"GT size {gh}x{gw} is not a multiple of scale {scale}")
    lh, lw = gh // scale, gw // scale
    is_gt = []
    for im in images:
        if im.shape[:2] == (gh, gw):
            is_gt.append(True)
        elif im.shape[:2] == (lh, lw):
            is_gt.append(False)
        else:
            raise DatasetError(f"scale size not match: image {im.shape[0]}x{im.shape[1]} is neither GT {gh}x{gw} "
                             f"nor LQ {lh}x{lw} (scale {scale})")
    if scale != 1 and all(is_gt):
        raise DatasetError(f"scale size not match: no LQ image {lh}x{lw} for GT {gh}x{gw} (scale {scale})")
    if lh < lq_patch or lw < lq_patch:
        raise DatasetError(f"LQ size {lh}x{lw} is smaller than the LQ patch {lq_patch} (gt_patch_size "
                         f"{gt_patch_size} / scale {scale})")
    top, left = int(rng.integers(0, lh - lq_patch + 1)), int(rng.integers(0, lw - lq_patch + 1))
    return [(top * scale, left * scale, gt_patch_size) if g else (top, left, lq_patch) for g in is_gt]


def paired_augment(images, rng, hflip=True, rot=True):
    """Flip horizontally, flip vertically and transpose H/W (each with probability 0.5 when
    enabled; together the 8 dihedral transforms) every image with the same draws."""
    do_h = hflip and rng.random() < 0.5
    do_v = rot and rng.random() < 0.5
    do_t = rot and rng.random() < 0.5
    out = []
    for im in images:
        if do_h:
            im = im[:, ::-1]
        if do_v:
            im = im[::-1]
        if do_t:
            im = im.swapaxes(0, 1)
        out.append(np.ascontiguousarray(im))
    return out


@TRANSFORMS.register()
class SRPairedRandomCrop(Transform):
    """Crop LQ and GT images at corresponding places: a `gt_patch_size` GT patch and the
    `gt_patch_size / scale` LQ patch under it (GT images are told apart from LQ ones by size,
    so LQ and GT frame sequences are cropped alike).

    Args:
        scale (int): the model's up-scaling factor.
        gt_patch_size (int): GT patch side, a multiple of `scale`.
        scale_list (bool): with scale 4, also output the GT patch resized (OpenCV bicubic) to
            twice the LQ patch, inserted before the GT image: (lq, gt) -> (lq, lqx2, gt), for
            DRN (`output_keys: [lq, lqx2, gt]`). One LQ and one GT image only; ignored for other
            scales, as in PaddleGAN (default False).
    """

    def __init__(self, scale, gt_patch_size, scale_list=False, keys=None):
        super().__init__(keys)
        self.scale, self.gt_patch_size = int(scale), int(gt_patch_size)
        if self.scale < 1 or self.gt_patch_size % self.scale:
            raise ConfigError(f"SRPairedRandomCrop gt_patch_size {gt_patch_size} must be a multiple of scale {scale}")
        self.scale_list = bool(scale_list) and self.scale == 4

    def apply(self, images, rng):
        params = sr_paired_crop_params(images, self.scale, self.gt_patch_size, rng)
        out = [crop(im, top, left, size, size) for im, (top, left, size) in zip(images, params)]
        if not self.scale_list:
            return out
        gt_index = [i for i, (_, _, size) in enumerate(params) if size == self.gt_patch_size]
        if len(out) != 2 or len(gt_index) != 1:
            raise DatasetError(f"SRPairedRandomCrop scale_list needs one LQ and one GT image, got {len(out)} images")
        lq_x2 = 2 * (self.gt_patch_size // self.scale)
        gt = out[gt_index[0]]
        out.insert(gt_index[0], resize(np.ascontiguousarray(gt), (lq_x2, lq_x2), "bicubic"))
        return out


@TRANSFORMS.register()
class PairedRandomTransposeHW(Transform):
    """Swap H and W of every image (one draw) with probability `prob`; with the two flips it
    gives all 8 rotations / reflections."""

    def __init__(self, prob=0.5, keys=None):
        super().__init__(keys)
        self.prob = float(prob)

    def apply(self, images, rng):
        return [im.swapaxes(0, 1) for im in images] if rng.random() < self.prob else images


@TRANSFORMS.register()
class TransposeSequence(Transpose):
    """`Transpose` for every frame of a sequence (HWC -> CHW)."""


@TRANSFORMS.register()
class NormalizeSequence(Normalize):
    """`Normalize` for every frame of a sequence (the sequence is stacked to [T, C, H, W]).

    Args:
        mean, std (list[float]): per channel.
        data_format (str): accepted for PaddleGAN configs; the layout is detected.
    """

    def __init__(self, mean, std, data_format="CHW", to_rgb=False, keys=None):
        super().__init__(mean, std, keys=keys, to_rgb=to_rgb)


@TRANSFORMS.register()
class MirrorVideoSequence(Transform):
    """Extend each frame sequence (x1..xN) to (x1..xN, xN..x1) (BasicVSR++ on Vimeo-90K)."""

    sequence_aware = True

    def apply(self, images, rng):
        raise DatasetError("MirrorVideoSequence needs frame sequences (a video dataset)")

    def apply_sequences(self, groups, rng):
        return [list(g) + list(g)[::-1] if isinstance(g, list) else g for g in groups]


@TRANSFORMS.register()
class SRNoise(Transform):
    """Add a real noise patch (RealSR): a random `size` crop of a random image from
    `noise_path`, minus its per-channel mean, added to the first len(keys) images (PaddleGAN
    applies it to the LQ image only: `keys: [image]`), then clipped to [0, 1]. Images must be
    float in [0, 1] (after `Normalize` by 255), HWC or CHW, `size` x `size`.

    Args:
        noise_path (str): folder of noise patches (PNG).
        size (int): noise crop side (the LQ patch size).
        keys (list[str] | None): only its length is used (default: the first image).
    """

    def __init__(self, noise_path, size, keys=None):
        super().__init__(keys)
        folder = os.path.expanduser(os.fspath(noise_path))
        if not os.path.isdir(folder):
            raise DatasetError(f"SRNoise noise folder not found: {folder}")
        self.noise_files = sorted(e.path for e in os.scandir(folder)  # regular files only: no FIFO
                                  if os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS and e.is_file())
        if not self.noise_files:
            raise DatasetError(f"SRNoise found no noise images in {folder}")
        self.size = int(size)
        self.count = len(keys) if keys else 1

    def apply(self, images, rng):
        path = self.noise_files[int(rng.integers(0, len(self.noise_files)))]
        noise = imread(path).astype(np.float32) / 255.0
        top, left, h, w = random_crop_params(noise.shape, self.size, rng)
        noise = crop(noise, top, left, h, w)
        noise = noise - noise.mean(axis=(0, 1), keepdims=True)
        out = list(images)
        for i in range(min(self.count, len(out))):
            im = out[i]
            chw = im.ndim == 3 and im.shape[1:] == (self.size, self.size) and im.shape[0] != self.size
            if (im.shape[1:] if chw else im.shape[:2]) != (self.size, self.size):
                raise DatasetError(f"SRNoise size {self.size} does not match the image {im.shape}")
            n = noise.transpose(2, 0, 1) if chw else noise
            out[i] = np.clip(im.astype(np.float32) + n, 0.0, 1.0)
        return out

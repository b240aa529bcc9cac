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
import cv2
import numpy as np

from ..utils.errors import ConfigError
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
        raise ValueError(f"crop {ch}x{cw} is larger than the image {h}x{w}")
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
    """Base: `__call__(images, rng) -> images`; subclasses implement `apply(images, rng)`."""

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


class Compose:
    """A pipeline built from a list of transform configs.

    `__call__(images, rng)` returns the transformed list; `has_transpose` tells whether the
    pipeline already produced CHW arrays."""

    def __init__(self, cfgs):
        self.transforms = []
        for i, cfg in enumerate(cfgs or []):
            if not isinstance(cfg, dict) or "name" not in cfg:
                raise ConfigError(f"transform #{i + 1} must be a mapping with a 'name' key, got {cfg!r}")
            try:
                self.transforms.append(TRANSFORMS.build(cfg))
            except KeyError as e:
                raise ConfigError(e.args[0]) from None
        self.has_transpose = any(isinstance(t, Transpose) for t in self.transforms)

    def __call__(self, images, rng):
        single = not isinstance(images, (list, tuple))
        images = [images] if single else list(images)
        images = [im[..., None] if im.ndim == 2 else im for im in images]
        for t in self.transforms:
            try:
                images = t(images, rng)
            except Exception as e:
                raise ValueError(f"transform {type(t).__name__} failed: {e}") from e
        return images[0] if single else images

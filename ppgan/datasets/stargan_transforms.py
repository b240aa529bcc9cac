"""Transforms that PaddleGAN's StarGAN v2 configs use, beyond `transforms.py`:

    - name: RandomResizedCropProb
      prob: 0.9
      size: [256, 256]
      scale: [0.8, 1.0]
      ratio: [0.9, 1.1]
      interpolation: 'bilinear'

Registered in `TRANSFORMS` on import (`ppgan.datasets` imports this module).
"""
import math

from ..utils.errors import ConfigError
from .transforms import INTERP, TRANSFORMS, Transform, _pair, crop, resize


def random_resized_crop_params(shape, scale, ratio, rng, attempts=10):
    """(top, left, h, w) of a crop covering a random fraction `scale` of the area with a random
    aspect ratio (log-uniform in `ratio`), as torchvision / paddle.vision; after `attempts`
    misses, the largest centred crop whose ratio fits `ratio`."""
    height, width = shape[:2]
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(attempts):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


@TRANSFORMS.register()
class RandomResizedCrop(Transform):
    """Crop a random area fraction (`scale`) and aspect ratio (`ratio`), then resize to `size`.
    Each image of the sample gets its own draw (as paddle.vision applies it per image)."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), interpolation="bilinear", keys=None):
        super().__init__(keys)
        if interpolation not in INTERP:
            raise ConfigError(f"{type(self).__name__} interpolation must be one of {', '.join(INTERP)}; "
                              f"got {interpolation!r}")
        self.size = _pair(size)
        self.scale, self.ratio = self._range("scale", scale), self._range("ratio", ratio)
        if self.scale[0] <= 0 or self.ratio[0] <= 0:
            raise ConfigError(f"{type(self).__name__} scale and ratio must be > 0, got {scale!r}, {ratio!r}")
        self.interpolation = interpolation

    def _range(self, key, value):
        if not isinstance(value, (list, tuple)) or len(value) != 2 or not value[0] <= value[1]:
            raise ConfigError(f"{type(self).__name__} {key} must be [low, high] with low <= high, got {value!r}")
        return float(value[0]), float(value[1])

    def crop_one(self, im, rng):
        top, left, h, w = random_resized_crop_params(im.shape, self.scale, self.ratio, rng)
        return resize(crop(im, top, left, h, w), self.size, self.interpolation)

    def apply(self, images, rng):
        return [self.crop_one(im, rng) for im in images]


@TRANSFORMS.register()
class RandomResizedCropProb(RandomResizedCrop):
    """PaddleGAN's: `RandomResizedCrop` with probability `prob` (drawn per image); an image
    not cropped is left as it is (PaddleGAN's configs resize it afterwards)."""

    def __init__(self, prob, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), interpolation="bilinear", keys=None):
        super().__init__(size, scale, ratio, interpolation, keys)
        self.prob = float(prob)

    def apply(self, images, rng):
        return [self.crop_one(im, rng) if rng.random() < self.prob else im for im in images]

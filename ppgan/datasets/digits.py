"""An embedded digits dataset: 0-9 drawn with OpenCV's Hershey fonts, no files needed.

Each image is generated on demand from `numpy.random.default_rng([seed, index])`, so image
`index` is the same in every run, worker and process for a given `seed`; the `rng` handed to
`get_item` drives only the configured augmentation transforms. The label of image `index` is
`classes[index % len(classes)]`, which keeps the classes exactly balanced.

Rendering, at `render_size` (>= 128 px, a multiple of `size`), then downscaled:
  1. `cv2.putText` with a random Hershey face (italic for the faces that have one),
     stroke thickness and glyph height;
  2. one affine warp that centres the ink box and applies a random height, aspect ratio,
     rotation, shear and offset, then a smooth random displacement field (pen wobble);
  3. `cv2.INTER_AREA` downscale (anti-aliasing), random stroke brightness, gaussian blur
     and gaussian pixel noise.
Digits are white on black. About 0.3 ms per image on one CPU core.
"""
import cv2
import numpy as np
import torch

from ..utils.errors import ConfigError
from .base_dataset import BaseDataset, to_chw_tensor
from .builder import DATASETS
from .transforms import Compose

# (font face, italic flag) pairs; FONT_ITALIC changes only COMPLEX and TRIPLEX.
HERSHEY_FACES = (
    (cv2.FONT_HERSHEY_SIMPLEX, 0),
    (cv2.FONT_HERSHEY_PLAIN, 0),
    (cv2.FONT_HERSHEY_DUPLEX, 0),
    (cv2.FONT_HERSHEY_COMPLEX, 0),
    (cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_ITALIC),
    (cv2.FONT_HERSHEY_TRIPLEX, 0),
    (cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_ITALIC),
    (cv2.FONT_HERSHEY_COMPLEX_SMALL, 0),
    (cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 0),
    (cv2.FONT_HERSHEY_SCRIPT_COMPLEX, 0),
)

# Ranges of the random draws, as fractions of the image side unless stated.
GLYPH_HEIGHT = (0.56, 0.78)
STROKE = (0.05, 0.11)        # pen thickness
ASPECT = (0.8, 1.15)         # width scale relative to height scale
ROTATION_DEG = (-14.0, 14.0)
SHEAR = (-0.22, 0.22)        # x += shear * y
OFFSET = 0.07                # centre offset, each axis
WOBBLE = 0.025               # amplitude of the smooth displacement field
BRIGHTNESS = (190, 255)      # stroke grey level
BLUR_SIGMA = (0.0, 0.022)
NOISE_SIGMA = (0.0, 10.0)    # in grey levels


def render_size_for(size):
    """The side the digits are drawn at before the anti-aliased downscale to `size`."""
    return size * max(2, -(-128 // size))


def render_digit(digit, size, rng):
    """Draw one digit.

    Args:
        digit (int): 0-9.
        size (int): output side in pixels.
        rng (np.random.Generator): source of every random choice.

    Returns:
        np.ndarray: [size, size] uint8, white digit on black.
    """
    big = render_size_for(size)
    face, italic = HERSHEY_FACES[rng.integers(len(HERSHEY_FACES))]
    font = face | italic
    text = str(int(digit))

    # 1. draw roughly at the target height on a canvas with room to spare
    height = big * rng.uniform(*GLYPH_HEIGHT)
    thickness = max(1, int(round(big * rng.uniform(*STROKE))))
    (w1, h1), _ = cv2.getTextSize(text, font, 1.0, 1)
    scale = height / max(h1, 1)
    canvas_side = 2 * big
    canvas = np.zeros((canvas_side, canvas_side), np.uint8)
    org = (int(canvas_side / 2 - w1 * scale / 2), int(canvas_side / 2 + height / 2))
    cv2.putText(canvas, text, org, font, scale, 255, thickness, cv2.LINE_AA)
    x, y, w, h = cv2.boundingRect(canvas)

    # 2. ink box centre -> image centre + offset, with height, aspect, shear and rotation
    s = height / max(h, 1)
    sx, sy = s * rng.uniform(*ASPECT), s
    shear = rng.uniform(*SHEAR)
    theta = np.deg2rad(rng.uniform(*ROTATION_DEG))
    cos, sin = np.cos(theta), np.sin(theta)
    linear = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([sx, sy])
    src_centre = np.array([x + w / 2, y + h / 2])
    dst_centre = big / 2 + big * rng.uniform(-OFFSET, OFFSET, size=2)
    matrix = np.hstack([linear, (dst_centre - linear @ src_centre)[:, None]]).astype(np.float32)
    img = cv2.warpAffine(canvas, matrix, (big, big), flags=cv2.INTER_LINEAR, borderValue=0)

    # smooth wobble: a 4x4 random displacement field upsampled to the full image
    field = rng.normal(0.0, WOBBLE * big, size=(4, 4, 2)).astype(np.float32)
    field = cv2.resize(field, (big, big), interpolation=cv2.INTER_CUBIC)
    grid = np.arange(big, dtype=np.float32)
    map_x = field[..., 0] + grid[None, :]
    map_y = field[..., 1] + grid[:, None]
    img = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderValue=0)

    # 3. anti-aliased downscale, brightness, blur, noise
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    img *= rng.uniform(*BRIGHTNESS) / 255.0
    sigma = size * rng.uniform(*BLUR_SIGMA)
    if sigma > 0.25:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img += rng.normal(0.0, rng.uniform(*NOISE_SIGMA), size=img.shape).astype(np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


@DATASETS.register("digits")
class DigitsDataset(BaseDataset):
    """Synthetic printed/handwritten-looking digits 0-9, generated on the fly (no files).

    Image `index` is fully determined by (`seed`, `index`); augmentation transforms use the
    per-sample rng from the sampler. Labels are `classes[index % len(classes)]` (balanced).

    Args:
        num_samples (int): dataset length. Default: 10000.
        size (int): image side in pixels, >= 8. Default: 32.
        channels (int): 1 (gray) or 3 (the gray image repeated). Default: 1.
        seed (int): non-negative seed of the image generator. Default: 0.
        transforms (list[dict] | None): transform configs (PaddleGAN names, see
            `ppgan.datasets.transforms`), applied to the HxWxC uint8 image. None means
            normalize to [-1, 1]; a given pipeline replaces that default, so include
            `{name: Normalize, mean: [127.5], std: [127.5]}` to keep the range.
        return_label (bool): add 'class_id' to each sample. Default: True.
        classes (list[int] | None): only these digits (labels keep the digit value).
            Default: all ten.
        cache (bool): keep rendered images in memory (1 KB each at 32x32), so epochs after
            the first skip the drawing. Per process: each loader worker has its own cache.
            Default: False.

    Sample dict:
        img (Tensor): [C, H, W] float32, in [-1, 1] with the default transforms.
        class_id (Tensor): int64 scalar, the digit (only when `return_label`).

    Attributes:
        resolution (int): `size`. num_classes (int): 10, the label dimension for conditional nets.
    """

    num_classes = 10

    def __init__(self, num_samples=10000, size=32, channels=1, seed=0, transforms=None, return_label=True,
                 classes=None, cache=False):
        if int(num_samples) < 1:
            raise ConfigError(f"DigitsDataset num_samples must be >= 1, got {num_samples}")
        if int(size) < 8:
            raise ConfigError(f"DigitsDataset size must be >= 8, got {size}")
        if channels not in (1, 3):
            raise ConfigError(f"DigitsDataset channels must be 1 or 3, got {channels!r}")
        if int(seed) < 0:
            raise ConfigError(f"DigitsDataset seed must be >= 0, got {seed}")
        if classes is None:
            classes = list(range(10))
        classes = [int(c) for c in classes]
        bad = [c for c in classes if not 0 <= c <= 9]
        if not classes or bad or len(set(classes)) != len(classes):
            raise ConfigError(f"DigitsDataset classes must be distinct digits 0-9, got {classes}")
        self.num_samples = int(num_samples)
        self.size = self.resolution = int(size)
        self.channels = channels
        self.seed = int(seed)
        self.return_label = bool(return_label)
        self.classes = classes
        if transforms is None:
            transforms = [{"name": "Normalize", "mean": [127.5], "std": [127.5]}]
        self.transforms = Compose(transforms)
        self._cache = {} if cache else None

    def __len__(self):
        return self.num_samples

    def label_of(self, index):
        """The digit drawn at `index`."""
        return self.classes[index % len(self.classes)]

    def image(self, index):
        """The raw image at `index`: [size, size, channels] uint8, before transforms."""
        if self._cache is not None:
            img = self._cache.get(index)
            if img is None:
                img = self._cache[index] = self._render(index)
            return img
        return self._render(index)

    def _render(self, index):
        img = render_digit(self.label_of(index), self.size, np.random.default_rng([self.seed, index]))[..., None]
        return np.repeat(img, 3, axis=2) if self.channels == 3 else img

    def get_item(self, index, rng):
        img = to_chw_tensor(self.transforms(self.image(index), rng), is_chw=self.transforms.has_transpose)
        assert img.ndim == 3 and img.dtype == torch.float32, f"bad image {tuple(img.shape)} {img.dtype}"
        sample = {"img": img}
        if self.return_label:
            sample["class_id"] = torch.tensor(self.label_of(index), dtype=torch.int64)
        return sample

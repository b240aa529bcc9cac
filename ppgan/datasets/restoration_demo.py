"""Denoising and deblurring demo data made from the real photos inside scikit-image (no download).

* 'denoise': the degraded image is the photo plus white Gaussian noise of `noise_sigma` (in
  0-255 units, 25 by default), clipped and rounded to 8 bits as a saved noisy photo would be;
* 'deblur': the photo convolved with a blur kernel (a motion blur: a line of `blur_size`
  pixels at a random angle, or an isotropic Gaussian of `blur_sigma`), plus optional noise of
  `noise_sigma`, rounded to 8 bits.

Training draws random crops (flips, transpositions) of the training photos and a fresh
degradation per sample; the test split holds out other photos (coffee, rocket by default)
with degradations seeded by the sample index, so every evaluation sees the same pairs.

Sample dict: 'lq' (degraded), 'gt' (clean) float32 [3, H, W] in [0, 1]; 'lq_path' / 'gt_path'
labels such as 'skimage:coffee@0,0'; test samples of the deblur task also carry 'kernel'
(float32 [k, k], the blur that made them) for non-blind classical baselines.
"""
import cv2
import numpy as np

from ..utils.errors import ConfigError
from .base_dataset import BaseDataset, to_chw_tensor
from .builder import DATASETS
from .embedded_photos import TEST_PHOTOS, TRAIN_PHOTOS, load_photo

TASKS = ("denoise", "deblur")
BLURS = ("motion", "gaussian")


def motion_kernel(size, angle, samples_per_px=16):
    """A normalised linear motion-blur kernel: a segment `size` pixels long through the centre at
    `angle` degrees, rasterised by bilinear splatting of points spaced 1/`samples_per_px` apart
    (exactly point-symmetric about the centre); [k, k] with k = 2 * ceil(size / 2) + 1."""
    size = float(size)
    if size < 1:
        raise ConfigError(f"motion blur size must be >= 1, got {size:g}")
    r = int(np.ceil(size / 2))
    k = 2 * r + 1
    n = int(np.ceil(size * samples_per_px)) + 1
    t = np.linspace(-size / 2, size / 2, n)
    xs = r + t * np.cos(np.deg2rad(angle))
    ys = r - t * np.sin(np.deg2rad(angle))
    kernel = np.zeros((k + 1, k + 1), np.float64)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dy, dx, wgt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        np.add.at(kernel, (y0 + dy, x0 + dx), wgt)
    kernel = kernel[:k, :k]
    return (kernel / kernel.sum()).astype(np.float32)


def gaussian_kernel(sigma):
    """A normalised isotropic Gaussian kernel [k, k], k = 2 * ceil(3 sigma) + 1."""
    sigma = float(sigma)
    if sigma <= 0:
        raise ConfigError(f"gaussian blur sigma must be > 0, got {sigma}")
    r = int(np.ceil(3 * sigma))
    g = cv2.getGaussianKernel(2 * r + 1, sigma).astype(np.float32)
    return g @ g.T


def blur(img, kernel):
    """`img` (uint8 or float HxWxC) convolved with `kernel`, reflected borders, as float32."""
    return cv2.filter2D(img.astype(np.float32), -1, kernel, borderType=cv2.BORDER_REFLECT)


def to_uint8(img):
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


@DATASETS.register()
class RestorationPhotoDataset(BaseDataset):
    """Noisy or blurred crops of scikit-image's photos for the restoration demos.

    Args:
        task (str): 'denoise' or 'deblur'.
        split (str): 'train' (random crops of the training photos) or 'test' (held-out photos).
        patch_size (int): train crop side (default 64).
        num_samples (int): length of the train split (default 1000).
        photos (list[str] | None): override the split's photos (`skimage.data` names).
        photo_scale (float): resize the photos by this factor first (area filter; default 0.5).
        test_size (int | None): test: crop side of `per_photo` crops on a regular grid; None
            (default) for each whole photo cropped to a multiple of 8 (batch size 1 then).
        per_photo (int): test crops per photo when `test_size` is set (default 4).
        noise_sigma (float): Gaussian noise std in 0-255 units (default 25 for 'denoise', 0 for
            'deblur').
        blur (str): 'motion' (default) or 'gaussian' (deblur only).
        blur_size (int | list[int]): motion length in pixels, or [min, max] drawn per sample in
            training (the test split uses the max) (default 9).
        blur_sigma (float | list[float]): Gaussian sigma, or [min, max] likewise (default 2.0).
        shuffle_channels (bool): train: randomly permute the RGB channels of each crop (more
            colours from few photos; default False).
    """

    def __init__(self, task="denoise", split="train", patch_size=64, num_samples=1000, photos=None,
                 photo_scale=0.5, test_size=None, per_photo=4, noise_sigma=None, blur="motion", blur_size=None,
                 blur_sigma=None, shuffle_channels=False):
        if task not in TASKS:
            raise ConfigError(f"RestorationPhotoDataset task must be one of {', '.join(TASKS)}; got {task!r}")
        if split not in ("train", "test"):
            raise ConfigError(f"RestorationPhotoDataset split must be 'train' or 'test'; got {split!r}")
        if blur not in BLURS:
            raise ConfigError(f"RestorationPhotoDataset blur must be one of {', '.join(BLURS)}; got {blur!r}")
        self.task, self.split, self.blur = task, split, blur
        self.shuffle_channels = bool(shuffle_channels)
        self.noise_sigma = float((25.0 if task == "denoise" else 0.0) if noise_sigma is None else noise_sigma)
        if self.noise_sigma < 0 or (task == "denoise" and self.noise_sigma == 0):
            raise ConfigError(f"RestorationPhotoDataset noise_sigma must be >= 0 (> 0 to denoise); got {noise_sigma}")
        self.blur_size = self._range(9 if blur_size is None else blur_size, "blur_size", 1)
        self.blur_sigma = self._range(2.0 if blur_sigma is None else blur_sigma, "blur_sigma", 1e-6)
        self.patch_size = int(patch_size)
        if self.patch_size < 8:
            raise ConfigError(f"RestorationPhotoDataset patch_size must be >= 8; got {patch_size}")
        self.photos = tuple(photos) if photos else (TRAIN_PHOTOS if split == "train" else TEST_PHOTOS)
        self.images = [load_photo(p, float(photo_scale)) for p in self.photos]
        if split == "train":
            for name, img in zip(self.photos, self.images):
                if min(img.shape[:2]) < self.patch_size:
                    raise ConfigError(f"photo '{name}' ({img.shape[0]}x{img.shape[1]}) is smaller than "
                                      f"patch_size {self.patch_size}")
            self.num_samples = int(num_samples)
            if self.num_samples < 1:
                raise ConfigError(f"RestorationPhotoDataset num_samples must be >= 1; got {num_samples}")
            return
        self.pairs = []
        for i, (name, img) in enumerate(zip(self.photos, self.images)):
            if test_size is None:
                h, w = (s - s % 8 for s in img.shape[:2])
                crops = [(0, 0, h, w)]
            else:
                t = int(test_size)
                if t < 8 or min(img.shape[:2]) < t:
                    raise ConfigError(f"photo '{name}' ({img.shape[0]}x{img.shape[1]}) is smaller than "
                                      f"test_size {test_size} (or test_size < 8)")
                crops = [(y, x, t, t) for y, x in _grid(img.shape[:2], t, int(per_photo))]
            for y, x, h, w in crops:
                rng = np.random.default_rng(len(self.pairs))
                gt = np.ascontiguousarray(img[y:y + h, x:x + w])
                lq, kernel = self._degrade(gt, rng)
                self.pairs.append((lq, gt, kernel, f"skimage:{name}@{y},{x}"))
        self.num_samples = len(self.pairs)

    @staticmethod
    def _range(value, key, low):
        try:
            lo, hi = (float(value),) * 2 if np.isscalar(value) else (float(v) for v in value)
            ok = not isinstance(value, (str, bool)) and low <= lo <= hi
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(f"RestorationPhotoDataset {key} must be a number >= {low:g} or [min, max]; got {value!r}")
        return float(lo), float(hi)

    def kernel(self, rng):
        """A blur kernel: random in training, the largest blur at a seeded angle in testing."""
        test = self.split == "test"
        if self.blur == "motion":
            lo, hi = self.blur_size
            size = round(hi) if test else int(rng.integers(round(lo), round(hi) + 1))
            return motion_kernel(size, float(rng.uniform(0.0, 180.0)))
        lo, hi = self.blur_sigma
        return gaussian_kernel(hi if test else float(rng.uniform(lo, hi)))

    def _degrade(self, gt, rng):
        """(degraded uint8 image, kernel or None) for a clean uint8 image."""
        kernel = None
        out = gt.astype(np.float32)
        if self.task == "deblur":
            kernel = self.kernel(rng)
            out = blur(gt, kernel)
        if self.noise_sigma > 0:
            out = out + rng.normal(0.0, self.noise_sigma, out.shape).astype(np.float32)
        return to_uint8(out), kernel

    def __len__(self):
        return self.num_samples

    def get_item(self, index, rng):
        if self.split == "test":
            lq, gt, kernel, name = self.pairs[index]
        else:
            img = self.images[index % len(self.images)]
            p = self.patch_size
            y = int(rng.integers(0, img.shape[0] - p + 1))
            x = int(rng.integers(0, img.shape[1] - p + 1))
            gt = img[y:y + p, x:x + p]
            if rng.random() < 0.5:
                gt = gt[:, ::-1]
            if rng.random() < 0.5:
                gt = gt[::-1]
            if rng.random() < 0.5:
                gt = gt.transpose(1, 0, 2)
            if self.shuffle_channels:
                gt = gt[..., rng.permutation(3)]
            gt = np.ascontiguousarray(gt)
            lq, kernel = self._degrade(gt, rng)
            name = f"skimage:{self.photos[index % len(self.photos)]}@{y},{x}"
        sample = {"lq": to_chw_tensor(lq.astype(np.float32) / 255.0),
                  "gt": to_chw_tensor(gt.astype(np.float32) / 255.0), "lq_path": name, "gt_path": name}
        if self.split == "test" and kernel is not None:
            sample["kernel"] = kernel
        return sample


def _grid(shape, size, n):
    """Up to `n` (y, x) corners of `size` crops on a regular grid over an image of `shape`."""
    h, w = shape
    rows = max(1, int(np.sqrt(n * h / w)))
    cols = max(1, -(-n // rows))
    ys = np.linspace(0, h - size, rows).astype(int)
    xs = np.linspace(0, w - size, cols).astype(int)
    return [(int(y), int(x)) for y in ys for x in xs][:n]

"""Gaussian-noise denoising pairs for SwinIR (PaddleGAN's `SwinIRDataset`, after KAIR's DnCNN
dataset): only clean images are read (`dataroot_H`); the noisy input is made on the fly.

* phase 'train': a random `H_size` square crop, one of KAIR's 8 flips / rotations, then
  N(0, sigma/255) noise, not clipped; every draw from the sample's rng (see `BaseDataset`).
* any other phase (PaddleGAN's 'test'): the whole image with N(0, sigma_test/255) noise drawn
  from `numpy.random.RandomState(0)` for every image (PaddleGAN seeds numpy with 0 per image),
  so validation scores are reproducible.

Sample dict: 'gt', 'lq' float32 [C, H, W] (gt in [0, 1]), 'gt_path', 'lq_path' (the same file).
PaddleGAN's samples are tuples (H, L, filename); `SwinIRModel` reads both forms.
"""
import numpy as np

from ..utils.errors import ConfigError, DatasetError
from ..utils.image import imread
from .base_dataset import BaseDataset, to_chw_tensor
from .builder import DATASETS
from .paired_dataset import check_folder, scan_nonempty

# PaddleGAN's `is_image_file` list
SWINIR_EXTENSIONS = (".jpeg", ".jpg", ".png", ".gif")


def augment_img(img, mode):
    """KAIR's `augment_img`: mode 0..7 -> one of the 8 flips / rotations of HxWxC."""
    if mode == 1:
        img = np.flipud(np.rot90(img))
    elif mode == 2:
        img = np.flipud(img)
    elif mode == 3:
        img = np.rot90(img, k=3)
    elif mode == 4:
        img = np.flipud(np.rot90(img, k=2))
    elif mode == 5:
        img = np.rot90(img)
    elif mode == 6:
        img = np.rot90(img, k=2)
    elif mode == 7:
        img = np.flipud(np.rot90(img, k=3))
    return np.ascontiguousarray(img)


def _positive_int(opt, key, default):
    value = opt.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < 1:
        raise ConfigError(f"SwinIRDataset opt.{key} must be a positive integer, got {value!r}")
    return int(value)


def _sigma(opt, key, default):
    value = opt.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"SwinIRDataset opt.{key} must be a number >= 0 (8-bit levels), got {value!r}")
    return float(value)


@DATASETS.register()
class SwinIRDataset(BaseDataset):
    """Args:
        opt (dict): PaddleGAN's options:
            phase ('train' | 'test'): training crops or whole test images.
            dataroot_H (str | list[str]): folder(s) of clean images (searched recursively).
            n_channels (1 | 3): gray or RGB (default 3; gray files are read as GGG).
            H_size (int): training crop size (default 64).
            sigma (number): training noise level in 8-bit levels (default 25).
            sigma_test (number): test noise level (default sigma).
    Raises:
        ConfigError: opt missing, no phase / dataroot_H, or a bad value.
        DatasetError: a folder is missing or empty, an image cannot be read, or a training image
            is smaller than H_size.
    """

    def __init__(self, opt=None):
        if not isinstance(opt, dict):
            raise ConfigError("SwinIRDataset needs opt: {phase, dataroot_H, n_channels, H_size, sigma, sigma_test}")
        for key in ("phase", "dataroot_H"):
            if not opt.get(key):
                raise ConfigError(f"SwinIRDataset needs opt.{key}")
        self.phase = str(opt["phase"])
        self.n_channels = _positive_int(opt, "n_channels", 3)
        if self.n_channels not in (1, 3):
            raise ConfigError(f"SwinIRDataset opt.n_channels must be 1 or 3, got {self.n_channels}")
        self.patch_size = _positive_int(opt, "H_size", 64)
        self.sigma = _sigma(opt, "sigma", 25.0)
        self.sigma_test = _sigma(opt, "sigma_test", self.sigma)
        roots = opt["dataroot_H"] if isinstance(opt["dataroot_H"], (list, tuple)) else [opt["dataroot_H"]]
        self.paths_H = [p for root in roots for p in scan_nonempty(check_folder(root), SWINIR_EXTENSIONS)]

    def __len__(self):
        return len(self.paths_H)

    def read(self, path):
        if self.n_channels == 1:
            return imread(path, mode="gray")[..., None]
        return imread(path)

    def get_item(self, index, rng):
        path = self.paths_H[index]
        img = self.read(path)
        if self.phase == "train":
            ps = self.patch_size
            h, w = img.shape[:2]
            if h < ps or w < ps:
                raise DatasetError(f"{path} is {w}x{h}, smaller than the {ps}x{ps} training crop (opt.H_size)")
            top, left = int(rng.integers(0, h - ps + 1)), int(rng.integers(0, w - ps + 1))
            patch = augment_img(img[top:top + ps, left:left + ps], int(rng.integers(0, 8)))
            gt = patch.astype(np.float32) / np.float32(255.0)
            lq = gt + rng.standard_normal(gt.shape, dtype=np.float32) * np.float32(self.sigma / 255.0)
        else:
            gt = np.float32(img / 255.0)
            lq = gt.copy()
            lq += np.random.RandomState(0).normal(0, self.sigma_test / 255.0, lq.shape)  # float32 in place
        return {"gt": to_chw_tensor(gt), "lq": to_chw_tensor(lq), "gt_path": path, "lq_path": path}

"""InvDN's dataset (PaddleGAN's `InvDNDataset`): clean, noisy and (for training) clean
low-resolution images, paired in sorted order.

Layout: training `<train_dir>/GT/`, `<train_dir>/Noisy/` and `<train_dir>/LQ/` (the GT images
down-scaled by `scale`, e.g. SIDD_Medium_Srgb_Patches_512); testing `<val_dir>/GT/` and
`<val_dir>/Noisy/`. Training samples (PaddleGAN's): an LQ patch of `crop_size // scale` at a
random place and the `crop_size` GT / noisy patches under it, then the same random horizontal
flip, vertical flip and H/W transpose (each with probability 0.5) on all three. Test samples:
whole images cropped (bottom / right) to multiples of `scale`.

Sample: {'noisy': float32 [3, H, W], 'gt': float32 [3, H, W], 'lq': float32 [3, H/s, W/s]
(training only), 'noisy_path', 'gt_path'} in [0, 1]. PaddleGAN's samples are (noisy, gt, lq)
tuples (gt again in place of lq when testing); `InvDNModel` takes either.
"""
import os

import numpy as np

from ..utils.errors import ConfigError, DatasetError
from ..utils.image import imread
from .base_dataset import BaseDataset, to_chw_tensor
from .builder import DATASETS
from .image_folder import normalize_extensions
from .mpr_dataset import sorted_pairs
from .paired_dataset import check_folder
from .sr_dataset import mod_crop
from .transforms import paired_augment


@DATASETS.register()
class InvDNDataset(BaseDataset):
    """Args:
        opt (dict): PaddleGAN's options: `phase` ('train' | 'test'; anything else is read as
            test, as PaddleGAN does), `scale` (the net's, 4), `crop_size` (GT patch, training),
            `train_dir` (training) or `val_dir` (testing).
        extensions (list[str] | None): image extensions (default: all readable ones).
    Raises:
        ConfigError: a needed `opt` key is missing, or `crop_size` is not a positive multiple
            of `scale`.
        DatasetError: a folder is missing or empty, the folders' counts differ, an image cannot
            be read, or its size does not fit (LQ not GT / scale, a crop larger than the image).
    """

    def __init__(self, opt=None, extensions=None):
        opt = dict(opt or {})
        self.is_train = opt.get("phase") == "train"
        need = ("scale", "crop_size", "train_dir") if self.is_train else ("scale", "val_dir")
        missing = [k for k in need if opt.get(k) is None]
        if missing:
            raise ConfigError(f"InvDNDataset ({'train' if self.is_train else 'test'}) needs opt.{missing[0]}")
        self.scale = int(opt["scale"])
        if self.scale < 1:
            raise ConfigError(f"InvDNDataset opt.scale must be a positive integer; got {opt['scale']!r}")
        self.crop_size = int(opt["crop_size"]) if self.is_train else None
        if self.is_train and (self.crop_size <= 0 or self.crop_size % self.scale):
            raise ConfigError(f"InvDNDataset opt.crop_size {opt['crop_size']} must be a positive multiple of "
                              f"opt.scale {self.scale}")
        root = check_folder(opt["train_dir"] if self.is_train else opt["val_dir"])
        subs = ("GT", "Noisy", "LQ") if self.is_train else ("GT", "Noisy")
        folders = [check_folder(os.path.join(root, s), f"InvDN {s} folder") for s in subs]
        self.paths = sorted_pairs(folders, normalize_extensions(extensions))

    def __len__(self):
        return len(self.paths)

    @staticmethod
    def _read(path):
        return imread(path).astype(np.float32) / 255.0

    def get_item(self, index, rng):
        gt_path, noisy_path = self.paths[index][:2]
        gt, noisy = self._read(gt_path), self._read(noisy_path)
        if gt.shape != noisy.shape:
            raise DatasetError(f"noisy image {noisy_path} is {noisy.shape[1]}x{noisy.shape[0]} but its GT {gt_path} "
                               f"is {gt.shape[1]}x{gt.shape[0]}")
        sample = {"noisy_path": noisy_path, "gt_path": gt_path}
        if not self.is_train:
            gt, noisy = mod_crop(gt, self.scale), mod_crop(noisy, self.scale)
            if gt.size == 0:
                raise DatasetError(f"image {gt_path} is smaller than scale {self.scale}")
            return dict(sample, noisy=to_chw_tensor(noisy), gt=to_chw_tensor(gt))
        lq_path = self.paths[index][2]
        lq = self._read(lq_path)
        s, size = self.scale, self.crop_size
        lq_size = size // s
        h, w = lq.shape[:2]
        if gt.shape[0] < h * s or gt.shape[1] < w * s:
            raise DatasetError(f"LQ image {lq_path} ({w}x{h}) is not GT {gt_path} ({gt.shape[1]}x{gt.shape[0]}) "
                               f"/ scale {s}")
        if h < lq_size or w < lq_size:
            raise DatasetError(f"crop_size {size} is larger than GT {gt_path} ({w * s}x{h * s} at scale {s})")
        top, left = int(rng.integers(0, h - lq_size + 1)), int(rng.integers(0, w - lq_size + 1))
        lq = lq[top:top + lq_size, left:left + lq_size]
        gt = gt[top * s:top * s + size, left * s:left * s + size]
        noisy = noisy[top * s:top * s + size, left * s:left * s + size]
        lq, gt, noisy = paired_augment([lq, gt, noisy], rng, hflip=True, rot=True)
        return dict(sample, noisy=to_chw_tensor(noisy), gt=to_chw_tensor(gt), lq=to_chw_tensor(lq), lq_path=lq_path)

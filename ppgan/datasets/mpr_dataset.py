"""MPRNet's paired restoration datasets (PaddleGAN's `MPRTrain`, `MPRVal`): `<rgb_dir>/input/`
(blurred, noisy or rainy images) and `<rgb_dir>/target/` (clean ones), paired in sorted order as
PaddleGAN does (GoPro, SIDD and the Rain datasets use the same names in both folders).

`MPRTrain` (PaddleGAN's augmentation): images smaller than `patch_size` are reflect-padded at
the bottom / right; one draw d in {0, 1, 2} (PaddleGAN's `random.randint(0, 2)`) then gives
d = 1: saturation scaled by a factor in [0.8, 1.2] and a vertical flip, d = 2: a horizontal flip;
then a random `patch_size` crop. `MPRVal`: a centre `patch_size` crop (the whole image when it
is smaller or `patch_size` is None).

Sample: {'lq': input float32 [3, H, W], 'gt': target float32 [3, H, W] in [0, 1], 'lq_path',
'gt_path'}. PaddleGAN's samples are (target, input, name) tuples; `MPRModel` takes either.
"""
import os

import numpy as np

from ..utils.errors import ConfigError, DatasetError
from ..utils.image import imread
from .base_dataset import BaseDataset, to_chw_tensor
from .builder import DATASETS
from .image_folder import normalize_extensions
from .paired_dataset import check_folder, scan_nonempty


def sorted_pairs(folders, extensions):
    """[(path in folder 0, path in folder 1, ...)] of each folder's images in sorted order; the
    folders must hold the same number of images."""
    lists = [scan_nonempty(f, extensions) for f in folders]
    counts = [len(x) for x in lists]
    if len(set(counts)) > 1:
        listed = ", ".join(f"{f} ({n})" for f, n in zip(folders, counts))
        raise DatasetError(f"paired folders hold different numbers of images: {listed}")
    return list(zip(*lists))


def adjust_saturation(img, factor):
    """PIL's `ImageEnhance.Color` (PaddleGAN's `adjust_saturation`) on float RGB in [0, 1]: blend
    with the ITU-R 601 luma (PIL works on 8-bit values and rounds; here nothing is rounded)."""
    gray = img @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(gray[..., None] + factor * (img - gray[..., None]), 0.0, 1.0)


def _patch_size(img_options):
    ps = (img_options or {}).get("patch_size")
    if ps is None:
        return None
    if int(ps) <= 0:
        raise ConfigError(f"img_options.patch_size must be a positive integer; got {ps!r}")
    return int(ps)


class _MPRPairs(BaseDataset):
    def __init__(self, rgb_dir, img_options=None, extensions=None):
        root = check_folder(rgb_dir)
        folders = [check_folder(os.path.join(root, sub), f"MPR {sub} folder") for sub in ("input", "target")]
        self.pairs = sorted_pairs(folders, normalize_extensions(extensions))
        self.img_options = dict(img_options or {})
        self.ps = _patch_size(self.img_options)

    def __len__(self):
        return len(self.pairs)

    def _load(self, index):
        inp_path, tar_path = self.pairs[index]
        inp = imread(inp_path).astype(np.float32) / 255.0
        tar = imread(tar_path).astype(np.float32) / 255.0
        if inp.shape != tar.shape:
            raise DatasetError(f"input {inp_path} is {inp.shape[1]}x{inp.shape[0]} but its target {tar_path} "
                               f"is {tar.shape[1]}x{tar.shape[0]}")
        return inp, tar, inp_path, tar_path

    @staticmethod
    def _sample(inp, tar, inp_path, tar_path):
        return {"lq": to_chw_tensor(inp), "gt": to_chw_tensor(tar), "lq_path": inp_path, "gt_path": tar_path}


@DATASETS.register()
class MPRTrain(_MPRPairs):
    """Args:
        rgb_dir (str): folder with `input/` and `target/`.
        img_options (dict): {'patch_size': training crop size} (PaddleGAN's key; required).
        extensions (list[str] | None): image extensions (default: all readable ones).
    Raises:
        ConfigError: no `img_options.patch_size`.
        DatasetError: a folder is missing or empty, the folders' counts differ, an image cannot
            be read, or an input and its target differ in size.
    """

    def __init__(self, rgb_dir, img_options=None, extensions=None):
        super().__init__(rgb_dir, img_options, extensions)
        if self.ps is None:
            raise ConfigError("MPRTrain needs img_options.patch_size")

    def get_item(self, index, rng):
        inp, tar, inp_path, tar_path = self._load(index)
        ps = self.ps
        h, w = tar.shape[:2]
        if h < ps or w < ps:
            pad = ((0, max(ps - h, 0)), (0, max(ps - w, 0)), (0, 0))
            inp, tar = np.pad(inp, pad, mode="reflect"), np.pad(tar, pad, mode="reflect")
        draw = int(rng.integers(0, 3))
        if draw == 1:
            factor = 1 + (0.2 - 0.4 * rng.random())
            inp, tar = adjust_saturation(inp, factor)[::-1], adjust_saturation(tar, factor)[::-1]
        elif draw == 2:
            inp, tar = inp[:, ::-1], tar[:, ::-1]
        hh, ww = tar.shape[:2]
        rr, cc = int(rng.integers(0, hh - ps + 1)), int(rng.integers(0, ww - ps + 1))
        inp, tar = inp[rr:rr + ps, cc:cc + ps], tar[rr:rr + ps, cc:cc + ps]
        return self._sample(inp, tar, inp_path, tar_path)


@DATASETS.register()
class MPRVal(_MPRPairs):
    """Args:
        rgb_dir (str): folder with `input/` and `target/`.
        img_options (dict | None): {'patch_size': centre crop size} (None: whole images).
        rgb_dir2: PaddleGAN's unused argument; accepted and ignored.
        extensions (list[str] | None): image extensions (default: all readable ones).
    """

    def __init__(self, rgb_dir, img_options=None, rgb_dir2=None, extensions=None):
        super().__init__(rgb_dir, img_options, extensions)

    def get_item(self, index, rng):
        inp, tar, inp_path, tar_path = self._load(index)
        if self.ps is not None:
            h, w = tar.shape[:2]
            ch, cw = min(self.ps, h), min(self.ps, w)
            top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))
            inp, tar = inp[top:top + ch, left:left + cw], tar[top:top + ch, left:left + cw]
        return self._sample(inp, tar, inp_path, tar_path)

"""Paired restoration images for NAFNet (PaddleGAN's `NAFNetTrain`, `NAFNetVal`), e.g. SIDD.

Layout: `rgb_dir/input/` (degraded) and `rgb_dir/target/` (clean), searched recursively; the two
sorted file lists pair by position (PaddleGAN's rule), so the folders must hold as many images.

Training samples (PaddleGAN's augmentation): images smaller than `patch_size` are reflect-padded
bottom/right; with probability 1/3 both images get the same saturation factor in [0.8, 1.2]
(PIL's `ImageEnhance.Color`); one of 9 equally likely choices applies the same flip / rotation
to both (identity twice, vflip, hflip, rot90, rot180, rot270, vflip+rot90, hflip+rot90; rotations
counter-clockwise; PaddleGAN rotates PIL images without expanding them, which is the same for
the square patches it trains on); then one random `patch_size` crop. Every draw comes from the
sample's rng (reproducible, see `BaseDataset`). Validation: a centre `patch_size` crop (none when
patch_size is None).

Sample dict: 'gt', 'lq' float32 [C, H, W] in [0, 1], 'gt_path', 'lq_path' (str).
PaddleGAN's samples are tuples (target, input, filename); `NAFNetModel` reads both forms.
"""
import os

import numpy as np
from PIL import Image, ImageEnhance

from ..utils.errors import ConfigError, DatasetError
from ..utils.image import imread
from .base_dataset import BaseDataset, to_chw_tensor
from .builder import DATASETS
from .image_folder import normalize_extensions
from .paired_dataset import check_folder, scan_nonempty

# PaddleGAN's `is_image_file` list
NAFNET_EXTENSIONS = (".jpeg", ".jpg", ".png", ".gif")


def paired_image_lists(rgb_dir, extensions):
    """(input paths, target paths) of `rgb_dir/input` and `rgb_dir/target`, sorted, paired by position."""
    root = check_folder(rgb_dir)
    inputs = scan_nonempty(check_folder(os.path.join(root, "input")), extensions)
    targets = scan_nonempty(check_folder(os.path.join(root, "target")), extensions)
    if len(inputs) != len(targets):
        raise DatasetError(f"{root}: input/ has {len(inputs)} images but target/ has {len(targets)} "
                           "(they pair by sorted position)")
    return inputs, targets


def patch_size_of(img_options, cls_name, required):
    ps = (img_options or {}).get("patch_size")
    if ps is None:
        if required:
            raise ConfigError(f"{cls_name} needs img_options.patch_size")
        return None
    if isinstance(ps, bool) or not isinstance(ps, (int, float)) or int(ps) != ps or ps < 1:
        raise ConfigError(f"{cls_name} img_options.patch_size must be a positive integer, got {ps!r}")
    return int(ps)


def read_pair(inp_path, tar_path):
    """(input, target) HxWx3 uint8 RGB of the same size, or DatasetError naming the files."""
    inp, tar = imread(inp_path), imread(tar_path)
    if inp.shape != tar.shape:
        raise DatasetError(f"input {inp_path} is {inp.shape[1]}x{inp.shape[0]} but its target {tar_path} "
                           f"is {tar.shape[1]}x{tar.shape[0]}")
    return inp, tar


def pad_to(img, size):
    """Reflect-pad HxWxC bottom/right to at least size x size (edge-replicate when too small to reflect)."""
    h, w = img.shape[:2]
    ph, pw = max(0, size - h), max(0, size - w)
    if not ph and not pw:
        return img
    mode = "reflect" if ph < h and pw < w else "edge"
    return np.pad(img, ((0, ph), (0, pw), (0, 0)), mode=mode)


def adjust_saturation(img, factor):
    """PIL's ImageEnhance.Color(img).enhance(factor) on an HxWx3 uint8 RGB array."""
    return np.asarray(ImageEnhance.Color(Image.fromarray(img)).enhance(factor))


def geometric_augment(img, choice):
    """PaddleGAN's 9-way augmentation `choice` (0..8) applied to HxWxC."""
    if choice == 1:
        img = img[::-1]
    elif choice == 2:
        img = img[:, ::-1]
    elif choice in (3, 4, 5):
        img = np.rot90(img, choice - 2)
    elif choice == 6:
        img = np.rot90(img[::-1])
    elif choice == 7:
        img = np.rot90(img[:, ::-1])
    return np.ascontiguousarray(img)


def to_unit_tensor(img):
    return to_chw_tensor(img.astype(np.float32) / 255.0)


class _NAFNetPairs(BaseDataset):
    patch_required = True

    def __init__(self, rgb_dir, img_options=None, extensions=None):
        self.patch_size = patch_size_of(img_options, type(self).__name__, self.patch_required)
        exts = NAFNET_EXTENSIONS if extensions is None else normalize_extensions(extensions)
        self.inp_filenames, self.tar_filenames = paired_image_lists(rgb_dir, exts)

    def __len__(self):
        return len(self.tar_filenames)

    def sample(self, index, inp, tar):
        return {"gt": to_unit_tensor(tar), "lq": to_unit_tensor(inp),
                "gt_path": self.tar_filenames[index], "lq_path": self.inp_filenames[index]}


@DATASETS.register()
class NAFNetTrain(_NAFNetPairs):
    """Training pairs with PaddleGAN's augmentation (see the module docstring).

    Args:
        rgb_dir (str): folder with `input/` and `target/`.
        img_options (dict): {'patch_size': int}, the square crop size.
        extensions (list[str] | None): image extensions (default PaddleGAN's: jpeg, jpg, png, gif).
    Raises:
        ConfigError: patch_size missing or not a positive integer.
        DatasetError: a folder is missing or empty, the folders hold different numbers of
            images, an image cannot be read, or a pair differs in size.
    """

    def get_item(self, index, rng):
        ps = self.patch_size
        inp, tar = read_pair(self.inp_filenames[index], self.tar_filenames[index])
        inp, tar = pad_to(inp, ps), pad_to(tar, ps)
        if rng.integers(0, 3) == 1:
            factor = 1.0 + (0.2 - 0.4 * rng.random())
            inp, tar = adjust_saturation(inp, factor), adjust_saturation(tar, factor)
        choice = int(rng.integers(0, 9))
        inp, tar = geometric_augment(inp, choice), geometric_augment(tar, choice)
        h, w = tar.shape[:2]
        top, left = int(rng.integers(0, h - ps + 1)), int(rng.integers(0, w - ps + 1))
        inp, tar = inp[top:top + ps, left:left + ps], tar[top:top + ps, left:left + ps]
        return self.sample(index, inp, tar)


@DATASETS.register()
class NAFNetVal(_NAFNetPairs):
    """Validation pairs, centre-cropped to `img_options.patch_size` (whole images when it is None).

    Args:
        rgb_dir (str): folder with `input/` and `target/`.
        img_options (dict | None): {'patch_size': int | None}.
        rgb_dir2: PaddleGAN's unused argument; accepted and ignored.
        extensions (list[str] | None): image extensions (default PaddleGAN's).
    Raises:
        DatasetError: as `NAFNetTrain`, and an image smaller than the crop.
    """

    patch_required = False

    def __init__(self, rgb_dir, img_options=None, rgb_dir2=None, extensions=None):
        super().__init__(rgb_dir, img_options, extensions)

    def get_item(self, index, rng):
        inp, tar = read_pair(self.inp_filenames[index], self.tar_filenames[index])
        ps = self.patch_size
        if ps is not None:
            h, w = tar.shape[:2]
            if h < ps or w < ps:
                raise DatasetError(f"{self.tar_filenames[index]} is {w}x{h}, smaller than the {ps}x{ps} "
                                   "validation crop (img_options.patch_size)")
            top, left = int(round((h - ps) / 2.0)), int(round((w - ps) / 2.0))
            inp, tar = inp[top:top + ps, left:left + ps], tar[top:top + ps, left:left + ps]
        return self.sample(index, inp, tar)

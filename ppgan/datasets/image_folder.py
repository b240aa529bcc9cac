"""Images from a folder, optionally labelled by class sub-folder.

Two layouts:
  * flat: every image under `dataroot`, recursively (no labels);
  * classes: `dataroot/<class name>/**/<image>` with no image directly in `dataroot`; class
    names sorted give labels 0..K-1 (as torchvision's ImageFolder).
Hidden files and folders (name starting with '.') are skipped; files are sorted by path, so the
index -> file mapping is the same on every machine.
"""
import os

import torch

from ..utils.errors import ConfigError, DatasetError
from ..utils.image import IMAGE_EXTENSIONS, imread
from .base_dataset import BaseDataset, to_chw_tensor
from .builder import DATASETS
from .transforms import Compose

DEFAULT_TRANSFORMS = ({"name": "Normalize", "mean": [127.5], "std": [127.5]},)


def normalize_extensions(extensions):
    """['PNG', '.jpg'] -> ('.png', '.jpg'); None -> IMAGE_EXTENSIONS."""
    if extensions is None:
        return IMAGE_EXTENSIONS
    if isinstance(extensions, str):
        extensions = [extensions]
    return tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)


def scan_images(folder, extensions=IMAGE_EXTENSIONS):
    """Sorted paths of the image files under `folder`, recursively (symlinked folders are
    followed once each; hidden entries are skipped)."""
    found, seen, stack = [], set(), [folder]
    while stack:
        current = stack.pop()
        real = os.path.realpath(current)
        if real in seen:
            continue
        seen.add(real)
        try:
            entries = list(os.scandir(current))
        except OSError as e:
            raise DatasetError(f"cannot list dataset folder {current}: {e.strerror or e}") from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                stack.append(entry.path)
            elif os.path.splitext(entry.name)[1].lower() in extensions and entry.is_file():
                found.append(entry.path)
    return sorted(found)


def pipeline_from_preprocess(preprocess):
    """Flatten PaddleGAN's `preprocess` list into transform configs.

    `LoadImageFromFile` entries are dropped (this dataset loads the images) and a
    `Transforms` entry is replaced by its `pipeline`; plain transform configs are kept.
    """
    out = []
    for i, step in enumerate(preprocess):
        if not isinstance(step, dict) or "name" not in step:
            raise ConfigError(f"preprocess step #{i + 1} must be a mapping with a 'name' key, got {step!r}")
        if step["name"] == "LoadImageFromFile":
            continue
        if step["name"] == "Transforms":
            out.extend(step.get("pipeline") or [])
        else:
            out.append(step)
    return out


@DATASETS.register()
class ImageFolderDataset(BaseDataset):
    """Every image in a folder tree, or one class per sub-folder.

    Args:
        dataroot (str): the folder.
        transforms (list[dict] | None): transform configs (PaddleGAN names, see
            `ppgan.datasets.transforms`) applied to the HxWxC uint8 image. None means
            normalize to [-1, 1] only; a given pipeline replaces that default. Images of
            different sizes need a `Resize` or crop to be batched.
        preprocess (list[dict] | None): PaddleGAN's newer spelling of the pipeline
            (`LoadImageFromFile` steps are dropped, `Transforms` steps are unwrapped);
            give `transforms` or `preprocess`, not both.
        return_label (bool | None): add 'class_id'. None (default): True when the folder
            has class sub-folders. True without class sub-folders is a ConfigError.
        channels (int): 3 (RGB) or 1 (gray). Default: 3.
        extensions (list[str] | None): file extensions to take, e.g. ['.png'].
            Default: `ppgan.utils.image.IMAGE_EXTENSIONS`.

    Sample dict:
        img (Tensor): [C, H, W] float32, in [-1, 1] with the default transforms.
        class_id (Tensor): int64 scalar (only when labels are returned).
        img_path (str): the image file.

    Attributes:
        classes (list[str]): class folder names, label order ([] for a flat folder).
        class_to_idx (dict[str, int]): name -> label.
        num_classes (int): len(classes).
        samples (list[tuple[str, int]]): (path, label; -1 for a flat folder).

    Raises:
        DatasetError: the folder is missing or has no images; from `__getitem__`, an image
            cannot be read (naming the file).
    """

    def __init__(self, dataroot, transforms=None, preprocess=None, return_label=None, channels=3, extensions=None):
        if channels not in (1, 3):
            raise ConfigError(f"ImageFolderDataset channels must be 1 or 3, got {channels!r}")
        if transforms is not None and preprocess is not None:
            raise ConfigError("ImageFolderDataset takes transforms or preprocess, not both")
        root = os.path.expanduser(os.fspath(dataroot))
        if not os.path.isdir(root):
            raise DatasetError(f"dataset folder not found: {root}")
        self.dataroot = root
        self.channels = channels
        self.extensions = normalize_extensions(extensions)

        top_images = [e for e in os.scandir(root) if not e.name.startswith(".") and e.is_file()
                      and os.path.splitext(e.name)[1].lower() in self.extensions]
        self.samples, self.classes = [], []
        if not top_images:
            subdirs = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
            for name in subdirs:
                files = scan_images(os.path.join(root, name), self.extensions)
                if files:
                    self.samples.extend((f, len(self.classes)) for f in files)
                    self.classes.append(name)
        else:
            self.samples = [(f, -1) for f in scan_images(root, self.extensions)]
        if not self.samples:
            raise DatasetError(f"no images ({', '.join(self.extensions)}) found in dataset folder {root}")
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.num_classes = len(self.classes)

        if return_label is None:
            return_label = bool(self.classes)
        elif return_label and not self.classes:
            raise ConfigError(f"return_label is true but {root} has no class sub-folders "
                              "(put the images in <dataroot>/<class name>/)")
        self.return_label = bool(return_label)

        if preprocess is not None:
            transforms = pipeline_from_preprocess(preprocess)
        self.transforms = Compose(list(DEFAULT_TRANSFORMS) if transforms is None else transforms)

    def __len__(self):
        return len(self.samples)

    def get_item(self, index, rng):
        path, label = self.samples[index]
        img = imread(path, "rgb" if self.channels == 3 else "gray")
        try:
            img = self.transforms(img, rng)
        except ValueError as e:
            raise DatasetError(f"{path}: {e}") from e
        img = to_chw_tensor(img, is_chw=self.transforms.has_transpose)
        sample = {"img": img, "img_path": path}
        if self.return_label:
            sample["class_id"] = torch.tensor(label, dtype=torch.int64)
        return sample

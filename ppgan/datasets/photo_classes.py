"""A class-conditional image set made from scikit-image's photos (no downloads): class k is the
set of crops of photo k. Small enough for a class-conditional GAN (BigGAN) to learn on a CPU in
minutes, with classes a person tells apart at a glance (an astronaut, a cat, a coffee cup, ...).
"""
import cv2
import numpy as np
import torch

from ..utils.errors import ConfigError
from .base_dataset import BaseDataset, to_chw_tensor
from .builder import DATASETS
from .embedded_photos import load_photo

PHOTO_CLASSES = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")


@DATASETS.register("photo_classes")
class PhotoClassesDataset(BaseDataset):
    """Random crops of a few scikit-image colour photos, labelled by photo.

    Each photo is resized once so that its shorter side is `photo_side` pixels; sample `index`
    is a random `size` x `size` crop (and, with `flip`, a random horizontal flip) of photo
    `index % len(photos)`, drawn with the sampler's per-sample rng, so the classes are exactly
    balanced.

    Args:
        photos (list[str] | None): skimage.data photo names, one class each, in label order.
            Default: astronaut, chelsea, coffee, rocket, hubble_deep_field, immunohistochemistry.
        size (int): crop side (default 64), >= 8.
        photo_side (int | None): shorter side of the resized photos, >= size (default 1.5 * size:
            a crop shows most of the photo).
        num_samples (int): dataset length (default 6000).
        flip (bool): random horizontal flips (default True).

    Sample dict:
        img (Tensor): [3, size, size] float32 in [-1, 1].
        class_id (Tensor): int64 scalar, the photo's index in `photos`.
        img_path (str): 'skimage:<photo>@<y>,<x>'.

    Attributes:
        num_classes (int): len(photos). resolution (int): size. class_names (tuple): the photos.
    """

    def __init__(self, photos=None, size=64, photo_side=None, num_samples=6000, flip=True):
        photos = tuple(photos) if photos else PHOTO_CLASSES
        if len(photos) < 1 or len(set(photos)) != len(photos):
            raise ConfigError(f"PhotoClassesDataset photos must be distinct names, got {list(photos)}")
        if int(size) < 8:
            raise ConfigError(f"PhotoClassesDataset size must be >= 8, got {size}")
        photo_side = int(round(1.5 * int(size))) if photo_side is None else int(photo_side)
        if photo_side < int(size):
            raise ConfigError(f"PhotoClassesDataset photo_side ({photo_side}) must be >= size ({size})")
        if int(num_samples) < 1:
            raise ConfigError(f"PhotoClassesDataset num_samples must be >= 1, got {num_samples}")
        self.class_names, self.size, self.resolution = photos, int(size), int(size)
        self.num_classes = len(photos)
        self.num_samples, self.flip = int(num_samples), bool(flip)
        self.images = []
        for name in photos:
            img = load_photo(name, 1)
            h, w = img.shape[:2]
            scale = photo_side / min(h, w)
            self.images.append(cv2.resize(img, (max(photo_side, round(w * scale)), max(photo_side, round(h * scale))),
                                          interpolation=cv2.INTER_AREA))

    def __len__(self):
        return self.num_samples

    def get_item(self, index, rng):
        label = index % self.num_classes
        img = self.images[label]
        y = int(rng.integers(0, img.shape[0] - self.size + 1))
        x = int(rng.integers(0, img.shape[1] - self.size + 1))
        crop = img[y:y + self.size, x:x + self.size]
        if self.flip and rng.random() < 0.5:
            crop = crop[:, ::-1]
        out = to_chw_tensor(np.ascontiguousarray(crop).astype(np.float32) / 127.5 - 1.0)
        assert out.shape == (3, self.size, self.size) and out.dtype == torch.float32
        return {"img": out, "class_id": torch.tensor(label, dtype=torch.int64),
                "img_path": f"skimage:{self.class_names[label]}@{y},{x}"}

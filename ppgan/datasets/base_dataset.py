"""Dataset base class: dict samples, per-sample random generators for reproducible augmentation.

The training sampler (`ppgan.datasets.builder.ResumableSampler`) hands each dataset the key
`(index, seed)`; the dataset draws every random choice of that sample (crops, flips, noise)
from `numpy.random.default_rng(seed)`. The seed depends only on (run seed, epoch, index), so
augmentation is the same whatever the number of workers and after `--resume`.
"""
import numpy as np
import torch
from torch.utils.data import Dataset


class BaseDataset(Dataset):
    """Subclasses implement `__len__` and `get_item(index, rng) -> dict`.

    Sample dicts use PaddleGAN's keys: 'img' [C, H, W] float32 (and 'class_id' int64) for GANs;
    'A', 'B', 'A_path', 'B_path' for translation; 'lq', 'gt', 'lq_path' for super-resolution.
    """

    def __getitem__(self, key):
        if isinstance(key, (tuple, list)):
            index, seed = int(key[0]), key[1]
        else:
            index, seed = int(key), None
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {type(self).__name__} of length {len(self)}")
        return self.get_item(index, np.random.default_rng(seed))

    def get_item(self, index, rng):
        raise NotImplementedError


def to_chw_tensor(img, is_chw=False):
    """Numpy image HxW, HxWxC (or CxHxW when `is_chw`) -> float32 tensor [C, H, W]."""
    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    elif not is_chw:
        arr = arr.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(arr))

"""The embedded digits dataset: 0-9 drawn on the fly (`ppgan.utils.digits`), no files needed.

Each image is generated on demand from `numpy.random.default_rng([seed, index])`, so image
`index` is the same in every run, worker and process for a given `seed`; the `rng` handed to
`get_item` drives only the configured augmentation transforms. The label of image `index` is
`classes[index % len(classes)]`, which keeps the classes exactly balanced.
"""
import numpy as np
import torch

from ..utils.digits import digit_sample
from ..utils.errors import ConfigError
from ..utils.logger import progress
from .base_dataset import BaseDataset, to_chw_tensor
from .builder import DATASETS
from .transforms import Compose


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
        cache (bool): render every image once when the dataset is built (with a progress
            bar on a terminal and 'rendering N digits...' / '...: done in T s' lines in the
            run's log) and keep them in memory (1 KB each at 32x32), so no epoch draws
            again; loader workers share the rendered images. Default: False (drawn on demand).

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
        self._cache = None
        if cache:
            what = f"rendering {self.num_samples} digits ({self.size}x{self.size})"
            self._cache = {i: self._render(i) for i in progress(range(self.num_samples), self.num_samples,
                                                                 what, unit="img")}

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
        img = digit_sample(self.label_of(index), self.size, self.seed, index)[..., None]
        return np.repeat(img, 3, axis=2) if self.channels == 3 else img

    def get_item(self, index, rng):
        img = to_chw_tensor(self.transforms(self.image(index), rng), is_chw=self.transforms.has_transpose)
        assert img.ndim == 3 and img.dtype == torch.float32, f"bad image {tuple(img.shape)} {img.dtype}"
        sample = {"img": img}
        if self.return_label:
            sample["class_id"] = torch.tensor(self.label_of(index), dtype=torch.int64)
        return sample

"""Unpaired images of two domains for CycleGAN / U-GAT-IT (PaddleGAN's `UnpairedDataset`)."""
import math
import os

from ..utils.errors import ConfigError
from .base_dataset import BaseDataset
from .builder import DATASETS
from .image_folder import normalize_extensions
from .paired_dataset import check_folder, scan_nonempty
from .preprocess import Preprocess, default_preprocess


def _max_size(value):
    """PaddleGAN configs write `max_size: inf`, which YAML reads as the string 'inf'."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("inf", "+inf", "infinity")):
        return math.inf
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"UnpairedDataset max_size must be a number or inf, got {value!r}") from None
    if value < 1:
        raise ConfigError(f"UnpairedDataset max_size must be >= 1, got {value!r}")
    return value


@DATASETS.register()
class UnpairedDataset(BaseDataset):
    """Images of domain A and of domain B, not aligned.

    Sample i takes A image i (modulo the A count); its B image is drawn at random (from the
    sample's rng) when `is_train`, else B image i (modulo the B count). The length is the larger
    folder's count, capped at `max_size`.

    Args:
        dataroot_a, dataroot_b (str | None): the domain folders (searched recursively).
        max_size (int | float | str): cap on the length (default 'inf'). PaddleGAN accepts the
            key but ignores it; here it caps, as in the CycleGAN reference code.
        is_train (bool): random B pairing (default True).
        preprocess (list[dict] | None): PaddleGAN's step list, usually LoadImageFromFile A and B,
            then Transforms. None: load, transpose to CHW, normalise to [-1, 1].
        dataroot (str | None): instead of dataroot_a/dataroot_b, a folder with the CycleGAN
            layout `trainA`, `trainB`, `testA`, `testB`; `phase` picks the pair.
        phase (str | None): 'train' or 'test' (default: 'train' if is_train else 'test').
        extensions (list[str] | None): image extensions.

    Sample dict: 'A', 'B' float32 [C, H, W] (in [-1, 1] with the default preprocess),
    'A_path', 'B_path' (str).

    Raises:
        DatasetError: a folder is missing or has no images; an image cannot be read or a
            preprocess step fails (naming the files).
    """

    def __init__(self, dataroot_a=None, dataroot_b=None, max_size="inf", is_train=True, preprocess=None,
                 dataroot=None, phase=None, extensions=None):
        if dataroot_a is None and dataroot_b is None and dataroot is not None:
            phase = phase or ("train" if is_train else "test")
            root = check_folder(dataroot)
            dataroot_a, dataroot_b = os.path.join(root, phase + "A"), os.path.join(root, phase + "B")
        elif dataroot_a is None or dataroot_b is None:
            raise ConfigError("UnpairedDataset needs dataroot_a and dataroot_b (or dataroot with trainA/trainB/...)")
        self.extensions = normalize_extensions(extensions)
        self.dir_A, self.dir_B = check_folder(dataroot_a), check_folder(dataroot_b)
        self.is_train = bool(is_train)
        self.max_size = _max_size(max_size)
        self.paths_a = scan_nonempty(self.dir_A, self.extensions)
        self.paths_b = scan_nonempty(self.dir_B, self.extensions)
        self.size_a, self.size_b = len(self.paths_a), len(self.paths_b)
        self.preprocess = Preprocess(default_preprocess(["A", "B"]) if preprocess is None else preprocess)

    def __len__(self):
        return int(min(max(self.size_a, self.size_b), self.max_size))

    def get_item(self, index, rng):
        index_b = int(rng.integers(self.size_b)) if self.is_train else index % self.size_b
        datas = {"A_path": self.paths_a[index % self.size_a], "B_path": self.paths_b[index_b]}
        return self.preprocess.sample(datas, rng, ("A", "B"))

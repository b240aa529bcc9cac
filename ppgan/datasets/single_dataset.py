"""Images of one domain for inference with a translation model (PaddleGAN's `SingleDataset`)."""
from ..utils.errors import ConfigError
from .base_dataset import BaseDataset
from .builder import DATASETS
from .image_folder import normalize_extensions
from .paired_dataset import check_folder, scan_nonempty
from .preprocess import Preprocess, default_preprocess


@DATASETS.register()
class SingleDataset(BaseDataset):
    """Every image under `dataroot` (recursively, sorted), as one domain.

    Args:
        dataroot (str): the folder.
        preprocess (list[dict] | None): PaddleGAN's step list (LoadImageFromFile key A, then
            Transforms on [A]). None: load, transpose to CHW, normalise to [-1, 1].
        extensions (list[str] | None): image extensions.
        key (str): the domain the images are, 'A' (default) or 'B'. A translation model with
            direction 'b2a' reads its source images from 'B'.

    Sample dict: '<key>' float32 [C, H, W], '<key>_path' (str).

    Raises:
        DatasetError: the folder is missing or has no images; an image cannot be read.
    """

    def __init__(self, dataroot, preprocess=None, extensions=None, key="A"):
        if key not in ("A", "B"):
            raise ConfigError(f"SingleDataset key must be 'A' or 'B', got {key!r}")
        self.key = key
        self.dataroot = check_folder(dataroot)
        self.extensions = normalize_extensions(extensions)
        self.data_infos = [{f"{key}_path": p} for p in scan_nonempty(self.dataroot, self.extensions)]
        self.preprocess = Preprocess(default_preprocess([key]) if preprocess is None else preprocess)

    def __len__(self):
        return len(self.data_infos)

    def get_item(self, index, rng):
        return self.preprocess.sample(self.data_infos[index], rng, (self.key,))

"""`RepeatDataset` (PaddleGAN): a dataset repeated `times` times, so a small dataset (a few
video clips) makes long epochs with one loader start-up."""
from ..utils.errors import ConfigError
from .base_dataset import BaseDataset
from .builder import DATASETS, build_dataset


@DATASETS.register()
class RepeatDataset(BaseDataset):
    """`dataset` repeated `times` times; sample i is the inner sample i % len(dataset), with its
    own random draws (each repetition gets its own per-sample seed from the sampler).

    Args:
        dataset (dict | BaseDataset): the inner dataset or its config (`name: ...`).
        times (int): repetitions (>= 1).
    """

    def __init__(self, dataset, times):
        self.dataset = build_dataset(dataset) if isinstance(dataset, dict) else dataset
        self.times = int(times)
        if self.times < 1:
            raise ConfigError(f"RepeatDataset times must be >= 1, got {times!r}")
        self._ori_len = len(self.dataset)

    def __len__(self):
        return self.times * self._ori_len

    def get_item(self, index, rng):
        return self.dataset.get_item(index % self._ori_len, rng)

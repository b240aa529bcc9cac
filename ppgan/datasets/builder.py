"""Dataset registry, `build_dataset`, and the data loader with a resumable, seeded sampler."""
import math

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from ..utils.errors import ConfigError
from ..utils.registry import Registry

DATASETS = Registry("dataset")
LOADER_KEYS = ("batch_size", "num_workers", "use_shared_memory", "shuffle", "drop_last", "persistent_workers")


def build_dataset(cfg):
    """Build the dataset named by `cfg['name']`; loader keys (batch_size, num_workers, ...) are
    ignored here. `cfg` is not modified."""
    cfg = {k: v for k, v in cfg.items() if k not in LOADER_KEYS}
    return DATASETS.build(cfg)


def sample_seed(seed, epoch, index):
    """A 63-bit seed for one sample of one epoch, independent of workers and resume."""
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, epoch, index]).generate_state(2, np.uint32)
               .astype(np.uint64).dot([1 << 31, 1]))


class ResumableSampler(Sampler):
    """Yields `(index, sample_seed)` keys: a permutation per epoch drawn from (seed, epoch),
    sharded over `world_size` ranks, starting at `start_batch` of the epoch (for --resume)."""

    def __init__(self, length, batch_size, seed=0, shuffle=True, drop_last=True, rank=0, world_size=1):
        self.length, self.batch_size, self.seed = length, batch_size, seed
        self.shuffle, self.drop_last, self.rank, self.world_size = shuffle, drop_last, rank, world_size
        self.epoch, self.start_batch = 0, 0
        per_rank = length // world_size if drop_last else math.ceil(length / world_size)
        self.num_samples = per_rank

    def set_epoch(self, epoch, start_batch=0):
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def batches_per_epoch(self):
        n = self.num_samples
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _indices(self):
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.length)
        else:
            order = np.arange(self.length)
        total = self.num_samples * self.world_size
        if total > self.length:  # pad by wrapping so every rank has as many samples
            order = np.concatenate([order, order[: total - self.length]])
        return order[self.rank:total:self.world_size]

    def __iter__(self):
        idx = self._indices()
        if self.drop_last:
            idx = idx[: self.batches_per_epoch() * self.batch_size]
        idx = idx[self.start_batch * self.batch_size:]
        for i in idx:
            yield int(i), sample_seed(self.seed, self.epoch, int(i))

    def __len__(self):
        return max(0, self.batches_per_epoch() - self.start_batch) * self.batch_size


def build_dataloader(cfg, is_train=True, seed=0, rank=0, world_size=1):
    """Build (dataset, DataLoader, sampler) from a `dataset.train` / `dataset.test` config."""
    dataset = build_dataset(cfg)
    if len(dataset) == 0:
        raise ConfigError(f"dataset {cfg.get('name')} is empty")
    batch_size = int(cfg.get("batch_size", 1))
    drop_last = bool(cfg.get("drop_last", is_train)) and len(dataset) >= batch_size * world_size
    sampler = ResumableSampler(len(dataset), batch_size, seed=seed, shuffle=bool(cfg.get("shuffle", is_train)),
                               drop_last=drop_last, rank=rank, world_size=world_size)
    workers = int(cfg.get("num_workers", 0))
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                        drop_last=False, pin_memory=torch.cuda.is_available(),
                        persistent_workers=False, generator=torch.Generator().manual_seed(seed))
    return dataset, loader, sampler

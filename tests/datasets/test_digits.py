import time
from collections import Counter

import numpy as np
import pytest
import torch

from ppgan.datasets import DATASETS, DigitsDataset, build_dataloader, build_dataset
from ppgan.utils.errors import ConfigError


def test_default_sample_contract():
    ds = DigitsDataset(num_samples=50)
    assert len(ds) == 50 and ds.resolution == 32 and ds.num_classes == 10
    sample = ds[3]
    assert set(sample) == {"img", "class_id"}
    img, label = sample["img"], sample["class_id"]
    assert img.shape == (1, 32, 32) and img.dtype == torch.float32
    assert -1.0 <= img.min() and img.max() <= 1.0
    assert img.min() < -0.9 and img.max() > 0.5  # black background, bright strokes
    assert label.dtype == torch.int64 and label.ndim == 0 and int(label) == 3


def test_image_depends_only_on_seed_and_index():
    a, b = DigitsDataset(num_samples=20, seed=5), DigitsDataset(num_samples=20, seed=5)
    for i in (0, 7, 19):
        # different augmentation seeds do not matter without random transforms
        assert torch.equal(a[(i, 1)]["img"], b[(i, 999)]["img"])
        np.testing.assert_array_equal(a.image(i), b.image(i))
    assert not torch.equal(a[0]["img"], a[10]["img"])  # same class, different index
    other = DigitsDataset(num_samples=20, seed=6)
    assert not np.array_equal(a.image(4), other.image(4))


def test_indices_differ_and_background_is_dark():
    ds = DigitsDataset(num_samples=40)
    imgs = np.stack([ds.image(i)[..., 0] for i in range(40)])
    assert len({im.tobytes() for im in imgs}) == 40
    border = np.concatenate([imgs[:, 0], imgs[:, -1], imgs[:, :, 0], imgs[:, :, -1]], axis=1)
    assert border.mean() < 25  # digits are centred-ish: little ink at the border
    centre = imgs[:, 8:24, 8:24].mean()
    assert centre > 3 * imgs.mean() / 2


def test_labels_balanced_and_class_subset():
    ds = DigitsDataset(num_samples=1000)
    assert Counter(ds.label_of(i) for i in range(1000)) == {d: 100 for d in range(10)}
    assert [int(ds[i]["class_id"]) for i in range(20)] == [ds.label_of(i) for i in range(20)]
    sub = DigitsDataset(num_samples=9, classes=[3, 7, 9])
    assert [int(sub[i]["class_id"]) for i in range(6)] == [3, 7, 9, 3, 7, 9]


def test_size_channels_and_no_label():
    ds = DigitsDataset(num_samples=4, size=64, channels=3, return_label=False)
    sample = ds[1]
    assert set(sample) == {"img"}
    img = sample["img"]
    assert img.shape == (3, 64, 64)
    assert torch.equal(img[0], img[1]) and torch.equal(img[1], img[2])  # white digit on black


def test_transform_pipeline_uses_sample_rng():
    cfg = [{"name": "RandomCrop", "size": [28, 28]}, {"name": "Transpose"},
           {"name": "Normalize", "mean": [127.5], "std": [127.5]}]
    ds = DigitsDataset(num_samples=4, transforms=cfg)
    a, b = ds[(2, 11)]["img"], ds[(2, 11)]["img"]
    assert a.shape == (1, 28, 28) and torch.equal(a, b)
    crops = {ds[(2, s)]["img"].numpy().tobytes() for s in range(8)}
    assert len(crops) > 1  # the crop follows the augmentation seed
    raw = DigitsDataset(num_samples=4, transforms=[{"name": "Resize", "size": [16, 16], "interpolation": "area"}])
    img = raw[0]["img"]
    assert img.shape == (1, 16, 16) and img.max() > 1.0  # no Normalize: 0..255 kept


def test_build_dataset_and_dataloader():
    assert DATASETS.get("digits") is DigitsDataset and DATASETS.get("DigitsDataset") is DigitsDataset
    cfg = {"name": "digits", "num_samples": 32, "size": 16, "batch_size": 8, "num_workers": 0}
    ds = build_dataset(cfg)
    assert isinstance(ds, DigitsDataset) and len(ds) == 32 and cfg["name"] == "digits"
    ds, loader, sampler = build_dataloader(cfg, seed=3)
    batches = list(loader)
    assert len(batches) == 4
    assert batches[0]["img"].shape == (8, 1, 16, 16) and batches[0]["class_id"].shape == (8,)
    seen = torch.cat([b["class_id"] for b in batches])
    assert sorted(Counter(seen.tolist()).values()) == [3, 3, 3, 3, 3, 3, 3, 3, 4, 4]


@pytest.mark.parametrize("kwargs", [{"size": 4}, {"channels": 2}, {"classes": [10]}, {"classes": []},
                                    {"num_samples": 0}, {"seed": -1}])
def test_bad_arguments(kwargs):
    with pytest.raises(ConfigError):
        DigitsDataset(**kwargs)


def test_fast_enough():
    ds = DigitsDataset(num_samples=200)
    start = time.perf_counter()
    for i in range(200):
        ds[i]
    per_sample = (time.perf_counter() - start) / 200
    assert per_sample < 0.005  # about 0.3 ms on one core; generous for loaded CI machines


# ---- building a cached digits set reports its progress (it can take most of a minute) ----------------
@pytest.mark.parametrize("n, size", [(30, 16), (7, 8), (120, 32)])
def test_rendering_a_cached_set_is_logged_with_its_time(tmp_path, n, size):
    import re

    from ppgan.datasets.digits import DigitsDataset
    from ppgan.utils.logger import get_logger

    log = get_logger(None, quiet=True)
    ds = DigitsDataset(num_samples=n, size=size, cache=True)
    assert len(ds._cache) == n  # rendered while building, not during the first epoch
    log.open_files(str(tmp_path))
    text = (tmp_path / "train.log").read_text()
    assert f"rendering {n} digits ({size}x{size})..." in text, text
    assert re.search(rf"rendering {n} digits \({size}x{size}\): done in \d+\.\d s", text), text
    log.close()


def test_rendering_outside_a_run_goes_to_the_ppgan_logger(caplog, monkeypatch):
    import logging

    from ppgan.datasets.digits import DigitsDataset
    from ppgan.utils import logger

    monkeypatch.setattr(logger, "_current", None)  # no run logger of an earlier test
    with caplog.at_level(logging.INFO, logger="ppgan"):
        DigitsDataset(num_samples=10, size=8, cache=True)
        DigitsDataset(num_samples=10, size=8, cache=False)  # drawn on demand: nothing to report
    msgs = [r.getMessage() for r in caplog.records if r.name == "ppgan"]
    assert msgs[0] == "rendering 10 digits (8x8)..." and msgs[1].startswith("rendering 10 digits (8x8): done in")
    assert len(msgs) == 2


def test_trainer_log_shows_the_dataset_being_rendered(tiny_cfg, tmp_path):
    from ppgan.engine import Trainer

    tiny_cfg["dataset"]["train"]["cache"] = True
    Trainer(tiny_cfg, device="cpu", run_dir=str(tmp_path), quiet=True)
    text = (tmp_path / "train.log").read_text()
    assert "rendering 40 digits (16x16)..." in text and "rendering 40 digits (16x16): done in" in text

"""Translation datasets: side-by-side pairs, aligned folders, unpaired domains, SingleDataset,
PaddleGAN `preprocess:` pipelines and their random draws, missing-folder errors."""
import copy
import os

import numpy as np
import pytest
import torch

from ppgan.datasets import PairedDataset, SingleDataset, UnpairedDataset, build_dataloader, build_dataset
from ppgan.datasets.preprocess import Preprocess
from ppgan.utils.config import load_config
from ppgan.utils.errors import ConfigError, DatasetError
from ppgan.utils.image import imwrite

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pattern(h, w, seed):
    """A distinctive image: no two crops or flips of it are equal."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_pairs(folder, n=3, h=16, w=16):
    """Side-by-side A|B files; B is A + 1 (mod 256), so A and B stay aligned iff B - A == 1."""
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        a = pattern(h, w, i)
        imwrite(os.path.join(folder, f"{i}.png"), np.concatenate([a, (a + 1).astype(np.uint8)], 1))
    return str(folder)


def write_domain(folder, n, h=16, w=16, offset=0, ext=".png"):
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        imwrite(os.path.join(folder, f"{i:03d}{ext}"), pattern(h, w, 100 + offset + i))
    return str(folder)


def to_uint8(t):
    return np.round(t.numpy().transpose(1, 2, 0) * 127.5 + 127.5).astype(np.int64)


def facades_preprocess(train=True):
    """PaddleGAN's pix2pix_facades.yaml preprocess, at tiny sizes."""
    cfg = load_config(os.path.join(ROOT, "configs", "pix2pix_facades.yaml"))
    steps = copy.deepcopy(cfg["dataset"]["train" if train else "test"]["preprocess"])
    for t in steps[2]["pipeline"]:
        if t["name"] == "Resize":
            t["size"] = [20, 20] if train else [16, 16]
            t["interpolation"] = "nearest"
        if t["name"] == "PairedRandomCrop":
            t["size"] = [16, 16]
    return steps


# ---- paired ---------------------------------------------------------------------------------
def test_paired_side_by_side_split(tmp_path):
    ds = PairedDataset(write_pairs(tmp_path / "train", h=16, w=12))
    assert len(ds) == 3
    s = ds[0]
    assert set(s) == {"A", "B", "A_path", "B_path"}
    assert s["A"].shape == (3, 16, 12) and s["A"].dtype == torch.float32
    assert -1 <= s["A"].min() and s["A"].max() <= 1
    np.testing.assert_array_equal(to_uint8(s["A"]), pattern(16, 12, 0))
    np.testing.assert_array_equal((to_uint8(s["B"]) - to_uint8(s["A"])) % 256, 1)
    assert s["A_path"] == s["B_path"] == os.path.join(str(tmp_path / "train"), "0.png")


def test_paired_paddlegan_pipeline_keeps_pairs_aligned(tmp_path):
    ds = PairedDataset(write_pairs(tmp_path / "train", n=2), preprocess=facades_preprocess())
    seen = set()
    for seed in range(8):
        s = ds[(0, seed)]
        assert s["A"].shape == s["B"].shape == (3, 16, 16)
        np.testing.assert_array_equal((to_uint8(s["B"]) - to_uint8(s["A"])) % 256, 1)  # one crop, one flip
        again = ds[(0, seed)]
        assert torch.equal(again["A"], s["A"]) and torch.equal(again["B"], s["B"])
        seen.add(s["A"].numpy().tobytes())
    assert len(seen) > 1  # the crop / flip really is random across seeds
    test = PairedDataset(str(tmp_path / "train"), preprocess=facades_preprocess(train=False))
    assert test[1]["A"].shape == (3, 16, 16)


def test_paired_aligned_folders(tmp_path):
    write_domain(tmp_path / "d" / "A", 3)
    write_domain(tmp_path / "d" / "B", 3, offset=50, ext=".jpg")  # pairs by name, any extension
    for ds in (PairedDataset(str(tmp_path / "d")),
               PairedDataset(dataroot_a=str(tmp_path / "d" / "A"), dataroot_b=str(tmp_path / "d" / "B"))):
        assert ds.aligned and len(ds) == 3
        s = ds[2]
        assert s["A_path"].endswith(os.path.join("A", "002.png")) and s["B_path"].endswith(os.path.join("B", "002.jpg"))
        np.testing.assert_array_equal(to_uint8(s["A"]), pattern(16, 16, 102))
    steps = [{"name": "LoadImageFromFile", "key": "A"}, {"name": "LoadImageFromFile", "key": "B"},
             {"name": "Transforms", "input_keys": ["A", "B"],
              "pipeline": [{"name": "Resize", "size": [8, 8]}, {"name": "Transpose"},
                           {"name": "Normalize", "mean": [127.5] * 3, "std": [127.5] * 3}]}]
    assert PairedDataset(str(tmp_path / "d"), preprocess=steps)[0]["B"].shape == (3, 8, 8)
    os.remove(tmp_path / "d" / "B" / "001.jpg")
    with pytest.raises(DatasetError, match="no partner in .*'001'"):
        PairedDataset(str(tmp_path / "d"))


# ---- unpaired -------------------------------------------------------------------------------
@pytest.fixture
def horse2zebra(tmp_path):
    write_domain(tmp_path / "trainA", 3)
    write_domain(tmp_path / "trainB", 5, offset=10)
    write_domain(tmp_path / "testA", 2)
    write_domain(tmp_path / "testB", 2, offset=10)
    return tmp_path


def test_unpaired_random_b_from_the_sample_rng(horse2zebra):
    ds = UnpairedDataset(str(horse2zebra / "trainA"), str(horse2zebra / "trainB"), max_size="inf", is_train=True)
    assert len(ds) == 5
    s = ds[(4, 123)]
    assert set(s) == {"A", "B", "A_path", "B_path"} and s["A"].shape == (3, 16, 16)
    assert s["A_path"].endswith("001.png")  # 4 % 3
    assert ds[(4, 123)]["B_path"] == s["B_path"]  # same seed, same draw
    assert len({ds[(0, seed)]["B_path"] for seed in range(20)}) > 1
    test = UnpairedDataset(str(horse2zebra / "testA"), str(horse2zebra / "testB"), max_size="inf", is_train=False)
    assert [os.path.basename(test[i]["B_path"]) for i in range(2)] == ["000.png", "001.png"]
    assert len(UnpairedDataset(str(horse2zebra / "trainA"), str(horse2zebra / "trainB"), max_size=4,
                               is_train=True)) == 4


def test_unpaired_cyclegan_layout_under_dataroot(horse2zebra):
    assert len(UnpairedDataset(dataroot=str(horse2zebra), is_train=True)) == 5
    assert len(UnpairedDataset(dataroot=str(horse2zebra), is_train=False)) == 2


def test_unpaired_paddlegan_config_and_independent_random_transforms(horse2zebra):
    cfg = load_config(os.path.join(ROOT, "configs", "cyclegan_horse2zebra.yaml"))["dataset"]["train"]
    cfg = copy.deepcopy(cfg)
    one = write_domain(horse2zebra / "one", 1)
    cfg["dataroot_a"] = cfg["dataroot_b"] = one  # A and B: the same single file
    for t in cfg["preprocess"][2]["pipeline"]:
        if t["name"] == "Resize":
            t["size"] = [20, 20]
        if t["name"] == "RandomCrop":
            t["size"] = [16, 16]
    ds = build_dataset(cfg)
    assert ds.max_size == float("inf") and ds.is_train
    # plain RandomCrop / RandomHorizontalFlip draw per image (as PaddleGAN): same file, other crop
    differ = 0
    for seed in range(10):
        s = ds[(0, seed)]
        assert s["A"].shape == s["B"].shape == (3, 16, 16)
        differ += not torch.equal(s["A"], s["B"])
    assert differ > 0
    cfg["dataroot_a"], cfg["dataroot_b"] = str(horse2zebra / "trainA"), str(horse2zebra / "trainB")
    _, loader, _ = build_dataloader(dict(cfg, batch_size=2), is_train=True, seed=0)
    batch = next(iter(loader))
    assert batch["A"].shape == (2, 3, 16, 16) and len(batch["B_path"]) == 2


# ---- single, pipeline details, errors -----------------------------------------------------------
def test_single_dataset(tmp_path):
    ds = SingleDataset(write_domain(tmp_path / "photos", 2))
    s = ds[1]
    assert set(s) == {"A", "A_path"} and s["A"].shape == (3, 16, 16)
    assert set(SingleDataset(str(tmp_path / "photos"), key="B")[0]) == {"B", "B_path"}


def test_pipeline_without_transpose_gives_chw_and_grayscale_load(tmp_path):
    write_domain(tmp_path / "x", 1, h=8, w=6)
    steps = [{"name": "LoadImageFromFile", "key": "A", "flag": 0},
             {"name": "Transforms", "input_keys": ["A"], "pipeline": [{"name": "Normalize", "mean": [0], "std": [1]}]}]
    s = SingleDataset(str(tmp_path / "x"), preprocess=steps)[0]
    assert s["A"].shape == (1, 8, 6) and s["A"].max() > 1  # no Normalize to [-1, 1]: raw values
    raw = SingleDataset(str(tmp_path / "x"), preprocess=[{"name": "LoadImageFromFile", "key": "A"}])[0]
    assert raw["A"].shape == (3, 8, 6)  # HWC arrays that no Transforms step touched become CHW too


def test_missing_folders_and_bad_steps(tmp_path):
    with pytest.raises(DatasetError, match="dataset folder not found: .*nowhere") as err:
        PairedDataset(str(tmp_path / "nowhere"))
    assert "\n" not in str(err.value)
    write_domain(tmp_path / "trainA", 1)
    with pytest.raises(DatasetError, match="trainB"):
        UnpairedDataset(str(tmp_path / "trainA"), str(tmp_path / "trainB"), max_size="inf", is_train=True)
    os.makedirs(tmp_path / "empty")
    with pytest.raises(DatasetError, match="no images"):
        SingleDataset(str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="unknown preprocess step name 'LoadImage'"):
        Preprocess([{"name": "LoadImage", "key": "A"}])
    with pytest.raises(ConfigError, match="max_size"):
        UnpairedDataset(str(tmp_path / "trainA"), str(tmp_path / "trainA"), max_size="lots")
    crop = [{"name": "LoadImageFromFile", "key": "A"},
            {"name": "Transforms", "input_keys": ["A"], "pipeline": [{"name": "RandomCrop", "size": 64}]}]
    with pytest.raises(DatasetError, match=r"Transforms failed \(.*000\.png\).*larger than the image"):
        SingleDataset(str(tmp_path / "trainA"), preprocess=crop)[0]
    split = [{"name": "LoadImageFromFile", "key": "pair"}]
    with pytest.raises(DatasetError, match="no 'pair_path'"):
        SingleDataset(str(tmp_path / "trainA"), preprocess=split)[0]

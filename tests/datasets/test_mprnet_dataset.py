"""MPRTrain / MPRVal (PaddleGAN's MPRNet datasets): layout, pairing, PaddleGAN's augmentation draws
keeping input and target aligned, padding of small images, centre crops, and one-line errors."""
import os

import numpy as np
import pytest
import torch

from ppgan.datasets import build_dataset
from ppgan.utils.errors import ConfigError, DatasetError
from ppgan.utils.image import imwrite


def write(root, sizes, seed=0):
    """input = 255 - target, so any aligned crop / flip / saturation change keeps lq == 1 - gt."""
    rng = np.random.default_rng(seed)
    for i, (h, w) in enumerate(sizes):
        tar = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        imwrite(os.path.join(root, "target", f"img{i}.png"), tar)
        imwrite(os.path.join(root, "input", f"img{i}.png"), 255 - tar)
    return str(root)


def aligned(sample):
    return torch.allclose(sample["lq"], 1 - sample["gt"], atol=1e-6)


@pytest.mark.parametrize("sizes,ps", [([(20, 30), (24, 24)], 16), ([(9, 12)], 16), ([(16, 16), (40, 18), (17, 33)], 8)])
def test_train_samples_are_aligned_patches(tmp_path, sizes, ps):
    ds = build_dataset({"name": "MPRTrain", "rgb_dir": write(tmp_path, sizes), "img_options": {"patch_size": ps}})
    assert len(ds) == len(sizes)
    seen_lr = set()
    for seed in range(12):
        for i in range(len(ds)):
            s = ds[(i, seed)]
            assert set(s) == {"lq", "gt", "lq_path", "gt_path"}
            assert s["lq"].shape == s["gt"].shape == (3, ps, ps) and s["lq"].dtype == torch.float32
            assert 0 <= float(s["gt"].min()) and float(s["gt"].max()) <= 1
            assert aligned(s), (seed, i)
            assert os.path.basename(s["lq_path"]) == os.path.basename(s["gt_path"])
            seen_lr.add(s["gt"][0, 0, 0].item())
    assert len(seen_lr) > 1  # the crops / flips vary with the seed
    s1, s2 = ds[(0, 3)], ds[(0, 3)]
    assert torch.equal(s1["gt"], s2["gt"])  # a sample's draws come from its seed


def test_train_draws_follow_paddlegan(tmp_path):
    """d = 1: saturation change + vertical flip; d = 2: horizontal flip; d = 0: nothing (full-size
    patch, so the crop is the whole image)."""
    root = write(tmp_path, [(8, 8)])
    ds = build_dataset({"name": "MPRTrain", "rgb_dir": root, "img_options": {"patch_size": 8}})
    from ppgan.utils.image import imread

    tar = torch.from_numpy(imread(os.path.join(root, "target", "img0.png")).astype(np.float32) / 255).permute(2, 0, 1)
    kinds = set()
    for seed in range(30):
        gt = ds[(0, seed)]["gt"]
        if torch.equal(gt, tar):
            kinds.add("none")
        elif torch.equal(gt, tar.flip(2)):
            kinds.add("hflip")
        else:
            gray_order = gt.mean(0).flip(0)  # a vertical flip of a saturation-changed image
            assert torch.corrcoef(torch.stack([gray_order.flatten(), tar.mean(0).flatten()]))[0, 1] > 0.9
            kinds.add("sat+vflip")
    assert kinds == {"none", "hflip", "sat+vflip"}


@pytest.mark.parametrize("ps,size,want", [(8, (20, 30), (8, 8)), (None, (20, 30), (20, 30)), (64, (20, 30), (20, 30))])
def test_val_centre_crop(tmp_path, ps, size, want):
    ds = build_dataset({"name": "MPRVal", "rgb_dir": write(tmp_path, [size]), "img_options": {"patch_size": ps}})
    a, b = ds[(0, 1)], ds[(0, 2)]
    assert a["gt"].shape == (3, *want) and torch.equal(a["gt"], b["gt"]) and aligned(a)
    if ps == 8:
        full = build_dataset({"name": "MPRVal", "rgb_dir": str(tmp_path), "img_options": None})[0]["gt"]
        assert torch.equal(a["gt"], full[:, 6:14, 11:19])


def test_errors(tmp_path):
    with pytest.raises(DatasetError, match="dataset folder not found"):
        build_dataset({"name": "MPRTrain", "rgb_dir": str(tmp_path / "nope"), "img_options": {"patch_size": 8}})
    os.makedirs(tmp_path / "only_input" / "input")
    with pytest.raises(DatasetError, match="MPR target folder not found"):
        build_dataset({"name": "MPRVal", "rgb_dir": str(tmp_path / "only_input")})
    root = write(tmp_path / "a", [(8, 8), (8, 8)])
    os.remove(os.path.join(root, "input", "img1.png"))
    with pytest.raises(DatasetError, match="different numbers of images"):
        build_dataset({"name": "MPRVal", "rgb_dir": root})
    with pytest.raises(ConfigError, match="patch_size"):
        build_dataset({"name": "MPRTrain", "rgb_dir": write(tmp_path / "b", [(8, 8)])})
    with pytest.raises(ConfigError, match="patch_size"):
        build_dataset({"name": "MPRTrain", "rgb_dir": str(tmp_path / "b"), "img_options": {"patch_size": 0}})
    root = write(tmp_path / "c", [(8, 8)])
    imwrite(os.path.join(root, "input", "img0.png"), np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(DatasetError, match="differ|9x8"):
        build_dataset({"name": "MPRVal", "rgb_dir": root})[0]
    with open(os.path.join(root, "input", "img0.png"), "wb") as f:
        f.write(b"not a png")
    with pytest.raises(DatasetError, match="cannot read image .*img0.png"):
        build_dataset({"name": "MPRTrain", "rgb_dir": root, "img_options": {"patch_size": 4}})[0]

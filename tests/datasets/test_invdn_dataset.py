"""InvDNDataset (PaddleGAN's): the GT / Noisy / LQ layout, training crops with the LQ patch under
the GT patch and the same flips / transpose on all three, test-time mod-crops, one-line errors."""
import os

import numpy as np
import pytest
import torch

from ppgan.datasets import build_dataset
from ppgan.utils.errors import ConfigError, DatasetError
from ppgan.utils.image import imread, imwrite


def write(root, sizes, scale=4, lq=True, seed=0):
    """GT made of constant scale x scale blocks, LQ = one pixel per block, Noisy = 255 - GT: any
    aligned crop + flip / transpose keeps lq == gt[::s, ::s] and noisy == 1 - gt."""
    rng = np.random.default_rng(seed)
    for i, (h, w) in enumerate(sizes):
        small = rng.integers(0, 256, (h // scale, w // scale, 3), dtype=np.uint8)
        gt = np.kron(small, np.ones((scale, scale, 1), np.uint8))
        imwrite(os.path.join(root, "GT", f"{i:04d}.png"), gt)
        imwrite(os.path.join(root, "Noisy", f"{i:04d}.png"), 255 - gt)
        if lq:
            imwrite(os.path.join(root, "LQ", f"{i:04d}.png"), small)
    return str(root)


def train_cfg(root, crop=8, scale=4):
    return {"name": "InvDNDataset", "opt": {"phase": "train", "scale": scale, "crop_size": crop, "train_dir": root}}


@pytest.mark.parametrize("sizes,crop,scale", [([(16, 24), (32, 16)], 8, 4), ([(12, 12)], 12, 4), ([(10, 14)], 4, 2)])
def test_train_samples_stay_aligned(tmp_path, sizes, crop, scale):
    ds = build_dataset(train_cfg(write(tmp_path, sizes, scale), crop, scale))
    assert len(ds) == len(sizes)
    corners = set()
    for seed in range(10):
        for i in range(len(ds)):
            s = ds[(i, seed)]
            assert set(s) == {"noisy", "gt", "lq", "noisy_path", "gt_path", "lq_path"}
            assert s["gt"].shape == s["noisy"].shape == (3, crop, crop)
            assert s["lq"].shape == (3, crop // scale, crop // scale)
            assert torch.allclose(s["noisy"], 1 - s["gt"], atol=1e-6)
            assert torch.equal(s["lq"], s["gt"][:, ::scale, ::scale])
            corners.add(round(s["gt"][0, 0, 0].item(), 4))
    assert len(corners) > 1


@pytest.mark.parametrize("size,want", [((25, 30), (24, 28)), ((16, 16), (16, 16)), ((7, 9), (4, 8))])
def test_test_phase_mod_crops_whole_images(tmp_path, size, want):
    root = write(tmp_path, [(size[0] // 4 * 4 + 4, size[1] // 4 * 4 + 4)], lq=False)
    for sub in ("GT", "Noisy"):  # re-write at the odd size
        p = os.path.join(root, sub, "0000.png")
        imwrite(p, imread(p)[: size[0], : size[1]])
    ds = build_dataset({"name": "InvDNDataset", "opt": {"phase": "test", "scale": 4, "val_dir": root}})
    s = ds[0]
    assert set(s) == {"noisy", "gt", "noisy_path", "gt_path"}
    assert s["gt"].shape == (3, *want) and torch.allclose(s["noisy"], 1 - s["gt"], atol=1e-6)


def test_errors(tmp_path):
    root = write(tmp_path / "ok", [(16, 16)])
    for opt, match in [({"phase": "train", "scale": 4, "train_dir": root}, "opt.crop_size"),
                       ({"phase": "test", "scale": 4}, "opt.val_dir"),
                       ({"phase": "train", "scale": 4, "crop_size": 10, "train_dir": root}, "multiple of opt.scale"),
                       ({"phase": "train", "scale": 0, "crop_size": 8, "train_dir": root}, "scale")]:
        with pytest.raises(ConfigError, match=match):
            build_dataset({"name": "InvDNDataset", "opt": opt})
    with pytest.raises(DatasetError, match="dataset folder not found"):
        build_dataset(train_cfg(str(tmp_path / "missing")))
    no_lq = write(tmp_path / "nolq", [(16, 16)], lq=False)
    with pytest.raises(DatasetError, match="InvDN LQ folder not found"):
        build_dataset(train_cfg(no_lq))
    build_dataset({"name": "InvDNDataset", "opt": {"phase": "test", "scale": 4, "val_dir": no_lq}})  # LQ not needed
    uneven = write(tmp_path / "uneven", [(16, 16), (16, 16)])
    os.remove(os.path.join(uneven, "Noisy", "0001.png"))
    with pytest.raises(DatasetError, match="different numbers of images"):
        build_dataset(train_cfg(uneven))
    with pytest.raises(DatasetError, match="crop_size 32 is larger"):
        build_dataset(train_cfg(root, crop=32))[0]
    imwrite(os.path.join(root, "LQ", "0000.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DatasetError, match="is not GT"):
        build_dataset(train_cfg(root))[0]

"""RestorationPhotoDataset (denoising / deblurring demo data from scikit-image photos): kernels,
degradations, determinism, train/test split by photo, config errors."""
import os

import numpy as np
import pytest

from ppgan.datasets import RestorationPhotoDataset, build_dataset
from ppgan.datasets.embedded_photos import TEST_PHOTOS
from ppgan.datasets.restoration_demo import blur, gaussian_kernel, motion_kernel, to_uint8
from ppgan.utils.config import load_config
from ppgan.utils.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PHOTOS = ["astronaut", "chelsea"]


def u8(t):
    return np.round(t.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)


@pytest.mark.parametrize("size,angle", [(1, 0), (5, 0), (7, 45), (9, 90), (10, 133)])
def test_motion_kernel_is_a_normalised_centred_line(size, angle):
    k = motion_kernel(size, angle)
    assert k.shape == (2 * int(np.ceil(size / 2)) + 1,) * 2
    assert k.min() >= 0 and abs(k.sum() - 1) < 1e-5
    np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-6)  # a line through the centre: point symmetric
    ys, xs = np.mgrid[:k.shape[0], :k.shape[1]] - k.shape[0] // 2
    assert abs((k * xs).sum()) < 1e-4 and abs((k * ys).sum()) < 1e-4
    if angle == 0 and size > 1:  # horizontal: all the mass on the middle row, spread over `size` px
        assert k[k.shape[0] // 2].sum() > 0.99 and (k[k.shape[0] // 2] > 0.1).sum() == size


@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.5])
def test_gaussian_kernel(sigma):
    k = gaussian_kernel(sigma)
    assert abs(k.sum() - 1) < 1e-5 and k.shape == (2 * int(np.ceil(3 * sigma)) + 1,) * 2
    ys, xs = np.mgrid[:k.shape[0], :k.shape[1]] - k.shape[0] // 2
    assert abs((k * xs ** 2).sum() - sigma ** 2) < 0.05 * sigma ** 2


@pytest.mark.parametrize("task,size", [("denoise", 32), ("deblur", 48), ("denoise", 64)])
def test_train_samples_shape_range_determinism(task, size):
    ds = RestorationPhotoDataset(task=task, split="train", patch_size=size, num_samples=10, photos=PHOTOS)
    a, b, c = ds[(3, 7)], ds[(3, 7)], ds[(3, 8)]
    for s in (a, c):
        assert s["lq"].shape == s["gt"].shape == (3, size, size)
        assert 0 <= float(s["lq"].min()) and float(s["lq"].max()) <= 1
        assert s["lq_path"].startswith("skimage:") and "kernel" not in s
    assert (a["lq"] == b["lq"]).all() and (a["gt"] == b["gt"]).all()
    assert not (a["lq"] == c["lq"]).all()
    assert not np.array_equal(u8(a["lq"]), u8(a["gt"]))


@pytest.mark.parametrize("sigma", [5, 15, 25])
def test_denoise_noise_level(sigma):
    ds = RestorationPhotoDataset(task="denoise", split="test", noise_sigma=sigma, test_size=64, per_photo=4)
    diffs = []
    for i in range(len(ds)):
        s = ds[i]
        gt, lq = s["gt"].numpy() * 255, s["lq"].numpy() * 255
        mid = (gt > 3 * sigma) & (gt < 255 - 3 * sigma)  # away from clipping
        diffs.append((lq - gt)[mid])
    d = np.concatenate(diffs)
    assert d.size > 1000 and abs(d.mean()) < 1.0 and abs(d.std() - sigma) < 0.05 * sigma


@pytest.mark.parametrize("kind,extra", [("motion", {"blur_size": 7}), ("motion", {"blur_size": [3, 11]}),
                                        ("gaussian", {"blur_sigma": 1.5})])
def test_deblur_test_pairs_are_the_blur_of_gt(kind, extra):
    ds = RestorationPhotoDataset(task="deblur", split="test", blur=kind, test_size=48, per_photo=2, **extra)
    for i in range(len(ds)):
        s = ds[i]
        k = s["kernel"]
        gt = u8(s["gt"])
        np.testing.assert_array_equal(u8(s["lq"]), to_uint8(blur(gt, k)))
        if kind == "motion":  # the test split uses the largest blur
            size = extra["blur_size"] if np.isscalar(extra["blur_size"]) else max(extra["blur_size"])
            assert k.shape == motion_kernel(size, 0).shape


def test_test_split_is_held_out_and_fixed():
    a = RestorationPhotoDataset(task="denoise", split="test")
    b = RestorationPhotoDataset(task="denoise", split="test")
    assert len(a) == len(TEST_PHOTOS)
    train = RestorationPhotoDataset(task="denoise", split="train")
    assert not set(a.photos) & set(train.photos)
    for i in range(len(a)):
        sa, sb = a[(i, 1)], b[(i, 2)]  # the seed does not matter for test samples
        assert (sa["lq"] == sb["lq"]).all() and sa["lq_path"] == sb["lq_path"]
        assert sa["gt"].shape[1] % 8 == 0 and sa["gt"].shape[2] % 8 == 0


@pytest.mark.parametrize("name", ["nafnet_denoise_demo.yaml", "mprnet_deblur_demo.yaml"])
def test_demo_configs_build_their_datasets(name):
    cfg = load_config(os.path.join(ROOT, "configs", name))
    train = build_dataset(dict(cfg["dataset"]["train"], num_samples=2))
    test = build_dataset(cfg["dataset"]["test"])
    assert train[(0, 0)]["lq"].shape[1:] == (train.patch_size,) * 2 and len(test) == 2


@pytest.mark.parametrize("kwargs,match", [
    ({"task": "derain"}, "task"),
    ({"split": "val"}, "split"),
    ({"blur": "box"}, "blur"),
    ({"noise_sigma": -1}, "noise_sigma"),
    ({"task": "denoise", "noise_sigma": 0}, "noise_sigma"),
    ({"task": "deblur", "blur_size": [9, 5]}, "blur_size"),
    ({"task": "deblur", "blur_size": "big"}, "blur_size"),
    ({"task": "deblur", "blur_sigma": [1, 2, 3]}, "blur_sigma"),
    ({"patch_size": 4}, "patch_size"),
    ({"patch_size": 4096}, "smaller than patch_size"),
    ({"split": "test", "test_size": 4096}, "test_size"),
    ({"num_samples": 0}, "num_samples"),
])
def test_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        build_dataset(dict({"name": "RestorationPhotoDataset", "photos": PHOTOS if kwargs.get("split") != "test"
                            else None}, **kwargs))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shuffle_channels_permutes_the_crop(seed):
    plain = RestorationPhotoDataset(task="denoise", split="train", photos=PHOTOS, num_samples=4)
    shuf = RestorationPhotoDataset(task="denoise", split="train", photos=PHOTOS, num_samples=4, shuffle_channels=True)
    a, b = plain[(1, seed)]["gt"], shuf[(1, seed)]["gt"]
    # same crop, channels in some order (the permutation is drawn after the crop's draws)
    assert sorted(float(c.sum()) for c in a) == pytest.approx(sorted(float(c.sum()) for c in b))

"""NAFNetTrain / NAFNetVal on a tiny SIDD-style folder (rgb_dir/input, rgb_dir/target): sample
keys and ranges, the same augmentation and crop on both images, reproducibility, padding,
centre crops, the errors a user can cause, and one NAFNetModel step from the data loader."""
import math
import os

import cv2
import numpy as np
import pytest
import torch

from ppgan.datasets import build_dataloader, build_dataset
from ppgan.models import build_model
from ppgan.solver import build_optimizer
from ppgan.utils.errors import ConfigError, DatasetError


def write_rgb(path, img):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(img[..., ::-1]))


def make_sidd(root, sizes=((20, 24), (17, 30)), same=False, seed=0):
    """Target images with distinct pixels; inputs = noisy targets (or the targets when `same`)."""
    rng = np.random.default_rng(seed)
    for i, (h, w) in enumerate(sizes):
        tar = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        inp = tar if same else np.clip(tar + rng.normal(0, 20, tar.shape), 0, 255).astype(np.uint8)
        write_rgb(root / "target" / f"{i:02d}.png", tar)
        write_rgb(root / "input" / f"{i:02d}.png", inp)
    return str(root)


def dihedral(img):
    """The 8 flips / rotations of HxWxC."""
    out = []
    for k in range(4):
        r = np.rot90(img, k)
        out += [r, r[:, ::-1]]
    return out


def find_crop(patch, img):
    """Whether `patch` is a crop of one of the flips / rotations of `img`."""
    ps = patch.shape[0]
    for cand in dihedral(img):
        h, w = cand.shape[:2]
        for top in range(h - ps + 1):
            for left in range(w - ps + 1):
                if np.array_equal(cand[top:top + ps, left:left + ps], patch):
                    return True
    return False


def as_uint8(t):
    return np.round(t.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)


@pytest.mark.parametrize("ps", [8, 16])
def test_train_samples_share_augmentation_and_crop(tmp_path, ps):
    root = make_sidd(tmp_path, same=True)
    ds = build_dataset({"name": "NAFNetTrain", "rgb_dir": root, "img_options": {"patch_size": ps}})
    assert len(ds) == 2
    tar0 = cv2.imread(os.path.join(root, "target", "00.png"))[..., ::-1]
    plain = 0
    for seed in range(12):
        s = ds[(0, seed)]
        assert set(s) == {"gt", "lq", "gt_path", "lq_path"}
        assert s["gt"].shape == s["lq"].shape == (3, ps, ps) and s["gt"].dtype == torch.float32
        assert 0 <= s["gt"].min() and s["gt"].max() <= 1
        torch.testing.assert_close(s["lq"], s["gt"], rtol=0, atol=0)  # one draw for both images
        if find_crop(as_uint8(s["gt"]), tar0):
            plain += 1  # no saturation change this time: an exact flipped / rotated crop
        for k in ("gt", "lq"):
            torch.testing.assert_close(ds[(0, seed)][k], s[k], rtol=0, atol=0)  # reproducible
    assert 4 <= plain < 12  # saturation is changed with probability 1/3
    assert s["gt_path"].endswith(os.path.join("target", "00.png"))
    assert s["lq_path"].endswith(os.path.join("input", "00.png"))


def test_train_pads_images_smaller_than_the_patch(tmp_path):
    root = make_sidd(tmp_path, sizes=((5, 9), (12, 3)))
    ds = build_dataset({"name": "NAFNetTrain", "rgb_dir": root, "img_options": {"patch_size": 10}})
    for i in range(2):
        for seed in range(3):
            s = ds[(i, seed)]
            assert s["gt"].shape == s["lq"].shape == (3, 10, 10)


@pytest.mark.parametrize("ps", [None, 11, 16])
def test_val_centre_crop(tmp_path, ps):
    root = make_sidd(tmp_path)
    ds = build_dataset({"name": "NAFNetVal", "rgb_dir": root, "img_options": {"patch_size": ps}})
    s = ds[1]
    tar = cv2.imread(os.path.join(root, "target", "01.png"))[..., ::-1]  # 17 x 30
    if ps is None:
        want = tar
    else:
        top, left = int(round((17 - ps) / 2)), int(round((30 - ps) / 2))
        want = tar[top:top + ps, left:left + ps]
    assert np.array_equal(as_uint8(s["gt"]), want)
    assert s["lq"].shape == s["gt"].shape


def _bad(tmp_path, kind):
    root = make_sidd(tmp_path / "d")
    cfg = {"name": "NAFNetTrain", "rgb_dir": root, "img_options": {"patch_size": 8}}
    if kind == "missing_root":
        cfg["rgb_dir"] = str(tmp_path / "nope")
    elif kind == "missing_input":
        for f in os.listdir(os.path.join(root, "input")):
            os.remove(os.path.join(root, "input", f))
        os.rmdir(os.path.join(root, "input"))
    elif kind == "empty_target":
        for f in os.listdir(os.path.join(root, "target")):
            os.remove(os.path.join(root, "target", f))
    elif kind == "counts":
        os.remove(os.path.join(root, "input", "01.png"))
    elif kind == "sizes":
        write_rgb(os.path.join(root, "input", "00.png"), np.zeros((20, 23, 3), np.uint8))
    elif kind == "corrupt":
        with open(os.path.join(root, "target", "00.png"), "wb") as f:
            f.write(b"not a png")
    elif kind == "no_patch":
        cfg["img_options"] = None
    elif kind == "zero_patch":
        cfg["img_options"] = {"patch_size": 0}
    elif kind == "text_patch":
        cfg["img_options"] = {"patch_size": "256"}
    elif kind == "val_too_small":
        cfg = {"name": "NAFNetVal", "rgb_dir": root, "img_options": {"patch_size": 21}}
    return cfg


@pytest.mark.parametrize("kind,error,match", [
    ("missing_root", DatasetError, "dataset folder not found: .*nope"),
    ("missing_input", DatasetError, "dataset folder not found: .*input"),
    ("empty_target", DatasetError, "no images .* found in dataset folder .*target"),
    ("counts", DatasetError, "input/ has 1 images but target/ has 2"),
    ("sizes", DatasetError, "input .*00.png is 23x20 but its target .*00.png is 24x20"),
    ("corrupt", DatasetError, "cannot read image .*00.png"),
    ("no_patch", ConfigError, "NAFNetTrain needs img_options.patch_size"),
    ("zero_patch", ConfigError, "patch_size must be a positive integer"),
    ("text_patch", ConfigError, "patch_size must be a positive integer"),
    ("val_too_small", DatasetError, "00.png is 24x20, smaller than the 21x21 validation crop"),
])
def test_user_errors_are_one_line_and_name_the_file(tmp_path, kind, error, match):
    with pytest.raises(error, match=match) as info:
        ds = build_dataset(_bad(tmp_path, kind))
        ds[(0, 0)]
    assert "\n" not in str(info.value)


def test_one_training_step_from_the_loader(tmp_path):
    root = make_sidd(tmp_path, sizes=((20, 24), (17, 30), (16, 16), (24, 18)))
    _, loader, _ = build_dataloader({"name": "NAFNetTrain", "rgb_dir": root, "img_options": {"patch_size": 16},
                                     "batch_size": 2, "num_workers": 0}, is_train=True, seed=3)
    batch = next(iter(loader))
    torch.manual_seed(0)
    model = build_model({"name": "NAFNetModel", "psnr_criterion": {"name": "PSNRLoss"},
                         "generator": {"name": "NAFNet", "width": 4, "enc_blk_nums": [1, 1], "middle_blk_num": 1,
                                       "dec_blk_nums": [1, 1]}})
    net = model.nets["generator"]
    opt = build_optimizer({"name": "AdamW", "beta1": 0.9, "beta2": 0.9, "epsilon": 1e-8, "weight_decay": 0.0},
                          list(net.parameters()), 1e-3)
    opt.ppgan_net_names = ("generator",)
    before = {k: p.detach().clone() for k, p in net.named_parameters()}
    model.setup_input(batch)
    losses = model.train_iter({"optim": opt})
    assert set(losses) == {"loss"} and math.isfinite(losses["loss"])
    mse = ((model.output - batch["gt"]) ** 2).mean((1, 2, 3))  # minus the PSNR of the pre-step output
    torch.testing.assert_close(losses["loss"], (10 / math.log(10)) * torch.log(mse + 1e-8).mean())
    assert any(not torch.equal(before[k], p) for k, p in net.named_parameters())


def test_trainer_runs_the_paddlegan_config_on_tiny_data(tmp_path):
    """configs/nafnet_denoising.yaml with a tiny net and tiny folders: 2 iterations, a snapshot,
    validation with the config's PSNR / SSIM (Y channel)."""
    from ppgan.engine import Trainer
    from ppgan.utils.config import load_config

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cfg = load_config(os.path.join(root, "configs", "nafnet_denoising.yaml"))
    cfg["model"]["generator"].update(width=4, enc_blk_nums=[1, 1], middle_blk_num=1, dec_blk_nums=[1, 1])
    cfg["dataset"]["train"].update(rgb_dir=make_sidd(tmp_path / "train", sizes=((20, 24), (17, 30))),
                                   batch_size=2, img_options={"patch_size": 16})
    cfg["dataset"]["test"].update(rgb_dir=make_sidd(tmp_path / "val", sizes=((24, 25),), seed=1),
                                  img_options={"patch_size": 20})
    cfg.update(total_iters=2, output_dir=str(tmp_path))
    cfg["lr_scheduler"]["periods"] = [2]
    cfg["validate"]["interval"] = 2
    cfg["snapshot_config"]["interval"] = 2
    cfg["log_config"].update(interval=1, visiual_interval=1)
    tr = Trainer(cfg, device="cpu", run_dir=str(tmp_path / "run"), quiet=True)
    tr.train()
    assert os.path.isfile(tmp_path / "run" / "iter_2_weight.pth")
    results = tr.validate()
    assert set(results) == {"psnr", "ssim"} and all(math.isfinite(v) for v in results.values())

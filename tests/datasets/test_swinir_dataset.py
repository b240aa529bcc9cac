"""SwinIRDataset on tiny clean-image folders: training crops + KAIR's 8 flips / rotations + noise
of the configured sigma, reproducibility, the seeded test noise (PaddleGAN's seed 0), gray
images, several folders, the errors a user can cause, and one SwinIRModel step from the loader."""
import math
import os

import cv2
import numpy as np
import pytest
import torch

from ppgan.datasets import build_dataloader, build_dataset
from ppgan.datasets.swinir_dataset import augment_img
from ppgan.models import build_model
from ppgan.solver import build_optimizer
from ppgan.utils.errors import ConfigError, DatasetError


def make_clean(root, sizes=((20, 24), (17, 30)), seed=0, gray=False):
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    for i, (h, w) in enumerate(sizes):
        img = rng.integers(0, 256, (h, w) if gray else (h, w, 3), dtype=np.uint8)
        assert cv2.imwrite(os.path.join(root, f"{i:02d}.png"), img if gray else img[..., ::-1])
    return str(root)


def opt(root, phase="train", **kw):
    o = {"phase": phase, "n_channels": 3, "H_size": 8, "sigma": 15, "sigma_test": 15, "dataroot_H": root}
    o.update(kw)
    return {"name": "SwinIRDataset", "opt": o}


def test_augment_img_gives_the_8_flips_and_rotations():
    img = np.arange(2 * 3 * 1).reshape(2, 3, 1)
    outs = [augment_img(img, m) for m in range(8)]
    assert len({o.tobytes() + bytes(o.shape) for o in outs}) == 8
    assert np.array_equal(outs[0], img) and np.array_equal(outs[2], img[::-1])
    assert np.array_equal(outs[5], np.rot90(img)) and np.array_equal(outs[6], img[::-1, ::-1])


@pytest.mark.parametrize("sigma", [15, 50])
def test_train_crop_augment_and_noise(tmp_path, sigma):
    root = make_clean(tmp_path / "H")
    ds = build_dataset(opt(root, sigma=sigma))
    img = cv2.imread(os.path.join(root, "00.png"))[..., ::-1]
    candidates = [augment_img(img, m) for m in range(8)]
    noise = []
    for seed in range(6):
        s = ds[(0, seed)]
        assert set(s) == {"gt", "lq", "gt_path", "lq_path"} and s["gt_path"] == s["lq_path"]
        assert s["gt"].shape == s["lq"].shape == (3, 8, 8) and s["lq"].dtype == torch.float32
        patch = np.round(s["gt"].numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
        assert any(any(np.array_equal(c[t:t + 8, l:l + 8], patch) for t in range(c.shape[0] - 7)
                       for l in range(c.shape[1] - 7)) for c in candidates)
        noise.append((s["lq"] - s["gt"]).flatten())
        torch.testing.assert_close(ds[(0, seed)]["lq"], s["lq"], rtol=0, atol=0)  # reproducible
    noise = torch.cat(noise)
    assert abs(noise.std().item() * 255 / sigma - 1) < 0.15 and abs(noise.mean().item()) < 0.3 * sigma / 255
    assert not torch.equal(ds[(0, 0)]["lq"], ds[(0, 1)]["lq"])


def test_test_phase_whole_image_with_paddlegans_seeded_noise(tmp_path):
    root = make_clean(tmp_path / "H")
    ds = build_dataset(opt(root, phase="test", sigma_test=25))
    s = ds[1]
    img = cv2.imread(os.path.join(root, "01.png"))[..., ::-1]
    want_gt = np.float32(img / 255.0)
    want_lq = want_gt.copy()
    want_lq += np.random.RandomState(0).normal(0, 25 / 255.0, want_lq.shape)
    assert s["gt"].shape == (3, 17, 30)
    np.testing.assert_array_equal(s["gt"].numpy().transpose(1, 2, 0), want_gt)
    np.testing.assert_array_equal(s["lq"].numpy().transpose(1, 2, 0), want_lq)
    torch.testing.assert_close(ds[(1, 7)]["lq"], s["lq"], rtol=0, atol=0)  # the same whatever the seed


def test_gray_and_several_folders(tmp_path):
    a = make_clean(tmp_path / "a", sizes=((10, 12),), gray=True)
    b = make_clean(tmp_path / "b", sizes=((9, 9), (12, 8)), seed=1)
    ds = build_dataset(opt([a, b], n_channels=1))
    assert len(ds) == 3 and ds.paths_H[0].startswith(a)
    for i in range(3):
        assert ds[(i, 0)]["gt"].shape == (1, 8, 8)


@pytest.mark.parametrize("change,error,match", [
    ({"opt": None}, ConfigError, "SwinIRDataset needs opt"),
    ({"phase": None}, ConfigError, "needs opt.phase"),
    ({"dataroot_H": None}, ConfigError, "needs opt.dataroot_H"),
    ({"n_channels": 2}, ConfigError, "n_channels must be 1 or 3"),
    ({"H_size": -4}, ConfigError, "H_size must be a positive integer"),
    ({"sigma": "15"}, ConfigError, "sigma must be a number"),
    ({"dataroot_H": "missing"}, DatasetError, "dataset folder not found: .*missing"),
    ({"dataroot_H": "empty"}, DatasetError, "no images .* found in dataset folder .*empty"),
    ({"H_size": 18}, DatasetError, "01.png is 30x17, smaller than the 18x18 training crop"),
    ({"corrupt": True}, DatasetError, "cannot read image .*00.png"),
])
def test_user_errors_are_one_line(tmp_path, change, error, match):
    root = make_clean(tmp_path / "H")
    cfg = opt(root)
    if "opt" in change:
        cfg["opt"] = None
    elif change.get("dataroot_H") == "missing":
        cfg["opt"]["dataroot_H"] = str(tmp_path / "missing")
    elif change.get("dataroot_H") == "empty":
        os.makedirs(tmp_path / "empty")
        cfg["opt"]["dataroot_H"] = str(tmp_path / "empty")
    elif change.get("corrupt"):
        with open(os.path.join(root, "00.png"), "wb") as f:
            f.write(b"\x89PNG broken")
    else:
        cfg["opt"].update(change)
    with pytest.raises(error, match=match) as info:
        ds = build_dataset(cfg)
        for i in range(len(ds)):
            ds[(i, 0)]
    assert "\n" not in str(info.value)


def test_one_training_step_from_the_loader(tmp_path):
    root = make_clean(tmp_path / "H", sizes=((20, 24), (17, 30), (16, 16)))
    _, loader, _ = build_dataloader(dict(opt(root), batch_size=2, num_workers=0), is_train=True, seed=1)
    batch = next(iter(loader))
    torch.manual_seed(0)
    model = build_model({"name": "SwinIRModel",
                         "char_criterion": {"name": "CharbonnierLoss", "eps": 1e-9, "reduction": "mean"},
                         "generator": {"name": "SwinIR", "upscale": 1, "img_size": 8, "window_size": 4,
                                       "depths": [2], "embed_dim": 8, "num_heads": [2], "mlp_ratio": 2}})
    net = model.nets["generator"]
    opt_ = build_optimizer({"name": "Adam", "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
                           list(net.parameters()), 2e-4)
    opt_.ppgan_net_names = ("generator",)
    before = {k: p.detach().clone() for k, p in net.named_parameters()}
    model.setup_input(batch)
    losses = model.train_iter({"optim": opt_})
    assert set(losses) == {"loss"} and math.isfinite(losses["loss"])
    assert all(not torch.equal(before[k], p) for k, p in net.named_parameters())


def test_trainer_runs_the_paddlegan_config_on_tiny_data(tmp_path):
    """configs/swinir_denoising.yaml with a tiny net and tiny folders: 2 iterations, a snapshot,
    validation on whole odd-sized test images (padded to the window) with PSNR / SSIM."""
    from ppgan.engine import Trainer
    from ppgan.utils.config import load_config

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cfg = load_config(os.path.join(root, "configs", "swinir_denoising.yaml"))
    cfg["model"]["generator"].update(img_size=8, window_size=4, depths=[2], embed_dim=8, num_heads=[2])
    cfg["dataset"]["train"]["opt"].update(dataroot_H=make_clean(tmp_path / "trainH"), H_size=8)
    cfg["dataset"]["test"]["opt"].update(dataroot_H=make_clean(tmp_path / "CBSD68", sizes=((21, 22),), seed=2))
    cfg.update(total_iters=2, output_dir=str(tmp_path))
    cfg["validate"].update(interval=2, save_img=False)
    cfg["snapshot_config"]["interval"] = 2
    cfg["log_config"].update(interval=1, visiual_interval=1)
    tr = Trainer(cfg, device="cpu", run_dir=str(tmp_path / "run"), quiet=True)
    tr.train()
    assert os.path.isfile(tmp_path / "run" / "iter_2_weight.pth")
    results = tr.validate()
    assert set(results) == {"psnr", "ssim"} and all(math.isfinite(v) for v in results.values())

"""InvDNModel: PaddleGAN's invdn_denoising config (copied unchanged) loads, builds the full-size net
and runs one training iteration through the trainer on tiny synthetic data in the InvDNDataset
layout (gradient clipping from the optimizer's `clip_grad_norm`); PaddleGAN's loss rule;
evaluation with a fresh latent on odd sizes."""
import copy
import math
import os

import cv2
import numpy as np
import pytest
import torch

from ppgan.datasets import build_dataset
from ppgan.engine import Trainer
from ppgan.metrics import build_metric
from ppgan.models import build_model
from ppgan.utils.config import load_config
from ppgan.utils.errors import DatasetError, PPGANError
from ppgan.utils.image import imwrite

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TINY = {"block_num": [1, 1]}


def write_invdn(root, n=2, size=(16, 24), scale=4, lq=True, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        gt = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        noisy = np.clip(gt.astype(int) + rng.integers(-30, 31, gt.shape), 0, 255).astype(np.uint8)
        imwrite(os.path.join(root, "GT", f"{i:03d}.png"), gt)
        imwrite(os.path.join(root, "Noisy", f"{i:03d}.png"), noisy)
        if lq:
            small = cv2.resize(gt, (size[1] // scale, size[0] // scale), interpolation=cv2.INTER_AREA)
            imwrite(os.path.join(root, "LQ", f"{i:03d}.png"), small)
    return str(root) + "/"


def tiny_cfg(tmp_path):
    cfg = load_config(os.path.join(ROOT, "configs", "invdn_denoising.yaml"))
    cfg["model"]["generator"].update(TINY)
    train, test = cfg["dataset"]["train"], cfg["dataset"]["test"]
    train["opt"]["train_dir"] = write_invdn(tmp_path / "train")
    train["opt"]["crop_size"] = 8
    test["opt"]["val_dir"] = write_invdn(tmp_path / "val", size=(25, 30), lq=False, seed=1)
    train["batch_size"] = 2
    cfg["total_iters"] = 1
    return cfg


def test_paddlegan_config_loads_and_builds():
    cfg = load_config(os.path.join(ROOT, "configs", "invdn_denoising.yaml"))
    model = build_model(copy.deepcopy(cfg["model"]))
    net = model.nets["generator"]
    assert type(net).__name__ == "InvDN" and len(net.operations) == 18 and net.noise_channels == 45
    assert sum(p.numel() for p in net.parameters()) == 2640960
    assert cfg["optimizer"]["clip_grad_norm"] == 10
    for split in ("train", "test"):
        with pytest.raises(DatasetError, match="dataset folder not found: data/"):
            build_dataset(cfg["dataset"][split])


def test_one_training_iteration_through_the_trainer(tmp_path):
    cfg = tiny_cfg(tmp_path)
    tr = Trainer(cfg, device="cpu", run_dir=str(tmp_path / "run"), quiet=True)
    assert tr.optimizers["optim"].ppgan_clip == ("norm", 10)
    net = tr.model.nets["generator"]
    before = {k: p.detach().clone() for k, p in net.named_parameters()}
    haar = {k: b.clone() for k, b in net.named_buffers()}
    batch = next(iter(tr.train_loader))
    assert batch["noisy"].shape == batch["gt"].shape == (2, 3, 8, 8) and batch["lq"].shape == (2, 3, 2, 2)
    losses = tr.train_step(batch)
    assert set(losses) == {"loss_forw_fit", "loss_back_rec", "loss"}
    assert all(math.isfinite(float(v)) for v in losses.values())
    moved = {k for k, p in net.named_parameters() if not torch.equal(before[k], p.detach())}
    assert moved == set(before)
    assert all(torch.equal(haar[k], b) for k, b in net.named_buffers())  # the Haar filters stay fixed
    results = tr.validate()
    assert set(results) == {"psnr", "ssim"} and all(math.isfinite(v) for v in results.values())


def test_loss_rule_matches_paddlegan():
    torch.manual_seed(0)
    model = build_model({"name": "InvDNModel", "generator": {"name": "InvDN", **TINY}})
    net = model.nets["generator"]
    g = torch.Generator().manual_seed(2)
    noisy, gt = torch.rand(2, 3, 8, 12, generator=g), torch.rand(2, 3, 8, 12, generator=g)
    lq = torch.rand(2, 3, 2, 3, generator=g)
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    opt.ppgan_net_names = ("generator",)
    model.setup_input((noisy, gt, lq))  # PaddleGAN's tuple order
    torch.manual_seed(5)
    losses = model.train_iter({"optim": opt})
    torch.manual_seed(5)
    with torch.no_grad():
        hq, lat = net(noisy)  # the same latent sample
    forw = 16.0 * ((lat[:, :3] - lq) ** 2).sum(dim=(1, 2, 3)).mean()
    back = torch.sqrt((gt - hq[:, :3]) ** 2 + 1e-3).sum(dim=(1, 2, 3)).mean()
    assert float(losses["loss_forw_fit"]) == pytest.approx(float(forw), rel=1e-5)
    assert float(losses["loss_back_rec"]) == pytest.approx(float(back), rel=1e-5)
    assert float(losses["loss"]) == pytest.approx(float(forw + back), rel=1e-5)


@pytest.mark.parametrize("hw", [(13, 19), (8, 8), (5, 30)])
def test_evaluation_pads_any_size_with_a_fresh_latent(hw):
    model = build_model({"name": "InvDNModel", "generator": {"name": "InvDN", **TINY}})
    gt = torch.rand(1, 3, *hw, generator=torch.Generator().manual_seed(hw[1]))
    model.setup_input({"noisy": gt.clone(), "gt": gt, "noisy_path": ["x"]})
    metric = build_metric({"name": "PSNR", "crop_border": 0})
    model.test_iter({"psnr": metric})
    first = model.output
    model.test_iter(None)
    assert first.shape == gt.shape and not torch.equal(first, model.output)
    assert set(model.visual_items) == {"noisy", "output", "gt"}
    assert math.isfinite(float(metric.accumulate()))


@pytest.mark.parametrize("missing", ["gt", "lq"])
def test_training_needs_gt_and_lq(missing):
    model = build_model({"name": "InvDNModel", "generator": {"name": "InvDN", **TINY}})
    batch = {"noisy": torch.rand(1, 3, 8, 8), "gt": torch.rand(1, 3, 8, 8), "lq": torch.rand(1, 3, 2, 2)}
    del batch[missing]
    model.setup_input(batch)
    opt = torch.optim.SGD(model.nets["generator"].parameters(), lr=0.0)
    opt.ppgan_net_names = ("generator",)
    with pytest.raises(PPGANError, match=f"'{missing}'"):
        model.train_iter({"optim": opt})

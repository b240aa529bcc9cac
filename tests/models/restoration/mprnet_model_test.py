"""MPRModel: PaddleGAN's three MPRNet configs (copied unchanged) load, build the full-size nets and
run one training iteration through the trainer on tiny synthetic data in the MPRTrain layout;
the loss rule (Charbonnier summed as PaddleGAN's default + 0.05 * edge, over three stages);
evaluation on odd sizes."""
import copy
import math
import os

import numpy as np
import pytest
import torch

from ppgan.datasets import build_dataset
from ppgan.engine import Trainer
from ppgan.metrics import build_metric
from ppgan.models import build_model
from ppgan.models.criterions import build_criterion
from ppgan.utils.config import load_config
from ppgan.utils.errors import ConfigError, DatasetError
from ppgan.utils.image import imwrite

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CONFIGS = {"mprnet_deblurring": 96, "mprnet_denoising": 80, "mprnet_deraining": 40}
TINY = {"name": "MPRNet", "n_feat": 8, "scale_unetfeats": 4, "scale_orsnetfeats": 4, "num_cab": 1}


def write_pairs(root, n=3, size=(20, 28), seed=0):
    """`root/input` and `root/target` as MPRNet's datasets expect: degraded = clean + noise."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        clean = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        noisy = np.clip(clean.astype(int) + rng.integers(-40, 41, clean.shape), 0, 255).astype(np.uint8)
        imwrite(os.path.join(root, "target", f"{i:03d}.png"), clean)
        imwrite(os.path.join(root, "input", f"{i:03d}.png"), noisy)
    return str(root)


def tiny_cfg(name, tmp_path):
    cfg = load_config(os.path.join(ROOT, "configs", name + ".yaml"))
    cfg["model"]["generator"].update(TINY)
    for split, sub in (("train", "train"), ("test", "test")):
        d = cfg["dataset"][split]
        d["rgb_dir"] = write_pairs(tmp_path / "data" / sub, seed=len(sub))
        d["img_options"]["patch_size"] = 16 if split == "train" else 24  # SSIM needs 11x11 after crop_border 4
        d["num_workers"], d["batch_size"] = 0, 2 if split == "train" else 1
    cfg["total_iters"] = 1
    return cfg


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_paddlegan_config_loads_and_builds(name):
    cfg = load_config(os.path.join(ROOT, "configs", name + ".yaml"))
    model = build_model(copy.deepcopy(cfg["model"]))
    net = model.nets["generator"]
    assert type(net).__name__ == "MPRNet" and net.concat12.weight.shape[0] == CONFIGS[name]
    assert model.char_criterion.reduction == "sum" and model.edge_criterion.reduction == "sum"
    assert cfg["optimizer"]["net_names"] == ["generator"]
    for split in ("train", "test"):
        with pytest.raises(DatasetError, match="dataset folder not found: data/"):
            build_dataset(cfg["dataset"][split])


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_one_training_iteration_through_the_trainer(name, tmp_path):
    cfg = tiny_cfg(name, tmp_path)
    tr = Trainer(cfg, device="cpu", run_dir=str(tmp_path / "run"), quiet=True)
    net = tr.model.nets["generator"]
    before = {k: p.detach().clone() for k, p in net.named_parameters()}
    batch = next(iter(tr.train_loader))
    assert batch["lq"].shape == batch["gt"].shape == (2, 3, 16, 16)
    losses = tr.train_step(batch)
    assert set(losses) == {"loss_char", "loss_edge", "loss"}
    assert all(math.isfinite(float(v)) for v in losses.values())
    assert float(losses["loss"]) == pytest.approx(float(losses["loss_char"]) + 0.05 * float(losses["loss_edge"]),
                                                  rel=1e-5)
    moved = {k for k, p in net.named_parameters() if not torch.equal(before[k], p.detach())}
    # every conv outside the channel attentions (whose 2-channel ReLU bottleneck may be dead at
    # PaddleGAN's normal(0, 0.02) init) moves, the shared PReLU included
    assert {k for k in before if ".CA." not in k} <= moved
    assert len(moved) > 0.8 * len(before)
    results = tr.validate()
    assert set(results) == {"psnr", "ssim"} and all(math.isfinite(v) for v in results.values())


def test_loss_rule_matches_paddlegan():
    torch.manual_seed(0)
    model = build_model({"name": "MPRModel", "generator": dict(TINY), "char_criterion": {"name": "CharbonnierLoss"},
                         "edge_criterion": {"name": "EdgeLoss"}})
    net = model.nets["generator"]
    # PaddleGAN's init_weights: conv weights normal(0, 0.02)
    assert abs(float(net.tail.weight.detach().std()) - 0.02) < 0.005
    g = torch.Generator().manual_seed(1)
    lq, gt = torch.rand(2, 3, 8, 16, generator=g), torch.rand(2, 3, 8, 16, generator=g)
    with torch.no_grad():
        outs = net(lq)
    char = sum(torch.sqrt((o - gt) ** 2 + 1e-12).sum() for o in outs)
    edge_fn = build_criterion({"name": "EdgeLoss"})
    edge = sum(edge_fn(o, gt) for o in outs)
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    opt.ppgan_net_names = ("generator",)
    model.setup_input((gt, lq, ["a", "b"]))  # PaddleGAN's tuple order
    losses = model.train_iter({"optim": opt})
    assert float(losses["loss_char"]) == pytest.approx(float(char), rel=1e-5)
    assert float(losses["loss"]) == pytest.approx(float(char + 0.05 * edge), rel=1e-5)


def test_explicit_reduction_is_kept():
    model = build_model({"name": "MPRModel", "generator": dict(TINY),
                         "char_criterion": {"name": "CharbonnierLoss", "reduction": "mean", "eps": 1e-3},
                         "edge_criterion": {"name": "EdgeLoss", "reduction": "mean"}})
    assert model.char_criterion.reduction == "mean" and model.char_criterion.eps == 1e-3


@pytest.mark.parametrize("hw", [(13, 19), (8, 8), (30, 9)])
def test_evaluation_pads_any_size(hw):
    model = build_model({"name": "MPRModel", "generator": dict(TINY)})
    g = torch.Generator().manual_seed(hw[0])
    gt = torch.rand(1, 3, *hw, generator=g)
    model.setup_input({"lq": gt.clone(), "gt": gt, "lq_path": ["x"]})
    metric = build_metric({"name": "PSNR", "crop_border": 0})
    model.test_iter({"psnr": metric})
    assert model.output.shape == gt.shape
    assert set(model.visual_items) == {"lq", "output", "gt"}
    assert math.isfinite(float(metric.accumulate()))


def test_training_needs_the_criteria():
    model = build_model({"name": "MPRModel", "generator": dict(TINY), "char_criterion": {"name": "CharbonnierLoss"}})
    model.setup_input({"lq": torch.rand(1, 3, 8, 8), "gt": torch.rand(1, 3, 8, 8)})
    opt = torch.optim.SGD(model.nets["generator"].parameters(), lr=0.0)
    opt.ppgan_net_names = ("generator",)
    with pytest.raises(ConfigError, match="edge_criterion"):
        model.train_iter({"optim": opt})

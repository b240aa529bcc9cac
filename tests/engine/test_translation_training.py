"""The trainer driving pix2pix, CycleGAN and U-GAT-IT on tiny synthetic image folders: checkpoints,
evaluation images, and an exact CycleGAN resume (image pool included)."""
import copy
import glob
import os

import numpy as np
import pytest
import torch

from ppgan.engine import Trainer
from ppgan.engine import checkpoint as ckpt
from ppgan.utils.image import imwrite

SIZE = 32




def _write(folder, n, w=SIZE, seed=0):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        imwrite(os.path.join(folder, f"{i}.png"), rng.integers(0, 256, (SIZE, w, 3), dtype=np.uint8))
    return str(folder)


PIPELINE = [{"name": "Transpose", "keys": ["image", "image"]},
            {"name": "Normalize", "mean": [127.5] * 3, "std": [127.5] * 3, "keys": ["image", "image"]}]
TRAIN_PIPELINE = [{"name": "RandomHorizontalFlip", "prob": 0.5, "keys": ["image", "image"]}] + PIPELINE


def paired_data(root):
    steps = lambda pipe: [{"name": "LoadImageFromFile", "key": "pair"},  # noqa: E731
                          {"name": "SplitPairedImage", "key": "pair", "paired_keys": ["A", "B"]},
                          {"name": "Transforms", "input_keys": ["A", "B"], "pipeline": pipe}]
    return {"train": {"name": "PairedDataset", "dataroot": _write(root / "train", 4, w=2 * SIZE), "batch_size": 2,
                      "num_workers": 0, "preprocess": steps(TRAIN_PIPELINE)},
            "test": {"name": "PairedDataset", "dataroot": _write(root / "test", 2, w=2 * SIZE, seed=1),
                     "batch_size": 1, "num_workers": 0, "preprocess": steps(PIPELINE)}}


def unpaired_data(root):
    def split(phase, is_train, n, pipe):
        return {"name": "UnpairedDataset", "dataroot_a": _write(root / f"{phase}A", n, seed=2),
                "dataroot_b": _write(root / f"{phase}B", n + 1, seed=3), "max_size": "inf", "is_train": is_train,
                "batch_size": 2 if is_train else 1, "num_workers": 0,
                "preprocess": [{"name": "LoadImageFromFile", "key": "A"}, {"name": "LoadImageFromFile", "key": "B"},
                               {"name": "Transforms", "input_keys": ["A", "B"], "pipeline": pipe}]}

    return {"train": split("train", True, 4, TRAIN_PIPELINE), "test": split("test", False, 1, PIPELINE)}


MODELS = {
    "pix2pix": ({"name": "Pix2PixModel",
                 "generator": {"name": "UnetGenerator", "norm_type": "batch", "input_nc": 3, "output_nc": 3,
                               "num_downs": 5, "ngf": 8},
                 "discriminator": {"name": "NLayerDiscriminator", "ndf": 8, "n_layers": 3, "input_nc": 6,
                                   "norm_type": "batch"},
                 "direction": "b2a", "pixel_criterion": {"name": "L1Loss", "loss_weight": 100},
                 "gan_criterion": {"name": "GANLoss", "gan_mode": "vanilla"}, "to_static": False},
                {"optimG": ["netG"], "optimD": ["netD"]}, paired_data, "fake_B"),
    "cyclegan": ({"name": "CycleGANModel",
                  "generator": {"name": "ResnetGenerator", "input_nc": 3, "output_nc": 3, "ngf": 8, "n_blocks": 1,
                                "norm_type": "instance"},
                  "discriminator": {"name": "NLayerDiscriminator", "ndf": 8, "n_layers": 2, "norm_type": "instance",
                                    "input_nc": 3},
                  "cycle_criterion": {"name": "L1Loss"}, "idt_criterion": {"name": "L1Loss", "loss_weight": 0.5},
                  "gan_criterion": {"name": "GANLoss", "gan_mode": "lsgan"}},
                 {"optimG": ["netG_A", "netG_B"], "optimD": ["netD_A", "netD_B"]}, unpaired_data, "fake_B"),
    "ugatit": ({"name": "UGATITModel",
                "generator": {"name": "ResnetUGATITGenerator", "input_nc": 3, "output_nc": 3, "ngf": 8, "n_blocks": 1,
                              "img_size": SIZE, "light": True},
                "discriminator_g": {"name": "UGATITDiscriminator", "input_nc": 3, "ndf": 8, "n_layers": 5},
                "discriminator_l": {"name": "UGATITDiscriminator", "input_nc": 3, "ndf": 8, "n_layers": 4},
                "l1_criterion": {"name": "L1Loss"}, "mse_criterion": {"name": "MSELoss"},
                "bce_criterion": {"name": "BCEWithLogitsLoss"}, "cycle_weight": 10.0, "cam_weight": 1000.0},
               {"optimG": ["genA2B", "genB2A"], "optimD": ["disGA", "disGB", "disLA", "disLB"]}, unpaired_data,
               "fake_A2B"),
}


def make_cfg(case, root, total_iters=2):
    model, groups, data, _ = MODELS[case]
    return {
        "total_iters": total_iters, "output_dir": str(root / "out"), "seed": 0,
        "model": copy.deepcopy(model), "dataset": data(root / "data"),
        "lr_scheduler": {"name": "LinearDecay", "learning_rate": 0.0002, "start_epoch": 1, "decay_epochs": 1,
                         "iters_per_epoch": 1},
        "optimizer": {name: {"name": "Adam", "net_names": nets, "beta1": 0.5} for name, nets in groups.items()},
        "log_config": {"interval": 1, "visiual_interval": 1},
        "snapshot_config": {"interval": 1},
    }


@pytest.mark.parametrize("case", sorted(MODELS))
def test_train_then_evaluate(case, tmp_path):
    cfg = make_cfg(case, tmp_path)
    tr = Trainer(cfg, device="cpu", run_dir=str(tmp_path / "train"), quiet=True)
    tr.train()
    run = tmp_path / "train"
    assert {os.path.basename(p) for p in glob.glob(str(run / "iter_*"))} == {
        f"iter_{i}_{kind}.pth" for i in (1, 2) for kind in ("checkpoint", "weight")}
    weights = ckpt.load(str(run / "iter_2_weight.pth"))
    assert set(weights) - {ckpt.META_KEY} == set(tr.model.nets)
    assert glob.glob(str(run / "visual" / f"iter_0000001_{MODELS[case][3]}.png"))

    ev = Trainer(cfg, device="cpu", load=str(run / "iter_2_weight.pth"), evaluate_only=True,
                 run_dir=str(tmp_path / "eval"), quiet=True)
    for name, net in tr.model.nets.items():
        trained, loaded = net.state_dict(), ev.model.nets[name].state_dict()
        assert all(torch.equal(trained[k], loaded[k]) for k in trained), name
    ev.evaluate()
    files = set(os.listdir(tmp_path / "eval" / "eval"))
    fake = MODELS[case][3]
    assert {f"00000_{fake}.png", f"samples_{fake}.png"} <= files


def test_cyclegan_resume_is_exact_with_the_image_pool(tmp_path):
    cfg = make_cfg("cyclegan", tmp_path, total_iters=4)
    cfg["model"]["pool_size"] = 1  # full after one step: the pool's random draws matter from then on
    cfg["snapshot_config"] = {"interval": 2}
    cfg["log_config"] = {"interval": 10, "visual_interval": 0}
    Trainer(cfg, device="cpu", run_dir=str(tmp_path / "a"), quiet=True).train()
    first = Trainer(dict(cfg, total_iters=2), device="cpu", run_dir=str(tmp_path / "b"), quiet=True)
    resumed = Trainer(cfg, device="cpu", resume=first.train(), quiet=True)
    assert resumed.iter == 2 and len(resumed.model.fake_A_pool) == 1
    resumed.train()
    a = ckpt.load(str(tmp_path / "a" / "iter_4_checkpoint.pth"))["nets"]
    b = ckpt.load(str(tmp_path / "b" / "iter_4_checkpoint.pth"))["nets"]
    assert set(a) == {"netG_A", "netG_B", "netD_A", "netD_B", "fake_A_pool", "fake_B_pool"}
    for net in a:
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs after resume"


@pytest.mark.parametrize("case", sorted(MODELS))
def test_evaluate_only_on_odd_sized_images(case, tmp_path):
    """Inference on images whose size is not a multiple of the net's stride: padded and cropped
    back, so every translated image has its input's size."""
    import cv2

    cfg = make_cfg(case, tmp_path)
    folder = tmp_path / "odd"
    os.makedirs(folder)
    rng = np.random.default_rng(5)
    imwrite(str(folder / "a.png"), rng.integers(0, 256, (37, 53, 3), dtype=np.uint8))
    cfg["dataset"]["test"] = {"name": "SingleDataset", "dataroot": str(folder), "batch_size": 1,
                              "key": "B" if cfg["model"].get("direction") == "b2a" else "A"}
    ev = Trainer(cfg, device="cpu", evaluate_only=True, run_dir=str(tmp_path / "ev"), quiet=True)
    ev.evaluate()
    fake = MODELS[case][3]
    out = cv2.imread(str(tmp_path / "ev" / "eval" / f"00000_{fake}.png"))
    assert out.shape[:2] == (2 + 37 + 2, 2 + 53 + 2)  # one image in the grid, padding 2

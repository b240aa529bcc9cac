"""Helpers for the BasicVSR++ / PP-MSVSR / IconVSR tests: PaddleGAN fixtures
(tests/fixtures/restoration/<name>.npz, made by running PaddleGAN's own code:
tests/fixtures/restoration/make_vsr_fixtures.py), tiny REDS / Vimeo-90K folders in PaddleGAN's
layouts, and one training step of a PaddleGAN config on them."""
import copy
import json
import math
import os

import numpy as np
import torch
from parity import rule_tensor, write_pdparams

from ppgan.datasets import build_dataloader
from ppgan.models import build_model
from ppgan.solver import build_optimizer
from ppgan.utils.config import load_config
from ppgan.utils.image import imwrite
from ppgan.weights import load_paddle_state_dict

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, os.pardir, os.pardir, os.pardir))
FIX = os.path.join(ROOT, "tests", "fixtures", "restoration")


class VSRFixture:
    """meta, manifest (PaddleGAN's state_dict names / shapes / dtypes, in order), inputs and
    PaddleGAN's outputs of one fixture."""

    def __init__(self, name):
        with open(os.path.join(FIX, name + "_manifest.json")) as f:
            self.manifest_file = json.load(f)
        self.kwargs = self.manifest_file["kwargs"]
        if not os.path.exists(os.path.join(FIX, name + ".npz")):  # names and shapes only
            return
        data = np.load(os.path.join(FIX, name + ".npz"), allow_pickle=False)
        self.meta = json.loads(str(data["meta_json"]))
        self.manifest = json.loads(str(data["manifest_json"]))
        self.inputs = [torch.from_numpy(data["in_" + n]) for n in self.meta["inputs"]]
        self.outputs = [data["out_" + n] for n in self.meta["outputs"]]
        # large outputs are stored at every `out_stride`-th row and column; shape_<name> is the full shape
        self.stride = int(self.meta.get("extra", {}).get("out_stride", 1))
        self.full_shapes = [tuple(data["shape_" + n]) if "shape_" + n in data.files else data["out_" + n].shape
                            for n in self.meta["outputs"]]
        assert [[n, s] for n, s, _ in self.manifest] == self.manifest_file["state_dict"]

    def shapes(self):
        return {n: list(s) for n, s in self.manifest_file["state_dict"]}

    def state(self):
        return {n: rule_tensor(n, s, d) for n, s, d in self.manifest}

    def load_into(self, model, tmp_path):
        """Rule weights -> a .pdparams file -> our converter -> strict load; returns the report."""
        path = write_pdparams(tmp_path / "weights.pdparams", self.state())
        return load_paddle_state_dict(model, path, strict=True)

    def assert_matches(self, results, crop=None):
        results = results if isinstance(results, (list, tuple)) else [results]
        assert len(results) == len(self.outputs)
        atol, rtol = 10 * self.meta["atol"], 10 * self.meta["rtol"]
        for got, want, full, name in zip(results, self.outputs, self.full_shapes, self.meta["outputs"]):
            got = got.detach().cpu().numpy()
            if crop is not None:
                full = tuple(full[:-2]) + (min(full[-2], crop[0]), min(full[-1], crop[1]))
            assert got.shape == full, f"{name}: shape {got.shape} != {full}"
            got = got[..., :: self.stride, :: self.stride]
            want = want[..., : got.shape[-2], : got.shape[-1]]
            err = np.abs(got - want)
            assert (err <= atol + rtol * np.abs(want)).all(), f"{name}: max abs err {err.max():.3g} (atol {atol:.3g})"


def shapes(module):
    return {k: list(v.shape) for k, v in module.state_dict().items()}


# ---- tiny datasets in PaddleGAN's layouts ----------------------------------------------------------------
def _frame(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_reds(root, frames=3, h=64, w=64, clip="001"):
    """REDS layout: <root>/train_sharp_bicubic/X4/<clip>/<i:08d>.png (LQ), train_sharp/X4 (GT 4x),
    meta_info_REDS_GT.txt. Clip '001' is outside REDS4, i.e. a training clip."""
    lq_root, gt_root = os.path.join(root, "train_sharp_bicubic", "X4"), os.path.join(root, "train_sharp", "X4")
    for f in range(frames):
        lq = _frame(h, w, f)
        imwrite(os.path.join(lq_root, clip, f"{f:08d}.png"), lq)
        imwrite(os.path.join(gt_root, clip, f"{f:08d}.png"), lq.repeat(4, 0).repeat(4, 1))
    ann = os.path.join(root, "meta_info_REDS_GT.txt")
    with open(ann, "w") as fh:
        fh.write("".join(f"{clip}/{f:08d}.png ({4 * h},{4 * w},3)\n" for f in range(frames)))
    return {"lq_folder": lq_root, "gt_folder": gt_root, "ann_file": ann}


def write_vimeo(root, frames=3, h=64, w=64, key="00001/0001"):
    """Vimeo-90K layout: <lq>/<key>/im<i>.png, <gt>/<key>/im<i>.png and sep_trainlist.txt."""
    lq_root = os.path.join(root, "vimeo_septuplet_BD_matlabLRx4", "sequences")
    gt_root = os.path.join(root, "vimeo_septuplet", "sequences")
    for f in range(frames):
        lq = _frame(h, w, 100 + f)
        imwrite(os.path.join(lq_root, key, f"im{f + 1}.png"), lq)
        imwrite(os.path.join(gt_root, key, f"im{f + 1}.png"), lq.repeat(4, 0).repeat(4, 1))
    ann = os.path.join(root, "sep_trainlist.txt")
    with open(ann, "w") as fh:
        fh.write(key + "\n")
    return {"lq_folder": lq_root, "gt_folder": gt_root, "ann_file": ann}


def config_train_batch(cfg, tmp_path, frames=3, lq_size=64):
    """One batch from the config's own training pipeline on tiny data in its dataset's layout
    (paths, num_frames, crop size, batch size and workers overridden)."""
    train = copy.deepcopy(cfg["dataset"]["train"])
    inner = train["dataset"] if train["name"] == "RepeatDataset" else train
    if inner["name"] == "VSRVimeo90KDataset":
        inner.update(write_vimeo(str(tmp_path / "vimeo"), frames, lq_size, lq_size))
    else:
        inner.update(write_reds(str(tmp_path / "reds"), frames, lq_size, lq_size))
        inner["num_frames"] = frames
    for step in inner["preprocess"]:
        for t in step.get("pipeline", []):
            if t["name"] == "SRPairedRandomCrop":
                t["gt_patch_size"] = 4 * lq_size
    train.update(batch_size=1, num_workers=0)
    _, loader, _ = build_dataloader(train, seed=0)
    return next(iter(loader))


def tiny_config(name, **generator):
    cfg = load_config(os.path.join(ROOT, "configs", name + ".yaml"))
    cfg["model"]["generator"].update(generator)
    return cfg


def optimizers_from_config(model, cfg):
    opt_cfg = dict(cfg["optimizer"])
    nets = opt_cfg.pop("net_names")
    params = [p for n in nets for p in model.nets[n].parameters() if p.requires_grad]
    opt = build_optimizer(opt_cfg, params, cfg["lr_scheduler"]["learning_rate"])
    opt.ppgan_net_names = tuple(nets)
    return {"optim": opt}


def train_one_step(cfg, batch, current_iter=0):
    """Build the config's model, run one train_iter; returns (model, losses, moved parameter names)."""
    torch.manual_seed(0)
    model = build_model(copy.deepcopy(cfg["model"]))
    net = model.nets["generator"]
    # every parameter starts in the optimizer (PaddleGAN's freeze is per step, not at build time)
    opts = optimizers_from_config(model, cfg)
    before = {k: p.detach().clone() for k, p in net.named_parameters()}
    model.setup_input(batch)
    model.current_iter = current_iter
    losses = model.train_iter(opts)
    assert all(v.ndim == 0 and math.isfinite(float(v)) for v in losses.values()), losses
    moved = {k for k, p in net.named_parameters() if not torch.equal(before[k], p.detach())}
    return model, losses, moved

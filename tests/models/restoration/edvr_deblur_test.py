"""EDVR's deblurring variant (HR input, pre-deblur module, `scale_factor: 1`; PaddleGAN's
edvr_l_blur_wo_tsa / edvr_l_blur_w_tsa): PaddleGAN names / shapes (manifests recorded from its
code), strict `.pdparams` loading with parity against PaddleGAN's outputs, argument checks, the
residual-over-the-centre-frame invariant, any-size inference through EDVRModel, and both configs
trained one step in their dataset layout (REDS blur / sharp folders, scale 1)."""
import copy
import math
import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir))
from r3_fixtures import R3Fixture, shapes  # noqa: E402

from ppgan.datasets import build_dataset  # noqa: E402
from ppgan.models import build_model  # noqa: E402
from ppgan.models.generators import EDVRNet  # noqa: E402
from ppgan.solver import build_optimizer  # noqa: E402
from ppgan.utils.config import load_config  # noqa: E402
from ppgan.utils.image import imwrite  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
NAMES = ["edvr_l_blur_wo_tsa", "edvr_l_blur_w_tsa"]


def _tiny(**kw):
    args = dict(nf=16, nframes=3, groups=4, front_RBs=1, back_RBs=1, scale_factor=1, predeblur=True, HR_in=True,
                dcn_impl="torch")
    args.update(kw)
    return EDVRNet(**args)


# ---- names, shapes, parity ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_state_dict_is_paddlegans(name):
    fx = R3Fixture(name)
    ours = shapes(EDVRNet(**fx.kwargs))
    theirs = {n: s for n, s in fx.manifest_file["state_dict"]}
    assert list(ours) == list(theirs) and ours == theirs
    # the pre-deblur module's HR-input convs replace conv_first; PaddleGAN's `cov_1` spelling
    assert {"pre_deblur.conv_first_1.weight", "pre_deblur.conv_first_3.bias", "pre_deblur.RB_L3_1.conv2.weight",
            "cov_1.weight"} <= set(theirs)
    assert not {"conv_first.weight", "pre_deblur.conv_first.weight"} & set(theirs)
    assert ("TSAModule.sAtt_L3.weight" in theirs) == fx.kwargs["w_TSA"]


@pytest.mark.parametrize("name", NAMES)
def test_pdparams_strict_load_matches_paddlegan(name, tmp_path):
    fx = R3Fixture(name)
    net = EDVRNet(**fx.kwargs).eval()
    report = fx.load_into(net, tmp_path)
    assert not report["missing"] and not report["unexpected"] and not report["transposed"]
    with torch.no_grad():
        fx.assert_matches(net(*fx.inputs))


# ---- arguments and invariants ---------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    (dict(scale_factor=1, HR_in=False), "scale_factor=1 needs HR_in"),
    (dict(scale_factor=1, HR_in=True, predeblur=False), "predeblur"),
    (dict(scale_factor=2), "scale_factor=4"),
    (dict(scale_factor=True), "scale_factor"),
    (dict(scale_factor=0), "scale_factor"),
])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _tiny(**kwargs)


@pytest.mark.parametrize("w_TSA,size,center", [(False, (16, 32), 1), (True, (48, 16), 0), (False, (32, 32), 2)])
def test_same_size_residual_over_the_centre_frame(w_TSA, size, center):
    torch.manual_seed(0)
    net = _tiny(w_TSA=w_TSA, center=center).eval()
    x = torch.rand(2, 3, 3, *size)
    with torch.no_grad():
        out = net(x)
        assert out.shape == (2, 3, *size) and torch.isfinite(out).all()
        assert not torch.allclose(out, x[:, center])
        net.conv_last.weight.zero_()
        net.conv_last.bias.zero_()
        torch.testing.assert_close(net(x), x[:, center], rtol=0, atol=0)


def test_sizes_not_multiple_of_16_are_refused_and_padded_by_the_model():
    net = _tiny()
    with pytest.raises(ValueError, match="divisible by 16"):
        net(torch.rand(1, 3, 3, 20, 32))
    model = build_model({"name": "EDVRModel", "generator": dict(_tiny_cfg()),
                         "pixel_criterion": {"name": "CharbonnierLoss"}})
    g = torch.Generator().manual_seed(0)
    model.setup_input({"lq": torch.rand(1, 3, 3, 21, 30, generator=g), "gt": torch.rand(1, 3, 21, 30, generator=g)})
    from ppgan.metrics import build_metric

    metrics = {"psnr": build_metric({"name": "PSNR", "crop_border": 0})}
    model.test_iter(metrics)
    assert model.output.shape == (1, 3, 21, 30) and len(metrics["psnr"].results) == 1


def _tiny_cfg():
    return {"name": "EDVRNet", "in_nf": 3, "out_nf": 3, "scale_factor": 1, "nf": 8, "nframes": 3, "groups": 1,
            "front_RBs": 1, "back_RBs": 1, "center": 1, "predeblur": True, "HR_in": True, "w_TSA": True}


# ---- PaddleGAN's configs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_paddlegan_config_builds(name):
    cfg = load_config(os.path.join(ROOT, "configs", name + ".yaml"))
    model = build_model(cfg["model"])
    net = model.nets["generator"]
    assert list(model.nets) == ["generator"] and net.HR_in and net.predeblur and net.scale_factor == 1
    assert net.w_TSA == name.endswith("w_tsa") and len(net.reconstructor) == 40
    assert model.tsa_iter == (50000 if net.w_TSA else 0)


@pytest.fixture
def reds_blur(tmp_path):
    """REDS-like blur / sharp clips, 5 frames of 40x40 (same size: scale 1)."""
    rng = np.random.default_rng(0)
    lq_root, gt_root = tmp_path / "train_blur" / "X4", tmp_path / "train_sharp" / "X4"
    for c in range(2):
        for f in range(5):
            sharp = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
            blur = ((sharp.astype(np.uint16) + np.roll(sharp, 1, axis=1)) // 2).astype(np.uint8)
            imwrite(gt_root / f"{c:03d}" / f"{f:08d}.png", sharp)
            imwrite(lq_root / f"{c:03d}" / f"{f:08d}.png", blur)
    ann = tmp_path / "meta_info_REDS_GT.txt"
    ann.write_text("".join(f"{c:03d}/{f:08d}.png (40,40,3)\n" for c in range(2) for f in range(5)))
    return str(lq_root), str(gt_root), str(ann)


@pytest.mark.parametrize("name", NAMES)
def test_config_trains_one_step_in_its_dataset_layout(name, reds_blur):
    """Each config's own train / test pipelines over tiny blur / sharp folders (32-pixel crops instead of
    256, val partition '000'), its optimizer, and a small EDVRNet with the config's deblur switches."""
    cfg = load_config(os.path.join(ROOT, "configs", name + ".yaml"))
    lq, gt, ann = reds_blur
    train = copy.deepcopy(cfg["dataset"]["train"]["dataset"])
    train.update(lq_folder=lq, gt_folder=gt, ann_file=ann, val_partition=["000"])
    for step in train["preprocess"]:
        for t in step.get("pipeline", []):
            if t["name"] == "SRPairedRandomCrop":
                t["gt_patch_size"] = 32
    ds = build_dataset(train)
    samples = [ds[0], ds[3]]
    for s in samples:
        assert s["lq"].shape == (5, 3, 32, 32) and s["gt"].shape == (1, 3, 32, 32)
        assert 0 <= float(s["lq"].min()) and float(s["lq"].max()) <= 1
    test = dict(copy.deepcopy(cfg["dataset"]["test"]), lq_folder=lq, gt_folder=gt, ann_file=ann,
                val_partition=["000"])
    full = build_dataset(test)[0]
    assert full["lq"].shape == (5, 3, 40, 40) and full["gt"].shape == (1, 3, 40, 40)

    model_cfg = copy.deepcopy(cfg["model"])
    gen = model_cfg["generator"]
    gen.update(nf=8, groups=1, front_RBs=1, back_RBs=1)  # the deblur switches stay the config's
    assert (gen["scale_factor"], gen["predeblur"], gen["HR_in"], gen["nframes"]) == (1, True, True, 5)
    torch.manual_seed(0)
    model = build_model(model_cfg)
    net = model.nets["generator"]
    opt = build_optimizer(cfg["optimizer"], [p for p in net.parameters()], cfg["lr_scheduler"]["learning_rate"])
    opt.ppgan_net_names = tuple(cfg["optimizer"]["net_names"])
    model.setup_input({"lq": torch.stack([s["lq"] for s in samples]), "gt": torch.stack([s["gt"] for s in samples]),
                       "lq_path": [s["lq_path"] for s in samples]})
    before = {k: p.detach().clone() for k, p in net.named_parameters()}
    model.current_iter = 0
    losses = model.train_iter({"optim": opt})
    assert set(losses) == {"loss_pixel"} and math.isfinite(losses["loss_pixel"])
    moved = {k for k, p in net.named_parameters() if not torch.equal(before[k], p)}
    if net.w_TSA:  # tsa_iter 50000: only the fusion module learns first
        assert moved and all(k.startswith("TSAModule.") for k in moved)
    else:
        assert "pre_deblur.conv_first_1.weight" in moved and "conv_last.weight" in moved
    model.setup_input({"lq": full["lq"][None], "gt": full["gt"][None]})
    model.test_iter(None)
    assert model.output.shape == (1, 3, 40, 40)  # 40 is no multiple of 16: padded and cropped back

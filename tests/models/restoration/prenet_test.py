"""PReNet: PaddleGAN names / shapes (manifest recorded from PaddleGAN's code), strict `.pdparams`
loading with parity against PaddleGAN's own output, odd sizes and other stage counts, the residual
and weight-sharing invariants, the SSIM criterion, PReNetModel's step and the PaddleGAN config
trained one step in its dataset layout (SRDataset, scale 1, PairedToTensor)."""
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
from ppgan.models.criterions import build_criterion  # noqa: E402
from ppgan.models.generators import PReNet, build_generator  # noqa: E402
from ppgan.models.prenet_model import ssim  # noqa: E402
from ppgan.solver import build_optimizer  # noqa: E402
from ppgan.utils.config import load_config  # noqa: E402
from ppgan.utils.errors import CheckpointError, ConfigError  # noqa: E402
from ppgan.utils.image import imwrite  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture(scope="module")
def fx():
    return R3Fixture("prenet")


# ---- names, shapes, parity --------------------------------------------------------------------------
def test_state_dict_is_paddlegans(fx):
    ours = shapes(PReNet(**fx.kwargs))
    theirs = {n: s for n, s in fx.manifest_file["state_dict"]}
    assert list(ours) == list(theirs) and ours == theirs
    assert len(theirs) == 32 and theirs["conv_i.0.weight"] == [32, 64, 3, 3] and theirs["conv.0.bias"] == [3]


def test_pdparams_strict_load_matches_paddlegan(fx, tmp_path):
    net = PReNet(**fx.kwargs).eval()
    report = fx.load_into(net, tmp_path)
    assert not report["missing"] and not report["unexpected"] and not report["transposed"]
    with torch.no_grad():
        fx.assert_matches(net(*fx.inputs))


@pytest.mark.parametrize("bad", ["drop", "extra", "shape"])
def test_pdparams_that_do_not_fit_are_refused(fx, tmp_path, bad):
    from parity import write_pdparams

    from ppgan.weights import load_paddle_state_dict

    state = fx.state()
    if bad == "drop":
        del state["res_conv3.2.bias"]
    elif bad == "extra":
        state["res_conv6.0.bias"] = np.zeros(32, np.float32)
    else:
        state["res_conv3.2.bias"] = np.zeros(16, np.float32)
    path = write_pdparams(tmp_path / "bad.pdparams", state)
    with pytest.raises(CheckpointError, match="res_conv[36]"):
        load_paddle_state_dict(PReNet(), path, strict=True)


# ---- behaviour and invariants ---------------------------------------------------------------------
@pytest.mark.parametrize("iters,size", [(1, (5, 7)), (3, (16, 9)), (6, (1, 1))])
def test_any_size_and_stage_count(iters, size):
    torch.manual_seed(iters)
    net = build_generator({"name": "PReNet", "recurrent_iter": iters, "use_GPU": False}).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        out = net(x)
        assert out.shape == x.shape and torch.isfinite(out).all()
        torch.testing.assert_close(net(x[1:]), out[1:], rtol=1e-5, atol=1e-6)  # samples independent


def test_residual_on_the_input_and_shared_stage_weights():
    """The last conv predicts a residual over the rainy input: zeroed, the net is the identity.
    The stages share weights: T stages equal a one-stage net re-run with its LSTM state carried."""
    torch.manual_seed(0)
    net = PReNet(recurrent_iter=3).eval()
    x = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        out3 = net(x)
        net.iteration = 1
        out1 = net(x)
        assert not torch.allclose(out1, out3)  # the later stages do something
        net.iteration = 3
        net.conv[0].weight.zero_()
        net.conv[0].bias.zero_()
        torch.testing.assert_close(net(x), x, rtol=0, atol=0)
    assert sum(p.numel() for p in PReNet(recurrent_iter=1).parameters()) == \
        sum(p.numel() for p in PReNet(recurrent_iter=9).parameters()) == 168963


@pytest.mark.parametrize("iters", [0, -1, 2.5, True, "6"])
def test_bad_stage_counts_are_refused(iters):
    with pytest.raises(ConfigError, match="recurrent_iter"):
        PReNet(recurrent_iter=iters)


def test_bad_input_shape_is_refused():
    with pytest.raises(ValueError, match="PReNet needs"):
        PReNet(recurrent_iter=1)(torch.rand(1, 1, 8, 8))


# ---- SSIM criterion ---------------------------------------------------------------------------------
def test_ssim_criterion():
    crit = build_criterion({"name": "SSIM"})
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 20, 17, generator=g)
    noisy = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    noisier = (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert crit(x, x).item() == pytest.approx(1.0, abs=1e-6)
    assert 1.0 > crit(noisy, x).item() > crit(noisier, x).item() > 0
    torch.testing.assert_close(crit(noisy, x), crit(x, noisy))  # symmetric
    per_image = ssim(noisy, x, size_average=False)
    assert per_image.shape == (2,)
    torch.testing.assert_close(per_image.mean(), crit(noisy, x))
    y = noisy.clone().requires_grad_(True)
    (-crit(y, x)).backward()
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
    # the window is a normalised 11x11 Gaussian (sigma 1.5): local means of a constant are the constant
    from ppgan.models.prenet_model import gaussian_window

    w = gaussian_window(11, 2)
    assert w.shape == (2, 1, 11, 11) and float(w[0].sum()) == pytest.approx(1.0)
    assert float(w[0, 0, 5, 5] / w[0, 0, 5, 6]) == pytest.approx(math.exp(1 / (2 * 1.5 ** 2)))
    with pytest.raises(ValueError, match="window_size"):
        build_criterion({"name": "SSIM", "window_size": 10})
    with pytest.raises(ValueError, match="one shape"):
        crit(x, x[:, :, :10])


def test_ssim_criterion_matches_paddlegans():
    """PaddleGAN's own SSIM criterion on an odd-sized noisy pair: the mean and the per-image values."""
    import json

    from r3_fixtures import FIX

    data = np.load(os.path.join(FIX, "prenet_ssim.npz"), allow_pickle=False)
    atol = 10 * json.loads(str(data["meta_json"]))["atol"]
    a, b = torch.from_numpy(data["in_a"]), torch.from_numpy(data["in_b"])
    mean = build_criterion({"name": "SSIM", "window_size": 11})(a, b)
    np.testing.assert_allclose(mean.numpy(), data["out_mean"], atol=atol, rtol=0)
    per_image = build_criterion({"name": "SSIM", "size_average": False})(a, b)
    np.testing.assert_allclose(per_image.numpy(), data["out_per_image"], atol=atol, rtol=0)
    assert 0.2 < float(mean) < 0.9


# ---- model -------------------------------------------------------------------------------------------
PRENET = {"name": "PReNetModel", "generator": {"name": "PReNet", "recurrent_iter": 2},
          "pixel_criterion": {"name": "SSIM"}}


def _opts(model, lr=1e-3):
    opt = build_optimizer({"name": "Adam", "beta1": 0.9, "beta2": 0.99},
                          [p for p in model.nets["generator"].parameters()], lr)
    opt.ppgan_net_names = ("generator",)
    return {"optim": opt}


@pytest.mark.parametrize("criterion,sign", [("SSIM", -1), ("L1Loss", 1), ("MSELoss", 1)])
def test_model_step_minimises_the_criterion(criterion, sign):
    """SSIM (a similarity) is maximised: the loss is -SSIM; a plain loss is minimised as it is."""
    torch.manual_seed(0)
    model = build_model(dict(copy.deepcopy(PRENET), pixel_criterion={"name": criterion}))
    g = torch.Generator().manual_seed(1)
    gt = torch.rand(2, 3, 12, 14, generator=g)
    lq = (gt + 0.2 * torch.rand(2, 3, 12, 14, generator=g)).clamp(0, 1)
    model.setup_input({"lq": lq, "gt": gt, "lq_path": ["a", "b"]})
    crit = model.pixel_criterion
    with torch.no_grad():
        expected = sign * crit(model.nets["generator"](lq), gt)
    before = {k: p.detach().clone() for k, p in model.nets["generator"].named_parameters()}
    losses = model.train_iter(_opts(model))
    assert set(losses) == {"loss_pixel"}
    loss = losses["loss_pixel"]
    assert loss.ndim == 0 and not loss.requires_grad and math.isfinite(loss)
    torch.testing.assert_close(loss, expected)
    assert (loss < 0) == (sign < 0)
    moved = {k for k, p in model.nets["generator"].named_parameters() if not torch.equal(before[k], p)}
    assert moved == set(before)
    assert set(model.visual_items) == {"lq", "output", "gt"}


def test_model_without_gt_or_criterion_says_what_is_missing():
    model = build_model({"name": "PReNetModel", "generator": {"name": "PReNet", "recurrent_iter": 1}})
    model.setup_input({"lq": torch.rand(1, 3, 8, 8), "gt": torch.rand(1, 3, 8, 8)})
    with pytest.raises(ConfigError, match="pixel_criterion"):
        model.train_iter(_opts(model))


# ---- PaddleGAN's config ---------------------------------------------------------------------------------
def test_paddlegan_config_builds():
    cfg = load_config(os.path.join(ROOT, "configs", "prenet.yaml"))
    model = build_model(cfg["model"])
    assert list(model.nets) == ["generator"] and model.nets["generator"].iteration == 6
    assert type(model.pixel_criterion).__name__ == "SSIM"
    assert cfg["optimizer"]["net_names"] == ["generator"]


@pytest.fixture
def rain_folders(tmp_path):
    rng = np.random.default_rng(0)
    rain, clean = tmp_path / "rain", tmp_path / "norain"
    for i in range(2):
        img = rng.integers(0, 200, (30, 26, 3), dtype=np.uint8)
        streaks = img.copy()
        streaks[:, ::5] = 255  # vertical "rain"
        imwrite(clean / f"norain-{i}.png", img)
        imwrite(rain / f"norain-{i}.png", streaks)
    return str(rain), str(clean)


def test_config_trains_one_step_in_its_dataset_layout(rain_folders):
    """configs/prenet.yaml with its data paths pointed at a tiny rain / norain pair of folders, 24-pixel
    crops and two stages (the 100-pixel crops and six stages take seconds); everything else unchanged."""
    cfg = load_config(os.path.join(ROOT, "configs", "prenet.yaml"))
    rain, clean = rain_folders
    train = copy.deepcopy(cfg["dataset"]["train"])
    train.update(lq_folder=rain, gt_folder=clean)
    for step in train["preprocess"]:
        for t in step.get("pipeline", []):
            if t["name"] == "PairedRandomCrop":
                t["size"] = [24, 24]
    ds = build_dataset(train)
    samples = [ds[0], ds[1]]
    for s in samples:
        assert s["lq"].shape == s["gt"].shape == (3, 24, 24) and s["lq"].dtype == torch.float32
        assert 0 <= float(s["gt"].min()) and float(s["lq"].max()) <= 1  # PairedToTensor: uint8 / 255
    test = dict(copy.deepcopy(cfg["dataset"]["test"]), lq_folder=rain, gt_folder=clean)
    full = build_dataset(test)[0]
    assert full["lq"].shape == (3, 30, 26) and float(full["lq"].max()) == 1.0  # the streaks are 255

    model_cfg = copy.deepcopy(cfg["model"])
    model_cfg["generator"]["recurrent_iter"] = 2
    torch.manual_seed(0)
    model = build_model(model_cfg)
    batch = {k: torch.stack([s[k] for s in samples]) for k in ("lq", "gt")}
    model.setup_input(dict(batch, lq_path=[s["lq_path"] for s in samples]))
    opt_cfg = dict(cfg["optimizer"])
    opt = build_optimizer(opt_cfg, list(model.nets["generator"].parameters()), cfg["lr_scheduler"]["learning_rate"])
    opt.ppgan_net_names = tuple(opt_cfg["net_names"])
    before = model.nets["generator"].conv0[0].weight.detach().clone()
    losses = model.train_iter({"optim": opt})
    assert set(losses) == {"loss_pixel"} and -1 <= float(losses["loss_pixel"]) < 0
    assert not torch.equal(before, model.nets["generator"].conv0[0].weight)
    model.setup_input({"lq": full["lq"][None], "gt": full["gt"][None]})
    from ppgan.metrics import build_metric

    metrics = {k: build_metric(v) for k, v in cfg["validate"]["metrics"].items()}
    model.test_iter(metrics)
    assert model.output.shape == (1, 3, 30, 26)
    assert all(len(m.results) == 1 for m in metrics.values())


def test_trainer_runs_the_config_end_to_end(rain_folders, tmp_path):
    """configs/prenet.yaml through the Trainer (top-level `optimizer: {name: Adam}`, MultiStepDecay,
    PSNR / SSIM on the Y channel) for two iterations on the tiny folders."""
    from ppgan.engine import Trainer

    cfg = load_config(os.path.join(ROOT, "configs", "prenet.yaml"))
    rain, clean = rain_folders
    cfg.update(total_iters=2, output_dir=str(tmp_path), seed=0)
    cfg["model"]["generator"]["recurrent_iter"] = 1
    for split in ("train", "test"):
        cfg["dataset"][split].update(lq_folder=rain, gt_folder=clean, num_workers=0,
                                     batch_size=2 if split == "train" else 1)
    for step in cfg["dataset"]["train"]["preprocess"]:
        for t in step.get("pipeline", []):
            if t["name"] == "PairedRandomCrop":
                t["size"] = [16, 16]
    cfg["validate"]["interval"] = 2
    cfg["log_config"].update(interval=1, visiual_interval=1)
    cfg["snapshot_config"]["interval"] = 2
    tr = Trainer(cfg, device="cpu", run_dir=str(tmp_path / "run"), quiet=True)
    tr.train()
    assert os.path.isfile(tmp_path / "run" / "iter_2_weight.pth")
    results = tr.validate()
    assert set(results) == {"psnr", "ssim"} and 0 < results["psnr"] < 60 and -1 <= results["ssim"] <= 1

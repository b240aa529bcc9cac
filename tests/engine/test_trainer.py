"""The training loop: resume is bit-exact, logs/grids/checkpoints are written, NaN stops."""
import glob
import json
import math
import os

import pytest
import torch

from ppgan.engine import Trainer
from ppgan.engine import checkpoint as ckpt
from ppgan.utils.errors import NonFiniteLossError


def _weights(path):
    return ckpt.load(path)["nets"]


def test_resume_gives_identical_weights(tiny_cfg, tmp_path):
    # 2N iterations straight == N, save, resume, N more (CPU, bit for bit); N=5 crosses an epoch
    # boundary mid-way (40 samples / batch 8 = 5 batches per epoch) and an LR decay step.
    tiny_cfg["total_iters"] = 10
    tiny_cfg["snapshot_config"]["interval"] = 5
    straight = Trainer(tiny_cfg, device="cpu", run_dir=str(tmp_path / "a"), quiet=True)
    straight.train()

    half = dict(tiny_cfg, total_iters=5)
    first = Trainer(half, device="cpu", run_dir=str(tmp_path / "b"), quiet=True)
    ck = first.train()
    resumed = Trainer(tiny_cfg, device="cpu", resume=ck, quiet=True)
    assert resumed.iter == 5 and resumed.run_dir == str(tmp_path / "b")
    resumed.train()

    a = _weights(str(tmp_path / "a" / "iter_10_checkpoint.pth"))
    b = _weights(str(tmp_path / "b" / "iter_10_checkpoint.pth"))
    for net in a:
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs after resume"
    # and training really changed the weights
    c = _weights(str(tmp_path / "b" / "iter_5_checkpoint.pth"))
    assert not torch.equal(a["netG"]["model.0.weight"], c["netG"]["model.0.weight"])


def test_run_folder_contents(tiny_cfg, tmp_path):
    tr = Trainer(tiny_cfg, device="cpu", run_dir=str(tmp_path / "run"), quiet=True)
    tr.train()
    run = tmp_path / "run"
    assert (run / "config.yaml").is_file() and (run / "train.log").is_file()
    records = [json.loads(line) for line in open(run / "log.jsonl")]
    logged = [r for r in records if "D_fake_loss" in r]
    assert [r["iter"] for r in logged] == [2, 4, 6]
    assert all(math.isfinite(r["D_real_loss"]) and "lr_optimizer_G" in r for r in logged)
    assert sorted(os.listdir(run / "visual")) == ["iter_0000003_fixed_samples.png", "iter_0000006_fixed_samples.png"]
    assert {os.path.basename(p) for p in glob.glob(str(run / "iter_*"))} == {
        f"iter_{i}_{kind}.pth" for i in (2, 4, 6) for kind in ("checkpoint", "weight")}
    assert not glob.glob(str(run / ".*tmp*")), "temp files left behind"
    if tr._tb is not None or os.path.isdir(run / "tensorboard"):
        assert glob.glob(str(run / "tensorboard" / "events.out.tfevents.*"))
    w = ckpt.load(str(run / "iter_6_weight.pth"))
    assert set(w) == {"netG", "netD", ckpt.META_KEY}
    assert w[ckpt.META_KEY]["model"]["generator"]["name"] == "DCGenerator"


def test_keep_last_checkpoints(tiny_cfg, tmp_path):
    tiny_cfg["total_iters"] = 8
    tiny_cfg["snapshot_config"] = {"interval": 2, "max_keep": 2}
    Trainer(tiny_cfg, device="cpu", run_dir=str(tmp_path), quiet=True).train()
    names = sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / "iter_*_checkpoint.pth")))
    assert names == ["iter_6_checkpoint.pth", "iter_8_checkpoint.pth"]


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tiny_cfg, tmp_path, monkeypatch):
    from ppgan.models.gan_model import GANModel

    real_step = GANModel.train_iter

    def step(self, optimizers=None):
        out = real_step(self, optimizers)
        if self.current_iter == 4:  # the 5th iteration
            out["G_adv_loss"] = float("nan")
        return out

    monkeypatch.setattr(GANModel, "train_iter", step)
    tr = Trainer(tiny_cfg, device="cpu", run_dir=str(tmp_path), quiet=True)
    with pytest.raises(NonFiniteLossError) as err:
        tr.train()
    msg = str(err.value)
    assert "G_adv_loss" in msg and "iteration 5" in msg and "iter_4_checkpoint.pth" in msg
    assert sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / "iter_*_checkpoint.pth"))) == [
        "iter_2_checkpoint.pth", "iter_4_checkpoint.pth"]
    state = ckpt.load(str(tmp_path / "iter_4_checkpoint.pth"))
    assert all(torch.isfinite(v).all() for v in state["nets"]["netG"].values() if v.is_floating_point())


def test_epoch_based_config_and_lr_decay(tiny_cfg, tmp_path):
    del tiny_cfg["total_iters"]
    tiny_cfg["epochs"] = 3
    tiny_cfg["snapshot_config"] = {"interval": 1}
    tr = Trainer(tiny_cfg, device="cpu", run_dir=str(tmp_path), quiet=True)
    assert tr.iters_per_epoch == 5 and tr.total_iters == 15
    tr.train()
    # LinearDecay start_epoch 1, decay_epochs 2: epoch 0 -> 1.0, epoch 1 -> 2/3, epoch 2 -> 1/3
    lr = tr.optimizers["optimizer_G"].param_groups[0]["lr"]
    assert lr == pytest.approx(0.0002 * (1 - 3 / 3), abs=1e-12)
    assert os.path.isfile(tmp_path / "iter_5_checkpoint.pth") and os.path.isfile(tmp_path / "iter_10_checkpoint.pth")


def test_evaluate_only_writes_images(tiny_cfg, tmp_path):
    tr = Trainer(tiny_cfg, device="cpu", run_dir=str(tmp_path / "train"), quiet=True)
    tr.train()
    ev = Trainer(tiny_cfg, device="cpu", load=str(tmp_path / "train" / "iter_6_weight.pth"), evaluate_only=True,
                 run_dir=str(tmp_path / "eval"), quiet=True)
    g_loaded = ev.model.nets["netG"].state_dict()
    g_trained = tr.model.nets["netG"].state_dict()
    assert all(torch.equal(g_loaded[k], g_trained[k]) for k in g_trained)
    ev.evaluate()
    files = sorted(os.listdir(tmp_path / "eval" / "eval"))
    assert "samples_fixed_samples.png" in files and any(f.endswith("_fake.png") for f in files)


def test_load_paddle_weights_into_model(tiny_cfg, tmp_path):
    """--load accepts a PaddleGAN-style nested .pdparams ({'netG': {...}, 'netD': {...}})."""
    import pickle

    tr = Trainer(tiny_cfg, device="cpu", run_dir=str(tmp_path / "a"), quiet=True)
    paddle_like = {}
    for name, net in tr.model.nets.items():
        sd = {}
        for k, v in net.state_dict().items():
            if k.endswith("num_batches_tracked"):
                continue
            k = k.replace("running_mean", "_mean").replace("running_var", "_variance")
            sd[k] = (v + 1).numpy()
        paddle_like[name] = sd
    path = tmp_path / "w.pdparams"
    with open(path, "wb") as f:
        pickle.dump(paddle_like, f, protocol=2)
    tr2 = Trainer(tiny_cfg, device="cpu", run_dir=str(tmp_path / "b"), load=str(path), quiet=True)
    for name, net in tr2.model.nets.items():
        for k, v in net.state_dict().items():
            if not k.endswith("num_batches_tracked"):
                pk = k.replace("running_mean", "_mean").replace("running_var", "_variance")
                assert torch.allclose(v, torch.from_numpy(paddle_like[name][pk]))


def test_validation_with_metrics_during_training(tiny_cfg, tmp_path):
    """A conditional GAN validated every 3 iterations with a digit classifier metric."""
    tiny_cfg["model"]["generator"] = {"name": "ConditionalDeepConvGenerator", "latent_dim": 8, "output_nc": 1,
                                      "size": 16, "ngf": 4, "n_class": 10}
    tiny_cfg["model"]["discriminator"] = {"name": "NLayerDiscriminatorWithClassification", "input_nc": 1,
                                          "n_class": 10, "ndf": 4, "n_layers": 2, "norm_type": "batch"}
    tiny_cfg["validate"] = {"interval": 3, "metrics": {
        "acc": {"name": "DigitAccuracy", "size": 16, "num_samples": 4000, "epochs": 3}}}
    tr = Trainer(tiny_cfg, device="cpu", run_dir=str(tmp_path), quiet=True)
    assert tr.metrics["acc"].classifier_accuracy > 0.9   # the judge itself learned digits
    tr.train()
    evals = [json.loads(line) for line in open(tmp_path / "log.jsonl") if '"eval"' in line]
    assert [e["iter"] for e in evals] == [3, 6]
    assert all(0.0 <= e["eval"]["acc"] <= 1.0 for e in evals)


def test_validation_at_start_writes_before_after_grid(tiny_cfg, tmp_path):
    import cv2

    tiny_cfg["total_iters"] = 4
    tiny_cfg["validate"] = {"interval": 2, "at_start": True, "save_img": True,
                            "metrics": {"mae": {"name": "MAE", "min_max": [-1, 1]}}}
    tr = Trainer(tiny_cfg, device="cpu", run_dir=str(tmp_path), quiet=True)
    tr.train()
    evals = [json.loads(line) for line in open(tmp_path / "log.jsonl") if '"eval"' in line]
    assert [e["iter"] for e in evals] == [0, 2, 4]
    assert sorted(os.listdir(tmp_path / "eval")) == ["iter_0000000", "iter_0000002", "iter_0000004"]
    grid = cv2.imread(str(tmp_path / "before_after.png"), cv2.IMREAD_UNCHANGED)
    # rows: fake before, fake after, real; 8 images of 16 px per row, padding 2
    assert grid.shape[:2] == (2 + 3 * 18, 2 + 8 * 18)


def test_a_net_that_has_not_stepped_yet_gives_no_scheduler_order_warning(tiny_cfg, tmp_path):
    # G's first step comes at iteration 3: its scheduler steps before its optimizer ever has
    import warnings

    tiny_cfg["total_iters"] = 4
    tiny_cfg["model"]["params"] = {"disc_start_iters": 3}
    tr = Trainer(tiny_cfg, device="cpu", run_dir=str(tmp_path), quiet=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tr.train()
    assert not [w for w in caught if "lr_scheduler.step()" in str(w.message)], [str(w.message) for w in caught]

"""StyleGAN2Model: one training step (losses, lazy R1 / path length, EMA), the lazy schedule,
optimizer adjustment, resume through the Trainer, DiffAugment, and the configs."""
import copy
import math
import os

import pytest
import torch

from ppgan.engine import Trainer
from ppgan.engine import checkpoint as ckpt
from ppgan.models import build_model
from ppgan.models.augment import DiffAugment, build_augment, cutout, translation
from ppgan.models.styleganv2_model import TRAIN_STATE, StyleGAN2Model
from ppgan.utils.errors import ConfigError

from host_reads import record_host_reads

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def model_cfg(size=16, **kw):
    cfg = {"name": "StyleGAN2Model",
           "generator": {"name": "StyleGANv2Generator", "size": size, "style_dim": 16, "n_mlp": 2,
                         "channel_multiplier": 1, "narrow": 1 / 32},
           "discriminator": {"name": "StyleGANv2Discriminator", "size": size, "channel_multiplier": 1,
                             "narrow": 1 / 32},
           "gan_criterion": {"name": "GANLoss", "gan_mode": "logistic"},
           "r1_reg_weight": 10.0, "path_reg_weight": 2.0, "path_batch_shrink": 2,
           "params": {"gen_iters": 2, "disc_iters": 2}}
    cfg.update(kw)
    return cfg


def optimizers_for(model, lr=0.002):
    out = {}
    for name, net in (("optimG", "gen"), ("optimD", "disc")):
        opt = torch.optim.Adam(model.nets[net].parameters(), lr=lr, betas=(0.0, 0.99))
        opt.ppgan_net_names = (net,)
        out[name] = opt
    return out


def flat(net):
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


@pytest.mark.parametrize("size,mixing,augment", [(16, 0.9, None), (16, 1.0, {"prob": 0.5}), (32, 0.0, True)])
def test_one_iteration_with_lazy_steps(size, mixing, augment):
    torch.manual_seed(0)
    # a low decay so the EMA step is far above float32 rounding of the weights
    model = build_model(model_cfg(size, mixing_prob=mixing, augment=augment,
                                  params={"gen_iters": 2, "disc_iters": 2, "ema_decay": 0.5}))
    assert build_model(model_cfg(size)).ema_decay == 0.5 ** (32 / (10 * 1000))  # PaddleGAN's default
    opts = optimizers_for(model)
    g0, d0, ema0 = flat(model.nets["gen"]), flat(model.nets["disc"]), flat(model.nets["gen_ema"])
    assert torch.equal(g0, ema0)  # the EMA starts as a copy of G
    model.current_iter = 0        # 0 % interval == 0: both lazy regularisers run
    model.setup_input({"img": torch.rand(4, 3, size, size) * 2 - 1})
    losses = model.train_iter(opts)
    for key in ("l_d", "l_g", "l_d_r1", "l_g_path", "path_length", "real_score", "fake_score"):
        assert key in losses and losses[key].ndim == 0 and torch.isfinite(losses[key]), key
    assert losses["l_d_r1"] > 0 and losses["path_length"] > 0
    g1, d1, ema1 = flat(model.nets["gen"]), flat(model.nets["disc"]), flat(model.nets["gen_ema"])
    assert not torch.equal(g0, g1) and not torch.equal(d0, d1)
    # EMA moved from the old G towards the new G by exactly (1 - decay) of the step
    assert not torch.equal(ema1, g1) and not torch.equal(ema1, ema0)
    ulp = torch.finfo(torch.float32).eps * torch.maximum(g0.abs(), g1.abs())  # mapping weights are ~1/lr_mul
    assert (((ema1 - g0) - 0.5 * (g1 - g0)).abs() <= 4 * ulp + 1e-7).all()
    assert (ema1 - g1).norm() < (ema0 - g1).norm()
    assert model.counters == {"r1_steps": 1, "path_steps": 1, "ema_steps": 1}
    assert float(model.mean_path_length) > 0


@pytest.mark.parametrize("it,r1,pl", [(1, False, False), (2, True, True), (3, False, False), (4, True, True)])
def test_lazy_schedule(it, r1, pl):
    torch.manual_seed(1)
    model = build_model(model_cfg())
    model.current_iter = it
    model.setup_input({"A": torch.rand(2, 3, 16, 16) * 2 - 1})  # PaddleGAN's key
    losses = model.train_iter(optimizers_for(model))
    assert ("l_d_r1" in losses) == r1 and ("l_g_path" in losses) == pl
    assert ("path_length" in losses) == pl


@pytest.mark.parametrize("reg_every,adjust", [(16, False), (4, True), (1, True)])
def test_optimizer_config_adjusts_for_lazy_regularisation(reg_every, adjust):
    model = build_model(model_cfg(params={"gen_iters": reg_every, "disc_iters": reg_every, "adjust_betas": adjust}))
    opt = {"optimG": {"name": "Adam", "net_names": ["gen"], "beta1": 0.0, "beta2": 0.99},
           "optimD": {"name": "Adam", "net_names": ["disc"], "beta1": 0.0, "beta2": 0.99}}
    out, sched = model.optimizer_config(opt, {"name": "MultiStepDecay", "learning_rate": 0.002, "milestones": [9]})
    c = reg_every / (reg_every + 1)
    for name in out:
        assert out[name]["learning_rate"] == pytest.approx(0.002 * c)
        assert out[name]["beta2"] == pytest.approx(0.99 ** c if adjust else 0.99)
    assert opt["optimG"].get("learning_rate") is None  # the caller's config is not changed
    for bad in ({"name": "Adam"}, {"optimG": {"name": "Adam"}},
                {"optimG": {"name": "Adam", "net_names": ["gen", "gen_ema"]}}):
        with pytest.raises(ConfigError):
            model.optimizer_config(bad, None)


@pytest.mark.parametrize("kw", [{"params": {"gen_iter": 4}}, {"mixing_prob": 1.5}, {"params": {"ema_decay": 2}},
                                {"augment": {"policy": "rotate"}}, {"augment": {"prob": 2}}, {"path_batch_shrink": 0}])
def test_bad_model_settings(kw):
    with pytest.raises(ConfigError):
        build_model(model_cfg(**kw))


def test_state_dict_carries_counters_and_path_mean():
    torch.manual_seed(2)
    model = build_model(model_cfg())
    model.current_iter = 0
    model.setup_input({"img": torch.rand(2, 3, 16, 16) * 2 - 1})
    model.train_iter(optimizers_for(model))
    state = copy.deepcopy(model.state_dict())
    assert set(state) == {"gen", "disc", "gen_ema", TRAIN_STATE}
    other = build_model(model_cfg())
    other.load_state_dict(state)
    assert other.counters == model.counters
    assert torch.equal(other.mean_path_length, model.mean_path_length)
    assert torch.equal(flat(other.nets["gen_ema"]), flat(model.nets["gen_ema"]))


def test_truncated_samples_pull_towards_the_mean():
    torch.manual_seed(3)
    model = build_model(model_cfg())
    z = model.fixed_noise()
    for name, p in model.nets["gen_ema"].named_parameters():  # noise strengths start at 0: make them count
        if name.endswith("noise.weight"):
            p.data.fill_(0.5)
    full, trunc, none = (model.sample(z, t, randomize_noise=False) for t in (1.0, 0.5, 0.0))
    torch.testing.assert_close(model.sample(z, randomize_noise=False), full)  # repeatable with stored noise
    assert not torch.equal(model.sample(z), full)                             # fresh noise otherwise
    assert full.shape == (16, 3, 16, 16)
    # truncation 0 gives every z the mean latent: (nearly) one image
    assert (none - none[:1]).abs().max() < 1e-4 * max(1.0, none.abs().max())
    assert (trunc - none).abs().mean() < (full - none).abs().mean()
    vis = model.visuals()
    assert set(vis) == {"fixed_samples_ema", "fixed_samples_ema_trunc0.7"}


def tiny_train_cfg(total_iters, out):
    return {
        "total_iters": total_iters, "output_dir": str(out), "seed": 3,
        "model": model_cfg(params={"gen_iters": 2, "disc_iters": 3, "n_samples": 4}),
        "dataset": {"train": {"name": "digits", "num_samples": 16, "size": 16, "channels": 3, "seed": 0,
                              "batch_size": 4, "num_workers": 0}},
        "lr_scheduler": {"name": "MultiStepDecay", "learning_rate": 0.002, "milestones": [100], "gamma": 0.5},
        "optimizer": {"optimG": {"name": "Adam", "net_names": ["gen"], "beta1": 0.0, "beta2": 0.99},
                      "optimD": {"name": "Adam", "net_names": ["disc"], "beta1": 0.0, "beta2": 0.99}},
        "log_config": {"interval": 2, "visual_interval": 100},
        "snapshot_config": {"interval": 2},
    }


def test_resume_restores_ema_and_counters(tmp_path):
    straight = Trainer(tiny_train_cfg(4, tmp_path), device="cpu", run_dir=str(tmp_path / "a"), quiet=True)
    straight.train()
    first = Trainer(tiny_train_cfg(2, tmp_path), device="cpu", run_dir=str(tmp_path / "b"), quiet=True)
    ck = first.train()
    mid = ckpt.load(ck)["nets"][TRAIN_STATE]
    assert int(mid["r1_steps"]) == 1 and int(mid["path_steps"]) == 1 and int(mid["ema_steps"]) == 2
    resumed = Trainer(tiny_train_cfg(4, tmp_path), device="cpu", resume=ck, quiet=True)
    assert resumed.model.counters == {"r1_steps": 1, "path_steps": 1, "ema_steps": 2}
    assert torch.equal(resumed.model.mean_path_length, mid["mean_path_length"])
    resumed.train()
    a = ckpt.load(str(tmp_path / "a" / "iter_4_checkpoint.pth"))["nets"]
    b = ckpt.load(str(tmp_path / "b" / "iter_4_checkpoint.pth"))["nets"]
    for net in ("gen", "disc", "gen_ema"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs after resume"
    for k in a[TRAIN_STATE]:
        assert torch.equal(a[TRAIN_STATE][k], b[TRAIN_STATE][k]), k
    assert int(a[TRAIN_STATE]["r1_steps"]) == 2 and int(a[TRAIN_STATE]["path_steps"]) == 2
    assert not torch.equal(a["gen_ema"]["input.input"], a["gen"]["input.input"])
    # the learning rates were scaled for the lazy regularisation (c = k / (k + 1))
    lrs = {k: o.param_groups[0]["lr"] for k, o in resumed.optimizers.items()}
    assert lrs == pytest.approx({"optimG": 0.002 * 2 / 3, "optimD": 0.002 * 3 / 4})


# ---- DiffAugment --------------------------------------------------------------------------------

@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout", ["cutout"]])
def test_diffaugment_is_differentiable_and_keeps_shape(policy):
    torch.manual_seed(4)
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    y = DiffAugment(policy)(x)
    assert y.shape == x.shape and not torch.equal(y, x)
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_translation_and_cutout_geometry():
    torch.manual_seed(5)
    x = torch.arange(1, 1 + 2 * 16 * 16, dtype=torch.float32).view(2, 1, 16, 16)
    t = translation(x, ratio=0.25)
    for i in range(2):  # every kept value is one of the image's own, the rest is zero fill
        kept = t[i][t[i] != 0]
        assert torch.isin(kept, x[i]).all() and kept.numel() >= 12 * 12
    c = cutout(torch.ones(3, 1, 16, 16), ratio=0.5)
    zeros = (c == 0).flatten(1).sum(1)
    assert ((zeros > 0) & (zeros <= 64)).all()


def test_augment_config():
    assert build_augment(None) is None and build_augment(False) is None
    assert build_augment(True).policy == ["color", "translation", "cutout"]
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(DiffAugment(prob=0.0)(x), x)
    for bad in ("color", {"policy": "color", "p": 1}, {"policy": ""}):
        with pytest.raises(ConfigError):
            build_augment(bad)


# ---- configs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["stylegan2_demo.yaml", "stylegan_v2_256_ffhq.yaml"])
def test_configs_load_and_check(name):
    from ppgan.models.builder import check_model_config
    from ppgan.utils.config import load_config

    cfg = load_config(os.path.join(ROOT, "configs", name))
    assert cfg["model"]["name"] == "StyleGAN2Model"
    check_model_config(cfg["model"])
    assert set(cfg["optimizer"]) == {"optimG", "optimD"}


def test_demo_config_builds():
    from ppgan.utils.config import load_config

    cfg = load_config(os.path.join(ROOT, "configs", "stylegan2_demo.yaml"))
    model = build_model(cfg["model"])
    assert isinstance(model, StyleGAN2Model) and set(model.nets) == {"gen", "disc", "gen_ema"}
    size = cfg["model"]["generator"]["size"]
    img = model.sample(model.fixed_noise()[:2])
    assert img.shape == (2, 3, size, size) and torch.isfinite(img).all()
    assert math.isclose(model.ema_decay, 0.5 ** (32 / 10000)) or "ema_decay" in cfg["model"].get("params", {})




@pytest.mark.parametrize("it,augment", [(0, None), (1, None), (0, True)])
def test_train_step_reads_nothing_back(it, augment, monkeypatch):
    torch.manual_seed(6)
    model = build_model(model_cfg(augment=augment))
    opts = optimizers_for(model)
    model.current_iter = it
    model.setup_input({"img": torch.rand(2, 3, 16, 16) * 2 - 1})
    calls = record_host_reads(monkeypatch)
    model.train_iter(opts)
    assert calls == []


def test_step_under_autocast_keeps_the_regularisers_in_float32():
    # bf16 autocast on the CPU stands in for the trainer's AMP: R1 and path length get a float32 pass
    torch.manual_seed(7)
    model = build_model(model_cfg())
    model.current_iter = 0
    model.setup_input({"img": torch.rand(2, 3, 16, 16) * 2 - 1})
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model.train_iter(optimizers_for(model))
    assert {"l_d_r1", "l_g_path"} <= set(losses)
    assert losses["l_d_r1"].dtype == torch.float32 and losses["l_g_path"].dtype == torch.float32
    assert all(torch.isfinite(v) for v in losses.values())

"""ProgressiveGAN: the growing schedule, real-image blending, one training step per phase,
EMA, optimizer reset at a new resolution, resume through the Trainer, and the demo config."""
import os

import pytest
import torch

from ppgan.engine import Trainer
from ppgan.engine import checkpoint as ckpt
from ppgan.models import build_model
from ppgan.models.progressive_gan_model import ProgressiveGAN, phase_at, resize_real
from ppgan.utils.errors import ConfigError

from host_reads import record_host_reads

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def model_cfg(size=16, gan_mode="wgangp", **params):
    small = {"fmap_base": 64, "fmap_max": 16}
    return {"name": "ProgressiveGAN",
            "generator": {"name": "PGGANGenerator", "size": size, "latent_dim": 16, **small},
            "discriminator": {"name": "PGGANDiscriminator", "size": size, **small},
            "gan_criterion": {"name": "GANLoss", "gan_mode": gan_mode},
            "params": {"fade_iters": 2, "stable_iters": 1, **params}}


def optimizers_for(model, lr=0.001):
    out = {}
    for name, net in (("optimizer_G", "netG"), ("optimizer_D", "netD")):
        opt = torch.optim.Adam(model.nets[net].parameters(), lr=lr, betas=(0.0, 0.99))
        opt.ppgan_net_names = (net,)
        out[name] = opt
    return out


def flat(net):
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


@pytest.mark.parametrize("it,expected", [(0, (0, 1.0)), (1, (1, 0.5)), (2, (1, 1.0)), (3, (1, 1.0)),
                                         (4, (2, 0.5)), (5, (2, 1.0)), (6, (2, 1.0)), (100, (2, 1.0))])
def test_schedule(it, expected):
    # stable 1 at 4x4, then (fade 2, stable 1) per resolution up to depth 2 (16x16)
    assert phase_at(it, 2, fade_iters=2, stable_iters=1) == expected


def test_schedule_is_monotone_and_reaches_full_size():
    seen = [phase_at(i, 3, 5, 3) for i in range(60)]
    assert seen[0] == (0, 1.0) and seen[-1] == (3, 1.0)
    assert all(a <= b for a, b in zip(seen, seen[1:]))  # (depth, alpha) never goes back
    assert sum(1 for d, a in seen if a < 1) == 3 * 5 - 3  # every fade-in: alpha 1/5 .. 4/5 (the 5th is 1)


@pytest.mark.parametrize("depth,alpha", [(0, 1.0), (1, 0.25), (2, 1.0), (2, 0.5)])
def test_resize_real(depth, alpha):
    real = torch.rand(2, 3, 16, 16)
    out = resize_real(real, depth, alpha)
    size = 4 * 2 ** depth
    assert out.shape == (2, 3, size, size)
    torch.testing.assert_close(out.mean(), real.mean())  # box filters keep the mean
    if alpha < 1:  # blended with the 2x-coarser image: less detail than the sharp one
        sharp = resize_real(real, depth, 1.0)
        assert (out - out.mean()).abs().mean() < (sharp - sharp.mean()).abs().mean()


@pytest.mark.parametrize("it,gan_mode", [(0, "wgangp"), (1, "wgangp"), (5, "wgangp"), (4, "logistic")])
def test_one_iteration(it, gan_mode):
    torch.manual_seed(0)
    model = build_model(model_cfg(gan_mode=gan_mode, ema_decay=0.5))
    opts = optimizers_for(model)
    g0, d0 = flat(model.nets["netG"]), flat(model.nets["netD"])
    assert torch.equal(g0, flat(model.nets["netG_ema"]))
    model.current_iter = it
    model.setup_input({"img": torch.rand(4, 3, 16, 16) * 2 - 1})
    losses = model.train_iter(opts)
    assert (model.depth, model.alpha) == phase_at(it, 2, 2, 1)
    expected = {"D_fake_loss", "D_real_loss", "G_adv_loss"} | (
        {"D_gp_loss", "D_drift_loss"} if gan_mode == "wgangp" else set())
    assert set(losses) == expected
    assert all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    g1, d1, ema = flat(model.nets["netG"]), flat(model.nets["netD"]), flat(model.nets["netG_ema"])
    assert not torch.equal(g0, g1) and not torch.equal(d0, d1)
    assert not torch.equal(ema, g1) and not torch.equal(ema, g0)
    torch.testing.assert_close(ema, 0.5 * (g0 + g1), atol=1e-6, rtol=1e-5)
    assert model.fake.shape[-1] == 4 * 2 ** model.depth
    assert model.visuals()["fixed_samples_ema"].shape == (32, 3, 16, 16)


def test_optimizer_state_is_reset_at_a_new_resolution():
    torch.manual_seed(1)
    model = build_model(model_cfg())
    opts = optimizers_for(model)
    model.setup_input({"img": torch.rand(2, 3, 16, 16) * 2 - 1})
    model.current_iter = 0
    model.train_iter(opts)
    n0 = len(opts["optimizer_G"].state)
    assert n0 > 0
    model.current_iter = 1  # depth 0 -> 1: fresh Adam moments, and the new block's weights get some
    model.train_iter(opts)
    steps = {int(s["step"]) for s in opts["optimizer_G"].state.values()}
    assert steps == {1}


@pytest.mark.parametrize("kw", [{"fade_iters": 0}, {"fade_itrs": 3}, {"start_depth": 3}, {"ema_decay": -1}])
def test_bad_settings(kw):
    with pytest.raises(ConfigError):
        build_model(model_cfg(**kw))


def tiny_train_cfg(total_iters):
    return {
        "total_iters": total_iters, "output_dir": "unused", "seed": 5,
        "model": model_cfg(size=8, n_samples=4),
        "dataset": {"train": {"name": "digits", "num_samples": 16, "size": 8, "channels": 3, "seed": 0,
                              "batch_size": 4, "num_workers": 0, "return_label": False}},
        "lr_scheduler": {"name": "MultiStepDecay", "learning_rate": 0.001, "milestones": [100]},
        "optimizer": {"optimizer_G": {"name": "Adam", "net_names": ["netG"], "beta1": 0.0, "beta2": 0.99},
                      "optimizer_D": {"name": "Adam", "net_names": ["netD"], "beta1": 0.0, "beta2": 0.99}},
        "log_config": {"interval": 2, "visual_interval": 100},
        "snapshot_config": {"interval": 2},
    }


def test_resume_continues_growing_and_ema(tmp_path):
    # 4 iterations straight == 2, resume, 2 more: the resume point is inside the 8x8 fade-in
    Trainer(tiny_train_cfg(4), device="cpu", run_dir=str(tmp_path / "a"), quiet=True).train()
    ck = Trainer(tiny_train_cfg(2), device="cpu", run_dir=str(tmp_path / "b"), quiet=True).train()
    resumed = Trainer(tiny_train_cfg(4), device="cpu", resume=ck, quiet=True)
    assert resumed.model.phase(resumed.iter) == (1, 1.0)
    resumed.train()
    a = ckpt.load(str(tmp_path / "a" / "iter_4_checkpoint.pth"))
    b = ckpt.load(str(tmp_path / "b" / "iter_4_checkpoint.pth"))
    for net in ("netG", "netD", "netG_ema"):
        for k in a["nets"][net]:
            assert torch.equal(a["nets"][net][k], b["nets"][net][k]), f"{net}.{k} differs after resume"
    assert not torch.equal(a["nets"]["netG_ema"]["to_rgbs.1.weight"], a["nets"]["netG"]["to_rgbs.1.weight"])


def test_demo_config_loads_and_builds():
    from ppgan.models.builder import check_model_config
    from ppgan.utils.config import load_config

    cfg = load_config(os.path.join(ROOT, "configs", "pggan_demo.yaml"))
    check_model_config(cfg["model"])
    model = build_model(cfg["model"])
    assert isinstance(model, ProgressiveGAN) and set(model.nets) == {"netG", "netD", "netG_ema"}
    assert model.total_phase_iters <= cfg["total_iters"]  # the demo reaches the full size
    size = cfg["model"]["generator"]["size"]
    assert model.sample(model.fixed_noise()[:2], depth=model.max_depth).shape == (2, 3, size, size)


@pytest.mark.parametrize("it", [0, 1, 2])
def test_train_step_reads_nothing_back(it, monkeypatch):
    calls = record_host_reads(monkeypatch)
    model = build_model(model_cfg())
    opts = optimizers_for(model)
    model.current_iter = it
    model.setup_input({"img": torch.rand(2, 3, 16, 16) * 2 - 1})
    model.train_iter(opts)
    assert calls == []

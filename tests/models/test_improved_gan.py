"""GANModel's options: the EMA generator (netG_ema), ImprovedGAN techniques (feature matching,
historical averaging, one-sided label smoothing, minibatch discrimination, virtual batch norm)
and their training through the Trainer (--load, --evaluate-only, resume), plus the config."""
import copy
import os

import pytest
import torch

from ppgan.engine import Trainer
from ppgan.engine import checkpoint as ckpt
from ppgan.models import build_model
from ppgan.modules.improved_gan import feature_matching_loss
from ppgan.utils.errors import ConfigError

from host_reads import record_host_reads
from resume_check import assert_resume_matches

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def model_cfg(gen=None, disc=None, crit=None, **params):
    return {"name": "GANModel",
            "generator": {"name": "DCGenerator", "input_nz": 8, "input_nc": 1, "output_nc": 1, "ngf": 4,
                          "output_size": 8, "norm_type": "batch", **(gen or {})},
            "discriminator": {"name": "DCDiscriminator", "input_nc": 1, "ndf": 4, "input_size": 8,
                              "norm_type": "batch", **(disc or {})},
            "gan_criterion": {"name": "GANLoss", "gan_mode": "vanilla", **(crit or {})},
            "params": {"n_samples": 4, **params}}


def optimizers_for(model, lr=0.01):
    out = {}
    for name in ("netG", "netD"):
        opt = torch.optim.Adam(model.nets[name].parameters(), lr=lr, betas=(0.5, 0.999))
        opt.ppgan_net_names = (name,)
        out[name] = opt
    return out


def flat(net, buffers=False):
    ts = list(net.buffers()) if buffers else list(net.parameters())
    return torch.cat([t.detach().float().reshape(-1) for t in ts])


def step(model, n=4, seed=0):
    torch.manual_seed(seed)
    model.setup_input({"img": torch.rand(n, 1, 8, 8) * 2 - 1})
    return model.train_iter(optimizers_for(model))


# ---- EMA ---------------------------------------------------------------------------------
def test_ema_is_the_moving_average_after_a_g_step():
    model = build_model(model_cfg(ema_decay=0.5))
    ema = model.nets["netG_ema"]
    assert not any(p.requires_grad for p in ema.parameters()) and not ema.training
    g0 = flat(model.nets["netG"])
    assert torch.equal(g0, flat(ema))
    model.train()
    assert not ema.training  # stays in eval mode when the model trains
    losses = step(model)
    assert set(losses) == {"D_fake_loss", "D_real_loss", "G_adv_loss"}
    g1 = flat(model.nets["netG"])
    assert not torch.equal(g0, g1)
    torch.testing.assert_close(flat(ema), 0.5 * (g0 + g1), atol=1e-6, rtol=1e-5)
    assert torch.equal(flat(ema, buffers=True), flat(model.nets["netG"], buffers=True))  # BN stats copied


def test_ema_copies_before_start_and_waits_for_the_g_step():
    model = build_model(model_cfg(ema_decay=0.9, ema_start_iters=2))
    model.current_iter = 1
    step(model)
    assert torch.equal(flat(model.nets["netG_ema"]), flat(model.nets["netG"]))  # a copy before start
    model = build_model(model_cfg(ema_decay=0.9, disc_iters=2))
    g0 = flat(model.nets["netG"])
    model.current_iter = 1  # no G step at odd iterations: neither G nor its average moves
    losses = step(model)
    assert "G_adv_loss" not in losses
    assert torch.equal(flat(model.nets["netG"]), g0) and torch.equal(flat(model.nets["netG_ema"]), g0)


def test_samples_come_from_the_average():
    model = build_model(model_cfg(ema_decay=0.5))
    with torch.no_grad():
        for p in model.nets["netG_ema"].parameters():
            p.zero_()  # an all-zero generator: tanh(0) = 0 everywhere
    vis = model.visuals()
    assert set(vis) == {"fixed_samples", "fixed_samples_ema"}
    assert torch.all(vis["fixed_samples_ema"] == 0) and vis["fixed_samples"].abs().sum() > 0
    model.setup_input({"img": torch.rand(3, 1, 8, 8)})
    model.test_iter()
    assert model.visual_items["fake"].shape == (3, 1, 8, 8) and torch.all(model.visual_items["fake"] == 0)


def test_no_ema_by_default_and_bad_values():
    assert set(build_model(model_cfg()).nets) == {"netG", "netD"}
    for bad in ({"ema_decay": 1.0}, {"ema_decay": -0.1}, {"ema_start_iters": -1}, {"ema_decy": 0.9},
                {"feature_matching": -1}, {"pack": 0}):
        with pytest.raises(ConfigError):
            build_model(model_cfg(**bad))
    model = build_model(model_cfg(ema_decay=0.9))
    with pytest.raises(ConfigError, match="not trained"):
        model.optimizer_config({"optimizer_G": {"name": "Adam", "net_names": ["netG", "netG_ema"]}}, None)


def test_state_dict_round_trip_and_file_without_ema():
    model = build_model(model_cfg(ema_decay=0.5, historical_averaging=0.01))
    step(model)
    state = copy.deepcopy(model.state_dict())
    assert set(state) == {"netG", "netD", "netG_ema", "netG_hist", "netD_hist"}
    other = build_model(model_cfg(ema_decay=0.5, historical_averaging=0.01))
    other.load_state_dict(state)
    z = torch.randn(3, 8)
    for name in ("netG", "netG_ema"):
        other.nets[name].eval(), model.nets[name].eval()
        assert torch.equal(other.nets[name](z), model.nets[name](z))
    # a state without the averages (a plain run, PaddleGAN) starts them from netG / netD
    plain = build_model(model_cfg(ema_decay=0.5, historical_averaging=0.01))
    plain.load_state_dict({"netG": state["netG"], "netD": state["netD"]})
    assert torch.equal(flat(plain.nets["netG_ema"]), flat(model.nets["netG"]))
    assert float(plain.nets["netD_hist"].penalty(plain.nets["netD"]).detach()) == 0.0


def tiny_train_cfg(total_iters, **params):
    return {
        "total_iters": total_iters, "output_dir": "unused", "seed": 3,
        "model": model_cfg(**params),
        "dataset": {"train": {"name": "digits", "num_samples": 16, "size": 8, "seed": 0, "batch_size": 4,
                              "num_workers": 0},
                    "test": {"name": "digits", "num_samples": 4, "size": 8, "seed": 1, "batch_size": 4}},
        "lr_scheduler": {"name": "MultiStepDecay", "learning_rate": 0.002, "milestones": [100]},
        "optimizer": {"optimizer_G": {"name": "Adam", "net_names": ["netG"], "beta1": 0.5},
                      "optimizer_D": {"name": "Adam", "net_names": ["netD"], "beta1": 0.5}},
        "log_config": {"interval": 2, "visual_interval": 100},
        "snapshot_config": {"interval": 2},
    }


ALL_ON = dict(ema_decay=0.9, feature_matching=1.0, historical_averaging=0.001)


def test_resume_equals_uninterrupted_run(tmp_path):
    a = assert_resume_matches(lambda n: tiny_train_cfg(n, **ALL_ON), tmp_path)[0]["nets"]
    assert set(a) == {"netG", "netD", "netG_ema", "netG_hist", "netD_hist"}
    assert float(a["netG_hist"]["count"]) == 5.0  # the initial weights + 4 G steps
    assert not torch.equal(a["netG_ema"]["model.0.weight"], a["netG"]["model.0.weight"])


def test_load_and_evaluate_only(tmp_path):
    tr = Trainer(tiny_train_cfg(2, ema_decay=0.9), device="cpu", run_dir=str(tmp_path / "t"), quiet=True)
    tr.train()
    weights = ckpt.load(str(tmp_path / "t" / "iter_2_weight.pth"))
    assert "netG_ema" in weights
    ev = Trainer(tiny_train_cfg(2, ema_decay=0.9), device="cpu", load=str(tmp_path / "t" / "iter_2_weight.pth"),
                 evaluate_only=True, run_dir=str(tmp_path / "e"), quiet=True)
    trained, loaded = tr.model.nets["netG_ema"].state_dict(), ev.model.nets["netG_ema"].state_dict()
    assert all(torch.equal(trained[k], loaded[k]) for k in trained)
    ev.evaluate()
    files = set(os.listdir(tmp_path / "e" / "eval"))
    assert {"samples_fixed_samples.png", "samples_fixed_samples_ema.png"} <= files
    # --load of a file without netG_ema: the average starts from the loaded netG
    plain = {k: v for k, v in weights.items() if k != "netG_ema"}
    ckpt.save(plain, str(tmp_path / "plain.pth"))
    ev2 = Trainer(tiny_train_cfg(2, ema_decay=0.9), device="cpu", load=str(tmp_path / "plain.pth"),
                  evaluate_only=True, run_dir=str(tmp_path / "e2"), quiet=True)
    assert torch.equal(flat(ev2.model.nets["netG_ema"]), flat(tr.model.nets["netG"]))


# ---- ImprovedGAN -------------------------------------------------------------------------
def test_all_improved_options_train_one_step():
    model = build_model(model_cfg(gen={"norm_type": "virtual_batch", "vbn_ref_size": 4},
                                  disc={"minibatch_kernels": 6, "minibatch_kernel_dim": 3},
                                  crit={"label_smoothing": 0.1}, **ALL_ON))
    g0, d0 = flat(model.nets["netG"]), flat(model.nets["netD"])
    losses = step(model)
    assert set(losses) == {"D_fake_loss", "D_real_loss", "D_hist_loss", "G_adv_loss", "G_fm_loss", "G_hist_loss"}
    assert all(v.ndim == 0 and torch.isfinite(v) and not v.requires_grad for v in losses.values())
    assert not torch.equal(g0, flat(model.nets["netG"])) and not torch.equal(d0, flat(model.nets["netD"]))
    assert float(losses["D_hist_loss"]) == 0.0  # the first step: parameters equal their average
    losses = step(model, seed=1)
    assert float(losses["D_hist_loss"]) > 0 and float(losses["G_hist_loss"]) > 0


def test_feature_matching_loss_by_hand():
    model = build_model(model_cfg(feature_matching=2.0, crit={"loss_weight": 0.0}))
    torch.manual_seed(0)
    real = torch.rand(4, 1, 8, 8) * 2 - 1
    model.setup_input({"img": real})
    net_g, net_d = model.nets["netG"], model.nets["netD"]
    d_before = copy.deepcopy(net_d)
    g_before = copy.deepcopy(net_g)
    torch.manual_seed(5)
    losses = model.train_iter(optimizers_for(model))
    # recompute: the same z (same seed), reals' features from D before its update, fakes' from D after
    torch.manual_seed(5)
    z = net_g.random_inputs(4)
    fake = g_before(z)
    _, f_real = d_before(real, return_features=True)
    d_after = copy.deepcopy(net_d)
    _, f_fake = d_after(fake, return_features=True)
    by_hand = 2.0 * ((f_real.mean(0) - f_fake.mean(0)) ** 2).mean()
    torch.testing.assert_close(losses["G_fm_loss"], by_hand.detach(), rtol=1e-4, atol=1e-6)
    assert float(losses["G_adv_loss"]) == 0.0  # loss_weight 0: feature matching alone trains G
    torch.testing.assert_close(feature_matching_loss(torch.ones(2, 3), torch.zeros(5, 3)), torch.tensor(1.0))


def test_one_sided_label_smoothing_in_the_d_step():
    model = build_model(model_cfg(crit={"label_smoothing": 0.2}))
    seen = []
    crit = model.criterionGAN
    orig = crit.get_target_tensor

    def spy(pred, is_real, is_disc=False):
        t = orig(pred, is_real, is_disc)
        seen.append((is_real, is_disc, float(t.flatten()[0])))
        return t
    crit.get_target_tensor = spy
    step(model)
    assert (True, True, pytest.approx(0.8)) in seen          # D: real target 1 - 0.2
    assert (False, True, 0.0) in seen                        # D: fake target untouched
    assert (True, False, 1.0) in seen                        # G: target 1, not smoothed


def test_feature_matching_needs_a_feature_discriminator():
    cfg = model_cfg(feature_matching=1.0)
    cfg["discriminator"] = {"name": "NLayerDiscriminator", "input_nc": 1, "ndf": 4, "n_layers": 1}
    with pytest.raises(ConfigError, match="return_features"):
        build_model(cfg)


def test_improved_gan_config_builds_and_trains_one_step():
    from ppgan.models.builder import check_model_config
    from ppgan.utils.config import load_config

    cfg = load_config(os.path.join(ROOT, "configs", "improved_gan_digits.yaml"))
    check_model_config(cfg["model"])
    model = build_model(cfg["model"])
    assert {"netG_ema", "netG_hist", "netD_hist"} <= set(model.nets)
    assert model.feature_matching > 0 and model.criterionGAN.label_smoothing > 0
    assert model.nets["netG"].vbn_ref_size > 0 and model.nets["netD"].use_minibatch
    size = cfg["model"]["generator"]["output_size"]
    model.setup_input({"img": torch.rand(4, 1, size, size) * 2 - 1})
    losses = model.train_iter(optimizers_for(model, lr=0.0002))
    assert all(torch.isfinite(v) for v in losses.values())


def test_train_step_with_every_option_reads_nothing_back(monkeypatch):
    model = build_model(model_cfg(gen={"norm_type": "virtual_batch", "vbn_ref_size": 2},
                                  disc={"minibatch_kernels": 3}, crit={"label_smoothing": 0.1}, **ALL_ON))
    opts = optimizers_for(model)
    model.setup_input({"img": torch.rand(2, 1, 8, 8)})
    model.train_iter(opts)  # Adam's lazy state
    calls = record_host_reads(monkeypatch)
    model.current_iter = 1
    model.train_iter(opts)
    assert calls == []


def test_dcdiscriminator_spectral_norm_type_normalises_every_layer():
    # norm_type 'spectral' puts spectral norm on the convs (it used to drop the norm and do nothing)
    from ppgan.models.discriminators.dcdiscriminator import DCDiscriminator

    torch.manual_seed(0)
    net = DCDiscriminator(input_nc=1, ndf=4, norm_type="spectral", input_size=16)
    x = torch.randn(8, 1, 16, 16)
    for _ in range(30):  # power iterations run in training-mode forwards
        net(x)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3 and all(hasattr(m, "weight_orig") for m in convs)
    net.eval()
    with torch.no_grad():
        net(x)
        for m in convs:
            sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
            assert abs(float(sigma) - 1.0) < 1e-2
    assert not any(hasattr(m, "weight_orig") for m in DCDiscriminator(1, 4, "batch", 16).modules())


def test_init_weights_reaches_the_raw_weight_of_spectral_normed_layers():
    from ppgan.models.discriminators.dcdiscriminator import DCDiscriminator
    from ppgan.modules.init import init_weights

    net = init_weights(DCDiscriminator(input_nc=1, ndf=4, norm_type="spectral", input_size=16), "normal", 0.02)
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            assert float(m.weight_orig.detach().std()) < 0.04  # normal(0, 0.02), not PyTorch's default init

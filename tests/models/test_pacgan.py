"""PacGAN (GANModel `params.pack`): D sees packs of real with real and fake with fake; the
config checks; one step, save/load, --evaluate-only through tools/main.py, resume."""
import os

import pytest
import torch

from ppgan.engine import Trainer
from ppgan.models import build_model
from ppgan.modules.improved_gan import pack
from ppgan.utils.errors import ConfigError

from resume_check import assert_resume_matches

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def model_cfg(m=2, input_nc=None, **params):
    return {"name": "GANModel",
            "generator": {"name": "DCGenerator", "input_nz": 8, "input_nc": 1, "output_nc": 1, "ngf": 4,
                          "output_size": 8},
            "discriminator": {"name": "DCDiscriminator", "input_nc": m if input_nc is None else input_nc,
                              "ndf": 4, "input_size": 8, "norm_type": "batch"},
            "gan_criterion": {"name": "GANLoss", "gan_mode": "vanilla"},
            "params": {"pack": m, "n_samples": 4, **params}}


def optimizers_for(model):
    out = {}
    for name in ("netG", "netD"):
        opt = torch.optim.Adam(model.nets[name].parameters(), lr=0.01, betas=(0.5, 0.999))
        opt.ppgan_net_names = (name,)
        out[name] = opt
    return out


def flat(net):
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


@pytest.mark.parametrize("m,gan_mode", [(2, "vanilla"), (4, "wgangp")])
def test_d_sees_packs_of_reals_and_packs_of_fakes(m, gan_mode):
    torch.manual_seed(0)
    cfg = model_cfg(m)
    cfg["gan_criterion"]["gan_mode"] = gan_mode
    model = build_model(cfg)
    net_d = model.nets["netD"]
    seen = []
    hook = net_d.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    real = torch.rand(8, 1, 8, 8) * 2 - 1
    model.setup_input({"img": real})
    g0, d0 = flat(model.nets["netG"]), flat(net_d)
    losses = model.train_iter(optimizers_for(model))
    hook.remove()
    expected = {"D_fake_loss", "D_real_loss", "G_adv_loss"} | ({"D_gp_loss"} if gan_mode == "wgangp" else set())
    assert set(losses) == expected and all(torch.isfinite(v) and v.ndim == 0 for v in losses.values())
    assert not torch.equal(g0, flat(model.nets["netG"])) and not torch.equal(d0, flat(net_d))
    assert all(x.shape == (8 // m, m, 8, 8) for x in seen)       # 8 images -> 8 / m packs of m channels
    fake = model.fake
    assert torch.equal(seen[0], pack(fake, m))                     # D step: fake packs (fakes only)
    assert torch.equal(seen[1], pack(real, m))                     # real packs (reals only)
    assert torch.equal(seen[1][0], torch.cat(list(real[:m])))      # consecutive reals side by side
    assert torch.equal(seen[-1], pack(fake, m))                    # G step: the same fakes, packed
    assert model.visuals()["fixed_samples"].shape == (4, 1, 8, 8)  # samples are single images


def test_pack_settings_are_checked():
    with pytest.raises(ConfigError, match="input_nc must be"):
        build_model(model_cfg(2, input_nc=1))
    with pytest.raises(ConfigError, match="pack"):
        build_model(model_cfg(0, input_nc=1))
    model = build_model(model_cfg(4))
    with pytest.raises(ConfigError, match="multiple of model.params.pack"):
        model.setup_input({"img": torch.rand(6, 1, 8, 8)})
    cond = model_cfg(2)
    cond["generator"] = {"name": "ConditionalDeepConvGenerator", "latent_dim": 8, "output_nc": 1, "size": 8,
                         "ngf": 4, "n_class": 10}
    cond["discriminator"] = {"name": "NLayerDiscriminatorWithClassification", "ndf": 4, "n_layers": 1,
                             "input_nc": 2, "n_class": 10}
    with pytest.raises(ConfigError, match="unconditional"):
        build_model(cond)


def test_save_load_round_trip():
    model = build_model(model_cfg(2))
    model.setup_input({"img": torch.rand(4, 1, 8, 8)})
    model.train_iter(optimizers_for(model))
    other = build_model(model_cfg(2))
    other.load_state_dict(model.state_dict())
    x = torch.rand(2, 2, 8, 8)
    for name in ("netG", "netD"):
        model.nets[name].eval(), other.nets[name].eval()
    z = torch.randn(3, 8)
    assert torch.equal(other.nets["netG"](z), model.nets["netG"](z))
    assert torch.equal(other.nets["netD"](x), model.nets["netD"](x))


def tiny_cfg(total_iters):
    return {
        "total_iters": total_iters, "output_dir": "unused", "seed": 2,
        "model": model_cfg(2, ema_decay=0.5),
        "dataset": {"train": {"name": "digits", "num_samples": 16, "size": 8, "seed": 0, "batch_size": 4,
                              "num_workers": 0},
                    "test": {"name": "digits", "num_samples": 4, "size": 8, "seed": 1, "batch_size": 4}},
        "lr_scheduler": {"name": "MultiStepDecay", "learning_rate": 0.002, "milestones": [100]},
        "optimizer": {"optimizer_G": {"name": "Adam", "net_names": ["netG"], "beta1": 0.5},
                      "optimizer_D": {"name": "Adam", "net_names": ["netD"], "beta1": 0.5}},
        "log_config": {"interval": 2, "visual_interval": 100},
        "snapshot_config": {"interval": 2},
    }


def test_resume_equals_uninterrupted_run(tmp_path):
    assert_resume_matches(tiny_cfg, tmp_path, ("netG", "netD", "netG_ema"))


def test_load_and_evaluate_only(tmp_path):
    tr = Trainer(tiny_cfg(2), device="cpu", run_dir=str(tmp_path / "run"), quiet=True)
    tr.train()
    ev = Trainer(tiny_cfg(2), device="cpu", load=str(tmp_path / "run" / "iter_2_weight.pth"), evaluate_only=True,
                 run_dir=str(tmp_path / "ev"), quiet=True)
    for name in ("netG", "netD", "netG_ema"):
        trained, loaded = tr.model.nets[name].state_dict(), ev.model.nets[name].state_dict()
        assert all(torch.equal(trained[k], loaded[k]) for k in trained), name
    ev.evaluate()
    files = os.listdir(tmp_path / "ev" / "eval")
    assert "samples_fixed_samples_ema.png" in files and any(f.endswith("_fake.png") for f in files)


def test_pacgan_config_builds_for_pack_2_and_4():
    from ppgan.models.builder import check_model_config
    from ppgan.utils.config import apply_overrides, load_config

    path = os.path.join(ROOT, "configs", "pacgan_digits.yaml")
    cfg = load_config(path)
    check_model_config(cfg["model"])
    model = build_model(cfg["model"])
    assert model.pack == 2 and cfg["dataset"]["train"]["batch_size"] % model.pack == 0
    cfg4 = apply_overrides(load_config(path), ["model.params.pack=4", "model.discriminator.input_nc=4"])
    model4 = build_model(cfg4["model"])
    model4.setup_input({"img": torch.rand(8, 1, 32, 32) * 2 - 1})
    losses = model4.train_iter(optimizers_for(model4))
    assert all(torch.isfinite(v) for v in losses.values())

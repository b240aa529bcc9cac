"""InfoGAN's categorical code (Chen et al., 2016) as a GANModel option: DCGenerator
`n_categorical`, the Q head `netQ`, the mutual-information losses, and their training through the
Trainer (save/load, --evaluate-only, resume)."""
import os

import pytest
import torch
import torch.nn.functional as F

from ppgan.engine import Trainer
from ppgan.engine import checkpoint as ckpt
from ppgan.models import build_model
from ppgan.models.generators.dcgenerator import DCGenerator
from ppgan.utils.errors import ConfigError

from resume_check import assert_resume_matches

from test_improved_gan import flat, model_cfg, tiny_train_cfg

K = 3
INFO_GEN = {"n_categorical": K}


def info_train_cfg(total_iters, **params):
    cfg = tiny_train_cfg(total_iters, **params)
    cfg["model"]["generator"].update(INFO_GEN)
    cfg["optimizer"]["optimizer_D"]["net_names"] = ["netD", "netQ"]
    return cfg


def optimizers(model, lr=0.01):
    out = {}
    for key, names in (("netG", ("netG",)), ("netD", ("netD", "netQ"))):
        params = [p for n in names for p in model.nets[n].parameters()]
        opt = torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))
        opt.ppgan_net_names = names
        out[key] = opt
    return out


def test_generator_latents_carry_a_uniform_one_hot_code():
    g = DCGenerator(input_nz=5, input_nc=1, output_nc=1, ngf=4, output_size=8, n_categorical=4)
    z = g.random_inputs(2000, generator=torch.Generator().manual_seed(0))
    assert z.shape == (2000, 9, 1, 1)
    code = z[:, 5:, 0, 0]
    assert torch.equal(code.sum(1), torch.ones(2000)) and set(code.unique().tolist()) == {0.0, 1.0}
    counts = torch.bincount(g.code_of(z), minlength=4).float() / 2000
    assert torch.all((counts - 0.25).abs() < 0.04)
    noise = torch.randn(3, 5)
    z2 = g.with_code(noise, torch.tensor([2, 0, 3]))
    assert torch.equal(g.code_of(z2), torch.tensor([2, 0, 3])) and torch.equal(z2[:, :5, 0, 0], noise)
    assert g(z2).shape == (3, 1, 8, 8)
    # without the option the generator is PaddleGAN's (input_nz channels in, no code)
    plain = DCGenerator(input_nz=5, input_nc=1, output_nc=1, ngf=4, output_size=8)
    assert plain.model[0].in_channels == 5 and plain.random_inputs(2).shape == (2, 5, 1, 1)
    with pytest.raises(ConfigError):
        DCGenerator(input_nz=5, input_nc=1, output_nc=1, n_categorical=1)


def test_info_losses_are_the_code_cross_entropy_and_every_net_learns():
    model = build_model(model_cfg(gen=INFO_GEN, info_weight=0.5))
    q = model.nets["netQ"]
    assert q[-1].out_features == K
    torch.manual_seed(0)
    model.setup_input({"img": torch.rand(6, 1, 8, 8) * 2 - 1})
    before = {n: flat(model.nets[n]) for n in ("netG", "netD", "netQ")}
    # the D step's info loss by hand, from the same draws
    torch.manual_seed(1)
    z = model.nets["netG"].random_inputs(6)
    with torch.no_grad():
        _, feat = model.nets["netD"](model.nets["netG"](z), return_features=True)
        expected = 0.5 * F.cross_entropy(q(feat), model.nets["netG"].code_of(z))
    torch.manual_seed(1)
    losses = model.train_iter(optimizers(model))
    assert set(losses) == {"D_fake_loss", "D_real_loss", "D_info_loss", "G_adv_loss", "G_info_loss"}
    assert all(v.ndim == 0 and torch.isfinite(v) and not v.requires_grad for v in losses.values())
    assert float(losses["D_info_loss"]) == pytest.approx(float(expected), rel=1e-5)
    for n, b in before.items():
        assert not torch.equal(b, flat(model.nets[n])), f"{n} did not move"


def test_q_learns_the_code_on_a_fixed_generator():
    """Minimising the info loss makes the code recoverable: Q's accuracy rises well above chance."""
    torch.manual_seed(0)
    model = build_model(model_cfg(gen=INFO_GEN))
    opts = optimizers(model, lr=0.01)
    for i in range(40):
        model.setup_input({"img": torch.rand(16, 1, 8, 8) * 2 - 1})
        model.train_iter(opts)
    g, d, q = model.nets["netG"], model.nets["netD"], model.nets["netQ"]
    with torch.no_grad():
        z = g.random_inputs(300)
        _, feat = d(g(z), return_features=True)
        acc = float((q(feat).argmax(1) == g.code_of(z)).float().mean())
    assert acc > 0.8


def test_info_config_errors():
    with pytest.raises(ConfigError, match="netQ"):  # netQ without an optimizer
        Trainer(tiny_train_cfg(1, **{}) | {"model": model_cfg(gen=INFO_GEN)}, device="cpu", quiet=True)
    with pytest.raises(ConfigError, match="unconditional"):
        build_model(model_cfg(gen=INFO_GEN, disc={"input_nc": 2}, pack=2))
    with pytest.raises(ConfigError, match="info_weight"):
        build_model(model_cfg(gen=INFO_GEN, info_weight=-1))


def test_save_load_evaluate_only_and_resume(tmp_path):
    a = assert_resume_matches(lambda n: info_train_cfg(n, ema_decay=0.9), tmp_path)[0]["nets"]
    assert set(a) == {"netG", "netD", "netQ", "netG_ema"}
    weights = str(tmp_path / "a" / "iter_4_weight.pth")
    ev = Trainer(info_train_cfg(4, ema_decay=0.9), device="cpu", load=weights, evaluate_only=True,
                 run_dir=str(tmp_path / "e"), quiet=True)
    saved = ckpt.load(weights)
    assert all(torch.equal(saved["netQ"][k], v) for k, v in ev.model.nets["netQ"].state_dict().items())
    ev.evaluate()
    assert "samples_fixed_samples_ema.png" in os.listdir(tmp_path / "e" / "eval")

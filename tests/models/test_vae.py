"""VAEModel (Kingma & Welling, 2014): the ELBO's terms against hand formulas, one training step,
save/load, --evaluate-only and resume through the Trainer, the GAN tools reading a VAE weight
file (samples and the 2-D latent plane), the demo config and bad settings."""
import math
import os

import pytest
import torch

from ppgan.engine import Trainer
from ppgan.engine import checkpoint as ckpt
from ppgan.models import build_model
from ppgan.models.generators import build_generator
from ppgan.models.vae_model import VAEModel, gaussian_kl, recon_nll, reparameterize
from ppgan.utils.errors import ConfigError

from resume_check import assert_resume_matches

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def model_cfg(size=8, latent_dim=2, arch="mlp", **params):
    enc_h, dec_h = ([16, 8], [8, 16]) if arch == "mlp" else ([4, 8, 16], [16, 8, 4])
    return {"name": "VAEModel",
            "encoder": {"name": "VAEEncoder", "input_nc": 1, "size": size, "latent_dim": latent_dim,
                        "hidden_dims": enc_h, "arch": arch},
            "generator": {"name": "VAEDecoder", "latent_dim": latent_dim, "output_nc": 1, "size": size,
                          "hidden_dims": dec_h, "arch": arch},
            "params": {"n_samples": 4, "samples_every_row": 2, **params}}


def optimizers_for(model, lr=1e-2):
    opt = torch.optim.Adam([p for n in ("netE", "netG") for p in model.nets[n].parameters()], lr=lr)
    opt.ppgan_net_names = ("netE", "netG")
    return {"optimizer_G": opt}


def flat(net):
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(5, 3), torch.randn(5, 3)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    expected = torch.distributions.kl_divergence(q, p).sum(1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), expected)
    assert torch.allclose(gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)), torch.zeros(2))  # q = prior


def test_reparameterisation_by_hand_and_gradients():
    mu = torch.tensor([[0.5, -1.0]], requires_grad=True)
    logvar = torch.tensor([[math.log(4.0), 0.0]], requires_grad=True)
    eps = torch.tensor([[1.0, -2.0]])
    z = reparameterize(mu, logvar, eps)
    torch.testing.assert_close(z, torch.tensor([[0.5 + 2.0 * 1.0, -1.0 - 2.0]]))
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones(1, 2))
    torch.testing.assert_close(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * eps)  # dz/dlogvar


def test_reconstruction_terms_by_hand():
    torch.manual_seed(1)
    a, x = torch.randn(2, 1, 3, 3), torch.rand(2, 1, 3, 3) * 2 - 1
    t = (x + 1) / 2
    p = torch.sigmoid(a)
    bce = -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).flatten(1).sum(1)
    torch.testing.assert_close(recon_nll("bce", a, x), bce)
    gauss = ((x - (2 * p - 1)) ** 2).flatten(1).sum(1) / (2 * 0.25 ** 2)  # tanh(a/2) = 2 sigmoid(a) - 1
    torch.testing.assert_close(recon_nll("gaussian", a, x, sigma=0.25), gauss)


@pytest.mark.parametrize("arch,recon", [("mlp", "bce"), ("conv", "gaussian")])
def test_one_iteration(arch, recon):
    torch.manual_seed(0)
    model = build_model(model_cfg(arch=arch, recon_loss=recon, beta=0.5))
    opts = optimizers_for(model)
    e0, g0 = flat(model.nets["netE"]), flat(model.nets["netG"])
    model.setup_input({"img": torch.rand(4, 1, 8, 8) * 2 - 1, "class_id": torch.arange(4)})
    losses = model.train_iter(opts)
    assert set(losses) == {"recon_loss", "kl_loss", "neg_elbo"}
    assert all(v.ndim == 0 and torch.isfinite(v) and not v.requires_grad for v in losses.values())
    torch.testing.assert_close(losses["neg_elbo"], losses["recon_loss"] + losses["kl_loss"])
    assert losses["kl_loss"] >= 0
    assert not torch.equal(e0, flat(model.nets["netE"])) and not torch.equal(g0, flat(model.nets["netG"]))
    vis = model.visuals()
    assert vis["fixed_samples"].shape == (4, 1, 8, 8) and vis["reconstruction"].shape == (4, 1, 8, 8)
    assert vis["fixed_samples"].abs().max() <= 1


def test_training_lowers_the_negative_elbo():
    torch.manual_seed(2)
    model = build_model(model_cfg())
    opts = optimizers_for(model, lr=1e-2)
    patterns = (torch.rand(2, 1, 8, 8) > 0.5).float() * 2 - 1  # two binary images, four copies each
    model.setup_input({"img": patterns.repeat(4, 1, 1, 1)})
    first = model.train_iter(opts)["neg_elbo"]
    for _ in range(40):
        last = model.train_iter(opts)["neg_elbo"]
    assert last < 0.5 * first


def test_beta_weights_only_the_kl_in_the_loss():
    torch.manual_seed(3)
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    grads = {}
    for beta in (0.0, 1.0):
        torch.manual_seed(3)
        model = build_model(model_cfg(beta=beta))
        model.setup_input({"img": x})
        torch.manual_seed(4)  # the same eps
        loss, losses, _ = model._losses(model.real)
        loss.backward()
        grads[beta] = model.nets["netE"].head.weight.grad.clone()
        expected = losses["recon_loss"] + beta * losses["kl_loss"]
        torch.testing.assert_close(loss, expected)
    assert not torch.equal(grads[0.0], grads[1.0])


def test_save_load_round_trip():
    torch.manual_seed(0)
    a = build_model(model_cfg())
    a.setup_input({"img": torch.rand(4, 1, 8, 8) * 2 - 1})
    a.train_iter(optimizers_for(a))
    b = build_model(model_cfg())
    b.load_state_dict(a.state_dict())
    x, z = torch.rand(3, 1, 8, 8) * 2 - 1, torch.randn(3, 2)
    for m in (a, b):
        m.eval()
    torch.testing.assert_close(a.nets["netE"](x), b.nets["netE"](x), rtol=0, atol=0)
    torch.testing.assert_close(a.nets["netG"](z), b.nets["netG"](z), rtol=0, atol=0)


def tiny_train_cfg(total_iters, with_test=False):
    cfg = {
        "total_iters": total_iters, "output_dir": "unused", "seed": 5,
        "model": model_cfg(),
        "dataset": {"train": {"name": "digits", "num_samples": 16, "size": 8, "seed": 0, "batch_size": 4,
                              "num_workers": 0, "return_label": False}},
        "lr_scheduler": {"name": "ConstantLR", "learning_rate": 0.001},
        "optimizer": {"optimizer_G": {"name": "Adam", "net_names": ["netE", "netG"]}},
        "log_config": {"interval": 2, "visual_interval": 100},
        "snapshot_config": {"interval": 2},
    }
    if with_test:
        cfg["dataset"]["test"] = {"name": "digits", "num_samples": 8, "size": 8, "seed": 1, "batch_size": 4,
                                  "return_label": False}
        cfg["validate"] = {"interval": 100, "metrics": {"psnr": {"name": "PSNR", "min_max": [-1, 1]}}}
    return cfg


def test_resume_equals_uninterrupted_run(tmp_path):
    a, _ = assert_resume_matches(tiny_train_cfg, tmp_path, ("netE", "netG"))
    assert not torch.equal(a["nets"]["netG"]["model.0.weight"],
                           ckpt.load(str(tmp_path / "b" / "iter_2_checkpoint.pth"))["nets"]["netG"]["model.0.weight"])


def test_evaluate_only_and_gan_tools_read_the_weights(tmp_path):
    from ppgan.apps.gan_predictor import GANPredictor

    Trainer(tiny_train_cfg(2, with_test=True), device="cpu", run_dir=str(tmp_path / "run"), quiet=True).train()
    weight = str(tmp_path / "run" / "iter_2_weight.pth")
    ev = Trainer(tiny_train_cfg(2, with_test=True), device="cpu", load=weight, evaluate_only=True,
                 run_dir=str(tmp_path / "ev"), quiet=True)
    results, paths = ev.evaluate()
    assert set(results) == {"psnr"} and math.isfinite(results["psnr"]) and results["psnr"] > 0
    names = sorted(os.listdir(tmp_path / "ev" / "eval"))
    assert any(n.endswith("_rec.png") for n in names) and any(n.endswith("fixed_samples.png") for n in names)
    pred = GANPredictor(weight_path=weight, device="cpu")  # the decoder is netG, sampled from the prior
    out = pred.run(n=4, steps=2, plane=3, output=str(tmp_path / "gen"))
    assert set(out) == {"samples", "interpolation", "latent_plane"} and os.path.isfile(out["latent_plane"])
    plane = pred.latent_plane(3)
    assert plane.shape == (9, 1, 8, 8)
    model = build_model(model_cfg())
    ckpt.load_weights(model, weight)
    model.eval()
    torch.testing.assert_close(plane, model.nets["netG"](model.nets["netG"].latent_grid(3)))


def test_demo_config_builds():
    from ppgan.models.builder import check_model_config
    from ppgan.utils.config import load_config

    cfg = load_config(os.path.join(ROOT, "configs", "vae_digits.yaml"))
    check_model_config(cfg["model"])
    model = build_model(cfg["model"])
    assert isinstance(model, VAEModel) and set(model.nets) == {"netE", "netG"}
    g = model.nets["netG"]
    assert g.latent_dim == 2 and g.latent_grid(16).shape == (256, 2)
    gan_cfg = load_config(os.path.join(ROOT, "configs", "gan_2d_latent_digits.yaml"))
    gan_g = build_generator(gan_cfg["model"]["generator"])
    torch.testing.assert_close(g.latent_grid(16), gan_g.latent_grid(16))  # the same plane as the 2-D GAN's
    assert g(g.random_inputs(2)).shape == (2, 1, 32, 32)


@pytest.mark.parametrize("change", [{"recon_loss": "l3"}, {"beta": -1}, {"sigma": 0}, {"betta": 1.0},
                                    {"latent_mismatch": True}, {"arch": "rnn"}, {"conv_size": 10}])
def test_bad_settings(change):
    cfg = model_cfg()
    if "latent_mismatch" in change:
        cfg["generator"]["latent_dim"] = 3
    elif "arch" in change:
        cfg["encoder"]["arch"] = change["arch"]
    elif "conv_size" in change:
        cfg = model_cfg(size=change["conv_size"], arch="conv")
    else:
        cfg["params"].update(change)
    with pytest.raises(ConfigError):
        build_model(cfg)


def test_decoder_image_is_the_bernoulli_mean():
    dec = build_generator(model_cfg()["generator"])
    z = torch.randn(3, 2)
    a = dec.logits(z)
    torch.testing.assert_close(dec(z), 2 * torch.sigmoid(a) - 1)
    # the BCE term's gradient in the logits is zero exactly where the target is that mean
    a = a.detach().requires_grad_(True)
    recon_nll("bce", a, dec(z).detach()).sum().backward()
    assert a.grad.abs().max() < 1e-6

"""GAN losses, penalties and the GAN model's update order."""
import math

import pytest
import torch

from ppgan.models import build_model
from ppgan.models.criterions import GANLoss, build_criterion, gradient_penalty


def test_modes_match_their_formulas():
    pred = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    sp = torch.nn.functional.softplus
    assert torch.allclose(GANLoss("vanilla")(pred, True), sp(-pred).mean())
    assert torch.allclose(GANLoss("vanilla")(pred, False), sp(pred).mean())
    assert torch.allclose(GANLoss("lsgan")(pred, True), ((pred - 1) ** 2).mean())
    assert torch.allclose(GANLoss("wgangp")(pred, True), -pred.mean())
    assert torch.allclose(GANLoss("wgan")(pred, False), pred.mean())
    hinge = GANLoss("hinge")
    assert torch.allclose(hinge(pred, True, is_disc=True), torch.relu(1 - pred).mean())
    assert torch.allclose(hinge(pred, False, is_disc=True), torch.relu(1 + pred).mean())
    assert torch.allclose(hinge(pred, True), -pred.mean())
    assert torch.allclose(GANLoss("vanilla", loss_weight=3.0)(pred, True), 3 * sp(-pred).mean())
    with pytest.raises(ValueError, match="gan_mode must be one of"):
        GANLoss("lsgann")


def test_label_smoothing_and_noise_only_in_d_step():
    pred = torch.zeros(1000)
    smooth = GANLoss("lsgan", label_smoothing=0.1)
    assert torch.allclose(smooth(pred, True, is_disc=True), torch.tensor(0.81))   # target 0.9
    assert torch.allclose(smooth(pred, True), torch.tensor(1.0))                  # G step: plain
    noisy = GANLoss("lsgan", label_noise=0.2)
    t_real = noisy.get_target_tensor(pred, True, is_disc=True)
    t_fake = noisy.get_target_tensor(pred, False, is_disc=True)
    assert 0.8 <= t_real.min() and t_real.max() <= 1.0 and t_real.std() > 0.03
    assert 0.0 <= t_fake.min() and t_fake.max() <= 0.2


def test_gradient_penalty_is_zero_for_unit_gradient_and_positive_otherwise():
    w = torch.tensor([0.6, 0.8])  # |w| = 1 -> D(x) = x.w has unit gradient everywhere
    d = lambda x: (x * w).sum(1)  # noqa: E731
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    assert gradient_penalty(d, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    d2 = lambda x: 3 * (x * w).sum(1)  # noqa: E731  |grad| = 3 -> (3-1)^2 * 10
    assert gradient_penalty(d2, real, fake).item() == pytest.approx(40.0)


def _tiny_model(gan_mode="vanilla", conditional=False, **params):
    if conditional:
        g = {"name": "ConditionalDeepConvGenerator", "latent_dim": 8, "output_nc": 1, "size": 16, "ngf": 4, "n_class": 10}
        d = {"name": "NLayerDiscriminatorWithClassification", "input_nc": 1, "n_class": 10, "ndf": 4, "n_layers": 2,
             "norm_type": "none" if gan_mode == "wgangp" else "batch"}
    else:
        g = {"name": "DCGenerator", "input_nz": 8, "input_nc": 1, "output_nc": 1, "ngf": 4, "output_size": 16}
        d = {"name": "DCDiscriminator", "input_nc": 1, "ndf": 4, "input_size": 16,
             "norm_type": "none" if gan_mode == "wgangp" else "batch"}
    model = build_model({"name": "GANModel", "generator": g, "discriminator": d,
                         "gan_criterion": {"name": "GANLoss", "gan_mode": gan_mode}, "params": params})
    opts = {}
    for name, net in (("optimizer_G", "netG"), ("optimizer_D", "netD")):
        opt = torch.optim.Adam(model.nets[net].parameters(), lr=1e-3)
        opt.ppgan_net_names, opt.ppgan_clip = (net,), None
        opts[name] = opt
    return model, opts


@pytest.mark.parametrize("gan_mode", ["vanilla", "lsgan", "wgan", "wgangp", "hinge"])
@pytest.mark.parametrize("conditional", [False, True])
def test_one_step_finite_losses_and_weights_move(gan_mode, conditional):
    torch.manual_seed(0)
    model, opts = _tiny_model(gan_mode, conditional)
    before = {n: [p.detach().clone() for p in net.parameters()] for n, net in model.nets.items()}
    batch = {"img": torch.rand(4, 1, 16, 16) * 2 - 1}
    if conditional:
        batch["class_id"] = torch.tensor([0, 1, 2, 3])
    model.setup_input(batch)
    losses = model.train_iter(opts)
    expected = {"D_fake_loss", "D_real_loss", "G_adv_loss"} | ({"D_gp_loss"} if gan_mode == "wgangp" else set())
    assert set(losses) == expected and all(math.isfinite(v) for v in losses.values())
    for name, net in model.nets.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters())), f"{name} did not move"
    if gan_mode == "wgan":
        assert max(p.abs().max().item() for p in model.nets["netD"].parameters()) <= 0.01 + 1e-7


def test_generator_step_leaves_discriminator_without_gradients():
    model, opts = _tiny_model()
    model.setup_input({"img": torch.rand(4, 1, 16, 16)})
    seen = {}
    d_step, g_step = opts["optimizer_D"].step, opts["optimizer_G"].step

    def spy_d(*a, **k):
        out = d_step(*a, **k)
        seen["after_d"] = [p.grad.clone() for p in model.nets["netD"].parameters()]
        return out

    def spy_g(*a, **k):  # at the G step, D took no new gradient and was frozen
        seen["at_g"] = [p.grad.clone() for p in model.nets["netD"].parameters()]
        seen["g_grads"] = [p.grad for p in model.nets["netG"].parameters()]
        return g_step(*a, **k)

    opts["optimizer_D"].step, opts["optimizer_G"].step = spy_d, spy_g
    model.train_iter(opts)
    assert all(torch.equal(a, b) for a, b in zip(seen["after_d"], seen["at_g"]))
    assert all(g is not None and g.abs().sum() > 0 for g in seen["g_grads"][:1])
    assert all(p.requires_grad for p in model.nets["netD"].parameters())  # restored afterwards


def test_disc_iters_skips_generator_steps():
    model, opts = _tiny_model(disc_iters=3)
    model.setup_input({"img": torch.rand(4, 1, 16, 16)})
    keys = []
    for it in range(4):
        model.current_iter = it
        keys.append("G_adv_loss" in model.train_iter(opts))
    assert keys == [True, False, False, True]


def test_unknown_model_param_is_rejected():
    from ppgan.utils.errors import ConfigError

    with pytest.raises(ConfigError, match="did you mean disc_iters"):
        _tiny_model(disc_iter=2)


def test_pixel_losses():
    a, b = torch.zeros(2, 3), torch.ones(2, 3)
    assert build_criterion({"name": "L1Loss", "loss_weight": 2.0})(a, b).item() == 2.0
    assert build_criterion({"name": "MSELoss", "reduction": "sum"})(a, b).item() == 6.0
    assert build_criterion({"name": "CharbonnierLoss", "eps": 0.0})(a, 2 * b).item() == pytest.approx(2.0)

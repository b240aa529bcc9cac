"""pix2pix, CycleGAN and U-GAT-IT models: one training step on tiny nets (exact loss keys, finite,
every net moves), checkpoint round trips, inference visuals; the U-GAT-IT discriminator; ImagePool."""
import copy

import pytest
import torch

from ppgan.engine import checkpoint as ckpt
from ppgan.models import build_model
from ppgan.models.discriminators import UGATITDiscriminator
from ppgan.models.ugatit_model import clip_rho_
from ppgan.solver import build_optimizer
from ppgan.utils.errors import ConfigError, PPGANError
from ppgan.utils.image_pool import ImagePool

SIZE = 32



PIX2PIX = {
    "name": "Pix2PixModel",
    "generator": {"name": "UnetGenerator", "norm_type": "batch", "input_nc": 3, "output_nc": 3,
                  "num_downs": 5, "ngf": 8},
    "discriminator": {"name": "NLayerDiscriminator", "ndf": 8, "n_layers": 3, "input_nc": 6, "norm_type": "batch"},
    "direction": "a2b",
    "pixel_criterion": {"name": "L1Loss", "loss_weight": 100},
    "gan_criterion": {"name": "GANLoss", "gan_mode": "vanilla"},
    "to_static": False,
}
CYCLEGAN = {
    "name": "CycleGANModel",
    "generator": {"name": "ResnetGenerator", "output_nc": 3, "n_blocks": 1, "ngf": 8, "norm_type": "instance",
                  "input_nc": 3},
    "discriminator": {"name": "NLayerDiscriminator", "ndf": 8, "n_layers": 2, "norm_type": "instance", "input_nc": 3},
    "cycle_criterion": {"name": "L1Loss"},
    "idt_criterion": {"name": "L1Loss", "loss_weight": 0.5},
    "gan_criterion": {"name": "GANLoss", "gan_mode": "lsgan"},
    "pool_size": 50,
}
UGATIT = {
    "name": "UGATITModel",
    "generator": {"name": "ResnetUGATITGenerator", "input_nc": 3, "output_nc": 3, "ngf": 8, "n_blocks": 1,
                  "img_size": SIZE, "light": True},
    "discriminator_g": {"name": "UGATITDiscriminator", "input_nc": 3, "ndf": 8, "n_layers": 5},
    "discriminator_l": {"name": "UGATITDiscriminator", "input_nc": 3, "ndf": 8, "n_layers": 4},
    "l1_criterion": {"name": "L1Loss"},
    "mse_criterion": {"name": "MSELoss"},
    "bce_criterion": {"name": "BCEWithLogitsLoss"},
    "adv_weight": 1.0, "cycle_weight": 10.0, "identity_weight": 10.0, "cam_weight": 1000.0,
}
UGATIT_P2C = dict(UGATIT, generator={"name": "ResnetUGATITP2CGenerator", "input_nc": 3, "output_nc": 3, "ngf": 8,
                                     "n_blocks": 1, "img_size": SIZE, "light": True})

# (config, optimizer groups as in PaddleGAN's YAML, expected loss keys, expected visuals)
CASES = {
    "pix2pix": (PIX2PIX, {"optimG": ["netG"], "optimD": ["netD"]},
                {"D_fake_loss", "D_real_loss", "G_adv_loss", "G_L1_loss"}, {"real_A", "fake_B", "real_B"}),
    "cyclegan": (CYCLEGAN, {"optimG": ["netG_A", "netG_B"], "optimD": ["netD_A", "netD_B"]},
                 {"G_idt_A_loss", "G_idt_B_loss", "G_A_adv_loss", "G_B_adv_loss", "G_A_cycle_loss",
                  "G_B_cycle_loss", "D_A_loss", "D_B_loss"},
                 {"real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"}),
    "ugatit": (UGATIT, {"optimG": ["genA2B", "genB2A"], "optimD": ["disGA", "disGB", "disLA", "disLB"]},
               {"discriminator_loss", "generator_loss", "G_adv_loss", "G_cycle_loss", "G_identity_loss",
                "G_cam_loss"}, {"real_A", "fake_A2B", "real_B", "fake_B2A"}),
}
CASES["ugatit_p2c"] = (UGATIT_P2C,) + CASES["ugatit"][1:]


def make_optimizers(model, groups, lr=2e-3):
    opts = {}
    for name, nets in groups.items():
        params = [p for n in nets for p in model.nets[n].parameters() if p.requires_grad]
        opt = build_optimizer({"name": "Adam", "beta1": 0.5}, params, lr)
        opt.ppgan_net_names = tuple(nets)
        opts[name] = opt
    return opts


def batch(seed=0, n=2):
    g = torch.Generator().manual_seed(seed)
    return {"A": torch.rand(n, 3, SIZE, SIZE, generator=g) * 2 - 1, "B": torch.rand(n, 3, SIZE, SIZE, generator=g) * 2 - 1,
            "A_path": [f"a{i}.png" for i in range(n)], "B_path": [f"b{i}.png" for i in range(n)]}


def build(cfg, seed=0):
    torch.manual_seed(seed)
    return build_model(copy.deepcopy(cfg))


@pytest.mark.parametrize("case", sorted(CASES))
def test_train_iter_losses_and_updates(case):
    cfg, groups, loss_keys, _ = CASES[case]
    model = build(cfg)
    opts = make_optimizers(model, groups)
    # trainable parameters (PaddleGAN's instance norm has fixed, non-trainable affine ones)
    before = {n: {k: p.detach().clone() for k, p in net.named_parameters() if p.requires_grad}
              for n, net in model.nets.items()}
    model.setup_input(batch())
    losses = model.train_iter(opts)
    assert set(losses) == loss_keys
    assert all(torch.is_tensor(v) and v.ndim == 0 and not v.requires_grad and torch.isfinite(v)
               for v in losses.values()), losses
    for name, net in model.nets.items():
        moved = {k for k, p in net.named_parameters() if k in before[name] and not torch.equal(p, before[name][k])}
        # U-GAT-IT's rho / w_gamma / w_beta are clipped to [0, 1] and may stay on a bound;
        # Photo2Cartoon's content FCs (c_gamma, c_beta) are gated by w_gamma / w_beta, which
        # start at 0, so they get no gradient in the first step.
        still = {k for k in before[name] if k not in moved and not k.endswith(("rho", "w_gamma", "w_beta"))
                 and ".c_gamma." not in k and ".c_beta." not in k}
        assert not still, f"{case}: {name} parameters did not move: {sorted(still)[:5]}"
    for name, net in model.nets.items():  # D frozen in the G step is unfrozen again
        assert {k for k, p in net.named_parameters() if p.requires_grad} == set(before[name])


@pytest.mark.parametrize("case", sorted(CASES))
def test_state_dict_round_trip_and_test_iter(case, tmp_path):
    cfg, groups, _, visual_keys = CASES[case]
    model = build(cfg, seed=0)
    model.setup_input(batch())
    model.train_iter(make_optimizers(model, groups))
    model.setup_input(batch(seed=1))
    model.test_iter()
    visuals = model.visuals()
    assert set(visuals) == visual_keys
    assert all(v.shape == (2, 3, SIZE, SIZE) and not v.requires_grad for v in visuals.values())
    assert all(v.abs().max() <= 1 for k, v in visuals.items() if not k.startswith("real"))

    other = build(cfg, seed=1)
    other.load_state_dict(model.state_dict())
    other.setup_input(batch(seed=1))
    other.test_iter()
    for k in visual_keys:
        assert torch.equal(other.visuals()[k], visuals[k]), k

    path = ckpt.save(ckpt.weight_file_dict(model, cfg), str(tmp_path / "w.pth"))
    third = build(cfg, seed=2)
    assert set(ckpt.load_weights(third, path)) == set(model.nets)
    third.setup_input(batch(seed=1))
    third.test_iter()
    for k in visual_keys:
        assert torch.equal(third.visuals()[k], visuals[k]), k


def test_pix2pix_direction():
    batch_ = batch()
    a2b, b2a = build(PIX2PIX), build(dict(PIX2PIX, direction="b2a"))
    a2b.setup_input(batch_)
    b2a.setup_input(batch_)
    assert torch.equal(a2b.real_A, batch_["A"]) and torch.equal(a2b.real_B, batch_["B"])
    assert torch.equal(b2a.real_A, batch_["B"]) and torch.equal(b2a.real_B, batch_["A"])
    assert b2a.image_paths == batch_["B_path"]
    assert build(dict(PIX2PIX, direction="BtoA")).direction == "b2a"
    with pytest.raises(ConfigError, match="direction must be 'a2b' or 'b2a'"):
        build(dict(PIX2PIX, direction="AtoC"))


def test_pix2pix_discriminator_is_conditional(monkeypatch):
    model = build(PIX2PIX)
    seen = []
    real_forward = model.nets["netD"].forward
    monkeypatch.setattr(model.nets["netD"], "forward", lambda x: seen.append(x.shape) or real_forward(x))
    model.setup_input(batch())
    model.train_iter(make_optimizers(model, CASES["pix2pix"][1]))
    assert seen and all(s == (2, 6, SIZE, SIZE) for s in seen)


def test_inference_only_models_and_single_domain_input():
    for cfg, key in ((PIX2PIX, "fake_B"), (CYCLEGAN, "fake_B"), (UGATIT, "fake_A2B")):
        cfg = {k: v for k, v in cfg.items() if not k.startswith("discriminator")}
        model = build(cfg)
        assert not any(n.startswith(("netD", "dis")) for n in model.nets)
        model.setup_input({"A": batch()["A"], "A_path": ["x.png", "y.png"]})
        model.test_iter()
        assert model.visuals()[key].shape == (2, 3, SIZE, SIZE)
    model = build(PIX2PIX)
    model.setup_input({"A": batch()["A"]})
    with pytest.raises(PPGANError, match="needs both 'A' and 'B'"):
        model.train_iter({})


def test_missing_criterion_is_a_config_error():
    with pytest.raises(ConfigError, match="gan_criterion"):
        build({k: v for k, v in PIX2PIX.items() if k != "gan_criterion"})
    with pytest.raises(ConfigError, match="cycle_criterion"):
        build({k: v for k, v in CYCLEGAN.items() if k != "cycle_criterion"})


def test_cyclegan_without_identity_and_split_optimizers():
    cfg = {k: v for k, v in CYCLEGAN.items() if k != "idt_criterion"}
    model = build(cfg)
    opts = make_optimizers(model, {"gA": ["netG_A"], "gB": ["netG_B"], "d": ["netD_A", "netD_B"]})
    before = model.nets["netG_B"].model[1].weight.detach().clone()
    model.setup_input(batch())
    losses = model.train_iter(opts)
    assert "G_idt_A_loss" not in losses and len(losses) == 6
    assert not torch.equal(before, model.nets["netG_B"].model[1].weight)


def test_cyclegan_pool_is_checkpointed():
    cfg = dict(CYCLEGAN, pool_size=3)
    model = build(cfg)
    opts = make_optimizers(model, CASES["cyclegan"][1])
    for seed in range(2):
        model.setup_input(batch(seed))
        model.train_iter(opts)
    state = model.state_dict()
    assert state["fake_A_pool"]["images"].shape == (3, 3, SIZE, SIZE)
    other = build(cfg, seed=1)
    other.load_state_dict(state)
    assert torch.equal(other.fake_B_pool.state_dict()["images"], state["fake_B_pool"]["images"])
    other.load_state_dict(ckpt.weight_file_dict(model, cfg))  # weight files carry no pools
    assert len(other.fake_A_pool) == 3


def _mixing_weights(net):
    return [p for n, p in net.named_parameters() if n.endswith(("rho", "w_gamma", "w_beta"))]


def test_ugatit_clips_rho_after_the_generator_step():
    model = build(UGATIT)
    opts = make_optimizers(model, CASES["ugatit"][1])
    gens = (model.nets["genA2B"], model.nets["genB2A"])
    with torch.no_grad():
        for net in gens:
            for i, p in enumerate(_mixing_weights(net)):
                p.fill_(1.5 if i % 2 else -0.5)
    model.setup_input(batch())
    model.train_iter(opts)
    weights = [p for net in gens for p in _mixing_weights(net)]
    assert weights and all(p.min() >= 0 and p.max() <= 1 for p in weights)
    assert any(p.min() == 0 for p in weights) and any(p.max() == 1 for p in weights)


def test_clip_rho_covers_photo2cartoon_blend_weights():
    gen = build(UGATIT_P2C, seed=0).nets["genA2B"]
    names = [n for n, _ in gen.named_parameters() if n.endswith(("rho", "w_gamma", "w_beta"))]
    assert any(n.endswith("w_gamma") for n in names) and any(n.endswith("rho") for n in names)
    with torch.no_grad():
        for p in _mixing_weights(gen):
            p.uniform_(-2, 2)
    clip_rho_(gen)
    assert all(p.min() >= 0 and p.max() <= 1 for p in _mixing_weights(gen))


def test_ugatit_loss_weights_scale_the_terms():
    losses = {}
    for w in (1.0, 2.0):
        model = build(dict(UGATIT, cam_weight=1000.0 * w, cycle_weight=10.0 * w))
        model.setup_input(batch())
        losses[w] = {k: float(v) for k, v in model.train_iter(make_optimizers(model, CASES["ugatit"][1])).items()}
    assert losses[2.0]["G_cam_loss"] == pytest.approx(2 * losses[1.0]["G_cam_loss"], rel=1e-4)
    assert losses[2.0]["G_cycle_loss"] == pytest.approx(2 * losses[1.0]["G_cycle_loss"], rel=1e-4)
    assert losses[1.0]["G_adv_loss"] == pytest.approx(losses[2.0]["G_adv_loss"], rel=1e-4)


# ---- U-GAT-IT discriminator ----------------------------------------------------------------
def test_ugatit_discriminator_shapes_and_paddle_names():
    net = UGATITDiscriminator(3, ndf=8, n_layers=5)
    out, cam, heat = net(torch.randn(2, 3, SIZE, SIZE))
    assert out.shape == (2, 1, 2, 2) and cam.shape == (2, 2) and heat.shape == (2, 1, 3, 3)
    keys = set(net.state_dict())
    sn = lambda p: {f"{p}.weight_orig", f"{p}.weight_u", f"{p}.weight_v"}  # noqa: E731
    want = set()
    for i in (1, 4, 7, 10):  # [pad, conv, lrelu] x (n_layers - 1)
        want |= sn(f"model.{i}") | {f"model.{i}.bias"}
    want |= sn("gap_fc") | sn("gmp_fc") | sn("conv") | {"conv1x1.weight", "conv1x1.bias"}
    assert keys == want
    assert net.gap_fc.weight_orig.shape == (1, 64)  # Paddle stores this Linear weight as [64, 1]
    with pytest.raises(ValueError, match="n_layers"):
        UGATITDiscriminator(3, n_layers=2)


def test_ugatit_discriminator_loads_a_paddle_layout_state_dict():
    # Paddle's SpectralNorm keeps the same names (weight_orig, weight_u, weight_v); only a
    # Linear's weight_orig is stored [in, out].
    from ppgan.weights import convert_paddle_state_dict

    src = UGATITDiscriminator(3, ndf=8, n_layers=5)
    pd = {k: (v.numpy().T if k.endswith("fc.weight_orig") else v.numpy()) for k, v in src.state_dict().items()}
    dst = UGATITDiscriminator(3, ndf=8, n_layers=5)
    state, report = convert_paddle_state_dict(dst, pd, strict=True)
    assert sorted(report["transposed"]) == ["gap_fc.weight_orig", "gmp_fc.weight_orig"]
    dst.load_state_dict(state)
    x = torch.randn(1, 3, SIZE, SIZE)
    for a, b in zip(src.eval()(x), dst.eval()(x)):
        torch.testing.assert_close(a, b)


def test_ugatit_discriminator_cam_uses_raw_fc_weight():
    # PaddleGAN weights the features by `list(gap_fc.parameters())[0]`, i.e. weight_orig: scaling
    # it leaves the spectral-normed logits unchanged but scales the CAM features.
    torch.manual_seed(0)
    net = UGATITDiscriminator(3, ndf=8, n_layers=4).eval()
    x = torch.randn(1, 3, SIZE, SIZE)
    _, cam1, heat1 = net(x)
    with torch.no_grad():
        net.gap_fc.weight_orig.mul_(3.0)
        net.gmp_fc.weight_orig.mul_(3.0)
    _, cam2, heat2 = net(x)
    torch.testing.assert_close(cam1, cam2)
    assert not torch.allclose(heat1, heat2)


def test_ugatit_model_keeps_spectral_weights_out_of_normal_init():
    model = build(UGATIT)
    conv = model.nets["disGA"].model[1]
    # N(0, sqrt(2 / fan_in)) = std 0.41 for a 3 x 4 x 4 fan-in, not init_weights' 0.02
    assert conv.weight_orig.std() > 0.2 and conv.bias.abs().max() == 0
    assert model.nets["disGA"].conv1x1.weight.std() < 0.05


# ---- ImagePool -----------------------------------------------------------------------------------
def test_image_pool_fills_then_mixes_from_torch_rng():
    def run():
        torch.manual_seed(3)
        pool = ImagePool(2)
        outs = [pool.query(torch.full((2, 1, 2, 2), float(i))) for i in range(6)]
        return pool, outs

    pool, outs = run()
    assert torch.equal(outs[0], torch.zeros(2, 1, 2, 2)) and len(pool) == 2
    assert any(not torch.equal(o, torch.full_like(o, i)) for i, o in enumerate(outs[1:], 1))  # history returned
    _, outs2 = run()
    assert all(torch.equal(a, b) for a, b in zip(outs, outs2))
    copy_ = ImagePool(2)
    copy_.load_state_dict(pool.state_dict())
    assert torch.equal(copy_.state_dict()["images"], pool.state_dict()["images"])
    assert ImagePool(0).query(outs[0]) is outs[0]


# ---- PaddleGAN's configs -----------------------------------------------------------------------
PADDLEGAN_CONFIGS = {"pix2pix_facades": "netG", "pix2pix_cityscapes": "netG", "cyclegan_horse2zebra": "netG_A",
                     "cyclegan_cityscapes": "netG_A", "ugatit_photo2cartoon": "genA2B",
                     "ugatit_selfie2anime_light": "genA2B"}


@pytest.mark.parametrize("name", sorted(PADDLEGAN_CONFIGS))
def test_paddlegan_configs_build(name):
    import os

    from ppgan.datasets import build_dataset
    from ppgan.utils.config import load_config
    from ppgan.utils.errors import DatasetError

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cfg = load_config(os.path.join(root, "configs", name + ".yaml"))
    model = build_model(cfg["model"])
    assert PADDLEGAN_CONFIGS[name] in model.nets
    for group in cfg["optimizer"].values():
        assert set(group["net_names"]) <= set(model.nets)
    assert not (cfg.get("validate") or {}).get("metrics")  # FID is commented out
    for split in ("train", "test"):
        with pytest.raises(DatasetError, match="dataset folder not found: data/"):
            build_dataset(cfg["dataset"][split])

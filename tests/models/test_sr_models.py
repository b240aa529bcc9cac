"""Super-resolution models (BaseSRModel, RCANModel, ESRGAN, EDVRModel, BasicVSRModel) on tiny nets:
one training step each (exact loss keys, finite, which parameters moved, freezing schedules),
weight-file round trips, any-size inference with PSNR / SSIM; PerceptualLoss weight loading and
values; VGGDiscriminator128, RCAN and MSRResNet shapes."""
import copy
import math
import os
import pickle

import pytest
import torch
import torch.nn.functional as F

from ppgan.engine import checkpoint as ckpt
from ppgan.metrics import build_metric
from ppgan.models import build_model
from ppgan.models.criterions import PerceptualLoss, build_criterion
from ppgan.models.discriminators import VGGDiscriminator128
from ppgan.models.generators import MSRResNet, RCAN
from ppgan.modules.vgg import VGGFeatures
from ppgan.solver import build_optimizer
from ppgan.utils.config import load_config
from ppgan.utils.errors import CheckpointError, ConfigError, one_line

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))




@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """HOME and TORCH_HOME without any VGG weights."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("PPGAN_HOME", raising=False)  # the cache is then ~/.cache/ppgan
    return tmp_path


RRDB = {"name": "RRDBNet", "in_nc": 3, "out_nc": 3, "nf": 8, "nb": 1, "gc": 4}
SR = {"name": "BaseSRModel", "generator": RRDB, "pixel_criterion": {"name": "L1Loss"}}
TINY_PERCEPTUAL = {"name": "PerceptualLoss", "layer_weights": {"0": 1.0}, "perceptual_weight": 1.0,
                   "style_weight": 0.0, "norm_img": False, "weight_path": "deterministic"}
ESRGAN_GAN = {"name": "ESRGAN", "generator": RRDB,
              "discriminator": {"name": "VGGDiscriminator128", "in_channels": 3, "num_feat": 4},
              "pixel_criterion": {"name": "L1Loss", "loss_weight": 1e-2},
              "perceptual_criterion": TINY_PERCEPTUAL,
              "gan_criterion": {"name": "GANLoss", "gan_mode": "vanilla", "loss_weight": 5e-3}}


def optimizers(model, groups=None, lr=1e-3, epsilon=1e-8):
    """Optimizers as the trainer builds them (trainable parameters at build time, net_names)."""
    groups = groups or {"optim": list(model.nets)}
    out = {}
    for name, nets in groups.items():
        params = [p for n in nets for p in model.nets[n].parameters() if p.requires_grad]
        opt = build_optimizer({"name": "Adam", "beta1": 0.9, "beta2": 0.99, "epsilon": epsilon}, params, lr)
        opt.ppgan_net_names = tuple(nets)
        out[name] = opt
    return out


def params(net):
    return {k: p.detach().clone() for k, p in net.named_parameters()}


def moved(before, net):
    return {k for k, p in net.named_parameters() if not torch.equal(before[k], p.detach())}


def with_grad(net):
    """Parameters holding a non-zero gradient after a step."""
    return {k for k, p in net.named_parameters() if p.grad is not None and p.grad.any()}


def batch(n=2, h=8, w=8, scale=4, high=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"lq": torch.rand(n, 3, h, w, generator=g) * high,
            "gt": torch.rand(n, 3, scale * h, scale * w, generator=g) * high, "lq_path": ["x"] * n}


def roundtrip(model, cfg, tmp_path):
    """Weight file written as the trainer does, loaded into a fresh model: identical tensors."""
    path = ckpt.save(ckpt.weight_file_dict(model, cfg), str(tmp_path / "w.pth"))
    fresh = build_model(copy.deepcopy(cfg))
    assert ckpt.load_weights(fresh, path) == list(model.nets)
    for name, net in model.nets.items():
        a, b = net.state_dict(), fresh.nets[name].state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    return fresh


def metrics():
    return {"psnr": build_metric({"name": "PSNR", "crop_border": 2}),
            "ssim": build_metric({"name": "SSIM", "crop_border": 2})}


def assert_finite(losses, keys):
    """train_iter returns detached 0-dim tensors (read by the trainer only at log intervals)."""
    assert set(losses) == set(keys)
    assert all(torch.is_tensor(v) and v.ndim == 0 and not v.requires_grad and math.isfinite(v)
               for v in losses.values()), losses


# ---- BaseSRModel / RCANModel ----------------------------------------------------------------
def test_base_sr_model_step_roundtrip_and_any_size_inference(tmp_path):
    torch.manual_seed(0)
    model = build_model(copy.deepcopy(SR))
    assert list(model.nets) == ["generator"]
    net = model.nets["generator"]
    before = params(net)
    model.setup_input(batch())
    losses = model.train_iter(optimizers(model))
    assert_finite(losses, {"loss_pixel"})
    assert moved(before, net) == set(before)
    assert set(model.visual_items) == {"lq", "output", "gt"}
    assert all(v.min() >= -1 and v.max() <= 1 for v in model.visual_items.values())

    fresh = roundtrip(model, SR, tmp_path)
    ms = metrics()
    fresh.setup_input(batch(n=1, h=7, w=9, seed=1))  # odd size
    fresh.test_iter(ms)
    assert fresh.output.shape == (1, 3, 28, 36)
    with torch.no_grad():
        expected = net.eval()(fresh.lq)
    torch.testing.assert_close(fresh.output, expected)
    assert len(ms["psnr"].results) == 1 and 0 < ms["psnr"].accumulate() < 100
    assert -1 <= ms["ssim"].accumulate() <= 1
    assert fresh.nets["generator"].training  # mode restored after inference


def test_base_sr_model_pads_for_nets_that_need_a_size_multiple():
    torch.manual_seed(0)
    model = build_model(dict(SR, generator=dict(RRDB, scale=2)))  # pixel-unshuffle by 2
    model.setup_input({"lq": torch.rand(1, 3, 7, 9)})  # no gt: inference only
    model.test_iter(metrics())
    assert model.output.shape == (1, 3, 14, 18) and set(model.visual_items) == {"lq", "output"}
    with pytest.raises(Exception, match="needs 'gt'"):
        model.train_iter(optimizers(model))


def test_use_init_weight_resets_convs_like_paddle():
    pan = {"name": "PAN", "in_nc": 3, "out_nc": 3, "nf": 8, "unf": 8, "nb": 1, "scale": 2}
    model = build_model({"name": "BaseSRModel", "generator": pan, "use_init_weight": True})
    for name, m in model.nets["generator"].named_modules():
        if isinstance(m, torch.nn.Conv2d):
            bound = 1 / math.sqrt(m.weight[0].numel())
            assert m.weight.abs().max() <= bound, name
            assert m.bias is None or (m.bias.abs().max() <= bound and m.bias.abs().max() > 0), name


def test_rcan_model_trains_on_0_255_and_skips_exploding_batches():
    cfg = {"name": "RCANModel", "generator": {"name": "RCAN", "scale": 2, "n_resgroups": 1, "n_resblocks": 1,
                                              "n_feats": 8, "reduction": 4},
           "pixel_criterion": {"name": "L1Loss"}}
    torch.manual_seed(0)
    model = build_model(cfg)
    net = model.nets["generator"]
    opts = optimizers(model)
    fixed = {"sub_mean.weight", "sub_mean.bias", "add_mean.weight", "add_mean.bias"}
    before = params(net)
    model.setup_input(batch(scale=2, high=255.0))
    assert_finite(model.train_iter(opts), {"loss_pixel"})
    grads = with_grad(net)
    # (a tiny channel-attention bottleneck can be all-ReLU-dead: no gradient, no step)
    assert moved(before, net) == grads and not grads & fixed
    assert {"head.0.weight", "tail.0.0.weight", "tail.1.bias", "body.1.weight"} <= grads
    assert model.visual_items["gt"].min() >= -1 and model.visual_items["gt"].max() <= 1

    model.error_last = 1e-12  # any loss is now "exploding": no step
    before = params(net)
    assert_finite(model.train_iter(opts), {"loss_pixel"})
    assert not moved(before, net)

    ms = metrics()
    model.setup_input(batch(n=1, h=9, w=11, scale=2, high=255.0))
    model.test_iter(ms)
    assert model.output.shape == (1, 3, 18, 22) and len(ms["psnr"].results) == 1


# ---- ESRGAN ---------------------------------------------------------------------------------------
def test_esrgan_psnr_stage_losses():
    torch.manual_seed(0)
    perceptual = dict(TINY_PERCEPTUAL, style_weight=0.5)
    model = build_model({"name": "ESRGAN", "generator": RRDB, "pixel_criterion": {"name": "L1Loss"},
                         "perceptual_criterion": perceptual})
    assert list(model.nets) == ["generator"]
    before = params(model.nets["generator"])
    model.setup_input(batch())
    assert_finite(model.train_iter(optimizers(model)), {"loss_pix", "loss_percep", "loss_style"})
    assert moved(before, model.nets["generator"]) == set(before)


def test_esrgan_gan_stage_relativistic_losses_and_updates(tmp_path):
    torch.manual_seed(0)
    model = build_model(copy.deepcopy(ESRGAN_GAN))
    assert list(model.nets) == ["generator", "discriminator"]
    g, d = model.nets["generator"], model.nets["discriminator"]
    vgg = model.perceptual_criterion.vgg
    vgg_before = params(vgg)
    data = batch(h=32, w=32)  # D takes 128x128
    model.setup_input(data)

    # reference values from copies of the nets before the step (D's BN uses batch statistics)
    g0, d0 = copy.deepcopy(g), copy.deepcopy(d)
    with torch.no_grad():
        out = g0(data["lq"])
        real, fake = d0(data["gt"]), d0(out)
    bce = F.binary_cross_entropy_with_logits
    exp_d_real = 0.5 * bce(real - fake.mean(), torch.ones_like(real))
    exp_d_fake = 0.5 * bce(fake - real.mean(), torch.zeros_like(fake))
    exp_g_gan = 5e-3 * (bce(real - fake.mean(), torch.zeros_like(real)) +
                        bce(fake - real.mean(), torch.ones_like(fake))) / 2

    g_before, d_before = params(g), params(d)
    losses = model.train_iter(optimizers(model, {"optimG": ["generator"], "optimD": ["discriminator"]}))
    assert_finite(losses, {"loss_pix", "loss_percep", "l_g_gan", "l_d_real", "l_d_fake", "out_d_real", "out_d_fake"})
    assert float(losses["l_d_real"]) == pytest.approx(float(exp_d_real), rel=1e-4)
    assert float(losses["l_d_fake"]) == pytest.approx(float(exp_d_fake), rel=1e-4)
    assert float(losses["l_g_gan"]) == pytest.approx(float(exp_g_gan), rel=1e-4)
    assert float(losses["out_d_real"]) == pytest.approx(float(real.mean()), rel=1e-4, abs=1e-6)
    assert moved(g_before, g) == set(g_before) and moved(d_before, d) == set(d_before)
    assert not moved(vgg_before, vgg) and all(p.grad is None for p in vgg.parameters())
    assert all(p.requires_grad for p in d.parameters())  # unfrozen after the G step

    fresh = roundtrip(model, ESRGAN_GAN, tmp_path)
    fresh.setup_input(batch(n=1, h=5, w=6))
    fresh.test_iter(metrics())
    assert fresh.output.shape == (1, 3, 20, 24)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_esrgan_step_on_cuda_with_bf16_autocast():
    torch.manual_seed(0)
    model = build_model(copy.deepcopy(ESRGAN_GAN))
    model.setup_runtime("cuda")
    assert model.perceptual_criterion.vgg.mean.is_cuda  # criteria follow the nets
    model.setup_input(batch(h=32, w=32))
    with torch.autocast("cuda", dtype=torch.bfloat16):
        losses = model.train_iter(optimizers(model, {"optimG": ["generator"], "optimD": ["discriminator"]}))
    assert_finite(losses, {"loss_pix", "loss_percep", "l_g_gan", "l_d_real", "l_d_fake", "out_d_real", "out_d_fake"})
    model.setup_input(batch(n=1, h=5, w=6))
    with torch.autocast("cuda", dtype=torch.bfloat16):
        model.test_iter(metrics())
    assert model.output.shape == (1, 3, 20, 24)


def test_esrgan_needs_discriminator_and_gan_criterion_together():
    with pytest.raises(ConfigError, match="together"):
        build_model({k: v for k, v in ESRGAN_GAN.items() if k != "gan_criterion"})


# ---- PerceptualLoss --------------------------------------------------------------------------------
def _seeded_vgg_state(num_layers=5, extra=True):
    torch.manual_seed(3)
    state = VGGFeatures("vgg19", num_layers=num_layers).state_dict()
    if extra:  # what else a torchvision / Paddle file holds
        state["classifier.6.weight"] = torch.zeros(10, 4)
    return state


def test_perceptual_loss_loads_torchvision_and_paddle_files(tmp_path):
    state = _seeded_vgg_state()
    pth = str(tmp_path / "vgg19.pth")
    torch.save(state, pth)
    pd = str(tmp_path / "vgg19.pdparams")
    with open(pd, "wb") as f:  # Paddle's format: a pickle of numpy arrays (Linear weights [in, out])
        pickle.dump({k: v.numpy() for k, v in state.items()}, f, protocol=2)
    for kwargs in ({"pretrained": pth}, {"weight_path": pd}):
        loss = PerceptualLoss({"2": 1.0, "0": 0.5}, **kwargs)
        got = loss.vgg.vgg_layers.state_dict()
        assert set(got) == {"features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias"}
        assert all(torch.equal(got[k], state[k]) for k in got)

    bad = str(tmp_path / "bad.pth")
    torch.save({"features.0.weight": state["features.0.weight"]}, bad)
    with pytest.raises(CheckpointError, match=r"missing in file \(e\.g\. features\.0\.bias"):
        PerceptualLoss({"2": 1.0}, weight_path=bad)


def test_perceptual_loss_values_gradients_and_criteria(tmp_path):
    pth = str(tmp_path / "vgg.pth")
    torch.save(_seeded_vgg_state(), pth)
    vgg = VGGFeatures("vgg19", num_layers=5)
    vgg.load_state_dict({k: v for k, v in torch.load(pth, weights_only=True).items() if k.startswith("features")})
    mean = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(2, 3, 16, 16, generator=g) * 2 - 1).requires_grad_(True)
    gt = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    weights = {"2": 1.0, "4": 0.5}
    fx, fg = vgg(((x + 1) / 2 - mean) / std, ["2", "4"]), vgg(((gt + 1) / 2 - mean) / std, ["2", "4"])

    def gram(f):
        n, c, h, w = f.shape
        f = f.reshape(n, c, h * w)
        return f @ f.transpose(1, 2) / (c * h * w)

    for crit, dist in (("l1", F.l1_loss), ("l2", F.mse_loss), ("fro", lambda a, b: (a - b).norm())):
        loss = PerceptualLoss(weights, perceptual_weight=2.0, style_weight=3.0, criterion=crit, pretrained=pth)
        percep, style = loss(x, gt)
        exp_p = 2.0 * sum(dist(fx[k], fg[k]) * w for k, w in weights.items())
        exp_s = 3.0 * sum(dist(gram(fx[k]), gram(fg[k])) * w for k, w in weights.items())
        torch.testing.assert_close(percep, exp_p, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(style, exp_s, rtol=1e-5, atol=1e-8)
    (percep + style).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())

    off = PerceptualLoss(weights, style_weight=0.0, pretrained=pth)
    assert off(x, gt)[1] is None
    with pytest.raises(ValueError, match="criterion"):
        PerceptualLoss(weights, criterion="l3", pretrained=pth)
    with pytest.raises(ValueError, match="0..36"):
        PerceptualLoss({"37": 1.0}, pretrained=pth)


def test_perceptual_loss_untrained_weights_are_seeded_and_leave_the_rng_alone():
    state = torch.random.get_rng_state()
    a = build_criterion(TINY_PERCEPTUAL)
    b = build_criterion({k: v for k, v in TINY_PERCEPTUAL.items() if k != "weight_path"} | {"pretrained": False})
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a.vgg.vgg_layers.features[0].weight, b.vgg.vgg_layers.features[0].weight)


def test_perceptual_loss_without_weights_says_where_to_put_them(empty_caches):
    with pytest.raises(CheckpointError) as err:
        PerceptualLoss({"34": 1.0})
    msg = one_line(err.value)
    assert os.path.join(str(empty_caches), "home", ".cache", "ppgan", "weights", "vgg19.pdparams") in msg
    assert "https://paddlegan.bj.bcebos.com/models/vgg19.pdparams" in msg and "ppgan download vgg19" in msg
    assert "vgg19-dcbb9e9d.pth" in msg and "weight_path" in msg
    with pytest.raises(CheckpointError, match="no file at .*nowhere.pth"):
        PerceptualLoss({"34": 1.0}, weight_path=str(empty_caches / "nowhere.pth"))

    # torchvision's cached file is found by name
    hub = empty_caches / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(_seeded_vgg_state(), str(hub / "vgg19-dcbb9e9d.pth"))
    assert PerceptualLoss({"2": 1.0}).vgg is not None


def test_esrgan_config_build_fails_with_one_line_naming_the_vgg_file(empty_caches):
    cfg = load_config(os.path.join(ROOT, "configs", "esrgan_x4_div2k.yaml"))
    with pytest.raises(CheckpointError) as err:
        build_model(cfg["model"])
    assert "\n" not in str(err.value)
    assert os.path.join(".cache", "ppgan", "weights", "vgg19.pdparams") in str(err.value)


# ---- architectures ---------------------------------------------------------------------------------
def test_vgg_discriminator128():
    torch.manual_seed(0)
    d = VGGDiscriminator128(3, 4)
    assert d(torch.rand(2, 3, 128, 128)).shape == (2, 1)
    keys = d.state_dict()
    assert {"conv0_0.bias", "bn4_1.running_var", "linear1.weight", "linear2.bias"} <= set(keys)
    assert "conv0_1.bias" not in keys
    assert keys["linear1.weight"].shape == (100, 4 * 8 * 4 * 4)
    with pytest.raises(ValueError, match="128, 128"):
        d(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="norm_layer"):
        VGGDiscriminator128(3, 4, norm_layer="instance")


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_rcan_sizes_and_mean_shift(scale):
    torch.manual_seed(0)
    net = RCAN(scale, n_resgroups=2, n_resblocks=1, n_feats=8, reduction=4, rgb_range=255)
    assert net(torch.rand(1, 3, 5, 7) * 255).shape == (1, 3, 5 * scale, 7 * scale)
    assert "body.0.body.0.body.3.conv_du.2.weight" in net.state_dict()
    x = torch.rand(1, 3, 2, 2)
    mean = torch.tensor([0.4488, 0.4371, 0.4040]).reshape(1, 3, 1, 1)
    torch.testing.assert_close(net.sub_mean(x), x - 255 * mean)
    torch.testing.assert_close(net.add_mean(x), x + 255 * mean)
    assert not any(p.requires_grad for p in net.sub_mean.parameters())


def test_rcan_and_msrresnet_reject_bad_arguments():
    with pytest.raises(ValueError, match="power of two"):
        RCAN(5, 1, 1, n_feats=8, reduction=4)
    with pytest.raises(ValueError, match="upscale"):
        MSRResNet(upscale=8)
    with pytest.raises(ValueError, match="in_nc"):
        MSRResNet(in_nc=1, out_nc=3)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_msrresnet_sizes(scale):
    torch.manual_seed(0)
    net = MSRResNet(nf=8, nb=2, upscale=scale)
    x = torch.rand(1, 3, 5, 7)
    out = net(x)
    assert out.shape == (1, 3, 5 * scale, 7 * scale)
    assert ("upconv2.weight" in net.state_dict()) == (scale == 4)
    assert "recon_trunk.1.conv2.weight" in net.state_dict()
    # a residual over bilinear upsampling: zeroing the last conv leaves the bilinear image
    with torch.no_grad():
        net.conv_last.weight.zero_()
        net.conv_last.bias.zero_()
    torch.testing.assert_close(net(x), F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False))


def test_msrresnet_trains_in_base_sr_model():
    torch.manual_seed(0)
    model = build_model({"name": "BaseSRModel", "generator": {"name": "MSRResNet", "nf": 8, "nb": 1, "upscale": 4},
                         "pixel_criterion": {"name": "MSELoss"}})
    model.setup_input(batch())
    assert_finite(model.train_iter(optimizers(model)), {"loss_pixel"})


# ---- video SR ------------------------------------------------------------------------------------------
EDVR = {"name": "EDVRModel", "tsa_iter": 2, "pixel_criterion": {"name": "CharbonnierLoss"},
        "generator": {"name": "EDVRNet", "nf": 8, "nframes": 3, "groups": 1, "front_RBs": 1, "back_RBs": 1,
                      "center": 1, "w_TSA": True}}


def test_edvr_model_tsa_phase_then_all(tmp_path):
    torch.manual_seed(0)
    model = build_model(copy.deepcopy(EDVR))
    net = model.nets["generator"]
    opts = optimizers(model)
    g = torch.Generator().manual_seed(0)
    data = {"lq": torch.rand(2, 3, 3, 8, 8, generator=g), "gt": torch.rand(2, 1, 3, 32, 32, generator=g)}
    tsa = {k for k in params(net) if k.startswith("TSAModule.")}

    model.current_iter = 0  # the trainer sets it before every step
    model.setup_input(data)
    assert model.gt.shape == (2, 3, 32, 32)
    before = params(net)
    assert_finite(model.train_iter(opts), {"loss_pixel"})
    assert moved(before, net) == tsa
    assert set(model.visual_items) == {"lq", "lq-1", "lq+1", "output", "gt"}

    model.current_iter = 2
    before = params(net)
    assert_finite(model.train_iter(opts), {"loss_pixel"})
    # every parameter learns again; those behind the zero-initialised DCN offset convs get no
    # gradient on this first step
    assert moved(before, net) == with_grad(net)
    assert {"conv_first.weight", "feature_extractor.block0.conv1.weight",
            "PCDModule.PCD_Align_L1_dcn.conv_offset_mask.weight", "conv_last.bias"} <= with_grad(net)

    fresh = roundtrip(model, EDVR, tmp_path)
    ms = metrics()
    fresh.setup_input({"lq": torch.rand(1, 3, 3, 7, 9, generator=g), "gt": torch.rand(1, 3, 28, 36, generator=g)})
    fresh.test_iter(ms)
    assert fresh.output.shape == (1, 3, 28, 36) and len(ms["ssim"].results) == 1


def test_edvr_init_keeps_zero_offsets_and_residual_scaling():
    torch.manual_seed(0)
    net = build_model(copy.deepcopy(EDVR)).nets["generator"]
    offset_convs = [m for n, m in net.named_modules() if n.endswith("conv_offset_mask")]
    assert offset_convs and all(not m.weight.any() for m in offset_convs)
    bound = 1 / math.sqrt(8 * 9)
    assert net.fea_L2_conv1.weight.abs().max() <= bound  # reset as PaddleGAN
    assert net.fea_L2_conv1.bias.abs().max() > 0


BASICVSR = {"name": "BasicVSRModel", "fix_iter": 2, "lr_mult": 0.25,
            "generator": {"name": "BasicVSRNet", "mid_channels": 8, "num_blocks": 1},
            "pixel_criterion": {"name": "CharbonnierLoss", "reduction": "mean"}}


def test_basicvsr_model_spynet_frozen_then_scaled_learning_rate(tmp_path):
    torch.manual_seed(0)
    model = build_model(copy.deepcopy(BASICVSR))
    net = model.nets["generator"]
    lr = 1e-3
    opts = optimizers(model, lr=lr, epsilon=1e-12)
    g = torch.Generator().manual_seed(0)
    model.setup_input({"lq": torch.rand(1, 2, 3, 64, 64, generator=g),
                       "gt": torch.rand(1, 2, 3, 256, 256, generator=g)})
    spynet = {k for k in params(net) if k.startswith("spynet.")}
    assert spynet

    model.current_iter = 0
    before = params(net)
    assert_finite(model.train_iter(opts), {"loss_pixel"})
    assert moved(before, net) == set(before) - spynet
    assert set(model.visual_items) == {"lq", "output", "gt"} and model.visual_items["output"].shape == (1, 3, 256, 256)

    model.current_iter = 2
    before = params(net)
    assert_finite(model.train_iter(opts), {"loss_pixel"})
    changed = moved(before, net)
    assert spynet <= changed
    # Adam's first step on the SPyNet is lr * sign(grad): here lr * lr_mult
    steps = torch.cat([(dict(net.named_parameters())[k].detach() - before[k]).abs().flatten() for k in spynet])
    steps = steps[steps > 0]
    assert steps.median() == pytest.approx(lr * 0.25, rel=1e-3)

    fresh = roundtrip(model, BASICVSR, tmp_path)
    ms = metrics()
    fresh.setup_input({"lq": torch.rand(1, 2, 3, 50, 45, generator=g),
                       "gt": torch.rand(1, 2, 3, 200, 180, generator=g)})
    fresh.test_iter(ms)  # frames below SPyNet's 64 pixels: padded, cropped back
    assert fresh.output.shape == (1, 2, 3, 200, 180)
    assert len(ms["psnr"].results) == 1  # one sequence result per clip


def test_video_configs_build():
    for name in ("edvr_m_wo_tsa", "edvr_l_w_tsa", "basicvsr_reds", "rcan_rssr_x4", "pan_psnr_x4_div2k",
                 "lesrcnn_psnr_x4_div2k", "esrgan_psnr_x4_div2k"):
        cfg = load_config(os.path.join(ROOT, "configs", f"{name}.yaml"))
        assert list(build_model(cfg["model"]).nets) == ["generator"], name





# ---- end to end -------------------------------------------------------------------------------------------
@pytest.mark.skipif("SRPhotoDataset" not in __import__("ppgan.datasets", fromlist=["DATASETS"]).DATASETS,
                    reason="SR datasets not available")
def test_trainer_trains_and_evaluates_base_sr_model(tmp_path):
    from ppgan.engine import Trainer

    data = {"name": "SRPhotoDataset", "scale": 4, "photo_scale": 0.25}
    cfg = {"total_iters": 2, "output_dir": str(tmp_path), "seed": 0, "model": copy.deepcopy(SR),
           "dataset": {"train": dict(data, split="train", gt_patch_size=32, num_samples=4, batch_size=2,
                                     num_workers=0),
                       "test": dict(data, split="test", test_size=28, batch_size=1, num_workers=0)},
           "lr_scheduler": {"name": "CosineAnnealingRestartLR", "learning_rate": 2e-4, "periods": [2],
                            "restart_weights": [1], "eta_min": 1e-7},
           "optimizer": {"name": "Adam", "net_names": ["generator"], "beta1": 0.9, "beta2": 0.99},
           "validate": {"interval": 2, "metrics": {"psnr": {"name": "PSNR", "crop_border": 4}}},
           "log_config": {"interval": 1, "visiual_interval": 1}, "snapshot_config": {"interval": 2}}
    tr = Trainer(cfg, device="cpu", run_dir=str(tmp_path / "run"), quiet=True)
    tr.train()
    assert os.path.isfile(tmp_path / "run" / "iter_2_weight.pth")
    assert os.path.isfile(tmp_path / "run" / "visual" / "iter_0000001_output.png")
    results = tr.validate()
    assert set(results) == {"psnr"} and 5 < results["psnr"] < 60

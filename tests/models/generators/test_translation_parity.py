"""Image-to-image generators: PaddleGAN parity (fixtures in tests/fixtures/parity) and other sizes.

Parity: manifest -> rule weights -> `load_paddle_state_dict(strict=True)` -> eval forward ->
PaddleGAN's recorded outputs.
"""
import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
from parity import Fixture  # noqa: E402

import ppgan.modules.adaptive_norm as adaptive_norm  # noqa: E402
from ppgan.models.generators import (GENERATORS, ResnetGenerator, ResnetUGATITGenerator,  # noqa: E402
                                     ResnetUGATITP2CGenerator, UnetGenerator, build_generator)
from ppgan.modules.batch_norm import TrainableStatsBatchNorm2d  # noqa: E402
from ppgan.weights import load_paddle_state_dict  # noqa: E402


def _load_fixture_model(name, cls):
    fixture = Fixture(name)
    model = cls(**fixture.kwargs).eval()
    load_paddle_state_dict(model, fixture.paddle_state_dict(), strict=True)
    return fixture, model


# --- Paddle's float32 variance, for the U-GAT-IT decoders --------------------------------------
# Paddle 3.3.1's CPU `paddle.var` adds the squared deviations one at a time in float32, the
# reduced axes iterated last-to-first (for axes [1, 2, 3]: W slowest, C fastest). Over the
# 256 x 64 x 64 LayerNorm half of ILN that loses ~5e-4 relative precision, and the fixtures'
# decoder outputs carry the error (ugatit_p2c `out` is off the exact maths by 1.3e-2, more than
# 10 * atol; a float64 run of PaddleGAN's code agrees with ours to 1e-8). The parity tests
# therefore swap in this emulation; `test_paddle_var_emulation_is_the_same_maths` checks that it
# computes what `instance_layer_norm` computes.

def _paddle_cpu_var(x, dims):
    mean = x.double().mean(dims, keepdim=True).float()
    keep = [a for a in range(x.ndim) if a not in dims]
    sq = ((x - mean) ** 2).numpy().transpose(keep + list(reversed(dims)))
    sq = sq.reshape([x.shape[a] for a in keep] + [-1])
    total = np.cumsum(sq, axis=-1, dtype=np.float32)[..., -1]  # sequential float32 sum
    var = torch.from_numpy(total / np.float32(sq.shape[-1] - 1))
    return mean, var.reshape([x.shape[a] if a in keep else 1 for a in range(x.ndim)])


def _paddle_instance_layer_norm(x, rho, eps=1e-5):
    in_mean, in_var = _paddle_cpu_var(x, [2, 3])
    ln_mean, ln_var = _paddle_cpu_var(x, [1, 2, 3])
    return rho * (x - in_mean) / torch.sqrt(in_var + eps) + (1 - rho) * (x - ln_mean) / torch.sqrt(ln_var + eps)


def test_paddle_var_emulation_is_the_same_maths():
    x = torch.randn(2, 16, 24, 20) * 3 + 1
    rho = torch.rand(1, 16, 1, 1)
    want = adaptive_norm.instance_layer_norm(x.double(), rho.double())
    torch.testing.assert_close(_paddle_instance_layer_norm(x, rho).double(), want, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(adaptive_norm.instance_layer_norm(x, rho).double(), want, atol=1e-5, rtol=1e-5)


# --- parity -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, cls", [("pix2pix_unet", UnetGenerator), ("cyclegan_resnet", ResnetGenerator)])
def test_parity_single_output(name, cls):
    fixture, model = _load_fixture_model(name, cls)
    with torch.no_grad():
        out = model(*fixture.inputs)
    fixture.assert_matches(out)


@pytest.mark.parametrize("name, cls", [("ugatit_light_generator", ResnetUGATITGenerator),
                                       ("ugatit_p2c_generator", ResnetUGATITP2CGenerator)])
def test_parity_ugatit(name, cls, monkeypatch):
    fixture, model = _load_fixture_model(name, cls)
    monkeypatch.setattr(adaptive_norm, "instance_layer_norm", _paddle_instance_layer_norm)
    with torch.no_grad():
        out = model(*fixture.inputs)
    assert isinstance(out, tuple) and len(out) == 3  # (out, cam_logit, heatmap)
    fixture.assert_matches(out)


def test_unet_eval_uses_batch_statistics():
    """PaddleGAN's 'batch' norm (trainable_statistics=True) ignores the running stats in eval."""
    torch.manual_seed(0)
    model = UnetGenerator(3, 3, num_downs=5, ngf=4).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
        for m in model.modules():
            if isinstance(m, TrainableStatsBatchNorm2d):
                m.running_mean.fill_(5.0)
                m.running_var.fill_(9.0)
        torch.testing.assert_close(model(x), before)
    bns = [m for m in model.modules() if isinstance(m, TrainableStatsBatchNorm2d)]
    assert bns and all(float(m.running_mean[0]) == 5.0 for m in bns)  # eval leaves them alone
    model.train()
    with torch.no_grad():
        model(x)
    assert all(float(m.running_mean[0]) != 5.0 for m in bns)  # training updates them


# --- other arguments and sizes ------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, size", [
    (dict(num_downs=5, ngf=8), (32, 32)),
    (dict(num_downs=5, ngf=8), (64, 32)),
    (dict(num_downs=6, ngf=4, norm_type="instance", use_dropout=True), (64, 64)),
    (dict(num_downs=5, ngf=4, norm_type="none"), (32, 32)),
])
def test_unet_other_args(kwargs, size):
    model = UnetGenerator(3, 2, **kwargs).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, *size) * 2 - 1)
    assert out.shape == (2, 2, *size)
    assert out.abs().max() <= 1


def test_unet_rejects_bad_args():
    with pytest.raises(ValueError, match="divisible by 32"):
        UnetGenerator(3, 3, num_downs=5, ngf=4)(torch.zeros(1, 3, 48, 48))
    with pytest.raises(ValueError, match="num_downs"):
        UnetGenerator(3, 3, num_downs=4)
    with pytest.raises(ValueError, match="norm_type"):
        UnetGenerator(3, 3, num_downs=5, norm_type="spectral")


@pytest.mark.parametrize("kwargs", [
    dict(n_blocks=2, ngf=8),
    dict(n_blocks=1, ngf=4, padding_type="zero", norm_type="batch", use_dropout=True),
    dict(n_blocks=0, ngf=4, padding_type="replicate", norm_type="none"),
])
def test_resnet_other_args(kwargs):
    model = ResnetGenerator(3, 1, **kwargs).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 40, 44) * 2 - 1)
    assert out.shape == (2, 1, 40, 44)


def test_resnet_rejects_bad_args():
    with pytest.raises(ValueError, match="divisible by 4"):
        ResnetGenerator(3, 3, ngf=4, n_blocks=1)(torch.zeros(1, 3, 42, 40))
    with pytest.raises(ValueError, match="padding_type"):
        ResnetGenerator(3, 3, padding_type="circular")
    with pytest.raises(ValueError, match="n_blocks"):
        ResnetGenerator(3, 3, n_blocks=-1)


@pytest.mark.parametrize("cls, light, n_blocks, ngf", [
    (ResnetUGATITGenerator, True, 2, 8),
    (ResnetUGATITGenerator, False, 2, 8),
    (ResnetUGATITP2CGenerator, True, 2, 8),
    (ResnetUGATITP2CGenerator, False, 1, 4),
    (ResnetUGATITP2CGenerator, True, 6, 4),
])
def test_ugatit_other_args(cls, light, n_blocks, ngf):
    model = cls(input_nc=3, output_nc=3, ngf=ngf, n_blocks=n_blocks, img_size=64, light=light).eval()
    with torch.no_grad():
        out, cam_logit, heatmap = model(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert out.shape == (2, 3, 64, 64) and cam_logit.shape == (2, 2) and heatmap.shape == (2, 1, 16, 16)
    assert torch.isfinite(out).all() and out.abs().max() <= 1


@pytest.mark.parametrize("cls, size", [(ResnetUGATITGenerator, (36, 44)), (ResnetUGATITP2CGenerator, (32, 48))])
def test_ugatit_light_any_size(cls, size):
    model = cls(input_nc=3, output_nc=3, ngf=4, n_blocks=1, img_size=256, light=True).eval()
    with torch.no_grad():
        out, cam_logit, heatmap = model(torch.rand(1, 3, *size) * 2 - 1)
    assert out.shape == (1, 3, *size) and heatmap.shape == (1, 1, size[0] // 4, size[1] // 4)


def test_ugatit_rejects_bad_args():
    with pytest.raises(ValueError, match="light=False needs 64x64"):
        ResnetUGATITGenerator(3, 3, ngf=4, n_blocks=1, img_size=64, light=False)(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="divisible by 4"):
        ResnetUGATITGenerator(3, 3, ngf=4, n_blocks=1, light=True)(torch.zeros(1, 3, 34, 32))
    with pytest.raises(ValueError, match="divisible by 16"):
        ResnetUGATITP2CGenerator(ngf=4, n_blocks=1)(torch.zeros(1, 3, 40, 40))
    with pytest.raises(ValueError, match="ngf"):
        ResnetUGATITP2CGenerator(ngf=6)
    with pytest.raises(ValueError, match="img_size"):
        ResnetUGATITGenerator(3, 3, img_size=66, light=False)


@pytest.mark.parametrize("cls, kwargs, size", [
    (UnetGenerator, dict(input_nc=3, output_nc=3, num_downs=5, ngf=4), 32),
    (ResnetGenerator, dict(input_nc=3, output_nc=3, ngf=4, n_blocks=1), 16),
    (ResnetUGATITGenerator, dict(input_nc=3, output_nc=3, ngf=4, n_blocks=1, img_size=16, light=False), 16),
    (ResnetUGATITP2CGenerator, dict(ngf=4, n_blocks=1, img_size=32, light=True), 32),
])
def test_backward_finite_grads(cls, kwargs, size):
    torch.manual_seed(0)
    model = cls(**kwargs).train()
    out = model(torch.rand(2, 3, size, size) * 2 - 1)
    outs = out if isinstance(out, tuple) else (out,)
    sum(o.square().mean() for o in outs).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    for n, p in trainable:
        assert p.grad is not None, n
        assert torch.isfinite(p.grad).all(), n
    assert any(p.grad.abs().sum() > 0 for _, p in trainable)


@pytest.mark.parametrize("name", ["UnetGenerator", "ResnetGenerator", "ResnetUGATITGenerator",
                                  "ResnetUGATITP2CGenerator"])
def test_registered(name):
    assert name in GENERATORS
    cfg = {"UnetGenerator": dict(input_nc=3, output_nc=3, num_downs=5, ngf=4),
           "ResnetGenerator": dict(input_nc=3, output_nc=3, ngf=4, n_blocks=1),
           "ResnetUGATITGenerator": dict(input_nc=3, output_nc=3, ngf=4, n_blocks=1, light=True),
           "ResnetUGATITP2CGenerator": dict(ngf=4, n_blocks=1)}[name]
    assert type(build_generator(dict(cfg, name=name))).__name__ == name

"""GANPredictor on an InfoGAN generator (DCGenerator n_categorical): truncation leaves the one-hot
code alone, interpolation walks the noise with the code of the strip's start."""
import pytest
import torch

from ppgan.apps.gan_predictor import GANPredictor
from ppgan.engine import checkpoint as ckpt
from ppgan.models import build_model

K, NZ = 4, 6
MODEL = {"name": "GANModel",
         "generator": {"name": "DCGenerator", "input_nz": NZ, "input_nc": 1, "output_nc": 1, "ngf": 4,
                       "output_size": 8, "n_categorical": K},
         "discriminator": {"name": "DCDiscriminator", "input_nc": 1, "ndf": 4, "input_size": 8, "norm_type": "batch"},
         "gan_criterion": {"name": "GANLoss", "gan_mode": "vanilla"}}


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model(MODEL)
    assert "netQ" in model.nets
    path = str(tmp_path_factory.mktemp("info") / "iter_1_weight.pth")
    ckpt.save(ckpt.weight_file_dict(model, MODEL), path)
    return GANPredictor(weight_path=path, device="cpu")


def test_truncation_keeps_the_code(predictor):
    g = predictor.netG
    plain = predictor._latents(50, torch.Generator().manual_seed(3))
    cut = predictor._latents(50, torch.Generator().manual_seed(3), truncation=0.5)
    assert torch.equal(cut.reshape(50, -1)[:, NZ:], plain.reshape(50, -1)[:, NZ:])  # the one-hot code
    assert torch.equal(g.code_of(cut), g.code_of(plain))
    assert cut.reshape(50, -1)[:, :NZ].abs().max() <= 0.5 < plain.reshape(50, -1)[:, :NZ].abs().max()
    imgs, _ = next(predictor.batches(5, truncation=0.5))
    assert imgs.shape == (5, 1, 8, 8) and torch.isfinite(imgs).all()


def test_interpolation_keeps_each_strips_code(predictor, monkeypatch):
    seen = []
    forward = predictor._forward
    monkeypatch.setattr(predictor, "_forward", lambda z, classes=None: seen.append(z) or forward(z, classes))
    out = predictor.interpolate(rows=3, steps=5)
    assert out.shape == (15, 1, 8, 8)
    z = torch.cat(seen).reshape(15, -1)
    codes = z[:, NZ:]
    assert torch.equal(codes.sum(1), torch.ones(15)) and set(codes.unique().tolist()) == {0.0, 1.0}
    per_strip = predictor.netG.code_of(z).reshape(3, 5)
    assert torch.equal(per_strip, per_strip[:, :1].expand(3, 5))
    noise = z[:, :NZ].reshape(3, 5, NZ)
    assert not torch.allclose(noise[:, 0], noise[:, -1])  # the noise does move along the strip

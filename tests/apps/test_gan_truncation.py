"""Sampling a class-conditional GAN: the moving-average generator is preferred (--no_ema opts
out), the truncation trick (--truncation, --truncation_sweep), and bad input as one error line."""
import math
import os
import sys

import cv2
import pytest
import torch

from ppgan.apps.gan_predictor import GANPredictor, parse_truncations, truncate_latent
from ppgan.engine import checkpoint as ckpt
from ppgan.models import build_model
from ppgan.utils.errors import PPGANError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "applications", "tools"))
import gan_generate  # noqa: E402

MODEL = {"name": "BigGANModel",
         "generator": {"name": "BigGANGenerator", "n_class": 10, "size": 32, "output_nc": 1, "ch": 2,
                       "latent_dim": 16, "shared_dim": 4, "attention": 16},
         "discriminator": {"name": "BigGANDiscriminator", "n_class": 10, "size": 32, "input_nc": 1, "ch": 2},
         "params": {"ema_decay": 0.9}}


@pytest.fixture(scope="module")
def weight_file(tmp_path_factory):
    """A BigGAN weight file whose netG_ema differs from its netG."""
    torch.manual_seed(0)
    model = build_model(MODEL)
    with torch.no_grad():
        for p in model.nets["netG_ema"].parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = str(tmp_path_factory.mktemp("biggan") / "iter_1_weight.pth")
    ckpt.save(ckpt.weight_file_dict(model, MODEL), path)
    return path, model


def test_truncated_latent_distribution():
    torch.manual_seed(0)
    z = torch.randn(200000)
    for t in (0.2, 1.0, 2.0):
        zt = truncate_latent(z, t)
        assert zt.abs().max() <= t
        # the variance of N(0, 1) truncated to [-t, t]: 1 - 2 t phi(t) / (2 Phi(t) - 1)
        phi = math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
        big_phi = 0.5 * (1 + math.erf(t / math.sqrt(2)))
        var = 1 - 2 * t * phi / (2 * big_phi - 1)
        assert zt.var().item() == pytest.approx(var, rel=0.02)
        order = torch.argsort(z[:1000])
        assert torch.all(zt[:1000][order][1:] >= zt[:1000][order][:-1])  # every sample keeps its rank
    assert torch.allclose(truncate_latent(z[:100], 50.0), z[:100], atol=1e-5)  # a loose threshold changes nothing
    with pytest.raises(PPGANError, match="> 0"):
        truncate_latent(z, 0)


def test_parse_truncations():
    assert parse_truncations("0.2,0.4, 1") == [0.2, 0.4, 1.0]
    for bad, match in (("0.2,abc", "numbers"), ("0,0.5", "> 0"), ("-1", "> 0"), ("", "numbers")):
        with pytest.raises(PPGANError, match=match):
            parse_truncations(bad)


def test_predictor_prefers_ema(weight_file):
    path, model = weight_file
    ema = GANPredictor(weight_path=path, device="cpu")
    plain = GANPredictor(weight_path=path, device="cpu", use_ema=False)
    assert (ema.net_name, plain.net_name) == ("netG_ema", "netG")
    z, y = torch.randn(4, 16), torch.tensor([0, 3, 5, 9])
    with torch.no_grad():
        for pred, name in ((ema, "netG_ema"), (plain, "netG")):
            net = model.nets[name].eval()
            torch.testing.assert_close(pred.netG(z, y), net(z, y))


def test_truncation_shrinks_variety(weight_file):
    pred = GANPredictor(weight_path=weight_file[0], device="cpu")
    spread = {}
    for t in (0.2, 1.0, None):
        imgs, classes = pred.generate(20, class_id=4, seed=1, truncation=t)
        assert classes.tolist() == [4] * 20
        spread[t] = imgs.std(0).mean().item()
    assert spread[0.2] < spread[1.0] < spread[None]
    a, _ = pred.generate(6, seed=2, truncation=0.5)
    b, _ = pred.generate(6, seed=2, truncation=0.5)
    assert torch.equal(a, b)


def test_cli_sweep_writes_one_grid_per_value(weight_file, tmp_path, capsys):
    out = tmp_path / "sweep"
    rc = gan_generate.main(["--weight_path", weight_file[0], "--truncation_sweep", "0.2,1.0", "--n", "20",
                            "--output_path", str(out), "--device", "cpu"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "generator: netG_ema" in printed
    assert sorted(os.listdir(out)) == ["truncation_0.20.png", "truncation_1.00.png"]
    grids = [cv2.imread(str(out / f), cv2.IMREAD_UNCHANGED) for f in sorted(os.listdir(out))]
    assert grids[0].shape == (2 + 2 * 34, 2 + 10 * 34)  # 20 samples of 32 px, one class per row of 10
    assert (grids[0].astype(int) - grids[1]).__abs__().mean() > 0

    rc = gan_generate.main(["--weight_path", weight_file[0], "--truncation", "0.5", "--n", "10", "--no_ema",
                            "--output_path", str(tmp_path / "one"), "--device", "cpu"])
    assert rc == 0 and "generator: netG of" in capsys.readouterr().out
    assert {"samples.png", "interpolation.png"} <= set(os.listdir(tmp_path / "one"))


@pytest.mark.parametrize("args,match", [
    (["--class_id", "10"], "class_id must be in 0..9"),
    (["--truncation", "0"], "> 0"),
    (["--truncation_sweep", "0.5,x"], "numbers"),
    (["--truncation", "0.5", "--truncation_sweep", "0.5"], "not both"),
])
def test_cli_bad_input_is_one_error_line(weight_file, tmp_path, capsys, args, match):
    rc = gan_generate.main(["--weight_path", weight_file[0], "--output_path", str(tmp_path / "x"), "--device",
                            "cpu", "--n", "4"] + args)
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("[ppgan]")]
    assert rc == 2 and len(err) == 1 and err[0].startswith("error:") and match in err[0]
    assert not (tmp_path / "x").exists() or not os.listdir(tmp_path / "x")

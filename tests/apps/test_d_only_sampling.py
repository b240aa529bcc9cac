"""Discriminator-only generation (ppgan/apps/d_sampler_predictor.py, applications/tools/d_only_sampling.py):
the ascent step against a hand computation on a linear D, the score rising on a trained D, batch
independence, the CLI's files and figures, and bad input as one error line."""
import os
import sys

import pytest
import torch
from torch import nn

from ppgan.apps.d_sampler_predictor import DiscriminatorSampler
from ppgan.engine import Trainer
from ppgan.utils.errors import PPGANError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "applications", "tools"))
import d_only_sampling  # noqa: E402


def gan_cfg():
    return {
        "total_iters": 2, "output_dir": "unused", "seed": 3,
        "model": {"name": "GANModel",
                  "generator": {"name": "MLPGenerator", "latent_dim": 2, "output_nc": 1, "size": 8,
                                "hidden_dims": [8]},
                  "discriminator": {"name": "MLPDiscriminator", "input_nc": 1, "size": 8, "hidden_dims": [16]},
                  "gan_criterion": {"name": "GANLoss", "gan_mode": "vanilla"},
                  "params": {"n_samples": 4}},
        "dataset": {"train": {"name": "digits", "num_samples": 8, "size": 8, "seed": 0, "batch_size": 4,
                              "num_workers": 0, "return_label": False}},
        "lr_scheduler": {"name": "ConstantLR", "learning_rate": 0.001},
        "optimizer": {"optimizer_G": {"name": "Adam", "net_names": ["netG"], "beta1": 0.5},
                      "optimizer_D": {"name": "Adam", "net_names": ["netD"], "beta1": 0.5}},
        "log_config": {"interval": 2, "visual_interval": 100},
        "snapshot_config": {"interval": 2},
    }


@pytest.fixture(scope="module")
def weight(tmp_path_factory):
    run = tmp_path_factory.mktemp("gan")
    Trainer(gan_cfg(), device="cpu", run_dir=str(run), quiet=True).train()
    return str(run / "iter_2_weight.pth")


class LinearD(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1, keepdim=True)


def test_ascent_step_by_hand(weight):
    s = DiscriminatorSampler(weight, device="cpu")
    assert (s.channels, s.size) == (1, 8)
    torch.manual_seed(0)
    w = torch.sign(torch.randn(1, 8, 8)) * (0.5 + torch.rand(1, 8, 8))  # |w| >= 0.5: every pixel moves
    s.netD = LinearD(w).eval()
    x0 = torch.rand(2, 1, 8, 8) * 1.6 - 0.8
    out = s.ascend(x0, steps=1, step_size=0.1)
    rms = w.pow(2).mean().sqrt()  # grad of <w, x> is w for every image
    torch.testing.assert_close(out, (x0 + 0.1 * w / rms).clamp(-1, 1))
    many = s.ascend(x0, steps=100, step_size=0.1)  # long enough: every pixel at the bound w points to
    torch.testing.assert_close(many, torch.sign(w).expand(2, 1, 8, 8))


def test_score_rises_on_a_trained_d_and_batches_do_not_interact(weight):
    s = DiscriminatorSampler(weight, device="cpu")
    x0, x, before, after = s.sample(n=5, steps=5, step_size=0.05, seed=1)
    assert x.shape == x0.shape == (5, 1, 8, 8) and before.shape == after.shape == (5,)
    assert x.min() >= -1 and x.max() <= 1 and not torch.equal(x, x0)
    assert (after > before).all()
    torch.testing.assert_close(s.scores(x), after)
    s.batch_size = 2  # 3 batches instead of 1: D runs in eval mode, so the same images
    _, x2, _, _ = s.sample(n=5, steps=5, step_size=0.05, seed=1)
    torch.testing.assert_close(x2, x)
    _, xn, _, _ = s.sample(n=5, steps=5, step_size=0.05, noise=0.01, seed=1)
    assert not torch.equal(xn, x)


def test_cli_writes_grids_and_figures(weight, tmp_path, capsys, monkeypatch):
    import json

    import ppgan.metrics.digit_accuracy as da

    # --eval_digits' classifier: an untrained one here (training it takes half a minute)
    monkeypatch.setattr(da, "train_digit_classifier",
                        lambda size, log=None, **kw: (da.DigitClassifier(size).eval(), 0.5))
    out = tmp_path / "out"
    rc = d_only_sampling.main(["--weight_path", weight, "--n", "4", "--steps", "3", "--output_path", str(out),
                               "--device", "cpu", "--eval_digits", "--json", str(tmp_path / "f.json")])
    assert rc == 0
    assert os.path.isfile(out / "start.png") and os.path.isfile(out / "samples.png")
    text = capsys.readouterr().out
    assert "mean D score (logit): before" in text and "recognised (confidence >= 0.9)" in text
    fig = json.loads((tmp_path / "f.json").read_text())
    assert fig["score_after"] > fig["score_before"] and fig["n"] == 4
    assert 0 <= fig["recognised_after"] <= 1 and len(fig["counts_after"]) == 10


@pytest.mark.parametrize("case", ["missing", "no_netD", "bad_n"])
def test_bad_input_is_one_error_line(case, weight, tmp_path, capsys):
    args = ["--weight_path", weight, "--output_path", str(tmp_path / "o"), "--steps", "1", "--device", "cpu"]
    if case == "missing":
        args[1] = str(tmp_path / "nope.pth")
    elif case == "no_netD":
        state = torch.load(weight, weights_only=True)
        del state["netD"]
        args[1] = str(tmp_path / "g_only.pth")
        torch.save(state, args[1])
    else:
        args += ["--n", "0"]
    assert d_only_sampling.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), err
    assert not os.path.exists(tmp_path / "o")


def test_bad_init_and_conditional_d(weight):
    s = DiscriminatorSampler(weight, device="cpu")
    with pytest.raises(PPGANError):
        s.initial(2, init="checkerboard")
    cfg = gan_cfg()["model"]
    cfg["discriminator"] = {"name": "NLayerDiscriminatorWithClassification", "input_nc": 1}
    with pytest.raises(PPGANError):
        DiscriminatorSampler(weight, config={"model": cfg}, device="cpu")


def test_init_from_the_files_generator(weight):
    from ppgan.apps.gan_predictor import GANPredictor

    s = DiscriminatorSampler(weight, device="cpu")
    x0 = s.initial(3, seed=2, init="generator")
    torch.testing.assert_close(x0, GANPredictor(weight_path=weight, device="cpu").generate(3, seed=2)[0])
    x0_, x, before, after = s.sample(n=3, steps=2, step_size=0.05, seed=2, init="generator")
    torch.testing.assert_close(x0_, x0)
    assert (after > before).all()


def test_self_conditioned_d_is_scored_by_its_soft_maximum_over_clusters(tmp_path):
    """A self-conditioned GAN's D (a projection on K clusters, configs/dcgan_digits.yaml) scores an
    image by log(mean_y exp D(x, y)); the ascent climbs it, and generator init works."""
    import math

    cfg = gan_cfg()
    cfg["model"]["generator"] = {"name": "DCGenerator", "input_nz": 4, "input_nc": 1, "output_nc": 1, "ngf": 4,
                                 "output_size": 8, "n_categorical": 3}
    cfg["model"]["discriminator"] = {"name": "DCDiscriminator", "input_nc": 1, "ndf": 4, "input_size": 8,
                                     "norm_type": "batch", "n_class": 3}
    cfg["model"]["params"].update(self_condition=True, recluster_iters=[1], cluster_bank=8)
    Trainer(cfg, device="cpu", run_dir=str(tmp_path), quiet=True).train()
    s = DiscriminatorSampler(str(tmp_path / "iter_2_weight.pth"), device="cpu")
    assert s.n_class == 3
    x = s.initial(4, seed=1)
    with torch.no_grad():
        per_class = torch.stack([s.netD(x, torch.full((4,), y)).flatten() for y in range(3)], 1)
        torch.testing.assert_close(s.netD.class_scores(x), per_class)
        torch.testing.assert_close(s.score(x), torch.logsumexp(per_class, 1) - math.log(3))
    _, _, before, after = s.sample(n=4, steps=5, step_size=0.05, seed=1)
    assert (after > before).all()
    assert s.initial(2, init="generator").shape == (2, 1, 8, 8)

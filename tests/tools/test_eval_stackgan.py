"""tools/eval_stackgan.py: caption match of generated digits, chance levels and the real-image ceiling."""
import copy
import json
import os
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
import eval_stackgan  # noqa: E402

from ppgan.datasets.captioned import COLOURS, CaptionedDigitsDataset  # noqa: E402
from ppgan.metrics.digit_accuracy import DigitClassifier  # noqa: E402
from ppgan.utils.text import get_vocabulary  # noqa: E402

FAST = ["--epochs", "1", "--classifier_samples", "256"]


class _Model:
    """Stand-in generator: draws images with a function of the batch position."""

    def __init__(self, draw):
        self.draw, self.seen = draw, 0

    def generate(self, tokens, lengths, z=None, generator=None, stage=None):
        out = torch.stack([self.draw(self.seen + i, tokens[i], int(lengths[i])) for i in range(len(tokens))])
        self.seen += len(tokens)
        return out


class _Pred:
    def __init__(self, draw, size=16):
        self.model, self.vocab, self.image_size, self.stage = _Model(draw), get_vocabulary("digits"), size, 1


def _classifier():
    torch.manual_seed(0)
    return DigitClassifier(32).eval()  # untrained: the test compares fake with real through the same judge


def test_an_oracle_matches_the_real_ceiling_and_shuffling_drops_to_chance():
    n = 90
    real = CaptionedDigitsDataset(num_samples=n, size=16, split="test")
    pred = _Pred(lambda i, tokens, length: real[i]["img"])  # "generates" the held-out image itself
    r = eval_stackgan.evaluate(pred, _classifier(), n)
    assert r["n"] == n and r["chance_digit"] == 0.1 and r["chance_colour"] == pytest.approx(1 / 6)
    assert r["colour_match"] == 1.0 == r["real_colour_match"]
    assert r["digit_match"] == r["real_digit_match"] and r["both_match"] == r["real_both_match"]
    colours = np.array([int(real[i]["colour"]) for i in range(n)])
    # shuffled captions: a colour matches about as often as two random captions share a colour
    expected = sum((np.bincount(colours, minlength=6) / n) ** 2)
    assert abs(r["shuffled_colour_match"] - expected) < 0.15
    assert set(r["per_colour"]) <= set(COLOURS) and sorted(r["per_digit"]) == list(range(10))


def test_an_image_that_ignores_its_caption_scores_its_colour_share():
    n = 60
    real = CaptionedDigitsDataset(num_samples=n, size=16, split="test")
    img = torch.full((3, 16, 16), -1.0)
    img[0, 4:12, 7:9] = 1.0  # a red bar on black
    pred = _Pred(lambda i, tokens, length: img)
    r = eval_stackgan.evaluate(pred, _classifier(), n)
    share_red = np.mean([int(real[i]["colour"]) == 0 for i in range(n)])
    assert r["colour_match"] == pytest.approx(share_red) and r["shuffled_colour_match"] == pytest.approx(share_red)
    assert r["no_colour"] == 0.0
    # grey ink matches no caption colour
    grey = torch.full((3, 16, 16), -1.0)
    grey[:, 4:12, 7:9] = 0.6
    r = eval_stackgan.evaluate(_Pred(lambda i, t, l: grey), _classifier(), 20)
    assert r["colour_match"] == 0.0 and r["no_colour"] == 1.0


# A 16 px stage-I StackGAN after 2 iterations (its images are noise: enough for the tool's plumbing).
TINY = {
    "total_iters": 2, "output_dir": "output_dir", "seed": 0,
    "model": {"name": "StackGANModel", "stage": 1, "vocabulary": "digits",
              "text_encoder": {"embed_dim": 4, "hidden_dim": 4},
              "generator": {"name": "StackGANStageI", "c_dim": 4, "z_dim": 4, "ngf": 4, "output_size": 16},
              "discriminator": {"name": "StackGANDiscriminator", "c_dim": 4, "ndf": 4, "input_size": 16},
              "params": {"n_samples": 4, "samples_every_row": 2}},
    "dataset": {"train": {"name": "captioned_digits", "num_samples": 8, "size": 16, "batch_size": 4}},
    "lr_scheduler": {"name": "MultiStepDecay", "learning_rate": 0.0002, "milestones": [1000]},
    "optimizer": {"optimizer_G": {"name": "Adam", "net_names": ["netG"], "beta1": 0.5},
                  "optimizer_D": {"name": "Adam", "net_names": ["netD", "netT"], "beta1": 0.5}},
    "log_config": {"interval": 2, "visual_interval": 0},
    "snapshot_config": {"interval": 2},
}


def test_cli_on_a_trained_file(tmp_path, capsys):
    from ppgan.engine import Trainer

    Trainer(copy.deepcopy(TINY), device="cpu", quiet=True, run_dir=str(tmp_path / "run")).train()
    weights = str(tmp_path / "run" / "iter_2_weight.pth")
    out, grid = tmp_path / "m.json", tmp_path / "m.png"
    code = eval_stackgan.main(["--weight_path", weights, "--n", "20", "--json", str(out), "--grid", str(grid),
                               "--device", "cpu"] + FAST)
    text = capsys.readouterr().out
    assert code == 0
    assert "digit matches" in text and "colour matches" in text and "both matches" in text
    r = json.loads(out.read_text())
    assert r["n"] == 20 and r["stage"] == 1 and r["image_size"] == 16 and r["weight_path"] == weights
    for k in ("digit", "colour", "both"):
        assert 0 <= r[f"{k}_match"] <= 1 and 0 <= r[f"shuffled_{k}_match"] <= 1
    assert r["real_colour_match"] == 1.0 and 0 <= r["classifier_accuracy_on_real_digits"] <= 1
    assert os.path.isfile(grid) and len(r["grid_captions"]) == 20

    code = eval_stackgan.main(["--weight_path", weights, "--n", "0"] + FAST)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --n")
    code = eval_stackgan.main(["--weight_path", str(tmp_path / "none.pth")] + FAST)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:")

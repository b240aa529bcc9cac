"""tools/eval_digits.py unconditional mode: recognised share, classes, KL, PacGAN mode coverage."""
import json
import os
import sys

import pytest
import torch

from conftest import ROOT, TINY_GAN

sys.path.insert(0, os.path.join(ROOT, "tools"))
import eval_digits  # noqa: E402

FAST = ["--epochs", "1", "--classifier_samples", "256", "--no_cache"]


def _train_tiny(tmp_path_factory, name, **params):
    import copy

    from ppgan.engine import Trainer

    cfg = copy.deepcopy(TINY_GAN)
    cfg.update(total_iters=2, snapshot_config={"interval": 2})
    cfg["log_config"] = {"interval": 2, "visual_interval": 0}
    if params:
        cfg["model"]["params"] = params
    run = tmp_path_factory.mktemp(name) / "run"
    Trainer(cfg, device="cpu", quiet=True, run_dir=str(run)).train()
    return str(run / "iter_2_weight.pth")


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """A 16-px unconditional DCGAN after 2 iterations (its samples are noise, which is enough here)."""
    return _train_tiny(tmp_path_factory, "uncond")


def test_unconditional_mode_reports_shares_classes_and_kl(tiny_weights, tmp_path, capsys):
    out = tmp_path / "q.json"
    assert eval_digits.main(["--weight_path", tiny_weights, "--n", "70", "--json", str(out)] + FAST) == 0
    text = capsys.readouterr().out
    assert "recognised (confidence >= 0.9)" in text and "modes covered (>= 1 sample, PacGAN)" in text
    q = json.loads(out.read_text())
    assert q["mode"] == "unconditional" and q["n"] == 70 and q["weight_path"] == tiny_weights
    assert sum(q["counts_all"]) == 70 and sum(q["counts"]) == round(q["recognised"] * 70)
    assert q["classes_present"] == sum(c > 0 for c in q["counts"])
    assert q["modes_covered"] == sum(c > 0 for c in q["counts_all"]) >= 1
    assert 0 <= q["kl_all"] <= torch.log(torch.tensor(10.0)).item() + 1e-9


def test_several_files_share_one_classifier(tiny_weights, tmp_path, capsys):
    out = tmp_path / "q.json"
    assert eval_digits.main(["--weight_path", tiny_weights, tiny_weights, "--n", "9", "--seed", "3",
                             "--json", str(out)] + FAST) == 0
    text = capsys.readouterr().out
    assert text.count("classifier accuracy on held-out real digits") == 1
    q = json.loads(out.read_text())
    assert isinstance(q, list) and len(q) == 2
    assert q[0]["counts_all"] == q[1]["counts_all"]  # same file, same seed, same samples


@pytest.mark.parametrize("args, words", [
    (["--n", "0"], "--n"),
    (["--threshold", "1.5"], "--threshold"),
])
def test_bad_values_are_one_error_line(tiny_weights, capsys, args, words):
    assert eval_digits.main(["--weight_path", tiny_weights] + args + FAST) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("[ppgan] device")]
    assert len(err) == 1 and err[0].startswith("error:") and words in err[0]


def test_missing_weight_file_fails_before_training_the_classifier(tmp_path, capsys):
    assert eval_digits.main(["--weight_path", str(tmp_path / "nope.pth")] + FAST) == 2
    cap = capsys.readouterr()
    err = [line for line in cap.err.splitlines() if not line.startswith("[ppgan] device")]
    assert "classifier" not in cap.out + cap.err and len(err) == 1 and "nope.pth" in err[0]


def test_moving_average_generator_is_preferred(tmp_path_factory, tmp_path):
    weights = _train_tiny(tmp_path_factory, "ema", ema_decay=0.5)
    state = torch.load(weights, weights_only=True)
    ema = state["netG_ema"]
    assert any(not torch.equal(ema[k], state["netG"][k]) for k in ema)  # two different generators
    res = {}
    for flag in ([], ["--no_ema"]):
        out = tmp_path / f"q{len(flag)}.json"
        assert eval_digits.main(["--weight_path", weights, "--n", "40", "--threshold", "0.2",
                                 "--json", str(out)] + flag + FAST) == 0
        res[bool(flag)] = json.loads(out.read_text())
    assert res[False]["generator"] == "netG_ema" and res[True]["generator"] == "netG"

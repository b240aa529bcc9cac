"""The digit judge of ppgan.metrics.digit_accuracy: its "not a digit" class, the ten-digit
probabilities, the cache under $PPGAN_HOME and the ceiling report."""
import os

import numpy as np
import pytest
import torch

from ppgan.metrics import digit_accuracy as da


def test_not_digit_samples_are_deterministic_images_of_every_kind():
    for kind in range(5):
        a = da.not_digit_sample(24, np.random.default_rng(3), kind)
        b = da.not_digit_sample(24, np.random.default_rng(3), kind)
        assert a.shape == (24, 24) and a.dtype == np.uint8
        assert np.array_equal(a, b)
    # the kinds differ: noise is busy, the flat kind is dark and quiet, strokes/blobs leave black background
    rng = np.random.default_rng(0)
    noise, flat = da.not_digit_sample(32, rng, 0), da.not_digit_sample(32, rng, 2)
    assert noise.std() > 40 and flat.std() < 10 and flat.mean() < 70
    strokes = da.not_digit_sample(32, rng, 4)
    assert (strokes == 0).mean() > 0.5 and strokes.max() >= 150


def test_reject_class_and_ten_digit_probabilities():
    torch.manual_seed(0)
    model = da.DigitClassifier(16, width=4, reject=True).eval()
    x = torch.rand(5, 1, 16, 16) * 2 - 1
    assert model(x).shape == (5, 11)
    probs = da.classify_probs(model, x)
    full = torch.softmax(model(x), 1)
    assert probs.shape == (5, 10)
    assert torch.allclose(probs.sum(1), 1 - full[:, da.NOT_A_DIGIT], atol=1e-6)
    assert da.DigitClassifier(16, width=4)(x).shape == (5, 10)  # the earlier 10-class net


def test_judge_rejects_noise_and_reports_its_ceiling():
    """A small judge (16 px, 3,000 digits, 2 epochs): noise goes to 'not a digit', real digits do not."""
    model, acc = da.train_digit_classifier(size=16, num_samples=3000, epochs=2, cache=False)
    assert acc > 0.85
    r = da.judge_report(model, size=16, threshold=0.5, n=300)
    assert r["real_accuracy"] > 0.8 and r["real_recognised"] > 0.3  # a tiny judge is unsure of real digits,
    assert r["noise_recognised"] < 0.05                               # but not about noise
    noise = torch.rand(200, 1, 16, 16) * 2 - 1
    assert (model(noise).argmax(1) == da.NOT_A_DIGIT).float().mean() > 0.95


def test_cache_stores_once_and_reloads_the_same_judge(tmp_path, monkeypatch):
    monkeypatch.setenv("PPGAN_HOME", str(tmp_path / "home"))
    kw = dict(size=16, num_samples=300, epochs=1, cache=True)
    first, acc = da.train_digit_classifier(**kw)
    files = os.listdir(tmp_path / "home" / "digit_classifier")
    assert len(files) == 1 and "-reject" in files[0] and "-n300-e1-" in files[0]

    def no_training(*a, **k):
        raise AssertionError("trained again instead of loading the cache")

    monkeypatch.setattr(da, "_digits", no_training)
    second, acc2 = da.train_digit_classifier(**kw)
    assert acc2 == pytest.approx(acc)
    for (k1, v1), (k2, v2) in zip(first.state_dict().items(), second.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    with pytest.raises(AssertionError, match="trained again"):  # other settings: another file
        da.train_digit_classifier(**dict(kw, epochs=2))


def test_damaged_cache_file_is_trained_again_and_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("PPGAN_HOME", str(tmp_path / "home"))
    kw = dict(size=16, num_samples=300, epochs=1, cache=True, reject=False)
    path = da._cache_path(16, 300, 1, 1234, 128, False)
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(b"not a torch file")
    model, acc = da.train_digit_classifier(**kw)
    assert 0.0 <= acc <= 1.0 and model(torch.zeros(1, 1, 16, 16)).shape == (1, 10)
    reloaded = torch.load(path, weights_only=True)
    assert set(reloaded) == {"state_dict", "accuracy"}


def test_unwritable_cache_still_returns_the_judge(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.write_text("a file where the cache folder should go")  # makedirs under it fails
    monkeypatch.setenv("PPGAN_HOME", str(home))
    said = []
    model, acc = da.train_digit_classifier(size=16, num_samples=300, epochs=1, cache=True, log=said.append)
    assert 0.0 <= acc <= 1.0 and model(torch.zeros(1, 1, 16, 16)).shape == (1, 11)
    assert any("not stored" in m for m in said)

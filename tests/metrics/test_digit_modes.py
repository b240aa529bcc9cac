"""Mode-coverage maths of ppgan.metrics.digit_accuracy (unconditional digits GANs)."""
import math

import numpy as np
import pytest
import torch

from ppgan.metrics.digit_accuracy import DigitModes, classify_probs, kl_to_uniform, mode_stats


def test_kl_to_uniform_by_hand():
    assert kl_to_uniform([5] * 10) == pytest.approx(0.0, abs=1e-12)
    assert kl_to_uniform([7] + [0] * 9) == pytest.approx(math.log(10))
    # p = (3/4, 1/4) against (1/2, 1/2)
    assert kl_to_uniform([3, 1]) == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    assert kl_to_uniform([0, 0, 0]) == pytest.approx(math.log(3))  # nothing generated: as bad as one mode


def _onehot_probs(classes, conf, k=10):
    """Rows with probability `conf` on the class and the rest spread evenly."""
    p = np.full((len(classes), k), 0.0)
    for i, (c, q) in enumerate(zip(classes, conf)):
        p[i, :] = (1 - q) / (k - 1)
        p[i, c] = q
    return torch.from_numpy(p)


def test_mode_stats_counts_recognised_and_coverage():
    # 20 samples: 12 confident (0.95) in classes 0,0,0,0,1,1,1,1,2,2,2,2; 8 unsure (0.5): 7 in class 3, 1 in class 4
    classes = [0] * 4 + [1] * 4 + [2] * 4 + [3] * 7 + [4]
    conf = [0.95] * 12 + [0.5] * 8
    s = mode_stats(_onehot_probs(classes, conf), threshold=0.9, min_share=0.1)
    assert s["n"] == 20
    assert s["recognised"] == pytest.approx(12 / 20)
    assert s["counts"] == [4, 4, 4] + [0] * 7
    assert s["classes_present"] == 3
    assert s["kl_recognised"] == pytest.approx(math.log(10 / 3))  # three equal modes of ten
    assert s["counts_all"] == [4, 4, 4, 7, 1] + [0] * 5
    assert s["modes_covered"] == 5  # PacGAN: one sample is enough (class 4)
    assert s["modes_min_share"] == 4  # class 4 holds 1/20 < 10%
    p = np.array([4, 4, 4, 7, 1]) / 20
    assert s["kl_all"] == pytest.approx(float(np.sum(p * np.log(p * 10))))


def test_mode_stats_threshold_is_inclusive_and_shape_checked():
    s = mode_stats(_onehot_probs([5, 6], [0.9, 0.89]), threshold=0.9)
    assert s["counts"][5] == 1 and s["counts"][6] == 0
    with pytest.raises(ValueError):
        mode_stats(torch.zeros(0, 10))


def test_digit_modes_metric_accumulates_batches():
    metric = DigitModes(size=16, num_samples=256, epochs=1, threshold=0.5, cache=False)
    gen = torch.Generator().manual_seed(0)
    a, b = torch.rand(6, 1, 16, 16, generator=gen) * 2 - 1, torch.rand(5, 1, 16, 16, generator=gen) * 2 - 1
    metric.update(a, None)
    metric.update(b, None)
    s = metric.stats()
    probs = classify_probs(metric.model, torch.cat([a, b]))
    assert s["n"] == 11 and sum(s["counts_all"]) == 11
    assert s["recognised"] == pytest.approx(float((probs.max(1).values >= 0.5).double().mean()))
    assert metric.accumulate() == s["recognised"]
    metric.reset()
    assert metric.stats() is None and metric.accumulate() == 0.0

"""MAE metric: PSNR's preparation rules (crop, order, Y channel), mean absolute difference."""
import numpy as np
import pytest
import torch

from ppgan.metrics import build_metric, calculate_mae


def test_calculate_mae_values():
    a = np.zeros((8, 8, 3))
    b = a + 10
    b[0, 0] = 250  # a corner outside the cropped region
    assert calculate_mae(a, b, crop_border=1) == pytest.approx(10.0)
    assert calculate_mae(a, b, crop_border=1, test_y_channel=True) == pytest.approx(10 * 219.0 / 255.0)
    assert calculate_mae(a.transpose(2, 0, 1), b.transpose(2, 0, 1), 1, input_order="CHW") == pytest.approx(10.0)


def test_mae_metric_on_tensors_in_minus1_1():
    m = build_metric({"name": "MAE", "min_max": [-1, 1]})
    x = torch.zeros(2, 3, 8, 8)
    m.update(x, x + 2 * 51 / 255.0)  # 51 grey levels apart
    assert m.accumulate() == pytest.approx(51.0, abs=1.0)

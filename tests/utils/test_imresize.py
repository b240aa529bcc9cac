"""MATLAB-compatible bicubic imresize: kernel weights, borders, sizes, dtypes, speed."""
import time

import numpy as np
import pytest

from ppgan.utils.image import imresize, imresize_weights


# MATLAB's bicubic (a = -0.5) weights: x0.5 with antialiasing is the kernel stretched x2 at
# offsets +-0.25, +-0.75, +-1.25, +-1.75 (input pixels / 2), normalised by their sum (2):
HALF = np.array([-0.0234375, -0.0703125, 0.2265625, 0.8671875, 0.8671875, 0.2265625, -0.0703125, -0.0234375]) / 2
# x2: output pixel 1 sits at input 0.75: offsets 1.75, 0.75, -0.25, -1.25 from pixels 0, 1, 2, 3 (1-based)
DOUBLE_FIRST = np.array([-0.0234375, 0.2265625, 0.8671875, -0.0703125])


def test_constant_image_stays_constant():
    img = np.full((13, 17, 3), 0.3)
    for s in (0.25, 0.5, 1 / 3, 0.7, 1.5, 2, 4):
        out = imresize(img, s)
        np.testing.assert_allclose(out, 0.3, atol=1e-12)


def test_linear_ramp_stays_linear_in_the_interior():
    x = np.arange(40, dtype=np.float64)
    img = np.tile(0.01 * x, (6, 1))  # H=6, W=40 ramp along W
    up = imresize(img, 2)  # output column j (0-based) sits at input (j + 0.5) / 2 - 0.5
    pos = (np.arange(80) + 0.5) / 2 - 0.5
    np.testing.assert_allclose(up[:, 6:-6], np.tile(0.01 * pos, (12, 1))[:, 6:-6], atol=1e-12)
    down = imresize(img, 0.5)
    pos = (np.arange(20) + 0.5) * 2 - 0.5
    np.testing.assert_allclose(down[:, 3:-3], np.tile(0.01 * pos, (3, 1))[:, 3:-3], atol=1e-12)


def test_half_scale_matches_hand_computed_antialiased_cubic():
    rng = np.random.default_rng(0)
    row = rng.random(16)
    out = imresize(row[None, :].repeat(4, 0), 0.5)[0]
    # interior output pixel k (0-based) covers input pixels 2k-3 .. 2k+4
    for k in (2, 3, 4, 5):
        np.testing.assert_allclose(out[k], HALF @ row[2 * k - 3:2 * k + 5], atol=1e-12)
    # border: indices -3, -2, -1 mirror to 2, 1, 0 (the edge pixel is repeated)
    np.testing.assert_allclose(out[0], HALF @ row[[2, 1, 0, 0, 1, 2, 3, 4]], atol=1e-12)
    np.testing.assert_allclose(out[7], HALF @ row[[11, 12, 13, 14, 15, 15, 14, 13]], atol=1e-12)


def test_double_scale_matches_hand_computed_cubic():
    row = np.array([0.1, 0.7, 0.2, 0.9, 0.4, 0.3])
    out = imresize(row[None, :], 2)[0]
    np.testing.assert_allclose(out[0], DOUBLE_FIRST @ row[[1, 0, 0, 1]], atol=1e-12)  # 1.09375 a1 - 0.09375 a2
    np.testing.assert_allclose(out[0], 1.09375 * row[0] - 0.09375 * row[1], atol=1e-12)
    np.testing.assert_allclose(out[4], DOUBLE_FIRST @ row[0:4], atol=1e-12)  # at input 2.75 (1-based)
    np.testing.assert_allclose(out[5], DOUBLE_FIRST[::-1] @ row[1:5], atol=1e-12)  # at input 3.25


def test_weights_rows_sum_to_one_and_indices_in_range():
    for n_in, s in ((7, 0.25), (10, 1 / 3), (5, 3), (9, 0.9)):
        n_out = int(np.ceil(n_in * s))
        w, idx = imresize_weights(n_in, n_out, s)
        np.testing.assert_allclose(w.sum(1), 1, atol=1e-12)
        assert idx.min() >= 0 and idx.max() < n_in
    w, _ = imresize_weights(10, 5, 0.5, antialiasing=False)  # plain cubic: 4 non-zero taps
    assert (np.abs(w) > 1e-12).sum(1).max() == 4


def test_output_size_is_ceil():
    img = np.zeros((7, 5, 3), np.float32)
    assert imresize(img, 0.5).shape == (4, 3, 3)
    assert imresize(np.zeros((10, 11)), 1 / 3).shape == (4, 4)
    assert imresize(np.zeros((12, 8, 1)), 0.25).shape == (3, 2, 1)
    assert imresize(np.zeros((3, 5, 3)), 2.5).shape == (8, 13, 3)
    assert imresize(np.zeros((6, 8)), (0.5, 2)).shape == (3, 16)


def test_dtypes_uint8_round_trip_and_hw_vs_hwc():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)
    out = imresize(img, 0.5)
    assert out.dtype == np.uint8 and out.shape == (12, 10, 3)
    ref = imresize(img.astype(np.float64), 0.5)
    np.testing.assert_array_equal(out, np.clip(np.floor(ref + 0.5), 0, 255))
    # HW equals each channel of HWC
    for c in range(3):
        np.testing.assert_allclose(imresize(img[..., c].astype(np.float64), 0.5), ref[..., c], atol=1e-12)
    # float32 stays float32, float64 stays float64
    assert imresize(img.astype(np.float32) / 255, 2).dtype == np.float32
    assert imresize(img / 255.0, 2).dtype == np.float64
    # bicubic up then down on a smooth image nearly round-trips
    yy, xx = np.mgrid[0:32, 0:32] / 32.0
    smooth = (0.5 + 0.4 * np.sin(2 * np.pi * xx) * np.cos(2 * np.pi * yy))
    back = imresize(imresize(smooth, 2), 0.5)
    assert np.abs(back - smooth)[4:-4, 4:-4].max() < 0.01


def test_bad_input():
    with pytest.raises(ValueError):
        imresize(np.zeros((2, 2, 2, 2)), 2)
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)), 0)


def test_speed_div2k_image():
    img = np.random.default_rng(0).random((1356, 2040, 3))
    t = time.perf_counter()
    out = imresize(img, 0.25)
    assert out.shape == (339, 510, 3)
    assert time.perf_counter() - t < 1.5  # about 0.3 s on one core

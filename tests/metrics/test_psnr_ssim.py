"""PSNR / SSIM against scikit-image, closed-form values and hand-computed Y channels."""
import math
import multiprocessing
import socket

import cv2
import numpy as np
import pytest
import torch
import torch.distributed as dist
from skimage import color, data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ppgan.metrics import METRICS, PSNR, SSIM, build_metric, calculate_psnr, calculate_ssim
from ppgan.metrics.psnr_ssim import bgr2ycbcr, reorder_image, rgb2ycbcr, to_y_channel
from ppgan.utils.errors import ConfigError
from ppgan.utils.visual import tensor2img

# scikit-image with gaussian_weights=True, sigma=1.5 filters with a truncate=3.5 Gaussian, i.e.
# radius int(3.5 * 1.5 + 0.5) = 5: the same normalised 11x11 window as cv2.getGaussianKernel(11, 1.5).
# It then averages the SSIM map cropped by (11 - 1) // 2 = 5 pixels per side, the same valid
# region as [5:-5]. The two differ only in the order of float64 operations, hence 1e-9.
SSIM_TOL = 1e-9
SK_SSIM = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)


@pytest.fixture(scope="module")
def photos():
    """A 192x160 crop of `astronaut` (uint8 RGB) and three distorted float64 versions."""
    gt = data.astronaut()[100:292, 150:310]
    rng = np.random.default_rng(0)
    noisy = np.clip(gt + rng.normal(0, 12, gt.shape), 0, 255)
    blurred = cv2.GaussianBlur(gt, (7, 7), 2.0).astype(np.float64)
    jpeg = cv2.imdecode(cv2.imencode(".jpg", gt, [cv2.IMWRITE_JPEG_QUALITY, 30])[1], cv2.IMREAD_UNCHANGED)
    return gt, {"noisy": noisy, "blurred": blurred, "jpeg": jpeg}


def hand_y(img):
    """BT.601 Y of an RGB image in [0, 255], written out by hand."""
    img = img.astype(np.float64)
    return 16. + (65.481 * img[..., 0] + 128.553 * img[..., 1] + 24.966 * img[..., 2]) / 255.


@pytest.mark.parametrize("kind", ["noisy", "blurred", "jpeg"])
def test_psnr_matches_skimage(photos, kind):
    gt, distorted = photos
    out = distorted[kind]
    assert calculate_psnr(out, gt, 0) == pytest.approx(peak_signal_noise_ratio(gt, out, data_range=255), rel=1e-12)


@pytest.mark.parametrize("kind", ["noisy", "blurred", "jpeg"])
def test_ssim_matches_skimage(photos, kind):
    gt, distorted = photos
    out = distorted[kind]
    ref = structural_similarity(gt.astype(np.float64), out.astype(np.float64), channel_axis=-1, **SK_SSIM)
    assert calculate_ssim(out, gt, 0) == pytest.approx(ref, abs=SSIM_TOL)
    assert 0.2 < ref < 0.99  # a real distortion, not a trivial case


def test_identical_images():
    img = data.astronaut()[:64, :64]
    assert calculate_psnr(img, img, 0) == math.inf
    assert calculate_ssim(img, img, 0) == pytest.approx(1.0, abs=1e-12)


def test_constant_offset_psnr():
    img = data.camera()[:80, :80].astype(np.float64) * 0.9  # [0, 230]: +10 does not clip
    # MSE = 10^2 exactly, so PSNR = 20 log10(255 / 10).
    assert calculate_psnr(img + 10, img, 0) == pytest.approx(20 * math.log10(255 / 10), rel=1e-12)
    assert calculate_psnr(img + 10, img, 0, test_y_channel=True) == pytest.approx(20 * math.log10(25.5), rel=1e-12)


def test_constant_offset_ssim_is_luminance_term():
    # Shifting by a constant leaves variances and covariance unchanged, so SSIM reduces to the
    # luminance term (2 mu1 mu2 + C1) / (mu1^2 + mu2^2 + C1), averaged over windows.
    img = np.full((40, 40), 100.)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100 ** 2 + 110 ** 2 + c1)
    assert calculate_ssim(img + 10, img, 0) == pytest.approx(expected, rel=1e-12)


def test_crop_border(photos):
    gt, distorted = photos
    out, c = distorted["noisy"], 7
    inner = (slice(c, -c), slice(c, -c))
    assert calculate_psnr(out, gt, c) == pytest.approx(
        peak_signal_noise_ratio(gt[inner], out[inner], data_range=255), rel=1e-12)
    ref = structural_similarity(gt[inner].astype(np.float64), out[inner], channel_axis=-1, **SK_SSIM)
    assert calculate_ssim(out, gt, c) == pytest.approx(ref, abs=SSIM_TOL)
    # Images that differ only inside the border are identical once it is cropped.
    spoiled = gt.copy()
    spoiled[:c] = 0
    spoiled[:, -c:] = 255
    assert calculate_psnr(spoiled, gt, c) == math.inf
    assert calculate_psnr(spoiled, gt, 0) < 30


def test_chw_order_and_gray(photos):
    gt, distorted = photos
    out = distorted["blurred"]
    chw = lambda x: np.ascontiguousarray(x.transpose(2, 0, 1))  # noqa: E731
    assert calculate_psnr(chw(out), chw(gt), 3, input_order="CHW") == calculate_psnr(out, gt, 3)
    ssim_chw = calculate_ssim(chw(out), chw(gt), 3, input_order="CHW")
    assert ssim_chw == pytest.approx(calculate_ssim(out, gt, 3), abs=1e-14)
    # 2-D gray images: one channel, input_order is irrelevant.
    g1, g2 = out[..., 1], gt[..., 1].astype(np.float64)
    ref = structural_similarity(g2, g1, **SK_SSIM)
    for order in ("HWC", "CHW"):
        assert calculate_ssim(g1, g2, 0, input_order=order) == pytest.approx(ref, abs=SSIM_TOL)
    assert reorder_image(g1).shape == g1.shape + (1,)
    assert reorder_image(chw(out), "CHW").shape == out.shape


def test_y_channel(photos):
    gt, distorted = photos
    out = distorted["noisy"]
    y_out, y_gt = hand_y(out), hand_y(gt)
    np.testing.assert_allclose(to_y_channel(gt)[..., 0], y_gt, rtol=1e-12)
    assert to_y_channel(gt).shape == gt.shape[:2] + (1,)
    assert calculate_psnr(out, gt, 2, test_y_channel=True) == pytest.approx(
        peak_signal_noise_ratio(y_gt[2:-2, 2:-2], y_out[2:-2, 2:-2], data_range=255), rel=1e-12)
    assert calculate_ssim(out, gt, 2, test_y_channel=True) == pytest.approx(
        structural_similarity(y_gt[2:-2, 2:-2], y_out[2:-2, 2:-2], **SK_SSIM), abs=SSIM_TOL)
    # A gray (1-channel) image has no Y conversion.
    g = gt[..., :1].astype(np.float64)
    np.testing.assert_array_equal(to_y_channel(g), g)


def test_rgb2ycbcr(photos):
    gt, _ = photos
    # scikit-image's rgb2ycbcr is BT.601 on [0, 1] input with output on the [16, 235] scale.
    ref = color.rgb2ycbcr(gt)
    np.testing.assert_allclose(rgb2ycbcr(gt.astype(np.float64) / 255.) * 255., ref, atol=1e-9)
    np.testing.assert_allclose(rgb2ycbcr(gt.astype(np.float32) / 255., y_only=True) * 255., ref[..., 0], atol=1e-3)
    assert rgb2ycbcr(gt.astype(np.float32) / 255.).dtype == np.float32
    u8 = rgb2ycbcr(gt)
    assert u8.dtype == np.uint8
    np.testing.assert_array_equal(u8, np.round(ref).astype(np.uint8))
    np.testing.assert_array_equal(rgb2ycbcr(gt, y_only=True), np.round(hand_y(gt)).astype(np.uint8))
    np.testing.assert_array_equal(bgr2ycbcr(gt[..., ::-1]), u8)
    black_white = np.array([[[0, 0, 0], [255, 255, 255]]], np.uint8)
    np.testing.assert_array_equal(rgb2ycbcr(black_white), [[[16, 128, 128], [235, 128, 128]]])
    before = gt.copy()
    rgb2ycbcr(gt), to_y_channel(gt)
    np.testing.assert_array_equal(gt, before)  # inputs are not modified


@pytest.mark.parametrize("fn", [calculate_psnr, calculate_ssim])
def test_bad_inputs(fn):
    a = np.zeros((16, 16, 3))
    with pytest.raises(ValueError, match="'HWC' and 'CHW'"):
        fn(a, a, 0, input_order="NHWC")
    with pytest.raises(ValueError, match="shapes differ"):
        fn(a, np.zeros((16, 15, 3)), 0)
    with pytest.raises(ValueError, match="crop_border"):
        fn(a, a, -1)
    with pytest.raises(ValueError, match="crop_border"):
        fn(a, a, 8)


def test_ssim_too_small():
    a = np.zeros((12, 12, 3))
    with pytest.raises(ValueError, match="11x11"):
        calculate_ssim(a, a, 1)


def _rand_batch(seed, n=2, c=3, h=24, w=20, low=0., high=1.):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g) * (high - low) + low


@pytest.mark.parametrize("cls,fn", [(PSNR, calculate_psnr), (SSIM, calculate_ssim)])
def test_metric_with_tensors(cls, fn):
    pred, gt = _rand_batch(0), _rand_batch(1)
    metric = cls(crop_border=2, test_y_channel=True)
    metric.update(pred, gt)
    expected = [fn(tensor2img(p, (0, 1)), tensor2img(g, (0, 1)), 2, test_y_channel=True) for p, g in zip(pred, gt)]
    assert metric.results == pytest.approx(expected, rel=1e-12)
    assert metric.accumulate() == pytest.approx(np.mean(expected), rel=1e-12)
    assert metric.name() == cls.__name__
    # [-1, 1] tensors with min_max=(-1, 1) give the same images, hence the same values.
    other = cls(crop_border=2, test_y_channel=True, min_max=(-1., 1.))
    other.update(pred * 2 - 1, [g * 2 - 1 for g in gt])  # a batch and a list of [C, H, W]
    assert other.accumulate() == pytest.approx(metric.accumulate(), rel=1e-12)
    metric.reset()
    assert metric.results == [] and metric.accumulate() == 0.


@pytest.mark.parametrize("cls,fn", [(PSNR, calculate_psnr), (SSIM, calculate_ssim)])
def test_metric_with_numpy(photos, cls, fn):
    gt, distorted = photos
    metric = cls(crop_border=4)
    metric.update([distorted["noisy"], distorted["blurred"]], [gt, gt])
    expected = [fn(distorted[k], gt, 4) for k in ("noisy", "blurred")]
    assert metric.accumulate() == pytest.approx(np.mean(expected), rel=1e-12)
    chw = cls(crop_border=4, input_order="CHW")
    chw.update(distorted["noisy"].transpose(2, 0, 1), gt.transpose(2, 0, 1))
    assert chw.accumulate() == pytest.approx(expected[0], rel=1e-12)


def test_metric_is_seq(photos):
    gt, distorted = photos
    frames = [distorted["noisy"], distorted["blurred"], distorted["jpeg"]]
    metric = PSNR()
    metric.update(frames, [gt] * 3, is_seq=True)
    metric.update(distorted["noisy"], gt)
    seq_mean = np.mean([calculate_psnr(f, gt, 0) for f in frames])
    assert metric.results == pytest.approx([seq_mean, calculate_psnr(distorted["noisy"], gt, 0)])


def test_metric_bad_args():
    with pytest.raises(ValueError, match="'HWC' and 'CHW'"):
        PSNR(input_order="hwc")
    with pytest.raises(ValueError, match="crop_border"):
        SSIM(crop_border=-2)
    with pytest.raises(ValueError, match="min_max"):
        PSNR(min_max=(1, 0))
    with pytest.raises(ValueError, match="predictions"):
        PSNR().update([np.zeros((4, 4, 3))] * 2, np.zeros((4, 4, 3)))


def test_build_metric():
    assert METRICS.get("PSNR") is PSNR and METRICS.get("SSIM") is SSIM
    cfg = {"name": "SSIM", "crop_border": 4, "test_y_channel": True, "min_max": "(0., 1.)"}
    frozen = dict(cfg)
    metric = build_metric(cfg)
    assert cfg == frozen
    assert isinstance(metric, SSIM)
    assert (metric.crop_border, metric.test_y_channel, metric.min_max) == (4, True, (0., 1.))
    assert isinstance(build_metric({"name": "PSNR"}), PSNR)
    with pytest.raises(ConfigError, match="PSNR"):
        build_metric({"name": "PSNRR"})
    with pytest.raises(ConfigError, match="crop_border"):
        build_metric({"name": "PSNR", "crop_boarder": 4})


def test_accumulate_gathers_across_ranks(monkeypatch):
    metric = PSNR()
    metric.results = [10., 20.]
    others = [[30.], [40., 50., 60.]]

    def all_gather_object(out, obj):
        out[:] = [obj] + others

    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: 3)
    monkeypatch.setattr(dist, "all_gather_object", all_gather_object)
    assert metric.accumulate() == pytest.approx(35.)
    assert metric.results == [10., 20.]  # local results are left as they were


def _gather_worker(rank, port, queue):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        metric = SSIM()
        metric.results = [0.5] if rank == 0 else [0.6, 0.7, 0.8]
        queue.put((rank, metric.accumulate()))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_accumulate_real_gloo_group():
    """Two CPU processes in a gloo group: both ranks report the mean over all four results."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # fork: the children reuse the imported modules (spawn would re-import torch, ~2-5 s each).
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_gather_worker, args=(rank, port, queue)) for rank in range(2)]
    for p in procs:
        p.start()
    try:
        got = sorted(queue.get(timeout=60) for _ in procs)
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    assert [r for r, _ in got] == [0, 1]
    assert all(v == pytest.approx(0.65) for _, v in got)

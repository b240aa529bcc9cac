"""BlazeFace (PaddleGAN's `blazeface` detector): anchors computed from MediaPipe's options, strict
.pdparams loading, shapes, decoding, weighted NMS, the five landmarks, the square fit, and the
weight download / offline paths. Deterministic weights in PaddleGAN's names stand in for the
published ones (no network here)."""
import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from ppgan.faceutils.blazeface import (FRONT_ANCHOR_OPTIONS, MOUTH_CORNER_RAISE, MOUTH_HALF_WIDTH, BlazeFace,
                                       BlazeFaceDetector, decode, five_points, ssd_anchors, to_square,
                                       weighted_nms)
from ppgan.faceutils.boxes import Face
from ppgan.utils.errors import CheckpointError, ConfigError, PPGANError
from ppgan.weights import WEIGHTS, file_sha256
from parity import paddle_state_of, write_pdparams


def paddle_state(seed=0):
    return paddle_state_of(BlazeFace, seed)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_pdparams(tmp_path_factory.mktemp("bf") / "blazeface.pdparams", paddle_state())


@pytest.fixture(autouse=True)
def home(monkeypatch, tmp_path):
    monkeypatch.setenv("PPGAN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# ---------------------------------------------------------------- anchors

def test_front_anchors_count_and_grid():
    a = ssd_anchors(**FRONT_ANCHOR_OPTIONS)
    assert a.shape == (896, 4) and a.dtype == np.float32
    assert np.all(a[:, 2:] == 1.0)  # fixed anchor size: the net regresses absolute sizes
    first, second = a[:512].reshape(16, 16, 2, 4), a[512:].reshape(8, 8, 6, 4)
    for grid, n in ((first, 16), (second, 8)):
        centres = (np.arange(n) + 0.5) / n
        assert np.allclose(grid[..., 0], centres[None, :, None])  # x runs along the row
        assert np.allclose(grid[..., 1], centres[:, None, None])  # y down the rows
    # the values of MediaPipe's / hollance's anchors.npy at a few rows
    assert np.allclose(a[[0, 2, 32, 512, 518, 895]],
                       [[0.03125, 0.03125, 1, 1], [0.09375, 0.03125, 1, 1], [0.03125, 0.09375, 1, 1],
                        [0.0625, 0.0625, 1, 1], [0.1875, 0.0625, 1, 1], [0.9375, 0.9375, 1, 1]])


@pytest.mark.parametrize("strides, expect", [((8, 16, 32), 16 * 16 * 2 + 8 * 8 * 2 + 4 * 4 * 2),
                                             ((16, 16), 8 * 8 * 4), ((8,), 16 * 16 * 2)])
def test_anchor_options_other_than_the_front_model(strides, expect):
    a = ssd_anchors(num_layers=len(strides), strides=strides, fixed_anchor_size=False)
    assert len(a) == expect
    assert np.all((a[:, :2] > 0) & (a[:, :2] < 1))
    assert np.all(a[:, 2] > 0) and np.allclose(a[:, 2], a[:, 3])  # aspect ratio 1: square anchors
    if len(strides) == 3:  # scales grow with the layer: 0.1484375 on the first
        assert a[0, 2] == pytest.approx(0.1484375)
        assert a[-2, 2] == pytest.approx(0.75)


def test_anchor_order_is_the_net_head_order():
    net = BlazeFace().eval()
    seen = {}
    net.classifier_8.register_forward_hook(lambda m, i, o: seen.__setitem__(8, o))
    net.classifier_16.register_forward_hook(lambda m, i, o: seen.__setitem__(16, o))
    with torch.no_grad():
        _, c = net(torch.rand(2, 3, 128, 128) * 2 - 1)
    a = ssd_anchors(**FRONT_ANCHOR_OPTIONS)
    for k in (0, 1, 37, 511, 512, 700, 895):
        x, y = a[k, 0], a[k, 1]
        if k < 512:
            head, n, per = seen[8], 16, 2
            j = k
        else:
            head, n, per = seen[16], 8, 6
            j = k - 512
        cell, anchor = divmod(j, per)
        row, col = divmod(cell, n)
        assert (x, y) == pytest.approx(((col + 0.5) / n, (row + 0.5) / n))
        assert torch.equal(c[:, k, 0], head[:, anchor, row, col])


# ---------------------------------------------------------------- loading and shapes

def test_strict_load_and_identity(weights):
    det = BlazeFaceDetector(weight_path=weights)
    state = paddle_state()
    own = det.net.state_dict()
    assert set(own) == set(state) - {"StructuredToParameterName@@"}
    for k in ("backbone1.0.weight", "backbone1.4.convs.0.weight", "backbone2.0.convs.1.bias", "regressor_16.weight"):
        assert torch.equal(own[k], torch.from_numpy(state[k])), k
    assert det.identity == f"blazeface:{file_sha256(weights)}:t0.5:nms0.3:pad" and det.has_landmarks is True
    assert BlazeFaceDetector(weight_path=weights, fit="crop", threshold=0.7).identity.endswith(":t0.7:nms0.3:crop")


@pytest.mark.parametrize("change, expect", [
    (lambda s: s.pop("classifier_16.bias"), "missing in file: classifier_16.bias"),
    (lambda s: s.update({"backbone3.0.weight": np.zeros(3, np.float32)}), "not in model: backbone3.0.weight"),
    (lambda s: s.update({"regressor_8.weight": np.zeros((16, 88, 1, 1), np.float32)}), "regressor_8.weight"),
])
def test_weights_that_do_not_fit_are_one_line_errors(tmp_path, change, expect):
    state = paddle_state()
    change(state)
    path = write_pdparams(tmp_path / "bad.pdparams", state)
    with pytest.raises(CheckpointError) as e:
        BlazeFaceDetector(weight_path=path)
    assert "\n" not in str(e.value) and path in str(e.value) and expect in str(e.value)


@pytest.mark.parametrize("batch", [1, 2, 5])
def test_output_shapes(batch):
    with torch.no_grad():
        r, c = BlazeFace().eval()(torch.zeros(batch, 3, 128, 128))
    assert r.shape == (batch, 896, 16) and c.shape == (batch, 896, 1)


def test_bad_fit_is_a_config_error(weights):
    with pytest.raises(ConfigError, match="'pad' or 'crop'"):
        BlazeFaceDetector(weight_path=weights, fit="stretch")


# ---------------------------------------------------------------- decoding

ANCHORS = torch.from_numpy(ssd_anchors(**FRONT_ANCHOR_OPTIONS))


def outputs(batch=1, hot=()):
    """Raw outputs: every anchor scoring sigmoid(-10); `hot` = [(image, anchor, logit, 16 numbers)]."""
    r, c = torch.zeros(batch, 896, 16), torch.full((batch, 896, 1), -10.0)
    for b, k, logit, raw in hot:
        r[b, k] = torch.tensor(raw, dtype=torch.float32)
        c[b, k, 0] = logit
    return r, c


def test_decode_scales_by_128_around_the_anchor():
    k = 512 + 6 * (3 * 8 + 5) + 2  # 8x8 map, row 3, column 5: anchor centre (0.6875, 0.4375)
    raw = [12.8, -6.4, 32.0, 64.0] + [0.0, 0.0, 12.8, 0.0, 0.0, 12.8, 0.0, 25.6, -12.8, 0.0, 12.8, 12.8]
    boxes, kps, scores = decode(*outputs(2, [(1, k, 3.0, raw)]), ANCHORS)
    assert boxes.shape == (2, 896, 4) and kps.shape == (2, 896, 6, 2) and scores.shape == (2, 896)
    cx, cy = 0.6875 + 0.1, 0.4375 - 0.05
    assert torch.allclose(boxes[1, k], torch.tensor([cx - 0.125, cy - 0.25, cx + 0.125, cy + 0.25]))
    assert torch.allclose(kps[1, k], torch.tensor([[0.6875, 0.4375], [0.7875, 0.4375], [0.6875, 0.5375],
                                                   [0.6875, 0.6375], [0.5875, 0.4375], [0.7875, 0.5375]]))
    assert scores[1, k] == pytest.approx(1 / (1 + np.exp(-3.0)), rel=1e-5)
    assert scores[0].max() < 1e-4


def test_score_logits_are_clipped():
    _, _, s = decode(*outputs(1, [(0, 0, 1e6, [0] * 16), (0, 1, -1e6, [0] * 16)]), ANCHORS, score_clip=2.0)
    assert s[0, 0] == pytest.approx(1 / (1 + np.exp(-2.0))) and s[0, 1] == pytest.approx(1 / (1 + np.exp(2.0)))
    assert s[0, 2] == pytest.approx(1 / (1 + np.exp(2.0)))  # -10 clipped as well


def test_weighted_nms_blends_overlapping_detections():
    boxes = np.array([[0.0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0.5, 0, 10.5, 10]], np.float32)
    kps = np.arange(4 * 6 * 2, dtype=np.float32).reshape(4, 6, 2)
    scores = np.array([0.9, 0.6, 0.8, 0.3], np.float32)
    b, k, s = weighted_nms(boxes, kps, scores, 0.3)
    assert len(b) == 2 and np.all(np.diff(s) <= 0)  # highest merged score first
    assert np.allclose(b[0], boxes[2]) and s[0] == pytest.approx(0.8)  # alone: kept as is
    group = [0, 1, 3]  # IoU with box 0: 0.68, 0.90
    w = scores[group]
    assert np.allclose(b[1], (boxes[group] * w[:, None]).sum(0) / w.sum())
    assert np.allclose(k[1], (kps[group] * w[:, None, None]).sum(0) / w.sum())
    assert s[1] == pytest.approx(w.mean())
    empty = weighted_nms(boxes[:0], kps[:0], scores[:0])
    assert [x.shape for x in empty] == [(0, 4), (0, 6, 2), (0,)]


@pytest.mark.parametrize("swap", [False, True])
def test_five_points_from_six_keypoints(swap):
    # image-left eye at (40, 50), image-right eye at (60, 50); nose; mouth centre; ears
    kp = np.array([[40, 50], [60, 50], [50, 60], [50, 72], [25, 55], [75, 55]], np.float32)
    if swap:  # the subject's right eye listed first either way: order comes from x
        kp[[0, 1]] = kp[[1, 0]]
    p = five_points(kp)
    assert p.shape == (5, 2)
    assert np.allclose(p[:3], [[40, 50], [60, 50], [50, 60]])
    y = 72 - MOUTH_CORNER_RAISE * 20
    assert np.allclose(p[3:], [[50 - MOUTH_HALF_WIDTH * 20, y], [50 + MOUTH_HALF_WIDTH * 20, y]])
    # a turned face: the mouth corners turn with the eye line
    t = np.radians(30)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    assert np.allclose(five_points(kp @ rot.T), p @ rot.T, atol=1e-4)


@pytest.mark.parametrize("hw, fit", [((200, 100), "pad"), ((100, 240), "pad"), ((200, 100), "crop"),
                                     ((90, 160), "crop"), ((128, 128), "pad")])
def test_to_square_maps_input_pixels_back(hw, fit):
    h, w = hw
    img = np.zeros((h, w, 3), np.uint8)
    x0, y0 = int(w * 0.55), int(h * 0.45)
    img[y0 - 4:y0 + 4, x0 - 4:x0 + 4] = 255  # a bright square inside whatever is kept
    small, scale, dx, dy = to_square(img, fit)
    assert small.shape == (128, 128, 3) and small.dtype == np.uint8
    v, u = np.nonzero(small[..., 0] > 60)
    cu, cv_ = (u.min() + u.max() + 1) / 2, (v.min() + v.max() + 1) / 2  # the square's centre, input pixels
    assert cu * scale - dx == pytest.approx(x0, abs=1.5 * scale)
    assert cv_ * scale - dy == pytest.approx(y0, abs=1.5 * scale)
    assert scale == pytest.approx((max(h, w) if fit == "pad" else min(h, w)) / 128)


class _Stub(nn.Module):
    """Stands in for the net: fixed raw outputs whatever the input."""

    def __init__(self, r, c):
        super().__init__()
        self.r, self.c = r, c

    def forward(self, x):
        return self.r[:1].expand(len(x), -1, -1), self.c[:1].expand(len(x), -1, -1)


def test_detector_maps_faces_back_to_each_image(weights):
    det = BlazeFaceDetector(weight_path=weights, threshold=0.5)
    k = 512 + 6 * (3 * 8 + 3)  # anchor centre (0.4375, 0.4375)
    raw = [0.0, 0.0, 32.0, 32.0] + [-6.4, -6.4, 6.4, -6.4, 0.0, 0.0, 0.0, 6.4, -12.8, 0.0, 12.8, 0.0]
    det.net = _Stub(*outputs(1, [(0, k, 4.0, raw), (0, k + 1, 3.5, raw), (0, 7, -2.0, raw)]))
    wide, tall = np.zeros((128, 256, 3), np.uint8), np.zeros((300, 150, 3), np.uint8)
    found = det.detect([wide, tall, wide])
    assert len(found) == 3 and all(len(f) == 1 for f in found)  # the two hot anchors blend into one
    for faces, (h, w) in zip(found, [(128, 256), (300, 150), (128, 256)]):
        side = max(h, w)
        dx, dy = (side - w) // 2, (side - h) // 2
        f = faces[0]
        assert isinstance(f, Face) and f.landmarks.shape == (5, 2)
        c = 0.4375 * side
        assert np.allclose(f.box, [c - 0.125 * side - dx, c - 0.125 * side - dy,
                                   c + 0.125 * side - dx, c + 0.125 * side - dy], atol=1e-3)
        assert f.score == pytest.approx((1 / (1 + np.exp(-4.0)) + 1 / (1 + np.exp(-3.5))) / 2, rel=1e-5)
        eyes = np.array([[0.4375 - 0.05, 0.4375 - 0.05], [0.4375 + 0.05, 0.4375 - 0.05]]) * side - [dx, dy]
        assert np.allclose(f.landmarks[:2], eyes, atol=1e-3)
        assert np.allclose(f.landmarks[2], np.array([0.4375, 0.4375]) * side - [dx, dy], atol=1e-3)
    assert det.detect([]) == []


def test_detect_runs_the_real_net_batched(weights):
    from skimage import data

    det = BlazeFaceDetector(weight_path=weights, threshold=0.0, batch_size=2)
    imgs = [data.astronaut(), data.coffee(), data.astronaut()[:300]]
    together = det.detect(imgs)
    alone = [det.detect([img])[0] for img in imgs]
    assert [len(f) for f in together] == [len(f) for f in alone] and len(together[0]) > 0
    for got, ref in zip(together, alone):
        for f, g in zip(got, ref):
            assert np.allclose(f.box, g.box, atol=1e-3) and np.allclose(f.landmarks, g.landmarks, atol=1e-3)


# ---------------------------------------------------------------- download / offline

def test_download_then_offline_from_the_cache(weights, home, monkeypatch):
    monkeypatch.setitem(WEIGHTS, "blazeface", dataclasses.replace(WEIGHTS["blazeface"], url="file://" + weights))
    first = BlazeFaceDetector()
    assert (home / "weights" / "blazeface.pdparams").is_file()
    second = BlazeFaceDetector(download=False)
    assert first.identity == second.identity and first.identity.startswith(f"blazeface:{file_sha256(weights)}:")


def test_offline_error_is_one_line_naming_weight_path(tmp_path, monkeypatch):
    with pytest.raises(CheckpointError) as e:
        BlazeFaceDetector(download=False)
    assert "\n" not in str(e.value) and "--weight_path" in str(e.value)
    monkeypatch.setitem(WEIGHTS, "blazeface",
                        dataclasses.replace(WEIGHTS["blazeface"], url="file://" + str(tmp_path / "gone.pdparams")))
    with pytest.raises(PPGANError) as e:
        BlazeFaceDetector(download=True)
    assert "\n" not in str(e.value) and "--weight_path" in str(e.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_finds_the_same_faces(weights):
    from skimage import data

    imgs = [data.astronaut(), data.coffee()]
    cpu = BlazeFaceDetector(weight_path=weights, threshold=0.0).detect(imgs)
    gpu = BlazeFaceDetector(weight_path=weights, threshold=0.0, device="cuda").detect(imgs)
    assert [len(f) for f in gpu] == [len(f) for f in cpu]
    for a, b in zip(cpu, gpu):  # the same boxes, whatever the order of near-equal scores
        for f in a:
            g = min(b, key=lambda g: np.abs(g.box - f.box).max())
            assert np.allclose(f.box, g.box, atol=0.05) and np.allclose(f.landmarks, g.landmarks, atol=0.05)

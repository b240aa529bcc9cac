"""S3FD (PaddleGAN's `sfd` detector): strict .pdparams loading, head shapes, prior-box decoding,
NMS + threshold, batching, and the weight download / offline paths. The published weights cannot
be downloaded here: deterministic weights in PaddleGAN's key names stand in for them."""
import dataclasses
import math
import socket

import numpy as np
import pytest
import torch

from ppgan.faceutils.boxes import Face
from ppgan.faceutils.s3fd import STRIDES, S3FD, S3FDDetector, decode, preprocess, select
from ppgan.utils.errors import CheckpointError, PPGANError
from ppgan.weights import WEIGHTS, file_sha256
from parity import paddle_state_of, write_pdparams


def paddle_state(seed=0):
    return paddle_state_of(S3FD, seed)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_pdparams(tmp_path_factory.mktemp("s3fd") / "s3fd_paddle.pdparams", paddle_state())


@pytest.fixture(scope="module")
def detector(weights):
    return S3FDDetector(weight_path=weights, threshold=0.3)


@pytest.fixture(autouse=True)
def home(monkeypatch, tmp_path):
    monkeypatch.setenv("PPGAN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# ---------------------------------------------------------------- loading

def test_strict_load_puts_every_array_in_place(detector, weights):
    state = paddle_state()
    own = detector.net.state_dict()
    assert set(own) == set(state) - {"StructuredToParameterName@@"}
    for k in ("conv1_1.weight", "fc6.weight", "conv3_3_norm.weight", "conv7_2_mbox_loc.bias"):
        assert torch.equal(own[k], torch.from_numpy(state[k])), k
    assert detector.identity == f"sfd:{file_sha256(weights)}:t0.3:nms0.3:pre0.05:max0"
    assert S3FDDetector(weight_path=weights, max_size=640).identity.endswith(":t0.5:nms0.3:pre0.05:max640")
    assert detector.has_landmarks is False and not detector.net.training


@pytest.mark.parametrize("change, expect", [
    (lambda s: s.pop("conv4_3_norm_mbox_conf.bias"), "missing in file: conv4_3_norm_mbox_conf.bias"),
    (lambda s: s.update({"conv8_1.weight": np.zeros((2, 2), np.float32)}), "not in model: conv8_1.weight"),
    (lambda s: s.update({"fc7.weight": np.zeros((1024, 512, 1, 1), np.float32)}), "shape mismatches: fc7.weight"),
])
def test_weights_that_do_not_fit_are_one_line_errors(tmp_path, change, expect):
    state = paddle_state()
    change(state)
    path = write_pdparams(tmp_path / "bad.pdparams", state)
    with pytest.raises(CheckpointError) as e:
        S3FDDetector(weight_path=path)
    msg = str(e.value)
    assert "\n" not in msg and path in msg and expect in msg


def test_missing_weight_path_names_it(tmp_path):
    with pytest.raises(CheckpointError, match="--weight_path .*nowhere.pdparams does not exist"):
        S3FDDetector(weight_path=str(tmp_path / "nowhere.pdparams"))


# ---------------------------------------------------------------- the net

def head_sizes(n):
    """Feature map side of the six heads for an input side n (two pools to conv3_3, fc6 pads 3)."""
    s3 = n // 4
    s4, s5 = s3 // 2, s3 // 4
    s7 = s5 // 2 + 4
    s6_2 = (s7 - 1) // 2 + 1
    return [s3, s4, s5, s7, s6_2, (s6_2 - 1) // 2 + 1]


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("hw", [(32, 32), (48, 64), (40, 36)])
def test_head_shapes(detector, batch, hw):
    with torch.no_grad():
        out = detector.net(torch.zeros(batch, 3, *hw))
    assert len(out) == 12
    for level, (hs, ws) in enumerate(zip(head_sizes(hw[0]), head_sizes(hw[1]))):
        assert out[2 * level].shape == (batch, 2, hs, ws), level  # background / face (first head maxed out)
        assert out[2 * level + 1].shape == (batch, 4, hs, ws), level


def test_background_max_out_on_the_first_head():
    net = S3FD().eval()
    with torch.no_grad():
        net.conv3_3_norm_mbox_conf.weight.zero_()
        net.conv3_3_norm_mbox_conf.bias.copy_(torch.tensor([1.0, 5.0, 2.0, 3.0]))
        cls1 = net(torch.zeros(1, 3, 32, 32))[0]
    assert torch.equal(cls1[0, :, 0, 0], torch.tensor([5.0, 3.0]))  # max of the three background logits, face


def test_preprocess_is_bgr_minus_the_caffe_mean():
    img = np.zeros((2, 3, 3), np.uint8)
    img[0, 0] = (123, 117, 104)  # RGB of the mean: zero after the step
    img[0, 1] = (255, 0, 0)  # pure red: lands in the last (R) channel of BGR
    x = preprocess([img, img])
    assert x.shape == (2, 3, 2, 3) and x.dtype == torch.float32
    assert torch.equal(x[0, :, 0, 0], torch.zeros(3))
    assert torch.equal(x[1, :, 0, 1], torch.tensor([-104.0, -117.0, 255.0 - 123.0]))


# ---------------------------------------------------------------- decoding

def hand_made(batch, side=128, hot=None):
    """Net outputs for an input of side `side`: background everywhere, and face logits at the
    cells listed in `hot` [(image, level, y, x, face logit, (dx, dy, dw, dh))]."""
    out = []
    for n in head_sizes(side):
        cls = torch.zeros(batch, 2, n, n)
        cls[:, 0] = 10.0  # face probability ~ 4.5e-5: below every pre-filter
        out += [cls, torch.zeros(batch, 4, n, n)]
    for b, level, y, x, logit, loc in hot or []:
        out[2 * level][b, :, y, x] = torch.tensor([0.0, logit])
        out[2 * level + 1][b, :, y, x] = torch.tensor(loc, dtype=torch.float32)
    return out


@pytest.mark.parametrize("level, y, x", [(0, 5, 9), (1, 3, 2), (2, 0, 4), (3, 1, 1)])
def test_one_strong_anchor_decodes_to_its_prior(level, y, x):
    boxes, scores, index = decode(hand_made(2, hot=[(1, level, y, x, 10.0, (0, 0, 0, 0))]))
    stride = STRIDES[level]
    cx, cy, side = stride / 2 + x * stride, stride / 2 + y * stride, 4 * stride
    assert boxes.shape == (1, 4) and index.tolist() == [1]
    assert torch.allclose(boxes[0], torch.tensor([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]))
    assert scores[0] == pytest.approx(1 / (1 + math.exp(-10.0)), rel=1e-5)


@pytest.mark.parametrize("loc", [(0.5, -1.0, math.log(2) / 0.2, 0.0), (-2.0, 0.25, 0.0, -math.log(2) / 0.2)])
def test_regression_uses_the_ssd_variances(loc):
    level, y, x = 2, 3, 5  # stride 16: prior centred (88, 56), side 64
    boxes, _, _ = decode(hand_made(1, hot=[(0, level, y, x, 10.0, loc)]))
    cx, cy = 88 + loc[0] * 0.1 * 64, 56 + loc[1] * 0.1 * 64
    w, h = 64 * math.exp(loc[2] * 0.2), 64 * math.exp(loc[3] * 0.2)
    assert torch.allclose(boxes[0], torch.tensor([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]), atol=1e-4)


def test_nothing_above_the_prefilter_gives_no_candidates():
    boxes, scores, index = decode(hand_made(3))
    assert boxes.shape == (0, 4) and scores.shape == (0,) and index.shape == (0,)
    assert [len(b) for b, _ in select(boxes, scores, index, 3)] == [0, 0, 0]


def test_nms_then_threshold_per_image():
    hot = [(0, 2, 3, 5, 4.0, (0, 0, 0, 0)),     # image 0: the best face
           (0, 2, 3, 6, 3.0, (-1.5, 0, 0, 0)),  # overlaps it (IoU ~0.8): suppressed
           (0, 2, 6, 6, 3.0, (0, 0, 0, 0)),     # far away: kept
           (0, 3, 0, 0, -1.0, (0, 0, 0, 0)),    # score 0.27: below the 0.5 threshold
           (1, 1, 2, 2, 2.0, (0, 0, 0, 0))]     # image 1: its own face, not suppressed by image 0's
    found = select(*decode(hand_made(2, hot=hot)), batch=2, threshold=0.5, nms_threshold=0.3)
    (b0, s0), (b1, s1) = found
    assert len(b0) == 2 and np.all(np.diff(s0) <= 0)
    assert np.allclose(b0[0], [56, 24, 120, 88]) and np.allclose(b0[1], [72, 72, 136, 136])
    assert len(b1) == 1 and np.allclose(b1[0], [4, 4, 36, 36])


# ---------------------------------------------------------------- the detector

@pytest.fixture(scope="module")
def photos():
    from skimage import data
    import cv2

    a = cv2.resize(data.astronaut(), (64, 64), interpolation=cv2.INTER_AREA)
    c = cv2.resize(data.coffee(), (48, 64), interpolation=cv2.INTER_AREA)
    return a, c


def test_detect_is_batched_by_size_and_batching_does_not_change_faces(detector, photos):
    a, c = photos
    together = detector.detect([a, c, a])
    alone = [detector.detect([a])[0], detector.detect([c])[0]]
    assert len(together) == 3
    for got, ref in ((together[0], alone[0]), (together[1], alone[1]), (together[2], alone[0])):
        assert len(got) == len(ref)
        for f, g in zip(got, ref):
            assert isinstance(f, Face) and f.landmarks is None and f.box.shape == (4,)
            assert np.allclose(f.box, g.box, atol=1e-3) and f.score == pytest.approx(g.score, abs=1e-5)
    assert sum(len(f) for f in together) > 0  # the random weights do score above 0.3 somewhere
    assert all(0.3 < f.score <= 1 for faces in together for f in faces)


def test_images_smaller_than_the_net_are_padded(detector, photos):
    tiny = photos[0][:20, :12]
    assert detector._resized(tiny)[0].shape == (32, 32, 3)
    faces = detector.detect([tiny, photos[0][:31]])
    assert len(faces) == 2 and all(isinstance(f, Face) for fs in faces for f in fs)
    for fs, (h, w) in zip(faces, [(20, 12), (31, 64)]):  # boxes stay inside the image
        assert all(0 <= f.box[0] <= f.box[2] <= w and 0 <= f.box[1] <= f.box[3] <= h for f in fs)


def test_a_threshold_of_one_finds_nothing(weights, photos):
    det = S3FDDetector(weight_path=weights, threshold=1.0)
    assert det.detect(list(photos)) == [[], []]
    assert det.detect([]) == []


def test_max_size_maps_boxes_back_to_the_original(weights, photos):
    import cv2

    a = photos[0]
    big = cv2.resize(a, (128, 128), interpolation=cv2.INTER_LINEAR)
    det = S3FDDetector(weight_path=weights, threshold=0.3, max_size=64)
    small = cv2.resize(big, (64, 64), interpolation=cv2.INTER_AREA)
    got, ref = det.detect([big])[0], det.detect([small])[0]
    assert len(got) == len(ref) > 0
    for f, g in zip(got, ref):
        assert np.allclose(f.box, g.box * 2, atol=1e-3)


# ---------------------------------------------------------------- download / offline

def test_download_through_the_catalogue_then_offline_from_the_cache(weights, home, monkeypatch):
    spec = dataclasses.replace(WEIGHTS["s3fd"], url="file://" + weights)
    monkeypatch.setitem(WEIGHTS, "s3fd", spec)
    first = S3FDDetector(download=True)
    cached = home / "weights" / "s3fd_paddle.pdparams"
    assert cached.is_file() and first.identity.startswith(f"sfd:{file_sha256(weights)}:")
    monkeypatch.setitem(WEIGHTS, "s3fd", dataclasses.replace(spec, url="file:///nonexistent/s3fd.pdparams"))
    again = S3FDDetector(download=False)
    assert again.identity == first.identity


def closed_port_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/s3fd_paddle.pdparams"


def test_offline_errors_are_one_line_naming_weight_path(monkeypatch):
    with pytest.raises(CheckpointError) as e:
        S3FDDetector(download=False)
    msg = str(e.value)
    assert "\n" not in msg and "--weight_path" in msg and "s3fd_paddle.pdparams" in msg
    monkeypatch.setitem(WEIGHTS, "s3fd", dataclasses.replace(WEIGHTS["s3fd"], url=closed_port_url()))
    with pytest.raises(PPGANError) as e:  # a DownloadError; connection refused: no retry
        S3FDDetector(download=True)
    msg = str(e.value)
    assert "\n" not in msg and "--weight_path" in msg and "127.0.0.1" in msg


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_finds_the_same_faces(weights, photos):
    cpu = S3FDDetector(weight_path=weights, threshold=0.3).detect(list(photos))
    gpu = S3FDDetector(weight_path=weights, threshold=0.3, device="cuda").detect(list(photos))
    assert [len(f) for f in gpu] == [len(f) for f in cpu]
    for a, b in zip(cpu, gpu):  # the same boxes, whatever the order of near-equal scores
        for f in a:
            g = min(b, key=lambda g: np.abs(g.box - f.box).max())
            assert np.allclose(f.box, g.box, atol=0.05) and f.score == pytest.approx(g.score, abs=1e-3)

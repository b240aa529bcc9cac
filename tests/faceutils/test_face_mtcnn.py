"""MTCNN with the real packaged weights (facenet-pytorch 2.6.0's state dicts, read safely).

Must show (issue 13): one face on the astronaut photo, on a box annotated by hand; no face on
coffee / chelsea / rocket; on lfw_subset >= 95 % of the 100 faces and <= 2 % of the 100 non-faces.
"""
import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ppgan.faceutils.boxes import box_iou
from ppgan.faceutils.mtcnn import (MTCNNDetector, ONet, PNet, RNet, build_mtcnn_nets, crop_resize, pyramid_scales,
                                   regress_boxes, square_boxes)
from ppgan.utils.errors import CheckpointError, ConfigError

skimage_data = pytest.importorskip("skimage.data")

# The astronaut's face, annotated by hand on a 5x zoom of skimage.data.astronaut() (512x512):
# x from the left cheek edge (182) to the right cheek edge (270) at cheekbone height, y from the
# hairline at the forehead's centre (78) to the bottom of the chin (178). Eyes near (202, 102)
# and (246, 103), nose tip (225, 126), mouth corners (207, 143) and (243, 142).
ASTRONAUT_FACE = (182, 78, 270, 178)
ASTRONAUT_EYES = ((202, 102), (246, 103))


@pytest.fixture(scope="module")
def detector():
    return MTCNNDetector()


@pytest.fixture(scope="module")
def astronaut():
    return skimage_data.astronaut()


def test_nets_load_the_packaged_weights_strictly():
    nets, paths = build_mtcnn_nets()
    assert set(nets) == {"pnet", "rnet", "onet"}
    assert all(p.endswith(f"facenet_pytorch/data/{n}.pt") for n, p in paths.items())
    assert isinstance(nets["pnet"], PNet) and isinstance(nets["rnet"], RNet) and isinstance(nets["onet"], ONet)
    reg, prob = nets["pnet"](torch.zeros(1, 3, 12, 12))
    assert reg.shape == (1, 4, 1, 1) and prob.shape == (1, 2, 1, 1)
    assert torch.allclose(prob.sum(1), torch.ones(1, 1, 1))
    assert nets["rnet"](torch.zeros(2, 3, 24, 24))[0].shape == (2, 4)
    reg, marks, prob = nets["onet"](torch.zeros(3, 3, 48, 48))
    assert reg.shape == (3, 4) and marks.shape == (3, 10) and prob.shape == (3, 2)


def test_astronaut_one_face_on_the_hand_box(detector, astronaut):
    faces = detector.detect([astronaut])[0]
    assert len(faces) == 1
    face = faces[0]
    iou = float(box_iou(face.box[None], np.array([ASTRONAUT_FACE], np.float32))[0, 0])
    assert iou >= 0.7, (face.box, iou)
    assert face.score > 0.95
    lm = face.landmarks
    assert lm.shape == (5, 2) and lm.dtype == np.float32
    x1, y1, x2, y2 = face.box
    assert np.all((lm[:, 0] > x1) & (lm[:, 0] < x2) & (lm[:, 1] > y1) & (lm[:, 1] < y2))
    left_eye, right_eye, nose, mouth_left, mouth_right = lm
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]  # "left" = smaller x
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])  # eyes, nose, mouth
    np.testing.assert_allclose(lm[:2], ASTRONAUT_EYES, atol=4)  # on the eyes annotated by hand


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket"])
def test_no_face_on_photos_without_people(detector, name):
    assert detector.detect([getattr(skimage_data, name)()]) == [[]]


def _lfw_image(crop, pad):
    """A 25x25 lfw_subset crop (float gray 0..1) as the detector sees a photo: upscaled x4
    (bicubic, 100x100) and, with `pad`, placed in the middle of a mid-grey canvas with `pad` px
    on each side (the crops are cut at the face's edge, and a face with no surround at all is not
    what a detector is trained on; faces and non-faces get the same treatment), grey -> RGB uint8."""
    up = cv2.resize(np.round(crop * 255).astype(np.uint8), (100, 100), interpolation=cv2.INTER_CUBIC)
    canvas = np.full((100 + 2 * pad, 100 + 2 * pad), 127, np.uint8)
    canvas[pad:pad + 100, pad:pad + 100] = up
    return np.repeat(canvas[:, :, None], 3, axis=2)


@pytest.mark.parametrize("pad", [30, 0])  # 30: the fair protocol; 0: the bare upscaled crop still passes
def test_lfw_subset_faces_found_and_non_faces_rejected(detector, pad):
    crops = skimage_data.lfw_subset()  # first 100 faces, last 100 non-faces
    assert crops.shape == (200, 25, 25)
    results = detector.detect([_lfw_image(c, pad) for c in crops])

    def on_the_crop(face):  # a detection counts only where the crop is
        cx, cy = face.center
        return pad <= cx <= pad + 100 and pad <= cy <= pad + 100

    found = sum(any(on_the_crop(f) for f in faces) for faces in results[:100])
    false = sum(len(faces) > 0 for faces in results[100:])
    assert found >= 95, f"{found}/100 faces found"
    assert false <= 2, f"{false}/100 non-faces detected"


def test_batch_equals_single_images(detector, astronaut):
    a = astronaut
    b = np.ascontiguousarray(a[:, ::-1])  # mirrored: the face moves
    c = skimage_data.coffee()
    d = cv2.resize(a, (320, 240))  # another size again
    batch = detector.detect([a, c, b, d, a])
    singles = [detector.detect([im])[0] for im in (a, c, b, d, a)]
    assert [len(f) for f in batch] == [1, 0, 1, 1, 1]
    for got, want in zip(batch, singles):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.box, w.box, atol=1e-3)
            np.testing.assert_allclose(g.landmarks, w.landmarks, atol=1e-3)
            assert abs(g.score - w.score) < 1e-5
    # the mirrored face is found at the mirrored place (the nets are not exactly mirror-symmetric)
    m = batch[2][0].box
    unmirrored = np.array([[512 - m[2], m[1], 512 - m[0], m[3]]], np.float32)
    assert box_iou(unmirrored, batch[0][0].box[None])[0, 0] > 0.8


def test_long_batches_are_split_without_changing_results(detector, astronaut, monkeypatch):
    import ppgan.faceutils.mtcnn as mtcnn

    images = [astronaut, np.ascontiguousarray(astronaut[::-1, ::-1]), astronaut]
    monkeypatch.setitem(mtcnn.MAX_BATCH_PIXELS, "cpu", 3 * 512 * 512)
    whole = detector.detect(images)
    monkeypatch.setitem(mtcnn.MAX_BATCH_PIXELS, "cpu", 2 * 512 * 512)  # passes of 2, then 1
    split = detector.detect(images)
    assert [len(f) for f in whole] == [len(f) for f in split]
    for got, want in zip(split, whole):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.box, w.box, atol=1e-3)


def test_small_and_empty_images(detector):
    assert detector.detect([np.zeros((8, 8, 3), np.uint8)]) == [[]]  # smaller than a 12 px window
    assert detector.detect([np.full((64, 48, 3), 200, np.uint8)]) == [[]]
    assert detector.detect([]) == []


def test_larger_min_face_size_skips_small_faces(astronaut):
    small = cv2.resize(astronaut, (128, 128))  # face about 25 px wide
    assert len(MTCNNDetector(min_face_size=20).detect([small])[0]) == 1
    assert MTCNNDetector(min_face_size=60).detect([small]) == [[]]


def test_identity_names_weights_and_options():
    a, b = MTCNNDetector(), MTCNNDetector(min_face_size=40)
    assert a.identity.startswith("mtcnn:") and len(a.identity.split(":")[1]) == 64
    assert a.identity != b.identity and a.identity == MTCNNDetector().identity


@pytest.mark.parametrize("kwargs, match", [
    ({"thresholds": (0.6, 0.7)}, "thresholds"),
    ({"thresholds": (0.6, 0.7, 1.5)}, "thresholds"),
    ({"factor": 1.2}, "factor"),
    ({"min_face_size": 5}, "min_face_size"),
    ({"nms_thresholds": (0.5, 0.7, 0.7)}, "nms_thresholds"),
])
def test_bad_options(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        MTCNNDetector(**kwargs)


def test_weight_path_forms(tmp_path):
    _, paths = build_mtcnn_nets()
    assert MTCNNDetector(weight_path=paths).identity == MTCNNDetector().identity
    assert MTCNNDetector(weight_path=[paths[n] for n in ("pnet", "rnet", "onet")]).identity == \
        MTCNNDetector().identity
    with pytest.raises(CheckpointError, match="not a folder"):
        MTCNNDetector(weight_path=str(tmp_path / "nope"))
    with pytest.raises(CheckpointError, match="does not exist"):
        MTCNNDetector(weight_path=str(tmp_path))  # a folder without pnet.pt
    (tmp_path / "pnet.pt").write_bytes(open(paths["rnet"], "rb").read())  # the wrong net's file
    (tmp_path / "rnet.pt").write_bytes(open(paths["rnet"], "rb").read())
    (tmp_path / "onet.pt").write_bytes(open(paths["onet"], "rb").read())
    with pytest.raises(CheckpointError, match="do not fit PNet"):
        MTCNNDetector(weight_path=str(tmp_path))
    with pytest.raises(ConfigError, match="keys"):
        MTCNNDetector(weight_path={"pnet": paths["pnet"]})


# ---------------------------------------------------------------- cascade helpers

def test_pyramid_scales():
    scales = pyramid_scales(360, 640, 20, 0.709)
    assert scales[0] == pytest.approx(0.6)
    assert all(s * 360 >= 12 for s in scales) and scales[-1] * 0.709 * 360 < 12
    assert pyramid_scales(10, 100, 20) == []
    assert len(pyramid_scales(360, 640, 40)) < len(scales)


def test_square_and_regress_boxes():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0]])
    assert square_boxes(boxes).tolist() == [[0.0, 20.0, 40.0, 60.0]]
    reg = torch.tensor([[0.1, -0.1, 0.5, 0.0]])
    assert regress_boxes(boxes, reg)[0].tolist() == pytest.approx([12.0, 16.0, 40.0, 60.0])


@pytest.mark.parametrize("size", [4, 6])
def test_crop_resize_exact_crops_and_zero_outside(size):
    img = torch.arange(3 * 20 * 30, dtype=torch.float32).reshape(3, 20, 30)
    boxes = torch.tensor([[2.0, 3.0, 2.0 + size, 3.0 + size],   # same size: the pixels themselves
                          [-2.0, -2.0, size - 2.0, size - 2.0],  # half outside: zeros there
                          [4.0, 6.0, 4.0 + 2 * size, 6.0 + 2 * size]])  # twice the size: 2x2 means
    out = crop_resize(img, boxes, size)
    assert out.shape == (3, 3, size, size)
    torch.testing.assert_close(out[0], img[:, 3:3 + size, 2:2 + size])
    assert out[1][:, :2, :].abs().max() < 1e-2 and out[1][:, :, :2].abs().max() < 1e-2  # (float rounding)
    torch.testing.assert_close(out[1][:, 2:, 2:], img[:, :size - 2, :size - 2])
    torch.testing.assert_close(out[2], F.avg_pool2d(img[None, :, 6:6 + 2 * size, 4:4 + 2 * size], 2)[0])
    assert crop_resize(img, torch.zeros((0, 4)), size).shape == (0, 3, size, size)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(detector, astronaut):
    gpu = MTCNNDetector(device="cuda")
    images = [astronaut, skimage_data.coffee(), cv2.resize(astronaut, (300, 200))]
    for got, want in zip(gpu.detect(images), detector.detect(images)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.box, w.box, atol=1.0)
            np.testing.assert_allclose(g.landmarks, w.landmarks, atol=1.0)

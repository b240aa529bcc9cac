"""mediapipe's BlazeFace, face mesh and selfie segmentation rebuilt in PyTorch
(ppgan/faceutils/mediapipe_nets.py, landmarks.py, segmentation.py), checked against numbers
recorded from mediapipe 0.10.21 itself (tools/record_mediapipe_reference.py):

- mediapipe_raw_reference.npz: the TFLite interpreter's outputs of the three models on fixed
  uint8 inputs (stored), scaled as mediapipe scales them;
- mediapipe_solutions_reference.npz: mp.solutions.face_detection (model_selection=0),
  mp.solutions.face_mesh (static_image_mode=True, refine_landmarks=False) and
  mp.solutions.selfie_segmentation on skimage's astronaut photo and two non-square crops of it.
"""
import math
import os

import numpy as np
import pytest
import skimage.data
import torch

from ppgan.faceutils.boxes import Face
from ppgan.faceutils.landmarks import FaceMesh, face_roi, mesh_to_five
from ppgan.faceutils.blazeface import FRONT_ANCHOR_OPTIONS, five_points, ssd_anchors
from ppgan.faceutils.mediapipe_nets import FaceMeshNet, MediaPipeBlazeFace, MediaPipeDetector, SelfieSegmentation
from ppgan.faceutils.segmentation import SelfieSegmenter
from ppgan.utils.errors import CheckpointError, ConfigError, PPGANError
from ppgan.weights import file_sha256, resolve_weight

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
PHOTO = skimage.data.astronaut()
CROPS = {"full": PHOTO, "landscape": PHOTO[0:360], "portrait": PHOTO[:, 100:400]}


@pytest.fixture(scope="module")
def raw_ref():
    return np.load(os.path.join(DATA, "mediapipe_raw_reference.npz"))


@pytest.fixture(scope="module")
def sol_ref():
    return np.load(os.path.join(DATA, "mediapipe_solutions_reference.npz"))


@pytest.fixture(scope="module")
def detector():
    return MediaPipeDetector()


@pytest.fixture(scope="module")
def mesh():
    return FaceMesh()


def _nchw(img, lo, hi):
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() * ((hi - lo) / 255) + lo


# --- raw networks against the TFLite interpreter ------------------------------------------------

def test_blazeface_raw_outputs(raw_ref):
    net = MediaPipeBlazeFace().eval()
    with torch.no_grad():
        reg, logits = net(_nchw(raw_ref["det_input"], -1, 1))
    assert reg.shape == (1, 896, 16) and logits.shape == (1, 896, 1)
    np.testing.assert_allclose(reg.numpy(), raw_ref["det_out0"], atol=2e-3, rtol=0)
    np.testing.assert_allclose(logits.numpy(), raw_ref["det_out1"], atol=2e-3, rtol=0)


def test_face_mesh_raw_outputs(raw_ref):
    net = FaceMeshNet().eval()
    with torch.no_grad():
        points, flag = net(_nchw(raw_ref["mesh_input"], 0, 1))
    np.testing.assert_allclose(points.numpy().ravel(), raw_ref["mesh_out0"].ravel(), atol=2e-3, rtol=0)
    np.testing.assert_allclose(flag.numpy().ravel(), raw_ref["mesh_out1"].ravel(), atol=2e-3, rtol=0)


def test_selfie_segmentation_raw_outputs(raw_ref):
    net = SelfieSegmentation().eval()
    with torch.no_grad():
        prob = net(_nchw(raw_ref["seg_input"], 0, 1))
    assert prob.shape == (1, 1, 256, 256)
    ref = raw_ref["seg_out0"][0, :, :, 0].astype(np.float32)  # stored as fp16
    np.testing.assert_allclose(prob[0, 0].numpy(), ref, atol=1e-3, rtol=0)


@pytest.mark.parametrize("cls,size,lo", [(MediaPipeBlazeFace, 128, -1.0), (FaceMeshNet, 192, 0.0),
                                         (SelfieSegmentation, 256, 0.0)])
def test_batch_of_three_equals_one_by_one(cls, size, lo):
    net = cls().eval()
    x = torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(size)) * (1 - lo) + lo
    with torch.no_grad():
        batched = net(x)
        single = [net(x[i:i + 1]) for i in range(3)]
    batched = batched if isinstance(batched, tuple) else (batched,)
    for j, out in enumerate(batched):
        assert out.shape[0] == 3
        for i in range(3):
            one = single[i] if isinstance(single[i], tuple) else (single[i],)
            torch.testing.assert_close(out[i:i + 1], one[j], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("h,w", [(96, 160), (160, 64)])
def test_blazeface_graph_on_other_input_sizes(h, w):
    """The rebuilt graph is not tied to 128x128: SAME padding and reshapes follow the input."""
    net = MediaPipeBlazeFace().eval()
    with torch.no_grad():
        reg, logits = net(torch.zeros(3, 3, h, w))
    anchors = (h // 8) * (w // 8) * 2 + (h // 16) * (w // 16) * 6
    assert reg.shape == (3, anchors, 16) and logits.shape == (3, anchors, 1)
    assert torch.isfinite(reg).all()


def test_weights_are_buffers_that_move():
    net = MediaPipeBlazeFace()
    state = net.state_dict()
    assert len(state) > 50 and all(v.dtype == torch.float32 for v in state.values())
    net = net.to(torch.float64)
    assert all(v.dtype == torch.float64 for v in net.state_dict().values())
    with torch.no_grad():
        reg, _ = net(torch.zeros(1, 3, 128, 128, dtype=torch.float64))
    assert reg.dtype == torch.float64


def test_anchors():
    a = ssd_anchors(**FRONT_ANCHOR_OPTIONS)[:, :2]  # the short-range model's layout: centres
    assert a.shape == (896, 2)
    np.testing.assert_allclose(a[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(a[1], a[0])  # two anchors per 16x16 cell
    np.testing.assert_allclose(a[512], [0.5 / 8, 0.5 / 8])  # then six per 8x8 cell
    np.testing.assert_allclose(a[-1], [7.5 / 8, 7.5 / 8])


# --- the pipelines against mediapipe's solutions --------------------------------------------------

@pytest.mark.parametrize("name", sorted(CROPS))
def test_detection_matches_mediapipe(detector, sol_ref, name):
    img = np.ascontiguousarray(CROPS[name])
    h, w = img.shape[:2]
    assert tuple(sol_ref[f"{name}_shape"]) == (h, w)
    (faces,) = detector.detect([img])
    ref_box = sol_ref[f"{name}_det_box"]
    assert len(faces) == len(ref_box) == 1
    x, y, bw, bh = ref_box[0] * [w, h, w, h]
    np.testing.assert_allclose(faces[0].box, [x, y, x + bw, y + bh], atol=1.0, rtol=0)
    assert faces[0].score == pytest.approx(sol_ref[f"{name}_det_score"][0], abs=1e-3)
    kps = sol_ref[f"{name}_det_kps"][0] * [w, h]
    (boxes, raw_kps, _), = detector.raw_detections([img])
    np.testing.assert_allclose(raw_kps[0] * [w, h], kps, atol=1.0, rtol=0)
    lm = faces[0].landmarks
    np.testing.assert_allclose(lm[:3], kps[:3], atol=1.0, rtol=0)  # eyes (left = smaller x), nose tip
    # mouth corners are estimated from the centre (raised MOUTH_CORNER_RAISE eye distances)
    eye_dist = np.linalg.norm(kps[1] - kps[0])
    np.testing.assert_allclose((lm[3] + lm[4]) / 2, kps[3], atol=0.1 * eye_dist, rtol=0)
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]


def test_detector_batch_and_protocol(detector):
    images = [PHOTO, skimage.data.coffee(), skimage.data.rocket(), np.ascontiguousarray(CROPS["portrait"])]
    found = detector.detect(images)
    assert [len(f) for f in found] == [1, 0, 0, 1]
    assert detector.has_landmarks is True
    sha = file_sha256(resolve_weight("mediapipe-face-detection"))
    assert detector.identity == f"mediapipe:{sha}"
    assert detector.detect([]) == []


def test_two_faces_mirrored(detector, mesh):
    """A face and its mirror image side by side: two detections (NMS keeps both), mirrored boxes,
    and a mesh per face."""
    crop = PHOTO[0:256, 100:356]
    img = np.ascontiguousarray(np.hstack([crop, crop[:, ::-1]]))
    faces = sorted(detector.detect([img])[0], key=lambda f: f.box[0])
    assert len(faces) == 2
    left, right = faces
    # the net is not exactly mirror-symmetric: within a tenth of the face width
    np.testing.assert_allclose([511 - right.box[2], 511 - right.box[0]], left.box[[0, 2]], atol=10)
    np.testing.assert_allclose(right.box[[1, 3]], left.box[[1, 3]], atol=10)
    meshes = mesh.landmarks(img, faces)
    assert meshes[0][:, 0].max() < 256 < meshes[1][:, 0].min()


def test_five_landmarks_order():
    kps = np.array([[60, 50], [40, 52], [50, 60], [50, 70], [30, 55], [70, 55]], np.float64)
    five = five_points(kps)  # the subject's right eye (first keypoint) is on the image's right here
    np.testing.assert_allclose(five[0], [40, 52])
    np.testing.assert_allclose(five[1], [60, 50])
    np.testing.assert_allclose(five[2], [50, 60])
    mouth = (five[3] + five[4]) / 2  # the mouth centre, raised a little towards the corners' line
    assert np.abs(mouth - [50, 70]).max() < 2.0 and mouth[1] < 70
    assert five[3, 0] < five[4, 0]


@pytest.mark.parametrize("name", sorted(CROPS))
def test_face_mesh_matches_mediapipe(mesh, sol_ref, name):
    img = np.ascontiguousarray(CROPS[name])
    h, w = img.shape[:2]
    ref = sol_ref[f"{name}_mesh"][0] * [w, h, w]  # mediapipe's z is relative to the image width
    points, scores = mesh.landmarks(img, return_scores=True)
    assert len(points) == 1 and points[0].shape == (468, 3) and points[0].dtype == np.float32
    assert scores[0] > 0.5
    np.testing.assert_allclose(points[0], ref, atol=1.0, rtol=0)


def test_face_mesh_on_given_faces(mesh, detector, sol_ref):
    faces = detector.detect([PHOTO])[0]
    two = mesh.landmarks(PHOTO, faces + faces)
    assert len(two) == 2
    np.testing.assert_allclose(two[0], two[1], atol=1e-3)
    np.testing.assert_allclose(two[0], sol_ref["full_mesh"][0] * 512, atol=1.0, rtol=0)
    assert mesh.landmarks(PHOTO, []) == []
    five = mesh_to_five(two[0])
    assert five.shape == (5, 2)
    # mesh eyes / nose close to BlazeFace's keypoints
    assert np.abs(five[:3] - faces[0].landmarks[:3]).max() < 6


@pytest.mark.parametrize("angle", [-25, 20])
def test_face_mesh_follows_rotation(mesh, detector, angle):
    import cv2
    upright = mesh.landmarks(PHOTO)[0]
    m = cv2.getRotationMatrix2D((256, 256), angle, 1.0)
    rotated = cv2.warpAffine(PHOTO, m, (512, 512))
    faces = detector.detect([rotated])[0]
    assert len(faces) == 1
    upright_roll = face_roi(detector.detect([PHOTO])[0][0])[2]  # the astronaut's head is tilted ~5 degrees
    # the crop turns with the face (cv2's positive angle turns the image counter-clockwise)
    assert math.degrees(face_roi(faces[0])[2]) == pytest.approx(math.degrees(upright_roll) - angle, abs=8)
    points = mesh.landmarks(rotated, faces)[0]
    expected = upright[:, :2] @ m[:, :2].T + m[:, 2]
    assert np.abs(points[:, :2] - expected).mean() < 1.5


def test_face_without_landmarks(mesh):
    face = Face([178, 83, 273, 178], 0.9, None)
    points = mesh.landmarks(PHOTO, [face])[0]
    box = face.box
    inside = (points[:, 0] > box[0] - 20) & (points[:, 0] < box[2] + 20) & \
        (points[:, 1] > box[1] - 20) & (points[:, 1] < box[3] + 20)
    assert inside.mean() > 0.95


# --- segmentation -----------------------------------------------------------------------------------

def test_selfie_mask_matches_mediapipe(sol_ref):
    seg = SelfieSegmenter()
    mask = seg.mask(PHOTO)
    ref = sol_ref["full_seg_mask"].astype(np.float32) / 255
    assert mask.shape == (512, 512) and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    np.testing.assert_allclose(mask, ref, atol=0.01, rtol=0)
    masks = seg.masks([np.ascontiguousarray(CROPS["landscape"]), np.ascontiguousarray(CROPS["portrait"])])
    assert [m.shape for m in masks] == [(360, 512), (512, 300)]
    assert masks[0][100:200, 200:260].mean() > 0.9  # the astronaut's face is person


# --- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls,wrong", [(MediaPipeBlazeFace, "mediapipe-face-mesh"),
                                       (FaceMeshNet, "mediapipe-selfie-segmentation"),
                                       (SelfieSegmentation, "mediapipe-face-detection")])
def test_wrong_model_file(cls, wrong):
    with pytest.raises(CheckpointError) as info:
        cls(weight_path=resolve_weight(wrong))
    assert "\n" not in str(info.value) and cls.__name__ in str(info.value)


@pytest.mark.parametrize("content", [b"", b"garbage" * 100, None])
def test_damaged_model_file(tmp_path, content):
    path = tmp_path / "bad.tflite"
    data = open(resolve_weight("mediapipe-face-detection"), "rb").read()
    path.write_bytes(content if content is not None else data[:len(data) // 2])
    with pytest.raises(CheckpointError) as info:
        MediaPipeDetector(weight_path=str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("bad", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32),
                                 np.zeros((10, 10, 4), np.uint8), np.zeros((0, 10, 3), np.uint8)])
def test_bad_images(detector, bad):
    with pytest.raises(ConfigError) as info:
        detector.detect([bad])
    assert isinstance(info.value, PPGANError) and "\n" not in str(info.value)


def test_fuzzed_model_files(tmp_path):
    """Damaged copies either build (a flip inside weight bytes is still a model) or give one
    CheckpointError line naming the file; never another exception."""
    data = open(resolve_weight("mediapipe-face-detection"), "rb").read()
    rng = np.random.default_rng(7)
    results = set()
    for k in range(16):
        b = bytearray(data)
        if k % 2:
            pos = int(rng.integers(0, len(b) - 4))
            b[pos:pos + 4] = int(rng.integers(0, 2 ** 32)).to_bytes(4, "little")
        else:
            for _ in range(int(rng.integers(1, 20))):
                b[int(rng.integers(0, 8192))] ^= int(rng.integers(1, 256))
        path = tmp_path / f"m{k}.tflite"
        path.write_bytes(bytes(b))
        try:
            MediaPipeBlazeFace(weight_path=str(path))
            results.add("ok")
        except CheckpointError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc)
            results.add("error")
    assert "error" in results


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(detector, mesh):
    gpu = MediaPipeDetector(device="cuda")
    img = np.ascontiguousarray(CROPS["landscape"])
    (cpu_face,), (gpu_face,) = detector.detect([img])[0], gpu.detect([img])[0]
    np.testing.assert_allclose(gpu_face.box, cpu_face.box, atol=0.05)
    np.testing.assert_allclose(gpu_face.landmarks, cpu_face.landmarks, atol=0.05)
    gpu_mesh = FaceMesh(device="cuda").landmarks(img, [gpu_face])[0]
    np.testing.assert_allclose(gpu_mesh, mesh.landmarks(img, [cpu_face])[0], atol=0.1)
    mask = SelfieSegmenter(device="cuda").mask(img)
    np.testing.assert_allclose(mask, SelfieSegmenter().mask(img), atol=1e-3)

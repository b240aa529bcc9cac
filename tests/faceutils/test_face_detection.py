"""`FaceDetector`: dispatch by name, one-line errors, input checks, and the Haar fallback."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from ppgan.faceutils import DETECTORS, FaceDetector
from ppgan.faceutils.boxes import box_iou
from ppgan.faceutils.detection import HaarDetector, detector_class
from ppgan.utils.errors import ConfigError, PPGANError

skimage_data = pytest.importorskip("skimage.data")

ASTRONAUT_FACE = (182, 78, 270, 178)  # annotated by hand (see test_face_mtcnn.py)


@pytest.fixture(scope="module")
def astronaut():
    return skimage_data.astronaut()


@pytest.fixture(scope="module")
def haar():
    return FaceDetector("haar")


def test_known_names():
    assert DETECTORS == ("mtcnn", "sfd", "blazeface", "mediapipe", "haar")
    assert detector_class("haar") is HaarDetector
    assert detector_class("MTCNN").__name__ == "MTCNNDetector"


@pytest.mark.parametrize("name, hint", [("mtcn", "did you mean 'mtcnn'"), ("blaze_face", "did you mean 'blazeface'"),
                                        ("retinaface", "known: mtcnn, sfd, blazeface, mediapipe, haar"),
                                        ("", "known:")])
def test_unknown_name_is_one_line(name, hint):
    with pytest.raises(PPGANError) as e:
        FaceDetector(name)
    msg = str(e.value)
    assert "\n" not in msg and hint in msg and "unknown face detector" in msg


def test_mtcnn_through_the_entry_point(astronaut):
    det = FaceDetector("mtcnn", device="cpu", min_face_size=30)
    assert det.has_landmarks and det.identity.startswith("mtcnn:") and ":min30:" in det.identity
    faces = det.detect([astronaut])
    assert len(faces) == 1 and len(faces[0]) == 1
    assert faces[0][0].landmarks.shape == (5, 2)
    # a single HxWx3 array is one image; an NxHxWx3 array N images
    assert len(det.detect(astronaut)) == 1
    assert [len(f) for f in det.detect(np.stack([astronaut, astronaut]))] == [1, 1]
    assert det.detect([]) == []


def test_haar_finds_the_astronaut(haar, astronaut):
    assert not haar.has_landmarks and haar.identity.startswith("haar:")
    faces = haar.detect([astronaut])[0]
    assert len(faces) == 1
    assert faces[0].landmarks is None and 0 < faces[0].score <= 1
    assert box_iou(faces[0].box[None], np.array([ASTRONAUT_FACE], np.float32))[0, 0] >= 0.5


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket"])
def test_haar_no_face_on_photos_without_people(haar, name):
    assert haar.detect([getattr(skimage_data, name)()]) == [[]]


def test_haar_batches_and_sizes(haar, astronaut):
    small = cv2.resize(astronaut, (256, 256))
    out = haar.detect([astronaut, skimage_data.coffee(), small])
    assert [len(f) for f in out] == [1, 0, 1]
    np.testing.assert_allclose(out[2][0].box * 2, out[0][0].box, atol=12)


def test_haar_options(tmp_path, astronaut):
    with pytest.raises(PPGANError, match="not found"):
        HaarDetector(weight_path=str(tmp_path / "none.xml"))
    bad = tmp_path / "bad.xml"
    bad.write_text("<opencv_storage></opencv_storage>")
    with pytest.raises(PPGANError, match="cannot read the Haar cascade"):
        HaarDetector(weight_path=str(bad))
    with pytest.raises(ConfigError, match="scale_factor"):
        HaarDetector(scale_factor=1.0)
    assert HaarDetector(min_face_size=200).detect([astronaut]) == [[]]  # the face is ~95 px


@pytest.mark.parametrize("name", ["mtcnn", "haar"])
@pytest.mark.parametrize("bad, match", [
    (np.zeros((20, 20, 3), np.float32), "dtype float32"),
    ([np.zeros((20, 20), np.uint8)], r"image 0 has shape \(20, 20\)"),
    ([np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20, 4), np.uint8)], "image 1 has shape"),
    ("astronaut.png", "got str"),
    (None, "got NoneType"),
])
def test_bad_input_is_one_line(name, bad, match):
    det = FaceDetector(name)
    with pytest.raises(PPGANError, match=match) as e:
        det.detect(bad)
    assert "\n" not in str(e.value) and f"FaceDetector('{name}')" in str(e.value)


def test_unknown_name_from_a_script_reports_one_line():
    code = ("import sys\nfrom ppgan.faceutils import FaceDetector\nfrom ppgan.utils.errors import report\n"
            "try:\n    FaceDetector('mtcnnn')\nexcept Exception as e:\n    sys.exit(report(e))\n")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown face detector 'mtcnnn'")
    assert "Traceback" not in proc.stderr


def _benchmark_main():
    import importlib.util

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    spec = importlib.util.spec_from_file_location("benchmark_faces", os.path.join(root, "tools", "benchmark_faces.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_tool_prints_a_table(capsys):
    bench = _benchmark_main()
    frame = bench.make_frame(160, 96)
    assert frame.shape == (96, 160, 3) and frame.dtype == np.uint8
    rc = bench.main(["--detectors", "mtcnn,haar", "--device", "cpu", "--seconds", "0.01", "--sizes", "160x96",
                     "--batch_sizes", "1,2"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0
    rows = [line.split() for line in out if line.startswith(("mtcnn", "haar"))]
    assert [(r[0], r[3]) for r in rows] == [("mtcnn", "1"), ("mtcnn", "2"), ("haar", "1"), ("haar", "2")]
    assert all(float(r[4]) > 0 for r in rows)


@pytest.mark.parametrize("argv, match", [
    (["--detectors", "mtcnx"], "unknown mtcnx"),
    (["--sizes", "640by360"], "--sizes wants WxH"),
    (["--seconds", "0"], "--seconds must be > 0"),
    (["--device", "tpu"], "--device must be"),
])
def test_benchmark_tool_bad_arguments_one_line(capsys, argv, match):
    assert _benchmark_main().main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and match in err[0]


@pytest.mark.parametrize("name, options, match", [
    ("mtcnn", {"foo": 1}, "face detector 'mtcnn' has no option foo; its options: min_face_size"),
    ("haar", {"min_face_size": 20, "bar": 2}, "face detector 'haar' has no option bar; its options: scale_factor"),
    ("mtcnn", {"min_face_size": "big"}, "min_face_size must be a number"),
    ("mtcnn", {"thresholds": 0.5}, "thresholds must be numbers"),
])
def test_bad_options_are_one_line_config_errors(name, options, match):
    with pytest.raises(ConfigError, match=match) as e:
        FaceDetector(name, **options)
    assert "\n" not in str(e.value)

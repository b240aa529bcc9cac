"""applications/tools/face_detect.py run as a user runs it (a subprocess with a timeout): JSON records
for an image, a folder and a video, drawn outputs, the face-track cache, and one-line errors."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(ROOT, "applications", "tools", "face_detect.py")
ASTRO_FACE = np.array([176.0, 70.0, 274.0, 172.0])  # brows to chin, annotated by hand on astronaut()


def run(args, home, timeout=240):
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", PPGAN_HOME=str(home))
    env.pop("PPGAN_DEBUG", None)
    return subprocess.run([sys.executable, CLI, *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def photo(name):
    from skimage import data

    img = getattr(data, name)()
    return np.stack([img] * 3, -1) if img.ndim == 2 else img[..., :3]


def save(path, rgb):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    return str(path)


def iou(a, b):
    lt, rb = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = np.prod(np.clip(rb - lt, 0, None))
    return inter / (np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter)


def test_help_is_fast_and_imports_no_torch():
    code = ("import runpy, sys\nsys.argv = ['face_detect.py', '--help']\n"
            f"try:\n    runpy.run_path({CLI!r}, run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('torch loaded:', 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--detector" in r.stdout and "--draw" in r.stdout
    assert r.stdout.strip().endswith("torch loaded: False")


@pytest.mark.parametrize("detector", ["mtcnn", "haar"])
def test_image_json_and_drawing(tmp_path, detector):
    src = save(tmp_path / "in" / "astronaut.png", photo("astronaut"))
    out = tmp_path / "out"
    r = run(["--input", src, "--output", out, "--draw", "--quiet", "--detector", detector], tmp_path / "home")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.split() == ["output:", str(out / "astronaut.json"), "output:", str(out / "astronaut_faces.png")]
    data = json.loads((out / "astronaut.json").read_text())
    assert data["type"] == "image" and (data["width"], data["height"]) == (512, 512)
    assert data["detector"].startswith(detector + ":")
    (rec,) = data["records"]
    assert rec["file"] == src and rec["time"] is None and rec["score"] > 0.9
    box = np.array(rec["box"])
    assert iou(box, ASTRO_FACE) >= 0.7
    if detector == "haar":
        assert rec["landmarks"] is None
        lm = np.zeros((0, 2))
    else:
        lm = np.array(rec["landmarks"])
        assert lm.shape == (5, 2) and lm[0, 0] < lm[1, 0]  # left eye left of right eye

    drawn = cv2.cvtColor(cv2.imread(str(out / "astronaut_faces.png")), cv2.COLOR_BGR2RGB)
    orig = photo("astronaut")
    assert drawn.shape == orig.shape
    changed = np.abs(drawn.astype(int) - orig.astype(int)).sum(axis=2) > 30
    yy, xx = np.mgrid[0:512, 0:512]
    x1, y1, x2, y2 = box
    near_edge = ((np.abs(xx - x1) <= 3) | (np.abs(xx - x2) <= 3)) & (yy >= y1 - 3) & (yy <= y2 + 3) | \
                ((np.abs(yy - y1) <= 3) | (np.abs(yy - y2) <= 3)) & (xx >= x1 - 3) & (xx <= x2 + 3)
    near_dot = np.zeros_like(near_edge)
    for x, y in lm:
        near_dot |= (xx - x) ** 2 + (yy - y) ** 2 <= 5 ** 2
    assert not (changed & ~near_edge & ~near_dot).any()  # only the lines and the dots are drawn
    assert changed[near_edge].mean() > 0.2  # the box is drawn all around
    for x, y in lm:
        assert changed[int(round(y)), int(round(x))]  # a dot on each landmark


@pytest.mark.parametrize("with_broken", [False, True])
def test_folder_mirrors_tree_and_reports_failures(tmp_path, with_broken):
    src = tmp_path / "photos"
    save(src / "astronaut.png", photo("astronaut"))
    save(src / "coffee.png", photo("coffee"))
    save(src / "sub" / "chelsea.jpg", photo("chelsea"))
    if with_broken:
        (src / "broken.png").write_bytes(b"not an image" * 10)
    out = tmp_path / "out"
    r = run(["--input", src, "--output", out, "--detector", "mtcnn", "--quiet"], tmp_path / "home")
    assert "Traceback" not in r.stderr
    assert r.returncode == (3 if with_broken else 0), r.stderr
    if with_broken:
        assert r.stderr.count("failed:") == 1 and "broken.png" in r.stderr
    assert f"3 written, 0 skipped (output exists), {int(with_broken)} failed" in r.stdout
    faces = {name: len(json.loads((out / name).read_text())["records"])
             for name in ("astronaut.json", "coffee.json", os.path.join("sub", "chelsea.json"))}
    assert faces == {"astronaut.json": 1, "coffee.json": 0, os.path.join("sub", "chelsea.json"): 0}
    assert not (out / "broken.json").exists()


def _face_video(path, tmp_path, n=20, cut=14):
    """The astronaut, 320x180, panning slowly with the face in view, then from frame `cut` on the
    coffee photo (no face); audio from a synthetic clip."""
    from ppgan.video import VideoWriter
    from ppgan.video.synthetic import make_test_video

    audio = str(tmp_path / "audio_src.mp4")
    make_test_video(audio, seconds=n / 25, fps=25, size=(64, 36))
    img = photo("astronaut")
    with VideoWriter(path, 320, 180, 25, crf=16, audio_from=audio) as w:
        for i in range(n):
            s = 320 / 420
            m = np.array([[s, 0, -s * (46 + i)], [0, s, -s * 10]])
            w.write(cv2.warpAffine(img if i < cut else photo("coffee"), m, (320, 180), flags=cv2.INTER_AREA))
    return path


def test_video_records_tracks_drawing_and_cache(tmp_path):
    from ppgan.video import iter_frames, probe_video

    src = _face_video(str(tmp_path / "talk.mp4"), tmp_path)
    out = tmp_path / "out"
    home = tmp_path / "home"
    r = run(["--input", src, "--output", out, "--draw", "--batch_size", 4], home)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "from the cache" not in r.stderr
    data = json.loads((out / "talk.json").read_text())
    assert data["type"] == "video" and data["n_frames"] == 20 and data["fps"] == 25.0
    assert data["missing_frames"] == list(range(14, 20))  # no face: flagged, not an error
    recs = data["records"]
    assert [rec["frame"] for rec in recs] == list(range(14))  # one face per frame with the face
    assert {rec["track_id"] for rec in recs} == {0}
    assert recs[5]["time"] == pytest.approx(0.2)
    assert all(len(rec["landmarks"]) == 5 for rec in recs)
    drawn = str(out / "talk_faces.mp4")
    info = probe_video(drawn)
    assert info.n_frames == 20 and info.has_audio and (info.width, info.height) == (320, 180)  # all passed through
    first_in, first_out = next(iter_frames(src)), next(iter_frames(drawn))
    x1, y1, x2, y2 = np.array(recs[0]["box"]).round().astype(int)
    diff = np.abs(first_in.astype(int) - first_out.astype(int)).sum(axis=2)
    assert diff[y1 - 1:y1 + 2, x1 + 5:x2 - 5].mean() > 60  # top edge drawn
    assert diff[:, :max(1, x1 - 10)].mean() < 12  # far left of the face: only codec noise

    r2 = run(["--input", src, "--output", tmp_path / "out2"], home)
    assert r2.returncode == 0 and "from the cache" in r2.stderr, r2.stderr
    assert json.loads((tmp_path / "out2" / "talk.json").read_text())["records"] == recs


BAD = {
    "missing file": (["--input", "{tmp}/nope.png"], "input not found"),
    "not an image": (["--input", "{tmp}/fake.png"], "cannot read image"),
    "not a video": (["--input", "{tmp}/fake.mp4"], "fake.mp4"),
    "unsupported type": (["--input", "{tmp}/notes.txt"], "unsupported file type"),
    "unknown detector": (["--input", "{tmp}/fake.png", "--detector", "mtcnnn"], "unknown face detector"),
    "batch size": (["--input", "{tmp}/fake.png", "--batch_size", "0"], "--batch_size"),
    "bad weights": (["--input", "{tmp}/real.png", "--weight_path", "{tmp}/notes.txt"], "notes.txt"),
    "bad haar file": (["--input", "{tmp}/real.png", "--detector", "haar", "--weight_path", "{tmp}/fake.png"],
                      "fake.png"),
    "empty folder": (["--input", "{tmp}/empty"], "no image or video files"),
}


# The cases that only differ in the message checked run in `make test-all` (slow).
FAST_BAD = {"missing file", "not a video", "unknown detector", "bad weights"}


@pytest.mark.parametrize("case", [c if c in FAST_BAD else pytest.param(c, marks=pytest.mark.slow) for c in sorted(BAD)])
def test_bad_input_is_one_error_line(tmp_path, case):
    (tmp_path / "fake.png").write_bytes(b"plain text, not a PNG\n" * 5)
    (tmp_path / "fake.mp4").write_bytes(b"plain text, not a video\n" * 5)
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "empty").mkdir()
    save(tmp_path / "real.png", photo("astronaut")[::4, ::4])
    args, expect = BAD[case]
    args = [a.format(tmp=tmp_path) for a in args]
    r = run([*args, "--output", tmp_path / "out"], tmp_path / "home", timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and expect in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())

"""The First Order Motion app end to end: scikit-image's astronaut animated by a driving video made
by warping the same photo (small rotations, zoom and shifts over 2 s, with audio), through tiny
deterministic nets (PaddleGAN's layout, small widths; the published weights cannot be downloaded
here), so what is tested is the pipeline: crop, batches, paste back, timing, audio, resume, errors."""
import importlib.util
import json
import os
import subprocess
from fractions import Fraction

import cv2
import numpy as np
import pytest
import torch
import yaml
from skimage import data

from conftest import ROOT, run_cli
from ppgan.utils.image import imwrite

TOOL = "applications/tools/first-order-demo.py"
FPS = Fraction(24000, 1001)
N_FRAMES = 48  # 2.0 s at 23.976 fps
SIZE = 64      # face crop side the tiny nets see

TINY = {"model": {
    "common_params": {"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
    "generator": {
        "kp_detector_cfg": {"temperature": 0.1, "block_expansion": 4, "max_features": 16, "scale_factor": 0.25,
                            "num_blocks": 2},
        "generator_cfg": {"block_expansion": 4, "max_features": 16, "num_down_blocks": 2, "num_bottleneck_blocks": 1,
                          "estimate_occlusion_map": True,
                          "dense_motion_params": {"block_expansion": 4, "max_features": 16, "num_blocks": 2,
                                                  "scale_factor": 0.25}}}}}


def _main():
    spec = importlib.util.spec_from_file_location("first_order_demo", os.path.join(ROOT, TOOL))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def warp_about(img, center, angle, scale=1.0, shift=(0.0, 0.0)):
    m = cv2.getRotationMatrix2D((float(center[0]), float(center[1])), angle, scale)
    m[:, 2] += shift
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def write_video(path, frames, fps=FPS, audio=True):
    """Frames (HxWx3 uint8 RGB) -> H.264 .mp4 at `fps`, with a 440 Hz tone as AAC audio."""
    from ppgan.video import ffmpeg_exe
    from ppgan.video.synthetic import _write_wav

    h, w = frames[0].shape[:2]
    args = [ffmpeg_exe(), "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
            "-r", f"{fps.numerator}/{fps.denominator}", "-i", "-"]
    if audio:
        wav = str(path) + ".wav"
        _write_wav(wav, len(frames) / float(fps) + 0.05, [0.5, 1.0, 1.5], 440)
        args += ["-i", wav, "-map", "0:v", "-map", "1:a", "-c:a", "aac", "-shortest"]
    args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", str(path)]
    proc = subprocess.run(args, input=b"".join(f.tobytes() for f in frames), capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    return str(path)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """Tiny weights (.pth with 'generator' and 'kp_detector'), their config as YAML, the 256x256
    astronaut photo and a 2 s 128x128 driving video warped from it (audio included)."""
    from ppgan.apps.first_order_predictor import build_nets

    d = tmp_path_factory.mktemp("fom")
    torch.manual_seed(0)
    gen, kp = build_nets(TINY)
    weights = str(d / "fom_tiny.pth")
    torch.save({"generator": gen.state_dict(), "kp_detector": kp.state_dict()}, weights)
    config = str(d / "fom_tiny.yaml")
    with open(config, "w") as f:
        yaml.safe_dump(TINY, f)
    photo = cv2.resize(data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    source = str(d / "astronaut.png")
    imwrite(source, photo)
    frames = []
    for i in range(N_FRAMES):
        t = i / (N_FRAMES - 1)
        f = warp_about(photo, (110, 60), 8 * np.sin(2 * np.pi * t), 1 + 0.06 * np.sin(np.pi * t),
                       (6 * np.sin(2 * np.pi * t), 4 * np.cos(2 * np.pi * t) - 4))
        frames.append(cv2.resize(f, (128, 128), interpolation=cv2.INTER_AREA))
    driving = write_video(d / "drive.mp4", frames)
    return {"dir": d, "weights": weights, "config": config, "source": source, "photo": photo, "driving": driving}


def predictor(assets, **kw):
    from ppgan.apps.first_order_predictor import FirstOrderPredictor

    kw = {"weight_path": assets["weights"], "config": TINY, "image_size": SIZE, "device": "cpu", "verbose": False,
          "batch_size": 4, **kw}
    return FirstOrderPredictor(**kw)


def decode(path):
    from ppgan.video import iter_frames

    return np.stack(list(iter_frames(path)))


def test_portrait_animated_by_warped_video_keeps_timing_size_and_audio(assets, tmp_path):
    from ppgan.video import probe_video
    from ppgan.video.synthetic import decode_audio

    pred = predictor(assets, relative=True, adapt_scale=True, output=str(tmp_path / "out"))
    out = pred.run(assets["source"], assets["driving"], progress=False)
    assert out == str(tmp_path / "out" / "result.mp4") and os.path.isfile(out)
    src, dst = probe_video(assets["driving"]), probe_video(out)
    assert dst.fps == src.fps == FPS
    assert dst.n_frames == src.n_frames == N_FRAMES
    assert abs(dst.duration - src.duration) <= 1 / float(FPS)
    assert (dst.width, dst.height) == (256, 256)
    assert dst.has_audio and decode_audio(out).size > 0.9 * 16000 * float(src.duration)
    frames = decode(out).astype(np.int16)
    photo = assets["photo"].astype(np.int16)
    (face,) = pred.last_faces
    x1, y1, x2, y2 = face.box
    inner = (slice(y1 + 8, y2 - 8), slice(x1 + 8, x2 - 8))
    # the face region is the generator's (not the photo) and moves with the driving video
    assert np.abs(frames[:, inner[0], inner[1]] - photo[inner]).mean() > 10
    assert frames[:, inner[0], inner[1]].std(axis=0).mean() > 0.5
    # far from the face the photo is unchanged (up to the encoder's error)
    outside = np.ones(photo.shape[:2], bool)
    outside[max(0, y1 - 4):y2 + 4, max(0, x1 - 4):x2 + 4] = False
    assert np.abs(frames[:, outside] - photo[outside]).mean() < 3


def test_cli_with_paddlegan_flags(assets, tmp_path):
    from ppgan.video import probe_video

    r = run_cli([TOOL, "--source_image", assets["source"], "--driving_video", assets["driving"], "--weight_path",
                 assets["weights"], "--config", assets["config"], "--relative", "--adapt_scale", "--best_frame", "3",
                 "--image_size", str(SIZE), "--batch_size", "5", "--output", str(tmp_path / "o"), "--filename",
                 "a.mkv", "--cpu", "--quiet"], timeout=240)
    assert r.returncode == 0, r.stderr
    out = str(tmp_path / "o" / "a.mkv")
    assert r.stdout.strip() == f"output: {out}"
    info = probe_video(out)
    assert info.n_frames == N_FRAMES and info.fps == FPS and info.has_audio


def test_killed_job_resumes_and_equals_an_uninterrupted_run(assets, tmp_path, caplog):
    """A job that dies after two chunks, re-run by a new predictor (the initial keypoints come from
    the driving video's frame `best_frame`, not from a counter), continues from the finished chunks
    and writes the same frames as a run without interruption."""
    from ppgan.apps.first_order_predictor import FirstOrderStage

    opts = {"chunk_seconds": 0.5}  # 12 frames a chunk: 4 chunks
    whole = predictor(assets, relative=True, best_frame=7).run(assets["source"], assets["driving"],
                                                               output_path=str(tmp_path / "whole.mp4"),
                                                               video_options=opts, progress=False)
    out = str(tmp_path / "resumed.mp4")
    crashing = predictor(assets, relative=True, best_frame=7)
    seen = []
    real_push = FirstOrderStage.push

    def push(self, frames):
        seen.extend(frames)
        if len(seen) > 28:
            raise KeyboardInterrupt  # killed while on chunk 2
        return real_push(self, frames)

    FirstOrderStage.push = push
    try:
        with pytest.raises(KeyboardInterrupt):
            crashing.run(assets["source"], assets["driving"], output_path=out, video_options=opts, progress=False)
    finally:
        FirstOrderStage.push = real_push
    assert not os.path.exists(out)
    manifest = json.load(open(out + ".ppgan-parts/manifest.json"))
    assert sorted(manifest["done"]) == ["0", "1"]
    caplog.clear()
    with caplog.at_level("INFO", logger="ppgan.video"):
        predictor(assets, relative=True, best_frame=7).run(assets["source"], assets["driving"], output_path=out,
                                                           video_options=opts, progress=False)
    assert "resuming" in caplog.text and "at chunk 3 of 4" in caplog.text
    a, b = decode(whole), decode(out)
    assert a.shape == b.shape == (N_FRAMES, 256, 256, 3)
    np.testing.assert_array_equal(a, b)
    assert not os.path.exists(out + ".ppgan-parts")


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize("case", ["image_as_driving", "image_named_mp4", "video_as_source", "video_named_png",
                                  "no_face", "garbage_source", "garbage_driving", "missing_source", "missing_keys"])
def test_bad_inputs_fail_with_one_line_and_no_output(assets, tmp_path, capsys, case):
    d = tmp_path
    source, driving, weights = assets["source"], assets["driving"], assets["weights"]
    if case == "image_as_driving":
        driving, want = source, "is an image"
    elif case == "image_named_mp4":  # told by content, not by the name
        driving, want = str(d / "still.mp4"), "is an image"
        open(driving, "wb").write(open(source, "rb").read())
    elif case == "video_as_source":
        source, want = driving, "is a video"
    elif case == "video_named_png":
        source, want = str(d / "clip.png"), "is a video"
        open(source, "wb").write(open(driving, "rb").read())
    elif case == "no_face":
        source = str(d / "wall.png")
        imwrite(source, np.full((128, 160, 3), 128, np.uint8))
        want = "no face found"
    elif case == "garbage_source":
        source = str(d / "broken.png")
        open(source, "wb").write(b"\x89PNG\r\n\x1a\n not really")
        want = "broken.png"
    elif case == "garbage_driving":
        driving = str(d / "broken.mp4")
        open(driving, "wb").write(os.urandom(3000))
        want = "broken.mp4"
    elif case == "missing_source":
        source, want = str(d / "nope.png"), "not found"
    else:
        weights = str(d / "gen_only.pth")
        torch.save({"generator": torch.load(assets["weights"], weights_only=True)["generator"]}, weights)
        want = "kp_detector"
    rc = _main()(["--source_image", source, "--driving_video", driving, "--weight_path", weights, "--config",
                  assets["config"], "--image_size", str(SIZE), "--output", str(d / "out"), "--cpu", "--quiet"])
    assert rc == 2
    assert want in _error_line(capsys)
    assert not os.path.exists(d / "out" / "result.mp4") and not os.path.exists(d / "out" / "result.mp4.ppgan-parts")


def test_bad_input_from_a_subprocess_is_one_line(assets, tmp_path):
    r = run_cli([TOOL, "--source_image", assets["source"], "--driving_video", assets["source"], "--weight_path",
                 assets["weights"], "--config", assets["config"], "--image_size", str(SIZE), "--output",
                 str(tmp_path), "--cpu"], timeout=120)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:") or "Traceback" in ln]
    assert lines == [f"error: driving video {assets['source']} is an image; --driving_video needs a video"]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("argv, want", [(["--batch_size", "0"], "--batch_size"), (["--ratio", "-1"], "--ratio"),
                                        (["--face_enhancement"], "face_enhancement"),
                                        (["--face_detector", "nope"], None)])
def test_bad_flags(assets, tmp_path, capsys, argv, want):
    base = ["--source_image", assets["source"], "--driving_video", assets["driving"], "--weight_path",
            assets["weights"], "--config", assets["config"], "--image_size", str(SIZE), "--output", str(tmp_path),
            "--cpu", "--quiet"]
    if want is None:  # argparse's own refusal (exit 2)
        with pytest.raises(SystemExit) as e:
            _main()(base + argv)
        assert e.value.code == 2
        return
    assert _main()(base + argv) == 2
    assert want in _error_line(capsys)


def _two_faces():
    photo = cv2.resize(data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    return np.concatenate([photo, photo[:, ::-1]], axis=1)  # 512x256, a face in each half


@pytest.mark.parametrize("multi", [False, True])
def test_multi_person_animates_every_face(assets, tmp_path, multi):
    from ppgan.apps.first_order_predictor import FirstOrderStage

    src = str(tmp_path / "two.png")
    photo = _two_faces()
    imwrite(src, photo)
    pred = predictor(assets, multi_person=multi, ratio=0.4)
    source, faces, info = pred.prepare(src, assets["driving"])
    assert len(faces) == (2 if multi else 1)
    stage = FirstOrderStage(pred, source, faces, "x")
    stage.reset(0)
    drive = decode(assets["driving"])[:6]
    out = stage.push(list(drive))
    assert len(out) == 6 and all(o.shape == photo.shape for o in out)
    changed = np.any(np.stack(out) != photo, axis=(0, 3))
    halves = [changed[:, :256], changed[:, 256:]]
    assert [h.mean() > 0.05 for h in halves] == ([True, True] if multi else
                                                [faces[0].box[0] < 256, faces[0].box[0] >= 256])
    # nothing changed outside the faces' crops; the disc (ratio 0.4) keeps the crop corners too
    region = np.zeros(photo.shape[:2], bool)
    for f in faces:
        x1, y1, x2, y2 = f.box
        region[y1:y2, x1:x2] = True
        if multi:
            assert not changed[y1, x1] and not changed[y2 - 1, x2 - 1]
    assert not changed[~region].any()


def test_out_of_memory_retries_with_a_smaller_batch(assets, capsys):
    """A (simulated) CUDA out-of-memory on batches of more than two frames: the batch is halved,
    logged, and the frames come out as a run with batches of two gives them."""
    from ppgan.utils.errors import PPGANError

    pred = predictor(assets, batch_size=8, verbose=True)
    capsys.readouterr()
    source, faces, _ = pred.prepare(assets["source"], assets["driving"])
    frames = list(decode(assets["driving"])[:8])
    real = pred.generator.forward

    def forward(source_image, kp_driving, kp_source):
        if source_image.shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(source_image, kp_driving=kp_driving, kp_source=kp_source)

    pred.generator.forward = forward
    got = pred.animate(faces, frames)[0]
    assert pred.stats["oom_retries"] == 2 and pred._batch == 2
    err = capsys.readouterr().err
    assert "out of memory with a batch of 8 frames: retrying with 4" in err
    assert "out of memory with a batch of 4 frames: retrying with 2" in err
    pred.generator.forward = real
    pred._batch = 2
    want = pred.animate(faces, frames)[0]
    assert np.abs(np.stack(got).astype(int) - np.stack(want)).max() <= 1

    def always(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory.")

    pred.generator.forward = always
    with pytest.raises(PPGANError, match="out of memory on cpu animating one 64x64 frame"):
        pred.animate(faces, frames[:1])


def test_find_best_frame_picks_the_pose_of_the_source(assets, tmp_path):
    """Driving frames are the source crop rotated by -18..+18 degrees, upright only at frame 12:
    the landmarks (face mesh, normalised as PaddleGAN does) pick frame 12."""
    pred = predictor(assets, find_best_frame=True, image_size=128)
    source = pred.read_img(assets["source"])
    (face,) = pred._faces(source, assets["source"])
    n = 17
    frames = [warp_about(face.crop, (64, 64), 3.0 * (i - 12)) for i in range(n)]
    driving = write_video(tmp_path / "turn.mp4", frames, fps=Fraction(25), audio=False)
    assert pred.find_best_frame_func(face.crop, driving) == 12
    _, faces, _ = pred.prepare(assets["source"], driving)
    assert faces[0].initial_frame == 12


@pytest.mark.parametrize("boxes, kept", [
    ([(0, 0, 10, 10)], [(0, 0, 10, 10)]),
    ([(0, 0, 10, 10), (1, 1, 11, 11), (50, 50, 70, 70)], [(50, 50, 70, 70), (0, 0, 10, 10)]),
    ([(0, 0, 10, 10), (5, 0, 15, 10)], [(0, 0, 10, 10), (5, 0, 15, 10)]),  # IoU 1/3: both kept
    ([], []),
])
def test_dedup_boxes_as_paddlegan(boxes, kept):
    from ppgan.apps.first_order_predictor import dedup_boxes

    assert dedup_boxes(boxes) == kept


@pytest.mark.parametrize("shift, scale", [((0, 0), 1.0), ((30, -5), 2.5), ((-7, 12), 0.3)])
def test_normalized_landmarks_ignore_position_and_scale(shift, scale):
    from ppgan.apps.first_order_predictor import normalized_landmarks

    pts = np.array([[10, 10], [30, 12], [20, 25], [12, 35], [28, 36]], np.float64)
    a = normalized_landmarks(pts)
    b = normalized_landmarks(pts * scale + shift)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert abs(a.mean()) < 1e-9


def test_odd_sized_photo_gives_even_frames(assets, tmp_path):
    from ppgan.apps.first_order_predictor import FirstOrderStage

    src = str(tmp_path / "odd.png")
    imwrite(src, assets["photo"][:255, :253])
    pred = predictor(assets)
    source, faces, _ = pred.prepare(src, assets["driving"])
    out = FirstOrderStage(pred, source, faces, "x").push(list(decode(assets["driving"])[:2]))
    assert out[0].shape == (256, 254, 3)
    np.testing.assert_array_equal(out[0][255, :253], out[0][254, :253])  # last row repeated


def test_config_and_weights_errors(assets, tmp_path):
    from ppgan.apps.first_order_predictor import FirstOrderPredictor, read_config
    from ppgan.utils.errors import CheckpointError, ConfigError

    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  name: FirstOrderModel\n")
    with pytest.raises(ConfigError, match="not a First Order Motion config"):
        read_config(str(bad))
    assert read_config(None, mobile_net=True)["model"]["generator"]["generator_cfg"]["mobile_net"] is True
    assert read_config(None)["model"]["generator"]["kp_detector_cfg"]["max_features"] == 1024
    with pytest.raises(CheckpointError, match="do not fit"):  # vox-256 nets, tiny weights
        FirstOrderPredictor(weight_path=assets["weights"], device="cpu", verbose=False)
    with pytest.raises(ConfigError, match="image_size"):
        FirstOrderPredictor(weight_path=assets["weights"], config=TINY, image_size=8, device="cpu", verbose=False)


@pytest.mark.slow
def test_sigkilled_cli_job_resumes_to_the_same_video(assets, tmp_path):
    """The CLI killed (SIGKILL) once its first chunk is finished, then run again: it continues from
    the finished chunks and its output decodes to the same frames as an uninterrupted run's."""
    import signal
    import sys
    import time

    photo = assets["photo"]
    frames = [cv2.resize(warp_about(photo, (110, 60), 10 * np.sin(i / 9.0), 1.0, (3 * np.cos(i / 7.0), 0)),
                         (128, 128), interpolation=cv2.INTER_AREA) for i in range(144)]  # 6 s
    driving = write_video(tmp_path / "long.mp4", frames)
    args = ["--source_image", assets["source"], "--driving_video", driving, "--weight_path", assets["weights"],
            "--config", assets["config"], "--image_size", str(SIZE), "--relative", "--cpu", "--quiet",
            "--chunk_seconds", "1"]
    whole = tmp_path / "whole"
    assert run_cli([TOOL, *args, "--output", str(whole)], timeout=300).returncode == 0
    out = tmp_path / "killed"
    manifest = out / "result.mp4.ppgan-parts" / "manifest.json"
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, TOOL, *args, "--output", str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            try:
                if json.loads(manifest.read_text()).get("done"):
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        assert proc.poll() is None, "the job ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert not (out / "result.mp4").exists()
    done = len(json.loads(manifest.read_text())["done"])
    assert 1 <= done < 6
    r = run_cli([TOOL, *[a for a in args if a != "--quiet"], "--output", str(out)], timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"resuming {out / 'result.mp4'} at chunk {done + 1} of 6" in r.stderr
    np.testing.assert_array_equal(decode(str(whole / "result.mp4")), decode(str(out / "result.mp4")))


def test_paddlegan_pdparams_file_with_generator_and_kp_detector(assets, tmp_path):
    """PaddleGAN's weight layout ({'generator': ..., 'kp_detector': ...} in a .pdparams pickle, with
    Paddle's BatchNorm names) loads into the same nets as our .pth: the same animated frames."""
    from parity import write_pdparams

    def paddle_names(state):
        out = {}
        for k, v in state.items():
            if k.endswith("num_batches_tracked"):
                continue
            k = k.replace("running_mean", "_mean").replace("running_var", "_variance")
            out[k] = v.numpy().copy()
        return out

    ours = torch.load(assets["weights"], weights_only=True)
    pdparams = write_pdparams(tmp_path / "vox-tiny.pdparams", {name: paddle_names(ours[name])
                                                                for name in ("generator", "kp_detector")})
    frames = list(decode(assets["driving"])[:3])
    results = []
    for w in (assets["weights"], pdparams):
        pred = predictor(assets, weight_path=w, relative=True)
        _, faces, _ = pred.prepare(assets["source"], assets["driving"])
        results.append(np.stack(pred.animate(faces, frames)[0]))
    np.testing.assert_array_equal(results[0], results[1])


def test_pasted_face_is_feathered_not_boxed(assets):
    """No seam at the crop's edge: on the box border the frame is the photo's, and the difference
    from the photo grows gradually inwards over the feather band."""
    from ppgan.apps.first_order_predictor import FirstOrderStage

    pred = predictor(assets, image_size=128)
    source, faces, _ = pred.prepare(assets["source"], assets["driving"])
    out = FirstOrderStage(pred, source, faces, "x").push(list(decode(assets["driving"])[:2]))[1].astype(int)
    x1, y1, x2, y2 = faces[0].box
    diff = np.abs(out - source.astype(int)).sum(axis=2)
    f = round(max(x2 - x1, y2 - y1) / 16)  # the feather width
    for band in ([diff[y1 + d:y2 - d, x1 + d].mean() for d in range(2 * f + 1)],   # left edge, inwards
                 [diff[y1 + d, x1 + f:x2 - f].mean() for d in range(2 * f + 1)]):  # top edge, downwards
        assert band[0] == 0 and band[-1] > 20, band
        steps = np.diff(band)
        assert steps[:f + 2].min() > -2 and steps.max() < 0.35 * band[-1], band  # a ramp, not a step


def test_missing_catalogue_entry_names_weight_path(assets, monkeypatch):
    from ppgan.apps.first_order_predictor import FirstOrderPredictor
    from ppgan.utils.errors import CheckpointError
    from ppgan.weights import WEIGHTS

    for name in ("vox-cpk", "vox-cpk-512", "vox-mobile"):
        monkeypatch.delitem(WEIGHTS, name, raising=False)
    for kw, name in (({}, "vox-cpk"), ({"image_size": 512}, "vox-cpk-512"), ({"mobile_net": True}, "vox-mobile")):
        with pytest.raises(CheckpointError, match=f"{name}.pdparams.*--weight_path"):
            FirstOrderPredictor(device="cpu", verbose=False, **kw)

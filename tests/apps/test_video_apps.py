"""Video apps end to end on a video made from a real photo (pan/zoom, 23.976 fps, audio with
clicks, subtitles): size, frame count, exact fps, duration, every audio stream in sync, and the
same result on a second run. Real weights: the packaged Real-ESRGAN animevideov3 x2."""
import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import torch

from ppgan.apps import BasicVSRPredictor, DeOldifyPredictor, EDVRPredictor, RealSRPredictor
from ppgan.weights import WeightSpec
from ppgan.video.synthetic import decode_audio, find_clicks, make_test_video, read_barcode
from ppgan.video import iter_frames, probe_video

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENHANCE_CLI = os.path.join(ROOT, "applications", "tools", "video-enhance.py")
SR_CLI = os.path.join(ROOT, "applications", "tools", "super_resolution.py")
FPS = Fraction(24000, 1001)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """1.25 s at 23.976 fps, 96x64, two audio tracks and a subtitle track (mkv)."""
    path = str(tmp_path_factory.mktemp("v") / "clip ü.mkv")
    info = make_test_video(path, seconds=1.25, fps=FPS, size=(96, 64), audio=2, subtitles=True)
    return path, info


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """0.5 s at 23.976 fps, 48x32, one audio track (mp4): for the slow video nets."""
    path = str(tmp_path_factory.mktemp("v") / "tiny.mp4")
    info = make_test_video(path, seconds=0.5, fps=FPS, size=(48, 32), audio=1)
    return path, info


def frames_of(path):
    return list(iter_frames(path))


def check_same_timing(src, out, scale):
    a, b = probe_video(src), probe_video(out)
    assert (b.width, b.height) == (a.width * scale, a.height * scale)
    assert b.fps == a.fps == FPS
    assert b.n_frames == a.n_frames
    assert abs(b.duration - a.duration) <= 1 / float(FPS)
    kinds = lambda info: sorted(s["type"] for s in info.streams)  # noqa: E731
    assert kinds(b) == kinds(a)  # every audio and subtitle stream is kept
    for k in range(sum(s["type"] == "audio" for s in a.streams)):
        ca, cb = find_clicks(decode_audio(src, k)), find_clicks(decode_audio(out, k))
        assert len(ca) == len(cb) > 0
        assert max(abs(x - y) for x, y in zip(ca, cb)) < 1 / float(FPS)  # in sync within a frame
    return b


@pytest.fixture(scope="module")
def sr2():
    return RealSRPredictor(model="realesr-animevideov3-x2", device="cpu", tile=0, verbose=False)


def test_realsr_video_keeps_timing_audio_and_is_deterministic(tmp_path, clip, sr2):
    src, info = clip
    frames, out1 = sr2.run(src, output_path=str(tmp_path / "a.mkv"), progress=False,
                           video_options={"chunk_seconds": 0.5})
    assert frames is None  # no frames kept on disk unless keep_frames
    check_same_timing(src, out1, 2)
    f1 = frames_of(out1)
    # frame order survives: the barcode of each output frame is its index
    assert [read_barcode(f) for f in f1] == list(range(info["n_frames"]))
    out2 = sr2.run_files(src, output_path=str(tmp_path / "b.mkv"), progress=False, video_options={"chunk_seconds": 0.5})
    f2 = frames_of(out2)
    assert len(f1) == len(f2) and all(np.array_equal(x, y) for x, y in zip(f1, f2))
    # the SR frames resemble the source frames upscaled
    import cv2

    src_frames = frames_of(src)
    up = cv2.resize(src_frames[10], (192, 128), interpolation=cv2.INTER_CUBIC).astype(float)
    assert np.abs(f1[10].astype(float) - up).mean() < 12


def test_default_output_name_for_video(tmp_path, clip, sr2):
    src, _ = clip
    sr2.output = str(tmp_path / "out")
    out = sr2.run_files(src, progress=False)
    assert out == str(tmp_path / "out" / "RealSR" / "clip ü_sr.mkv") and os.path.isfile(out)


def small_spec(arch, kwargs, tmp_path, name):
    """A small random-weight variant of a video net, saved as a .pth: exercises building,
    loading and the streaming stage without the published weights (not available offline)."""
    from ppgan.apps.pretrained import build_arch

    spec = WeightSpec(name=name, arch=arch, kwargs=kwargs, url=None, sha256=None, filename=name + ".pth", fmt="pth")
    torch.manual_seed(0)
    path = str(tmp_path / (name + ".pth"))
    torch.save(build_arch(spec).state_dict(), path)
    return spec, path


@pytest.mark.parametrize("kind", ["edvr", "basicvsr"])
def test_video_sr_predictors_stream_every_frame(tmp_path, tiny_clip, kind):
    src, info = tiny_clip
    if kind == "edvr":
        spec, w = small_spec("EDVRNet", dict(nf=16, nframes=5, groups=2, front_RBs=1, back_RBs=1, w_TSA=True),
                             tmp_path, "edvr-tiny")
        pred = EDVRPredictor(model=spec, weight_path=w, device="cpu", verbose=False)
    else:
        spec, w = small_spec("BasicVSRNet", dict(mid_channels=8, num_blocks=1), tmp_path, "basicvsr-tiny")
        pred = BasicVSRPredictor(model=spec, weight_path=w, num_frames=7, device="cpu", verbose=False)
    out = pred.run_files(src, output_path=str(tmp_path / "o.mp4"), progress=False,
                         video_options={"chunk_seconds": 0.25})
    check_same_timing(src, out, 4)
    assert probe_video(out).n_frames == info["n_frames"] == 12


def test_edvr_window_uses_neighbours_and_repeats_edges():
    """The stage emits frame i from frames i-2..i+2 (edges repeated), one output per input."""
    pred = EDVRPredictor.__new__(EDVRPredictor)
    pred.nframes, seen = 5, []

    def fake_net(clip):
        seen.append(clip[0, :, 0, 0, 0].tolist())
        return clip[:, 2]  # the centre frame

    pred._net = fake_net
    stage = pred.frame_stage()
    frames = [np.full((4, 4, 3), i, np.uint8) for i in range(7)]
    rgb_scale = 1 / 255.0
    out = stage.push(frames[:3]) + stage.push(frames[3:]) + stage.flush()
    assert len(out) == 7 and [int(o[0, 0, 0]) for o in out] == list(range(7))
    seen = [[round(v / rgb_scale) for v in s] for s in seen]
    assert seen[0] == [0, 0, 0, 1, 2] and seen[3] == [1, 2, 3, 4, 5] and seen[6] == [4, 5, 6, 6, 6]


@pytest.mark.slow  # several minutes of the suite on 2 cores; `make test-all` runs it
def test_deoldify_video_temporal_smoothing_reduces_flicker(tmp_path, clip, deoldify_weights):
    w = deoldify_weights
    src, info = clip

    def chroma_flicker(path):
        import cv2

        uv = [cv2.cvtColor(f, cv2.COLOR_RGB2YUV)[..., 1:].astype(float) for f in frames_of(path)]
        return np.mean([np.abs(a - b).mean() for a, b in zip(uv, uv[1:])])

    outs = {}
    for a in (0.0, 0.9):
        pred = DeOldifyPredictor(weight_path=w, artistic=True, render_factor=2, temporal_smoothing=a, device="cpu",
                                 verbose=False)
        outs[a] = pred.run_files(src, output_path=str(tmp_path / f"c{a}.mkv"), progress=False,
                                 video_options={"chunk_seconds": None})
        check_same_timing(src, outs[a], 1)
    assert chroma_flicker(outs[0.9]) < 0.85 * chroma_flicker(outs[0.0])


@pytest.mark.slow  # several minutes of the suite on 2 cores; `make test-all` runs it
def test_video_enhance_cli_chains_models_in_one_pass(tmp_path, clip, deoldify_weights):
    w = deoldify_weights
    src, _ = clip
    r = subprocess.run([sys.executable, ENHANCE_CLI, "--input", src, "--process_order", "DeOldify", "RealSR",
                        "--DeOldify_weight", w, "--artistic", "--render_factor", "2", "--RealSR_model",
                        "realesr-animevideov3-x2", "--output", str(tmp_path / "out"), "--device", "cpu", "--quiet"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out" / "VideoEnhance" / "clip ü_deoldify_realsr.mkv"
    check_same_timing(src, str(out), 2)
    assert not list((tmp_path / "out" / "VideoEnhance").glob("*.ppgan-parts"))  # no leftovers
    r = subprocess.run([sys.executable, ENHANCE_CLI, "--input", src, "--process_order", "DAIN"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().startswith("error:") and "DAIN" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_corrupt_and_fake_videos_give_one_line_and_no_output(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video")
    empty = tmp_path / "empty.mkv"
    empty.write_bytes(b"")
    for bad in (fake, empty):
        r = subprocess.run([sys.executable, SR_CLI, "--input", str(bad), "--model", "realesr-animevideov3-x2",
                            "--output", str(tmp_path / "o"), "--device", "cpu", "--quiet"],
                           capture_output=True, text=True, timeout=120)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), r.stderr
        assert not list((tmp_path / "o").rglob("*.mp4")) and not list((tmp_path / "o").rglob("*.mkv"))


def test_video_sr_predictors_on_images_tiled_with_alpha_and_gray(tmp_path):
    from skimage import data

    spec, w = small_spec("EDVRNet", dict(nf=16, nframes=5, groups=2, front_RBs=1, back_RBs=1, w_TSA=False),
                         tmp_path, "edvr-tiny2")
    img = data.astronaut()[100:164:2, 180:276:2]  # 32x48
    whole = EDVRPredictor(model=spec, weight_path=w, device="cpu", verbose=False, tile=0)
    tiled = EDVRPredictor(model=spec, weight_path=w, device="cpu", verbose=False, tile=16, tile_overlap=16)
    a, b = whole.predict(img), tiled.predict(img)
    assert a.shape == b.shape == (128, 192, 3)
    assert np.abs(a.astype(int) - b).mean() < 2.0  # tiles with context match the whole frame closely
    alpha = np.zeros(img.shape[:2], np.uint8)
    alpha[:, 24:] = 255
    rgba = tiled.predict(np.dstack([img, alpha]))
    assert rgba.shape == (128, 192, 4) and rgba[:, 100:, 3].min() == 255 and rgba[:, :90, 3].max() == 0
    assert tiled.predict(img[..., 0]).shape == (128, 192)
    spec, w = small_spec("BasicVSRNet", dict(mid_channels=8, num_blocks=1), tmp_path, "basicvsr-tiny2")
    bv = BasicVSRPredictor(model=spec, weight_path=w, device="cpu", verbose=False)
    deep = bv.predict(img.astype(np.uint16) * 257)
    assert deep.shape == (128, 192, 3) and deep.dtype == np.uint16


@pytest.mark.slow  # several minutes of the suite on 2 cores; `make test-all` runs it
def test_killed_video_job_starts_over_with_other_weights_or_precision(tmp_path, clip, sr2, caplog):
    """The resume key holds each stage's weight sha256 and precision: a killed job continues with
    the same predictor, and starts over (saying why) with another weight file or precision."""
    from ppgan.video import process_video
    from ppgan.weights import file_sha256

    src, info = clip  # 30 frames; chunks of 6
    out = str(tmp_path / "r.mkv")

    def crash_after(n):
        seen = []

        def stage(frames):
            seen.extend(frames)
            if len(seen) > n:
                raise RuntimeError("simulated crash")
            return frames

        stage.identity = "pass-through"
        return stage

    def passthrough(frames):
        return frames

    passthrough.identity = "pass-through"

    def job(pred, last):
        return process_video(src, out, pred.video_stages() + [last], chunk_seconds=0.25, progress=False)

    with pytest.raises(RuntimeError, match="simulated crash"):
        job(sr2, crash_after(14))  # chunks 0 and 1 finished
    assert job(sr2, passthrough)["resumed_chunks"] == 2  # same predictor: continues

    net = getattr(sr2.net, "net", sr2.net)  # the SRVGGNetCompact inside the RescaledSR wrapper
    state = {k: v.clone() for k, v in net.state_dict().items()}
    last_bias = [k for k in state if k.endswith("bias")][-1]
    state[last_bias] += 0.01
    other_weights = str(tmp_path / "other.pth")
    torch.save(state, other_weights)
    other = RealSRPredictor(model="realesr-animevideov3-x2", weight_path=other_weights, device="cpu", tile=0,
                            verbose=False)
    with pytest.raises(RuntimeError, match="simulated crash"):
        job(sr2, crash_after(14))
    caplog.clear()
    with caplog.at_level("WARNING", logger="ppgan.video"):
        assert job(other, passthrough)["resumed_chunks"] == 0
    old, new = file_sha256(sr2.weight_files[0])[:8], file_sha256(other_weights)[:8]
    assert f"RealSRPredictor: weights changed (sha256 {old}… -> {new}…): starting over" in caplog.text

    bf16 = RealSRPredictor(model="realesr-animevideov3-x2", device="cpu", tile=0, verbose=False, half="bf16")
    with pytest.raises(RuntimeError, match="simulated crash"):
        job(sr2, crash_after(14))
    caplog.clear()
    with caplog.at_level("WARNING", logger="ppgan.video"):
        assert job(bf16, passthrough)["resumed_chunks"] == 0
    assert "RealSRPredictor: precision changed (float32 -> bfloat16): starting over" in caplog.text
    assert probe_video(out).n_frames == info["n_frames"]

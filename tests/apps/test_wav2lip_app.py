"""Wav2Lip app: `Wav2LipPredictor.run(face, audio, outfile)` and `applications/tools/wav2lip.py`.

Inputs are real: a face video made from scikit-image's astronaut (the camera moves and zooms,
23.976 fps) and speech-like audio made with numpy (voiced harmonics on a moving pitch, syllable
envelope, fricative noise). Most tests use a tiny deterministic stand-in generator (the same
interface as Wav2Lip) and the Haar detector so they run in seconds; the CLI test loads real
Wav2Lip weights (deterministic, written as a PaddleGAN .pdparams), never a download.
"""
import os
import sys
import wave
from fractions import Fraction

import cv2
import numpy as np
import pytest
import torch

from ppgan.apps.wav2lip_predictor import (FaceFrames, Wav2LipPredictor, blend_face, color_match, lower_half_mask,
                                          missing_ranges, pingpong_index)
from ppgan.video import VideoWriter, iter_frames, probe_video
from ppgan.video.synthetic import decode_audio

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FPS = Fraction(24000, 1001)
SIZE = (160, 120)


# ---- inputs ------------------------------------------------------------------------------------

def face_frames(n, size=SIZE, offset=0):
    """Frames of a camera moving and zooming over the astronaut's face (it stays in view)."""
    from skimage import data

    img = data.astronaut()
    w, h = size
    out = []
    for i in range(offset, offset + n):
        t = i / 48.0
        cx, cy = 205 + 25 * np.sin(2 * np.pi * t), 140 + 10 * np.cos(2 * np.pi * t)
        s = h / (300 - 60 * (0.5 + 0.5 * np.sin(np.pi * t)))
        m = np.array([[s, 0, w / 2 - s * cx], [0, s, h / 2 - s * cy]])
        out.append(cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT))
    return out


def write_video(path, frames, fps=FPS):
    with VideoWriter(str(path), frames[0].shape[1], frames[0].shape[0], fps) as w:
        for f in frames:
            w.write(f)
    return str(path)


def write_wav(path, samples, sr=22050):
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return str(path)


def speech(seconds, sr=22050, seed=0):
    """Speech-like audio: a voiced source (12 harmonics of a pitch moving 90-170 Hz) under a
    syllable envelope at ~4 Hz, with fricative noise at the syllable edges."""
    rs = np.random.RandomState(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    f0 = 130 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 13))
    env = np.clip(np.sin(2 * np.pi * 4.1 * t + 0.5 * np.sin(2 * np.pi * 1.3 * t)), 0, None) ** 1.5
    return 0.3 * voiced * env + 0.05 * rs.randn(len(t)) * ((env > 0.05) & (env < 0.3))


class Killed(Exception):
    pass


class TinyLipNet(torch.nn.Module):
    """Wav2Lip's interface (audio [B, 1, 80, 16], faces [B, 6, 96, 96] -> [B, 3, 96, 96] in [0, 1]):
    the reference face with its lower half darkened by an amount that follows the audio."""

    def __init__(self, die_at=None):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.1))
        self.calls = []
        self.die_at = die_at  # raise Killed once this many faces were done (a job killed half-way)

    def forward(self, audio, faces):
        if self.die_at is not None and sum(self.calls) >= self.die_at:
            raise Killed()
        self.calls.append(len(faces))
        ref = faces[:, 3:]
        level = torch.sigmoid(audio.mean(dim=(1, 2, 3)))[:, None, None, None]
        out = ref.clone()
        out[:, :, 56:80, 30:66] = ref[:, :, 56:80, 30:66] * (1 - self.scale * 5 * level)
        return out


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("w2l_media")
    return {
        "video": write_video(d / "face.mp4", face_frames(48)),  # 2.0 s at 23.976
        "speech_long": write_wav(d / "long.wav", speech(3.3)),
        "speech_short": write_wav(d / "short.wav", speech(1.0, sr=16000), sr=16000),
        "dir": d,
    }


@pytest.fixture(autouse=True)
def ppgan_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.getbasetemp() / "w2l_home"  # one face-track cache for the module
    monkeypatch.setenv("PPGAN_HOME", str(home))
    return home


def predictor(**kw):
    kw.setdefault("face_detector", "haar")
    kw.setdefault("mask", "box")
    kw.setdefault("chunk_seconds", 1.0)
    return Wav2LipPredictor(net=kw.pop("net", None) or TinyLipNet(), device="cpu", verbose=False, **kw)


def frames_of(path):
    return list(iter_frames(path))


# ---- pieces ------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,expected", [(1, [0, 0, 0, 0]), (2, [0, 1, 0, 1, 0]),
                                        (4, [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2])])
def test_pingpong_index(n, expected):
    assert [pingpong_index(k, n) for k in range(len(expected))] == expected


def test_missing_ranges_text():
    runs, text = missing_ranges([False, True, True, False, True], Fraction(25))
    assert runs == [(1, 2), (4, 4)]
    assert text == "0.04-0.12 s, 0.16-0.20 s"


@pytest.mark.parametrize("block", [3, 8])
def test_face_frames_random_order_matches_decode(tmp_path, block):
    frames = face_frames(12, (64, 48))
    path = write_video(tmp_path / "v.mp4", frames)
    truth = frames_of(path)
    ff = FaceFrames(path, probe_video(path), block=block)
    try:
        for k in range(40):  # the ping-pong order: forwards, backwards, forwards
            idx = pingpong_index(k, len(truth))
            assert np.array_equal(ff.get(idx), truth[idx]), (k, idx)
        assert len(ff.cache) <= 2 * block
    finally:
        ff.close()


@pytest.mark.parametrize("box", [(40, 30, 120, 110), (10, 5, 70, 90)])
def test_blend_has_no_box_edge(box):
    """The gradient step across the old box border: the feathered, colour-matched blend is far
    below a hard paste of the same (darker, tinted) prediction."""
    from skimage import data

    frame = cv2.resize(data.astronaut(), (160, 120), interpolation=cv2.INTER_AREA)
    x1, y1, x2, y2 = box
    orig = frame[y1:y2, x1:x2].astype(np.float32)
    gen = np.clip(orig * [0.7, 0.6, 0.8] - 10, 0, 255).astype(np.float32)  # darker, tinted
    mouth = (x1 + (x2 - x1) // 2, y1 + 3 * (y2 - y1) // 4)
    cv2.ellipse(gen, (mouth[0] - x1, mouth[1] - y1), ((x2 - x1) // 6, (y2 - y1) // 12), 0, 0, 360, (60, 20, 30), -1)
    ours = blend_face(frame, gen, box, lower_half_mask(y2 - y1, x2 - x1)).astype(np.float32)
    hard = frame.copy()
    hard[y1:y2, x1:x2] = np.rint(gen).astype(np.uint8)
    hard = hard.astype(np.float32)

    def border_step(img):
        ref = frame.astype(np.float32)
        steps = []  # |inside - outside| minus the photo's own gradient there, along each side
        if y2 < img.shape[0]:
            steps.append(np.abs((img[y2 - 1, x1:x2] - img[y2, x1:x2]) - (ref[y2 - 1, x1:x2] - ref[y2, x1:x2])).mean())
        if x1 > 0:
            steps.append(np.abs((img[y1:y2, x1] - img[y1:y2, x1 - 1]) - (ref[y1:y2, x1] - ref[y1:y2, x1 - 1])).mean())
        if x2 < img.shape[1]:
            steps.append(np.abs((img[y1:y2, x2 - 1] - img[y1:y2, x2]) - (ref[y1:y2, x2 - 1] - ref[y1:y2, x2])).mean())
        return max(steps)

    assert border_step(hard) > 15
    assert border_step(ours) < 0.1 * border_step(hard)
    assert border_step(ours) < 1.0
    # the drawn mouth is there
    assert np.abs(ours[mouth[1], mouth[0]] - frame[mouth[1], mouth[0]]).max() > 40


@pytest.mark.parametrize("gain,shift", [(0.6, -20), (1.3, 15), (1.0, 40)])
def test_color_match_restores_ring_statistics(gain, shift):
    rs = np.random.RandomState(0)
    orig = (rs.rand(60, 50, 3) * 80 + 100).astype(np.float32)
    gen = orig * gain + shift
    mask = lower_half_mask(60, 50)
    out = color_match(gen, orig, mask)
    ring = mask * (1 - mask)
    w = ring[..., None] / ring.sum()
    assert np.allclose((out * w).sum((0, 1)), (orig * w).sum((0, 1)), atol=0.5)
    assert np.abs(out - orig).mean() < 0.05 * np.abs(gen - orig).mean() + 0.5


def test_lower_half_mask_is_zero_on_the_border():
    for h, w in [(40, 40), (97, 64), (8, 10)]:
        m = lower_half_mask(h, w)
        assert m.shape == (h, w)
        assert m[0].max() == 0 and m[-1].max() == 0 and m[:, 0].max() == 0 and m[:, -1].max() == 0
        assert m[: h // 3].max() == 0  # the eyes are never touched
        assert m.max() > 0.9


# ---- the app ------------------------------------------------------------------------------------

def check_output(out, audio_seconds, fps=FPS, size=SIZE):
    info = probe_video(out)
    assert info.fps == fps
    assert (info.width, info.height) == size
    assert info.has_audio
    assert info.n_frames == round(audio_seconds * fps)
    assert abs(info.n_frames / float(fps) - audio_seconds) <= 1 / float(fps)
    return info


def test_longer_audio_loops_video_pingpong(media, tmp_path):
    pred = predictor()
    out = pred.run(media["video"], media["speech_long"], str(tmp_path / "out.mp4"))
    check_output(out, 3.3)
    got = decode_audio(out, sample_rate=16000)
    assert abs(len(got) / 16000 - 3.3) < 0.06
    assert sorted(os.listdir(tmp_path)) == ["out.mp4"]  # no timeline, parts or temp files left
    src, res = frames_of(media["video"]), frames_of(out)
    top = slice(0, 30)  # the forehead and sky: never blended, so output frame k shows face frame pingpong(k)
    for k in (0, 47, 50, 60, 78):
        idx = pingpong_index(k, len(src))
        err = np.abs(res[k][top].astype(int) - src[idx][top].astype(int)).mean()
        wrong = np.abs(res[k][top].astype(int) - src[(idx + 6) % len(src)][top].astype(int)).mean()
        assert err < 4 and err < wrong, (k, idx, err, wrong)
    assert pred.last_result["missing_frames"] < 10
    assert sum(pred.net.calls) == 79 - pred.last_result["missing_frames"]


def test_shorter_audio_stops_with_audio(media, tmp_path):
    pred = predictor(nosmooth=True)
    out = pred.run(media["video"], media["speech_short"], str(tmp_path / "sub" / "out.mkv"))
    check_output(out, 1.0)


@pytest.mark.parametrize("fps", [25.0, 30000 / 1001])
def test_image_face_uses_fps(media, tmp_path, fps):
    img = face_frames(1, (128, 96))[0]
    path = str(tmp_path / "face.png")
    cv2.imwrite(path, img[..., ::-1])
    out = predictor(fps=fps).run(path, media["speech_short"], str(tmp_path / "out.mp4"))
    rate = Fraction(fps).limit_denominator(1001)
    check_output(out, 1.0, fps=rate, size=(128, 96))


def test_fixed_box_skips_detection(media, tmp_path, monkeypatch):
    import ppgan.faceutils

    def no_detection(*a, **k):
        raise AssertionError("face detection ran")

    monkeypatch.setattr(ppgan.faceutils, "track_faces", no_detection, raising=False)
    pred = predictor(box=(20, 100, 40, 120))
    out = pred.run(media["video"], media["speech_short"], str(tmp_path / "out.mp4"))
    check_output(out, 1.0)
    assert pred.last_result["missing_frames"] == 0


def test_out_of_memory_retries_with_smaller_batch(media, tmp_path, capsys):
    class OOMNet(TinyLipNet):
        def forward(self, audio, faces):
            if len(faces) > 3:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return super().forward(audio, faces)

    net = OOMNet()
    pred = Wav2LipPredictor(net=net, device="cpu", verbose=True, face_detector="haar", mask="box",
                            wav2lip_batch_size=16)
    out = pred.run(media["video"], media["speech_short"], str(tmp_path / "out.mp4"))
    check_output(out, 1.0)
    assert pred.batch == 2 and pred.stats["oom_retries"] == 3  # 16 -> 8 -> 4 -> 2, once each
    assert max(net.calls) <= 3
    assert "out of memory: retrying with wav2lip batch size 2" in capsys.readouterr().err


def test_killed_job_resumes_and_equals_uninterrupted_run(media, tmp_path):
    whole = predictor(chunk_seconds=0.5).run(media["video"], media["speech_long"], str(tmp_path / "a.mp4"))

    out = str(tmp_path / "b.mp4")
    with pytest.raises(Killed):
        predictor(chunk_seconds=0.5, net=TinyLipNet(die_at=40)).run(media["video"], media["speech_long"], out)
    assert not os.path.exists(out) and os.path.isdir(out + ".ppgan-parts")
    again = predictor(chunk_seconds=0.5)
    again.run(media["video"], media["speech_long"], out)
    assert again.last_result["resumed_chunks"] >= 2
    assert sum(again.net.calls) < 79 - 20
    a, b = frames_of(whole), frames_of(out)
    assert len(a) == len(b) == 79
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert sorted(os.listdir(tmp_path)) == ["a.mp4", "b.mp4"]


def test_frames_without_face_pass_through(tmp_path, media, capsys):
    """Frames 12..27 show no face: they come out as they went in (logged with their times)."""
    frames = face_frames(40)
    blank = np.full_like(frames[0], 90)
    for i in range(12, 28):
        frames[i] = blank
    video = write_video(tmp_path / "gap.mp4", frames)
    pred = Wav2LipPredictor(net=TinyLipNet(), device="cpu", verbose=True, face_detector="haar", mask="box")
    out = pred.run(video, media["speech_short"], str(tmp_path / "out.mp4"))
    check_output(out, 1.0)
    res = frames_of(out)
    assert all(np.abs(res[i].astype(int) - 90).max() <= 3 for i in range(13, 23))
    err = capsys.readouterr().err
    assert "passed through unchanged" in err and "0.50-" in err


# ---- bad input -----------------------------------------------------------------------------------

def bad_inputs(d, video):
    silent = write_wav(d / "silent.wav", np.zeros(22050))
    empty = write_wav(d / "empty.wav", np.zeros(0))
    blip = write_wav(d / "blip.wav", speech(0.02, sr=16000), sr=16000)
    noface = write_video(d / "noface.mp4", [np.full((120, 160, 3), 40 + i, np.uint8) for i in range(24)])
    junk = d / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 50)
    text = d / "notes.txt"
    text.write_text("hello")
    img = d / "face.png"
    cv2.imwrite(str(img), face_frames(1)[0])
    speech_wav = write_wav(d / "ok.wav", speech(1.0))
    return [
        (video, silent, "silent"),
        (video, empty, "audio"),
        (video, blip, "shorter than one frame"),
        (noface, speech_wav, "no face"),
        (str(junk), speech_wav, "junk.mp4"),
        (str(text), speech_wav, "notes.txt"),
        (video, str(img), "face.png"),  # an image given as the audio
        (video, str(d / "missing.wav"), "missing.wav"),
        (str(d / "missing.mp4"), speech_wav, "missing.mp4"),
        (speech_wav, speech_wav, "ok.wav"),  # audio only, given as the face
        (video, speech_wav, "extension", "out"),  # an output name without a container
    ]


@pytest.fixture(scope="module")
def bad_cases(media):
    d = media["dir"] / "bad"
    d.mkdir()
    return bad_inputs(d, media["video"])


@pytest.mark.parametrize("case", range(11))
def test_bad_input_one_line_no_output(bad_cases, tmp_path, case, capsys, monkeypatch):
    sys.path.insert(0, os.path.join(ROOT, "applications", "tools"))
    import importlib

    from ppgan.apps import wav2lip_predictor as module

    face, audio, word, *name = bad_cases[case]
    tool = importlib.import_module("wav2lip")
    out = tmp_path / "res" / (name[0] if name else "out.mp4")
    orig = module.Wav2LipPredictor.__init__

    def tiny(self, *a, **kw):  # the tool as is, with the tiny net instead of loading weights
        kw["net"] = TinyLipNet()
        orig(self, *a, **kw)

    monkeypatch.setattr(module.Wav2LipPredictor, "__init__", tiny)
    rc = tool.main(["--face", face, "--audio", audio, "--outfile", str(out), "--face_detector", "haar",
                    "--device", "cpu", "--quiet", "--mask", "box"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0
    assert len(err) == 1 and err[0].startswith("error:") and "Traceback" not in err[0], err
    assert word in err[0]
    assert not os.path.exists(tmp_path / "res")  # no output, no parts, no timeline, no folder


# ---- the CLI with real Wav2Lip weights ----------------------------------------------------------

@pytest.fixture(scope="module")
def wav2lip_pdparams(tmp_path_factory):
    from parity import paddle_state_of, write_pdparams

    from ppgan.models.generators.wav2lip import Wav2Lip

    return write_pdparams(tmp_path_factory.mktemp("w2l_weights") / "wav2lip_hq.pdparams", paddle_state_of(Wav2Lip))


@pytest.mark.slow
def test_cli_end_to_end_with_wav2lip_weights(media, wav2lip_pdparams, tmp_path, ppgan_home):
    from conftest import run_cli

    out = tmp_path / "talk.mp4"
    r = run_cli([os.path.join(ROOT, "applications", "tools", "wav2lip.py"), "--face", media["video"],
                 "--audio", media["speech_short"], "--outfile", str(out), "--checkpoint_path", wav2lip_pdparams,
                 "--face_detector", "haar", "--wav2lip_batch_size", "16", "--device", "cpu", "--quiet"],
                env={"PPGAN_HOME": str(ppgan_home)}, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"output: {out}"
    check_output(str(out), 1.0)


def test_cli_help_and_switches():
    from conftest import run_cli

    r = run_cli([os.path.join(ROOT, "applications", "tools", "wav2lip.py"), "--help"], timeout=60)
    assert r.returncode == 0
    for flag in ("--checkpoint_path", "--face", "--audio", "--outfile", "--static", "--fps", "--pads",
                 "--face_det_batch_size", "--wav2lip_batch_size", "--resize_factor", "--crop", "--box",
                 "--rotate", "--nosmooth", "--face_detector", "--face_index"):
        assert flag in r.stdout
    r = run_cli([os.path.join(ROOT, "applications", "tools", "wav2lip.py"), "--face", "a.mp4", "--audio", "b.wav",
                 "--static", "False"], timeout=60)
    assert r.returncode == 2 and "unrecognized arguments: False" in r.stderr  # a real switch, not type=bool


# ---- options -------------------------------------------------------------------------------------

@pytest.mark.parametrize("opts,size", [
    ({"resize_factor": 2}, (80, 60)),
    ({"rotate": True, "box": (40, 140, 10, 110)}, (120, 160)),
    ({"crop": (10, 110, 20, 140), "box": (5, 90, 20, 100)}, (120, 100)),
    ({"static": True}, (160, 120)),
])
def test_frame_options(media, tmp_path, opts, size):
    pred = predictor(**opts)
    out = pred.run(media["video"], media["speech_short"], str(tmp_path / "out.mp4"))
    check_output(out, 1.0, size=size)
    assert pred.last_result["missing_frames"] <= 3
    if opts.get("static"):  # every frame shows the first one (outside the mouth)
        res = frames_of(out)
        assert np.abs(res[0][:30].astype(int) - res[-1][:30].astype(int)).mean() < 2


def test_face_tracks_reused_for_a_second_audio(tmp_path, monkeypatch, media):
    monkeypatch.setenv("PPGAN_HOME", str(tmp_path / "home"))
    video = write_video(tmp_path / "v.mp4", face_frames(24))
    predictor().run(video, media["speech_short"], str(tmp_path / "a.mp4"))
    from ppgan.faceutils.detection import HaarDetector

    def no_detect(self, images):
        raise AssertionError("detected again")

    monkeypatch.setattr(HaarDetector, "detect", no_detect)
    other = write_wav(tmp_path / "other.wav", speech(0.8, seed=3))
    pred = predictor()
    out = pred.run(video, other, str(tmp_path / "b.mp4"))
    check_output(out, 0.8)
    assert pred.last_result["missing_frames"] == 0


def test_face_index_picks_the_speaker(tmp_path, media):
    """Two faces side by side: --face_index 0 and 1 change different halves of the frame."""
    left, right = face_frames(24), face_frames(24, offset=10)
    video = write_video(tmp_path / "two.mp4", [np.concatenate([a, b[:, ::-1]], axis=1) for a, b in zip(left, right)])
    src = frames_of(video)
    changed = []
    for index in (0, 1):
        pred = predictor(face_index=index, color_match=False)
        res = frames_of(pred.run(video, media["speech_short"], str(tmp_path / f"out{index}.mp4")))
        diff = np.mean([np.abs(r.astype(int) - s.astype(int)).mean(axis=(0, 2)) for r, s in zip(res, src)], axis=0)
        changed.append(diff[:160].mean() > diff[160:].mean())
    assert changed[0] != changed[1]


def test_unknown_face_index_is_an_error(media, tmp_path):
    from ppgan.utils.errors import PPGANError

    with pytest.raises(PPGANError, match="face_index 7"):
        predictor(face_index=7).run(media["video"], media["speech_short"], str(tmp_path / "o.mp4"))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("kw,word", [({"pads": (0, 1, 2)}, "pads"), ({"mask": "oval"}, "mask"),
                                     ({"resize_factor": 0}, "resize_factor"), ({"box": (50, 10, 0, 40)}, "box"),
                                     ({"fps": 0}, "fps"), ({"face_enhancement": True}, "face_enhancement")])
def test_bad_arguments(kw, word):
    from ppgan.utils.errors import ConfigError

    with pytest.raises(ConfigError, match=word):
        predictor(**kw)


def test_bf16_on_cpu_matches_fp32():
    """--precision bf16 (autocast, channels-last: several times faster on CPUs with AMX) stays close
    to fp32 on the real architecture."""
    from ppgan.models.generators.wav2lip import Wav2Lip

    torch.manual_seed(0)
    net = Wav2Lip().eval()
    faces = np.stack([cv2.resize(f[10:110, 30:130], (96, 96)) for f in face_frames(4)])
    mels = np.random.RandomState(0).uniform(-4, 4, (4, 80, 16)).astype(np.float32)
    ref = Wav2LipPredictor(net=net, device="cpu", verbose=False).predict_faces(mels, faces)
    half = Wav2LipPredictor(net=net, device="cpu", verbose=False, half="bf16")
    got = half.predict_faces(mels, faces)
    assert half.precision == "bf16" and half._channels_last
    assert got.shape == ref.shape == (4, 96, 96, 3)
    assert np.abs(got - ref).mean() < 1.5 and np.abs(got - ref).max() < 20  # seen: 0.70, 8.3 (of 255)


@pytest.mark.parametrize("every,max_side", [(3, None), (2, 200), (1, 160)])
def test_fast_detection_close_to_full(tmp_path, monkeypatch, every, max_side):
    """Detection on every n-th frame and/or on shrunk frames: the tracked boxes stay close to
    the full detection's, every frame (the last included) has a box, and the detector sees
    fewer (or smaller) frames."""
    from ppgan.apps.wav2lip_predictor import FastDetector
    from ppgan.faceutils import FaceDetector, track_faces
    from ppgan.faceutils.boxes import box_iou

    monkeypatch.setenv("PPGAN_HOME", str(tmp_path / "home"))
    video = write_video(tmp_path / "v.mp4", face_frames(25, (320, 240)))
    base = FaceDetector("haar")
    full = track_faces(video, base, smooth=1)
    seen = []
    real = base.detect
    monkeypatch.setattr(base, "detect", lambda imgs: seen.extend(i.shape for i in imgs) or real(imgs))
    fast = track_faces(video, FastDetector(base, every, max_side, 25), smooth=1)
    assert not fast.from_cache and fast.cache_path != full.cache_path or every == 1 and max_side is None
    assert len(seen) == len(range(0, 25, every)) + (24 % every != 0)
    if max_side:
        assert all(max(s[:2]) <= max_side for s in seen)
    a, b = full.boxes(full.main_track_id()), fast.boxes(fast.main_track_id())
    assert not np.isnan(b).any()
    ious = [box_iou(x[None], y[None])[0, 0] for x, y in zip(a, b)]
    assert np.median(ious) > 0.7, ious


def test_detect_every_end_to_end(media, tmp_path):
    pred = predictor(detect_every=4, detect_size=120)
    out = pred.run(media["video"], media["speech_short"], str(tmp_path / "o.mp4"))
    check_output(out, 1.0)
    assert pred.last_result["missing_frames"] == 0


@pytest.mark.slow
def test_mesh_mask_blends_the_lower_face(media, tmp_path):
    """mask='mesh': the blend region is the face mesh's lower face (0 on the box border too)."""
    img = face_frames(1, (320, 240))[0]
    path = str(tmp_path / "face.png")
    cv2.imwrite(path, img[..., ::-1])
    audio = write_wav(tmp_path / "a.wav", speech(0.25, sr=16000), sr=16000)
    pred = predictor(mask="mesh")
    out = pred.run(path, audio, str(tmp_path / "out.mp4"))
    check_output(out, 0.25, fps=Fraction(25), size=(320, 240))
    assert pred._mesh is not None
    box = pred._boxes(path, None, img)[0]
    m = pred.face_mask(img, box)
    assert m.max() > 0.9 and m[0].max() == 0 and m[-1].max() == 0 and m[:, 0].max() == 0 and m[:, -1].max() == 0
    assert m[: m.shape[0] // 3].max() < 0.05  # the eyes are not touched


@pytest.mark.parametrize("n,block", [(16000 * 7 + 123, 1000), (16000 * 7 + 123, 16000), (5000, 3333), (401, 100)])
def test_streamed_mel_equals_whole_file_mel(n, block):
    """The app computes the mel block by block (memory flat in the audio's length): the columns are
    exactly PaddleGAN's `melspectrogram` of the whole waveform."""
    from ppgan.apps.wav2lip_predictor import stream_mel
    from ppgan.utils.audio import melspectrogram

    x = (np.random.RandomState(n).randn(n) * 0.1).astype(np.float32)
    mel, count, peak = stream_mel(x[i:i + block] for i in range(0, n, block))
    assert count == n and peak == np.abs(x).max()
    assert np.array_equal(mel, melspectrogram(x).astype(np.float32))

"""Recurrent video SR (BasicVSR, IconVSR, BasicVSR++, PP-MSVSR) in overlapping windows: the
schedule (every frame once, context on both sides, at most num_frames frames seen at once),
memory flat in the clip's length, window seams against whole-clip inference, the predictors'
checks, and BasicVSR++ through video-enhance.py on the synthetic test video (frame count, fps,
duration, audio and subtitles kept). The published weights cannot be downloaded here:
deterministic tiny weights (tests/parity.py rule, written as a PaddleGAN .pdparams and read by our
converter) stand in for them."""
import importlib.util
import os
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
import torch

from parity import rule_tensor, write_pdparams
from ppgan.apps import edvr_predictor as ep
from ppgan.utils.errors import ConfigError
from ppgan.video import probe_video
from ppgan.video.synthetic import decode_audio, find_clicks, make_test_video
from ppgan.weights import WeightSpec, catalog

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENHANCE_CLI = os.path.join(ROOT, "applications", "tools", "video-enhance.py")
FPS = Fraction(24000, 1001)

TINY = {  # arch -> (predictor, small constructor kwargs)
    "BasicVSRNet": (ep.BasicVSRPredictor, dict(mid_channels=8, num_blocks=1)),
    "BasicVSRPlusPlus": (ep.BasicVSRPlusPlusPredictor, dict(mid_channels=8, num_blocks=1)),
    "IconVSR": (ep.IconVSRPredictor, dict(mid_channels=8, num_blocks=1)),
    "MSVSR": (ep.PPMSVSRPredictor, dict(mid_channels=8, num_init_blocks=1, num_blocks=1, num_reconstruction_blocks=1,
                                       deform_groups=2, stage1_groups=2)),
}


def tiny_weights(tmp_path, arch, gain=1.0, name=None):
    """(spec, .pdparams path) of a small `arch`: parameters by the parity rule (matrices times
    `gain`), buffers as built, nested under 'generator' as PaddleGAN's training exports."""
    from ppgan.apps.pretrained import build_arch

    name = name or f"{arch.lower()}-tiny"
    spec = WeightSpec(name=name, arch=arch, kwargs=TINY[arch][1], url=None, sha256=None, filename=name + ".pdparams",
                      fmt="pdparams", key="generator")
    net = build_arch(spec)
    params = dict(net.named_parameters())
    state = {k: rule_tensor(k, v.shape) * (gain if v.ndim >= 2 else 1.0) if k in params else v.numpy()
             for k, v in net.state_dict().items()}
    return spec, write_pdparams(tmp_path / (name + ".pdparams"), {"generator": state})


class ZeroFlow(torch.nn.Module):
    """SPyNet stand-in (zero motion) for the seam tests: the recurrence is what they measure."""

    def forward(self, ref, supp):
        return ref.new_zeros(ref.shape[0], 2, *ref.shape[-2:])


def pan_frames(n, size=64):
    """`n` float32 RGB frames panning across a photo."""
    from skimage import data

    img = data.astronaut()
    return [img[100 + 3 * i: 100 + 3 * i + 2 * size: 2, 150 + 2 * i: 150 + 2 * i + 2 * size: 2].astype(np.float32)
            / 255 for i in range(n)]


class FakePredictor:
    """Records the windows a stage runs; each frame's output is the frame, with channel 1 set to
    the number of the window that computed it."""

    def __init__(self, num_frames, overlap, window_stride=1):
        self.num_frames, self.overlap, self.window_stride, self.windows = num_frames, overlap, window_stride, []

    def run_window(self, rgbs):
        self.windows.append([int(round(r[0, 0, 0] * 255)) for r in rgbs])
        out = [r.copy() for r in rgbs]
        for r in out:
            r[..., 1] = (len(self.windows) - 1) / 255
        return out


def stream(stage, frames, batch):
    out = []
    for k in range(0, len(frames), batch):
        out += stage.push(frames[k:k + batch])
    return out + stage.flush()


@pytest.mark.parametrize("w,o,stride", [(10, 2, 1), (10, 2, 5), (5, 1, 1), (5, 0, 1), (3, 1, 1), (1, 0, 1),
                                        (12, 3, 5), (7, 0, 5)])
def test_window_schedule(w, o, stride):
    """Every frame comes out once, in order, whatever the batches; a window sees at most w frames
    and each output frame has `o` frames of context on both sides (less only at the chunk's ends);
    IconVSR windows start on its keyframe stride; a chunk of <= w frames is one window."""
    for n in list(range(1, 30)) + [61]:
        frames = [np.full((2, 2, 3), i, np.uint8) for i in range(n)]
        results = []
        for batch in (1, 4, 9):
            fake = FakePredictor(w, o, stride)
            stage = ep.RecurrentWindowStage(fake)
            out = stream(stage, frames, batch)
            assert [int(f[0, 0, 0]) for f in out] == list(range(n))
            assert stage.max_held <= w + 1 and all(len(win) <= w for win in fake.windows)
            assert all(win[0] % stride == 0 for win in fake.windows[:-1])
            for i, f in enumerate(out):
                win = fake.windows[int(f[0, 0, 1])]
                assert i - win[0] >= min(o, i) or win[0] == max(n - w, 0), (n, win, i)  # context before
                assert win[-1] - i >= min(o, n - 1 - i), (n, win, i)  # and after
            if n <= w:
                assert fake.windows == [list(range(n))]
            results.append(fake.windows)
        assert results[0] == results[1] == results[2]  # batching changes nothing
    stage.push([np.full((2, 2, 3), 200, np.uint8)] * 2)
    stage.reset(0)  # a new chunk starts from nothing: the 200s are never seen
    k = len(fake.windows)
    assert [int(f[0, 0, 0]) for f in stream(stage, frames[:3], 2)] == [0, 1, 2]
    assert {v for win in fake.windows[k:] for v in win} == {0, 1, 2}


def test_memory_flat_in_clip_length():
    """Streaming 10x more frames does not raise the peak memory: frames are let go once no window
    needs them (the net never sees more than num_frames)."""

    def peak(n):
        fake = FakePredictor(10, 2)
        stage = ep.RecurrentWindowStage(fake)
        tracemalloc.start()
        count = 0
        for k in range(0, n, 4):
            count += len(stage.push([np.full((64, 64, 3), i % 255, np.uint8) for i in range(k, min(k + 4, n))]))
        count += len(stage.flush())
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert count == n and max(len(win) for win in fake.windows) == 10
        return top

    short, long = peak(40), peak(400)
    frame = 64 * 64 * 3 * 4  # one float32 frame
    assert long < short + 4 * frame, (short, long)
    assert long < 14 * frame * 2  # about (num_frames + 1) frames in and a window's outputs


def whole_and_windowed(pred, frames, w, o):
    """(whole-clip outputs, windowed outputs) as float32 arrays in [0, 1]."""
    whole = [np.clip(x, 0, 1) for x in pred.run_window(frames)]
    pred.num_frames, pred.overlap = w, o
    stage = pred.frame_stage()
    return whole, stream(stage, frames, 3)


# Seams: 9 frames in windows of 5 (IconVSR: 12 in windows of 9, its keyframe span). Weights: the
# parity rule with matrices x 0.75, so features carried through the recurrence fade with distance
# (as a trained net's do; at gain 1 the rule's random recurrence does not fade, and no window short
# of the whole clip matches it). Tolerance: max |windowed - whole clip| over every pixel of every
# frame, in 8-bit levels, at overlap 1 (IconVSR 2); overlap 0 (PaddleGAN's back-to-back clips) is
# worse. Measured (2 CPU cores, torch 2): MSVSR 4.6 (overlap 0: 11.8), BasicVSR 3.6 (5.2),
# BasicVSR++ 5.5 (6.9), IconVSR 1.3 (19.4: windows off its keyframes are far worse).
SEAM = {"MSVSR": (5, 1, 9, 6.0), "BasicVSRNet": (5, 1, 9, 5.0), "BasicVSRPlusPlus": (5, 1, 9, 6.5),
        "IconVSR": (9, 2, 12, 2.0)}  # num_frames, overlap, frames, tolerance


@pytest.mark.parametrize("arch", [pytest.param(a, marks=() if a == "MSVSR" else pytest.mark.slow) for a in TINY])
# (MSVSR: ~5 s on 2 idle cores; the others' fixed 64-channel x4 head makes each frame ~1 s)
def test_window_seams_match_whole_clip(tmp_path, arch):
    w, o, n, tol = SEAM[arch]
    spec, path = tiny_weights(tmp_path, arch, gain=0.75)
    pred = TINY[arch][0](model=spec, weight_path=path, device="cpu", verbose=False, tile=0, num_frames=w, overlap=o)
    pred.net.spynet = ZeroFlow()
    frames = pan_frames(n)
    whole, windowed = whole_and_windowed(pred, frames, w, o)
    err = max(float(np.abs(a - b).max()) for a, b in zip(whole, windowed)) * 255
    assert err <= tol, err
    _, cut = whole_and_windowed(pred, frames, w, 0)  # back-to-back clips (PaddleGAN)
    err0 = max(float(np.abs(a - b).max()) for a, b in zip(whole, cut)) * 255
    assert err < err0, (err, err0)
    # a clip that fits one window is exactly the whole-clip result
    short, one = whole_and_windowed(pred, frames[:w], w, o)
    assert all(np.array_equal(a, b) for a, b in zip(short, one))


@pytest.mark.parametrize("kwargs,words", [
    (dict(num_frames=0), "num_frames must be >= 1"),
    (dict(num_frames=-3), "num_frames must be >= 1"),
    (dict(num_frames=2.5), "num_frames must be an integer"),
    (dict(num_frames=True), "num_frames must be an integer"),
    (dict(num_frames="10"), "num_frames must be an integer"),
    (dict(overlap=-1), "overlap must be >= 0"),
    (dict(num_frames=10, overlap=5), "less than half of num_frames (10)"),
    (dict(num_frames=6, overlap=3), "less than half of num_frames (6)"),
    (dict(overlap=None), "overlap must be an integer"),
])
@pytest.mark.parametrize("cls", [ep.BasicVSRPredictor, ep.PPMSVSRPredictor, ep.BasicVSRPlusPlusPredictor])
def test_bad_windows_are_config_errors(cls, kwargs, words):
    """Checked before any weights are looked for (none are here)."""
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        cls(device="cpu", verbose=False, **kwargs)


@pytest.mark.parametrize("num_frames,overlap", [(4, 0), (3, 1), (8, 0), (8, 2), (10, 3)])
def test_iconvsr_window_needs_its_keyframe_span(num_frames, overlap):
    need = max(9, 2 * overlap + 5)
    with pytest.raises(ConfigError, match=f"iconvsr-reds \\(IconVSR\\) needs num_frames >= {need}"):
        ep.IconVSRPredictor(num_frames=num_frames, overlap=overlap, device="cpu", verbose=False)


def test_paddlegan_names_and_catalogue():
    assert ep.BasiVSRPlusPlusPredictor is ep.BasicVSRPlusPlusPredictor
    expect = {"basicvsr++-reds": ("BasicVSRPlusPlus", "BasicVSR%2B%2B_reds_x4.pdparams"),
              "iconvsr-reds": ("IconVSR", "IconVSR_reds_x4.pdparams"),
              "pp-msvsr-reds": ("MSVSR", "PP-MSVSR_reds_x4.pdparams"),
              "pp-msvsr-l-reds": ("MSVSR", "PP-MSVSR-L_reds_x4.pdparams"),
              "pp-msvsr-vimeo90k": ("MSVSR", "PP-MSVSR_vimeo90k_x4.pdparams")}
    for name, (arch, file) in expect.items():
        spec = catalog.get_spec(name)
        assert spec.arch == arch and spec.url == "https://paddlegan.bj.bcebos.com/models/" + file
        assert spec.key == "generator" and spec.fmt == "pdparams"
    assert catalog.get_spec("basicvsr++-reds").filename == "BasicVSR++_reds_x4.pdparams"
    large = catalog.get_spec("pp-msvsr-l-reds").kwargs  # PaddleGAN's PPMSVSRLargePredictor
    assert (large["mid_channels"], large["num_init_blocks"], large["num_blocks"], large["num_reconstruction_blocks"],
            large["only_last"], large["use_tiny_spynet"], large["deform_groups"],
            large["aux_reconstruction_blocks"]) == (64, 5, 7, 5, False, False, 8, 2)
    for p, name in ((ep.BasicVSRPredictor, "basicvsr-reds"), (ep.IconVSRPredictor, "iconvsr-reds"),
                    (ep.BasicVSRPlusPlusPredictor, "basicvsr++-reds"), (ep.PPMSVSRPredictor, "pp-msvsr-reds"),
                    (ep.PPMSVSRLargePredictor, "pp-msvsr-l-reds")):
        assert p.default_model == name


@pytest.mark.parametrize("name,manifest", [("basicvsr++-reds", "basicvsrpp"), ("iconvsr-reds", "iconvsr"),
                                           ("pp-msvsr-reds", "msvsr"), ("pp-msvsr-l-reds", "msvsr_l"),
                                           ("pp-msvsr-vimeo90k", "msvsr")])
def test_catalogue_kwargs_load_paddlegan_state_strictly(tmp_path, name, manifest):
    """A .pdparams with the names and shapes PaddleGAN's own net has (manifests recorded from
    PaddleGAN's code by tests/fixtures/restoration/make_vsr_fixtures.py), nested under 'generator',
    fills the catalogue entry's net through our converter with a strict load."""
    import json

    from ppgan.apps.pretrained import build_pretrained

    with open(os.path.join(ROOT, "tests", "fixtures", "restoration", manifest + "_manifest.json")) as f:
        m = json.load(f)
    spec = catalog.get_spec(name)
    assert {k: spec.kwargs[k] for k in m["kwargs"]} == m["kwargs"]
    state = {k: rule_tensor(k, shape) for k, shape in m["state_dict"]}
    path = write_pdparams(tmp_path / spec.filename, {"generator": state})
    net, weights = build_pretrained(spec, weight_path=path)
    got = net.state_dict()
    assert len(got) == len(state)
    for k in ("spynet.mean", m["state_dict"][-1][0]):
        np.testing.assert_array_equal(got[k].numpy(), state[k])


def test_msvsr_predictor_images_and_resume_identity(tmp_path):
    """PP-MSVSR returns (auxiliary, output): the output is used. A single image is a one-frame
    clip; the window settings are part of the video resume key."""
    spec, path = tiny_weights(tmp_path, "MSVSR")
    pred = ep.PPMSVSRPredictor(model=spec, weight_path=path, device="cpu", verbose=False, tile=0)
    img = (pan_frames(1)[0][:40, :56] * 255).astype(np.uint8)
    out = pred.predict(img)
    assert out.shape == (160, 224, 3) and out.dtype == np.uint8
    x = torch.from_numpy(pan_frames(1)[0]).permute(2, 0, 1)[None, None]
    with torch.no_grad():
        direct = pred.net(x)[1][0, 0].clamp(0, 1).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(pred.run_window(pan_frames(1))[0], direct, atol=1e-6)
    ident = pred.frame_stage().identity()
    assert ident["num_frames"] == 10 and ident["overlap"] == 2 and ident["stage"] == "PPMSVSRPredictor"


# ---------------------------------------------------------------- video-enhance.py
def enhance_main():
    spec = importlib.util.spec_from_file_location("video_enhance", ENHANCE_CLI)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def one_error_line(capsys, rc):
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error:") and "Traceback" not in err[0], err
    return err[0]


def make_clip(tmp_path, seconds, subtitles):
    path = str(tmp_path / "clip ü.mp4")
    return path, make_test_video(path, seconds=seconds, fps=FPS, size=(64, 48), audio=1, subtitles=subtitles,
                                 click_every=4)


def test_video_enhance_basicvsrpp_keeps_timing_and_audio(tmp_path, monkeypatch, capsys):
    """BasiVSRPlusPlus (PaddleGAN's --process_order name) on the synthetic test video, in windows
    of 6 frames with 1 of overlap: every frame, x4 size, the exact fps, duration, audio in sync and
    the subtitle track kept."""
    src, info = make_clip(tmp_path, 0.55, subtitles=True)
    spec, path = tiny_weights(tmp_path, "BasicVSRPlusPlus", name="basicvsr++-reds")
    monkeypatch.setitem(catalog.WEIGHTS, "basicvsr++-reds", spec)
    out = tmp_path / "o.mp4"
    rc = enhance_main()(["--input", src, "--process_order", "BasiVSRPlusPlus", "--BasiVSRPlusPlus_weight", path,
                         "--num_frames", "6", "--overlap", "1", "--output_path", str(out), "--device", "cpu",
                         "--quiet"])
    assert rc == 0, capsys.readouterr().err
    a, b = probe_video(src), probe_video(str(out))
    assert (b.width, b.height) == (4 * a.width, 4 * a.height)
    assert b.fps == a.fps == FPS and b.n_frames == a.n_frames == info["n_frames"] == 13
    assert abs(b.duration - a.duration) <= 1 / float(FPS)
    assert sorted(s["type"] for s in b.streams) == sorted(s["type"] for s in a.streams)
    ca, cb = find_clicks(decode_audio(src, 0)), find_clicks(decode_audio(str(out), 0))
    assert len(ca) == len(cb) > 0 and max(abs(x - y) for x, y in zip(ca, cb)) < 1 / float(FPS)


def test_video_enhance_bad_input_is_one_line(tmp_path, monkeypatch, capsys):
    src, _ = make_clip(tmp_path, 0.2, subtitles=False)
    main = enhance_main()
    base = ["--output", str(tmp_path / "o"), "--device", "cpu", "--quiet"]
    bad = [
        (["--input", src, "--process_order", "PPMSVSR", "--num_frames", "0"], "num_frames must be >= 1"),
        (["--input", src, "--process_order", "IconVSR", "--overlap", "5"], "less than half"),
        (["--input", src, "--process_order", "BasicVSR++", "--overlap", "-1"], "overlap must be >= 0"),
        (["--input", src, "--process_order", "IconVSR", "--num_frames", "6"], "needs num_frames >= 9"),
        (["--input", src, "--process_order", "BasicVSR+++"], "unknown --process_order"),
        (["--input", src, "--process_order", "DAIN"], "DAIN is not available"),
        (["--input", str(tmp_path / "missing.mp4"), "--process_order", "PPMSVSRLarge"], "missing.mp4"),
    ]
    for argv, words in bad:
        line = one_error_line(capsys, main(argv + base))
        assert words in line, line
    # a file that is not a video, through a (tiny) recurrent net
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video")
    spec, path = tiny_weights(tmp_path, "MSVSR", name="pp-msvsr-reds")
    monkeypatch.setitem(catalog.WEIGHTS, "pp-msvsr-reds", spec)
    line = one_error_line(capsys, main(["--input", str(fake), "--process_order", "PPMSVSR", "--PPMSVSR_weight", path]
                                       + base))
    assert "fake.mp4" in line
    assert not list((tmp_path / "o").rglob("*.mp4")) and not list((tmp_path / "o").rglob("*.mkv"))

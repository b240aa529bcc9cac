"""Streaming video pipeline: exact probing, frame/audio/subtitle preservation, VFR, resumable chunks,
bounded memory, errors. Test videos are small (96x64) pans over scikit-image photos with a frame
barcode and audio clicks (ppgan/utils/testvideo.py)."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from fractions import Fraction

import cv2
import numpy as np
import pytest

from ppgan.utils.errors import PPGANError
from ppgan.utils.testvideo import (decode_audio, find_clicks, make_test_video, read_barcode, render_frame,
                                   _source_image)
from ppgan.utils.video import (FrameStage, VideoError, VideoWriter, ffmpeg_exe, is_video_file, iter_frames,
                               probe_streams, probe_video, process_video, stream_timing)

NTSC24 = Fraction(24000, 1001)
NTSC30 = Fraction(30000, 1001)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def vids(tmp_path_factory):
    """Test videos shared by the tests of this module (made once, never modified)."""
    d = tmp_path_factory.mktemp("videos")
    out = {}
    out["mp4"] = make_test_video(str(d / "ntsc24.mp4"), seconds=2.0, fps=NTSC24)
    out["mkv"] = make_test_video(str(d / "multi.mkv"), seconds=2.0, fps=NTSC30, audio=2, subtitles=True)
    out["pcm"] = make_test_video(str(d / "pcm.mkv"), seconds=1.0, fps=25, audio_codec="pcm_s16le", subtitles=True)
    out["vfr"] = make_test_video(str(d / "vfr.mkv"), seconds=3.0, fps=30, vfr=True)
    out["bt709"] = make_test_video(str(d / "bt709.mp4"), seconds=1.0, fps=25, color="bt709", source="coffee")
    return out


def decode(path, **kw):
    return list(iter_frames(path, **kw))


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def identity(frames):
    return frames


def upscale2(frames):
    return [cv2.resize(f, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST) for f in frames]


def av_offsets(path, click_frames):
    """For each audio click, (click time - display time of the frame it marks) in seconds: the frame
    is found by its barcode in the decoded video (the first frame showing index >= the marked one,
    since constant-rate conversion may drop it)."""
    info = probe_video(path)
    codes = [read_barcode(f) for f in iter_frames(path, info)]
    clicks = find_clicks(decode_audio(path))
    assert len(clicks) == len(click_frames)
    offsets = []
    for t, m in zip(clicks, click_frames):
        j = next(i for i, c in enumerate(codes) if c >= m)
        offsets.append(t - (info.start_time + j / info.fps))
    return offsets


def audio_streams(path):
    return [s for s in probe_streams(path) if s["type"] == "audio"]


# ---- probing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fps,ext", [(NTSC24, ".mp4"), (NTSC30, ".mp4"), (Fraction(25), ".mp4"),
                                     (NTSC24, ".mkv"), (NTSC30, ".mkv"), (Fraction(25), ".mov")])
def test_probe_exact_frame_rate(tmp_path, fps, ext):
    made = make_test_video(str(tmp_path / f"v{ext}"), seconds=2.0, fps=fps)
    info = probe_video(made["path"])
    assert type(info.fps) is Fraction and info.fps == fps  # exact, also from Matroska's 1 ms timestamps
    assert info.n_frames == made["n_frames"] == round(2 * fps)
    assert info.duration == pytest.approx(float(made["n_frames"] / fps), abs=1e-9)
    assert not info.vfr
    assert (info.width, info.height, info.codec, info.pix_fmt) == (96, 64, "h264", "yuv420p")
    assert info.has_audio and [s["type"] for s in info.streams] == ["video", "audio"]
    assert info.streams[1]["language"] == "eng"


def test_probe_streams_color_rotation(tmp_path, vids):
    info = probe_video(vids["mkv"]["path"])
    assert [(s["type"], s["codec"], s.get("language")) for s in info.streams] == [
        ("video", "h264", None), ("audio", "aac", "eng"), ("audio", "aac", "fra"), ("subtitle", "subrip", "eng")]
    info = probe_video(vids["bt709"]["path"])
    assert info.color == {"color_range": "tv", "colorspace": "bt709", "color_primaries": "bt709",
                          "color_trc": "bt709"}
    rot = make_test_video(str(tmp_path / "rot.mp4"), seconds=0.5, fps=25, rotation=90)
    info = probe_video(rot["path"])
    assert info.rotation == 90 and (info.width, info.height) == (64, 96)  # displayed size
    first = next(iter_frames(rot["path"], info))
    src = render_frame(_source_image("astronaut"), 0, rot["n_frames"], (96, 64))
    assert first.shape == (96, 64, 3)
    # 90 degrees counter-clockwise, as a player shows it.
    right, wrong = psnr(first, np.rot90(src, 1)), psnr(first, np.rot90(src, -1))
    assert right > 27 and right > wrong + 10, (right, wrong)


def test_probe_vfr(vids):
    made = vids["vfr"]
    info = probe_video(made["path"])
    assert info.vfr
    assert info.fps == 20  # 30 frames at 30 fps + 30 at 15 fps: 60 frames in 3 s
    # Matroska stores no duration for the last frame: the duration is known within one frame.
    assert abs(info.duration - float(made["duration"])) <= 1 / 15 + 1e-6
    assert info.n_frames == round(info.duration * info.fps)


def test_is_video_file(tmp_path, vids):
    assert is_video_file(vids["mp4"]["path"]) and is_video_file(vids["mkv"]["path"])
    png = str(tmp_path / "still.png")
    cv2.imwrite(png, np.zeros((8, 8, 3), np.uint8))
    jpg_named_mkv = str(tmp_path / "still.mkv")
    cv2.imwrite(str(tmp_path / "s.jpg"), np.zeros((8, 8, 3), np.uint8))
    os.replace(str(tmp_path / "s.jpg"), jpg_named_mkv)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    assert not is_video_file(png)
    assert not is_video_file(jpg_named_mkv)
    assert not is_video_file(str(text))
    assert is_video_file(str(tmp_path / "later.mkv")) and not is_video_file(str(tmp_path / "later.jpg"))


# ---- decoding --------------------------------------------------------------------------------

def test_iter_frames_exact_content(vids):
    made = vids["mp4"]
    frames = decode(made["path"])
    img = _source_image("astronaut")
    assert len(frames) == made["n_frames"]
    assert all(f.shape == (64, 96, 3) and f.dtype == np.uint8 for f in frames)
    assert [read_barcode(f) for f in frames] == list(range(made["n_frames"]))
    for i in (0, made["n_frames"] // 2, made["n_frames"] - 3):
        # ~29 dB: 4:2:0 chroma subsampling of a detailed 96x64 picture; a neighbour frame scores ~13 dB
        src = render_frame(img, i, made["n_frames"], (96, 64))
        assert psnr(frames[i], src) > 27 > 17 > psnr(frames[i + 2], src)
        assert np.abs(frames[i].reshape(-1, 3).mean(0) - src.reshape(-1, 3).mean(0)).max() < 2
    later = decode(made["path"], start_frame=17)
    assert len(later) == made["n_frames"] - 17
    assert all(np.array_equal(a, b) for a, b in zip(later, frames[17:]))


def test_iter_frames_colour_matrix(vids):
    """A BT.709-tagged video decodes to the RGB it was made from (no BT.601 colour shift)."""
    made = vids["bt709"]
    frames = decode(made["path"])
    img = _source_image("coffee")
    src = np.stack([render_frame(img, i, made["n_frames"], (96, 64)) for i in range(made["n_frames"])])
    got = np.stack(frames)
    assert psnr(got, src) > 27
    assert np.abs(got.reshape(-1, 3).mean(0) - src.reshape(-1, 3).mean(0)).max() < 1.5


def test_iter_frames_bounded_and_closable(vids):
    it = iter_frames(vids["mp4"]["path"])
    first = next(it)
    it.close()  # stops and reaps the decoder
    assert first.shape == (64, 96, 3)


# ---- process_video: streams, timing, sync ----------------------------------------------------

def test_identity_preserves_frames_audio_timing(tmp_path, vids):
    made = vids["mp4"]
    out = str(tmp_path / "out.mp4")
    summary = process_video(made["path"], out, [identity], chunk_seconds=0.5, progress=False)
    src, res = probe_video(made["path"]), probe_video(out)
    assert summary["frames"] == made["n_frames"] and summary["output"] == out and summary["fps"] == NTSC24
    assert summary["chunks"] == 4 and summary["resumed_chunks"] == 0
    assert res.fps == NTSC24 and res.n_frames == src.n_frames and res.duration == pytest.approx(src.duration)
    a, b = decode(made["path"]), decode(out)
    assert [read_barcode(f) for f in b] == list(range(made["n_frames"]))
    # neither black nor garbled nor colour-shifted: a second lossy 4:2:0 generation (~32 dB)
    assert min(psnr(x, y) for x, y in zip(a, b)) > 30
    assert np.abs(np.stack(a).reshape(-1, 3).mean(0) - np.stack(b).reshape(-1, 3).mean(0)).max() < 1.0
    # audio: copied (same codec), same start and duration within one frame
    frame = 1 / float(NTSC24)
    assert [s["codec"] for s in audio_streams(out)] == ["aac"]
    (s0, d0), (s1, d1) = stream_timing(made["path"], 1), stream_timing(out, 1)
    assert abs(s1 - s0) < frame and abs(d1 - d0) < frame
    assert max(abs(o) for o in av_offsets(out, made["click_frames"])) < frame
    assert not os.path.exists(out + ".ppgan-parts")
    assert sorted(os.listdir(tmp_path)) == ["out.mp4"]


def test_upscale_stage_doubles_size_and_keeps_count(tmp_path, vids):
    made = vids["mkv"]
    out = str(tmp_path / "x2.mkv")
    summary = process_video(made["path"], out, [upscale2], batch_size=3, chunk_seconds=0.7, progress=False)
    res = probe_video(out)
    assert (res.width, res.height) == (192, 128) == summary["size"]
    assert res.fps == NTSC30 and res.n_frames == made["n_frames"]
    assert [read_barcode(f) for f in decode(out)] == list(range(made["n_frames"]))


def test_progress_bar_per_step_counts_every_frame_from_its_own_thread(tmp_path, vids, monkeypatch):
    """One tqdm bar each for decode, every stage and encode (frames/s and ETA come with tqdm). The
    decode and encode bars are advanced by the decoder and encoder threads, so they show where the
    time goes while the three overlap."""
    import threading

    import tqdm as tqdm_module

    bars = []

    class Recorder(tqdm_module.tqdm):
        def __init__(self, *a, **kw):
            self.threads = set()
            super().__init__(*a, **kw)
            bars.append(self)

        def update(self, n=1):
            self.threads.add(threading.current_thread().name)
            return super().update(n)

    class Sharpen(FrameStage):
        def push(self, frames):
            return list(frames)

    monkeypatch.setattr(tqdm_module, "tqdm", Recorder)
    made = vids["mp4"]
    out = str(tmp_path / "bars.mp4")
    process_video(made["path"], out, [Sharpen(), upscale2], batch_size=5, chunk_seconds=0.5, progress=True)
    by_desc = {b.desc.split(":")[0]: b for b in bars}
    assert list(by_desc) == ["encode bars.mp4", "decode", "Sharpen", "upscale2"]
    n = made["n_frames"]
    assert all(b.n == b.total == n for b in bars)
    assert by_desc["decode"].threads == {"ppgan-video-decode"}
    assert by_desc["encode bars.mp4"].threads == {"ppgan-video-encode"}
    assert by_desc["Sharpen"].threads == {threading.current_thread().name}


def test_mkv_keeps_two_audio_tracks_and_subtitles(tmp_path, vids):
    made = vids["mkv"]
    out = str(tmp_path / "kept.mkv")
    process_video(made["path"], out, [identity], progress=False)
    strip = lambda path: [(s["type"], s["codec"], s.get("language")) for s in probe_streams(path)]  # noqa: E731
    assert strip(out) == strip(made["path"])
    frame = 1 / float(NTSC30)
    for k in (1, 2):
        (s0, d0), (s1, d1) = stream_timing(made["path"], k), stream_timing(out, k)
        assert abs(s1 - s0) < frame and abs(d1 - d0) < frame
    # both tracks are the originals: the second one's tone is 660 Hz
    tone = decode_audio(out, stream=1)[2000:6800]
    spectrum = np.abs(np.fft.rfft(tone * np.hanning(len(tone))))
    assert abs(np.argmax(spectrum) * 48000 / len(tone) - 660) < 15


def test_mp4_output_converts_subtitles_and_pcm_audio(tmp_path, vids):
    made = vids["pcm"]  # mkv with PCM audio and SRT subtitles: neither can be copied into mp4
    out = str(tmp_path / "conv.mp4")
    process_video(made["path"], out, [identity], progress=False)
    streams = probe_streams(out)
    assert [(s["type"], s["codec"]) for s in streams] == [("video", "h264"), ("audio", "aac"), ("subtitle", "mov_text")]
    assert streams[1]["language"] == "eng" and streams[2]["language"] == "eng"
    assert max(abs(o) for o in av_offsets(out, made["click_frames"])) < 1 / 25
    # the mp4 -> mkv direction converts mov_text to srt
    back = str(tmp_path / "back.mkv")
    process_video(out, back, [identity], progress=False)
    assert [s["codec"] for s in probe_streams(back)] == ["h264", "aac", "subrip"]


def test_vfr_input_becomes_cfr_with_same_duration_and_sync(tmp_path, vids):
    made = vids["vfr"]
    out = str(tmp_path / "cfr.mp4")
    process_video(made["path"], out, [identity], progress=False)
    src, res = probe_video(made["path"]), probe_video(out)
    assert not res.vfr and res.fps == src.fps == 20
    assert abs(res.duration - float(made["duration"])) <= 1 / 20 + 1e-6
    codes = [read_barcode(f) for f in decode(out)]
    assert codes == sorted(codes) and codes[0] == 0 and codes[-1] >= made["n_frames"] - 2
    assert max(abs(o) for o in av_offsets(out, made["click_frames"])) < 1 / 20
    (s0, d0), (s1, d1) = stream_timing(made["path"], 1), stream_timing(out, 1)
    assert abs(s1 - s0) < 1 / 20 and abs(d1 - d0) < 1 / 20


def test_video_starting_after_audio_keeps_its_offset(tmp_path, vids):
    made = vids["mp4"]
    late = str(tmp_path / "late.mkv")  # the same clip with its video 0.5 s behind its audio
    subprocess.run([ffmpeg_exe(), "-v", "error", "-itsoffset", "0.5", "-i", made["path"], "-i", made["path"],
                    "-map", "0:v", "-map", "1:a", "-c", "copy", late], check=True)
    assert probe_video(late).start_time == pytest.approx(0.5, abs=1e-3)
    out = str(tmp_path / "late_out.mp4")
    process_video(late, out, [identity], chunk_seconds=0.5, progress=False)
    assert probe_video(out).start_time == pytest.approx(0.5, abs=1e-3)
    frame = 1 / float(NTSC24)
    before, after = av_offsets(late, made["click_frames"]), av_offsets(out, made["click_frames"])
    assert all(abs(b + 0.5) < frame for b in before)
    assert all(abs(a - b) < frame for a, b in zip(after, before))


def test_colour_tags_kept(tmp_path, vids):
    out = str(tmp_path / "tagged.mp4")
    process_video(vids["bt709"]["path"], out, [identity], progress=False)
    assert probe_video(out).color == probe_video(vids["bt709"]["path"]).color
    a, b = np.stack(decode(vids["bt709"]["path"])), np.stack(decode(out))
    assert np.abs(a.reshape(-1, 3).mean(0) - b.reshape(-1, 3).mean(0)).max() < 1.0


# ---- stages ----------------------------------------------------------------------------------

class OneBatchLate(FrameStage):
    """Returns each batch on the next push; flush returns the last one."""

    def reset(self):
        self.held = []

    def push(self, frames):
        out, self.held = self.held, [255 - f for f in frames]
        return out

    def flush(self):
        out, self.held = self.held, []
        return out

    def describe(self):
        return "OneBatchLate(negative)"


def negative(frames):
    return [255 - f for f in frames]


def test_latency_stage_matches_plain_stage(tmp_path, vids):
    made = vids["mp4"]
    a, b = str(tmp_path / "late.mp4"), str(tmp_path / "plain.mp4")
    process_video(made["path"], a, [OneBatchLate(), upscale2], batch_size=5, chunk_seconds=0.6, progress=False)
    process_video(made["path"], b, [negative, upscale2], batch_size=5, chunk_seconds=0.6, progress=False)
    fa, fb = decode(a), decode(b)
    assert len(fa) == len(fb) == made["n_frames"]
    assert all(np.array_equal(x, y) for x, y in zip(fa, fb))


def test_wrong_frame_count_raises_without_output(tmp_path, vids):
    out = str(tmp_path / "bad.mp4")

    def drop_one(frames):
        return frames[:-1]

    with pytest.raises(VideoError, match=r"returned \d+ frames for \d+ input frames"):
        process_video(vids["mp4"]["path"], out, [drop_one], progress=False)
    with pytest.raises(VideoError, match="one frame per input frame"):
        process_video(vids["mp4"]["path"], out, [lambda fs: fs + fs], progress=False)
    assert not os.path.exists(out)
    with pytest.raises(VideoError, match="uint8"):
        process_video(vids["mp4"]["path"], out, [lambda fs: [f.astype(np.float32) for f in fs]], progress=False)
    assert not os.path.exists(out)
    # only the (resumable) parts folder is left, holding no temp files
    assert sorted(os.listdir(tmp_path)) == ["bad.mp4.ppgan-parts"]
    assert os.listdir(tmp_path / "bad.mp4.ppgan-parts") == ["manifest.json"]


def _children_ffmpeg(must_contain=""):
    """pids of ffmpeg processes started by this process (whose cmdline holds `must_contain`)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().decode("utf-8", "replace").split("\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and "ffmpeg" in os.path.basename(cmd[0]) and any(must_contain in c for c in cmd):
            found.append(int(pid))
    return found


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """10 s: longer than what the decode queue and pipe buffer hold."""
    return make_test_video(str(tmp_path_factory.mktemp("long") / "long.mp4"), seconds=10, fps=24)


@pytest.mark.parametrize("victim", ["decoder", "encoder"])
def test_ffmpeg_dying_mid_job_raises_and_cleans_up(tmp_path, long_clip, victim):
    """A decoder or encoder killed mid-job (out of memory, ...) becomes a VideoError in the caller; the
    other ffmpeg is stopped, no output or temp file is left, finished chunks stay for resuming."""
    out = str(tmp_path / "o.mp4")
    pushes = []

    def killer(frames):
        pushes.append(len(frames))
        if len(pushes) == 6:  # chunk 0 (12 frames, 4 pushes) is done, chunk 1's encoder has started
            pids = _children_ffmpeg("-an" if victim == "decoder" else "chunk_00001")
            assert len(pids) == 1
            os.kill(pids[0], signal.SIGKILL)
            time.sleep(0.3)
        return frames

    killer.describe = lambda: "identity"
    with pytest.raises(VideoError, match="decoding" if victim == "decoder" else "encoding"):
        process_video(long_clip["path"], out, [killer], batch_size=3, chunk_seconds=0.5, progress=False)
    assert not _children_ffmpeg()
    assert sorted(os.listdir(tmp_path)) == ["o.mp4.ppgan-parts"]
    # frames decoded before the kill may complete more chunks; never a temp file
    left = sorted(os.listdir(tmp_path / "o.mp4.ppgan-parts"))
    n_done = len(json.load(open(tmp_path / "o.mp4.ppgan-parts" / "manifest.json"))["done"])
    assert left == [f"chunk_{k:05d}.mp4" for k in range(n_done)] + ["manifest.json"] and n_done >= 1
    # the next run picks up from there (a function's `describe` attribute names it in the resume key)
    seen = []

    def plain(frames):
        seen.extend(frames)
        return frames

    plain.describe = killer.describe
    summary = process_video(long_clip["path"], out, [plain], batch_size=3, chunk_seconds=0.5, progress=False)
    assert summary["resumed_chunks"] == n_done and len(seen) == long_clip["n_frames"] - 12 * n_done
    assert [read_barcode(f) for f in decode(out)] == list(range(long_clip["n_frames"]))


def test_bad_encoder_settings_fail_before_processing(tmp_path, vids):
    calls = []

    def count(frames):
        calls.append(len(frames))
        return frames

    for kw, words in [({"codec": "no_such_encoder"}, "no_such_encoder"),
                      ({"extra_args": ["-no_such_option", "1"]}, "no_such_option")]:
        with pytest.raises(VideoError, match=words):
            process_video(vids["mp4"]["path"], str(tmp_path / "o.mp4"), [count], progress=False, **kw)
    with pytest.raises(VideoError, match="WebM"):  # H.264 cannot go into WebM
        process_video(vids["mp4"]["path"], str(tmp_path / "o.webm"), [count], progress=False)
    assert calls == [] and os.listdir(tmp_path) == []  # not even a parts folder


def test_crash_during_final_join_resumes_with_join_only(tmp_path, vids, monkeypatch):
    import ppgan.utils.video as video

    real = video._finish
    monkeypatch.setattr(video, "_finish", lambda *a: (_ for _ in ()).throw(RuntimeError("disk full")))
    out = str(tmp_path / "j.mkv")
    with pytest.raises(RuntimeError, match="disk full"):
        process_video(vids["mkv"]["path"], out, [upscale2], chunk_seconds=0.5, progress=False)
    monkeypatch.setattr(video, "_finish", real)
    calls = []

    def counted(frames):
        calls.append(len(frames))
        return upscale2(frames)

    counted.describe = lambda: video._FunctionStage(upscale2).describe()
    summary = process_video(vids["mkv"]["path"], out, [counted], chunk_seconds=0.5, progress=False)
    assert calls == [] and summary["resumed_chunks"] == summary["chunks"] == 4
    assert [read_barcode(f) for f in decode(out)] == list(range(vids["mkv"]["n_frames"]))


def test_size_change_between_frames_raises(tmp_path, vids):
    calls = []

    def grow(frames):
        calls.append(1)
        return upscale2(frames) if len(calls) > 1 else frames

    with pytest.raises(VideoError, match="size changed from 96x64 to 192x128"):
        process_video(vids["mp4"]["path"], str(tmp_path / "o.mp4"), [grow], progress=False)


# ---- resuming --------------------------------------------------------------------------------

class FailAfter(FrameStage):
    """Negative image; raises once it has seen `limit` frames (simulates a crash)."""

    def __init__(self, limit=None):
        self.limit, self.seen = limit, 0

    def push(self, frames):
        self.seen += len(frames)
        if self.limit is not None and self.seen > self.limit:
            raise RuntimeError("simulated crash")
        return [255 - f for f in frames]

    def describe(self):
        return "negative"


def test_resume_in_process_and_stale_parts(tmp_path, vids, caplog):
    made = vids["mp4"]  # 48 frames; chunks of 12
    out = str(tmp_path / "r.mp4")
    with pytest.raises(RuntimeError, match="simulated crash"):
        process_video(made["path"], out, [FailAfter(30)], chunk_seconds=0.5, progress=False)
    assert not os.path.exists(out)
    manifest = json.load(open(out + ".ppgan-parts/manifest.json"))
    assert sorted(manifest["done"]) == ["0", "1"]
    stage = FailAfter()
    summary = process_video(made["path"], out, [stage], chunk_seconds=0.5, progress=False)
    assert summary["resumed_chunks"] == 2 and stage.seen == 48 - 24
    full = str(tmp_path / "full.mp4")
    process_video(made["path"], full, [FailAfter()], chunk_seconds=0.5, progress=False)
    assert all(np.array_equal(x, y) for x, y in zip(decode(out), decode(full)))
    # different arguments: the old parts are discarded (and said so), nothing is reused
    with pytest.raises(RuntimeError):
        process_video(made["path"], out, [FailAfter(30)], chunk_seconds=0.5, progress=False)
    stage = FailAfter()
    with caplog.at_level("WARNING", logger="ppgan.video"):
        summary = process_video(made["path"], out, [stage], chunk_seconds=0.5, crf=23, progress=False)
    assert summary["resumed_chunks"] == 0 and stage.seen == 48
    assert "discarding earlier parts" in caplog.text
    # resume=False starts over too
    with pytest.raises(RuntimeError):
        process_video(made["path"], out, [FailAfter(30)], chunk_seconds=0.5, progress=False)
    stage = FailAfter()
    assert process_video(made["path"], out, [stage], chunk_seconds=0.5, resume=False,
                         progress=False)["resumed_chunks"] == 0 and stage.seen == 48


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from ppgan.utils.video import FrameStage, process_video

    class SlowNegative(FrameStage):
        def __init__(self, delay, log):
            self.delay, self.log = delay, log
        def push(self, frames):
            with open(self.log, "a") as f:
                f.write("x" * len(frames))
            time.sleep(self.delay * len(frames))
            return [255 - f for f in frames]
        def describe(self):
            return "SlowNegative"

    src, out, delay, log = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    process_video(src, out, [SlowNegative(delay, log)], batch_size=2, chunk_seconds=0.25, progress=False)
""")


def _ffmpeg_processes_mentioning(text):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        if "ffmpeg" in cmd and text in cmd:
            found.append(pid)
    return found


def test_kill_and_resume_gives_identical_output(tmp_path, vids):
    made = vids["mp4"]  # 48 frames at 23.976: chunks of 6 frames
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    out = str(tmp_path / "killed.mp4")
    parts = out + ".ppgan-parts"
    log1, log2 = str(tmp_path / "calls1"), str(tmp_path / "calls2")
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, made["path"], out, "0.03", log1], env=env)
    try:
        deadline = time.time() + 60
        while not os.path.exists(os.path.join(parts, "chunk_00000.mp4")):
            assert proc.poll() is None and time.time() < deadline, "job ended before its first chunk"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert not os.path.exists(out)
    # the encoder sees end of input and the decoder a broken pipe: neither outlives the job for long
    deadline = time.time() + 10
    while _ffmpeg_processes_mentioning(parts) and time.time() < deadline:
        time.sleep(0.1)
    assert not _ffmpeg_processes_mentioning(parts)
    done_frames = sum(e["frames"] for e in json.load(open(os.path.join(parts, "manifest.json")))["done"].values())
    assert 6 <= done_frames < 48
    first_calls = len(open(log1).read())

    res = subprocess.run([sys.executable, "-c", KILL_SCRIPT, made["path"], out, "0", log2], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert len(open(log2).read()) == 48 - done_frames  # finished chunks were not recomputed
    assert first_calls >= done_frames
    assert not os.path.exists(parts)

    ref = str(tmp_path / "ref.mp4")
    res = subprocess.run([sys.executable, "-c", KILL_SCRIPT, made["path"], ref, "0", str(tmp_path / "calls3")],
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    got, want = decode(out), decode(ref)
    assert len(got) == len(want) == 48
    assert all(np.array_equal(x, y) for x, y in zip(got, want))
    assert [read_barcode(255 - f) for f in got] == list(range(48))
    assert probe_video(out).fps == NTSC24 and [s["codec"] for s in audio_streams(out)] == ["aac"]


def test_runs_are_deterministic(tmp_path, vids):
    """Same arguments (the batch size aside) -> the same decoded frames, byte for byte."""
    a, b = str(tmp_path / "a.mkv"), str(tmp_path / "b.mkv")
    process_video(vids["mkv"]["path"], a, [upscale2], chunk_seconds=0.5, progress=False)
    process_video(vids["mkv"]["path"], b, [upscale2], chunk_seconds=0.5, batch_size=7, progress=False)
    fa, fb = decode(a), decode(b)
    assert len(fa) == len(fb) == vids["mkv"]["n_frames"]
    assert all(x.tobytes() == y.tobytes() for x, y in zip(fa, fb))


# ---- memory ----------------------------------------------------------------------------------

def _peak_traced(src, out):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        process_video(src, out, [identity], chunk_seconds=5, batch_size=4, progress=False)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_flat_and_no_drift_on_long_video(tmp_path):
    """10 s vs 40 s at 29.97 fps: the same peak memory; and after 40 s the audio clicks still land on
    their frames (a rate rounded to 29.97 or 30 would be 1 ms or 40 ms off by then)."""
    short = make_test_video(str(tmp_path / "short.mp4"), seconds=10, fps=NTSC30, size=(160, 120))
    long = make_test_video(str(tmp_path / "long.mp4"), seconds=40, fps=NTSC30, size=(160, 120), click_every=60)
    p_short = _peak_traced(short["path"], str(tmp_path / "s_out.mp4"))
    out = str(tmp_path / "l_out.mp4")
    p_long = _peak_traced(long["path"], out)
    all_frames = long["n_frames"] * 160 * 120 * 3  # 69 MB if a tool held every frame
    assert p_long - p_short < 2 << 20, (p_short, p_long)
    assert p_long < all_frames / 8, (p_short, p_long)
    res = probe_video(out)
    assert res.n_frames == long["n_frames"] == 1199 and res.fps == NTSC30
    assert abs(res.duration - float(long["duration"])) < 1e-6
    frame = 1 / float(NTSC30)
    offsets = av_offsets(out, long["click_frames"])
    assert max(abs(o) for o in offsets) < frame / 2 and abs(offsets[-1] - offsets[0]) < 0.002, offsets


# ---- errors and paths ------------------------------------------------------------------------

@pytest.fixture
def bad_inputs(tmp_path, vids):
    text = tmp_path / "text.mp4"
    text.write_text("hello, I am not a video\n")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    data = open(vids["mp4"]["path"], "rb").read()
    cut = tmp_path / "truncated.mp4"  # moov at the end: cut off
    cut.write_bytes(data[: len(data) // 2])
    data = open(vids["mkv"]["path"], "rb").read()
    cut_mkv = tmp_path / "truncated.mkv"
    cut_mkv.write_bytes(data[: len(data) // 2])
    audio_only = tmp_path / "audio.m4a"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i",
                    vids["mp4"]["path"], "-vn", "-c", "copy", str(audio_only)], check=True)
    return {"missing": (str(tmp_path / "nope.mp4"), "not found"), "text": (str(text), "Invalid data"),
            "empty": (str(empty), "empty"), "truncated": (str(cut), "moov atom not found"),
            "truncated_mkv": (str(cut_mkv), "truncated or damaged"), "folder": (str(tmp_path), "folder"),
            "audio_only": (str(audio_only), "no video stream")}


@pytest.mark.parametrize("case", ["missing", "text", "empty", "truncated", "truncated_mkv", "folder", "audio_only"])
def test_bad_inputs_raise_one_line_error(tmp_path, bad_inputs, case):
    path, words = bad_inputs[case]
    with pytest.raises(VideoError) as e:
        probe_video(path)
    assert words in str(e.value) and "\n" not in str(e.value) and len(str(e.value)) < 400
    assert isinstance(e.value, PPGANError)
    out = str(tmp_path / "o" / "out.mp4")
    with pytest.raises(VideoError, match=words):
        process_video(path, out, [identity], progress=False)
    assert not os.path.exists(os.path.dirname(out)) or not os.listdir(os.path.dirname(out))


def test_output_equal_to_input_and_unwritable_folder(tmp_path, vids):
    src = str(tmp_path / "in.mp4")
    with open(vids["mp4"]["path"], "rb") as f, open(src, "wb") as g:
        g.write(f.read())
    before = open(src, "rb").read()
    with pytest.raises(VideoError, match="is the input"):
        process_video(src, str(tmp_path / "sub" / ".." / "in.mp4"), [identity], progress=False)
    assert open(src, "rb").read() == before
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(VideoError, match="not writable"):
        process_video(src, str(blocker / "out.mp4"), [identity], progress=False)
    with pytest.raises(VideoError, match="extension"):
        process_video(src, str(tmp_path / "noext"), [identity], progress=False)
    if os.geteuid() != 0:  # root may write into a read-only folder
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(VideoError, match="not writable"):
            process_video(src, str(ro / "out.mp4"), [identity], progress=False)


def test_odd_paths(tmp_path, vids):
    folder = tmp_path / "dir with spaces" / "ünïcødé 视频"
    folder.mkdir(parents=True)
    src = folder / "it's a \"clip\" [1].mkv"
    with open(vids["mkv"]["path"], "rb") as f:
        src.write_bytes(f.read())
    out = str(folder / ".." / "ünïcødé 视频" / "out 'é' $HOME;.mp4")
    summary = process_video(str(src), out, [identity], chunk_seconds=0.5, progress=False)
    assert os.path.isfile(out) and summary["frames"] == vids["mkv"]["n_frames"]
    assert probe_video(out).n_frames == vids["mkv"]["n_frames"]
    assert len(audio_streams(out)) == 2


def test_progress_bar(tmp_path, vids, capsys):
    process_video(vids["mp4"]["path"], str(tmp_path / "p.mp4"), [identity], progress=True)
    err = capsys.readouterr().err
    assert "48/48" in err and "frame/s" in err
    process_video(vids["mp4"]["path"], str(tmp_path / "q.mp4"), [identity], progress=False)
    assert capsys.readouterr().err == ""


# ---- VideoWriter -----------------------------------------------------------------------------

def test_writer_with_audio_from_and_atomicity(tmp_path, vids):
    made = vids["mkv"]
    out = str(tmp_path / "w.mp4")
    frames = decode(made["path"])
    with VideoWriter(out, 96, 64, NTSC30, audio_from=made["path"]) as w:
        for f in frames:
            w.write(f)
        assert not os.path.exists(out)  # only the temp file exists until close
    info = probe_video(out)
    assert info.n_frames == len(frames) and info.fps == NTSC30
    assert [(s["type"], s["codec"]) for s in info.streams] == [("video", "h264"), ("audio", "aac"), ("audio", "aac"),
                                                               ("subtitle", "mov_text")]
    assert oct(os.stat(out).st_mode & 0o777) != oct(0o600)
    # an error inside the block leaves nothing behind
    bad = str(tmp_path / "bad.mp4")
    with pytest.raises(RuntimeError):
        with VideoWriter(bad, 96, 64, 25) as w:
            w.write(frames[0])
            raise RuntimeError("boom")
    assert sorted(os.listdir(tmp_path)) == ["w.mp4"]
    with pytest.raises(VideoError, match="even frame size"):
        VideoWriter(bad, 95, 64, 25)
    with VideoWriter(bad, 96, 64, 25) as w:
        with pytest.raises(VideoError, match="differs"):
            w.write(np.zeros((10, 10, 3), np.uint8))
        with pytest.raises(VideoError, match="uint8"):
            w.write(np.zeros((64, 96, 3), np.float32))
        w.write(frames[0])
    with pytest.raises(VideoError, match="no frames"):
        with VideoWriter(str(tmp_path / "empty.mp4"), 96, 64, 25):
            pass
    with pytest.raises(VideoError, match="encoding .* failed"):
        with VideoWriter(str(tmp_path / "c.mp4"), 96, 64, 25, codec="no_such_codec") as w:
            w.write(frames[0])
    assert sorted(os.listdir(tmp_path)) == ["bad.mp4", "w.mp4"]

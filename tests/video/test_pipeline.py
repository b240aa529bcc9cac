"""process_video: frames, audio, subtitles and timing kept; errors, odd paths, bounded memory."""
import os
import subprocess
import tracemalloc

import numpy as np
import pytest

from ppgan.utils.errors import PPGANError
from ppgan.video import FrameStage, VideoError, ffmpeg_exe, probe_streams, probe_video, process_video, stream_timing
from ppgan.video.synthetic import decode_audio, make_test_video, read_barcode
from video_helpers import NTSC24, NTSC30, audio_streams, av_offsets, decode, identity, psnr, upscale2
from video_helpers import vids  # noqa: F401 (a fixture)


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

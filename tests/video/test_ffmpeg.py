"""The ffmpeg runner: binary lookup ($IMAGEIO_FFMPEG_EXE), version and options read once, and the
whole pipeline on the default ffmpeg and on an ffmpeg 4.2 (no -fps_mode: -vsync is used).

The old binary comes from the imageio-ffmpeg 0.4.9 wheel, unpacked to .ci/ffmpeg4/ffmpeg by
`.ci/run`'s set-up; without it the 4.2 cases skip and say so (pytest -rs)."""
import os

import pytest

from ppgan.video import (VideoError, ffmpeg_exe, ffmpeg_features, ffmpeg_version, fps_mode_args, iter_frames,
                         probe_streams, probe_video, process_video)
from ppgan.video.synthetic import read_barcode
from video_helpers import ROOT, av_offsets, decode, upscale2
from video_helpers import vids  # noqa: F401 (a fixture)

FFMPEG4 = os.path.join(ROOT, ".ci", "ffmpeg4", "ffmpeg")
needs_ffmpeg4 = pytest.mark.skipif(not os.access(FFMPEG4, os.X_OK),
                                   reason=f"no ffmpeg 4.2 at {FFMPEG4}: .ci/run's set-up fetches it "
                                          f"(pip download imageio-ffmpeg==0.4.9, binary unpacked there)")


def test_default_ffmpeg_is_read_once_and_has_fps_mode(monkeypatch):
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
    feats = ffmpeg_features()
    assert ffmpeg_features() is feats  # cached: -version and -h long ran once for this binary
    assert feats["exe"] == ffmpeg_exe() and feats["version_line"] == ffmpeg_version()
    assert feats["version_line"].startswith("ffmpeg version")
    assert "fps_mode" in feats["options"] and fps_mode_args("passthrough") == ["-fps_mode", "passthrough"]


def test_bad_ffmpeg_override_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-ffmpeg"))
    with pytest.raises(VideoError, match="IMAGEIO_FFMPEG_EXE=.*is not an executable file") as e:
        ffmpeg_exe()
    assert "\n" not in str(e.value)


@needs_ffmpeg4
def test_ffmpeg4_uses_vsync_and_doctor_says_so(monkeypatch, capsys):
    from ppgan.cli import main

    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", FFMPEG4)
    feats = ffmpeg_features()
    assert feats["exe"] == FFMPEG4 and feats["version"] == (4, 2)
    assert "fps_mode" not in feats["options"] and "vsync" in feats["options"]
    assert fps_mode_args("passthrough") == ["-vsync", "passthrough"]
    main(["doctor"])
    out = capsys.readouterr().out
    assert f"ffmpeg:  {FFMPEG4}" in out and "ffmpeg version 4.2.2" in out and "using -vsync" in out


@pytest.mark.parametrize("which", ["default", pytest.param("ffmpeg4", marks=needs_ffmpeg4)])
def test_pipeline_runs_on_default_and_old_ffmpeg(tmp_path, vids, monkeypatch, which):
    """Decode, stages, chunked encode, join and mux (two audio tracks and subtitles, converted for
    mp4), a colour-tagged input, and VFR input, with each binary."""
    if which == "ffmpeg4":
        monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", FFMPEG4)
    else:
        monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
    made = vids["mkv"]
    out = str(tmp_path / "x2.mp4")
    summary = process_video(made["path"], out, [upscale2], batch_size=3, chunk_seconds=0.5, progress=False)
    res, src = probe_video(out), probe_video(made["path"])
    assert summary["chunks"] == 4 and (res.width, res.height) == (192, 128)
    assert res.fps == src.fps and res.n_frames == src.n_frames == made["n_frames"]
    assert [read_barcode(f) for f in decode(out)] == list(range(made["n_frames"]))
    assert [(s["type"], s["codec"]) for s in probe_streams(out)] == [
        ("video", "h264"), ("audio", "aac"), ("audio", "aac"), ("subtitle", "mov_text")]
    assert max(abs(o) for o in av_offsets(out, made["click_frames"])) < 1 / float(src.fps)

    tagged = str(tmp_path / "tagged.mkv")
    process_video(vids["bt709"]["path"], tagged, [upscale2], progress=False)
    assert probe_video(tagged).color == probe_video(vids["bt709"]["path"]).color

    cfr = str(tmp_path / "cfr.mp4")
    process_video(vids["vfr"]["path"], cfr, [upscale2], progress=False)
    codes = [read_barcode(f) for f in iter_frames(cfr)]
    assert probe_video(cfr).fps == 20 and codes == sorted(codes) and codes[0] == 0
    assert codes[-1] >= vids["vfr"]["n_frames"] - 2


@pytest.mark.parametrize("which", ["default", pytest.param("ffmpeg4", marks=needs_ffmpeg4)])
def test_format_edge_cases_on_default_and_old_ffmpeg(tmp_path, monkeypatch, which):
    """An RGB-coded (gbr) input, a .webm output with no codec given, Opus audio into .mp4 (experimental
    in ffmpeg 4's mp4 muxer: converted there) and two audio streams into .flv (one kept), per binary."""
    from ppgan.video.synthetic import make_test_video

    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
    rgb = make_test_video(str(tmp_path / "rgb.mkv"), seconds=0.5, fps=10, codec="libx264rgb", pix_fmt="rgb24")
    opus = make_test_video(str(tmp_path / "opus.mkv"), seconds=0.5, fps=10, audio=2, audio_codec="libopus")
    if which == "ffmpeg4":
        monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", FFMPEG4)
    out = str(tmp_path / "rgb.mp4")
    process_video(rgb["path"], out, [upscale2], progress=False)
    assert probe_video(out).color.get("colorspace") == "bt709" and len(decode(out)) == 5
    webm = str(tmp_path / "o.webm")
    process_video(opus["path"], webm, [upscale2], progress=False)
    assert [s["codec"] for s in probe_streams(webm)] == ["vp9", "opus", "opus"]
    mp4 = str(tmp_path / "opus.mp4")
    process_video(opus["path"], mp4, [upscale2], progress=False)
    want = "aac" if which == "ffmpeg4" else "opus"
    assert [s["codec"] for s in probe_streams(mp4)] == ["h264", want, want]
    flv = str(tmp_path / "o.flv")
    process_video(opus["path"], flv, [upscale2], progress=False)
    assert [s["codec"] for s in probe_streams(flv)] == ["h264", "aac"]
    assert [read_barcode(f) for f in decode(flv)] == list(range(5))

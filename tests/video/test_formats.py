"""Formats at the edges: RGB-coded and oddly tagged colour, the video codec that fits each output
container, audio a container cannot hold, codec/container pairs that cannot work (one line each), and
an ffmpeg that crashes."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ppgan.video import VideoError, VideoWriter, ffmpeg_features, iter_frames, probe_streams, probe_video, process_video
from ppgan.video.encode import output_color
from ppgan.video.ffmpeg import run
from ppgan.video.synthetic import make_test_video, read_barcode
from video_helpers import ROOT, audio_streams, decode, identity, psnr

ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
N = 5  # frames of the small test videos (0.5 s at 10 fps)


def _small(path, **kw):
    return make_test_video(str(path), seconds=0.5, fps=10, **kw)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Small test videos, made when first asked for: 'plain' (H.264 + AAC .mkv), 'rgb' (libx264rgb:
    gbrp, colorspace gbr, full range), 'a:<audio encoder>' (.mkv with that audio)."""
    d = tmp_path_factory.mktemp("small")
    made = {}

    def get(name):
        if name not in made:
            if name == "rgb":
                made[name] = _small(d / "rgb.mkv", codec="libx264rgb", pix_fmt="rgb24")
            elif name.startswith("a:"):
                made[name] = _small(d / f"{name[2:]}.mkv", audio_codec=name[2:])
            elif name == "two-audio":
                made[name] = _small(d / "two.mkv", audio=2, subtitles=True)
            else:
                made[name] = _small(d / "plain.mkv")
        return made[name]["path"]

    return get


def _same_picture(a, b, min_psnr=26, max_shift=1.5):
    """Frames match: no garbling (PSNR; 4:2:0 costs these small saturated frames ~29 dB) and no colour
    cast (a wrong matrix or range moves a channel's mean by 3-5 levels, a right one by < 0.5)."""
    assert len(a) == len(b)
    assert min(psnr(x, y) for x, y in zip(a, b)) > min_psnr
    shift = np.abs(np.stack(a).reshape(-1, 3).mean(0) - np.stack(b).reshape(-1, 3).mean(0)).max()
    assert shift < max_shift


# ---- colour ----------------------------------------------------------------------------------

@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v"])
def test_rgb_tagged_input_writes_every_container(tmp_path, small, ext):
    """libx264rgb input (colorspace gbr): YUV output gets the BT.709 matrix, limited range, and the
    same picture."""
    src = small("rgb")
    assert probe_video(src).color == {"color_range": "pc", "colorspace": "gbr"}
    out = str(tmp_path / f"o{ext}")
    process_video(src, out, [identity], progress=False)
    info = probe_video(out)
    assert info.pix_fmt == "yuv420p" and info.color.get("colorspace") in ("bt709", None)
    assert info.color.get("color_range", "tv") == "tv"
    _same_picture(decode(src), decode(out))


def test_rgb_tagged_input_to_rgb_output_keeps_gbr(tmp_path, small):
    src = small("rgb")
    out = str(tmp_path / "rgb.mkv")
    process_video(src, out, [identity], codec="libx264rgb", progress=False)
    info = probe_video(out)
    assert info.pix_fmt == "gbrp" and info.color == {"color_range": "pc", "colorspace": "gbr"}
    _same_picture(decode(src), decode(out), min_psnr=35, max_shift=0.5)


# h264_metadata values (H.273 code points) -> the tags the input then has, and those its YUV copy gets
ODD_TAGS = {
    "gbr": ("matrix_coefficients=0:video_full_range_flag=1", {"color_range": "tv", "colorspace": "bt709"}),
    "reserved": ("matrix_coefficients=3:colour_primaries=3:transfer_characteristics=3", {"color_range": "tv"}),
    "ycgco": ("matrix_coefficients=8", {"color_range": "tv", "colorspace": "bt709"}),
    "bt2020 constant luminance": ("matrix_coefficients=10:colour_primaries=9:transfer_characteristics=14",
                                  {"color_range": "tv", "colorspace": "bt2020nc", "color_primaries": "bt2020",
                                   "color_trc": "bt2020-10"}),
    "smpte2085": ("matrix_coefficients=11", {"color_range": "tv", "colorspace": "bt709"}),
    "chroma-derived": ("matrix_coefficients=12", {"color_range": "tv", "colorspace": "bt709"}),
    "ictcp pq": ("matrix_coefficients=14:transfer_characteristics=16",
                 {"color_range": "tv", "colorspace": "bt709", "color_trc": "smpte2084"}),
    "hlg (kept)": ("matrix_coefficients=9:colour_primaries=9:transfer_characteristics=18",
                   {"color_range": "tv", "colorspace": "bt2020nc", "color_primaries": "bt2020",
                    "color_trc": "arib-std-b67"}),
    "full-range p3 (kept)": ("colour_primaries=12:transfer_characteristics=16:matrix_coefficients=6:"
                             "video_full_range_flag=1", {"color_range": "pc", "colorspace": "smpte170m",
                                                         "color_primaries": "smpte432", "color_trc": "smpte2084"}),
}


@pytest.fixture(scope="module")
def base_frames(tmp_path_factory):
    path = _small(tmp_path_factory.mktemp("base") / "base.mp4", audio=False)["path"]
    return path, decode(path)


@pytest.mark.parametrize("case", list(ODD_TAGS))
def test_odd_colour_tags_become_tags_the_encoder_takes(tmp_path, base_frames, case):
    base, frames = base_frames
    bsf, want = ODD_TAGS[case]
    src = str(tmp_path / "tagged.mkv")
    run(["-y", "-v", "error", "-i", base, "-c", "copy", "-bsf:v", f"h264_metadata={bsf}", src], "tagging")
    color = probe_video(src).color
    for pix_fmt, codec, expect in [("yuv420p", None, want), ("yuv444p", "libx264", want),
                                   ("yuv420p", "libx264rgb", None)]:  # libx264rgb stores RGB: gbr
        out = str(tmp_path / f"{pix_fmt}-{codec}.mkv")
        with VideoWriter(out, 96, 64, 10, codec=codec, pix_fmt=pix_fmt, color=color) as w:
            for f in frames:
                w.write(f)
        got = probe_video(out).color
        if expect is None:
            assert got.get("colorspace") == "gbr" and got.get("color_range") == "pc"
            assert {k: v for k, v in got.items() if k in ("color_primaries", "color_trc")} == {
                k: v for k, v in want.items() if k in ("color_primaries", "color_trc")}
        else:
            assert got == expect
        _same_picture(frames, decode(out))


@pytest.mark.parametrize("color,rgb,want", [
    (None, False, {}),
    ({}, True, {}),
    ({"colorspace": "gbr", "color_range": "pc"}, False, {"colorspace": "bt709", "color_range": "tv"}),
    ({"colorspace": "gbr", "color_range": "pc"}, True, {"colorspace": "gbr", "color_range": "pc"}),
    ({"colorspace": "bt709", "color_range": "tv", "color_primaries": "bt709"}, True,
     {"colorspace": "gbr", "color_range": "pc", "color_primaries": "bt709"}),
    ({"colorspace": "ycgco", "color_primaries": "bt2020"}, False,
     {"colorspace": "bt2020nc", "color_range": "tv", "color_primaries": "bt2020"}),
    ({"colorspace": "bt470bg", "color_range": "pc"}, False, {"colorspace": "bt470bg", "color_range": "pc"}),
    ({"colorspace": "reserved", "color_primaries": "reserved", "color_trc": "unknown"}, False, {}),
    ({"color_primaries": "nonsense", "color_trc": "bt709;rm -rf", "color_range": "full"}, False, {}),
    ({"colorspace": 5, "color_range": None, "color_trc": ["bt709"]}, False, {}),
    ({"colorspace": "ipt-c2", "color_trc": "linear"}, False,
     {"colorspace": "bt709", "color_range": "tv", "color_trc": "linear"}),
])
def test_output_color_table(color, rgb, want):
    assert output_color(color, rgb) == want


# ---- containers and codecs -------------------------------------------------------------------

@pytest.mark.parametrize("ext,video,audio", [
    (".webm", "vp9", "opus"), (".ogv", "theora", "opus"), (".mpg", "mpeg2video", "mp2"),
    (".vob", "mpeg2video", "mp2"), (".avi", "h264", "mp3"), (".flv", "h264", "aac"), (".ts", "h264", "aac"),
    (".m4v", "h264", "aac"), (".3gp", "h264", "aac"), (".wmv", "h264", "aac"), (".mov", "h264", "aac"),
    (".f4v", "h264", "aac"),
])
def test_default_codec_fits_the_container(tmp_path, small, ext, video, audio):
    """No codec given: one the output container holds (VP9 for .webm, ...); every frame, in order."""
    src = small("plain")
    out = str(tmp_path / f"o{ext}")
    summary = process_video(src, out, [identity], progress=False)
    info = probe_video(out)
    assert info.codec == video and [s["codec"] for s in audio_streams(out)] == [audio]
    assert summary["frames"] == info.n_frames == N
    assert [read_barcode(f) for f in iter_frames(out)] == list(range(N))


def _mp4_opus():
    return "opus" if (ffmpeg_features()["version"] or (99,)) >= (5, 0) else "aac"


@pytest.mark.parametrize("source,ext,want", [
    ("libopus", ".mov", "aac"), ("libopus", ".flv", "aac"), ("libopus", ".avi", "mp3"), ("libopus", ".m4v", "aac"),
    ("libopus", ".mp4", "mp4-opus"), ("flac", ".mov", "aac"), ("flac", ".ts", "aac"), ("flac", ".ogv", "flac"),
    ("pcm_s16le", ".flv", "aac"), ("pcm_s16le", ".mp4", "aac"), ("pcm_s16le", ".mov", "pcm_s16le"),
    ("libvorbis", ".ts", "aac"), ("libvorbis", ".f4v", "aac"), ("libmp3lame", ".m4v", "aac"),
    ("libmp3lame", ".3gp", "aac"), ("alac", ".wmv", "aac"), ("ac3", ".webm", "opus"), ("ac3", ".mpg", "ac3"),
])
def test_audio_the_container_cannot_hold_is_converted(tmp_path, small, source, ext, want):
    src = small(f"a:{source}")
    out = str(tmp_path / f"o{ext}")
    process_video(src, out, [identity], progress=False)
    assert [s["codec"] for s in audio_streams(out)] == [_mp4_opus() if want == "mp4-opus" else want]
    assert probe_video(out).n_frames == N


def test_flv_keeps_one_audio_stream(tmp_path, small, caplog):
    out = str(tmp_path / "o.flv")
    with caplog.at_level("WARNING", logger="ppgan.video"):
        process_video(small("two-audio"), out, [identity], progress=False)
    assert [(s["type"], s["codec"]) for s in probe_streams(out)] == [("video", "h264"), ("audio", "aac")]
    assert "flv holds one audio stream" in caplog.text and "subrip subtitles are not kept" in caplog.text


BAD_PAIRS = [  # (output extension, codec, words of the one-line error)
    (".webm", "libx264", r"a \.webm file cannot hold h264 video \(libx264\): pass --codec libvpx-vp9"),
    (".webm", "mpeg4", r"cannot hold mpeg4 video \(mpeg4\): pass --codec libvpx-vp9"),
    (".ogv", "libx264", r"pass --codec libtheora"),
    (".mp4", "aac", r"aac is an audio encoder; pass --codec libx264"),
    (".mkv", "mov_text", r"mov_text is a subtitle encoder"),
    (".mp4", "no_such_codec", r"unknown video encoder 'no_such_codec'"),
    (".mp4", 264, r"unknown video encoder 264"),
    (".3gp", "libvpx-vp9", r"cannot write .* with these settings: .*\(--codec libx264 fits \.3gp\)"),
    (".h264", None, r"cannot write raw H\.264 streams \(\.h264\): choose another output extension"),
    (".hevc", None, r"cannot write raw HEVC streams"),
    (".y4m", None, r"cannot write YUV4MPEG files"),
    (".dv", None, r"cannot write DV files"),
    (".mxf", None, r"cannot write MXF files"),
    (".divx", None, r"cannot write DivX files"),
]


@pytest.mark.parametrize("ext,codec,words", BAD_PAIRS)
def test_codec_and_container_that_do_not_fit_are_one_line(tmp_path, small, ext, codec, words):
    src = small("plain")
    calls = []

    def count(frames):
        calls.append(len(frames))
        return frames

    with pytest.raises(VideoError, match=words) as e:
        process_video(src, str(tmp_path / "new" / f"o{ext}"), [count], codec=codec, progress=False)
    assert "\n" not in str(e.value) and calls == [] and os.listdir(tmp_path) == []


CLI = textwrap.dedent("""
    import sys
    from ppgan.utils.errors import USER_ERRORS, report
    from ppgan.video import process_video

    src = sys.argv[1]
    for out, codec in zip(sys.argv[2::2], sys.argv[3::2]):  # what the apps' run_main does, for each
        try:
            process_video(src, out, [lambda f: f], codec=codec or None, progress=False)
            rc = 0
        except USER_ERRORS as e:
            rc = report(e)
        print(rc, flush=True)
        sys.stderr.flush()
""")


def test_cli_gets_one_error_line_each(tmp_path, small):
    cases = [(".webm", "libx264"), (".y4m", ""), (".mp4", "nope"), (".3gp", "libvpx-vp9"), (".dv", "")]
    args = [a for ext, codec in cases for a in (str(tmp_path / "new" / f"o{ext}"), codec)]
    res = subprocess.run([sys.executable, "-c", CLI, small("plain"), *args], env=ENV, capture_output=True, text=True,
                         timeout=180)
    assert res.returncode == 0 and "Traceback" not in res.stderr
    assert res.stdout.split() == ["2"] * len(cases)
    lines = res.stderr.splitlines()
    assert len(lines) == len(cases) and all(line.startswith("error: ") for line in lines)
    assert os.listdir(tmp_path) == []


# ---- an ffmpeg that crashes ------------------------------------------------------------------

@pytest.mark.parametrize("sig", ["SEGV", "ABRT", "KILL"])
def test_crashing_ffmpeg_is_one_line(tmp_path, small, monkeypatch, sig):
    fake = tmp_path / "ffmpeg"
    fake.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        case "$*" in
          *-version*) echo "ffmpeg version 6.1-crashy"; exit 0 ;;
          *"-h long"*) echo "-fps_mode"; exit 0 ;;
        esac
        kill -{sig} $$
        """))
    fake.chmod(0o755)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(fake))
    with pytest.raises(VideoError, match=rf"cannot read .*: ffmpeg crashed \(SIG{sig}\)$"):
        probe_video(small("plain"))
    with pytest.raises(VideoError, match=rf"ffmpeg crashed \(SIG{sig}\)"):
        process_video(small("plain"), str(tmp_path / "o.mp4"), [identity], progress=False)
    assert sorted(os.listdir(tmp_path)) == ["ffmpeg"]

"""Probing: exact frame rate and count, streams, colour tags, rotation, VFR, what is a video."""
import os
from fractions import Fraction

import cv2
import numpy as np
import pytest

from ppgan.video import is_video_file, iter_frames, probe_video
from ppgan.video.synthetic import _source_image, make_test_video, render_frame
from video_helpers import NTSC24, NTSC30, psnr
from video_helpers import vids  # noqa: F401 (a fixture)


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

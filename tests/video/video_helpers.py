"""Helpers of the video tests: the shared test videos (`vids`, a session fixture: import it into a
test module to use it), decoding, PSNR, simple stages, audio/video offsets. Test videos are small
(96x64) pans over scikit-image photos with a frame barcode and audio clicks (`ppgan.video.synthetic`)."""
import os
from fractions import Fraction

import cv2
import numpy as np
import pytest

from ppgan.video import iter_frames, probe_streams, probe_video
from ppgan.video.synthetic import decode_audio, find_clicks, make_test_video, read_barcode

NTSC24 = Fraction(24000, 1001)
NTSC30 = Fraction(30000, 1001)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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


@pytest.fixture(scope="session")
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

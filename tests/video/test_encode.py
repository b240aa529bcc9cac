"""VideoWriter: audio_from, atomic output, argument checks."""
import os

import numpy as np
import pytest

from ppgan.video import VideoError, VideoWriter, probe_video
from video_helpers import NTSC30, decode
from video_helpers import vids  # noqa: F401 (a fixture)


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

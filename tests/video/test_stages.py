"""Stages: latency (held-back frames), frame-count and size rules, ffmpeg failures mid-job."""
import json
import os
import signal
import time

import numpy as np
import pytest

from ppgan.video import FrameStage, VideoError, process_video
from ppgan.video.synthetic import make_test_video, read_barcode
from video_helpers import decode, upscale2
from video_helpers import vids  # noqa: F401 (a fixture)


# ---- stages ----------------------------------------------------------------------------------

class OneBatchLate(FrameStage):
    """Returns each batch on the next push; flush returns the last one."""

    def reset(self, start_frame):
        self.held = []

    def push(self, frames):
        out, self.held = self.held, [255 - f for f in frames]
        return out

    def flush(self):
        out, self.held = self.held, []
        return out

    def identity(self):
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
    # no chunk was finished, so there is nothing to resume: no parts folder is left either
    assert os.listdir(tmp_path) == []


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

    killer.identity = "identity"
    with pytest.raises(VideoError, match="decoding" if victim == "decoder" else "encoding"):
        process_video(long_clip["path"], out, [killer], batch_size=3, chunk_seconds=0.5, progress=False)
    assert not _children_ffmpeg()
    assert sorted(os.listdir(tmp_path)) == ["o.mp4.ppgan-parts"]
    # frames decoded before the kill may complete more chunks; never a temp file
    left = sorted(os.listdir(tmp_path / "o.mp4.ppgan-parts"))
    n_done = len(json.load(open(tmp_path / "o.mp4.ppgan-parts" / "manifest.json"))["done"])
    assert left == [f"chunk_{k:05d}.mp4" for k in range(n_done)] + ["manifest.json"] and n_done >= 1
    # the next run picks up from there (a function's `identity` attribute names it in the resume key)
    seen = []

    def plain(frames):
        seen.extend(frames)
        return frames

    plain.identity = killer.identity
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
    with pytest.raises(VideoError, match="cannot hold h264 video .libx264.: pass --codec libvpx"):
        process_video(vids["mp4"]["path"], str(tmp_path / "o.webm"), [count], codec="libx264", progress=False)
    assert calls == [] and os.listdir(tmp_path) == []  # not even a parts folder


def test_size_change_between_frames_raises(tmp_path, vids):
    calls = []

    def grow(frames):
        calls.append(1)
        return upscale2(frames) if len(calls) > 1 else frames

    with pytest.raises(VideoError, match="size changed from 96x64 to 192x128"):
        process_video(vids["mp4"]["path"], str(tmp_path / "o.mp4"), [grow], progress=False)

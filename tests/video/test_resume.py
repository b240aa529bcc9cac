"""Resumable jobs: in-process and killed runs continue where they stopped, with the same output."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from ppgan.video import FrameStage, probe_video, process_video
from ppgan.video.synthetic import read_barcode
from video_helpers import NTSC24, ROOT, audio_streams, decode, upscale2
from video_helpers import vids  # noqa: F401 (a fixture)


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

    def identity(self):
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
    assert "encoder options changed (crf 18 -> 23): starting over" in caplog.text
    # resume=False starts over too
    with pytest.raises(RuntimeError):
        process_video(made["path"], out, [FailAfter(30)], chunk_seconds=0.5, progress=False)
    stage = FailAfter()
    assert process_video(made["path"], out, [stage], chunk_seconds=0.5, resume=False,
                         progress=False)["resumed_chunks"] == 0 and stage.seen == 48


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from ppgan.video import FrameStage, process_video

    class SlowNegative(FrameStage):
        def __init__(self, delay, log):
            self.delay, self.log = delay, log
        def reset(self, start_frame):  # the index of the next frame push() gets, one line per chunk
            with open(self.log + ".starts", "a") as f:
                f.write(f"{start_frame}\\n")
        def push(self, frames):
            with open(self.log, "a") as f:
                f.write("x" * len(frames))
            time.sleep(self.delay * len(frames))
            return [255 - f for f in frames]
        def identity(self):
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


def _recorded_chunks(parts):
    """The chunks the manifest records as done ({} while there is none, or no manifest yet). The
    manifest is replaced atomically, so a reader never sees half of it."""
    try:
        with open(os.path.join(parts, "manifest.json")) as f:
            return json.load(f).get("done") or {}
    except FileNotFoundError:
        return {}


def test_kill_and_resume_gives_identical_output(tmp_path, vids):
    made = vids["mp4"]  # 48 frames at 23.976: chunks of 6 frames
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    out = str(tmp_path / "killed.mp4")
    parts = out + ".ppgan-parts"
    log1, log2 = str(tmp_path / "calls1"), str(tmp_path / "calls2")
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, made["path"], out, "0.03", log1], env=env)
    try:
        deadline = time.time() + 60
        while not _recorded_chunks(parts):  # the commit point: the manifest names a finished chunk
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
    # reset(start_frame): every chunk start, in video frame indices; the resumed run starts at the
    # first frame not yet done (chunks of 6 frames), the killed one started at 0
    starts1 = [int(v) for v in open(log1 + ".starts").read().split()]
    starts2 = [int(v) for v in open(log2 + ".starts").read().split()]
    assert starts1[: done_frames // 6 + 1] == list(range(0, done_frames + 1, 6))
    assert starts2 == list(range(done_frames, 48, 6)) and done_frames % 6 == 0
    assert not os.path.exists(parts)

    ref = str(tmp_path / "ref.mp4")
    res = subprocess.run([sys.executable, "-c", KILL_SCRIPT, made["path"], ref, "0", str(tmp_path / "calls3")],
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    got, want = decode(out), decode(ref)
    assert len(got) == len(want) == 48
    with open(out, "rb") as a, open(ref, "rb") as b:
        assert a.read() == b.read()  # not only the same frames: the same file
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


def test_crash_during_final_join_resumes_with_join_only(tmp_path, vids, monkeypatch):
    import ppgan.video.pipeline as pipeline

    real = pipeline._finish
    monkeypatch.setattr(pipeline, "_finish", lambda *a: (_ for _ in ()).throw(RuntimeError("disk full")))
    out = str(tmp_path / "j.mkv")
    with pytest.raises(RuntimeError, match="disk full"):
        process_video(vids["mkv"]["path"], out, [upscale2], chunk_seconds=0.5, progress=False)
    monkeypatch.setattr(pipeline, "_finish", real)
    calls = []

    def counted(frames):
        calls.append(len(frames))
        return upscale2(frames)

    counted.identity = f"{upscale2.__module__}.{upscale2.__qualname__}"  # upscale2's own identity
    summary = process_video(vids["mkv"]["path"], out, [counted], chunk_seconds=0.5, progress=False)
    assert calls == [] and summary["resumed_chunks"] == summary["chunks"] == 4
    assert [read_barcode(f) for f in decode(out)] == list(range(vids["mkv"]["n_frames"]))


# A job killed at an exact point: after chunk k's file is in place but before the manifest records it
# ("chunk:k"), or after the joined output is written but before it is renamed into place ("join").
HOOK_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import ppgan.video.pipeline as pipeline
    from ppgan.video import process_video

    def negative(frames):
        return [255 - f for f in frames]

    src, out, point = sys.argv[1], sys.argv[2], sys.argv[3]
    real_close, real_replace = pipeline._ChunkWriter.close, os.replace

    def close(self, name):
        entry = real_close(self, name)
        if point == "chunk:" + str(int(name[6:11])):
            assert os.path.isfile(self.path)
            os.kill(os.getpid(), signal.SIGKILL)
        return entry

    def replace(a, b, *args, **kw):
        if point == "join" and os.path.abspath(b) == os.path.abspath(out):
            assert os.path.isfile(a)
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(a, b, *args, **kw)

    pipeline._ChunkWriter.close = close
    os.replace = replace
    negative.identity = "negative"
    process_video(src, out, [negative], chunk_seconds=0.5, progress=False)
""")


@pytest.mark.parametrize("point", ["chunk:0", "chunk:2", "join"])
def test_killed_between_chunk_file_and_manifest_resumes_byte_identical(tmp_path, vids, point):
    """SIGKILL right after a chunk file (or the joined output) is written, before the manifest (or
    the rename) records it: the re-run discards the unrecorded chunk, encodes it again and writes a
    file byte-identical to an uninterrupted run's, with its audio."""
    made = vids["mp4"]  # 48 frames, chunks of 12
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    out, ref = str(tmp_path / "k.mp4"), str(tmp_path / "ref.mp4")
    parts = out + ".ppgan-parts"
    res = subprocess.run([sys.executable, "-c", HOOK_SCRIPT, made["path"], out, point], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == -signal.SIGKILL, res.stderr
    assert not os.path.exists(out)
    recorded = json.load(open(os.path.join(parts, "manifest.json")))["done"]
    if point == "join":
        assert sorted(recorded) == ["0", "1", "2", "3"]
        assert any(n.startswith(".output") for n in os.listdir(parts))  # the joined file, never renamed
    else:
        k = int(point.split(":")[1])
        assert sorted(recorded) == [str(i) for i in range(k)]
        assert os.path.isfile(os.path.join(parts, f"chunk_{k:05d}.mp4"))  # written, not recorded

    seen = []

    def negative(frames):
        seen.append(len(frames))
        return [255 - f for f in frames]

    negative.identity = "negative"
    summary = process_video(made["path"], out, [negative], chunk_seconds=0.5, progress=False)
    redone = 0 if point == "join" else 48 - 12 * int(point.split(":")[1])
    assert sum(seen) == redone and summary["resumed_chunks"] == (48 - redone) // 12
    assert not os.path.exists(parts)
    res = subprocess.run([sys.executable, "-c", HOOK_SCRIPT, made["path"], ref, "none"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    with open(out, "rb") as a, open(ref, "rb") as b:
        assert a.read() == b.read()
    assert [read_barcode(255 - f) for f in decode(out)] == list(range(48))
    assert [s["codec"] for s in audio_streams(out)] == ["aac"]

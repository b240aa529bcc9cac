"""One job per output (an OS lock on the parts folder), parts of other jobs never joined, and a failed
job that leaves nothing behind."""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from ppgan.video import VideoError, process_video
from ppgan.video.synthetic import read_barcode
from video_helpers import ROOT, decode, upscale2
from video_helpers import vids  # noqa: F401 (a fixture)

ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")

# Job A: negative frames; its first push says so (the `ready` file) and waits for the `gate` file, so
# the test decides how long A holds the output.
GATED_JOB = textwrap.dedent("""
    import os, sys, time
    from ppgan.video import process_video

    src, out, ready, gate = sys.argv[1:5]

    def negative(frames):
        if not os.path.exists(ready):
            open(ready, "w").close()
        deadline = time.time() + 60
        while not os.path.exists(gate) and time.time() < deadline:
            time.sleep(0.02)
        return [255 - f for f in frames]

    negative.identity = "negative"
    process_video(src, out, [negative], chunk_seconds=0.5, progress=False)
""")

# A CLI in miniature: process_video as the apps' run_main runs it (one `error:` line, exit code 2).
CLI = textwrap.dedent("""
    import sys
    from ppgan.utils.errors import USER_ERRORS, report
    from ppgan.video import process_video

    src, out = sys.argv[1], sys.argv[2]
    try:
        process_video(src, out, [lambda f: f], progress=False)
    except USER_ERRORS as e:
        sys.exit(report(e))
""")


def negative(frames):
    return [255 - f for f in frames]


negative.identity = "negative"


def _start_gated(src, out, tmp_path):
    ready, gate = str(tmp_path / "ready"), str(tmp_path / "gate")
    proc = subprocess.Popen([sys.executable, "-c", GATED_JOB, src, out, ready, gate], env=ENV,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not os.path.exists(ready):
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline, "job A did not start"
        time.sleep(0.02)
    return proc, gate


def _check_negative_output(path, n=48):
    frames = decode(path)
    assert {f.shape for f in frames} == {(64, 96, 3)}
    assert [read_barcode(255 - f) for f in frames] == list(range(n))


def test_second_job_on_a_locked_output_fails_at_once_and_the_first_is_unharmed(tmp_path, vids):
    src = vids["mp4"]["path"]
    out = str(tmp_path / "same.mp4")
    (tmp_path / "sub").mkdir()
    os.symlink(tmp_path, tmp_path / "link")
    proc, gate = _start_gated(src, out, tmp_path)
    try:
        calls = []

        def counted_upscale(frames):
            calls.append(len(frames))
            return upscale2(frames)

        # bad inputs: another model, the same model, resume=False, the same output spelled two other ways
        attempts = [(out, [counted_upscale], {}), (out, [negative], {}), (out, [counted_upscale], {"resume": False}),
                    (str(tmp_path / "sub" / ".." / "same.mp4"), [counted_upscale], {}),
                    (str(tmp_path / "link" / "same.mp4"), [counted_upscale], {})]
        for path, stages, kw in attempts:
            t0 = time.perf_counter()
            with pytest.raises(VideoError, match=rf"^another ppgan job is writing .*same\.mp4 \(pid {proc.pid}\)") as e:
                process_video(src, path, stages, chunk_seconds=0.5, progress=False, **kw)
            assert time.perf_counter() - t0 < 10 and "\n" not in str(e.value)
        assert calls == []
        # the same from a command line: one line, exit code 2
        res = subprocess.run([sys.executable, "-c", CLI, src, out], env=ENV, capture_output=True, text=True,
                             timeout=120)
        assert res.returncode == 2 and "Traceback" not in res.stderr
        assert res.stderr.splitlines() == [res.stderr.strip()] and res.stderr.startswith(
            f"error: another ppgan job is writing {out} (pid {proc.pid})")
    finally:
        open(gate, "w").close()
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    assert not os.path.exists(out + ".ppgan-parts")
    _check_negative_output(out)  # only job A's frames, one size


def test_lock_of_a_killed_job_is_released_by_the_os(tmp_path, vids):
    src = vids["mp4"]["path"]
    out = str(tmp_path / "o.mp4")
    proc, _ = _start_gated(src, out, tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert os.path.exists(os.path.join(out + ".ppgan-parts", "job.lock"))  # the file stays, its lock does not
    summary = process_video(src, out, [upscale2], chunk_seconds=0.5, progress=False)
    assert summary["size"] == (192, 128) and summary["resumed_chunks"] == 0
    assert not os.path.exists(out + ".ppgan-parts")


# ---- parts of another job are never joined ------------------------------------------------------

class FailAfter:
    """negative(); raises once it has seen `limit` frames."""

    def __init__(self, limit):
        self.limit, self.seen = limit, 0

    def reset(self, start_frame):
        pass

    def push(self, frames):
        self.seen += len(frames)
        if self.seen > self.limit:
            raise RuntimeError("simulated crash")
        return negative(frames)

    def flush(self):
        return []

    def identity(self):
        return "negative"


def _edit_manifest(parts, fn):
    path = os.path.join(parts, "manifest.json")
    with open(path) as f:
        manifest = json.load(f)
    fn(manifest["done"])
    with open(path, "w") as f:
        json.dump(manifest, f)


def _swap_in_other_chunk(parts, tmp_path, src):
    other = str(tmp_path / "other.mp4")  # chunk 1 of a job with another model: 192x128 frames
    process_video(src, other, [upscale2], chunk_seconds=0.5, keep_parts=True, progress=False)
    shutil.copy(os.path.join(other + ".ppgan-parts", "chunk_00001.mp4"), os.path.join(parts, "chunk_00001.mp4"))


def _truncate(parts, *_):
    path = os.path.join(parts, "chunk_00000.mp4")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _orphans(parts, *_):
    with open(os.path.join(parts, "chunk_00002.mp4"), "wb") as f:
        f.write(b"not a video")
    shutil.copy(os.path.join(parts, "chunk_00000.mp4"), os.path.join(parts, "chunk_00003.mp4"))


TAMPER = {  # name: (change to the parts of an interrupted run with chunks 0 and 1 done, chunks reused)
    "another chunk file": (_swap_in_other_chunk, 1),
    "size edited": (lambda parts, *_: _edit_manifest(parts, lambda d: d["1"].update(size=[192, 128])), 1),
    "sha256 edited": (lambda parts, *_: _edit_manifest(parts, lambda d: d["0"].update(sha256="0" * 64)), 0),
    "entry not a dict": (lambda parts, *_: _edit_manifest(parts, lambda d: d.update({"0": "chunk_00000.mp4"})), 0),
    "entry outside the folder": (lambda parts, *_: _edit_manifest(
        parts, lambda d: d["1"].update(file="../../chunk_00001.mp4")), 1),
    "bytes missing": (lambda parts, *_: _edit_manifest(parts, lambda d: d["0"].pop("bytes")), 0),
    "truncated chunk": (_truncate, 0),
    "unlisted chunk files": (_orphans, 2),
}


@pytest.mark.parametrize("tamper", list(TAMPER))
def test_resume_reuses_only_intact_chunks_of_the_same_job(tmp_path, vids, tamper):
    src = vids["mp4"]["path"]  # 48 frames, chunks of 12
    out = str(tmp_path / "t.mp4")
    parts = out + ".ppgan-parts"
    with pytest.raises(RuntimeError, match="simulated crash"):
        process_video(src, out, [FailAfter(30)], chunk_seconds=0.5, progress=False)
    change, reused = TAMPER[tamper]
    change(parts, tmp_path, src)
    stage = FailAfter(10 ** 6)
    summary = process_video(src, out, [stage], chunk_seconds=0.5, progress=False)
    assert summary["resumed_chunks"] == reused and stage.seen == 48 - 12 * reused
    _check_negative_output(out)
    assert not os.path.exists(parts)


def test_parts_of_another_model_are_discarded(tmp_path, vids, caplog):
    src = vids["mp4"]["path"]
    out = str(tmp_path / "m.mp4")
    with pytest.raises(RuntimeError):
        process_video(src, out, [FailAfter(30)], chunk_seconds=0.5, progress=False)
    with caplog.at_level("WARNING", logger="ppgan.video"):
        summary = process_video(src, out, [upscale2], chunk_seconds=0.5, progress=False)
    assert "stage 1 changed" in caplog.text and summary["resumed_chunks"] == 0
    frames = decode(out)
    assert {f.shape for f in frames} == {(128, 192, 3)}
    assert [read_barcode(f) for f in frames] == list(range(48))  # not one negative frame


def test_chunk_changed_before_the_join_is_an_error(tmp_path, vids):
    """Each chunk is checked again just before the join: a chunk file replaced meanwhile (another job
    writing into the same folder) stops the job with one line instead of joining it."""
    src = vids["mp4"]["path"]
    out = str(tmp_path / "j.mp4")
    parts = out + ".ppgan-parts"
    seen = []

    def meddle(frames):
        seen.append(len(frames))
        if sum(seen) == 48:  # the last batch: chunks 0-2 are recorded by now
            shutil.copy(os.path.join(parts, "chunk_00001.mp4"), os.path.join(parts, "chunk_00000.mp4"))
        return frames

    with pytest.raises(VideoError, match=r"chunk_00000.mp4 in .* changed after this job wrote it") as e:
        process_video(src, out, [meddle], chunk_seconds=0.5, progress=False)
    assert "\n" not in str(e.value) and not os.path.exists(out)


# ---- a failed job leaves nothing behind ---------------------------------------------------------

def _raise(exc):
    def stage(frames):
        raise exc
    return stage


FAILURES = {  # name: (output name, stage, process_video options, exception, message)
    "unknown codec": ("o.mp4", negative, {"codec": "no_such_codec"}, VideoError, "unknown video encoder"),
    "codec the container cannot hold": ("o.webm", negative, {"codec": "libx264"}, VideoError, "pass --codec"),
    "container the codec does not fit": ("o.3gp", negative, {"codec": "libvpx-vp9"}, VideoError,
                                         r"--codec libx264 fits \.3gp"),
    "bad encoder option": ("o.mp4", negative, {"extra_args": ["-no_such_option", "1"]}, VideoError,
                           "no_such_option"),
    "input-only container": ("o.y4m", negative, {}, VideoError, "cannot write YUV4MPEG"),
    "stage error": ("o.mp4", _raise(RuntimeError("model failed")), {}, RuntimeError, "model failed"),
    "interrupted": ("o.mkv", _raise(KeyboardInterrupt()), {}, KeyboardInterrupt, None),
    "bad frames": ("o.mp4", lambda fs: [f.astype(np.float32) for f in fs], {}, VideoError, "uint8"),
    "odd frame size": ("o.mp4", lambda fs: [f[:63, :95] for f in fs], {}, VideoError, "even frame size"),
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_failed_job_removes_only_the_folders_it_created(tmp_path, vids, failure):
    name, stage, kw, exc, words = FAILURES[failure]
    (tmp_path / "old").mkdir()
    for out in (tmp_path / "new" / "a" / "b" / name, tmp_path / "old" / "x" / name, tmp_path / "old" / name):
        with pytest.raises(exc, match=words):
            process_video(vids["mp4"]["path"], str(out), [stage], chunk_seconds=0.5, progress=False, **kw)
    assert sorted(os.listdir(tmp_path)) == ["old"] and os.listdir(tmp_path / "old") == []


def test_failed_job_keeps_finished_chunks_and_their_folders(tmp_path, vids):
    out = tmp_path / "new" / "a" / "o.mp4"
    with pytest.raises(RuntimeError):
        process_video(vids["mp4"]["path"], str(out), [FailAfter(30)], chunk_seconds=0.5, progress=False)
    assert os.listdir(tmp_path / "new" / "a") == ["o.mp4.ppgan-parts"]
    assert sorted(os.listdir(str(out) + ".ppgan-parts")) == ["chunk_00000.mp4", "chunk_00001.mp4", "manifest.json"]
    # a later job that fails before the parts are looked at (bad settings) leaves them as they are
    with pytest.raises(VideoError, match="no_such_option"):
        process_video(vids["mp4"]["path"], str(out), [FailAfter(10 ** 6)], chunk_seconds=0.5, progress=False,
                      extra_args=["-no_such_option", "1"])
    assert sorted(os.listdir(str(out) + ".ppgan-parts")) == ["chunk_00000.mp4", "chunk_00001.mp4", "manifest.json"]

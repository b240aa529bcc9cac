"""The resumable video job: `process_video(input, output, stages)`.

Decoding (a thread, `decode.iter_frames`), the stages (the calling thread: put the GPU work here)
and encoding (a thread per chunk file, `encode.VideoWriter`) overlap through bounded queues.

Resuming: the frames are processed in chunks of `chunk_seconds` (a whole number of frames); each
chunk is encoded to its own video-only file in `<output>.ppgan-parts/` beside a `manifest.json`
that records the job's identity: the input (path, size, mtime), every stage's `identity()` (for a
model: its weight files' sha256, precision, tile, overlap, ...) and the encoder options. A re-run
whose identity matches skips the finished chunks, and each stage is told by `reset(start_frame)`
which frame comes next; a different identity starts over and logs one line saying what changed
(e.g. "RealSRPredictor: weights changed (sha256 ab12cd34… -> 9f8e7d6c…): starting over").
Stages are reset at every chunk start, so a resumed run writes the same frames as an uninterrupted
one. When all chunks are done they are joined without re-encoding and muxed with the input's audio
and subtitles (see `encode`) into the output (atomic rename); the parts folder is removed.

One job at a time per output: the job holds an OS lock on `<output>.ppgan-parts/job.lock` (flock;
msvcrt on Windows) from before the preflight to the end, released by the OS if the process dies. A
second job on the same output fails at once ("another ppgan job is writing <output> (pid N)").
Each finished chunk's manifest entry records its frame size, byte count and sha256: a resumed run
reuses only chunk files that still match (the first that does not, and every chunk after it, is
redone; chunk files the manifest does not list, e.g. written just before a kill, are deleted and
encoded again), and before the join every chunk is checked again (one frame size, unchanged bytes),
so chunks of different jobs are never joined.

After a failure the output file is not created (or an existing one is left untouched) and no temp
file is left beside it; the parts folder stays, on purpose, when it holds finished chunks, so the
next run can resume. A job that fails before finishing a chunk (a bad input, bad encoder settings or
an output container that cannot hold them, which a preflight encode catches before any frame is
processed) leaves nothing: no parts folder, and no output folders that this call created. If the
process is killed (SIGKILL, power loss) the ffmpeg children exit on their own (end of input, broken
pipe) and temp files inside the parts folder are removed by the next run.

The job, step by step (one function each): `_plan` (probe, checks, chunking, identity and key),
`_open_parts` (preflight; keep or discard earlier parts), `_finished_chunks` (the intact prefix),
`_run_chunks` -> `_process_chunk` (decode -> stages -> `_ChunkWriter`), `_finish` (join and mux).
"""
import contextlib
import dataclasses
import errno
import hashlib
import itertools
import json
import logging
import math
import os
import re
import time
from fractions import Fraction

import numpy as np

from ..utils.errors import PPGANError
from ..utils.io import atomic_write_text, check_writable_dir, missing_dirs, remove_empty_dirs, same_file, sha256sum
from .decode import iter_frames
from .encode import (MOV_FAMILY, MP4_VIDEO_CODECS, VideoWriter, check_codec, check_output_container, container_of,
                     default_codec, stream_args, timescale)
from .ffmpeg import VideoError, ff_path, run
from .probe import probe_video, rate_str, read_packets
from .stages import StageChain, as_stages

log = logging.getLogger("ppgan.video")

_PARTS_SUFFIX = ".ppgan-parts"
_MANIFEST = "manifest.json"
_PARTS_FORMAT = "ppgan-video-parts/3"  # /2: stage identities in the key; /3: sha256 of each chunk
_LOCK = "job.lock"
# Temp files of a run (a killed run leaves them behind), and everything ppgan writes in a parts folder
# (the lock file aside: only the job holding it removes it).
_TEMP_PREFIXES = (".chunk_", ".output", "preflight", ".preflight", f".{_MANIFEST}.")
_OUR_PREFIXES = _TEMP_PREFIXES + ("chunk_", "concat.", _MANIFEST)


@dataclasses.dataclass
class _Job:
    """What one `process_video` call works on, fixed before the first frame."""

    info: object            # VideoInfo of the input
    input_path: str
    output_path: str        # absolute
    parts: str              # <output>.ppgan-parts
    chunk_frames: int
    n_chunks: int
    chunk_ext: str          # .mp4 or .mkv for the chunk files
    writer_kw: dict         # VideoWriter options (codec, crf, pix_fmt, color, extra_args)
    ident: dict             # input, stages, options: what the resume key is made of
    key: str                # sha256 of ident
    new_dirs: list = dataclasses.field(default_factory=list)  # output folders this call created, deepest first

    @property
    def fps(self):
        return self.info.fps


def process_video(input_path, output_path, stages, *, batch_size=4, chunk_seconds=10, crf=18, codec=None,
                  pix_fmt="yuv420p", resume=True, progress=True, keep_parts=False, extra_args=None):
    """Run every frame of a video through `stages` and write the result, keeping audio and subtitles.

    Decoding (thread), the stages (the calling thread: put the GPU work here) and encoding (thread)
    overlap through bounded queues; memory does not grow with the video's length. The output has the
    input's exact frame rate, frame count and duration, colour tags, and every audio/subtitle stream
    (copied, or converted where the container needs it; see `ppgan.video.encode`), in sync. VFR input
    is converted to constant rate at its average rate (see `iter_frames`).

    Args:
        input_path (str): the video.
        output_path (str): the result; its extension picks the container. Must differ from the input.
        stages (list): `FrameStage` objects or plain functions `f(list of frames) -> list of frames`
            (HxWx3 uint8 RGB); each stage's output feeds the next. The output frame size is what the
            last stage returns (e.g. x4 for SR) and must be the same for all frames.
        batch_size (int): frames pushed to the first stage at a time (a model stage runs them as one
            batch). Not part of the resume key, so a run that ran out of memory can resume with a
            smaller batch. Default: 4.
        chunk_seconds (float|None): length of a resumable chunk; None: one chunk. Default: 10.
        crf (int), codec (str|None), pix_fmt (str), extra_args (list|None): encoder settings
            (`VideoWriter`). codec None: one that fits the output container (libx264; VP9 for .webm;
            see `ppgan.video.encode`); one that does not fit is an error naming the one to use.
        resume (bool): reuse finished chunks from an interrupted run with the same identity (see the
            module docstring). False discards them. Default: True.
        progress (bool): show tqdm bars (frames, frames/s, ETA) for decoding, each stage and encoding.
            Default: True.
        keep_parts (bool): keep `<output>.ppgan-parts/` after success. Default: False.

    Returns:
        dict: frames (written), fps (Fraction), seconds (wall time of this call), output (path),
        duration (s of video), size ((width, height)), chunks, resumed_chunks, frames_per_second
        (processed in this call / seconds).

    Raises:
        VideoError: bad input/output path, unreadable video, a stage breaking the frame-count or
        frame-size rules, another job writing the same output, or an ffmpeg failure. Finished
        chunks stay in the parts folder for resuming.
    """
    t0 = time.perf_counter()
    stages = as_stages(stages)
    job, chain = _plan(input_path, output_path, stages, batch_size, chunk_seconds,
                       {"codec": codec, "crf": crf, "pix_fmt": pix_fmt, "extra_args": extra_args})
    lock = manifest = None
    try:
        lock = _PartsLock(job.parts, job.output_path)
        manifest = _open_parts(job, resume)
        done = _finished_chunks(job, manifest)
        first = len(done)
        skipped = sum(e["frames"] for e in done.values())
        if first:
            log.info("resuming %s at chunk %d of %d (%d frames already done)", job.output_path, first + 1,
                     job.n_chunks, skipped)
        bars = _Bars(job, chain, skipped, progress)
        try:
            processed = _run_chunks(job, chain, manifest, done, int(batch_size), bars)
            if not done:
                raise VideoError(f"no frames decoded from {job.input_path}")
            total = _finish(job, done)
        finally:
            bars.close()
        if not keep_parts:
            _remove_parts(job.parts, lock)
    except BaseException:
        # Nothing finished to resume from: leave nothing behind (the parts folder, unless an earlier
        # run's parts were in it and not looked at yet, and the folders made for the output).
        if lock is not None and (manifest is None and not lock.existed or manifest and not manifest.get("done")):
            _remove_parts(job.parts, lock)
        if not os.path.exists(job.parts):
            remove_empty_dirs(job.new_dirs)
        raise
    finally:
        if lock is not None:
            lock.release()
    seconds = time.perf_counter() - t0
    last = done[max(done)]
    return {"frames": total, "fps": job.fps, "seconds": seconds, "output": job.output_path,
            "duration": float(Fraction(total) / job.fps), "size": tuple(last["size"]), "chunks": len(done),
            "resumed_chunks": first, "frames_per_second": processed / seconds if seconds > 0 else 0.0}


# ---- 1. plan ---------------------------------------------------------------------------------

def _plan(input_path, output_path, stages, batch_size, chunk_seconds, encoder):
    """Probe the input, check the paths, cut the video into chunks and build the resume key from the
    stages' identities (after the cheap checks: an identity may hash weight files). Returns
    (_Job, StageChain)."""
    input_path = os.fspath(input_path)
    output_path = os.path.abspath(os.fspath(output_path))
    info = probe_video(input_path)
    if same_file(input_path, output_path):
        raise VideoError(f"output path is the input video: {output_path}")
    if not os.path.splitext(output_path)[1]:
        raise VideoError(f"output video needs a file extension (.mp4, .mkv, ...): {output_path}")
    check_output_container(output_path)
    if int(batch_size) < 1:
        raise VideoError(f"batch_size must be at least 1, got {batch_size}")
    if encoder["codec"] is None:
        encoder = {**encoder, "codec": default_codec(output_path)}
    else:
        check_codec(encoder["codec"], output_path)
    if chunk_seconds is None or chunk_seconds <= 0:
        chunk_frames = max(1, info.n_frames)
    else:
        chunk_frames = max(1, int(round(Fraction(chunk_seconds).limit_denominator(1000) * info.fps)))
    chain = StageChain(stages)
    st = os.stat(input_path)
    options = {"codec": encoder["codec"], "crf": encoder["crf"], "pix_fmt": encoder["pix_fmt"],
               "extra_args": [str(a) for a in (encoder["extra_args"] or [])], "chunk_frames": chunk_frames,
               "fps": rate_str(info.fps), "n_frames": info.n_frames}
    ident = {"input": os.path.abspath(input_path), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
             "stages": chain.identities, "options": options}
    folder = os.path.dirname(output_path)
    new_dirs = missing_dirs(folder)
    try:
        check_writable_dir(folder)  # the last check: a job refused earlier creates nothing
    except PPGANError as e:
        remove_empty_dirs(new_dirs)
        raise VideoError(str(e)) from None
    return _Job(info=info, input_path=input_path, output_path=output_path, parts=output_path + _PARTS_SUFFIX,
                chunk_frames=chunk_frames, n_chunks=max(1, math.ceil(info.n_frames / chunk_frames)),
                chunk_ext=".mp4" if encoder["codec"] in MP4_VIDEO_CODECS else ".mkv",
                writer_kw={**encoder, "color": info.color}, ident=ident,
                key=hashlib.sha256(json.dumps(ident, sort_keys=True).encode("utf-8")).hexdigest(),
                new_dirs=new_dirs), chain


# ---- 2. the parts folder ---------------------------------------------------------------------

class _PartsLock:
    """An exclusive OS lock on `<parts>/job.lock` (created with the parts folder), held by one job
    from its preflight to its end and released by the OS when the process dies. The file holds the
    holder's pid, for the message a second job gets."""

    _WIN_OFFSET = 1 << 20  # Windows locks a byte range: one far from the pid, which stays readable

    def __init__(self, parts, output_path):
        self.path = os.path.join(parts, _LOCK)
        # an earlier run left parts (resumable or stale): a job failing before it looks at them keeps them
        self.existed = os.path.isdir(parts) and any(n != _LOCK for n in os.listdir(parts))
        for _ in range(10):  # the holder may remove the file (or the folder) between our open and lock
            try:
                os.makedirs(parts, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except FileNotFoundError:
                continue
            except OSError as e:
                raise VideoError(f"cannot write {parts}: {e.strerror or e}") from None
            if not self._try_lock(fd):
                pid = self._holder(fd)
                os.close(fd)
                raise VideoError(f"another ppgan job is writing {output_path} (pid {pid}); wait for it to finish, "
                                 f"or choose another output")
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except OSError:
                same = False
            if same:
                self.fd = fd
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                    os.lseek(fd, 0, os.SEEK_SET)
                    os.write(fd, f"{os.getpid()}\n".encode("ascii"))
                return
            os.close(fd)  # locked a file its holder had just removed: lock the one there now
        raise VideoError(f"cannot lock {self.path}: it keeps disappearing")

    def _try_lock(self, fd):
        try:
            import fcntl
        except ImportError:
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return False
                log.warning("cannot lock %s (%s): nothing stops a second job on this output", self.path,
                            e.strerror or e)  # a file system without locks
            return True
        try:
            import msvcrt
        except ImportError:
            return True
        try:
            os.lseek(fd, self._WIN_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    @staticmethod
    def _holder(fd):
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            text = os.read(fd, 32).decode("ascii", "replace").strip()
        except OSError:
            text = ""
        return text if text.isdigit() else "unknown"

    def release(self):
        """Delete the lock file and unlock. (Deleted while still locked: a job that opened it
        meanwhile finds it gone once it gets the lock, and locks a new one.)"""
        fd, self.fd = getattr(self, "fd", None), None
        if fd is None:
            return
        if os.name != "nt":
            with contextlib.suppress(OSError):
                os.remove(self.path)
        os.close(fd)
        if os.name == "nt":  # an open file cannot be deleted there
            with contextlib.suppress(OSError):
                os.remove(self.path)


def _open_parts(job, resume):
    """Run the preflight encode in the (locked) parts folder and return the manifest to continue:
    the earlier run's when its key matches (its temp files removed), else a new one (earlier parts
    discarded, with one log line saying why)."""
    parts = job.parts
    existed = any(name != _LOCK for name in os.listdir(parts))
    _preflight(job)
    manifest = _read_manifest(parts) if existed else None
    if existed:
        why = _why_start_over(manifest, job, resume)
        if why:
            if manifest is not None or any(n != _LOCK for n in os.listdir(parts)):
                log.warning("%s: starting over (discarding earlier parts in %s)", why, parts)
            _clear_parts(parts)
            manifest = None
        else:
            for name in os.listdir(parts):  # temp files of a killed run
                if name.startswith(_TEMP_PREFIXES):
                    with contextlib.suppress(OSError):
                        os.remove(os.path.join(parts, name))
    if manifest is None:
        manifest = {"format": _PARTS_FORMAT, "key": job.key, **job.ident, "n_chunks": job.n_chunks, "done": {}}
    try:
        _write_manifest(parts, manifest)
    except OSError as e:
        raise VideoError(f"cannot write {parts}: {e.strerror or e}") from None
    return manifest


def _read_manifest(parts):
    try:
        with open(os.path.join(parts, _MANIFEST), encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _write_manifest(parts, manifest):
    atomic_write_text(os.path.join(parts, _MANIFEST), json.dumps(manifest, indent=1))


def _why_start_over(manifest, job, resume):
    """None when the earlier run's parts can be reused, else why not (for the log line)."""
    if resume is False:
        return "resume=False"
    if manifest is None:
        return "no readable manifest"
    if manifest.get("format") != _PARTS_FORMAT:
        return f"parts made by another ppgan version ({manifest.get('format')})"
    if manifest.get("key") == job.key:
        return None
    old, new = manifest, job.ident
    if any(old.get(k) != new[k] for k in ("input", "size", "mtime_ns")):
        return "input video changed"
    old_st, new_st = old.get("stages") or [], new["stages"]
    if len(old_st) != len(new_st):
        return f"stages changed ({len(old_st)} -> {len(new_st)} stages)"
    for i, (a, b) in enumerate(zip(old_st, new_st)):
        if a != b:
            return _stage_change(i, a, b)
    old_opt, new_opt = old.get("options") or {}, new["options"]
    for k in sorted(set(old_opt) | set(new_opt)):
        if old_opt.get(k) != new_opt.get(k):
            return f"encoder options changed ({k} {_short(old_opt.get(k))} -> {_short(new_opt.get(k))})"
    return "arguments changed"


def _stage_change(i, a, b):
    """What differs between two identities of stage i, in a few words."""
    if isinstance(a, dict) and isinstance(b, dict):
        name = b.get("stage") or f"stage {i + 1}"
        keys = sorted(set(a) | set(b), key=lambda k: (k != "weights", k))
        for k in keys:
            va, vb = a.get(k), b.get(k)
            if va == vb:
                continue
            if k == "weights" and isinstance(va, list) and isinstance(vb, list):
                x, y = next((x, y) for x, y in itertools.zip_longest(va, vb) if x != y)
                x, y = (f"{v[:8]}…" if isinstance(v, str) else "none" for v in (x, y))
                return f"{name}: weights changed (sha256 {x} -> {y})"
            return f"{name}: {k} changed ({_short(va)} -> {_short(vb)})"
    return f"stage {i + 1} changed ({_short(a)} -> {_short(b)})"


def _short(value, limit=60):
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _preflight(job):
    """Encode two tiny frames with the job's encoder settings and mux them with the input's streams
    into the output's container, so that a bad codec, option or container fails now, not after hours
    of processing at the final join."""
    chunk = os.path.join(job.parts, "preflight" + job.chunk_ext)
    out = os.path.join(job.parts, ".output-preflight" + os.path.splitext(job.output_path)[1])
    try:
        with VideoWriter(chunk, 64, 64, job.fps, **job.writer_kw) as w:
            for _ in range(2):
                w.write(np.zeros((64, 64, 3), np.uint8))
        args = ["-y", "-v", "error", "-i", chunk, "-t", "0.2", "-i", ff_path(job.input_path), "-map", "0:v:0",
                "-c:v", "copy"]
        args += stream_args(job.info.streams, 1, job.output_path, source=job.input_path, quiet=True)
        run(args + [out], f"cannot write {job.output_path}")
    except VideoError as e:
        codec, default = job.writer_kw["codec"], default_codec(job.output_path)
        hint = f" (--codec {default} fits {os.path.splitext(job.output_path)[1]})" if codec != default else ""
        raise VideoError(f"cannot write {job.output_path} with these settings: "
                         f"{str(e).split(': ', 1)[-1]}{hint}") from None
    finally:
        for path in (chunk, out):
            with contextlib.suppress(OSError):
                os.remove(path)


def _clear_parts(parts):
    """Delete the files this module puts in a parts folder (not the lock file)."""
    if not os.path.isdir(parts):
        return
    for name in os.listdir(parts):
        if name.startswith(_OUR_PREFIXES):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(parts, name))


def _remove_parts(parts, lock):
    """Delete the parts folder of a job that holds its lock: our files, the lock file, the folder."""
    _clear_parts(parts)
    lock.release()
    try:
        os.rmdir(parts)
    except FileNotFoundError:
        pass
    except OSError:
        if any(n != _LOCK for n in os.listdir(parts)):  # (job.lock alone: a new job on this output)
            log.warning("kept %s: it holds files ppgan did not write", parts)


def _chunk_intact(job, entry):
    """True when manifest entry `entry` names a chunk file that is there with the byte count and
    sha256 it was written with."""
    try:
        name, size = entry["file"], entry["size"]
        ok = (isinstance(name, str) and re.fullmatch(r"chunk_\d{5}\.(mp4|mkv)", name) is not None
              and isinstance(size, list) and len(size) == 2 and isinstance(entry["frames"], int))
        path = os.path.join(job.parts, name) if ok else None
        return bool(ok and os.path.isfile(path) and os.path.getsize(path) == entry["bytes"]
                    and sha256sum(path) == entry["sha256"])
    except (KeyError, TypeError):
        return False


def _finished_chunks(job, manifest):
    """{k: entry} of the finished chunks: the longest prefix whose files are intact (same bytes,
    same frame size). Trims the manifest to it, deletes the chunk files it does not list (a run
    killed after writing a chunk, before recording it) and keeps the manifest's 'complete' flag (an
    earlier run decoded to the end, so only the final join is left) only when nothing was trimmed."""
    listed = len(manifest["done"])
    done, size = {}, None
    for k in range(job.n_chunks):
        entry = manifest["done"].get(str(k))
        if not isinstance(entry, dict) or not _chunk_intact(job, entry) or size not in (None, entry["size"]):
            break
        done[k] = entry
        size = entry["size"]
    manifest["done"] = {str(k): v for k, v in done.items()}
    kept = {e["file"] for e in done.values()}
    for name in os.listdir(job.parts):
        if name.startswith("chunk_") and name not in kept:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(job.parts, name))
    # A video with fewer frames than its header said can leave planned chunks empty: "complete".
    manifest["complete"] = bool(manifest.get("complete")) and len(done) == listed and len(done) > 0
    return done


# ---- 3. the frames ---------------------------------------------------------------------------

class _Bars:
    """One tqdm bar per step, each with frames/s and ETA: frames encoded (the job's bar, kept at the
    end), frames decoded (updated by the decoder thread) and frames out of each stage."""

    def __init__(self, job, chain, skipped, progress):
        from tqdm import tqdm

        def bar(desc, position, leave=False):
            return tqdm(total=job.info.n_frames, initial=min(skipped, job.info.n_frames), unit="frame",
                        disable=not progress, desc=desc, dynamic_ncols=True, leave=leave, position=position)

        self.encode = bar(f"encode {os.path.basename(job.output_path)}", 0, leave=True)
        self.decode = bar("decode", 1)
        self.stages = [bar(name, 2 + i) for i, name in enumerate(chain.names)]
        chain.on_output = lambda i, n: self.stages[i].update(n)

    def decoded(self):
        self.decode.update(1)

    def encoded(self):
        self.encode.update(1)

    def close(self):
        for b in (*self.stages, self.decode, self.encode):
            b.close()


def _run_chunks(job, chain, manifest, done, batch_size, bars):
    """Process the chunks after the finished ones, recording each in the manifest as it completes.
    Returns the number of input frames processed."""
    first = len(done)
    if first >= job.n_chunks or manifest["complete"]:
        return 0
    frames = iter_frames(job.input_path, job.info, start_frame=first * job.chunk_frames, on_decoded=bars.decoded)
    size = tuple(done[first - 1]["size"]) if first else None
    processed = 0
    try:
        for k in range(first, job.n_chunks):
            n_in, entry, exhausted = _process_chunk(job, chain, frames, k, batch_size, size, bars)
            if entry is None:  # the video ended at the previous chunk's end
                break
            size = tuple(entry["size"])
            manifest["done"][str(k)] = done[k] = entry
            _write_manifest(job.parts, manifest)
            processed += n_in
            if exhausted:
                break
    finally:
        frames.close()
    manifest["complete"] = True
    _write_manifest(job.parts, manifest)
    return processed


def _process_chunk(job, chain, frames, k, batch_size, size, bars):
    """Chunk k: reset the stages to its first frame, push its frames through them in batches and
    encode the output to `chunk_<k>`. Returns (input frames, manifest entry or None when there
    were no frames, whether the decoder ran out)."""
    chain.reset(k * job.chunk_frames)
    name = f"chunk_{k:05d}{job.chunk_ext}"
    out = _ChunkWriter(os.path.join(job.parts, name), size, job.fps, job.writer_kw, bars.encoded)
    limit = job.chunk_frames if k < job.n_chunks - 1 else None  # the last chunk takes whatever is left
    n_in, exhausted = 0, False
    try:
        while limit is None or n_in < limit:
            want = batch_size if limit is None else min(batch_size, limit - n_in)
            batch = list(itertools.islice(frames, want))
            if not batch:
                exhausted = True
                break
            n_in += len(batch)
            out.write(chain.push(batch, k))
        out.write(chain.flush(k))
        if n_in == 0:
            out.abort()
            return 0, None, True
        return n_in, out.close(name), exhausted
    except BaseException:
        out.abort()
        raise


class _ChunkWriter:
    """Checks the frames the stages return (HxWx3 uint8, one size for the whole video) and encodes
    them to one chunk file; the encoder starts with the first frame, when the size is known."""

    def __init__(self, path, size, fps, writer_kw, on_encoded):
        self.path, self.size, self.fps = path, size, fps
        self.writer_kw, self.on_encoded = writer_kw, on_encoded
        self.writer = None
        self.frames = 0

    def write(self, frames):
        for fr in frames:
            if not isinstance(fr, np.ndarray) or fr.dtype != np.uint8 or fr.ndim != 3 or fr.shape[2] != 3:
                desc = f"{fr.dtype} {fr.shape}" if isinstance(fr, np.ndarray) else type(fr).__name__
                raise VideoError(f"stages must return HxWx3 uint8 RGB frames, got {desc}")
            fsize = (fr.shape[1], fr.shape[0])
            if self.size is None:
                self.size = fsize
            if fsize != self.size:
                raise VideoError(f"stage output size changed from {self.size[0]}x{self.size[1]} to "
                                 f"{fsize[0]}x{fsize[1]}; all frames of a video must have one size")
            if self.writer is None:
                self.writer = VideoWriter(self.path, self.size[0], self.size[1], self.fps,
                                          on_encoded=self.on_encoded, **self.writer_kw)
            self.writer.write(fr)
            self.frames += 1

    def close(self, name):
        """Finish the file; its manifest entry."""
        self.writer.close()
        return {"file": name, "frames": self.frames, "size": list(self.size), "bytes": os.path.getsize(self.path),
                "sha256": sha256sum(self.path)}

    def abort(self):
        if self.writer is not None:
            self.writer.abort()


# ---- 4. join ---------------------------------------------------------------------------------

def _chunk_start_us(k, chunk_frames, fps):
    """Start time of chunk k in whole microseconds (exact rational time, rounded once)."""
    return round(Fraction(k * chunk_frames) / fps * 1000000)


def _check_chunks(job, done, keys):
    """Before the join: the chunks are consecutive, of one frame size, and their files are the ones
    this job's manifest recorded (never another job's)."""
    first = done[keys[0]]["size"]
    for i, k in enumerate(keys):
        entry = done[k]
        if k != i:
            raise VideoError(f"chunk {i} of {job.parts} is missing; re-run to redo it")
        if entry["size"] != first:
            raise VideoError(f"chunk {k} in {job.parts} is {entry['size'][0]}x{entry['size'][1]}, chunk 0 "
                             f"{first[0]}x{first[1]}: parts of different jobs; re-run with --no_resume")
        if not _chunk_intact(job, entry):
            raise VideoError(f"{entry['file']} in {job.parts} changed after this job wrote it (another job on "
                             f"{job.output_path}?); re-run to redo it")


def _finish(job, done):
    """Join the chunk files losslessly and mux them with the input's other streams. Returns the
    number of frames written."""
    fps, parts, info, output_path = job.fps, job.parts, job.info, job.output_path
    keys = sorted(done)
    _check_chunks(job, done, keys)
    lines = ["ffconcat version 1.0"]
    for k in keys:
        d_us = _chunk_start_us(k + 1, job.chunk_frames, fps) - _chunk_start_us(k, job.chunk_frames, fps)
        if k == keys[-1]:
            d_us = round(Fraction(done[k]["frames"]) / fps * 1000000)
        lines += [f"file '{done[k]['file']}'", f"duration {d_us // 1000000}.{d_us % 1000000:06d}"]
    concat = os.path.join(parts, "concat.txt")
    with open(concat, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    ext = os.path.splitext(output_path)[1]
    tmp = os.path.join(parts, ".output" + ext)
    args = ["-y", "-v", "error"]
    if info.start_time > 0:
        args += ["-itsoffset", f"{info.start_time:.6f}"]
    args += ["-f", "concat", "-safe", "0", "-i", concat, "-i", ff_path(job.input_path), "-map", "0:v:0",
             "-c:v", "copy"]
    args += stream_args(info.streams, 1, output_path, source=job.input_path)
    args += ["-map_metadata", "1", "-map_chapters", "1"]
    if container_of(output_path) in MOV_FAMILY:
        args += ["-video_track_timescale", str(timescale(fps))]
    args.append(tmp)
    try:
        run(args, f"writing {output_path} failed")
        total = sum(done[k]["frames"] for k in keys)
        _, pkts, _ = read_packets(tmp, 0, f"checking {output_path}")
        if len(pkts) != total:
            raise VideoError(f"writing {output_path} failed: joined video has {len(pkts)} frames, expected {total}")
        os.replace(tmp, output_path)
    except OSError as e:
        raise VideoError(f"cannot write {output_path}: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)
    return total

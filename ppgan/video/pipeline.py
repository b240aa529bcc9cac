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

After a failure the output file is not created (or an existing one is left untouched) and no temp
file is left beside it; the parts folder stays, on purpose, so the next run can resume (bad encoder
settings, or an output container that cannot hold them, are caught by a preflight encode before any
frame is processed, and leave nothing). If the process is killed (SIGKILL, power loss) the ffmpeg
children exit on their own (end of input, broken pipe) and temp files inside the parts folder are
removed by the next run.

The job, step by step (one function each): `_plan` (probe, checks, chunking, identity and key),
`_open_parts` (preflight; keep or discard earlier parts), `_finished_chunks` (the intact prefix),
`_run_chunks` -> `_process_chunk` (decode -> stages -> `_ChunkWriter`), `_finish` (join and mux).
"""
import contextlib
import dataclasses
import hashlib
import itertools
import json
import logging
import math
import os
import time
from fractions import Fraction

import numpy as np

from ..utils.errors import PPGANError
from ..utils.io import atomic_write_text, check_writable_dir, same_file
from .decode import iter_frames
from .encode import MP4_VIDEO_CODECS, VideoWriter, container_of, stream_args, timescale
from .ffmpeg import VideoError, ff_path, run
from .probe import probe_video, rate_str, read_packets
from .stages import StageChain, as_stages

log = logging.getLogger("ppgan.video")

_PARTS_SUFFIX = ".ppgan-parts"
_MANIFEST = "manifest.json"
_PARTS_FORMAT = "ppgan-video-parts/2"  # /2: stage identities (weights, precision, ...) in the key
# Temp files of a run (a killed run leaves them behind), and everything ppgan writes in a parts folder.
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

    @property
    def fps(self):
        return self.info.fps


def process_video(input_path, output_path, stages, *, batch_size=4, chunk_seconds=10, crf=18, codec="libx264",
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
        crf (int), codec (str), pix_fmt (str), extra_args (list|None): encoder settings (`VideoWriter`).
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
        frame-size rules, or an ffmpeg failure. Finished chunks stay in the parts folder for resuming.
    """
    t0 = time.perf_counter()
    stages = as_stages(stages)
    job, chain = _plan(input_path, output_path, stages, batch_size, chunk_seconds,
                       {"codec": codec, "crf": crf, "pix_fmt": pix_fmt, "extra_args": extra_args})
    manifest = _open_parts(job, resume)
    done = _finished_chunks(job, manifest)
    first = len(done)
    skipped = sum(e["frames"] for e in done.values())
    if first:
        log.info("resuming %s at chunk %d of %d (%d frames already done)", job.output_path, first + 1, job.n_chunks,
                 skipped)
    bars = _Bars(job, chain, skipped, progress)
    try:
        processed = _run_chunks(job, chain, manifest, done, int(batch_size), bars)
        if not done:
            raise VideoError(f"no frames decoded from {job.input_path}")
        total = _finish(job, done)
    finally:
        bars.close()
    if not keep_parts:
        _clear_parts(job.parts, keep_dir=False)
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
    if int(batch_size) < 1:
        raise VideoError(f"batch_size must be at least 1, got {batch_size}")
    try:
        check_writable_dir(os.path.dirname(output_path))
    except PPGANError as e:
        raise VideoError(str(e)) from None
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
    return _Job(info=info, input_path=input_path, output_path=output_path, parts=output_path + _PARTS_SUFFIX,
                chunk_frames=chunk_frames, n_chunks=max(1, math.ceil(info.n_frames / chunk_frames)),
                chunk_ext=".mp4" if encoder["codec"] in MP4_VIDEO_CODECS else ".mkv",
                writer_kw={**encoder, "color": info.color}, ident=ident,
                key=hashlib.sha256(json.dumps(ident, sort_keys=True).encode("utf-8")).hexdigest()), chain


# ---- 2. the parts folder ---------------------------------------------------------------------

def _open_parts(job, resume):
    """Create the parts folder, run the preflight encode, and return the manifest to continue: the
    earlier run's when its key matches (its temp files removed), else a new one (earlier parts
    discarded, with one log line saying why)."""
    parts = job.parts
    existed = os.path.isdir(parts)
    try:
        os.makedirs(parts, exist_ok=True)
    except OSError as e:
        raise VideoError(f"cannot write {parts}: {e.strerror or e}") from None
    try:
        _preflight(job)
    except BaseException:
        if not existed:
            _clear_parts(parts, keep_dir=False)
        raise
    manifest = _read_manifest(parts) if existed else None
    if existed:
        why = _why_start_over(manifest, job, resume)
        if why:
            if manifest is not None or os.listdir(parts):
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
        raise VideoError(f"cannot write {job.output_path} with these settings: "
                         f"{str(e).split(': ', 1)[-1]}") from None
    finally:
        for path in (chunk, out):
            with contextlib.suppress(OSError):
                os.remove(path)


def _clear_parts(parts, keep_dir=True):
    """Delete the files this module puts in a parts folder (and the folder unless keep_dir)."""
    if not os.path.isdir(parts):
        return
    for name in os.listdir(parts):
        if name.startswith(_OUR_PREFIXES):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(parts, name))
    if not keep_dir:
        try:
            os.rmdir(parts)
        except OSError:
            log.warning("kept %s: it holds files ppgan did not write", parts)


def _finished_chunks(job, manifest):
    """{k: entry} of the finished chunks: the longest prefix whose files are intact. Trims the
    manifest to it and keeps its 'complete' flag (an earlier run decoded to the end, so only the
    final join is left) only when nothing was trimmed."""
    listed = len(manifest["done"])
    done = {}
    for k in range(job.n_chunks):
        entry = manifest["done"].get(str(k))
        path = os.path.join(job.parts, entry["file"]) if entry else None
        if not entry or not os.path.isfile(path) or os.path.getsize(path) != entry["bytes"]:
            break
        done[k] = entry
    manifest["done"] = {str(k): v for k, v in done.items()}
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
        return {"file": name, "frames": self.frames, "size": list(self.size), "bytes": os.path.getsize(self.path)}

    def abort(self):
        if self.writer is not None:
            self.writer.abort()


# ---- 4. join ---------------------------------------------------------------------------------

def _chunk_start_us(k, chunk_frames, fps):
    """Start time of chunk k in whole microseconds (exact rational time, rounded once)."""
    return round(Fraction(k * chunk_frames) / fps * 1000000)


def _finish(job, done):
    """Join the chunk files losslessly and mux them with the input's other streams. Returns the
    number of frames written."""
    fps, parts, info, output_path = job.fps, job.parts, job.info, job.output_path
    keys = sorted(done)
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
    if container_of(output_path) in ("mp4", "mov"):
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

"""Audio decoding: any file ffmpeg reads (also the audio track of a video) -> mono float32.

    read_audio(path, sample_rate=16000, start=0.0, duration=None) -> 1-D float32 array
    iter_audio(path, sample_rate=16000, block_seconds=10.0, ...)  -> the same, in blocks (streamed)

Both run the one ffmpeg binary (`ffmpeg.py`) with an argument list: the first audio stream (or
`stream`) is resampled by ffmpeg to `sample_rate` and written as 32-bit float WAV to a pipe; its
header gives the channel count, and the channels are averaged here (librosa's `to_mono`, which
PaddleGAN's loader applies; ffmpeg's own `-ac 1` would sum stereo at 1/sqrt(2) instead).
Timestamps are kept: a stream that starts after the file's time 0 is preceded by silence and
samples before time 0 (encoder delay) are dropped (`aresample=first_pts=0`), so sample k plays
k / sample_rate seconds after the start of the file, as the video frames do.
`start` / `duration` cut whole samples (round(t * sample_rate)) from that timeline.

Resampling is ffmpeg's (swresample); PaddleGAN's librosa.load resamples with resampy, so audio
not already at `sample_rate` differs slightly from PaddleGAN's. 16 kHz input is passed through.

Errors are one-line `AudioError`s (a `VideoError`): missing, empty or unreadable file, no audio
stream, no samples (or none after `start`), ffmpeg failing part-way.
"""
import contextlib
import logging
import math
import os
import struct
import subprocess
import tempfile

import numpy as np

from ..utils.errors import ConfigError
from .ffmpeg import VideoError, crash_message, ff_path, ffmpeg_args, kill, stderr_summary
from .probe import _probe_header

log = logging.getLogger("ppgan.video")

_WAVE_FLOAT, _WAVE_EXTENSIBLE = 3, 0xFFFE


class AudioError(VideoError):
    """An audio file (or a video's audio track) is missing, unreadable, empty or has no audio."""


def _check_args(path, sample_rate, start, duration, block_seconds=1.0):
    if not isinstance(path, (str, os.PathLike)):
        raise AudioError(f"audio path must be a string, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise AudioError(f"audio file not found: {path}")
    if os.path.isdir(path):
        raise AudioError(f"audio path is a folder, not a file: {path}")
    if os.path.getsize(path) == 0:
        raise AudioError(f"audio file is empty: {path}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ConfigError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    for name, value, lo in (("start", start, 0.0), ("block_seconds", block_seconds, None)):
        if not isinstance(value, (int, float)) or not math.isfinite(value) or \
                (value < lo if lo is not None else value <= 0):
            raise ConfigError(f"{name} must be a finite number {'>= 0' if lo is not None else '> 0'}, got {value!r}")
    if duration is not None and (not isinstance(duration, (int, float)) or not math.isfinite(duration)
                                 or duration <= 0):
        raise ConfigError(f"duration must be a positive number or None, got {duration!r}")
    return path


def audio_stream_index(path, stream=0):
    """Absolute index of the `stream`-th audio stream of `path`; AudioError when it has none."""
    try:
        header, _ = _probe_header(path)
    except VideoError as e:
        raise AudioError(str(e)) from None
    audio = [s["index"] for s in header["streams"] if s["type"] == "audio"]
    if not audio:
        raise AudioError(f"no audio stream in {path}")
    if not 0 <= stream < len(audio):
        raise AudioError(f"{path} has {len(audio)} audio stream(s), no audio stream {stream}")
    return audio[stream]


def _read_exact(pipe, n):
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = pipe.readinto(view[got:])
        if not k:
            break
        got += k
    return bytes(buf[:got])


def _read_wav_header(pipe, path):
    """Skip the WAV header on `pipe`; return the channel count (None when ffmpeg wrote nothing)."""
    head = _read_exact(pipe, 12)
    if not head:
        return None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise AudioError(f"decoding audio of {path}: ffmpeg did not write a WAV stream")
    channels = None
    for _ in range(64):  # fmt, fact, LIST, ... data
        chunk = _read_exact(pipe, 8)
        if len(chunk) < 8:
            raise AudioError(f"decoding audio of {path}: the WAV stream ends inside its header")
        cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if cid == b"data":
            if channels is None:
                raise AudioError(f"decoding audio of {path}: WAV stream without a format chunk")
            return channels
        body = _read_exact(pipe, size + (size & 1))
        if cid == b"fmt ":
            fmt, channels, _, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if fmt not in (_WAVE_FLOAT, _WAVE_EXTENSIBLE) or bits != 32 or channels < 1:
                raise AudioError(f"decoding audio of {path}: unexpected WAV format {fmt} / {bits} bits")
    raise AudioError(f"decoding audio of {path}: WAV header too long")


def iter_audio(path, sample_rate=16000, block_seconds=10.0, start=0.0, duration=None, stream=0):
    """Yield the audio of `path` as mono float32 blocks of round(block_seconds * sample_rate)
    samples (the last one shorter), streamed: memory does not grow with the file's length.

    Args:
        path (str): any file ffmpeg reads with an audio stream (wav, mp3, flac, m4a, mp4, mkv, ...).
        sample_rate (int): output rate in Hz. Default: 16000 (Wav2Lip's).
        block_seconds (float): block length. Default: 10.0.
        start (float): skip the first round(start * sample_rate) samples. Default: 0.0.
        duration (float|None): stop after round(duration * sample_rate) samples; None: to the end.
        stream (int): which audio stream (0 = the first). Default: 0.

    Raises:
        AudioError: missing / empty / unreadable file, no audio stream, no samples (after `start`),
            ffmpeg failing part-way. ConfigError: bad arguments.
    """
    path = _check_args(path, sample_rate, start, duration, block_seconds)
    index = audio_stream_index(path, stream)
    sample_rate = int(sample_rate)
    skip = int(round(start * sample_rate))
    limit = None if duration is None else max(1, int(round(duration * sample_rate)))
    block = max(1, int(round(block_seconds * sample_rate)))
    args = ffmpeg_args("-v", "error", "-i", ff_path(path), "-map", f"0:{index}", "-vn", "-sn", "-dn",
                       "-af", f"aresample={sample_rate}:first_pts=0", "-ar", str(sample_rate),
                       "-c:a", "pcm_f32le", "-fflags", "+bitexact", "-f", "wav", "-")
    return _audio_blocks(args, path, block, skip, limit, start)


def _audio_blocks(args, path, block, skip, limit, start):
    err = tempfile.TemporaryFile()
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, bufsize=0)
    except OSError as e:
        err.close()
        raise AudioError(f"cannot run ffmpeg: {e.strerror or e}") from None
    produced = 0
    try:
        channels = _read_wav_header(proc.stdout, path)
        pending = np.zeros(0, np.float32)
        if channels is not None:
            frame_bytes = 4 * channels
            chunk_frames = max(block, 1 << 14)
            while limit is None or produced < limit:
                raw = _read_exact(proc.stdout, chunk_frames * frame_bytes)
                usable = len(raw) // frame_bytes * frame_bytes
                if usable:
                    data = np.frombuffer(raw[:usable], "<f4").reshape(-1, channels)
                    mono = data[:, 0].copy() if channels == 1 else data.mean(axis=1, dtype=np.float32)
                    if skip:
                        cut = min(skip, len(mono))
                        mono, skip = mono[cut:], skip - cut
                    if limit is not None:
                        mono = mono[:limit - produced - len(pending)]
                    pending = np.concatenate([pending, mono]) if len(pending) else mono
                    while len(pending) >= block:
                        out, pending = pending[:block], pending[block:]
                        produced += len(out)
                        yield np.ascontiguousarray(out)
                if len(raw) < chunk_frames * frame_bytes:
                    break
                if limit is not None and produced + len(pending) >= limit:
                    break
            if len(pending):
                produced += len(pending)
                yield np.ascontiguousarray(pending)
        finished_early = limit is not None and produced >= limit
        if finished_early:
            return
        rc = proc.wait()
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
        if rc != 0:
            what = crash_message(rc, text) if rc < 0 else stderr_summary(text)
            raise AudioError(f"decoding audio of {path} failed: {what}")
        if produced == 0:
            if start:
                raise AudioError(f"no audio in {path} after {start:g} s (the audio ends before)")
            raise AudioError(f"no audio samples in {path} (empty or zero-length audio stream)")
        if text.strip():
            log.warning("decoding audio of %s: %s", path, stderr_summary(text))
    finally:
        kill(proc)
        with contextlib.suppress(OSError):
            proc.stdout.close()
        err.close()


def read_audio(path, sample_rate=16000, start=0.0, duration=None, stream=0):
    """The audio of `path` as one mono float32 array at `sample_rate` (see `iter_audio`, whose blocks
    it joins): sample k plays k / sample_rate s after the file's start (+ `start`).

    Raises:
        AudioError: missing / empty / unreadable file, no audio stream, no samples (after `start`).
        ConfigError: bad arguments.
    """
    blocks = list(iter_audio(path, sample_rate, block_seconds=60.0, start=start, duration=duration, stream=stream))
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)

"""Decoding: `iter_frames(path)` yields HxWx3 uint8 RGB frames, streamed.

A decoder thread reads ffmpeg's raw RGB output into a bounded queue, so decoding overlaps with
whatever the caller does with each frame and memory does not grow with the video. Rotated videos
come out upright (ffmpeg autorotates; `VideoInfo.width/height` are the displayed size).
Variable-frame-rate input is converted to constant rate at its average frame rate (`VideoInfo.fps`):
frames are repeated or dropped on that grid, so duration and audio sync are kept.
"""
import contextlib
import logging
import os
import queue
import subprocess
import tempfile
import threading

import numpy as np

from .ffmpeg import (END, SWS_FLAGS, Failure, VideoError, crash_message, drain, ff_path, ffmpeg_args, fps_mode_args,
                     kill, queue_size, stderr_summary)
from .probe import probe_video, rate_str

log = logging.getLogger("ppgan.video")


def iter_frames(path, info=None, start_frame=0, cfr=True, on_decoded=None):
    """Yield the frames of `path` as HxWx3 uint8 RGB arrays, streamed (bounded memory).

    A decoder thread reads ffmpeg's raw output into a bounded queue, so decoding overlaps with
    whatever the caller does with each frame. Rotated videos come out as displayed.

    Args:
        path (str): the video.
        info (VideoInfo|None): from `probe_video(path)`; probed when None.
        start_frame (int): skip this many frames first (counted exactly, after any VFR conversion;
            they are decoded but not transferred). Default: 0.
        cfr (bool): variable-frame-rate input is converted to constant rate at `info.fps` (its average
            rate): frames are repeated or dropped on that grid, which keeps the duration and the sync
            with the audio. False yields the decoded frames as they are. Constant-rate input is never
            changed. Default: True.
        on_decoded (callable|None): called with no arguments by the decoder thread after each frame
            it has read (e.g. a progress bar's update), before the frame is queued. Default: None.

    Raises:
        VideoError: unreadable file, decoder failure, or far fewer frames than the header promised.
    """
    info = info or probe_video(path)
    path = os.fspath(path)
    w, h = info.width, info.height
    filters = []
    convert = cfr and info.vfr
    if convert:
        filters.append(f"fps=fps={rate_str(info.fps)}")
    if start_frame:
        filters.append(f"trim=start_frame={int(start_frame)}")
    # Frame k gets timestamp k in units of 1/fps: raw output needs no timing, and ffmpeg 4.x's muxer
    # complains about repeated timestamps when a millisecond time base (Matroska) is rescaled.
    fps = info.fps
    filters += [f"settb={fps.denominator}/{fps.numerator}", "setpts=N", "format=rgb24"]
    args = ffmpeg_args("-v", "error", "-i", ff_path(path), "-map", f"0:{info.index}", "-an", "-sn", "-dn",
                       "-vf", ",".join(filters), "-sws_flags", SWS_FLAGS, *fps_mode_args("passthrough"),
                       "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
    return _frame_generator(args, path, w, h, info, start_frame, convert or not info.vfr, on_decoded)


def _frame_generator(args, path, w, h, info, start_frame, check_count, on_decoded=None):
    frame_bytes = w * h * 3
    q = queue.Queue(maxsize=queue_size(frame_bytes))
    stop = threading.Event()
    err = tempfile.TemporaryFile()
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                bufsize=0)
    except OSError as e:
        err.close()
        raise VideoError(f"cannot run ffmpeg: {e.strerror or e}") from None

    def put(item):
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader():
        try:
            stream = proc.stdout
            while not stop.is_set():
                frame = np.empty((h, w, 3), np.uint8)
                view = memoryview(frame).cast("B")
                got = 0
                while got < frame_bytes:
                    n = stream.readinto(view[got:])
                    if not n:
                        break
                    got += n
                if got == 0:
                    break
                if got < frame_bytes:
                    put(Failure(VideoError(f"decoding {path}: incomplete last frame ({got} of {frame_bytes} bytes)")))
                    return
                if on_decoded is not None:
                    on_decoded()
                if not put(frame):
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            put(Failure(e))
            return
        put(END)

    thread = threading.Thread(target=reader, name="ppgan-video-decode", daemon=True)
    thread.start()
    count = 0
    try:
        while True:
            item = q.get()
            if item is END:
                break
            if isinstance(item, Failure):
                raise item.exc
            count += 1
            yield item
        rc = proc.wait()
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
        if rc != 0:
            raise VideoError(f"decoding {path} failed: {crash_message(rc, text) if rc < 0 else stderr_summary(text)}")
        expected = max(0, info.n_frames - int(start_frame))
        if expected and count == 0:
            raise VideoError(f"decoding {path} produced no frames: {stderr_summary(text)}")
        if check_count and count < expected * 0.98 - 1:
            raise VideoError(f"decoding {path}: got only {count} of {expected} frames "
                             f"(damaged file?): {stderr_summary(text)}")
        if text.strip():
            log.warning("decoding %s: %s", path, stderr_summary(text))
    finally:
        stop.set()
        kill(proc)
        drain(q)
        thread.join(timeout=10)
        with contextlib.suppress(OSError):
            proc.stdout.close()
        err.close()

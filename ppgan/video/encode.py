"""Encoding: `VideoWriter` (RGB frames -> encoder thread -> ffmpeg stdin, written atomically) and the
mapping of an input's audio and subtitle streams into an output container.

Streams kept: every audio and subtitle stream of the input goes to the output. Each is stream-copied
when the output container can hold it, otherwise converted:
    .mp4/.m4v: audio aac, mp3, ac3, eac3, alac, opus, flac copied, others (pcm, vorbis, dts, ...) ->
        AAC 192 kb/s; text subtitles -> mov_text; bitmap subtitles (PGS, DVD) dropped.
    .mov: as .mp4, and PCM audio is copied too.
    .mkv: everything copied (mov_text subtitles -> srt).
    .webm: opus and vorbis copied, other audio -> Opus; WebVTT copied, other text subtitles ->
        WebVTT; bitmap subtitles dropped.
    .avi: mp3, ac3 and PCM copied, other audio -> MP3; subtitles dropped.
Data streams (timecodes), attachments (fonts) and extra video streams (cover art) are not kept. Each
dropped stream is logged as a warning.

A `VideoWriter` killed with its process (SIGKILL, power loss) can leave its hidden temp file
(`.<name>.XXXX.<ext>`) beside the output; ffmpeg itself exits at the end of its input.
"""
import contextlib
import functools
import logging
import math
import os
import queue
import re
import subprocess
import tempfile
import threading
from fractions import Fraction

import numpy as np

from ..utils.io import temp_beside
from .ffmpeg import (END, SWS_FLAGS, VideoError, drain, ff_path, ffmpeg_args, ffmpeg_exe, kill, queue_size, run,
                     stderr_summary)
from .probe import UNKNOWN, as_fraction, probe_streams, rate_str

log = logging.getLogger("ppgan.video")

# Encoders that take -crf.
CRF_CODECS = {"libx264", "libx264rgb", "libx265", "libvpx", "libvpx-vp9", "libaom-av1", "libsvtav1"}
# Video codecs an .mp4 can hold (the pipeline's chunk files); anything else goes into Matroska.
MP4_VIDEO_CODECS = {"libx264", "libx265", "mpeg4", "libxvid", "libaom-av1", "libsvtav1", "librav1e", "libvpx-vp9",
                    "h264_nvenc", "hevc_nvenc", "av1_nvenc", "h264_vaapi", "hevc_vaapi", "h264_qsv", "hevc_qsv",
                    "libopenh264"}
_TEXT_SUBS = {"subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text", "microdvd", "subviewer", "sami",
              "jacosub", "realtext", "stl", "vplayer", "pjs", "mpl2", "eia_608"}
_COLOR_MATRICES = {"bt709": "bt709", "bt470bg": "bt470bg", "smpte170m": "smpte170m", "bt601": "bt601",
                   "fcc": "fcc", "smpte240m": "smpte240m", "bt2020nc": "bt2020nc", "bt2020c": "bt2020"}


# ---- stream mapping --------------------------------------------------------------------------

def container_of(path):
    ext = os.path.splitext(path)[1].lower()
    if ext in (".mp4", ".m4v"):
        return "mp4"
    if ext in (".mov", ".qt"):
        return "mov"
    if ext in (".mkv", ".mka", ".mks"):
        return "matroska"
    if ext == ".webm":
        return "webm"
    if ext == ".avi":
        return "avi"
    return "other"


def _stream_plan(streams, container):
    """[(stream, codec args or None to drop, note)] for the audio/subtitle streams of an input."""
    plan = []
    for s in streams:
        codec, kind = s["codec"], s["type"]
        if kind == "audio":
            if container in ("mp4", "mov"):
                ok = {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"}
                if container == "mov":
                    ok = ok | {c for c in [codec] if c.startswith("pcm_")}
                plan.append((s, ["copy"] if codec in ok else ["aac", "192k"], None))
            elif container == "webm":
                plan.append((s, ["copy"] if codec in ("opus", "vorbis") else ["libopus", "160k"], None))
            elif container == "avi":
                ok = codec in ("mp3", "ac3") or codec.startswith("pcm_")
                plan.append((s, ["copy"] if ok else ["libmp3lame", "192k"], None))
            else:
                plan.append((s, ["copy"], None))
        elif kind == "subtitle":
            text = codec in _TEXT_SUBS
            if container in ("mp4", "mov"):
                if text:
                    plan.append((s, ["copy"] if codec == "mov_text" else ["mov_text"], None))
                else:
                    plan.append((s, None, f"{container} cannot hold {codec} subtitles"))
            elif container == "matroska":
                plan.append((s, ["srt"] if codec == "mov_text" else ["copy"], None))
            elif container == "webm":
                if text:
                    plan.append((s, ["copy"] if codec == "webvtt" else ["webvtt"], None))
                else:
                    plan.append((s, None, f"webm cannot hold {codec} subtitles"))
            else:
                plan.append((s, None, f"subtitles are not kept in {container} output"))
        else:
            plan.append((s, None, f"{kind} streams are not kept"))
    return plan


def stream_args(streams, input_no, out_path, source="", quiet=False):
    """-map/-c arguments copying (or converting) the audio/subtitle streams of input `input_no`
    (output stream 0 is the video)."""
    container = container_of(out_path)
    args, out = [], 1
    for s, codec, note in _stream_plan([s for s in streams if s["type"] != "video"], container):
        if codec is None:
            if not quiet:
                log.warning("%s: stream %d (%s %s) dropped: %s", source, s["index"], s["type"], s["codec"], note)
            continue
        args += ["-map", f"{input_no}:{s['index']}", f"-c:{out}", codec[0]]
        if len(codec) > 1:
            args += [f"-b:{out}", codec[1]]
        out += 1
    return args


# ---- colour ----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _setparams_names(exe):
    """{option: accepted names} of the setparams filter of ffmpeg `exe` (range, color_primaries,
    color_trc, colorspace): older builds know fewer of them."""
    out, err = run(["-h", "filter=setparams"], "ffmpeg -h", ok_codes=None)
    text = out.decode("utf-8", "replace") + err
    names, current = {}, None
    for line in text.splitlines():
        m = re.match(r"^ {2,3}(\w+)\s+<int>", line)  # an option (2 spaces before ffmpeg 5, 3 since)
        if m:
            current = m.group(1)
            names[current] = set()
            continue
        m = re.match(r"^ {4,5}([\w.-]+)\s+(-?\d+\s+)?\.\.", line)  # a named value (its number since 5)
        if m and current:
            names[current].add(m.group(1))
    return names


def _color_args(color):
    """(output options, filter) tagging the encoded stream with `color` and converting RGB with the
    matching matrix and range. Frames carry the tags (setparams) because ffmpeg takes the encoder's
    colour properties from the frames."""
    color = {k: v for k, v in (color or {}).items() if v and v not in UNKNOWN}
    args, filters = [], []
    scale = []
    if color.get("colorspace") in _COLOR_MATRICES:
        scale.append(f"out_color_matrix={_COLOR_MATRICES[color['colorspace']]}")
    if color.get("color_range") in ("tv", "pc"):
        scale.append(f"out_range={color['color_range']}")
    if scale:
        filters.append("scale=" + ":".join(scale))
    known = _setparams_names(ffmpeg_exe()) if color else {}
    params = []
    for key, opt in (("color_range", "range"), ("color_primaries", "color_primaries"), ("color_trc", "color_trc"),
                     ("colorspace", "colorspace")):
        if key in color and color[key] in known.get(opt, ()):
            params.append(f"{opt}={color[key]}")
            args += [f"-{key}", color[key]]
    if params:
        filters.append("setparams=" + ":".join(params))
    return args, ",".join(filters) or None


def timescale(fps):
    num = Fraction(fps).numerator
    return num * max(1, math.ceil(10000 / num))


class VideoWriter:
    """Encode RGB frames to a video file through ffmpeg, atomically.

    Frames go through a bounded queue to an encoder thread writing ffmpeg's stdin, so encoding
    overlaps with the caller's work. The file is written under a temp name in the same folder and
    renamed to `path` when ffmpeg exits cleanly on `close()`; on any error (or `abort()`) ffmpeg is
    killed and the temp file deleted. Use as a context manager.

    Args:
        path (str): output file; its extension picks the container.
        width, height (int): frame size.
        fps (Fraction|int|str): frame rate, kept exact (`-r 24000/1001`).
        codec (str): ffmpeg video encoder. Default: 'libx264'.
        crf (int|None): quality for encoders with -crf (x264, x265, VP9, AV1). Default: 18.
        pix_fmt (str): encoded pixel format. Default: 'yuv420p' (needs even width and height).
        color (dict|None): colour tags (`VideoInfo.color`) written to the stream; RGB is converted
            with the matching matrix and range.
        audio_from (str|None): a media file whose audio and subtitle streams are copied (or converted
            where the container needs it, see the module docstring) into the output.
        extra_args (list|None): more ffmpeg output options (e.g. ['-preset', 'fast']).
        on_encoded (callable|None): called with no arguments by the encoder thread after each frame
            has been handed to ffmpeg (e.g. a progress bar's update). Default: None.
    """

    def __init__(self, path, width, height, fps, codec="libx264", crf=18, pix_fmt="yuv420p", color=None,
                 audio_from=None, extra_args=None, on_encoded=None):
        self._on_encoded = on_encoded
        self.path = os.path.abspath(os.fspath(path))
        self.width, self.height = int(width), int(height)
        self.fps = as_fraction(fps)
        self.frames = 0
        if self.width <= 0 or self.height <= 0:
            raise VideoError(f"frame size must be positive, got {width}x{height}")
        if pix_fmt in ("yuv420p", "yuvj420p", "nv12", "yuv420p10le") and (self.width % 2 or self.height % 2):
            raise VideoError(f"{pix_fmt} needs an even frame size, got {self.width}x{self.height} "
                             f"(crop or pad the frames, or use pix_fmt='yuv444p')")
        if pix_fmt in ("yuv422p", "yuv422p10le") and self.width % 2:
            raise VideoError(f"{pix_fmt} needs an even frame width, got {self.width}")
        folder, base = os.path.split(self.path)
        ext = os.path.splitext(base)[1]
        if not ext:
            raise VideoError(f"output video needs a file extension (.mp4, .mkv, ...): {self.path}")
        try:
            self._tmp = temp_beside(self.path, ext)
        except OSError as e:
            raise VideoError(f"cannot write to {folder}: {e.strerror or e}") from None
        args = ffmpeg_args("-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
                           "-s", f"{self.width}x{self.height}", "-r", rate_str(self.fps), "-i", "-")
        kept = []
        if audio_from is not None:
            try:
                streams = probe_streams(audio_from)
            except BaseException:
                self._remove_tmp()
                raise
            args += ["-i", ff_path(audio_from)]
            kept = stream_args(streams, 1, self.path, source=os.fspath(audio_from))
        color_args, scale = _color_args(color)
        args += ["-map", "0:v:0"] + kept + ["-c:v", codec]
        if crf is not None and codec in CRF_CODECS:
            args += ["-crf", str(crf)] + (["-b:v", "0"] if codec == "libvpx-vp9" else [])
        args += ["-pix_fmt", pix_fmt, "-sws_flags", SWS_FLAGS] + color_args
        if scale:
            args += ["-vf", scale]
        if container_of(self.path) in ("mp4", "mov"):
            args += ["-video_track_timescale", str(timescale(self.fps))]
        args += [str(a) for a in (extra_args or [])] + [self._tmp]
        self._err = tempfile.TemporaryFile()
        try:
            self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._err)
        except OSError as e:
            self._err.close()
            self._remove_tmp()
            raise VideoError(f"cannot run ffmpeg: {e.strerror or e}") from None
        self._q = queue.Queue(maxsize=queue_size(self.width * self.height * 3))
        self._error = None
        self._closed = False
        self._thread = threading.Thread(target=self._feed, name="ppgan-video-encode", daemon=True)
        self._thread.start()

    def _feed(self):
        failed = False
        while True:
            item = self._q.get()
            if item is END:
                break
            if failed:
                continue
            try:
                self._proc.stdin.write(item.data)
                if self._on_encoded is not None:
                    self._on_encoded()
            except BaseException as e:  # noqa: BLE001 - reported by write()/close()
                self._error = e
                failed = True
        with contextlib.suppress(OSError):
            self._proc.stdin.close()

    def _stderr(self):
        self._err.seek(0)
        return stderr_summary(self._err.read().decode("utf-8", "replace"))

    def write(self, frame):
        """Queue one HxWx3 uint8 RGB frame (the size given to the constructor); it is copied, so the
        caller may reuse the array at once. Raises VideoError if the encoder has failed."""
        if self._closed:
            raise VideoError(f"{self.path}: write() after close()")
        if self._error is not None:
            msg = self._stderr_after_exit()
            self.abort()
            raise VideoError(f"encoding {self.path} failed: {msg}")
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            desc = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
            raise VideoError(f"video frames must be HxWx3 uint8 RGB arrays, got {desc}")
        if frame.shape[:2] != (self.height, self.width):
            raise VideoError(f"frame size {frame.shape[1]}x{frame.shape[0]} differs from the video's "
                             f"{self.width}x{self.height}")
        # A copy: the caller may reuse its buffer (a model writing into one output array) before the
        # encoder thread gets to this frame.
        frame = np.array(frame, order="C", copy=True)
        while True:
            try:
                self._q.put(frame, timeout=0.5)
                break
            except queue.Full:
                if self._proc.poll() is not None and self._error is None and not self._thread.is_alive():
                    break
        self.frames += 1

    def _stderr_after_exit(self):
        with contextlib.suppress(Exception):
            self._proc.wait(timeout=10)
        return self._stderr()

    def close(self):
        """Finish encoding and move the file into place. Raises VideoError if ffmpeg failed."""
        if self._closed:
            return
        self._closed = True
        self._q.put(END)
        self._thread.join()
        rc = self._proc.wait()
        msg = self._stderr()
        self._err.close()
        if rc != 0 or self._error is not None:
            self._remove_tmp()
            raise VideoError(f"encoding {self.path} failed: {msg}")
        if self.frames == 0:
            self._remove_tmp()
            raise VideoError(f"no frames were written to {self.path}")
        try:
            os.replace(self._tmp, self.path)
        except OSError as e:
            self._remove_tmp()
            raise VideoError(f"cannot write {self.path}: {e.strerror or e}") from None

    def abort(self):
        """Stop ffmpeg and delete the partial file (no error if already closed)."""
        if self._closed:
            return
        self._closed = True
        kill(self._proc)
        with contextlib.suppress(queue.Full):
            self._q.put_nowait(END)
        drain(self._q)
        with contextlib.suppress(queue.Full):
            self._q.put_nowait(END)
        self._thread.join(timeout=10)
        with contextlib.suppress(Exception):
            self._err.close()
        self._remove_tmp()

    def _remove_tmp(self):
        with contextlib.suppress(OSError):
            os.remove(self._tmp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    def __del__(self):
        if getattr(self, "_closed", True) is False:
            self.abort()

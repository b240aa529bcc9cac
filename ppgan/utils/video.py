"""Streaming video I/O and the frame-processing pipeline every video app uses.

Everything goes through the ffmpeg binary bundled with `imageio-ffmpeg` (no ffprobe, no system
ffmpeg), run with argument lists; a failure becomes one-line `VideoError`.

* `probe_video(path)`: streams, exact frame rate (`Fraction(24000, 1001)` for 23.976), frame count,
  duration, VFR detection, colour tags, rotation. Timing comes from the video packets' timestamps
  (`-c copy -f framecrc`), not from the rounded rates ffmpeg prints.
* `iter_frames(path)`: HxWx3 uint8 RGB frames from a decoder thread through a bounded queue.
  Rotated videos come out upright (ffmpeg autorotates; `VideoInfo.width/height` are the displayed
  size). Variable-frame-rate input is converted to constant rate at its average frame rate
  (`VideoInfo.fps`): frames are repeated or dropped on that grid, so duration and audio sync are kept.
* `VideoWriter`: RGB frames -> encoder thread -> ffmpeg stdin; written to a temp file renamed into
  place when the encoder exits cleanly, deleted on error. `audio_from=` keeps the audio and subtitle
  streams of another file (see "Streams kept" below).
* `process_video(input, output, stages)`: decode thread -> stages (calling thread, e.g. a GPU
  model) -> encode thread, in chunks of `chunk_seconds` that are resumable after a crash.

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

Resuming (`process_video`): the frames are processed in chunks of `chunk_seconds` (a whole number of
frames); each chunk is encoded to its own video-only file in `<output>.ppgan-parts/` with a
`manifest.json` that records the input (path, size, mtime), the stages' descriptions and the encode
options. A re-run with the same arguments skips the finished chunks; different arguments discard the
old parts (logged). The stages are `reset()` at every chunk start, so a resumed run writes the same
frames as an uninterrupted one. When all chunks are done they are joined without re-encoding, muxed
with the input's audio/subtitles into the output (atomic rename) and the parts folder is removed.
After a failure the output file is not created (or an existing one is left untouched) and no temp
file is left beside it; the parts folder stays, on purpose, so the next run can resume (bad encoder
settings or an output container that cannot hold them are caught by a preflight encode before any
frame is processed, and leave nothing).
If the process is killed (SIGKILL, power loss), the ffmpeg children exit on their own (end of input,
broken pipe) and temp files inside the parts folder are removed by the next run; a `VideoWriter`
used directly can leave its hidden temp file (`.<name>.XXXX.<ext>`) beside the output in that case.
"""
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import queue
import re
import subprocess
import tempfile
import threading
import time
from fractions import Fraction

import numpy as np

from .errors import PPGANError
from .io import atomic_write_text, check_writable_dir, same_file, temp_beside

log = logging.getLogger("ppgan.video")

VIDEO_EXTS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".wmv", ".mpg", ".mpeg", ".ts", ".m2ts",
              ".mts", ".3gp", ".ogv", ".vob", ".mxf", ".y4m", ".dv", ".asf", ".f4v", ".divx", ".h264", ".h265",
              ".hevc", ".264", ".265"}
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm", ".pbm", ".pnm",
              ".exr", ".hdr", ".jp2", ".j2k", ".dds", ".tga", ".ico", ".jxl", ".avif", ".heic", ".svg"}

# Encoders that take -crf.
_CRF_CODECS = {"libx264", "libx264rgb", "libx265", "libvpx", "libvpx-vp9", "libaom-av1", "libsvtav1"}
# Video codecs the chunk files (mp4) can hold; anything else uses Matroska chunks.
_MP4_VIDEO_CODECS = {"libx264", "libx265", "mpeg4", "libxvid", "libaom-av1", "libsvtav1", "librav1e", "libvpx-vp9",
                     "h264_nvenc", "hevc_nvenc", "av1_nvenc", "h264_vaapi", "hevc_vaapi", "h264_qsv", "hevc_qsv",
                     "libopenh264"}
_TEXT_SUBS = {"subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text", "microdvd", "subviewer", "sami",
              "jacosub", "realtext", "stl", "vplayer", "pjs", "mpl2", "eia_608"}
_COLOR_MATRICES = {"bt709": "bt709", "bt470bg": "bt470bg", "smpte170m": "smpte170m", "bt601": "bt601",
                   "fcc": "fcc", "smpte240m": "smpte240m", "bt2020nc": "bt2020nc", "bt2020c": "bt2020"}
_UNKNOWN = {"unknown", "unspecified", "reserved", "", "n/a"}
_NOPTS = -(2 ** 62)
_PARTS_SUFFIX = ".ppgan-parts"
_MANIFEST = "manifest.json"
_PARTS_FORMAT = "ppgan-video-parts/1"
# RGB <-> YUV conversions: exact rounding and full chroma interpolation. swscale's defaults darken
# each encode/decode generation by about one level; with these the mean stays within 0.3.
SWS_FLAGS = "bicubic+accurate_rnd+full_chroma_int"


class VideoError(PPGANError):
    """A video file is missing, unreadable or damaged, or ffmpeg could not write one."""


# ---- ffmpeg ----------------------------------------------------------------------------------

_FFMPEG = None


def ffmpeg_exe():
    """Path of the ffmpeg binary bundled with imageio-ffmpeg."""
    global _FFMPEG
    if _FFMPEG is None:
        try:
            import imageio_ffmpeg
        except ImportError:
            raise VideoError("video support needs the imageio-ffmpeg package (pip install imageio-ffmpeg)") from None
        try:
            _FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
        except RuntimeError as e:
            raise VideoError(f"no ffmpeg binary found: {e}") from None
    return _FFMPEG


_NOISE = re.compile(r"^(Error opening input files?|Error opening output files?|Conversion failed!|"
                    r"Exiting normally|Error opening input file|Error opening output file|Task finished with error|"
                    r"Terminating thread with return code|Nothing was written|.*misdetection possible)")


def _stderr_summary(text, limit=300):
    """ffmpeg's stderr as one line: the first (usually the cause) and the last of its messages, without
    `[x @ 0x..]` prefixes; ffmpeg's generic closing line only when nothing else was said."""
    lines = []
    for raw in text.splitlines():
        line = re.sub(r"^(\[[^\]]*@ 0x[0-9a-f]+\]\s*)+", "", raw.strip()).strip()
        if not line or line.startswith(("Input #", "Output #", "Stream #", "Metadata:", "Duration:", "frame=",
                                        "Press [q]", "Side data:")):
            continue
        lines.append(line)
    specific = [ln for ln in lines if not _NOISE.match(ln)]
    generic = [ln.split(": ", 1)[-1] for ln in lines if _NOISE.match(ln) and ": " in ln]
    picked = []
    for ln in (specific[:1] + specific[-1:]) or generic[-1:]:
        if ln not in picked:
            picked.append(ln)
    msg = "; ".join(picked) or "ffmpeg failed"
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def _run(args, what, ok_codes=(0,)):
    """Run ffmpeg with `args` (list); return (stdout bytes, stderr text); VideoError on failure."""
    try:
        res = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin"] + list(args), stdin=subprocess.DEVNULL,
                             capture_output=True)
    except OSError as e:
        raise VideoError(f"{what}: cannot run ffmpeg ({e.strerror or e})") from None
    err = res.stderr.decode("utf-8", "replace")
    if ok_codes is not None and res.returncode not in ok_codes:
        raise VideoError(f"{what}: {_stderr_summary(err)}")
    return res.stdout, err


def _rate_str(fps):
    fps = Fraction(fps)
    return f"{fps.numerator}/{fps.denominator}"


def _as_fraction(fps):
    if isinstance(fps, Fraction):
        out = fps
    elif isinstance(fps, str):
        out = Fraction(fps) if "/" in fps else Fraction(fps).limit_denominator(1001)
    elif isinstance(fps, float):
        out = _nice_rate(Fraction(fps))
    else:
        out = Fraction(fps)
    if out <= 0:
        raise VideoError(f"frame rate must be positive, got {fps}")
    return out


# ---- probing ---------------------------------------------------------------------------------

@dataclasses.dataclass
class VideoInfo:
    """What `probe_video` found. Extra fields after `rotation`: `start_time` (s, of the video stream
    relative to the file start as ffmpeg presents it), `index` (absolute stream index of the video
    stream used), `format_name` (ffmpeg demuxer name)."""

    path: str
    width: int                     # displayed size (after rotation)
    height: int
    fps: Fraction                  # exact: 24000/1001 for 23.976; average rate for VFR input
    n_frames: int                  # frames iter_frames yields (VFR: after conversion to constant rate)
    duration: float                # seconds, of the video stream
    vfr: bool                      # variable frame rate detected
    time_base: Fraction
    pix_fmt: str
    codec: str
    color: dict                    # color_range / colorspace / color_primaries / color_trc, when tagged
    streams: list                  # [{'index', 'type', 'codec', 'language'?}], every stream of the file
    has_audio: bool
    rotation: int = 0              # display-matrix rotation, degrees counter-clockwise (0, 90, 180, 270)
    start_time: float = 0.0
    index: int = 0
    format_name: str = ""


def _split_top(text):
    """Split at commas that are not inside parentheses or brackets."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    return parts


_STREAM_RE = re.compile(r"^\s*Stream #0:(\d+)(?:\[[^\]]*\])?(?:\(([^)]*)\))?: (\w+): (.*)$")


def _parse_header(text):
    """Parse `ffmpeg -i X` stderr: format and streams (with video details)."""
    info = {"format": "", "streams": []}
    m = re.search(r"Input #0, (.+?), from '", text)
    if m:
        info["format"] = m.group(1)
    current = None
    for line in text.splitlines():
        sm = _STREAM_RE.match(line)
        if sm:
            kind = sm.group(3).lower()
            kind = kind if kind in ("video", "audio", "subtitle") else "data"
            rest = sm.group(4)
            codec = re.split(r"[\s,(]", rest.strip(), 1)[0]
            current = {"index": int(sm.group(1)), "type": kind, "codec": codec}
            lang = sm.group(2)
            if lang and lang != "und":
                current["language"] = lang
            if kind == "video":
                current["attached_pic"] = "(attached pic)" in rest
                fields = _split_top(rest)
                current.update(_parse_video_fields(fields))
            info["streams"].append(current)
            continue
        if current is not None:
            rm = re.search(r"rotation of (-?[\d.]+) degrees", line)
            if rm and current["type"] == "video":
                current["rotation"] = int(round(float(rm.group(1)))) % 360
            elif re.match(r"^\s*(Input|Output) #", line):
                current = None
    return info


def _parse_video_fields(fields):
    out = {"pix_fmt": "", "color": {}, "width": 0, "height": 0, "fps_hint": None}
    for i, f in enumerate(fields[1:], 1):
        m = re.match(r"^(\d+)x(\d+)", f)
        if m and not out["width"]:
            out["width"], out["height"] = int(m.group(1)), int(m.group(2))
            continue
        if i == 1 and not m:
            pm = re.match(r"^([\w]+)(?:\((.*)\))?$", f)
            if pm:
                out["pix_fmt"] = pm.group(1)
                out["color"] = _parse_color(pm.group(2) or "")
            continue
        fm = re.match(r"^([\d.]+)(k?) (fps|tbr)$", f)
        if fm and (out["fps_hint"] is None or fm.group(3) == "fps"):
            out["fps_hint"] = float(fm.group(1)) * (1000 if fm.group(2) else 1)
    return out


def _parse_color(text):
    color = {}
    for tok in (t.strip() for t in text.split(",")):
        if tok in ("tv", "pc"):
            color["color_range"] = tok
        elif "/" in tok:
            parts = tok.split("/")
            if len(parts) == 3:
                for key, val in zip(("colorspace", "color_primaries", "color_trc"), parts):
                    if val not in _UNKNOWN:
                        color[key] = val
        elif re.match(r"^(bt\d+\w*|smpte\d+\w*|fcc|ycgco\w*|gbr|film|ictcp|chroma-derived-\w+)$", tok):
            color.update(colorspace=tok, color_primaries=tok, color_trc=tok)
    return color


def _packets(path, index, what):
    """(time_base, [(pts, duration, dts)], stderr) of stream `index` from a stream-copy framecrc pass;
    packets flagged discard (edit-list trimming) are left out."""
    out, err = _run(["-v", "error", "-i", _ff(path), "-map", f"0:{index}", "-c", "copy", "-f", "framecrc", "-"],
                    what)
    tb, pkts = None, []
    for line in out.decode("ascii", "replace").splitlines():
        if line.startswith("#tb"):
            num, den = line.split(":", 1)[1].strip().split("/")
            tb = Fraction(int(num), int(den))
            continue
        if not line or line.startswith("#"):
            continue
        cols = [c.strip() for c in line.split(",")]
        if len(cols) < 6:
            continue
        flags = 1
        for c in cols[6:]:
            if c.startswith("F=0x"):
                flags = int(c[4:], 16)
        if flags & 4:
            continue
        pkts.append((int(cols[2]), int(cols[3]), int(cols[1])))
    return tb, pkts, err


def _nice_rate(rate):
    """`rate` (Fraction) as the nearest integer or NTSC (n*1000/1001) rate when within 0.05%, else
    with a denominator of at most 1001."""
    for cand in (Fraction(round(rate)), Fraction(round(rate * Fraction(1001, 1000)) * 1000, 1001)):
        if cand > 0 and abs(cand - rate) <= rate * Fraction(5, 10000):
            return cand
    out = rate.limit_denominator(1001)
    return out if out > 0 else rate


def _average_rate(rate):
    """A plain rate for VFR input's constant-rate conversion: the nearest integer or NTSC rate within
    2% of the average `rate`, else `rate` with a denominator of at most 100."""
    cands = [Fraction(math.floor(rate)), Fraction(math.ceil(rate)),
             Fraction(round(rate * Fraction(1001, 1000)) * 1000, 1001)]
    best = min((c for c in cands if c > 0), key=lambda c: abs(c - rate), default=None)
    if best is not None and abs(best - rate) <= rate * Fraction(2, 100):
        return best
    out = rate.limit_denominator(100)
    return out if out > 0 else rate


def _fits_grid(pts, tb, rate):
    """True when every pts lies within one tick of the constant-rate grid at `rate`."""
    step = 1 / (rate * tb)
    p0 = pts[0]
    return all(abs(p - p0 - i * step) <= Fraction(11, 10) for i, p in enumerate(pts))


def _timing(tb, pkts, fps_hint):
    """fps, n_frames, duration, vfr, start from video packet timestamps."""
    pts = sorted(p for p, _, _ in pkts if p > _NOPTS)
    if len(pts) < 2 or tb is None:
        fps = _nice_rate(Fraction(fps_hint or 25).limit_denominator(100000))
        n = len(pkts)
        dur = Fraction(n) / fps
        start = float(pts[0] * tb) if pts and tb else 0.0
        return fps, n, float(dur), False, start
    deltas = [b - a for a, b in zip(pts, pts[1:])]
    dmin, dmax = min(deltas), max(deltas)
    span = pts[-1] - pts[0]
    mean_rate = Fraction(len(pts) - 1) / (span * tb)
    fps, vfr = None, False
    if dmin == dmax and dmin > 0:
        fps = 1 / (dmin * tb)                     # exact: 1001 ticks of 1/24000 -> 24000/1001
    elif dmin > 0 and dmax - dmin <= 1:
        # Timestamps rounded to a coarse time base (Matroska: 1 ms): find the rate whose grid they fit.
        for cand in (Fraction(round(mean_rate)), Fraction(round(mean_rate * Fraction(1001, 1000)) * 1000, 1001),
                     mean_rate.limit_denominator(1001)):
            if cand > 0 and _fits_grid(pts, tb, cand):
                fps = cand
                break
    if fps is None:
        vfr = True
        last = next((d for p, d, _ in pkts if p == pts[-1] and d > 0), None) or sorted(deltas)[len(deltas) // 2]
        duration = (span + last) * tb
        fps = _average_rate(Fraction(len(pts)) / duration)
        n = int(round(duration * fps))
        return fps, n, float(duration), True, float(pts[0] * tb)
    n = len(pts)
    return fps, n, float(Fraction(n) / fps), vfr, float(pts[0] * tb)


_TRUNCATION = re.compile(r"partial file|File ended prematurely|Truncat|moov atom not found|"
                         r"Invalid data found when processing input", re.I)


def _ff(path):
    """A path as an ffmpeg input/output argument: absolute, so that a name starting with '-' is not
    taken for an option nor one like 'http:x.mp4' for a protocol."""
    return os.path.abspath(os.fspath(path))


def _check_file(path):
    if not isinstance(path, (str, os.PathLike)):
        raise VideoError(f"video path must be a string, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise VideoError(f"video not found: {path}")
    if os.path.isdir(path):
        raise VideoError(f"video path is a folder, not a file: {path}")
    if os.path.getsize(path) == 0:
        raise VideoError(f"video file is empty: {path}")
    return path


def _probe_header(path):
    path = _check_file(path)
    _, err = _run(["-i", _ff(path)], f"cannot read {path}", ok_codes=None)
    info = _parse_header(err)
    if not re.search(r"Input #0, ", err):
        raise VideoError(f"cannot read {path}: {_stderr_summary(err)}")
    return info, err


def probe_video(path):
    """Probe `path` (str); return a `VideoInfo`. Raises VideoError for a missing, empty, unreadable,
    truncated file or one without a video stream."""
    header, err = _probe_header(path)
    path = os.fspath(path)
    videos = [s for s in header["streams"] if s["type"] == "video" and not s.get("attached_pic")]
    if not videos:
        raise VideoError(f"no video stream in {path}")
    if "image2" in header["format"] or header["format"].endswith("_pipe"):
        raise VideoError(f"{path} is an image, not a video")
    v = videos[0]
    tb, pkts, err2 = _packets(path, v["index"], f"cannot read {path}")
    for text in (err, err2):
        m = _TRUNCATION.search(text)
        if m:
            raise VideoError(f"{path} is truncated or damaged: {_stderr_summary(text)}")
    if not pkts:
        raise VideoError(f"no video frames in {path}")
    fps, n, duration, vfr, start = _timing(tb, pkts, v.get("fps_hint"))
    rotation = v.get("rotation", 0)
    w, h = v["width"], v["height"]
    if rotation in (90, 270):
        w, h = h, w
    streams = [{k: s[k] for k in ("index", "type", "codec", "language") if k in s} for s in header["streams"]]
    return VideoInfo(path=path, width=w, height=h, fps=fps, n_frames=n, duration=duration, vfr=vfr,
                     time_base=tb or Fraction(1, 1000), pix_fmt=v["pix_fmt"], codec=v["codec"], color=v["color"],
                     streams=streams, has_audio=any(s["type"] == "audio" for s in streams), rotation=rotation,
                     start_time=start, index=v["index"], format_name=header["format"])


def probe_streams(path):
    """The streams of any media file (audio-only files too): [{'index', 'type', 'codec', 'language'?}]."""
    header, _ = _probe_header(path)
    return [{k: s[k] for k in ("index", "type", "codec", "language") if k in s} for s in header["streams"]]


def is_video_file(path):
    """True if `path` is a video: by extension when the file does not exist, else by probing (a
    still image, an audio file or a text file named .mp4 is not a video)."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext in IMAGE_EXTS:
        return False
    if not os.path.isfile(path):
        return ext in VIDEO_EXTS
    try:
        header, _ = _probe_header(path)
    except VideoError:
        return False
    if "image2" in header["format"] or header["format"].endswith("_pipe"):
        return False
    return any(s["type"] == "video" and not s.get("attached_pic") for s in header["streams"])


def stream_timing(path, stream_index):
    """(start, duration) in seconds of stream `stream_index` (absolute index) of `path`, from its
    packet timestamps: start = first presented packet, duration = up to the end of the last one."""
    tb, pkts, _ = _packets(_check_file(path), stream_index, f"cannot read {path}")
    pts = [(p, d) for p, d, _ in pkts if p > _NOPTS]
    if not pts or tb is None:
        raise VideoError(f"stream {stream_index} of {path} has no packets")
    first = min(p for p, _ in pts)
    end = max(p + max(d, 0) for p, d in pts)
    return float(first * tb), float((end - first) * tb)


# ---- decoding --------------------------------------------------------------------------------

class _Failure:
    def __init__(self, exc):
        self.exc = exc


_END = object()


def _queue_size(frame_bytes, budget=192 << 20, lo=2, hi=16):
    return int(max(lo, min(hi, budget // max(1, frame_bytes))))


def _drain(q):
    with contextlib.suppress(queue.Empty):
        while True:
            q.get_nowait()


def _kill(proc):
    if proc is not None and proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(Exception):
            proc.wait(timeout=10)


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
        filters.append(f"fps=fps={_rate_str(info.fps)}")
    if start_frame:
        filters.append(f"trim=start_frame={int(start_frame)}")
    filters.append("format=rgb24")
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", _ff(path), "-map", f"0:{info.index}",
            "-an", "-sn", "-dn", "-vf", ",".join(filters), "-sws_flags", SWS_FLAGS, "-fps_mode", "passthrough",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    return _frame_generator(args, path, w, h, info, start_frame, convert or not info.vfr, on_decoded)


def _frame_generator(args, path, w, h, info, start_frame, check_count, on_decoded=None):
    frame_bytes = w * h * 3
    q = queue.Queue(maxsize=_queue_size(frame_bytes))
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
                    put(_Failure(VideoError(f"decoding {path}: incomplete last frame ({got} of {frame_bytes} bytes)")))
                    return
                if on_decoded is not None:
                    on_decoded()
                if not put(frame):
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            put(_Failure(e))
            return
        put(_END)

    thread = threading.Thread(target=reader, name="ppgan-video-decode", daemon=True)
    thread.start()
    count = 0
    try:
        while True:
            item = q.get()
            if item is _END:
                break
            if isinstance(item, _Failure):
                raise item.exc
            count += 1
            yield item
        rc = proc.wait()
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
        if rc != 0:
            raise VideoError(f"decoding {path} failed: {_stderr_summary(text)}")
        expected = max(0, info.n_frames - int(start_frame))
        if expected and count == 0:
            raise VideoError(f"decoding {path} produced no frames: {_stderr_summary(text)}")
        if check_count and count < expected * 0.98 - 1:
            raise VideoError(f"decoding {path}: got only {count} of {expected} frames "
                             f"(damaged file?): {_stderr_summary(text)}")
        if text.strip():
            log.warning("decoding %s: %s", path, _stderr_summary(text))
    finally:
        stop.set()
        _kill(proc)
        _drain(q)
        thread.join(timeout=10)
        with contextlib.suppress(OSError):
            proc.stdout.close()
        err.close()


# ---- stream mapping --------------------------------------------------------------------------

def _container(path):
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


def _stream_args(streams, input_no, out_path, source="", quiet=False):
    """-map/-c arguments copying (or converting) the audio/subtitle streams of input `input_no`
    (output stream 0 is the video)."""
    container = _container(out_path)
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


# ---- encoding --------------------------------------------------------------------------------

_SETPARAMS = None


def _setparams_names():
    """{option: accepted names} of ffmpeg's setparams filter (range, color_primaries, color_trc, colorspace)."""
    global _SETPARAMS
    if _SETPARAMS is None:
        out, err = _run(["-h", "filter=setparams"], "ffmpeg -h", ok_codes=None)
        text = out.decode("utf-8", "replace") + err
        names, current = {}, None
        for line in text.splitlines():
            m = re.match(r"^   (\w+)\s+<int>", line)
            if m:
                current = m.group(1)
                names[current] = set()
                continue
            m = re.match(r"^     ([\w.-]+)\s+-?\d+", line)
            if m and current:
                names[current].add(m.group(1))
        _SETPARAMS = names
    return _SETPARAMS


def _color_args(color):
    """(output options, filter) tagging the encoded stream with `color` and converting RGB with the
    matching matrix and range. Frames carry the tags (setparams) because ffmpeg takes the encoder's
    colour properties from the frames."""
    color = {k: v for k, v in (color or {}).items() if v and v not in _UNKNOWN}
    args, filters = [], []
    scale = []
    if color.get("colorspace") in _COLOR_MATRICES:
        scale.append(f"out_color_matrix={_COLOR_MATRICES[color['colorspace']]}")
    if color.get("color_range") in ("tv", "pc"):
        scale.append(f"out_range={color['color_range']}")
    if scale:
        filters.append("scale=" + ":".join(scale))
    known = _setparams_names() if color else {}
    params = []
    for key, opt in (("color_range", "range"), ("color_primaries", "color_primaries"), ("color_trc", "color_trc"),
                     ("colorspace", "colorspace")):
        if key in color and color[key] in known.get(opt, ()):
            params.append(f"{opt}={color[key]}")
            args += [f"-{key}", color[key]]
    if params:
        filters.append("setparams=" + ":".join(params))
    return args, ",".join(filters) or None


def _timescale(fps):
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
        self.fps = _as_fraction(fps)
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
        args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error",
                "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{self.width}x{self.height}",
                "-r", _rate_str(self.fps), "-i", "-"]
        stream_args = []
        if audio_from is not None:
            try:
                streams = probe_streams(audio_from)
            except BaseException:
                self._remove_tmp()
                raise
            args += ["-i", _ff(audio_from)]
            stream_args = _stream_args(streams, 1, self.path, source=os.fspath(audio_from))
        color_args, scale = _color_args(color)
        args += ["-map", "0:v:0"] + stream_args + ["-c:v", codec]
        if crf is not None and codec in _CRF_CODECS:
            args += ["-crf", str(crf)] + (["-b:v", "0"] if codec == "libvpx-vp9" else [])
        args += ["-pix_fmt", pix_fmt, "-sws_flags", SWS_FLAGS] + color_args
        if scale:
            args += ["-vf", scale]
        if _container(self.path) in ("mp4", "mov"):
            args += ["-video_track_timescale", str(_timescale(self.fps))]
        args += [str(a) for a in (extra_args or [])] + [self._tmp]
        self._err = tempfile.TemporaryFile()
        try:
            self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._err)
        except OSError as e:
            self._err.close()
            self._remove_tmp()
            raise VideoError(f"cannot run ffmpeg: {e.strerror or e}") from None
        self._q = queue.Queue(maxsize=_queue_size(self.width * self.height * 3))
        self._error = None
        self._closed = False
        self._thread = threading.Thread(target=self._feed, name="ppgan-video-encode", daemon=True)
        self._thread.start()

    def _feed(self):
        failed = False
        while True:
            item = self._q.get()
            if item is _END:
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
        return _stderr_summary(self._err.read().decode("utf-8", "replace"))

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
        self._q.put(_END)
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
        _kill(self._proc)
        with contextlib.suppress(queue.Full):
            self._q.put_nowait(_END)
        _drain(self._q)
        with contextlib.suppress(queue.Full):
            self._q.put_nowait(_END)
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


# ---- stages ----------------------------------------------------------------------------------

class FrameStage:
    """One step of `process_video`: frames in, the same number of frames out over each chunk.

    `push` may return fewer frames than it got (a temporal window holding frames back) as long as
    `flush` returns the rest at the chunk end; `reset` is called at the start of every chunk and must
    clear such state, so that chunks (and resumed runs) are independent. Override `describe` to
    include every parameter that changes the output: it is part of the resume key.
    """

    def reset(self):
        pass

    def push(self, frames):
        return list(frames)

    def flush(self):
        return []

    def describe(self):
        return _stable_repr(self)


class _FunctionStage(FrameStage):
    def __init__(self, fn):
        self.fn = fn
        self.label = getattr(fn, "__name__", type(fn).__name__)

    def push(self, frames):
        return self.fn(list(frames))

    def describe(self):
        fn = self.fn
        if hasattr(fn, "describe"):
            return str(fn.describe())
        if hasattr(fn, "__qualname__"):
            return f"{getattr(fn, '__module__', '')}.{fn.__qualname__}"
        return _stable_repr(fn)


def _stable_repr(obj):
    """repr without memory addresses (`<X object at 0x7f..>` differs between runs)."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(obj))


def _as_stages(stages):
    if stages is None:
        return []
    if isinstance(stages, FrameStage) or callable(stages) and not isinstance(stages, (list, tuple)):
        stages = [stages]
    out = []
    for s in stages:
        if isinstance(s, FrameStage) or all(hasattr(s, a) for a in ("reset", "push", "flush")):
            out.append(s)
        elif callable(s):
            out.append(_FunctionStage(s))
        else:
            raise VideoError(f"a stage must be a FrameStage or a function of a frame list, got {type(s).__name__}")
    return out


def _describe(stage):
    fn = getattr(stage, "describe", None)
    return str(fn()) if callable(fn) else _stable_repr(stage)


def _label(stage, i):
    """A short name for a stage's progress bar: its `label` attribute, a function's name, the first
    name in `describe()` (e.g. 'RealSRPredictor'), or its class name."""
    label = getattr(stage, "label", None)
    if not label:
        m = re.match(r"[A-Za-z_][\w.]*", _describe(stage))
        label = m.group(0).rsplit(".", 1)[-1] if m else type(stage).__name__
    return str(label)[:24] or f"stage {i + 1}"


class _Chain:
    """Runs frames through the stages, counting per stage to enforce count in == count out."""

    def __init__(self, stages):
        self.stages = stages
        self.names = [_describe(s) for s in stages]
        self.on_output = None  # on_output(i, n): stage i returned n frames
        self.reset()

    def reset(self):
        for s in self.stages:
            s.reset()
        self.n_in = [0] * len(self.stages)
        self.n_out = [0] * len(self.stages)

    def _out(self, i, frames, chunk):
        frames = list(frames) if frames is not None else []
        self.n_out[i] += len(frames)
        if self.on_output is not None and frames:
            self.on_output(i, len(frames))
        if self.n_out[i] > self.n_in[i]:
            raise VideoError(f"stage {self.names[i]} returned {self.n_out[i]} frames for {self.n_in[i]} input "
                             f"frames in chunk {chunk}; a stage must return one frame per input frame")
        return frames

    def push(self, frames, chunk, first=0):
        for i in range(first, len(self.stages)):
            if not frames:
                return []
            self.n_in[i] += len(frames)
            frames = self._out(i, self.stages[i].push(frames), chunk)
        return frames

    def flush(self, chunk):
        out = []
        for i, s in enumerate(self.stages):
            rest = self._out(i, s.flush(), chunk)
            out += self.push(rest, chunk, i + 1)
        for i, name in enumerate(self.names):
            if self.n_in[i] != self.n_out[i]:
                raise VideoError(f"stage {name} returned {self.n_out[i]} frames for {self.n_in[i]} input frames "
                                 f"in chunk {chunk}; over a chunk a stage must return exactly one frame per input "
                                 f"frame (hold frames back in push(), return them from flush())")
        return out


# ---- process_video ---------------------------------------------------------------------------

def _check_output_dir(folder):
    try:
        check_writable_dir(folder)
    except PPGANError as e:
        raise VideoError(str(e)) from None


def _read_manifest(parts):
    try:
        with open(os.path.join(parts, _MANIFEST), encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) and data.get("format") == _PARTS_FORMAT else None
    except (OSError, ValueError):
        return None


def _write_manifest(parts, manifest):
    atomic_write_text(os.path.join(parts, _MANIFEST), json.dumps(manifest, indent=1))


# Temp files of a run (a killed run leaves them behind), and everything ppgan writes in a parts folder.
_TEMP_PREFIXES = (".chunk_", ".output", "preflight", ".preflight", f".{_MANIFEST}.")
_OUR_PREFIXES = _TEMP_PREFIXES + ("chunk_", "concat.", _MANIFEST)


def _ours(name):
    return name.startswith(_OUR_PREFIXES)


def _preflight(info, input_path, output_path, parts, chunk_ext, writer_kw):
    """Encode two tiny frames with the job's encoder settings and mux them with the input's streams
    into the output's container, so that a bad codec, option or container fails now, not after hours
    of processing at the final join."""
    chunk = os.path.join(parts, "preflight" + chunk_ext)
    out = os.path.join(parts, ".output-preflight" + os.path.splitext(output_path)[1])
    try:
        with VideoWriter(chunk, 64, 64, info.fps, **writer_kw) as w:
            for _ in range(2):
                w.write(np.zeros((64, 64, 3), np.uint8))
        args = ["-y", "-v", "error", "-i", chunk, "-t", "0.2", "-i", _ff(input_path), "-map", "0:v:0",
                "-c:v", "copy"]
        args += _stream_args(info.streams, 1, output_path, source=input_path, quiet=True)
        _run(args + [out], f"cannot write {output_path}")
    except VideoError as e:
        raise VideoError(f"cannot write {output_path} with these settings: {str(e).split(': ', 1)[-1]}") from None
    finally:
        for path in (chunk, out):
            with contextlib.suppress(OSError):
                os.remove(path)


def _clear_parts(parts, keep_dir=True):
    """Delete the files this module puts in a parts folder (and the folder unless keep_dir)."""
    if not os.path.isdir(parts):
        return
    for name in os.listdir(parts):
        if _ours(name):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(parts, name))
    if not keep_dir:
        try:
            os.rmdir(parts)
        except OSError:
            log.warning("kept %s: it holds files ppgan did not write", parts)


def _chunk_timestamps_us(k, chunk_frames, fps):
    """Start time of chunk k in whole microseconds (exact rational time, rounded once)."""
    return round(Fraction(k * chunk_frames) / fps * 1000000)


def process_video(input_path, output_path, stages, *, batch_size=4, chunk_seconds=10, crf=18, codec="libx264",
                  pix_fmt="yuv420p", resume=True, progress=True, keep_parts=False, extra_args=None):
    """Run every frame of a video through `stages` and write the result, keeping audio and subtitles.

    Decoding (thread), the stages (the calling thread: put the GPU work here) and encoding (thread)
    overlap through bounded queues; memory does not grow with the video's length. The output has the
    input's exact frame rate, frame count and duration, colour tags, and every audio/subtitle stream
    (copied, or converted where the container needs it; see the module docstring), in sync. VFR input
    is converted to constant rate at its average rate (see `iter_frames`).

    Args:
        input_path (str): the video.
        output_path (str): the result; its extension picks the container. Must differ from the input.
        stages (list): `FrameStage` objects or plain functions `f(list of frames) -> list of frames`
            (HxWx3 uint8 RGB); each stage's output feeds the next. The output frame size is what the
            last stage returns (e.g. x4 for SR) and must be the same for all frames.
        batch_size (int): frames pushed to the first stage at a time. Not part of the resume key, so a
            run that ran out of memory can resume with a smaller batch. Default: 4.
        chunk_seconds (float|None): length of a resumable chunk; None: one chunk. Default: 10.
        crf (int), codec (str), pix_fmt (str), extra_args (list|None): encoder settings (`VideoWriter`).
        resume (bool): reuse finished chunks from an interrupted run with the same arguments. False
            discards them. Default: True.
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
    input_path = os.fspath(input_path)
    output_path = os.path.abspath(os.fspath(output_path))
    info = probe_video(input_path)
    if same_file(input_path, output_path):
        raise VideoError(f"output path is the input video: {output_path}")
    if not os.path.splitext(output_path)[1]:
        raise VideoError(f"output video needs a file extension (.mp4, .mkv, ...): {output_path}")
    if int(batch_size) < 1:
        raise VideoError(f"batch_size must be at least 1, got {batch_size}")
    folder = os.path.dirname(output_path)
    _check_output_dir(folder)
    stage_list = _as_stages(stages)
    chain = _Chain(stage_list)
    fps = info.fps
    if chunk_seconds is None or chunk_seconds <= 0:
        chunk_frames = max(1, info.n_frames)
    else:
        chunk_frames = max(1, int(round(Fraction(chunk_seconds).limit_denominator(1000) * fps)))
    n_chunks = max(1, math.ceil(info.n_frames / chunk_frames))
    chunk_ext = ".mp4" if codec in _MP4_VIDEO_CODECS else ".mkv"
    st = os.stat(input_path)
    options = {"codec": codec, "crf": crf, "pix_fmt": pix_fmt, "extra_args": [str(a) for a in (extra_args or [])],
               "chunk_frames": chunk_frames, "fps": _rate_str(fps), "n_frames": info.n_frames}
    ident = {"input": os.path.abspath(input_path), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
             "stages": chain.names, "options": options}
    key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode("utf-8")).hexdigest()

    parts = output_path + _PARTS_SUFFIX
    writer_kw = {"codec": codec, "crf": crf, "pix_fmt": pix_fmt, "color": info.color, "extra_args": extra_args}
    existed = os.path.isdir(parts)
    try:
        os.makedirs(parts, exist_ok=True)
    except OSError as e:
        raise VideoError(f"cannot write {parts}: {e.strerror or e}") from None
    try:
        _preflight(info, input_path, output_path, parts, chunk_ext, writer_kw)
    except BaseException:
        if not existed:
            _clear_parts(parts, keep_dir=False)
        raise

    manifest = _read_manifest(parts)
    if existed:
        if manifest is None or manifest.get("key") != key or not resume:
            why = "resume=False" if resume is False else "arguments or input changed"
            if manifest is not None or os.listdir(parts):
                log.warning("discarding earlier parts in %s (%s)", parts, why)
            _clear_parts(parts)
            manifest = None
        else:
            for name in os.listdir(parts):  # temp files of a killed run
                if name.startswith(_TEMP_PREFIXES):
                    with contextlib.suppress(OSError):
                        os.remove(os.path.join(parts, name))
    if manifest is None:
        manifest = {"format": _PARTS_FORMAT, "key": key, **ident, "n_chunks": n_chunks, "done": {}}
    try:
        _write_manifest(parts, manifest)
    except OSError as e:
        raise VideoError(f"cannot write {parts}: {e.strerror or e}") from None

    # Finished chunks: a prefix whose files are intact.
    listed = len(manifest["done"])
    done, size = {}, None
    for k in range(n_chunks):
        entry = manifest["done"].get(str(k))
        path = os.path.join(parts, entry["file"]) if entry else None
        if not entry or not os.path.isfile(path) or os.path.getsize(path) != entry["bytes"]:
            break
        done[k] = entry
        size = tuple(entry["size"])
    manifest["done"] = {str(k): v for k, v in done.items()}
    first = len(done)
    # "complete": an earlier run decoded to the end (a video with fewer frames than its header said
    # can leave planned chunks empty), so only the final join is left.
    manifest["complete"] = bool(manifest.get("complete")) and first == listed and first > 0
    skipped = sum(e["frames"] for e in done.values())
    if first:
        log.info("resuming %s at chunk %d of %d (%d frames already done)", output_path, first + 1, n_chunks, skipped)

    from tqdm import tqdm

    # One bar per step, each with frames/s and ETA: frames encoded (the job's bar, kept at the end),
    # frames decoded (updated by the decoder thread) and frames out of each stage.
    def make_bar(desc, position, leave=False):
        return tqdm(total=info.n_frames, initial=min(skipped, info.n_frames), unit="frame", disable=not progress,
                    desc=desc, dynamic_ncols=True, leave=leave, position=position)

    bar = make_bar(f"encode {os.path.basename(output_path)}", 0, leave=True)
    dbar = make_bar("decode", 1)
    sbars = [make_bar(_label(st, i), 2 + i) for i, st in enumerate(stage_list)]
    chain.on_output = lambda i, n: sbars[i].update(n)
    processed = 0
    frames_it = None
    writer = None
    try:
        exhausted = first >= n_chunks or manifest["complete"]
        if not exhausted:
            frames_it = iter_frames(input_path, info, start_frame=first * chunk_frames,
                                    on_decoded=lambda: dbar.update(1))
        k = first
        while k < n_chunks and not exhausted:
            chain.reset()
            name = f"chunk_{k:05d}{chunk_ext}"
            chunk_path = os.path.join(parts, name)
            limit = chunk_frames if k < n_chunks - 1 else None
            n_in = n_written = 0
            writer = None

            def emit(outs):
                nonlocal writer, size, n_written
                for fr in outs:
                    if not isinstance(fr, np.ndarray) or fr.dtype != np.uint8 or fr.ndim != 3 or fr.shape[2] != 3:
                        desc = f"{fr.dtype} {fr.shape}" if isinstance(fr, np.ndarray) else type(fr).__name__
                        raise VideoError(f"stages must return HxWx3 uint8 RGB frames, got {desc}")
                    fsize = (fr.shape[1], fr.shape[0])
                    if size is None:
                        size = fsize
                    if fsize != size:
                        raise VideoError(f"stage output size changed from {size[0]}x{size[1]} to "
                                         f"{fsize[0]}x{fsize[1]}; all frames of a video must have one size")
                    if writer is None:
                        writer = VideoWriter(chunk_path, size[0], size[1], fps, on_encoded=lambda: bar.update(1),
                                             **writer_kw)
                    writer.write(fr)
                    n_written += 1

            while limit is None or n_in < limit:
                want = batch_size if limit is None else min(batch_size, limit - n_in)
                batch = []
                for fr in frames_it:
                    batch.append(fr)
                    if len(batch) >= want:
                        break
                if not batch:
                    exhausted = True
                    break
                n_in += len(batch)
                emit(chain.push(batch, k))
            emit(chain.flush(k))
            if n_in == 0:
                break
            writer.close()
            entry = {"file": name, "frames": n_written, "size": list(size), "bytes": os.path.getsize(chunk_path)}
            writer = None
            manifest["done"][str(k)] = entry
            done[k] = entry
            _write_manifest(parts, manifest)
            processed += n_in
            k += 1
        if frames_it is not None:
            frames_it.close()
            frames_it = None
        if not manifest["complete"]:
            manifest["complete"] = True
            _write_manifest(parts, manifest)
        if not done:
            raise VideoError(f"no frames decoded from {input_path}")
        total = _finish(info, input_path, output_path, parts, done, chunk_frames, fps)
    except BaseException:
        if writer is not None:
            writer.abort()
        if frames_it is not None:
            frames_it.close()
        raise
    finally:
        for b in (*sbars, dbar, bar):
            b.close()
    if not keep_parts:
        _clear_parts(parts, keep_dir=False)
    seconds = time.perf_counter() - t0
    return {"frames": total, "fps": fps, "seconds": seconds, "output": output_path,
            "duration": float(Fraction(total) / fps), "size": size, "chunks": len(done),
            "resumed_chunks": first, "frames_per_second": processed / seconds if seconds > 0 else 0.0}


def _finish(info, input_path, output_path, parts, done, chunk_frames, fps):
    """Join the chunk files losslessly and mux them with the input's other streams."""
    keys = sorted(done)
    lines = ["ffconcat version 1.0"]
    for k in keys:
        d_us = _chunk_timestamps_us(k + 1, chunk_frames, fps) - _chunk_timestamps_us(k, chunk_frames, fps)
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
    args += ["-f", "concat", "-safe", "0", "-i", concat, "-i", _ff(input_path), "-map", "0:v:0", "-c:v", "copy"]
    args += _stream_args(info.streams, 1, output_path, source=input_path)
    args += ["-map_metadata", "1", "-map_chapters", "1"]
    if _container(output_path) in ("mp4", "mov"):
        args += ["-video_track_timescale", str(_timescale(fps))]
    args.append(tmp)
    try:
        _run(args, f"writing {output_path} failed")
        total = sum(done[k]["frames"] for k in keys)
        _, pkts, _ = _packets(tmp, 0, f"checking {output_path}")
        if len(pkts) != total:
            raise VideoError(f"writing {output_path} failed: joined video has {len(pkts)} frames, expected {total}")
        os.replace(tmp, output_path)
    except OSError as e:
        raise VideoError(f"cannot write {output_path}: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)
    return total

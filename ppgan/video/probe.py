"""Probing: what a video file holds, read exactly.

`probe_video(path)` returns a `VideoInfo`: streams, exact frame rate (`Fraction(24000, 1001)` for
23.976), frame count, duration, variable-frame-rate detection, colour tags, rotation. Timing comes
from the video packets' timestamps (`-c copy -f framecrc`), not from the rounded rates ffmpeg
prints. Only the ffmpeg binary is used (no ffprobe): the stream header is parsed from `ffmpeg -i`.
`probe_streams` lists the streams of any media file, `stream_timing` gives one stream's start and
duration, `is_video_file` tells a video from a still image or a text file with a video extension.
"""
import dataclasses
import math
import os
import re
from fractions import Fraction

from .ffmpeg import VideoError, ff_path, run, stderr_summary

VIDEO_EXTS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".wmv", ".mpg", ".mpeg", ".ts", ".m2ts",
              ".mts", ".3gp", ".ogv", ".vob", ".mxf", ".y4m", ".dv", ".asf", ".f4v", ".divx", ".h264", ".h265",
              ".hevc", ".264", ".265"}
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm", ".pbm", ".pnm",
              ".exr", ".hdr", ".jp2", ".j2k", ".dds", ".tga", ".ico", ".jxl", ".avif", ".heic", ".svg"}
UNKNOWN = {"unknown", "unspecified", "reserved", "", "n/a"}  # colour values that mean "not tagged"
_NOPTS = -(2 ** 62)


# ---- frame rates -----------------------------------------------------------------------------

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


def rate_str(fps):
    """`fps` as ffmpeg's exact rate argument: '24000/1001'."""
    fps = Fraction(fps)
    return f"{fps.numerator}/{fps.denominator}"


def as_fraction(fps):
    """A frame rate given as Fraction, int, float (29.97 -> 30000/1001) or str ('24000/1001') -> Fraction."""
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
                    if val not in UNKNOWN:
                        color[key] = val
        elif re.match(r"^(bt\d+\w*|smpte\d+\w*|fcc|ycgco\w*|gbr|film|ictcp|chroma-derived-\w+)$", tok):
            color.update(colorspace=tok, color_primaries=tok, color_trc=tok)
    return color


def read_packets(path, index, what):
    """(time_base, [(pts, duration, dts)], stderr) of stream `index` from a stream-copy framecrc pass;
    packets flagged discard (edit-list trimming) are left out."""
    out, err = run(["-v", "error", "-i", ff_path(path), "-map", f"0:{index}", "-c", "copy", "-f", "framecrc", "-"],
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
    # Packets after the last timed one that carry no pts (the last frame of a DVD .vob) are frames too.
    n = len(pts) + next((i for i, (p, _, _) in enumerate(reversed(pkts)) if p > _NOPTS), 0)
    return fps, n, float(Fraction(n) / fps), vfr, float(pts[0] * tb)


_TRUNCATION = re.compile(r"partial file|File ended prematurely|Truncat|moov atom not found|"
                         r"Invalid data found when processing input", re.I)


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
    _, err = run(["-i", ff_path(path)], f"cannot read {path}", ok_codes=None)
    info = _parse_header(err)
    if not re.search(r"Input #0, ", err):
        raise VideoError(f"cannot read {path}: {stderr_summary(err)}")
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
    tb, pkts, err2 = read_packets(path, v["index"], f"cannot read {path}")
    for text in (err, err2):
        m = _TRUNCATION.search(text)
        if m:
            raise VideoError(f"{path} is truncated or damaged: {stderr_summary(text)}")
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
    tb, pkts, _ = read_packets(_check_file(path), stream_index, f"cannot read {path}")
    pts = [(p, d) for p, d, _ in pkts if p > _NOPTS]
    if not pts or tb is None:
        raise VideoError(f"stream {stream_index} of {path} has no packets")
    first = min(p for p, _ in pts)
    end = max(p + max(d, 0) for p, d in pts)
    return float(first * tb), float((end - first) * tb)

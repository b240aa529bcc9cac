"""Encoding: `VideoWriter` (RGB frames -> encoder thread -> ffmpeg stdin, written atomically), the
choice of a video codec that fits the output container, colour tags an encoder accepts, and the
mapping of an input's audio and subtitle streams into an output container.

Video codec: `codec=None` (the default) picks one the output container can hold and this ffmpeg
has: VP9 (else VP8) for .webm, Theora (else VP8) for .ogv, MPEG-2 for .mpg/.vob, H.264 (libx264)
for everything else. A codec given explicitly that the container cannot hold (H.264 in .webm) is a
one-line error naming the codec to use. Raw streams (.h264, .hevc, .y4m), .dv, .mxf and .divx are
read but not written.

Colour: the input's tags are written only where the output can carry them. An RGB-coded input
(`libx264rgb`, colorspace `gbr`) encoded to a YUV format gets the BT.709 matrix (BT.2020 for
BT.2020 primaries) and limited range; matrices RGB cannot be converted to (YCgCo, ICtCp, BT.2020
constant luminance, ...) likewise; `reserved`/`unknown` values are dropped; RGB output formats
(libx264rgb, gbrp, ...) are tagged `gbr`, full range.

Streams kept: every audio and subtitle stream of the input goes to the output. Each is stream-copied
when the output container can hold it, otherwise converted:
    .mp4: audio aac, mp3, ac3, eac3 copied (opus, flac, alac too on ffmpeg >= 5), others (pcm,
        vorbis, dts, ...) -> AAC 192 kb/s; text subtitles -> mov_text; bitmap subtitles dropped.
    .mov: aac, mp3, ac3, eac3, alac and PCM copied, others -> AAC; subtitles as .mp4.
    .m4v: aac, ac3, alac copied, others -> AAC; .3gp: aac copied, others -> AAC; subtitles as .mp4.
    .mkv: everything copied (mov_text subtitles -> srt).
    .webm: opus and vorbis copied, other audio -> Opus; WebVTT copied, other text subtitles ->
        WebVTT; bitmap subtitles dropped. .ogv: opus, vorbis, flac copied, others -> Opus.
    .avi: mp3, mp2, ac3 and PCM copied, other audio -> MP3.
    .flv, .f4v: aac and mp3 copied, others -> AAC (.flv: the first audio stream only).
    .ts/.m2ts: aac, mp3, mp2, ac3, eac3, opus, dts copied, others -> AAC.
    .wmv/.asf: aac, mp3, mp2, ac3, WMA, flac, vorbis, PCM copied, others -> AAC.
    .mpg/.vob: mp2, mp3, ac3, dts, DVD PCM copied, others -> MP2.
    Containers not named keep no subtitles (the .ts family keeps DVB subtitles).
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
from .ffmpeg import (END, SWS_FLAGS, VideoError, crash_message, drain, encoder_pix_fmts, ff_path, ffmpeg_args,
                     ffmpeg_encoders, ffmpeg_exe, ffmpeg_features, kill, queue_size, run, stderr_summary)
from .probe import UNKNOWN, as_fraction, probe_streams, rate_str

log = logging.getLogger("ppgan.video")

# Encoders that take -crf.
CRF_CODECS = {"libx264", "libx264rgb", "libx265", "libvpx", "libvpx-vp9", "libaom-av1", "libsvtav1"}
# Encoders whose quality is a quantiser (-q:v, 1 best .. 31): crf is mapped onto it.
_QSCALE_CODECS = {"mpeg1video", "mpeg2video", "mpeg4", "libxvid", "msmpeg4", "msmpeg4v2", "flv", "wmv1", "wmv2",
                  "h263", "h263p", "mjpeg"}
# Video codecs an .mp4 can hold (the pipeline's chunk files); anything else goes into Matroska.
MP4_VIDEO_CODECS = {"libx264", "libx265", "mpeg4", "libxvid", "libaom-av1", "libsvtav1", "librav1e", "libvpx-vp9",
                    "h264_nvenc", "hevc_nvenc", "av1_nvenc", "h264_vaapi", "hevc_vaapi", "h264_qsv", "hevc_qsv",
                    "libopenh264"}
_TEXT_SUBS = {"subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text", "microdvd", "subviewer", "sami",
              "jacosub", "realtext", "stl", "vplayer", "pjs", "mpl2", "eia_608"}


# ---- containers and codecs -------------------------------------------------------------------

_CONTAINERS = {".mp4": "mp4", ".m4v": "m4v", ".mov": "mov", ".qt": "mov", ".3gp": "3gp", ".3g2": "3gp",
               ".f4v": "f4v", ".mkv": "matroska", ".mka": "matroska", ".mks": "matroska", ".webm": "webm",
               ".avi": "avi", ".flv": "flv", ".ts": "mpegts", ".m2ts": "mpegts", ".mts": "mpegts", ".wmv": "asf",
               ".asf": "asf", ".mpg": "mpeg", ".mpeg": "mpeg", ".vob": "mpeg", ".ogv": "ogg", ".ogg": "ogg"}
# The ISO/QuickTime family: -video_track_timescale applies, text subtitles are mov_text.
MOV_FAMILY = {"mp4", "m4v", "mov", "3gp", "f4v"}
# Read, but not written: what they are.
INPUT_ONLY = {".h264": "raw H.264 streams", ".264": "raw H.264 streams", ".h265": "raw HEVC streams",
              ".265": "raw HEVC streams", ".hevc": "raw HEVC streams", ".y4m": "YUV4MPEG files",
              ".dv": "DV files", ".mxf": "MXF files", ".divx": "DivX files"}
WRITABLE = ".mp4, .mkv, .mov, .webm, .avi, .ts, ..."
# Video encoders to use when none is given, first available first; other containers: _DEFAULT_VIDEO.
_VIDEO_CHOICES = {"webm": ("libvpx-vp9", "libvpx", "libaom-av1", "libsvtav1"), "ogg": ("libtheora", "libvpx"),
                  "mpeg": ("mpeg2video",)}
_DEFAULT_VIDEO = ("libx264", "libopenh264", "mpeg4")
# Containers that hold only these video codecs (ffmpeg's codec names); others are checked by the
# pipeline's preflight encode.
_VIDEO_ONLY = {"webm": {"vp8", "vp9", "av1"}, "ogg": {"theora", "vp8"}}
# Audio stream-copied into each container ('pcm_': any PCM), and what other audio becomes.
_AUDIO_COPY = {"mp4": {"aac", "mp3", "ac3", "eac3"}, "m4v": {"aac", "ac3", "alac"},
               "mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_"}, "3gp": {"aac"}, "f4v": {"aac", "mp3"},
               "flv": {"aac", "mp3"}, "webm": {"opus", "vorbis"}, "ogg": {"opus", "vorbis", "flac"},
               "avi": {"mp3", "mp2", "ac3", "pcm_"}, "mpegts": {"aac", "mp3", "mp2", "ac3", "eac3", "opus", "dts"},
               "asf": {"aac", "mp3", "mp2", "ac3", "wmav1", "wmav2", "wmapro", "flac", "vorbis", "pcm_"},
               "mpeg": {"mp1", "mp2", "mp3", "ac3", "dts", "pcm_dvd", "pcm_s16be"}}
_MP4_AUDIO_SINCE_5 = {"opus", "flac", "alac"}  # experimental in the mp4 muxer of ffmpeg 4.x
_AUDIO_CONVERT = {"webm": ["libopus", "160k"], "ogg": ["libopus", "160k"], "avi": ["libmp3lame", "192k"],
                  "mpeg": ["mp2", "224k"]}
_AAC = ["aac", "192k"]


def container_of(path):
    """The container family of an output path, from its extension: 'mp4', 'm4v', 'mov', '3gp',
    'f4v', 'matroska', 'webm', 'avi', 'flv', 'mpegts', 'asf', 'mpeg', 'ogg', or 'other'."""
    return _CONTAINERS.get(os.path.splitext(os.fspath(path))[1].lower(), "other")


def check_output_container(path):
    """VideoError (one line) for an output extension ppgan reads but does not write."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext in INPUT_ONLY:
        raise VideoError(f"cannot write {INPUT_ONLY[ext]} ({ext}): choose another output extension ({WRITABLE}): "
                         f"{path}")


def default_codec(path):
    """The video encoder used for `path` when none is given: the first of the container's choices
    this ffmpeg has (libx264 for most containers, VP9 for .webm; see the module docstring)."""
    container = container_of(path)
    choices = _VIDEO_CHOICES.get(container, _DEFAULT_VIDEO)
    have = ffmpeg_encoders()
    for name in choices:
        if name in have:
            return name
    raise VideoError(f"this ffmpeg ({ffmpeg_exe()}) has none of the encoders for {os.path.splitext(path)[1]} "
                     f"output ({', '.join(choices)}); choose another output extension or a codec")


def check_codec(codec, path):
    """VideoError (one line) when video encoder `codec` is unknown to this ffmpeg or cannot go into
    `path`'s container, naming the codec to pass instead."""
    have = ffmpeg_encoders()
    if not isinstance(codec, str) or codec not in have or have[codec][0] != "V":
        kind = {"A": "an audio", "S": "a subtitle"}.get(have.get(codec, ("",))[0]) if isinstance(codec, str) else None
        what = f"{codec} is {kind} encoder" if kind else f"unknown video encoder {codec!r}"
        raise VideoError(f"{what}; pass --codec {default_codec(path)} (or see ffmpeg -encoders)")
    container = container_of(path)
    allowed = _VIDEO_ONLY.get(container)
    if allowed is not None and have[codec][1] not in allowed:
        ext = os.path.splitext(os.fspath(path))[1].lower()
        raise VideoError(f"a {ext} file cannot hold {have[codec][1]} video ({codec}): pass --codec "
                         f"{default_codec(path)}, or write .mkv or .mp4")


def quality_args(codec, crf):
    """The options giving encoder `codec` quality `crf` (x264's scale: 0 best, 18 default, 51 worst):
    -crf where the encoder has it, a quantiser (-q:v) for MPEG-2/MPEG-4/Theora, else none."""
    if crf is None:
        return []
    if codec in CRF_CODECS:
        cap = {"libvpx-vp9": "0", "libvpx": "100M"}.get(codec)  # VP9: pure CRF; VP8: CRF under a high cap
        return ["-crf", str(crf)] + (["-b:v", cap] if cap else [])
    if codec in _QSCALE_CODECS:
        return ["-q:v", str(max(1, min(31, round(1 + crf / 6))))]
    if codec == "libtheora":
        return ["-q:v", str(max(0, min(10, round(10 - crf / 5))))]
    return []


# ---- stream mapping --------------------------------------------------------------------------

def _copyable(codec, allowed):
    return codec in allowed or ("pcm_" in allowed and codec.startswith("pcm_"))


def _audio_copy_set(container):
    ok = _AUDIO_COPY[container]
    if container == "mp4" and (ffmpeg_features()["version"] or (99,)) >= (5, 0):
        ok = ok | _MP4_AUDIO_SINCE_5
    return ok


def _stream_plan(streams, container):
    """[(stream, codec args or None to drop, note)] for the audio/subtitle streams of an input."""
    plan, n_audio = [], 0
    for s in streams:
        codec, kind = s["codec"], s["type"]
        if kind == "audio" and container == "flv" and n_audio:
            plan.append((s, None, "flv holds one audio stream"))
        elif kind == "audio":
            n_audio += 1
            if container in _AUDIO_COPY:
                ok = _copyable(codec, _audio_copy_set(container))
                plan.append((s, ["copy"] if ok else _AUDIO_CONVERT.get(container, _AAC), None))
            else:
                plan.append((s, ["copy"], None))
        elif kind == "subtitle":
            text = codec in _TEXT_SUBS
            if container in MOV_FAMILY - {"f4v"}:
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
            elif container == "mpegts" and codec == "dvb_subtitle":
                plan.append((s, ["copy"], None))
            else:
                plan.append((s, None, f"{codec} subtitles are not kept in {container} output"))
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

# Matrices swscale converts RGB to: the colorspace tag -> scale's out_color_matrix name.
_YUV_MATRICES = {"bt709": "bt709", "bt470bg": "bt470bg", "smpte170m": "smpte170m", "fcc": "fcc",
                 "smpte240m": "smpte240m", "bt2020nc": "bt2020"}
# Tags an encoder takes (ffmpeg's printed names; 'ebu3213' was 'jedec-p22' before ffmpeg 5).
_PRIMARIES = {"bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "film", "bt2020", "smpte428", "smpte431",
              "smpte432", "jedec-p22", "ebu3213"}
_TRANSFERS = {"bt709", "gamma22", "gamma28", "smpte170m", "smpte240m", "linear", "log100", "log316",
              "iec61966-2-4", "bt1361e", "iec61966-2-1", "bt2020-10", "bt2020-12", "smpte2084", "smpte428",
              "arib-std-b67"}
_ALIASES = {"ebu3213": "jedec-p22", "jedec-p22": "ebu3213"}  # same value, named differently by version
_RGB_PIX_PREFIXES = ("rgb", "bgr", "gbr", "argb", "abgr", "0rgb", "0bgr", "x2rgb", "x2bgr")


def is_rgb_output(codec, pix_fmt):
    """True when `codec` will store RGB: `pix_fmt` is an RGB format the encoder takes, or the
    encoder takes only RGB formats (ffmpeg then picks one of them, e.g. libx264rgb)."""
    fmts = encoder_pix_fmts(codec) if codec else ()
    if fmts and pix_fmt not in fmts:
        return all(f.startswith(_RGB_PIX_PREFIXES) for f in fmts)
    return str(pix_fmt).startswith(_RGB_PIX_PREFIXES)


def output_color(color, rgb_output):
    """The colour tags to write for an input tagged `color` (`VideoInfo.color`): only values an
    encoder takes, with a matrix that fits the output (see the module docstring). {} for an
    untagged input."""
    color = {k: v for k, v in (color or {}).items() if isinstance(v, str) and v and v not in UNKNOWN}
    out = {}
    if color.get("color_primaries") in _PRIMARIES:
        out["color_primaries"] = color["color_primaries"]
    if color.get("color_trc") in _TRANSFERS:
        out["color_trc"] = color["color_trc"]
    space = color.get("colorspace")
    if rgb_output:
        if color:
            out.update(colorspace="gbr", color_range="pc")
        return out
    if space in _YUV_MATRICES:
        out["colorspace"] = space
        if color.get("color_range") in ("tv", "pc"):
            out["color_range"] = color["color_range"]
    elif space is not None:  # RGB (gbr) or a matrix RGB is not converted to: a standard one
        out["colorspace"] = "bt2020nc" if out.get("color_primaries") == "bt2020" else "bt709"
        out["color_range"] = "tv"
    elif color.get("color_range") in ("tv", "pc"):
        out["color_range"] = color["color_range"]
    return out


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


def _color_args(color, codec=None, pix_fmt="yuv420p"):
    """(output options, filter) tagging the encoded stream with the input's colour tags `color` (as
    `output_color` maps them) and converting RGB with the matching matrix and range. Frames carry
    the tags (setparams) because ffmpeg takes the encoder's colour properties from the frames."""
    rgb = bool(color) and is_rgb_output(codec, pix_fmt)
    color = output_color(color, rgb)
    filters, scale = [], []
    if not rgb:
        if color.get("colorspace") in _YUV_MATRICES:
            scale.append(f"out_color_matrix={_YUV_MATRICES[color['colorspace']]}")
        if color.get("color_range") in ("tv", "pc"):
            scale.append(f"out_range={color['color_range']}")
    if scale:
        filters.append("scale=" + ":".join(scale))
    known = _setparams_names(ffmpeg_exe()) if color else {}
    args, params = [], []
    for key, opt in (("color_range", "range"), ("color_primaries", "color_primaries"), ("color_trc", "color_trc"),
                     ("colorspace", "colorspace")):
        value = color.get(key)
        if value not in known.get(opt, ()):
            value = _ALIASES.get(value)
            if value not in known.get(opt, ()):
                continue
        params.append(f"{opt}={value}")
        args += [f"-{key}", "rgb" if value == "gbr" else value]  # the encoder option's name for gbr
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
        codec (str|None): ffmpeg video encoder; None: one that fits the container (`default_codec`:
            libx264, VP9 for .webm). Default: None.
        crf (int|None): quality for encoders with -crf (x264, x265, VP9, AV1), mapped onto the
            quantiser of MPEG-2/MPEG-4/Theora. Default: 18.
        pix_fmt (str): encoded pixel format. Default: 'yuv420p' (needs even width and height).
        color (dict|None): colour tags (`VideoInfo.color`) written to the stream where the output
            can carry them (`output_color`); RGB is converted with the matching matrix and range.
        audio_from (str|None): a media file whose audio and subtitle streams are copied (or converted
            where the container needs it, see the module docstring) into the output.
        extra_args (list|None): more ffmpeg output options (e.g. ['-preset', 'fast']).
        on_encoded (callable|None): called with no arguments by the encoder thread after each frame
            has been handed to ffmpeg (e.g. a progress bar's update). Default: None.
    """

    def __init__(self, path, width, height, fps, codec=None, crf=18, pix_fmt="yuv420p", color=None,
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
        check_output_container(self.path)
        codec = default_codec(self.path) if codec is None else codec
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
        color_args, scale = _color_args(color, codec, pix_fmt)
        args += ["-map", "0:v:0"] + kept + ["-c:v", codec] + quality_args(codec, crf)
        if ffmpeg_encoders().get(codec, ("", "", False))[2]:  # e.g. libaom-av1 in ffmpeg 4.x
            args += ["-strict", "experimental"]
        args += ["-pix_fmt", pix_fmt, "-sws_flags", SWS_FLAGS] + color_args
        if scale:
            args += ["-vf", scale]
        if container_of(self.path) in MOV_FAMILY:
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
        if rc < 0:
            msg = crash_message(rc, msg)
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

"""The ffmpeg runner every video (and, later, audio) module goes through.

* `ffmpeg_exe()`: the binary: `$IMAGEIO_FFMPEG_EXE` when set (a path, or a name on `PATH`),
  else the one bundled with `imageio-ffmpeg`. Looked up again when the variable changes.
* `ffmpeg_version()` / `ffmpeg_features()`: read once per binary (`ffmpeg -version`, `ffmpeg -h
  long`) and cached per binary. Options that appeared in later releases are chosen from them: see
  `fps_mode_args` (`-fps_mode` is ffmpeg >= 5.1; older builds, such as the 4.2.2 bundled by
  imageio-ffmpeg 0.4.9-0.5.1, only know `-vsync`).
* `ffmpeg_encoders()`: {encoder: (kind, codec, experimental)} from `ffmpeg -encoders`, and
  `encoder_pix_fmts(encoder)`: the pixel formats it takes; both read once per binary.
* `run(args, what)`: one ffmpeg call with an argument list (never a shell string); a failure
  becomes a one-line `VideoError` made of ffmpeg's own words (`stderr_summary`), a crash (ffmpeg
  killed by a signal) one saying so.
* Helpers for the reader/writer threads that stream frames through ffmpeg's pipes: bounded
  queue sizing, draining, and killing a child process.
"""
import contextlib
import functools
import os
import queue
import re
import shutil
import signal
import subprocess

from ..utils.errors import PPGANError

ENV_EXE = "IMAGEIO_FFMPEG_EXE"
# RGB <-> YUV conversions: exact rounding and full chroma interpolation. swscale's defaults darken
# each encode/decode generation by about one level; with these the mean stays within 0.3.
SWS_FLAGS = "bicubic+accurate_rnd+full_chroma_int"
# The oldest ffmpeg with `-fps_mode` (before it: `-vsync`, which 7.x still accepts but warns about).
FPS_MODE_SINCE = (5, 1)


class VideoError(PPGANError):
    """A video file is missing, unreadable or damaged, or ffmpeg could not write one."""


# ---- the binary ------------------------------------------------------------------------------

def ffmpeg_exe():
    """Path of the ffmpeg binary: `$IMAGEIO_FFMPEG_EXE` (a path, or a name on PATH), else the one
    bundled with imageio-ffmpeg (which caches its own lookup)."""
    env_value = os.environ.get(ENV_EXE, "")
    if env_value:
        path = env_value if os.sep in env_value else (shutil.which(env_value) or env_value)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise VideoError(f"{ENV_EXE}={env_value} is not an executable file; unset it to use the ffmpeg of "
                             f"imageio-ffmpeg")
        return os.path.abspath(path)
    try:
        import imageio_ffmpeg
    except ImportError:
        raise VideoError("video support needs the imageio-ffmpeg package (pip install imageio-ffmpeg)") from None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as e:
        raise VideoError(f"no ffmpeg binary found: {e}") from None


@functools.lru_cache(maxsize=8)
def _features(exe):
    try:
        res = subprocess.run([exe, "-hide_banner", "-version"], stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=60)
        long_help = subprocess.run([exe, "-hide_banner", "-h", "long"], stdin=subprocess.DEVNULL,
                                   capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise VideoError(f"ffmpeg at {exe} does not run ({getattr(e, 'strerror', None) or e})") from None
    if res.returncode != 0:
        raise VideoError(f"ffmpeg at {exe} exited with code {res.returncode} on -version")
    text = res.stdout.decode("utf-8", "replace")
    first = (text.strip().splitlines() or ["ffmpeg version unknown"])[0]
    m = re.match(r"ffmpeg version n?(\d+)\.(\d+)", first)
    version = (int(m.group(1)), int(m.group(2))) if m else None
    options = set(re.findall(r"^-([\w:]+)", long_help.stdout.decode("utf-8", "replace"), re.M))
    return {"exe": exe, "version_line": first, "version": version, "options": options}


def ffmpeg_features():
    """{'exe', 'version_line' (first line of `ffmpeg -version`), 'version' ((major, minor) or None for
    a git build), 'options' (set of option names from `-h long`)} of the current binary, read once."""
    return _features(ffmpeg_exe())


def ffmpeg_version():
    """The first line of `ffmpeg -version`, e.g. 'ffmpeg version 4.2.2-static https://...'."""
    return ffmpeg_features()["version_line"]


def fps_mode_args(mode):
    """Output options selecting frame-rate handling `mode` ('passthrough', 'cfr', 'vfr'):
    `-fps_mode` on ffmpeg >= 5.1, `-vsync` on older ones (same values)."""
    feats = ffmpeg_features()
    known = "fps_mode" in feats["options"] if feats["options"] else (feats["version"] or (99,)) >= FPS_MODE_SINCE
    if known:
        return ["-fps_mode", mode]
    if "vsync" in feats["options"] or feats["version"] is not None:
        return ["-vsync", mode]
    raise VideoError(f"{feats['version_line']} at {feats['exe']} knows neither -fps_mode nor -vsync; "
                     f"install imageio-ffmpeg>=0.6 or point {ENV_EXE} at ffmpeg 5.1 or newer")


@functools.lru_cache(maxsize=8)
def _encoders(exe):
    out, _ = run(["-encoders"], "ffmpeg -encoders")
    found = {}
    for line in out.decode("utf-8", "replace").splitlines():
        m = re.match(r"^ ([VAS]([\w.]{5})) ([\w-]+)\s+(.*)$", line)
        if m and m.group(3) != "=":
            codec = re.search(r"\(codec (\w+)\)\s*$", m.group(4))
            found[m.group(3)] = (m.group(1)[0], codec.group(1) if codec else m.group(3), "X" in m.group(2)[:4])
    return found


def ffmpeg_encoders():
    """{encoder name: (kind 'V'/'A'/'S', codec name, experimental)} of the current binary, e.g.
    'libx264': ('V', 'h264', False); read once per binary."""
    return _encoders(ffmpeg_exe())


@functools.lru_cache(maxsize=64)
def _encoder_pix_fmts(exe, encoder):
    out, err = run(["-h", f"encoder={encoder}"], "ffmpeg -h", ok_codes=None)
    m = re.search(r"Supported pixel formats:([^\n]*)", out.decode("utf-8", "replace") + err)
    return tuple(m.group(1).split()) if m else ()


def encoder_pix_fmts(encoder):
    """The pixel formats video encoder `encoder` takes (ffmpeg picks one of them when asked for
    another); () when ffmpeg does not say (any format, or an unknown encoder). Read once."""
    return _encoder_pix_fmts(ffmpeg_exe(), encoder)


# ---- running it ------------------------------------------------------------------------------

_NOISE = re.compile(r"^(Error opening input files?|Error opening output files?|Conversion failed!|"
                    r"Exiting normally|Error opening input file|Error opening output file|Task finished with error|"
                    r"Terminating thread with return code|Nothing was written|.*misdetection possible)")


def stderr_summary(text, limit=300):
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


def ffmpeg_args(*args):
    """[exe, '-hide_banner', '-nostdin', *args]: the start of every command line we run."""
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", *args]


def run(args, what, ok_codes=(0,)):
    """Run ffmpeg with `args` (list); return (stdout bytes, stderr text); VideoError on failure
    (`ok_codes=None`: any exit code is accepted)."""
    try:
        res = subprocess.run(ffmpeg_args(*args), stdin=subprocess.DEVNULL, capture_output=True)
    except OSError as e:
        raise VideoError(f"{what}: cannot run ffmpeg ({e.strerror or e})") from None
    err = res.stderr.decode("utf-8", "replace")
    if res.returncode < 0:  # killed by a signal: a crash, whatever ok_codes says
        raise VideoError(f"{what}: {crash_message(res.returncode, err)}")
    if ok_codes is not None and res.returncode not in ok_codes:
        raise VideoError(f"{what}: {stderr_summary(err)}")
    return res.stdout, err


def crash_message(returncode, stderr_text=""):
    """'ffmpeg crashed (SIGSEGV)' (+ what it said) for a child that a signal ended."""
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    said = stderr_summary(stderr_text) if stderr_text.strip() else ""
    return f"ffmpeg crashed ({name})" + (f": {said}" if said and said != "ffmpeg failed" else "")


def ff_path(path):
    """A path as an ffmpeg input/output argument: absolute, so that a name starting with '-' is not
    taken for an option nor one like 'http:x.mp4' for a protocol."""
    return os.path.abspath(os.fspath(path))


# ---- pipes and threads -----------------------------------------------------------------------

END = object()  # end-of-stream marker in the frame queues


class Failure:
    """An exception raised in a reader/writer thread, queued for the consumer to re-raise."""

    def __init__(self, exc):
        self.exc = exc


def queue_size(frame_bytes, budget=192 << 20, lo=2, hi=16):
    """Frames a queue may hold: `budget` bytes, between `lo` and `hi` frames."""
    return int(max(lo, min(hi, budget // max(1, frame_bytes))))


def drain(q):
    with contextlib.suppress(queue.Empty):
        while True:
            q.get_nowait()


def kill(proc):
    if proc is not None and proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(Exception):
            proc.wait(timeout=10)

"""Synthetic test videos made from real scikit-image photos, with marks that tests can read back
(the video tests, `tools/benchmark_video.py`, the demo).

Each frame is a crop window panning and zooming over a photo (`skimage.data.astronaut()` by
default), rendered with cv2, so codecs see real texture and motion. Two marks make timing checkable:

* a frame-index barcode: the bottom eighth of every frame holds `BARCODE_BITS` black/white blocks,
  the binary index of the source frame (most significant bit on the left). `read_barcode` reads
  it back, also from resized frames, so a test can tell dropped, duplicated or reordered frames.
* audio clicks: a quiet sine tone with a loud 10 ms click at the start time of every
  `click_every`-th frame. `find_clicks` finds their onsets in decoded audio, so audio/video sync
  can be measured against the barcode.

The video is fed to the bundled ffmpeg as raw RGB over stdin, the audio from a temporary WAV file,
subtitles from a temporary SRT file.
"""
import os
import subprocess
import tempfile
import wave
from fractions import Fraction

import cv2
import numpy as np

from .ffmpeg import SWS_FLAGS, VideoError, ffmpeg_args, fps_mode_args, run, stderr_summary
from .probe import as_fraction

BARCODE_BITS = 12
SAMPLE_RATE = 48000
AUDIO_LANGUAGES = ("eng", "fra", "deu", "spa")


def _source_image(source):
    from skimage import data

    img = getattr(data, source)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


def render_frame(img, index, n_frames, size):
    """The `index`-th frame (RGB uint8, size = (W, H)) of a pan/zoom over `img`, barcode included."""
    w, h = size
    ih, iw = img.shape[:2]
    t = index / max(1, n_frames - 1)
    # Crop window: zooms from 70% to 45% of the photo height while its centre moves on an arc.
    crop_h = ih * (0.7 - 0.25 * t)
    crop_w = crop_h * w / h
    crop_w = min(crop_w, iw * 0.95)
    crop_h = crop_w * h / w
    cx = iw / 2 + (iw - crop_w) / 2 * 0.8 * np.cos(np.pi * (0.2 + 1.3 * t))
    cy = ih / 2 + (ih - crop_h) / 2 * 0.8 * np.sin(np.pi * (0.1 + 1.1 * t))
    scale = w / crop_w
    matrix = np.array([[scale, 0, w / 2 - scale * cx], [0, scale, h / 2 - scale * cy]], np.float64)
    frame = cv2.warpAffine(img, matrix, (w, h), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    draw_barcode(frame, index)
    return frame


def draw_barcode(frame, index):
    """Write `index` as BARCODE_BITS black/white blocks over the bottom eighth of `frame` (in place)."""
    h, w = frame.shape[:2]
    top = h - max(2, h // 8)
    edges = np.round(np.linspace(0, w, BARCODE_BITS + 1)).astype(int)
    for bit in range(BARCODE_BITS):
        on = (index >> (BARCODE_BITS - 1 - bit)) & 1
        frame[top:, edges[bit]:edges[bit + 1]] = 255 if on else 0
    return frame


def read_barcode(frame):
    """The frame index written by `draw_barcode`, read from the block centres (any frame size)."""
    h, w = frame.shape[:2]
    strip = max(2, h // 8)
    y0, y1 = h - strip + strip // 4, h - strip // 4
    edges = np.linspace(0, w, BARCODE_BITS + 1)
    value = 0
    for bit in range(BARCODE_BITS):
        x0 = int(edges[bit] + (edges[bit + 1] - edges[bit]) * 0.3)
        x1 = max(x0 + 1, int(edges[bit] + (edges[bit + 1] - edges[bit]) * 0.7))
        value = (value << 1) | int(frame[y0:max(y1, y0 + 1), x0:x1].mean() > 127)
    return value


def frame_times(n_frames, fps, vfr=False):
    """Presentation time (s, Fraction) of each frame. VFR: the first half runs at `fps`, the second
    half shows each frame twice as long (fps / 2)."""
    fps = as_fraction(fps)
    half = n_frames // 2
    times = []
    for i in range(n_frames):
        if vfr and i >= half:
            times.append(Fraction(half) / fps + Fraction(2 * (i - half)) / fps)
        else:
            times.append(Fraction(i) / fps)
    return times


def _click_frames(n_frames, click_every):
    return list(range(click_every // 2, n_frames, click_every))


def _write_wav(path, duration, click_times, freq):
    n = int(round(duration * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE
    sig = 0.1 * np.sin(2 * np.pi * freq * t)
    click_len = int(0.01 * SAMPLE_RATE)
    for ct in click_times:
        s = int(round(float(ct) * SAMPLE_RATE))
        e = min(n, s + click_len)
        if s < n:
            sig[s:e] = 0.9 * np.sign(np.sin(2 * np.pi * 1000 * t[s:e]) + 1e-9)
    pcm = np.clip(sig * 32767, -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SAMPLE_RATE)
        f.writeframes(pcm.tobytes())


def _srt_time(t):
    ms = int(round(t * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def _write_srt(path, duration):
    lines, k, t = [], 1, 0.0
    while t + 0.4 <= duration:
        lines += [str(k), f"{_srt_time(t)} --> {_srt_time(t + 0.4)}", f"cue {k}", ""]
        k += 1
        t += 0.5
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def make_test_video(path, seconds=2.0, fps=Fraction(24000, 1001), size=(96, 64), audio=True, subtitles=False,
                    vfr=False, source="astronaut", codec="libx264", audio_codec="aac", crf=18,
                    pix_fmt="yuv420p", color=None, rotation=0, click_every=12):
    """Write a test video to `path` and return a dict describing it.

    Args:
        path (str): output file; the extension picks the container (.mp4, .mkv, .mov, ...).
        seconds (float): length. Default: 2.0.
        fps (Fraction|int|str): frame rate (of the first half when `vfr`). Default: 24000/1001.
        size (tuple): (width, height). Default: (96, 64).
        audio (bool|int): number of audio tracks (True = 1), each a sine tone (440, 660, 880 Hz...)
            with clicks at the start of every `click_every`-th frame, languages eng, fra, deu, spa.
        subtitles (bool): add an SRT subtitle track (mov_text in .mp4/.mov), one cue every 0.5 s.
        vfr (bool): variable frame rate: the second half of the frames last 2/fps each.
        source (str): the scikit-image photo (`astronaut`, `chelsea`, `coffee`, ...).
        codec, audio_codec, crf, pix_fmt: encoder settings. Defaults: libx264, aac, 18, yuv420p.
        color (str|None): tag and encode with this matrix/primaries/transfer (e.g. 'bt709', limited
            range); None leaves the stream untagged.
        rotation (int): display-matrix rotation in degrees (counter-clockwise), set by a remux.
        click_every (int): frames between audio clicks.

    Returns:
        dict: n_frames, fps, duration (s), times (presentation time per frame, Fraction),
        click_frames (frame indices with a click), click_times (s), path.
    """
    fps = as_fraction(fps)
    w, h = int(size[0]), int(size[1])
    n_audio = int(audio)
    if vfr:
        # n frames with times from frame_times: n/2 at 1/fps plus n/2 at 2/fps = seconds.
        n_frames = max(2, int(round(float(seconds * fps) * 2 / 3)))
    else:
        n_frames = max(1, int(round(seconds * fps)))
    times = frame_times(n_frames, fps, vfr)
    last = Fraction(2 if vfr else 1) / fps  # the last frame is in the second (slow) half when vfr
    duration = times[-1] + last
    clicks = _click_frames(n_frames, click_every)
    click_times = [times[i] for i in clicks]
    img = _source_image(source)
    ext = os.path.splitext(path)[1].lower()
    mp4_like = ext in (".mp4", ".m4v", ".mov")

    with tempfile.TemporaryDirectory(prefix="ppgan-testvideo-") as tmp, tempfile.TemporaryFile() as err:
        args = ffmpeg_args("-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
                           "-r", f"{fps.numerator}/{fps.denominator}", "-i", "-")
        maps = ["-map", "0:v:0"]
        for k in range(n_audio):
            wav = os.path.join(tmp, f"a{k}.wav")
            _write_wav(wav, float(duration), click_times, 440 + 220 * k)
            args += ["-i", wav]
            maps += ["-map", f"{1 + k}:a:0"]
        if subtitles:
            srt = os.path.join(tmp, "s.srt")
            _write_srt(srt, float(duration))
            args += ["-i", srt]
            maps += ["-map", f"{1 + n_audio}:s:0"]
        args += maps
        vf = []
        if vfr:
            half = n_frames // 2
            num, den = fps.numerator, fps.denominator
            vf.append(f"setpts='if(lt(N,{half}),N*{den}/{num},({half}+2*(N-{half}))*{den}/{num})/TB'")
        if color:
            vf.append(f"scale=out_color_matrix={color}:out_range=tv,"
                      f"setparams=range=tv:colorspace={color}:color_primaries={color}:color_trc={color}")
        if vf:
            args += ["-vf", ",".join(vf)]
        if vfr:
            args += fps_mode_args("passthrough")
        args += ["-c:v", codec, "-pix_fmt", pix_fmt, "-sws_flags", SWS_FLAGS]
        if codec in ("libx264", "libx265"):
            args += ["-crf", str(crf), "-preset", "veryfast"]
        elif codec == "libvpx-vp9":
            args += ["-crf", str(crf), "-b:v", "0"]
        if n_audio:
            args += ["-c:a", audio_codec]
            for k in range(n_audio):
                args += [f"-metadata:s:a:{k}", f"language={AUDIO_LANGUAGES[k % len(AUDIO_LANGUAGES)]}"]
        if subtitles:
            args += ["-c:s", "mov_text" if mp4_like else "srt", "-metadata:s:s:0", "language=eng"]
        target = os.path.join(tmp, "video" + ext) if rotation else path
        args.append(target)

        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        try:
            for i in range(n_frames):
                proc.stdin.write(render_frame(img, i, n_frames, (w, h)).tobytes())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        finally:
            rc = proc.wait()
        if rc != 0:
            err.seek(0)
            msg = stderr_summary(err.read().decode("utf-8", "replace"))
            raise VideoError(f"making test video {path} failed: {msg}")
        if rotation:
            run(["-y", "-v", "error", "-display_rotation:v:0", str(rotation), "-i", target, "-map", "0", "-c", "copy",
                  path], f"making test video {path} failed")
    return {"path": path, "n_frames": n_frames, "fps": fps, "duration": duration, "times": times,
            "click_frames": clicks, "click_times": click_times}


def decode_audio(path, stream=0, sample_rate=SAMPLE_RATE):
    """Audio stream `stream` of `path` decoded to mono float32 at `sample_rate`, with its start time
    applied (leading silence inserted for a positive start, samples dropped for a negative one), so
    sample k plays at k / sample_rate seconds after the file's start."""
    out, _ = run(["-v", "error", "-i", path, "-map", f"0:a:{stream}", "-af", "aresample=async=0:first_pts=0",
                   "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-"], f"decoding audio of {path} failed")
    return np.frombuffer(out, np.float32)


def find_clicks(samples, sample_rate=SAMPLE_RATE, threshold=0.5, min_gap=0.1):
    """Onset times (s) of the clicks in `samples` (the tone stays below `threshold`)."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    onsets, last = [], -1e9
    for i in loud:
        if i - last > min_gap * sample_rate:
            onsets.append(i / sample_rate)
        last = i
    return onsets

"""ppgan.video.audio: decoding any audio ffmpeg reads to mono float32, whole and streamed."""
import os
import wave
from fractions import Fraction

import numpy as np
import pytest
import scipy.io.wavfile

from ppgan.utils.errors import ConfigError, PPGANError
from ppgan.video import VideoError
from ppgan.video.audio import AudioError, iter_audio, read_audio
from ppgan.video.ffmpeg import run
from ppgan.video.synthetic import find_clicks, make_test_video


def write_int16_wav(path, samples, rate):
    pcm = np.clip(np.round(np.asarray(samples) * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())
    return pcm.astype(np.float32) / 32768


def speechlike(n, rate, seed=0):
    t = np.arange(n) / rate
    rs = np.random.RandomState(seed)
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
            + 0.05 * rs.standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("audio")
    out = {}
    n = 16000 * 2 + 123  # not a whole number of blocks
    out["mono16k"] = str(d / "mono16k.wav"), write_int16_wav(d / "mono16k.wav", speechlike(n, 16000), 16000)
    stereo = np.stack([speechlike(n, 16000, 1), speechlike(n, 16000, 2)], axis=1)
    scipy.io.wavfile.write(d / "stereo_f32.wav", 16000, stereo)
    out["stereo"] = str(d / "stereo_f32.wav"), stereo.mean(axis=1, dtype=np.float32)
    run(["-y", "-v", "error", "-i", out["mono16k"][0], "-c:a", "flac", str(d / "mono16k.flac")], "flac")
    out["flac"] = str(d / "mono16k.flac"), out["mono16k"][1]
    info = make_test_video(str(d / "face.mp4"), seconds=2.0, fps=Fraction(24000, 1001))
    out["video"] = info
    make_test_video(str(d / "silent_film.mp4"), seconds=0.5, audio=False)
    out["no_audio"] = str(d / "silent_film.mp4")
    return out


# --- exact content and length ------------------------------------------------------------------

@pytest.mark.parametrize("key", ["mono16k", "stereo", "flac"])
def test_lossless_input_is_exact(media, key):
    path, want = media[key]
    got = read_audio(path, 16000)
    assert got.dtype == np.float32 and got.ndim == 1
    assert len(got) == len(want)
    np.testing.assert_array_equal(got, want)  # ints / 32768; stereo: the mean of the channels


@pytest.mark.parametrize("rate_in, rate_out", [(44100, 16000), (8000, 16000), (16000, 22050), (48000, 16000)])
def test_resampled_length_and_pitch(tmp_path, rate_in, rate_out):
    n = int(1.37 * rate_in)
    t = np.arange(n) / rate_in
    path = tmp_path / f"tone{rate_in}.wav"
    write_int16_wav(path, 0.5 * np.sin(2 * np.pi * 440 * t), rate_in)
    got = read_audio(str(path), rate_out)
    assert abs(len(got) - n * rate_out / rate_in) <= 1
    spec = np.abs(np.fft.rfft(got * np.hanning(len(got))))
    peak_hz = np.argmax(spec) * rate_out / len(got)
    assert abs(peak_hz - 440) < 2
    assert 0.45 < np.abs(got[len(got) // 4: -len(got) // 4]).max() < 0.55


def test_video_audio_track(media):
    info = media["video"]
    got = read_audio(info["path"], 16000)
    assert len(got) == round(float(info["duration"]) * 16000)  # sample-accurate: 2.002 s -> 32032
    clicks = find_clicks(got, sample_rate=16000)
    assert len(clicks) == len(info["click_times"])
    for found, want in zip(clicks, info["click_times"]):
        assert abs(found - float(want)) < 0.002


def test_late_audio_start_is_padded_with_silence(tmp_path, media):
    """Audio starting 0.5 s after the video: sample k still plays k / rate after the file's start."""
    src, want = media["mono16k"]
    late = tmp_path / "late.mkv"
    run(["-y", "-v", "error", "-i", media["no_audio"], "-itsoffset", "0.5", "-i", src, "-map", "0:v", "-map", "1:a",
         "-c:v", "copy", "-c:a", "flac", str(late)], "late")
    got = read_audio(str(late), 16000)
    assert abs(len(got) - (8000 + len(want))) <= 1
    assert np.abs(got[:7990]).max() == 0
    np.testing.assert_allclose(got[-len(want) + 10:], want[10:], atol=1e-6)


# --- start / duration / streaming ---------------------------------------------------------------

@pytest.mark.parametrize("start, duration", [(0.0, 1.0), (0.25, 0.5), (1.0, None), (0.0001, 0.0001), (1.9, 5.0)])
def test_start_and_duration_cut_whole_samples(media, start, duration):
    path, want = media["mono16k"]
    got = read_audio(path, 16000, start=start, duration=duration)
    s = round(start * 16000)
    e = len(want) if duration is None else min(len(want), s + round(duration * 16000))
    np.testing.assert_array_equal(got, want[s:e])


@pytest.mark.parametrize("key", ["mono16k", "stereo", "video"])
@pytest.mark.parametrize("block_seconds", [0.01, 0.3, 1.0, 100.0])
def test_streamed_blocks_are_the_whole(media, key, block_seconds):
    path = media[key]["path"] if key == "video" else media[key][0]
    whole = read_audio(path, 16000)
    blocks = list(iter_audio(path, 16000, block_seconds))
    size = round(block_seconds * 16000)
    assert all(len(b) == size for b in blocks[:-1]) and 0 < len(blocks[-1]) <= size
    assert all(b.dtype == np.float32 for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), whole)


def test_streamed_with_start_is_the_tail(media):
    path, want = media["stereo"]
    blocks = list(iter_audio(path, 16000, 0.1, start=0.5, duration=1.0))
    np.testing.assert_array_equal(np.concatenate(blocks), want[8000:24000])
    assert len(blocks) == 10


def test_stopping_a_stream_early(media):
    gen = iter_audio(media["mono16k"][0], 16000, 0.05)
    first = next(gen)
    gen.close()  # kills ffmpeg, no error
    assert len(first) == 800


# --- errors: one line, a PPGANError ---------------------------------------------------------------

def _bad_files(tmp_path, media):
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 20)
    zero = tmp_path / "zero.wav"
    zero.write_bytes(b"")
    header_only = tmp_path / "header_only.wav"
    write_int16_wav(header_only, np.zeros(0), 16000)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(open(media["mono16k"][0], "rb").read()[:30])
    return {
        "missing": (str(tmp_path / "nope.wav"), "not found"),
        "folder": (str(tmp_path), "folder"),
        "zero_bytes": (str(zero), "empty"),
        "not_audio": (str(text), "cannot read"),
        "no_audio_stream": (media["no_audio"], "no audio stream"),
        "zero_length": (str(header_only), "no audio samples"),
        "truncated_header": (str(cut), "cannot read|no audio"),
    }


@pytest.mark.parametrize("case", ["missing", "folder", "zero_bytes", "not_audio", "no_audio_stream", "zero_length",
                                  "truncated_header"])
@pytest.mark.parametrize("streamed", [False, True])
def test_bad_files_give_one_line(tmp_path, media, case, streamed):
    path, match = _bad_files(tmp_path, media)[case]
    with pytest.raises(AudioError, match=match) as e:
        if streamed:
            list(iter_audio(path, 16000, 0.5))
        else:
            read_audio(path)
    assert isinstance(e.value, VideoError) and isinstance(e.value, PPGANError)
    msg = str(e.value)
    assert "\n" not in msg and (os.path.basename(path) in msg)


def test_start_past_the_end(media):
    with pytest.raises(AudioError, match="after 3 s"):
        read_audio(media["mono16k"][0], start=3.0)
    with pytest.raises(AudioError, match="no audio stream 1"):
        read_audio(media["mono16k"][0], stream=1)


@pytest.mark.parametrize("kwargs, match", [
    (dict(sample_rate=0), "sample_rate"), (dict(sample_rate=16000.5), "sample_rate"),
    (dict(start=-1.0), "start"), (dict(start=float("nan")), "start"),
    (dict(duration=0), "duration"), (dict(block_seconds=0), "block_seconds"),
])
def test_bad_arguments(media, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        iter_audio(media["mono16k"][0], **kwargs)

"""ppgan.utils.audio: PaddleGAN's mel spectrogram and per-frame mel windows (fixture wav2lip_mel)."""
import os
from fractions import Fraction

import numpy as np
import pytest
import scipy.signal

import ppgan.utils.audio as audio
from ppgan.utils.errors import ConfigError

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "parity",
                       "wav2lip_mel.npz")


@pytest.fixture(scope="module")
def fx():
    return dict(np.load(FIXTURE, allow_pickle=False))


@pytest.fixture(scope="module")
def mel(fx):
    return audio.melspectrogram(fx["in_wav"])


def test_mel_matches_paddlegan(fx, mel):
    want = fx["out_mel"]
    assert mel.shape == want.shape == (80, 1 + len(fx["in_wav"]) // 200) and mel.dtype == np.float64
    # a float64 re-implementation of PaddleGAN's maths agrees to ~1e-12 (fixture notes); atol is 5e-4
    np.testing.assert_allclose(mel, want, rtol=0, atol=1e-9)


def test_stft_pads_by_reflection_as_librosa_0_8(fx, mel):
    """librosa >= 0.10 pads with zeros: only the first / last frames change, and we must not match it."""
    const = fx["out_mel_constant_pad"]
    diff = np.abs(mel - const).max(axis=0)
    assert diff[:2].max() > 1e-3 and diff[-2:].max() > 1e-3
    assert diff[3:-3].max() < 1e-9


def test_chunks_match_paddlegan(fx, mel):
    chunks = audio.mel_chunks(mel, 25)
    assert chunks.shape == fx["out_mel_chunks"].shape == (40, 80, 16)
    np.testing.assert_allclose(chunks, fx["out_mel_chunks"], rtol=0, atol=1e-9)
    starts = [audio.mel_window_start(k, 25, mel.shape[1]) for k in range(len(chunks))]
    assert starts == fx["out_mel_chunk_starts"].tolist()
    assert audio.num_mel_chunks(mel.shape[1], 25) == 40


@pytest.mark.parametrize("fps", [25, Fraction(24000, 1001), 30, 60, 12.5])
@pytest.mark.parametrize("start", [0, 1, 7, 20])
def test_chunks_resume_at_any_frame(mel, fps, start):
    full = audio.mel_chunks(mel, fps)
    tail = audio.mel_chunks(mel, fps, start_frame=start)
    assert len(tail) == max(0, len(full) - start)
    np.testing.assert_array_equal(tail, full[start:])


@pytest.mark.parametrize("fps", [25, Fraction(30000, 1001)])
def test_chunks_fixed_count_clamps_past_the_end(mel, fps):
    full = audio.mel_chunks(mel, fps)
    longer = audio.mel_chunks(mel, fps, n_frames=len(full) + 5)
    assert longer.shape == (len(full) + 5, 80, 16)
    np.testing.assert_array_equal(longer[:len(full)], full)
    for c in longer[len(full) - 1:]:
        np.testing.assert_array_equal(c, mel[:, -16:])
    part = audio.mel_chunks(mel, fps, start_frame=3, n_frames=4)
    np.testing.assert_array_equal(part, full[3:7])
    assert audio.mel_chunks(mel, fps, start_frame=3, n_frames=0).shape == (0, 80, 16)


def test_chunk_count_is_paddlegans_loop():
    def paddle_count(total, fps):
        i = 0
        while int(i * 80. / fps) + 16 <= total:
            i += 1
        return i + 1

    for fps in (25, 24000 / 1001, 29.97, 30, 50, 7):
        for total in range(16, 300, 7):
            assert audio.num_mel_chunks(total, fps) == paddle_count(total, fps), (total, fps)


@pytest.mark.parametrize("n", [401, 799, 3200, 16000, 27201])
def test_frame_count_and_range(n):
    wav = np.random.RandomState(n).uniform(-1, 1, n).astype(np.float32)
    m = audio.melspectrogram(wav)
    assert m.shape == (80, 1 + n // 200)
    assert m.min() >= -4 and m.max() <= 4


def test_blocks_do_not_change_the_result(fx, mel, monkeypatch):
    monkeypatch.setattr(audio, "_BLOCK_FRAMES", 7)
    np.testing.assert_allclose(audio.melspectrogram(fx["in_wav"]), mel, rtol=0, atol=1e-12)  # BLAS order only


def test_preemphasis_is_lfilter(fx):
    wav = fx["in_wav"]
    np.testing.assert_array_equal(audio.preemphasis(wav, 0.97), scipy.signal.lfilter([1, -0.97], [1], wav))


def test_mel_basis_is_slaney():
    basis = audio.mel_basis()
    assert basis.shape == (80, 401) and basis.dtype == np.float32
    freqs = np.linspace(0, 8000, 401)
    assert basis[:, freqs < 55].max() == 0 and basis[:, freqs > 7600].max() == 0
    assert (basis.max(axis=1) > 0).all()  # no empty band
    # area normalisation: each triangle integrates (over Hz) to ~1 (2 / width x width / 2)
    areas = basis.sum(axis=1) * (freqs[1] - freqs[0])
    np.testing.assert_allclose(areas[20:], 1, rtol=0.05)
    np.testing.assert_allclose(audio.mel_to_hz(audio.hz_to_mel([55, 700, 1000, 7600])), [55, 700, 1000, 7600])


@pytest.mark.parametrize("wav, match", [
    (np.zeros(0, np.float32), "empty"),
    (np.zeros((2, 800), np.float32), "1-D"),
    (np.array([0.1, np.nan] * 400, np.float32), "NaN"),
    (np.zeros(300, np.float32), "too short"),
])
def test_mel_rejects_bad_audio(wav, match):
    with pytest.raises(ConfigError, match=match):
        audio.melspectrogram(wav)


def test_chunks_reject_bad_args(mel):
    with pytest.raises(ConfigError, match="too short"):
        audio.mel_chunks(mel[:, :15], 25)
    with pytest.raises(ConfigError, match="start_frame"):
        audio.mel_chunks(mel, 25, start_frame=-1)
    with pytest.raises(ConfigError, match="fps"):
        audio.mel_chunks(mel, 0)
    with pytest.raises(ConfigError, match="num_mels, frames"):
        audio.mel_chunks(mel[0], 25)


def test_silence_is_the_floor():
    m = audio.melspectrogram(np.zeros(4000, np.float32))
    np.testing.assert_array_equal(m, -4.0)

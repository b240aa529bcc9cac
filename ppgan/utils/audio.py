"""Wav2Lip's audio features: PaddleGAN's mel spectrogram and its per-video-frame mel windows.

Reproduces PaddleGAN `ppgan/utils/audio.py` with its default hparams (`audio_config.py`, the same
as the original Wav2Lip's) in numpy / scipy only, without librosa:

    wav (float mono, 16 kHz) -> pre-emphasis y[n] = x[n] - 0.97 x[n-1] (float64)
    -> STFT: n_fft 800, hop 200, periodic Hann window of 800, centred with *reflect* padding
       (librosa 0.8's default, which PaddleGAN pins; librosa >= 0.10 pads with zeros, which changes
       the first and last two frames) -> magnitude |D|
    -> mel: librosa's Slaney filter bank (80 bands, 55-7600 Hz, area-normalised, float32) . |D|
    -> dB: 20 log10(max(1e-5, x)) - ref_level_db 20
    -> normalise: clip(8 (S + 100) / 100 - 4, -4, 4)          (symmetric, max_abs_value 4)
    = [80, 1 + len(wav) // 200] float64, row 0 the lowest band.

The STFT runs over blocks of frames, so memory beyond the output stays flat in the audio length.
`mel_chunks` gives video frame k the 16-frame window starting at int(k * 80 / fps) (PaddleGAN's
`Wav2LipPredictor` rule), computed from k alone: a job resumed at frame s gets the same windows as
an uninterrupted one.
"""
import math
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError


@dataclass(frozen=True)
class AudioConfig:
    """PaddleGAN's audio hparams (`ppgan/utils/audio_config.py`), same names. Only the mel path is
    implemented: `use_lws` must stay False, and `rescale` / `rescaling_max` are unused there too."""

    num_mels: int = 80
    rescale: bool = True
    rescaling_max: float = 0.9
    use_lws: bool = False
    n_fft: int = 800
    hop_size: int = 200
    win_size: int = 800
    sample_rate: int = 16000
    frame_shift_ms: float = None
    signal_normalization: bool = True
    allow_clipping_in_normalization: bool = True
    symmetric_mels: bool = True
    max_abs_value: float = 4.0
    preemphasize: bool = True
    preemphasis: float = 0.97
    min_level_db: float = -100
    ref_level_db: float = 20
    fmin: float = 55
    fmax: float = 7600
    fps: float = 25


AUDIO_CONFIG = AudioConfig()
MEL_STEP_SIZE = 16  # mel frames per window fed to Wav2Lip (0.2 s)
_BLOCK_FRAMES = 2048  # STFT frames computed at once


def hop_size(cfg=AUDIO_CONFIG):
    if cfg.hop_size is not None:
        return int(cfg.hop_size)
    if cfg.frame_shift_ms is None:
        raise ConfigError("audio config needs hop_size or frame_shift_ms")
    return int(cfg.frame_shift_ms / 1000 * cfg.sample_rate)


def preemphasis(wav, k=AUDIO_CONFIG.preemphasis, preemphasize=True):
    """y[n] = x[n] - k x[n-1] (scipy.signal.lfilter([1, -k], [1], x)), float64."""
    x = np.asarray(wav, dtype=np.float64)
    if not preemphasize:
        return x
    y = x.copy()
    y[1:] -= k * x[:-1]
    return y


# ---- librosa's Slaney mel scale and filter bank ------------------------------------------------

_F_SP = 200.0 / 3  # Hz per mel below 1 kHz
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(hz):
    """Slaney's mel scale (librosa `hz_to_mel(htk=False)`): linear below 1 kHz, log above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / _F_SP
    log_part = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(hz >= _MIN_LOG_HZ, log_part, mel)


def mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    hz = _F_SP * mel
    log_part = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mel - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log_part, hz)


def mel_basis(cfg=AUDIO_CONFIG):
    """[num_mels, 1 + n_fft // 2] float32: librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)
    (htk=False, norm='slaney'): triangles on the Slaney mel scale, each scaled by 2 / its width in Hz."""
    if cfg.fmax > cfg.sample_rate // 2:
        raise ConfigError(f"audio fmax {cfg.fmax} is above the Nyquist frequency {cfg.sample_rate // 2}")
    n_bins = 1 + cfg.n_fft // 2
    fft_freqs = np.linspace(0, float(cfg.sample_rate) / 2, n_bins, endpoint=True)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(cfg.fmin), hz_to_mel(cfg.fmax), cfg.num_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    weights = np.zeros((cfg.num_mels, n_bins), dtype=np.float32)
    for i in range(cfg.num_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:cfg.num_mels + 2] - mel_f[:cfg.num_mels])
    weights *= enorm[:, None]  # float32 rounding twice, as librosa
    return weights


_BASES = {}


def _cached_basis(cfg):
    if cfg not in _BASES:
        _BASES[cfg] = mel_basis(cfg)
    return _BASES[cfg]


# ---- STFT -> mel -> dB -> normalised -----------------------------------------------------------

def _hann(n):
    """Periodic Hann window (scipy.signal.get_window('hann', n, fftbins=True))."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def _stft_magnitude_blocks(y, cfg):
    """Yield |STFT| of `y` ([1 + n_fft // 2, frames] float64) block by block of frames (librosa 0.8
    `stft(center=True, pad_mode='reflect')`)."""
    n_fft, hop, win = cfg.n_fft, hop_size(cfg), cfg.win_size
    if win > n_fft:
        raise ConfigError(f"audio win_size {win} is larger than n_fft {n_fft}")
    window = np.zeros(n_fft)
    left = (n_fft - win) // 2
    window[left:left + win] = _hann(win)
    pad = n_fft // 2
    if len(y) <= pad:
        raise ConfigError(f"audio too short: {len(y)} samples, the STFT needs more than {pad}")
    y = np.pad(y, pad, mode="reflect")
    n_frames = 1 + (len(y) - n_fft) // hop
    frames = np.lib.stride_tricks.as_strided(y, shape=(n_frames, n_fft), strides=(hop * y.strides[0], y.strides[0]),
                                             writeable=False)
    for s in range(0, n_frames, _BLOCK_FRAMES):
        yield np.abs(np.fft.rfft(frames[s:s + _BLOCK_FRAMES] * window, axis=1)).T


def amp_to_db(x, cfg=AUDIO_CONFIG):
    min_level = np.exp(cfg.min_level_db / 20 * np.log(10))
    return 20 * np.log10(np.maximum(min_level, x))


def normalize(S, cfg=AUDIO_CONFIG):
    """dB -> PaddleGAN's normalised range ([-4, 4] for the symmetric defaults)."""
    m, lo = cfg.max_abs_value, cfg.min_level_db
    if cfg.symmetric_mels:
        out = (2 * m) * ((S - lo) / (-lo)) - m
        return np.clip(out, -m, m) if cfg.allow_clipping_in_normalization else out
    out = m * ((S - lo) / (-lo))
    return np.clip(out, 0, m) if cfg.allow_clipping_in_normalization else out


def melspectrogram(wav, cfg=AUDIO_CONFIG):
    """PaddleGAN's `melspectrogram(wav)`: 1-D float waveform at `cfg.sample_rate` (16 kHz) ->
    [num_mels, 1 + len(wav) // hop] float64 (80 x one frame per 12.5 ms). ConfigError for an empty,
    multi-channel or non-finite waveform."""
    if cfg.use_lws:
        raise ConfigError("audio config use_lws=True is not supported (PaddleGAN's default is False)")
    wav = np.asarray(wav)
    if wav.ndim != 1:
        raise ConfigError(f"melspectrogram needs a 1-D mono waveform, got shape {wav.shape}")
    if wav.size == 0:
        raise ConfigError("melspectrogram: the audio is empty")
    if not np.isfinite(wav).all():
        raise ConfigError("melspectrogram: the audio contains NaN or infinite samples")
    y = preemphasis(wav, cfg.preemphasis, cfg.preemphasize)
    basis = _cached_basis(cfg)
    out = []
    for mag in _stft_magnitude_blocks(y, cfg):
        S = amp_to_db(np.dot(basis, mag), cfg) - cfg.ref_level_db
        out.append(normalize(S, cfg) if cfg.signal_normalization else S)
    return np.concatenate(out, axis=1)


# ---- per-frame windows -------------------------------------------------------------------------

def mel_window_start(k, fps, n_mel_frames, step=MEL_STEP_SIZE):
    """Start column of video frame k's window: int(k * 80 / fps), clamped to n_mel_frames - step."""
    start = int(k * (80.0 / float(fps)))
    return min(start, n_mel_frames - step)


def num_mel_chunks(n_mel_frames, fps, step=MEL_STEP_SIZE):
    """How many frames PaddleGAN's predictor makes from a mel of `n_mel_frames` columns: frames
    k = 0, 1, ... while int(k * 80 / fps) + step <= n_mel_frames, plus the one whose window is
    clamped to the end."""
    if fps <= 0:
        raise ConfigError(f"fps must be positive, got {fps}")
    mult = 80.0 / float(fps)
    k = max(0, int((n_mel_frames - step) / mult) - 1)
    while int(k * mult) + step <= n_mel_frames:
        k += 1
    return k + 1


def mel_chunks(mel, fps, start_frame=0, n_frames=None, step=MEL_STEP_SIZE):
    """The mel windows of video frames start_frame, start_frame + 1, ...: [N, num_mels, step].

    Frame k's window is mel[:, s:s + step] with s = int(k * 80. / fps) (80 mel frames per second),
    or the last `step` columns once s + step passes the end (PaddleGAN's `Wav2LipPredictor` rule).
    n_frames None: up to PaddleGAN's count (`num_mel_chunks`: the first clamped window is the
    last); else exactly n_frames windows (later ones clamped to the end too). The window of frame k
    depends only on k, so `mel_chunks(mel, fps, s)` equals `mel_chunks(mel, fps)[s:]`.

    Raises ConfigError when the mel is shorter than one window (under 0.2 s of audio).
    """
    mel = np.asarray(mel)
    if mel.ndim != 2:
        raise ConfigError(f"mel_chunks needs a [num_mels, frames] mel, got shape {mel.shape}")
    total = mel.shape[1]
    if total < step:
        raise ConfigError(f"audio too short: {total} mel frames, one window needs {step} "
                          f"({step * AUDIO_CONFIG.hop_size / AUDIO_CONFIG.sample_rate:.2f} s at 16 kHz)")
    start_frame = int(start_frame)
    if start_frame < 0:
        raise ConfigError(f"start_frame must be >= 0, got {start_frame}")
    end = num_mel_chunks(total, fps, step) if n_frames is None else start_frame + int(n_frames)
    ks = range(start_frame, max(start_frame, end))
    out = np.empty((len(ks), mel.shape[0], step), dtype=mel.dtype)
    for i, k in enumerate(ks):
        s = mel_window_start(k, fps, total, step)
        out[i] = mel[:, s:s + step]
    return out

"""Lip-sync a face video (or photo) to any audio with Wav2Lip: `Wav2LipPredictor` (PaddleGAN's name,
arguments and `run(face, audio, outfile)`).

    from ppgan.apps.wav2lip_predictor import Wav2LipPredictor
    Wav2LipPredictor(checkpoint_path='wav2lip_hq.pdparams').run('talk.mp4', 'speech.m4a', 'out.mp4')

What the output is:

- **Length**: the audio's, at the face video's exact frame rate (a photo: `fps`, default 25): frame
  count = round(audio seconds * fps), so the video ends with the audio (within half a frame),
  also at 23.976 or 29.97 fps. The audio (any format ffmpeg reads) is muxed in.
- **Audio longer than the face video**: the video is played forwards, backwards, forwards, ...
  (ping-pong: frame index 0, 1, ..., n-1, n-2, ..., 1, 0, 1, ...), so the loop has no jump.
  Audio shorter than the video: the output stops with the audio.
- **Faces**: found by `ppgan.faceutils.track_faces` (batched detection, IoU tracking, zero-lag
  temporal smoothing unless `nosmooth`), cached by the video's content and the detector, so a
  second audio on the same video skips detection. `box` fixes the box instead; `face_index`
  picks one person (track ids in order of appearance; default: the face seen in the most frames).
  `detect_every` / `detect_size` make detection cheaper (every n-th frame, interpolated between;
  frames shrunk to a longer side), each setting cached separately.
  Frames without that face are passed through unchanged and logged with their time ranges; a
  video with no face in any frame is an error (one line, nothing written).
- **Blending**: the 96x96 prediction is resized to the face box and blended back with a feathered
  mask that is exactly 0 on the box border (no visible box): the lower face from the 468-point
  face mesh (`FaceMesh`) with `mask='mesh'` (and with 'auto' on CUDA, when the mesh model loads;
  on a CPU the mesh costs more per frame than Wav2Lip), else the lower half of the box, feathered.
  Before blending, the prediction's colour is matched to the frame's (per channel mean and std,
  measured in the mask's soft ring, where both show the same skin), so the mouth is not darker
  or tinted.
- **Streaming and resumable**: the output's frames come from `ppgan.video.process_video` in
  chunks, and the audio is decoded and turned into its mel spectrogram in 10 s blocks (exactly
  the whole file's mel), so memory does not grow with the length (only the mel itself: 26 kB/s).
  The job's input is a tiny "timeline" video made once per (face, audio, fps) beside the output
  (`.<outfile>.w2l-<key>.mov`: N grey 64x64 frames + the audio); the Wav2Lip stage draws frame
  k's face frame and mel window from the absolute index k given by `reset(start_frame)`, so a
  killed job re-run with the same arguments continues from the last finished chunk and writes
  what an uninterrupted run writes. The timeline file is removed with the job's parts when the
  job succeeds or fails before finishing a chunk.
- **Out of memory** in the model: the batch is halved and the batch retried (logged), down to 1.
- **Precision**: fp16 autocast on CUDA by default, fp32 on a CPU; `half='bf16'` (CLI
  `--precision bf16`) runs autocast bf16 in channels-last, several times faster on CPUs with AMX
  (Sapphire Rapids and later), within about 1/255 of fp32 on average.

Bad input (one error line from the CLI, non-zero exit, nothing written): a missing or unreadable
face or audio file, audio that is empty, silent (peak below -80 dBFS) or shorter than one frame
(audio under 0.2 s, one Wav2Lip window, is padded with silence),
a face video where no face is found, a face file that is neither an image nor a video.
"""
import contextlib
import hashlib
import json
import os
from fractions import Fraction

import cv2
import numpy as np
import torch

from ..utils.errors import CheckpointError, ConfigError, PPGANError
from ..utils.inference import is_out_of_memory
from ..video import FrameStage
from .base_predictor import OOM_ERRORS, BasePredictor

WAV2LIP_WEIGHT_URL = "https://paddlegan.bj.bcebos.com/models/wav2lip_hq.pdparams"
IMG_SIZE = 96
MEL_STEP = 16
SAMPLE_RATE = 16000
SILENCE_PEAK = 1e-4  # -80 dBFS: quieter audio is "silent"
TIMELINE_FORMAT = "ppgan-wav2lip-timeline/1"
MASKS = ("auto", "mesh", "box")


def pingpong_index(k, n):
    """Face-video frame shown at output frame k when the video (n frames) is looped ping-pong:
    0, 1, ..., n-1, n-2, ..., 1, 0, 1, ..."""
    if n <= 1:
        return 0
    period = 2 * n - 2
    m = k % period
    return m if m < n else period - m


def missing_ranges(flags, fps):
    """[(first, last)] frame runs where `flags` is True, and the same as '0.00-1.25 s' text."""
    runs, start = [], None
    for i, f in enumerate(list(flags) + [False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            runs.append((start, i - 1))
            start = None
    text = ", ".join(f"{float(Fraction(a) / fps):.2f}-{float(Fraction(b + 1) / fps):.2f} s" for a, b in runs)
    return runs, text


# ---- audio ---------------------------------------------------------------------------------------

def stream_mel(blocks):
    """`melspectrogram` of the concatenated audio `blocks` (mono float32 at 16 kHz, as
    `ppgan.video.audio.iter_audio` yields them), computed segment by segment so that only one block
    of samples (plus a 600-sample overlap) is in memory: each segment's columns whose STFT window
    (and pre-emphasis) lies inside it are the whole signal's columns. Returns (mel float32
    [80, 1 + n // 200] or None when there are too few samples, n samples, peak |sample|)."""
    from ..utils.audio import AUDIO_CONFIG, hop_size, melspectrogram

    hop, pad = hop_size(AUDIO_CONFIG), AUDIO_CONFIG.n_fft // 2
    margin = -(-(pad + 1) // hop) * hop  # samples before a column's window start: pad + 1 (pre-emphasis), whole hops
    buf, a, n, peak, done, cols = np.zeros(0, np.float32), 0, 0, 0.0, 0, []
    for block in blocks:
        block = np.asarray(block, np.float32)
        if block.size == 0:
            continue
        if not np.isfinite(block).all():
            raise PPGANError("the audio contains NaN or infinite samples")
        n += block.size
        peak = max(peak, float(block.max()), -float(block.min()))
        buf = np.concatenate([buf, block])
        b = a + buf.size
        end = (b - pad) // hop + 1  # columns whose window ends inside [a, b)
        if end - done >= 64 and buf.size > pad:
            mel = melspectrogram(buf)
            cols.append(mel[:, done - a // hop:end - a // hop].astype(np.float32))
            done = end
            new_a = max(0, done * hop - margin)
            buf, a = buf[new_a - a:].copy(), new_a
    if buf.size <= pad:  # (empty, or too short for one STFT frame: the caller says which)
        return None, n, peak
    mel = melspectrogram(buf)  # the rest: its end is the signal's end, reflected the same way
    cols.append(mel[:, done - a // hop:].astype(np.float32))
    return np.concatenate(cols, axis=1), n, peak


# ---- blending ----------------------------------------------------------------------------------

def inset_rect_mask(h, w, feather, top=0):
    """Feathered mask (h, w) of the rectangle from row `top` down, inset so that the blur (radius
    `feather`) ends just inside the border: exactly 0 on every border pixel."""
    from ..faceutils.masks import feather_mask

    f = max(1, int(round(feather)))
    e = f + 1  # the kernel reaches f pixels: the hard rectangle stops f + 1 from the border
    hard = np.zeros((h, w), np.float32)
    hard[max(top, e):max(h - e, top + 1), e:max(w - e, e + 1)] = 1.0
    return feather_mask(hard, f)


def lower_half_mask(h, w, feather=None):
    """Feathered mask (h, w) of the lower half of a face box: 1 over the mouth and jaw, falling
    smoothly to exactly 0 at the box border and above the middle."""
    return inset_rect_mask(h, w, 0.1 * min(h, w) if feather is None else feather, top=h // 2)


def color_match(gen, orig, mask, max_gain=2.0):
    """`gen` (float HxWx3) with each channel's mean and std set to `orig`'s, both measured with
    weights mask * (1 - mask) (the soft ring of the blend, where both show the same skin); the
    gain is kept within [1 / max_gain, max_gain]. Returns `gen` unchanged when the ring is empty."""
    ring = (mask * (1.0 - mask)).astype(np.float64)
    total = ring.sum()
    if total < 1.0:
        return gen
    wts = ring[..., None] / total
    mg, mo = (gen * wts).sum((0, 1)), (orig * wts).sum((0, 1))
    sg = np.sqrt(((gen - mg) ** 2 * wts).sum((0, 1)))
    so = np.sqrt(((orig - mo) ** 2 * wts).sum((0, 1)))
    gain = np.clip(so / np.maximum(sg, 1e-6), 1.0 / max_gain, max_gain)
    gain = np.where(sg < 1e-6, 1.0, gain)
    return ((gen - mg) * gain + mo).astype(np.float32)


def blend_face(frame, gen_crop, box, mask, match_color=True):
    """Blend `gen_crop` (float32 HxWx3 RGB in [0, 255], the box's size) into a copy of `frame`
    (uint8) inside `box` (int x1, y1, x2, y2) with `mask` (the box's size, [0, 1], 0 at its border)."""
    x1, y1, x2, y2 = box
    out = frame.copy()
    orig = frame[y1:y2, x1:x2].astype(np.float32)
    if match_color:
        gen_crop = color_match(gen_crop, orig, mask)
    m = mask[..., None]
    out[y1:y2, x1:x2] = np.clip(np.rint(orig * (1.0 - m) + gen_crop * m), 0, 255).astype(np.uint8)
    return out


# ---- face frames -------------------------------------------------------------------------------

def transform_frame(frame, resize_factor=1, rotate=False, crop=(0, -1, 0, -1)):
    """PaddleGAN's frame preparation: shrink by `resize_factor`, turn 90 degrees clockwise
    (`rotate`), crop to (top, bottom, left, right) (-1: to the edge)."""
    if resize_factor > 1:
        frame = cv2.resize(frame, (frame.shape[1] // resize_factor, frame.shape[0] // resize_factor),
                           interpolation=cv2.INTER_AREA)
    if rotate:
        frame = cv2.rotate(frame, cv2.ROTATE_90_CLOCKWISE)
    y1, y2, x1, x2 = crop
    y2 = frame.shape[0] if y2 == -1 else y2
    x2 = frame.shape[1] if x2 == -1 else x2
    return np.ascontiguousarray(frame[y1:y2, x1:x2])


def transform_box(box, shape, resize_factor=1, rotate=False, crop=(0, -1, 0, -1)):
    """The box (x1, y1, x2, y2, float) of an original frame of `shape` in `transform_frame`'s output."""
    x1, y1, x2, y2 = (float(v) for v in box)
    h, w = shape[:2]
    if resize_factor > 1:
        s = resize_factor
        x1, y1, x2, y2, h, w = x1 / s, y1 / s, x2 / s, y2 / s, h // s, w // s
    if rotate:  # (x, y) -> (h - y, x)
        x1, y1, x2, y2 = h - y2, x1, h - y1, x2
        h, w = w, h
    return x1 - crop[2], y1 - crop[0], x2 - crop[2], y2 - crop[0]


class FaceFrames:
    """Frames of the face video by index, for an access order that is mostly sequential (forwards
    or, in the ping-pong loop, backwards): a window of decoded frames is kept; a backward step
    outside it decodes the block that ends there. Memory: at most 2 * `block` frames.
    A photo (`image`) is every frame."""

    def __init__(self, path=None, info=None, image=None, transform=None, block=None):
        self.path, self.info, self.image = path, info, image
        self.transform = transform or (lambda f: f)
        if image is not None:
            self.image = self.transform(image)
            self.n = 1
            return
        self.n = info.n_frames
        frame_bytes = info.width * info.height * 3
        self.block = block or int(np.clip((64 << 20) // max(1, frame_bytes), 8, 64))
        self.cache = {}
        self.it = None
        self.pos = 0  # index of the frame self.it yields next
        self.last = -1

    def close(self):
        if getattr(self, "it", None) is not None:
            self.it.close()
            self.it = None

    def _restart(self, start):
        from ..video import iter_frames

        self.close()
        self.it = iter_frames(self.path, self.info, start_frame=start)
        self.pos = start

    def _read_to(self, idx):
        while self.pos <= idx:
            try:
                frame = next(self.it)
            except StopIteration:
                raise PPGANError(f"{self.path}: frame {idx} could not be decoded (the video has only "
                                 f"{self.pos} frames)") from None
            self.cache[self.pos] = self.transform(frame)
            self.pos += 1
        while len(self.cache) > 2 * self.block:  # drop the frame farthest from where we are
            del self.cache[max(self.cache, key=lambda j: abs(j - idx))]

    def get(self, idx):
        if self.image is not None:
            return self.image
        if idx not in self.cache:
            backward = idx < self.last
            if self.it is None or not (self.pos <= idx < self.pos + self.block):
                self._restart(max(0, idx - self.block + 1) if backward else idx)
            self._read_to(idx)
        self.last = idx
        return self.cache[idx]


class FastDetector:
    """A face detector run on every `every`-th frame of a video (and its last, `n_frames` - 1), on
    frames shrunk so their longer side is at most `max_side` pixels (None: as they are); boxes and
    landmarks come back in full-frame pixels. The frames in between get no detection: the tracker
    fills those one-frame gaps by interpolation. Its `identity` includes both settings, so the
    face-track cache keeps one entry per setting."""

    def __init__(self, detector, every=1, max_side=None, n_frames=None):
        self.detector, self.every, self.max_side, self.n_frames = detector, int(every), max_side, n_frames
        self.next = 0  # index of the next frame `detect` gets (frames come in order, from 0)

    @property
    def identity(self):
        ident = getattr(self.detector, "identity", None)
        if not ident or (self.every == 1 and not self.max_side):
            return ident
        return f"{ident}|every={self.every}|max_side={self.max_side}"

    @property
    def has_landmarks(self):
        return self.detector.has_landmarks

    def detect(self, images):
        from ..faceutils import Face

        out, todo = [[] for _ in images], []
        for i, img in enumerate(images):
            k = self.next + i
            if k % self.every == 0 or k == (self.n_frames or 0) - 1:
                todo.append(i)
        self.next += len(images)
        if not todo:
            return out
        small, scales = [], []
        for i in todo:
            img = images[i]
            s = 1.0 if not self.max_side else min(1.0, self.max_side / max(img.shape[:2]))
            if s < 1.0:
                img = cv2.resize(img, (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s))),
                                 interpolation=cv2.INTER_AREA)
            small.append(img)
            scales.append(s)
        for i, s, faces in zip(todo, scales, self.detector.detect(small)):
            out[i] = [f if s == 1.0 else
                      Face(np.asarray(f.box, np.float32) / s, f.score,
                           None if f.landmarks is None else np.asarray(f.landmarks, np.float32) / s)
                      for f in faces]
        return out


# ---- the video stage -----------------------------------------------------------------------------

class Wav2LipStage(FrameStage):
    """The lip-sync step of `process_video` over the timeline video: for output frame k (absolute,
    from `reset(start_frame)`) it takes face frame `pingpong_index(k, n)`, its box and mel window k, runs
    Wav2Lip on batches, and returns the blended frames (the timeline's own frames are ignored)."""

    label = "wav2lip"

    def __init__(self, pred, faces, boxes, mel, fps, n_out, ident):
        self.pred, self.faces, self.boxes, self.mel, self.fps = pred, faces, boxes, mel, fps
        self.n_out, self.ident = n_out, ident
        self.next = 0

    def reset(self, start_frame):
        self.next = int(start_frame)

    def frame_index(self, k):
        return pingpong_index(k, self.faces.n)

    def push(self, frames):
        from ..utils.audio import mel_chunks

        n = len(list(frames))
        ks = list(range(self.next, self.next + n))
        self.next += n
        mels = np.asarray(mel_chunks(self.mel, float(self.fps), start_frame=ks[0], n_frames=n), np.float32)
        out, jobs = [None] * n, []
        for i, k in enumerate(ks):
            idx = self.frame_index(k)
            frame = self.faces.get(idx)
            box = self.boxes[idx] if idx < len(self.boxes) else None
            if box is None:
                out[i] = frame.copy()
            else:
                jobs.append((i, frame, box))
        if jobs:
            crops = np.stack([cv2.resize(f[b[1]:b[3], b[0]:b[2]], (IMG_SIZE, IMG_SIZE), interpolation=cv2.INTER_AREA)
                              for _, f, b in jobs])
            preds = self.pred.predict_faces(mels[[i for i, _, _ in jobs]], crops)
            for (i, frame, box), p in zip(jobs, preds):
                out[i] = self.pred.paste(frame, p, box)
        return out

    def identity(self):
        return self.ident


class Wav2LipPredictor(BasePredictor):
    """Args (PaddleGAN's first, then ours):
        checkpoint_path (str | None): Wav2Lip weights (PaddleGAN `wav2lip.pdparams` /
            `wav2lip_hq.pdparams`, or ours); None: the catalogue's `model` (cache / download).
        static (bool): use only the first frame of a face video (a photo always is).
        fps (float): frame rate of the output for a photo. Default: 25.
        pads (list[int]): (top, bottom, left, right) pixels added to the face box. Default [0, 10, 0, 0].
        face_det_batch_size (int): frames per face-detector call. Default: 16.
        wav2lip_batch_size (int): faces per Wav2Lip forward (halved on out-of-memory). Default: 128.
        resize_factor (int): shrink the face video by this factor first. Default: 1.
        crop (list[int]): (top, bottom, left, right) region of the (resized, rotated) frame; -1: edge.
        box (list[int]): (top, bottom, left, right) fixed face box instead of detection; -1s: detect.
        rotate (bool): turn the face video 90 degrees clockwise.
        nosmooth (bool): no temporal smoothing of the detected boxes.
        face_detector (str): 'mtcnn' (default, offline), 'sfd', 'blazeface', 'mediapipe', 'haar'.
        face_enhancement (bool): not available (an error when True).
        face_index (int | None): track id of the face to animate (None: the most frequent face).
        detect_every (int): run the face detector on every n-th frame only (the tracker interpolates
            the boxes in between). Default: 1 (every frame).
        detect_size (int | None): detect on frames shrunk to this longer side (faster; faces must
            stay >= ~20 pixels). Default: None (full size).
        model (str): catalogue name used when `checkpoint_path` is None (default 'wav2lip-hq',
            the weights PaddleGAN publishes).
        mask (str): 'auto' (the face mesh on CUDA when it loads, else box), 'mesh' or 'box'.
        color_match (bool): match the generated mouth's colour to the frame's. Default: True.
        chunk_seconds (float), crf (int), resume (bool): video job settings (`process_video`).
        device (str), half (bool | str | None), verbose (bool): as every predictor.
        net (nn.Module | None): a ready generator (tests, custom models) instead of loading weights.
    """

    def __init__(self, checkpoint_path=None, static=False, fps=25, pads=(0, 10, 0, 0), face_det_batch_size=16,
                 wav2lip_batch_size=128, resize_factor=1, crop=(0, -1, 0, -1), box=(-1, -1, -1, -1), rotate=False,
                 nosmooth=False, face_detector="mtcnn", face_enhancement=False, face_index=None, detect_every=1,
                 detect_size=None, model="wav2lip-hq",
                 mask="auto", color_match=True, chunk_seconds=10.0, crf=18, resume=True, device="auto", half=None,
                 verbose=True, net=None):
        super().__init__(device=device, half=half, verbose=verbose)
        self.static = bool(static)
        self.fps = float(fps)
        self.pads = self._ints(pads, 4, "pads")
        self.crop = self._ints(crop, 4, "crop")
        self.box = self._ints(box, 4, "box")
        self.face_det_batch_size = int(face_det_batch_size)
        self.wav2lip_batch_size = int(wav2lip_batch_size)
        self.resize_factor = int(resize_factor)
        self.rotate, self.nosmooth = bool(rotate), bool(nosmooth)
        self.face_detector = str(face_detector)
        self.face_index = None if face_index is None else int(face_index)
        self.detect_every = int(detect_every)
        self.detect_size = None if not detect_size else int(detect_size)
        if self.detect_every < 1:
            raise ConfigError(f"detect_every must be at least 1, got {detect_every}")
        if self.detect_size is not None and self.detect_size < 32:
            raise ConfigError(f"detect_size must be at least 32 pixels, got {detect_size}")
        self.mask, self.color_match = str(mask), bool(color_match)
        self.chunk_seconds, self.crf, self.resume = chunk_seconds, int(crf), bool(resume)
        if not self.fps > 0:
            raise ConfigError(f"fps must be > 0, got {fps}")
        if self.face_det_batch_size < 1 or self.wav2lip_batch_size < 1:
            raise ConfigError("face_det_batch_size and wav2lip_batch_size must be at least 1")
        if self.resize_factor < 1:
            raise ConfigError(f"resize_factor must be at least 1, got {resize_factor}")
        if self.mask not in MASKS:
            raise ConfigError(f"mask must be one of {', '.join(MASKS)}, got {mask!r}")
        if any(p < 0 for p in self.pads):
            raise ConfigError(f"pads must be >= 0, got {list(self.pads)}")
        if self.box != (-1, -1, -1, -1) and not (0 <= self.box[0] < self.box[1] and 0 <= self.box[2] < self.box[3]):
            raise ConfigError(f"box must be top bottom left right with top < bottom and left < right, got "
                              f"{list(self.box)}")
        if face_enhancement:
            raise ConfigError("face_enhancement is not available in ppgan")
        self.batch = self.wav2lip_batch_size  # lowered for good after an out-of-memory
        self.weight_files, self.model_name = [], None
        if net is not None:
            self.net = net.to(self.device).eval()
            self.model_name = type(net).__name__
        else:
            self._load(model, checkpoint_path)
        self._mesh = None
        self._mesh_tried = False
        self._channels_last = False

    @staticmethod
    def _ints(values, n, name):
        try:
            out = tuple(int(v) for v in values)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be {n} integers, got {values!r}") from None
        if len(out) != n:
            raise ConfigError(f"{name} must be {n} integers, got {list(out)}")
        return out

    def _load(self, model, checkpoint_path):
        from ..weights import get_spec, load, load_into

        try:
            spec = get_spec(model)
        except PPGANError:
            spec = None
        if spec is not None:
            from .pretrained import build_pretrained

            self.net, weights = build_pretrained(spec, weight_path=checkpoint_path, device=self.device)
            self.model_name = spec.name
        else:  # the catalogue has no Wav2Lip entry in this build: an explicit file is needed
            if checkpoint_path is None:
                raise CheckpointError(f"no Wav2Lip weights: pass --checkpoint_path FILE (e.g. wav2lip_hq.pdparams "
                                      f"from {WAV2LIP_WEIGHT_URL})")
            from ..models.generators.wav2lip import Wav2Lip

            weights = load(checkpoint_path)
            self.net = load_into(Wav2Lip(), weights).to(self.device).eval()
            self.model_name = "wav2lip"
        self.weight_files = list(weights.files)
        self._log(f"[ppgan] Wav2Lip weights: {', '.join(self.weight_files) or self.model_name}")

    # -- model ------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_faces(self, mels, faces):
        """Wav2Lip on a batch: mels float32 [N, 80, 16], faces uint8 [N, 96, 96, 3] RGB -> float32
        [N, 96, 96, 3] RGB in [0, 255]. Runs in sub-batches of `self.batch`; an out-of-memory halves
        it (logged) and the sub-batch is redone."""
        bgr = faces[..., ::-1].astype(np.float32) / 255.0  # Wav2Lip was trained on OpenCV's BGR frames
        masked = bgr.copy()
        masked[:, IMG_SIZE // 2:] = 0.0
        x = torch.from_numpy(np.ascontiguousarray(np.concatenate([masked, bgr], axis=3).transpose(0, 3, 1, 2)))
        a = torch.from_numpy(np.ascontiguousarray(mels))[:, None]
        out, i = [], 0
        while i < len(x):
            n = min(self.batch, len(x) - i)
            try:
                y = self._forward(a[i:i + n].to(self.device), x[i:i + n].to(self.device))
            except OOM_ERRORS as e:
                if not is_out_of_memory(e):
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if self.batch <= 1:
                    raise PPGANError(f"out of memory on {self.device} running Wav2Lip on one face; free memory "
                                     f"or use --device cpu") from None
                self.batch = max(1, self.batch // 2)
                self.stats["oom_retries"] += 1
                self._log(f"[ppgan] out of memory: retrying with wav2lip batch size {self.batch}")
                continue
            out.append(y.float().clamp_(0, 1).mul_(255.0).cpu().numpy().transpose(0, 2, 3, 1)[..., ::-1])
            i += n
        return np.ascontiguousarray(np.concatenate(out))

    def _forward(self, audio, faces):
        """The net on one batch; in half precision under autocast, redone in fp32 when not finite."""
        if not self.half:
            return self.net(audio, faces)
        if not self._channels_last:  # with fp16 / bf16 kernels (CUDA, AMX CPUs) several times faster
            self.net = self.net.to(memory_format=torch.channels_last)
            self._channels_last = True
        with torch.autocast(self.device.type, dtype=self.compute_dtype):
            y = self.net(audio, faces.contiguous(memory_format=torch.channels_last))
        if not torch.isfinite(y).all():
            self.stats["fp32_retries"] += 1
            y = self.net(audio, faces)
        return y

    # -- blending ---------------------------------------------------------------------------------
    def _face_mesh(self):
        if not self._mesh_tried:
            self._mesh_tried = True
            # 'auto': the mesh on CUDA only (on a CPU it costs more per frame than Wav2Lip itself)
            if self.mask == "mesh" or self.mask == "auto" and self.device.type == "cuda":
                try:
                    from ..faceutils import FaceMesh

                    self._mesh = FaceMesh(device=self.device)
                except (PPGANError, OSError, ImportError) as e:
                    if self.mask == "mesh":
                        raise PPGANError(f"the face mesh (mask='mesh') is not available: {e}") from None
                    self._log(f"[ppgan] face mesh not available ({str(e).splitlines()[0] if str(e) else e}): "
                              "blending the lower half of the face box")
        return self._mesh

    def face_mask(self, frame, box):
        """Blend mask of the face box (h, w): the lower face from the mesh, or the box's lower half,
        in both cases 0 on the box border."""
        x1, y1, x2, y2 = box
        h, w = y2 - y1, x2 - x1
        mesh = self._face_mesh()
        if mesh is not None:
            from ..faceutils import Face
            from ..faceutils.masks import lower_face_mask

            pts = mesh.landmarks(frame, [Face(np.array(box, np.float32), 1.0, None)])
            if pts:
                f = max(1, int(round(0.08 * min(h, w))))
                m = lower_face_mask(pts[0][:, :2] - np.array([x1, y1], np.float32), (h, w), feather=f)
                return m * inset_rect_mask(h, w, f)
        return lower_half_mask(h, w)

    def paste(self, frame, pred, box):
        """Blend one prediction (96x96x3 float RGB in [0, 255]) into `frame` at `box`."""
        x1, y1, x2, y2 = box
        gen = cv2.resize(pred, (x2 - x1, y2 - y1), interpolation=cv2.INTER_CUBIC)
        return blend_face(frame, gen, box, self.face_mask(frame, box), self.color_match)

    # -- inputs -----------------------------------------------------------------------------------
    def _read_audio(self, audio, fps):
        from ..video.audio import iter_audio

        try:
            mel, n, peak = stream_mel(iter_audio(audio, SAMPLE_RATE, block_seconds=10.0))
        except PPGANError as e:
            if str(audio) in str(e):
                raise
            raise PPGANError(f"audio {audio}: {e}") from None
        if n == 0:
            raise PPGANError(f"audio {audio} is empty")
        seconds = Fraction(n, SAMPLE_RATE)
        n_out = int(round(seconds * fps))
        if seconds * fps < 1:
            raise PPGANError(f"audio {audio} is {float(seconds):.3f} s long, shorter than one frame at "
                             f"{float(fps):g} fps")
        if peak < SILENCE_PEAK:
            raise PPGANError(f"audio {audio} is silent (peak below -80 dBFS): nothing to lip-sync")
        if mel is None:
            raise PPGANError(f"audio {audio} is too short for a spectrogram ({n} samples at 16 kHz)")
        if not np.isfinite(mel).all():
            raise PPGANError(f"audio {audio}: its mel spectrogram is not finite")
        if mel.shape[1] < MEL_STEP:  # under 0.2 s: the one window is padded with silence
            mel = np.pad(mel, ((0, 0), (0, MEL_STEP - mel.shape[1])), constant_values=float(mel.min()))
        return mel, n_out, seconds

    def _transform(self):
        rf, rot, crop = self.resize_factor, self.rotate, self.crop
        if rf == 1 and not rot and crop == (0, -1, 0, -1):
            return None
        return lambda f: transform_frame(f, rf, rot, crop)

    def _detector(self):
        from ..faceutils import FaceDetector

        return FaceDetector(self.face_detector, device=str(self.device))

    def _boxes(self, face, info, image):
        """Per face frame the int box (x1, y1, x2, y2) in the transformed frame, or None."""
        transform = self._transform()
        if image is not None:
            shape = (transform or (lambda f: f))(image).shape
        else:
            shape = transform(np.zeros((info.height, info.width, 3), np.uint8)).shape if transform else \
                (info.height, info.width, 3)
        n = 1 if image is not None else info.n_frames
        H, W = shape[:2]
        if self.box != (-1, -1, -1, -1):
            y1, y2, x1, x2 = self.box
            x2, y2 = min(x2, W), min(y2, H)
            if x2 - x1 < 2 or y2 - y1 < 2:
                raise ConfigError(f"box {list(self.box)} lies outside the {W}x{H} frame")
            self._log("[ppgan] using the given face box instead of face detection")
            return [(x1, y1, x2, y2)] * n
        if image is not None:
            found = FastDetector(self._detector(), 1, self.detect_size).detect([image])[0]
            pick = 0 if self.face_index is None else self.face_index  # by descending score
            if not found:
                raise PPGANError(f"no face found in {face}; give the face box with --box")
            if pick >= len(found):
                raise ConfigError(f"--face_index {pick}: only {len(found)} face(s) in {face}")
            chosen = [found[pick].box]
            src_shape = image.shape
        else:
            from ..faceutils import track_faces

            detector = FastDetector(self._detector(), self.detect_every, self.detect_size, info.n_frames)
            track = track_faces(face, detector, batch_size=self.face_det_batch_size,
                                smooth=1 if self.nosmooth else None, progress=self.verbose)
            if track.from_cache:
                self._log(f"[ppgan] face tracks from the cache ({track.cache_path})")
            ids = track.track_ids
            if not ids:
                raise PPGANError(f"no face found in any frame of {face}; give the face box with --box")
            tid = track.main_track_id() if self.face_index is None else self.face_index
            if tid not in ids:
                raise ConfigError(f"--face_index {tid}: {face} has face tracks {ids}")
            if len(ids) > 1:
                self._log(f"[ppgan] {len(ids)} faces tracked ({ids}); lip-syncing face {tid} (--face_index)")
            boxes = track.boxes(tid)
            chosen = [None if np.isnan(b).any() else b for b in boxes]
            src_shape = (info.height, info.width)
        pady1, pady2, padx1, padx2 = self.pads
        out = []
        for b in chosen:
            if b is None:
                out.append(None)
                continue
            x1, y1, x2, y2 = transform_box(b, src_shape, self.resize_factor, self.rotate, self.crop)
            x1, y1 = max(0, int(round(x1)) - padx1), max(0, int(round(y1)) - pady1)
            x2, y2 = min(W, int(round(x2)) + padx2), min(H, int(round(y2)) + pady2)
            out.append((x1, y1, x2, y2) if x2 - x1 >= 4 and y2 - y1 >= 4 else None)
        if all(b is None for b in out):
            raise PPGANError(f"no face found in {face} inside the cropped region; check --crop / --box")
        return out

    def _open_face(self, face):
        """-> (info or None, image or None, fps) of the face file."""
        from ..utils.image import imread, is_image_file
        from ..video import VideoError, probe_video

        from .inputs import check_input_exists

        check_input_exists(face)
        if not os.path.isfile(face):
            raise PPGANError(f"--face must be an image or video file, got the folder {face}")
        if is_image_file(face):
            return None, imread(face), Fraction(self.fps).limit_denominator(1001)
        try:
            info = probe_video(face)
        except VideoError as e:
            raise PPGANError(f"--face {face} is neither an image nor a readable video: {str(e).split(': ', 1)[-1]}") \
                from None
        if self.static:
            from ..video import iter_frames

            it = iter_frames(face, info)
            try:
                first = next(it)
            finally:
                it.close()
            return None, first, info.fps
        return info, None, info.fps

    # -- the job ----------------------------------------------------------------------------------
    def _timeline(self, face, audio, outfile, fps, n_out):
        """The timeline video (n_out grey 64x64 frames at fps + the audio) beside `outfile`, made
        once per (face, audio, fps): a re-run finds it unchanged and can resume."""
        from ..video.ffmpeg import ff_path, run

        ident = {"format": TIMELINE_FORMAT, "fps": f"{fps.numerator}/{fps.denominator}", "frames": n_out}
        for k, p in (("face", face), ("audio", audio)):
            st = os.stat(p)
            ident[k] = [os.path.abspath(p), st.st_size, st.st_mtime_ns]
        key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
        folder, name = os.path.split(os.path.abspath(outfile))
        path = os.path.join(folder, f".{name}.w2l-{key}.mov")
        if os.path.isfile(path):
            return path
        from ..utils.io import atomic_path

        with atomic_path(path, ".mov") as tmp:
            run(["-y", "-v", "error", "-f", "lavfi", "-i", f"color=c=gray:s=64x64:r={fps.numerator}/{fps.denominator}",
                 "-i", ff_path(audio), "-map", "0:v:0", "-map", "1:a:0", "-frames:v", str(n_out),
                 "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le",
                 "-f", "mov", tmp], f"reading audio {audio} failed")
        return path

    def stage_identity(self, face, detector_ident):
        from .predictor_stage import precision_of
        from ..weights import file_sha256

        return {"stage": type(self).__name__, "model": self.model_name,
                "weights": [file_sha256(p) for p in self.weight_files], "precision": precision_of(self),
                "face": os.path.abspath(face), "static": self.static, "pads": list(self.pads), "box": list(self.box),
                "crop": list(self.crop), "resize_factor": self.resize_factor, "rotate": self.rotate,
                "nosmooth": self.nosmooth, "detector": detector_ident, "face_index": self.face_index,
                "mask": self.mask, "color_match": self.color_match}

    @torch.no_grad()
    def run(self, face, audio, outfile="results/result_voice.mp4"):
        """Lip-sync `face` (image or video) to `audio` and write `outfile` (see the module docstring).
        Returns the output path; `self.last_result` keeps `process_video`'s result dict plus
        `missing_frames` (output frames passed through without a face)."""
        from ..utils.io import missing_dirs, remove_empty_dirs, same_file
        from ..video import process_video

        face, audio, outfile = os.fspath(face), os.fspath(audio), os.fspath(outfile)
        from .inputs import check_input_exists

        check_input_exists(audio)
        if not os.path.isfile(audio):
            raise PPGANError(f"--audio must be an audio or video file, got the folder {audio}")
        for src, what in ((face, "face"), (audio, "audio")):
            if os.path.exists(outfile) and same_file(src, outfile):
                raise PPGANError(f"--outfile is the {what} file ({src}); choose another output")
        info, image, fps = self._open_face(face)
        mel, n_out, seconds = self._read_audio(audio, fps)
        boxes = self._boxes(face, info, image)
        frames = FaceFrames(face, info, image=image, transform=self._transform())
        frames.n = n_face = min(frames.n, len(boxes))  # the frames the tracker decoded (the header may promise more)
        if image is None and n_out > n_face:
            self._log(f"[ppgan] the audio ({float(seconds):.2f} s) is longer than the video "
                      f"({n_face} frames): looping the video forwards and backwards")
        missing = [boxes[pingpong_index(k, n_face)] is None for k in range(n_out)]
        if any(missing):
            _, text = missing_ranges(missing, fps)
            self._log(f"[ppgan] no face in {sum(missing)} of {n_out} output frames, passed through unchanged: {text}")
        det = "box" if self.box != (-1, -1, -1, -1) else \
            f"{self.face_detector}|every={self.detect_every}|max_side={self.detect_size}"
        stage = Wav2LipStage(self, frames, boxes, mel, fps, n_out, self.stage_identity(face, det))
        created = missing_dirs(os.path.dirname(os.path.abspath(outfile)))
        parts = os.path.abspath(outfile) + ".ppgan-parts"
        ok, timeline = False, None
        try:
            timeline = self._timeline(face, audio, outfile, fps, n_out)
            result = process_video(timeline, outfile, [stage], batch_size=min(self.wav2lip_batch_size, 32),
                                   chunk_seconds=self.chunk_seconds, crf=self.crf, resume=self.resume,
                                   progress=self.verbose)
            ok = True
        finally:
            frames.close()
            if ok or not os.path.exists(parts):  # nothing left to resume from: no leftovers
                if timeline is not None:
                    with contextlib.suppress(OSError):
                        os.remove(timeline)
                if not ok:
                    remove_empty_dirs(created)
        result["missing_frames"] = int(sum(missing))
        self.last_result = result
        self._log(f"[ppgan] wrote {outfile}: {result['frames']} frames at {float(fps):.3f} fps "
                  f"({result['duration']:.3f} s; audio {float(seconds):.3f} s)")
        return outfile


__all__ = ["Wav2LipPredictor", "Wav2LipStage", "FaceFrames", "blend_face", "color_match", "lower_half_mask",
           "pingpong_index", "FastDetector", "stream_mel", "WAV2LIP_WEIGHT_URL"]

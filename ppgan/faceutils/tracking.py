"""Faces through a video: batched detection, IoU tracking with ids, temporal smoothing, gap flags,
and a face-track cache so a second run on the same video skips detection.

`track_faces(video_or_frames, detector)` returns a `FaceTrack`: for every frame of the video a list
of `TrackedFace` (track id, smoothed box and landmarks, the raw detection) and a flag saying whether
the frame has a detected face, only an interpolated one, or none (`missing`). Frames without a face
are never an error: they are counted, flagged and passed through, so a missed frame cannot abort a
long job.

How it works, step by step:

1. Detection (`FaceDetectionStage`): frames stream from `ppgan.video.iter_frames` (bounded memory,
   never the whole video in RAM) and go to `detector.detect` in batches of `batch_size`. The stage
   is a `FrameStage`, so it can also sit in `process_video`'s resumable pipeline: it passes frames
   through unchanged and records the detections by frame index (`reset(start_frame)` gives the index).
2. Tracking (`link_tracks`): greedy IoU matching (`boxes.box_iou`) of each frame's detections to
   the tracks alive (their last box, and that box moved on at the track's velocity), accepted at
   IoU >= `iou_threshold`; then, for what is left, a match by centre distance (within one face
   size, similar size). A detection that matches no track starts a new id. A track stays alive
   `max_gap` frames after its last detection, so a face that reappears within that time keeps its id.
3. Smoothing (`smooth_series`): per track and per run of frames without a gap longer than
   `interp_gap`, the box centre, width, height and the 5 landmarks are interpolated linearly over
   the short gaps and then filtered with a centred Savitzky-Golay filter (a local least-squares
   polynomial of degree 2 over `smooth` frames, 0.6 s by default: 15 frames at 25 fps). The filter
   is zero-phase: no lag (a face moving at constant speed or acceleration comes out exactly where
   it is). White detector noise on the centre drops to 0.39x its std with 15 frames (0.50x with 9),
   and the frame-to-frame jitter (std of the second difference) to 0.086x (0.16x with 9). At the
   ends of a run the window is one-sided: still no lag, but more noise (the first and last frame of a
   run keep about 0.9x of the raw noise, the second ones about 0.5x). Frames in gaps longer than
   `interp_gap` get no face and are flagged missing. Tracks detected in fewer than `min_length`
   frames (a detector's flicker on texture) are dropped. Being centred, the filter needs the frames
   after the one it smooths: tracking runs once the video's detections are in (a few numbers per
   frame; frames themselves are never kept).

Face-track cache: `$PPGAN_HOME/face_tracks/<key>.npz`, key = sha256 of (the video file's content
sha256, the detector's `identity` (its weights' sha256 and options), the cache format). It stores
the raw detections only; tracking and smoothing (milliseconds) are redone from them, so changing
`smooth`, `iou_threshold` or the gaps reuses the cached detections. The file is written atomically;
one that cannot be read is logged ("face-track cache ... is unreadable (...): detecting again") and
rebuilt, never an exception.
"""
import dataclasses
import hashlib
import io
import json
import logging
import os
from fractions import Fraction

import cv2
import numpy as np

from ..utils.io import atomic_path
from ..video.stages import FrameStage
from .boxes import Face, box_iou

log = logging.getLogger("ppgan.faceutils")

CACHE_FORMAT = "ppgan-face-track/1"
DETECTED, INTERPOLATED, MISSING = "detected", "interpolated", "missing"


# ---- records ---------------------------------------------------------------------------------

@dataclasses.dataclass
class TrackedFace:
    """One face of one frame of a `FaceTrack`.

    Attributes:
        track_id (int): the same id in every frame of the same face (from 0, in order of appearance).
        box (np.ndarray): float32 (4,) smoothed x1, y1, x2, y2.
        landmarks (np.ndarray | None): float32 (5, 2) smoothed, None where the detector has none.
        score (float): the detection's score (interpolated over gaps).
        raw (Face | None): the detection in this frame, None for a frame filled by interpolation.
    """

    track_id: int
    box: np.ndarray
    landmarks: object
    score: float
    raw: object = None

    @property
    def interpolated(self):
        return self.raw is None

    @property
    def center(self):
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2], np.float32)

    def as_face(self):
        """The smoothed face as a plain `Face` (for alignment, masks, ...)."""
        return Face(self.box, self.score, self.landmarks)

    def to_dict(self):
        out = {"track_id": int(self.track_id), **self.as_face().to_dict(), "interpolated": self.interpolated}
        if self.raw is not None:
            out["raw_box"] = [round(float(v), 2) for v in self.raw.box]
        return out


@dataclasses.dataclass
class FaceTrack:
    """What `track_faces` found in a video.

    Attributes:
        faces (list[list[TrackedFace]]): per frame, the tracked faces (smoothed).
        detections (list[list[Face]]): per frame, the raw detections.
        fps (Fraction | None): the video's frame rate (None for a frame iterable without one).
        from_cache (bool): the detections came from the face-track cache.
        cache_path (str | None): the cache file used or written.
    """

    faces: list
    detections: list
    fps: object = None
    from_cache: bool = False
    cache_path: object = None

    @property
    def n_frames(self):
        return len(self.faces)

    @property
    def flags(self):
        """Per frame 'detected' (some face detected), 'interpolated' (faces only filled over a short
        gap) or 'missing' (no face)."""
        return [MISSING if not fs else DETECTED if any(not f.interpolated for f in fs) else INTERPOLATED
                for fs in self.faces]

    @property
    def missing(self):
        """bool array (n_frames,): True for frames with no face (not even an interpolated one)."""
        return np.array([not fs for fs in self.faces], dtype=bool)

    @property
    def track_ids(self):
        return sorted({f.track_id for fs in self.faces for f in fs})

    def main_track_id(self):
        """The id present in the most frames (None when no face was found)."""
        counts = {}
        for fs in self.faces:
            for f in fs:
                counts[f.track_id] = counts.get(f.track_id, 0) + 1
        return max(counts, key=lambda k: (counts[k], -k)) if counts else None

    def boxes(self, track_id, raw=False):
        """float array (n_frames, 4): the track's smoothed boxes (or raw detections with `raw`),
        NaN in frames without it."""
        out = np.full((self.n_frames, 4), np.nan)
        for i, fs in enumerate(self.faces):
            for f in fs:
                if f.track_id == track_id:
                    src = (None if f.raw is None else f.raw.box) if raw else f.box
                    if src is not None:
                        out[i] = src
        return out

    def records(self):
        """JSON-ready list: one dict per frame and face ({'frame', 'time', 'track_id', 'box', ...})."""
        out = []
        for i, fs in enumerate(self.faces):
            t = None if self.fps is None else round(float(Fraction(i) / self.fps), 4)
            for f in fs:
                out.append({"frame": i, "time": t, **f.to_dict()})
        return out


# ---- 1. detection as a video stage --------------------------------------------------------------

def _batches(items, n):
    batch = []
    for it in items:
        batch.append(it)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


class FaceDetectionStage(FrameStage):
    """Detect faces in every frame that passes (in batches of `batch_size`), passing frames on
    unchanged; `detections[frame_index]` holds each frame's list of `Face`.

    In `process_video` the stage is told by `reset(start_frame)` where a chunk starts, so a resumed
    job records the frames it processes at their true indices (the chunks skipped on resume are
    not detected again: `track_faces` gives a whole video's tracks, cached).
    """

    label = "face detect"

    def __init__(self, detector, batch_size=8, on_detected=None):
        if int(batch_size) < 1:
            from ..utils.errors import ConfigError

            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.detector = detector
        self.batch_size = int(batch_size)
        self.on_detected = on_detected  # on_detected(n): called after each batch of n frames
        self.detections = {}
        self.next = 0

    def reset(self, start_frame):
        self.next = int(start_frame)
        for k in [k for k in self.detections if k >= self.next]:
            del self.detections[k]

    def push(self, frames):
        frames = list(frames)
        for batch in _batches(frames, self.batch_size):
            found = self.detector.detect(batch)
            if len(found) != len(batch):
                raise RuntimeError(f"{type(self.detector).__name__}.detect returned {len(found)} results "
                                   f"for {len(batch)} images")
            for faces in found:
                self.detections[self.next] = list(faces)
                self.next += 1
            if self.on_detected is not None:
                self.on_detected(len(batch))
        return frames

    def identity(self):
        return {"stage": "face_detect", "detector": str(getattr(self.detector, "identity", type(self.detector)))}


# ---- 2. tracking -----------------------------------------------------------------------------

def link_tracks(detections, iou_threshold=0.3, max_gap=12, max_distance=1.0):
    """Track ids for per-frame detections: a list (per frame) of lists of ids, one per detection.

    A track is live until `max_gap` frames have passed without a detection of it. Each frame's
    detections are matched to the live tracks in two greedy passes:

    1. IoU (`boxes.box_iou`) >= `iou_threshold`, with the track's last box or that box moved on at
       the track's last velocity (up to 5 frames ahead), pairs by decreasing IoU;
    2. what is left: the centres at most `max_distance` face sizes apart (size = sqrt(box area), the
       mean of both) with sizes within a factor 2, pairs by increasing distance; this keeps the id of
       a face that moved fast or came back into view near where it left.

    A detection that matches no track starts a new id (0, 1, ... in order of appearance).
    """
    ids = []
    live = {}  # track id -> (last frame, last box, velocity per frame)
    next_id = 0
    for i, faces in enumerate(detections):
        for tid in [t for t, (last, _, _) in live.items() if i - last - 1 > max_gap]:
            del live[tid]
        frame_ids = [None] * len(faces)
        if faces and live:
            tids = list(live)
            last = np.stack([live[t][1] for t in tids]).astype(np.float64)
            ahead = np.array([min(i - live[t][0], 5) for t in tids], np.float64)[:, None]
            pred = last + np.stack([live[t][2] for t in tids]) * ahead
            dets = np.stack([f.box for f in faces]).astype(np.float64)
            iou = np.maximum(box_iou(last, dets), box_iou(pred, dets))
            size_t = np.sqrt(np.maximum((last[:, 2] - last[:, 0]) * (last[:, 3] - last[:, 1]), 1e-6))
            size_d = np.sqrt(np.maximum((dets[:, 2] - dets[:, 0]) * (dets[:, 3] - dets[:, 1]), 1e-6))
            ratio = size_t[:, None] / size_d[None, :]
            centre_t = (last[:, :2] + last[:, 2:]) / 2
            centre_d = (dets[:, :2] + dets[:, 2:]) / 2
            dist = np.linalg.norm(centre_t[:, None] - centre_d[None], axis=2) / ((size_t[:, None] + size_d) / 2)
            used_t, used_f = set(), set()
            pairs = sorted(((-iou[a, b], a, b) for a in range(len(tids)) for b in range(len(faces))
                            if iou[a, b] >= iou_threshold))
            pairs += sorted((dist[a, b], a, b) for a in range(len(tids)) for b in range(len(faces))
                            if dist[a, b] <= max_distance and 0.5 <= ratio[a, b] <= 2)
            for _, a, b in pairs:
                if a in used_t or b in used_f:
                    continue
                used_t.add(a)
                used_f.add(b)
                frame_ids[b] = tids[a]
        for b, f in enumerate(faces):
            box = f.box.astype(np.float64)
            tid = frame_ids[b]
            if tid is None:
                tid = frame_ids[b] = next_id
                next_id += 1
                velocity = np.zeros(4)
            else:
                last_frame, last_box, _ = live[tid]
                velocity = (box - last_box) / (i - last_frame) if i - last_frame <= 5 else np.zeros(4)
            live[tid] = (i, box, velocity)
        ids.append(frame_ids)
    return ids


# ---- 3. smoothing ----------------------------------------------------------------------------

_SG_CACHE = {}


def _sg_weights(before, after, order):
    """Weights giving the value at offset 0 of the least-squares polynomial of degree `order`
    through samples at offsets -before..after."""
    key = (before, after, order)
    w = _SG_CACHE.get(key)
    if w is None:
        x = np.arange(-before, after + 1, dtype=np.float64)
        order = min(order, len(x) - 1)
        v = np.vander(x, order + 1, increasing=True)
        w = np.linalg.pinv(v)[0]
        _SG_CACHE[key] = w
    return w


def smooth_series(values, window, order=2):
    """Centred Savitzky-Golay filter of `values` [T, D] along T (zero phase, no lag); the first and
    last `window // 2` samples use a one-sided window. window <= 2: unchanged."""
    values = np.asarray(values, np.float64)
    t = len(values)
    half = int(window) // 2
    if half < 1 or t < 3:
        return values.copy()
    half = min(half, (t - 1) // 2)
    out = np.empty_like(values)
    if t > 2 * half:
        w = _sg_weights(half, half, order)
        win = np.lib.stride_tricks.sliding_window_view(values, 2 * half + 1, axis=0)  # [T-2h, D, 2h+1]
        out[half:t - half] = win @ w
    for i in list(range(min(half, t))) + list(range(max(half, t - half), t)):
        lo, hi = max(0, i - half), min(t - 1, i + half)
        out[i] = _sg_weights(i - lo, hi - i, order) @ values[lo:hi + 1]
    return out


def _to_vector(face):
    """centre x, y, width, height, then 10 landmark coordinates (NaN when none)."""
    b = face.box.astype(np.float64)
    lm = np.full(10, np.nan) if face.landmarks is None else face.landmarks.astype(np.float64).reshape(10)
    return np.concatenate([[(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]], lm, [face.score]])


def _smooth_track(frames, faces, smooth, interp_gap):
    """(frame index, box, landmarks, score, raw) for a track seen in `frames` (sorted)."""
    out = []
    runs, start = [], 0
    for k in range(1, len(frames) + 1):
        if k == len(frames) or frames[k] - frames[k - 1] - 1 > interp_gap:
            runs.append((start, k))
            start = k
    for a, b in runs:
        fr = np.asarray(frames[a:b])
        obs = np.stack([_to_vector(f) for f in faces[a:b]])
        dense_t = np.arange(fr[0], fr[-1] + 1)
        dense = np.empty((len(dense_t), obs.shape[1]))
        for d in range(obs.shape[1]):
            col = obs[:, d]
            ok = ~np.isnan(col)
            dense[:, d] = np.interp(dense_t, fr[ok], col[ok]) if ok.any() else np.nan
        has_lm = ~np.isnan(obs[:, 4]).any()  # landmarks in every detection of the run: smooth them too
        sm = smooth_series(dense, smooth)
        raw_at = dict(zip(fr.tolist(), faces[a:b]))
        for j, t in enumerate(dense_t.tolist()):
            cx, cy = sm[j, :2]
            w, h = np.maximum(sm[j, 2:4], 1.0)
            box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)
            raw = raw_at.get(t)
            if has_lm:
                lm = sm[j, 4:14].reshape(5, 2).astype(np.float32)
            else:
                lm = None if raw is None or raw.landmarks is None else raw.landmarks.copy()
            out.append((t, box, lm, float(np.clip(dense[j, 14], 0, 1)), raw))
    return out


def build_track(detections, smooth=15, iou_threshold=0.3, max_gap=12, interp_gap=None, min_length=3, fps=None):
    """A `FaceTrack` from per-frame raw detections (see the module docstring for the steps).

    Args:
        detections (list[list[Face]]): per frame.
        smooth (int): smoothing window in frames (odd; 0 or 1: off). Default: 15.
        iou_threshold (float): least IoU with a track's last box to continue it. Default: 0.3.
        max_gap (int): frames a track may go undetected and keep its id. Default: 12.
        interp_gap (int | None): gaps up to this many frames are filled by interpolation; longer ones
            are left empty (frames flagged missing when no other face is there). None: `max_gap`.
        min_length (int): tracks detected in fewer frames are dropped as false detections (a
            detector's one-frame flicker on texture); their detections stay in `detections`.
            Default: 3.
        fps (Fraction | None): the video's frame rate, for the records' times.
    """
    interp_gap = max_gap if interp_gap is None else int(interp_gap)
    ids = link_tracks(detections, iou_threshold, max_gap)
    per_track = {}
    for i, (faces, fids) in enumerate(zip(detections, ids)):
        for f, tid in zip(faces, fids):
            per_track.setdefault(tid, ([], []))
            per_track[tid][0].append(i)
            per_track[tid][1].append(f)
    out = [[] for _ in detections]
    for tid, (frames, faces) in sorted(per_track.items()):
        if len(frames) < min_length:
            continue
        for t, box, lm, score, raw in _smooth_track(frames, faces, smooth, interp_gap):
            out[t].append(TrackedFace(tid, box, lm, score, raw))
    return FaceTrack(out, [list(d) for d in detections], fps)


# ---- face-track cache ------------------------------------------------------------------------

def track_cache_dir():
    from ..weights.download import cache_dir

    return os.path.join(cache_dir(), "face_tracks")


def cache_key(video_path, detector_identity):
    """sha256 of the video's content hash, the detector identity and the cache format."""
    from ..weights.hashing import file_sha256

    blob = json.dumps({"format": CACHE_FORMAT, "video": file_sha256(video_path),
                       "detector": str(detector_identity)}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def save_detections(path, detections, key):
    """Write per-frame detections to `path` (.npz, atomically)."""
    counts = np.array([len(d) for d in detections], np.int64)
    flat = [f for d in detections for f in d]
    boxes = np.array([f.box for f in flat], np.float32).reshape(-1, 4)
    scores = np.array([f.score for f in flat], np.float32)
    lms = np.array([np.full((5, 2), np.nan, np.float32) if f.landmarks is None else f.landmarks for f in flat],
                   np.float32).reshape(-1, 5, 2)
    meta = json.dumps({"format": CACHE_FORMAT, "key": key})
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(meta), counts=counts, boxes=boxes, scores=scores, landmarks=lms)
    with atomic_path(path, ".npz") as tmp:
        with open(tmp, "wb") as f:
            f.write(buf.getvalue())


def load_detections(path, key):
    """Per-frame detections from a cache file written by `save_detections` for `key`.

    Raises:
        ValueError: the file is damaged, of another format, or written for another key.
    """
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        if meta.get("format") != CACHE_FORMAT or meta.get("key") != key:
            raise ValueError(f"written for another video or detector (format {meta.get('format')})")
        counts, boxes, scores, lms = z["counts"], z["boxes"], z["scores"], z["landmarks"]
    if counts.ndim != 1 or (counts < 0).any() or int(counts.sum()) != len(boxes) or \
            boxes.shape[1:] != (4,) or len(scores) != len(boxes) or lms.shape != (len(boxes), 5, 2) or \
            not np.isfinite(boxes).all():
        raise ValueError("inconsistent arrays")
    out, k = [], 0
    for n in counts.tolist():
        out.append([Face(boxes[j], scores[j], None if np.isnan(lms[j]).any() else lms[j]) for j in range(k, k + n)])
        k += n
    return out


def _read_cache(path, key):
    if not os.path.exists(path):
        return None
    try:
        return load_detections(path, key)
    except Exception as e:  # noqa: BLE001 - an untrusted file: anything wrong with it means "rebuild"
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        log.warning("face-track cache %s is unreadable (%s): detecting again and rewriting it", path, why)
        return None


# ---- the whole video -------------------------------------------------------------------------

def track_faces(source, detector, *, batch_size=8, smooth=None, iou_threshold=0.3, max_gap=None, interp_gap=None,
                min_length=3, fps=None, cache=True, progress=False):
    """Detect, track and smooth the faces of a video. Frames without a face are flagged, never an error.

    Args:
        source (str | iterable): a video file (streamed with `iter_frames`), or an iterable of HxWx3
            uint8 RGB frames (streamed as well; no cache then).
        detector: a `FaceDetector` (or any object with `detect(list of images) -> list of lists of
            Face` and, for the cache, `identity`).
        batch_size (int): frames per `detect` call. Default: 8.
        smooth (int | None): smoothing window in frames (centred Savitzky-Golay of degree 2, zero
            lag; 0/1: off). None: 0.6 s of video (15 frames at 25 fps; 15 when the rate is unknown).
        iou_threshold (float): least IoU with a track's last box to continue it. Default: 0.3.
        max_gap (int | None): frames a face may go undetected and keep its id; None: 3 s of video
            (75 frames when the rate is unknown).
        interp_gap (int | None): gaps up to this many frames are filled by interpolation, longer ones
            are flagged missing; None: 0.5 s of video (12 frames when the rate is unknown).
        min_length (int): tracks detected in fewer frames are dropped as false detections. Default: 3.
        fps (Fraction | float | None): frame rate of a frame iterable (read from a video file).
        cache (bool | str): use the face-track cache (`$PPGAN_HOME/face_tracks`), or a folder to use
            instead; False: detect every time. Only for video files and detectors with `identity`.
        progress (bool): a tqdm bar over the frames.

    Returns:
        FaceTrack

    Raises:
        VideoError: the file is not a readable video.
    """
    path = info = None
    if isinstance(source, (str, os.PathLike)):
        from ..video.probe import probe_video

        path = os.fspath(source)
        info = probe_video(path)
        fps = info.fps
    rate = float(fps) if fps else None
    if max_gap is None:
        max_gap = int(round(3 * rate)) if rate else 75
    max_gap = int(max_gap)
    if smooth is None:
        smooth = max(5, int(round(0.6 * rate)) // 2 * 2 + 1) if rate else 15
    if interp_gap is None:
        interp_gap = int(round(0.5 * rate)) if rate else 12
    interp_gap = min(int(interp_gap), max_gap)
    options = dict(smooth=smooth, iou_threshold=iou_threshold, max_gap=max_gap, interp_gap=interp_gap,
                   min_length=int(min_length), fps=fps)

    identity = getattr(detector, "identity", None)
    cache_file = key = None
    if path is not None and cache and identity:
        folder = cache if isinstance(cache, (str, os.PathLike)) else track_cache_dir()
        key = cache_key(path, identity)
        cache_file = os.path.join(os.fspath(folder), key + ".npz")
        found = _read_cache(cache_file, key)
        if found is not None:
            log.info("face tracks of %s from the cache (%s)", path, cache_file)
            track = build_track(found, **options)
            track.from_cache, track.cache_path = True, cache_file
            return track

    detections = _detect_all(path, info, source, detector, batch_size, progress)
    if cache_file is not None:
        try:
            save_detections(cache_file, detections, key)
        except OSError as e:
            log.warning("cannot write the face-track cache %s (%s); continuing without it", cache_file,
                        e.strerror or e)
            cache_file = None
    track = build_track(detections, **options)
    track.cache_path = cache_file
    return track


def _detect_all(path, info, source, detector, batch_size, progress):
    from ..video.decode import iter_frames

    frames = iter_frames(path, info=info) if path is not None else iter(source)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=info.n_frames if info else None, desc="face detect", unit="frame")
    stage = FaceDetectionStage(detector, batch_size, on_detected=bar.update if bar else None)
    stage.reset(0)
    try:
        for batch in _batches(frames, stage.batch_size):
            stage.push(batch)
    finally:
        if bar is not None:
            bar.close()
        close = getattr(frames, "close", None)
        if close is not None:
            close()
    return [stage.detections.get(i, []) for i in range(stage.next)]


# ---- drawing ---------------------------------------------------------------------------------

_COLORS = [(0, 255, 0), (255, 64, 64), (64, 128, 255), (255, 200, 0), (255, 0, 255), (0, 255, 255)]


def draw_faces(image, faces, thickness=None):
    """A copy of `image` (HxWx3 uint8 RGB) with each face's box and landmark dots drawn.
    `faces`: `Face` or `TrackedFace` records (a tracked face is coloured by its id)."""
    out = np.ascontiguousarray(image).copy()
    h, w = out.shape[:2]
    t = thickness or max(1, round(min(h, w) / 300))
    for k, f in enumerate(faces):
        color = _COLORS[getattr(f, "track_id", k) % len(_COLORS)]
        x1, y1, x2, y2 = (int(round(v)) for v in f.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, t, cv2.LINE_AA)
        if f.landmarks is not None:
            for x, y in f.landmarks:
                cv2.circle(out, (int(round(x)), int(round(y))), t + 1, (255, 0, 0), -1, cv2.LINE_AA)
    return out


class DrawTrackStage(FrameStage):
    """A `process_video` stage drawing a `FaceTrack`'s faces on each frame (by frame index)."""

    label = "draw faces"

    def __init__(self, track):
        self.track = track
        self.next = 0

    def reset(self, start_frame):
        self.next = int(start_frame)

    def push(self, frames):
        out = []
        for f in frames:
            faces = self.track.faces[self.next] if self.next < self.track.n_frames else []
            out.append(draw_faces(f, faces))
            self.next += 1
        return out

    def identity(self):
        digest = hashlib.sha256(json.dumps(self.track.records(), sort_keys=True).encode()).hexdigest()
        return {"stage": "draw_faces", "tracks": digest[:16]}

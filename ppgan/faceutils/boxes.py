"""Face records and box maths shared by every detector: `Face`, IoU, non-maximum suppression, and
`as_image_list` (the input check every backend's `detect` runs).

Plain PyTorch / numpy (torchvision's `nms` is not importable with the CPU build of torch here).
Boxes are (x1, y1, x2, y2) in pixels of the image they were found in.
"""
import dataclasses
from typing import Optional

import numpy as np
import torch

# The five landmarks every detector reports, in this order (left/right as seen in the image).
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclasses.dataclass
class Face:
    """One detected face.

    Attributes:
        box (np.ndarray): float32 (4,), x1, y1, x2, y2 in pixels.
        score (float): detector confidence in [0, 1].
        landmarks (np.ndarray | None): float32 (5, 2) x, y pixels in `LANDMARK_NAMES` order, or None
            where the detector has none (Haar, S3FD).
    """

    box: np.ndarray
    score: float
    landmarks: Optional[np.ndarray] = None

    def __post_init__(self):
        self.box = np.asarray(self.box, dtype=np.float32).reshape(4)
        self.score = float(self.score)
        if self.landmarks is not None:
            self.landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(5, 2)

    @property
    def width(self):
        return float(self.box[2] - self.box[0])

    @property
    def height(self):
        return float(self.box[3] - self.box[1])

    @property
    def center(self):
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2], dtype=np.float32)

    def to_dict(self):
        """JSON-ready record: box, score, landmarks (lists of floats, or None)."""
        return {"box": [round(float(v), 2) for v in self.box], "score": round(self.score, 4),
                "landmarks": None if self.landmarks is None else [[round(float(x), 2), round(float(y), 2)]
                                                                  for x, y in self.landmarks]}


def box_area(boxes):
    """Areas of [N, 4] boxes (tensor or array); degenerate boxes have area 0."""
    w = (boxes[..., 2] - boxes[..., 0]).clip(min=0) if isinstance(boxes, torch.Tensor) else \
        np.clip(boxes[..., 2] - boxes[..., 0], 0, None)
    h = (boxes[..., 3] - boxes[..., 1]).clip(min=0) if isinstance(boxes, torch.Tensor) else \
        np.clip(boxes[..., 3] - boxes[..., 1], 0, None)
    return w * h


def box_iou(a, b):
    """IoU matrix [N, M] of boxes a [N, 4] and b [M, 4] (both tensors or both arrays)."""
    if isinstance(a, torch.Tensor):
        lt = torch.maximum(a[:, None, :2], b[None, :, :2])
        rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
        wh = (rb - lt).clamp(min=0)
    else:
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        lt = np.maximum(a[:, None, :2], b[None, :, :2])
        rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
        wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return inter / (union + 1e-12)


def _greedy_keep(b, order, iou_threshold, min_mode):
    """Greedy suppression over float64 boxes `b` [N, 4] visited in `order`; kept positions of b."""
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    area = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep = []
    rest = order
    while rest.size:
        i, rest = rest[0], rest[1:]
        keep.append(i)
        if not rest.size:
            break
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if min_mode else area[i] + area[rest] - inter
        rest = rest[inter / (denom + 1e-12) <= iou_threshold]
    return keep


def _check_mode(mode):
    if mode not in ("union", "min"):
        raise ValueError(f"nms mode must be 'union' or 'min', got {mode!r}")
    return mode == "min"


def nms(boxes, scores, iou_threshold, mode="union"):
    """Indices (long tensor, by descending score) kept by greedy non-maximum suppression.

    Same result as torchvision.ops.nms: a box is dropped when its IoU with a higher-scoring kept
    box exceeds `iou_threshold`. With mode='min' the overlap is intersection over the smaller
    area (MTCNN's last stage). The greedy pass runs on the host (one copy of boxes and scores
    off the device), comparing each kept box with the boxes still standing: O(N * kept).
    """
    min_mode = _check_mode(mode)
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    b = boxes.detach().double().cpu().numpy()
    s = scores.detach().double().cpu().numpy()
    order = np.argsort(-s, kind="stable")
    keep = _greedy_keep(b, order, iou_threshold, min_mode)
    return torch.as_tensor(np.asarray(keep, dtype=np.int64), device=boxes.device)


def batched_nms(boxes, scores, groups, iou_threshold, mode="union"):
    """NMS applied independently within each group id (e.g. image index of a batch).

    Returns kept indices ordered by descending score over all groups (as torchvision's).
    """
    min_mode = _check_mode(mode)
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    b = boxes.detach().double().cpu().numpy()
    s = scores.detach().double().cpu().numpy()
    g = groups.detach().cpu().numpy()
    order = np.argsort(-s, kind="stable")
    keep = []
    for gid in np.unique(g):
        keep += _greedy_keep(b, order[g[order] == gid], iou_threshold, min_mode)
    keep = np.asarray(keep, dtype=np.int64)
    keep = keep[np.argsort(-s[keep], kind="stable")]
    return torch.as_tensor(keep, device=boxes.device)


def as_image_list(images, where="detect"):
    """`images` as a list of HxWx3 uint8 arrays, checked; PPGANError (one line) otherwise.

    Accepts a list / tuple of arrays, or one HxWx3 array (then a one-element list). Every
    detector's `detect` runs its input through this.
    """
    from ..utils.errors import PPGANError

    if isinstance(images, np.ndarray):
        if images.ndim == 3:
            images = [images]
        elif images.ndim == 4:
            images = list(images)
        else:
            raise PPGANError(f"{where}: got an array of shape {tuple(images.shape)}; expected HxWx3 uint8 RGB "
                             "(or a list of them)")
    if not isinstance(images, (list, tuple)):
        raise PPGANError(f"{where}: expected a list of HxWx3 uint8 RGB arrays, got {type(images).__name__}")
    out = []
    for i, im in enumerate(images):
        if not isinstance(im, np.ndarray):
            raise PPGANError(f"{where}: image {i} is a {type(im).__name__}, not a numpy array")
        if im.dtype != np.uint8:
            raise PPGANError(f"{where}: image {i} has dtype {im.dtype}; expected uint8 RGB (0..255)")
        if im.ndim != 3 or im.shape[2] != 3 or im.shape[0] < 1 or im.shape[1] < 1:
            raise PPGANError(f"{where}: image {i} has shape {tuple(im.shape)}; expected HxWx3 RGB")
        out.append(im)
    return out

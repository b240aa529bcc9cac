"""BlazeFace front-camera face detector, 128x128 input (`--face_detector blazeface`).

Bazarevsky et al., "BlazeFace: Sub-millisecond Neural Face Detection on Mobile GPUs", 2019. The
net follows PaddleGAN `ppgan/faceutils/face_detection/detection/blazeface/net_blazeface.py` (from
hollance/BlazeFace-PyTorch), with its sub-module names (`backbone1.2.convs.0`, `classifier_8`,
...) so PaddleGAN's `blazeface.pdparams` loads strictly by name.

Differences from PaddleGAN, on purpose:
* the 896 anchors are computed here from MediaPipe's SSD anchor options (`ssd_anchors`) instead
  of downloading `anchors.npy`;
* by default the image is padded to a square (`fit='pad'`), so faces near the edges of a wide or
  tall frame are seen; `fit='crop'` is PaddleGAN's centre crop of the short side.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..utils.device import resolve_device
from .boxes import Face, box_iou

INPUT_SIZE = 128
NUM_ANCHORS = 896
NUM_KEYPOINTS = 6  # subject's right eye, left eye, nose tip, mouth centre, right ear, left ear
SCALE = 128.0  # x/y/w/h scale of the regression outputs (all four are 128 for this model)
# Mouth corners are not among BlazeFace's keypoints: they are estimated from the mouth centre.
# In a mean 68-point face (OpenFace's dlib template, eyes levelled, eye distance 1) the corners
# lie 0.45 either side of the midline and 0.06 above the centre of the lips.
MOUTH_HALF_WIDTH = 0.45
MOUTH_CORNER_RAISE = 0.06

# MediaPipe's anchor options for the short-range (front camera) model
FRONT_ANCHOR_OPTIONS = dict(num_layers=4, min_scale=0.1484375, max_scale=0.75, input_size=INPUT_SIZE,
                            anchor_offset=0.5, strides=(8, 16, 16, 16), aspect_ratios=(1.0,),
                            interpolated_scale_aspect_ratio=1.0, fixed_anchor_size=True)


def ssd_anchors(num_layers=4, min_scale=0.1484375, max_scale=0.75, input_size=128, anchor_offset=0.5,
                strides=(8, 16, 16, 16), aspect_ratios=(1.0,), interpolated_scale_aspect_ratio=1.0,
                fixed_anchor_size=True):
    """SSD anchors as MediaPipe's `SsdAnchorsCalculator` makes them.

    Consecutive layers with the same stride share one feature map; every cell of it gets, per
    layer, one anchor per aspect ratio plus one at the interpolated scale. Anchors are listed
    by feature map, then row, then column, then anchor (the order of the net's reshaped heads).

    Returns:
        np.ndarray: float32 [N, 4] (x_centre, y_centre, w, h), normalised to the input size;
        w = h = 1 with `fixed_anchor_size` (BlazeFace regresses absolute sizes). The front model
        gives 16x16x2 + 8x8x6 = 896 anchors.
    """
    def scale(i):
        return min_scale + (max_scale - min_scale) * i / (num_layers - 1) if num_layers > 1 else \
            (min_scale + max_scale) / 2

    anchors = []
    layer = 0
    while layer < num_layers:
        sizes = []  # (w, h) of each anchor of a cell
        last = layer
        while last < num_layers and strides[last] == strides[layer]:
            s = scale(last)
            for ratio in aspect_ratios:
                sizes.append((s * math.sqrt(ratio), s / math.sqrt(ratio)))
            if interpolated_scale_aspect_ratio > 0:
                s_next = 1.0 if last == num_layers - 1 else scale(last + 1)
                s_mid, r = math.sqrt(s * s_next), interpolated_scale_aspect_ratio
                sizes.append((s_mid * math.sqrt(r), s_mid / math.sqrt(r)))
            last += 1
        fm = math.ceil(input_size / strides[layer])
        for y in range(fm):
            for x in range(fm):
                for w, h in sizes:
                    wh = (1.0, 1.0) if fixed_anchor_size else (w, h)
                    anchors.append(((x + anchor_offset) / fm, (y + anchor_offset) / fm, *wh))
        layer = last
    return np.asarray(anchors, dtype=np.float32)


class BlazeBlock(nn.Module):
    """Depthwise-separable residual block; stride 2 halves the size (max-pooled shortcut) and
    extra output channels are zero-padded on the shortcut."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1):
        super().__init__()
        self.stride = stride
        self.channel_pad = out_channels - in_channels
        padding = 0 if stride == 2 else (kernel_size - 1) // 2
        if stride == 2:
            self.max_pool = nn.MaxPool2d(kernel_size=stride, stride=stride)
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, kernel_size, stride=stride, padding=padding, groups=in_channels),
            nn.Conv2d(in_channels, out_channels, 1),
        )
        self.act = nn.ReLU()

    def forward(self, x):
        if self.stride == 2:
            h = F.pad(x, (0, 2, 0, 2))  # TFLite "SAME" padding for a stride-2 3x3 conv
            x = self.max_pool(x)
        else:
            h = x
        if self.channel_pad > 0:
            x = F.pad(x, (0, 0, 0, 0, 0, self.channel_pad))
        return self.act(self.convs(h) + x)


class BlazeFace(nn.Module):
    """The front-camera BlazeFace net (one published configuration, no arguments).

    Input: [B, 3, 128, 128] RGB in [-1, 1]. Output: (regression [B, 896, 16], logits [B, 896, 1]);
    the 16 numbers of an anchor are box centre x, y, width, height and six keypoints' x, y, all
    in input pixels relative to the anchor (`decode`).
    """

    def __init__(self):
        super().__init__()
        self.backbone1 = nn.Sequential(
            nn.Conv2d(3, 24, kernel_size=5, stride=2, padding=0), nn.ReLU(),
            BlazeBlock(24, 24), BlazeBlock(24, 28), BlazeBlock(28, 32, stride=2), BlazeBlock(32, 36),
            BlazeBlock(36, 42), BlazeBlock(42, 48, stride=2), BlazeBlock(48, 56), BlazeBlock(56, 64),
            BlazeBlock(64, 72), BlazeBlock(72, 80), BlazeBlock(80, 88),
        )
        self.backbone2 = nn.Sequential(
            BlazeBlock(88, 96, stride=2), BlazeBlock(96, 96), BlazeBlock(96, 96), BlazeBlock(96, 96),
            BlazeBlock(96, 96),
        )
        self.classifier_8 = nn.Conv2d(88, 2, 1)
        self.classifier_16 = nn.Conv2d(96, 6, 1)
        self.regressor_8 = nn.Conv2d(88, 32, 1)
        self.regressor_16 = nn.Conv2d(96, 96, 1)

    def forward(self, x):
        b = x.shape[0]
        x = self.backbone1(F.pad(x, (1, 2, 1, 2)))  # [b, 88, 16, 16]
        h = self.backbone2(x)  # [b, 96, 8, 8]
        # NCHW -> NHWC, then one row per anchor: (row, column, anchor) order, as `ssd_anchors`
        c = torch.cat([self.classifier_8(x).permute(0, 2, 3, 1).reshape(b, -1, 1),
                       self.classifier_16(h).permute(0, 2, 3, 1).reshape(b, -1, 1)], dim=1)
        r = torch.cat([self.regressor_8(x).permute(0, 2, 3, 1).reshape(b, -1, 16),
                       self.regressor_16(h).permute(0, 2, 3, 1).reshape(b, -1, 16)], dim=1)
        return r, c


def decode(raw_boxes, raw_scores, anchors, score_clip=100.0):
    """Anchor-relative outputs -> (boxes [B, 896, 4] x1 y1 x2 y2, keypoints [B, 896, 6, 2] x y,
    both normalised to the 128-pixel input, scores [B, 896] in (0, 1))."""
    a = anchors.to(raw_boxes)
    xy = raw_boxes[..., 0:2] / SCALE * a[:, 2:4] + a[:, 0:2]
    wh = raw_boxes[..., 2:4] / SCALE * a[:, 2:4]
    boxes = torch.cat([xy - wh / 2, xy + wh / 2], dim=-1)
    kp = raw_boxes[..., 4:16].reshape(*raw_boxes.shape[:2], NUM_KEYPOINTS, 2)
    kp = kp / SCALE * a[:, None, 2:4] + a[:, None, 0:2]
    scores = torch.sigmoid(raw_scores.clamp(-score_clip, score_clip)).squeeze(-1)
    return boxes, kp, scores


def weighted_nms(boxes, keypoints, scores, iou_threshold=0.3, score="mean"):
    """BlazeFace's weighted NMS (the paper's "blending").

    Take the best remaining detection, gather every remaining one overlapping it by more than
    `iou_threshold` (itself included), and output their score-weighted mean box and keypoints with
    their mean score (`score='mean'`, PaddleGAN / hollance) or the best one's (`score='best'`,
    mediapipe's WEIGHTED suppression); repeat on the rest. Arrays: boxes [N, 4], keypoints
    [N, K, 2], scores [N]. Returns the merged (boxes, keypoints, scores), highest merged score first.
    """
    if score not in ("mean", "best"):
        raise ValueError(f"score must be 'mean' or 'best', got {score!r}")
    order = np.argsort(-scores, kind="stable")
    out_b, out_k, out_s = [], [], []
    while order.size:
        first = order[0]
        iou = box_iou(boxes[first:first + 1], boxes[order])[0]
        group, order = order[iou > iou_threshold], order[iou <= iou_threshold]
        if group.size == 0 or group[0] != first:  # degenerate (zero-area) box: keep it alone
            group = np.array([first])
            order = order[order != first]
        w = scores[group]
        if group.size > 1:
            out_b.append((boxes[group] * w[:, None]).sum(0) / w.sum())
            out_k.append((keypoints[group] * w[:, None, None]).sum(0) / w.sum())
            out_s.append(w.mean() if score == "mean" else scores[first])
        else:
            out_b.append(boxes[first])
            out_k.append(keypoints[first])
            out_s.append(scores[first])
    if not out_b:
        return np.zeros((0, 4), np.float32), np.zeros((0,) + keypoints.shape[1:], np.float32), np.zeros(0, np.float32)
    rank = np.argsort(-np.asarray(out_s), kind="stable")  # by the blended score (PaddleGAN: by the seed's)
    return (np.stack(out_b)[rank].astype(np.float32), np.stack(out_k)[rank].astype(np.float32),
            np.asarray(out_s, np.float32)[rank])


def five_points(keypoints):
    """BlazeFace's six keypoints [..., 6, 2] -> our five landmarks [..., 5, 2] in `LANDMARK_NAMES`
    order: the eyes sorted by x, the nose tip, and mouth corners estimated from the mouth centre
    (`MOUTH_HALF_WIDTH` along the eye line, `MOUTH_CORNER_RAISE` up the face); the ears are dropped."""
    kp = np.asarray(keypoints, np.float32)
    e0, e1 = kp[..., 0, :], kp[..., 1, :]
    swap = (e0[..., 0] > e1[..., 0])[..., None]
    left, right = np.where(swap, e1, e0), np.where(swap, e0, e1)
    eye = right - left
    down = np.stack([-eye[..., 1], eye[..., 0]], axis=-1)  # the eye line turned 90 degrees, towards the chin
    half = MOUTH_HALF_WIDTH * eye
    mouth = kp[..., 3, :] - MOUTH_CORNER_RAISE * down
    return np.stack([left, right, kp[..., 2, :], mouth - half, mouth + half], axis=-2)


def to_square(img, fit="pad"):
    """Resize an RGB image to the 128x128 input. Returns (input uint8 [128, 128, 3], scale, dx, dy)
    where an input pixel (u, v) is image pixel (u * scale - dx, v * scale - dy).

    'pad': the whole image, centred on black borders; 'crop': PaddleGAN's centre square of side
    min(H, W)."""
    import cv2

    h, w = img.shape[:2]
    side = max(h, w) if fit == "pad" else min(h, w)
    x0, y0 = (w - side) // 2, (h - side) // 2  # negative: a border, positive: cropped away
    if fit == "pad":
        square = np.zeros((side, side, 3), np.uint8)
        square[-y0:-y0 + h, -x0:-x0 + w] = img
    else:
        square = img[y0:y0 + side, x0:x0 + side]
    small = cv2.resize(np.ascontiguousarray(square), (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
    return small, side / INPUT_SIZE, -x0, -y0


def build_blazeface(weight_path=None, download=True, device="cpu"):
    """An eval-mode `BlazeFace` with PaddleGAN's weights (catalogue entry 'blazeface'), and the file."""
    from .nets import load_face_net

    return load_face_net("blazeface", weight_path=weight_path, download=download, device=device)


class BlazeFaceDetector:
    """`FaceDetector('blazeface')`: PaddleGAN's BlazeFace, with five landmarks per face.

    Args:
        device (str): 'cpu', 'cuda', 'cuda:N' or 'auto'.
        weight_path (str | None): a `blazeface.pdparams` overriding cache / download.
        download (bool): whether missing weights may be downloaded.
        threshold (float): minimum score (PaddleGAN's detector: 0.5).
        nms_threshold (float): IoU for the weighted NMS (PaddleGAN: 0.3).
        fit (str): 'pad' (whole image, default) or 'crop' (PaddleGAN's centre square).
        batch_size (int): images per forward pass.
    """

    has_landmarks = True

    def __init__(self, device="cpu", weight_path=None, download=True, threshold=0.5, nms_threshold=0.3,
                 fit="pad", batch_size=64):
        from ..utils.errors import ConfigError
        from ..weights import file_sha256

        if fit not in ("pad", "crop"):
            raise ConfigError(f"blazeface fit must be 'pad' or 'crop'; got {fit!r}")
        self.device = resolve_device(device)
        self.net, path = build_blazeface(weight_path, download, self.device)
        self.anchors = torch.from_numpy(ssd_anchors(**FRONT_ANCHOR_OPTIONS)).to(self.device)
        self.threshold, self.nms_threshold = float(threshold), float(nms_threshold)
        self.fit, self.batch_size = fit, max(1, int(batch_size))
        # the cache key of found faces: weights and every option that changes them
        self.identity = f"blazeface:{file_sha256(path)}:t{self.threshold:g}:nms{self.nms_threshold:g}:{fit}"

    @torch.no_grad()
    def detect(self, images):
        """Faces in each of `images` (HxWx3 uint8 RGB): per image a list of `Face`, best first."""
        results = []
        for start in range(0, len(images), self.batch_size):
            prepared = [to_square(np.asarray(img), self.fit) for img in images[start:start + self.batch_size]]
            x = torch.from_numpy(np.stack([p[0] for p in prepared])).to(self.device)
            x = x.permute(0, 3, 1, 2).float() / 127.5 - 1.0
            boxes, kps, scores = (t.cpu().numpy() for t in decode(*self.net(x), self.anchors))
            for i, (_, scale, dx, dy) in enumerate(prepared):
                results.append(self._faces(boxes[i], kps[i], scores[i], scale, dx, dy))
        return results

    def _faces(self, boxes, kps, scores, scale, dx, dy):
        keep = (scores >= self.threshold) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # real boxes only
        b, k, s = weighted_nms(boxes[keep], kps[keep], scores[keep], self.nms_threshold)
        shift = np.array([dx, dy], np.float32)
        px = INPUT_SIZE * scale  # normalised -> image pixels
        return [Face((bb.reshape(2, 2) * px - shift).reshape(4), ss, five_points(kk * px - shift))
                for bb, kk, ss in zip(b, k, s)]

"""MTCNN face detector: P-Net, R-Net, O-Net and their cascade, in plain PyTorch.

Zhang et al., "Joint Face Detection and Alignment using Multi-task Cascaded Convolutional
Networks", IEEE SPL 2016. The nets' layer names follow facenet-pytorch 2.6.0, whose packaged
state dicts (`facenet_pytorch/data/{pnet,rnet,onet}.pt`, catalogue entries `mtcnn-pnet/-rnet/-onet`)
load unchanged; that package is never imported. The cascade (image pyramid, proposals, NMS per
scale and across scales, refinement, landmarks) is written here with tensors for every box at
once: crops for R-Net / O-Net are cut for all boxes of an image in one `grid_sample` call.
"""
import hashlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..utils.errors import CheckpointError, ConfigError
from .boxes import Face, as_image_list, batched_nms

NET_NAMES = ("pnet", "rnet", "onet")
# Images of one size go through the pyramid together, up to this many pixels per pass. On the CPU
# P-Net is bound by memory bandwidth: its first layers' maps must stay near cache size (one HD
# frame, four 640x360 ones); on a GPU large batches pay (16 HD frames: 0.4 GB in P-Net's first layer).
MAX_BATCH_PIXELS = {"cpu": 1280 * 720, "cuda": 16 * 1280 * 720}


class PNet(nn.Module):
    """Proposal net: fully convolutional, a 12x12 window per output cell (stride 2).

    forward(x [N, 3, H, W] normalised) -> (reg [N, 4, h, w], prob [N, 2, h, w] softmaxed).
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, 3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, 3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)


def _flatten_wh(x):
    # the dense weights were converted from a (W, H, C) memory order: flatten in that order
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class RNet(nn.Module):
    """Refine net on 24x24 crops. forward(x [N, 3, 24, 24]) -> (reg [N, 4], prob [N, 2])."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, 3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, 3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, 2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(_flatten_wh(x)))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output net on 48x48 crops.

    forward(x [N, 3, 48, 48]) -> (reg [N, 4], landmarks [N, 10] (5 x then 5 y, relative to the
    box), prob [N, 2]).
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, 2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(_flatten_wh(x)))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)


NETS = {"pnet": PNet, "rnet": RNet, "onet": ONet}


def _weight_paths(weight_path, download):
    """{'pnet': path, ...}: from the catalogue, or `weight_path` (a folder holding pnet.pt,
    rnet.pt, onet.pt; a dict name -> file; or a sequence of three files in that order)."""
    import os

    from ..weights import resolve_weight

    if weight_path is None:
        return {n: resolve_weight(f"mtcnn-{n}", download=download) for n in NET_NAMES}
    if isinstance(weight_path, dict):
        unknown = sorted(set(weight_path) - set(NET_NAMES))
        if unknown or len(weight_path) != 3:
            raise ConfigError(f"MTCNN weight_path dict needs exactly the keys {', '.join(NET_NAMES)}; "
                              f"got {', '.join(map(str, weight_path))}")
        files = weight_path
    elif isinstance(weight_path, (list, tuple)):
        if len(weight_path) != 3:
            raise ConfigError(f"MTCNN weight_path needs 3 files (pnet, rnet, onet), got {len(weight_path)}")
        files = dict(zip(NET_NAMES, weight_path))
    else:
        folder = os.path.expanduser(os.fspath(weight_path))
        if not os.path.isdir(folder):
            raise CheckpointError(f"MTCNN weight_path {folder} is not a folder holding pnet.pt, rnet.pt, onet.pt")
        files = {n: os.path.join(folder, f"{n}.pt") for n in NET_NAMES}
    return {n: resolve_weight(f"mtcnn-{n}", weight_path=files[n]) for n in NET_NAMES}


def build_mtcnn_nets(weight_path=None, download=True):
    """({'pnet': PNet, 'rnet': RNet, 'onet': ONet} with weights loaded, eval mode, {name: file})."""
    from ..weights import load_state_strict, read_torch

    paths = _weight_paths(weight_path, download)
    nets = {}
    for name, path in paths.items():
        state = read_torch(path)
        if not isinstance(state, dict):
            raise CheckpointError(f"{path} does not hold a state dict for the MTCNN {name}")
        nets[name] = load_state_strict(NETS[name](), state, path).eval()
    return nets, paths


# ---------------------------------------------------------------- cascade helpers (tensors)

def pyramid_scales(height, width, min_face_size=20, factor=0.709):
    """Scales at which P-Net (a 12 px window) sees faces from `min_face_size` px up to the
    image's shorter side."""
    scale = 12.0 / min_face_size
    side = min(height, width) * scale
    scales = []
    while side >= 12:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


def square_boxes(boxes):
    """Boxes [N, 4] made square around their centres (side = the longer side)."""
    wh = boxes[:, 2:] - boxes[:, :2]
    side = wh.max(dim=1, keepdim=True).values
    centre = boxes[:, :2] + wh / 2
    return torch.cat([centre - side / 2, centre + side / 2], dim=1)


def regress_boxes(boxes, reg):
    """Apply the nets' box corrections `reg` [N, 4] (fractions of width / height)."""
    wh = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    return boxes + reg * wh


def crop_resize(image, boxes, size, max_supersample=4):
    """Crops of `image` [3, H, W] at `boxes` [N, 4] (pixel edges, may leave the image: outside
    is 0) resized to `size` x `size`: [N, 3, size, size].

    One `grid_sample` per supersampling factor: a box k times larger than `size` is sampled
    on a k*size grid and average-pooled (an area-like resize, k <= max_supersample).
    """
    n = boxes.shape[0]
    out = image.new_zeros((n, image.shape[0], size, size))
    if n == 0:
        return out
    h, w = image.shape[1:]
    k_all = ((boxes[:, 2:] - boxes[:, :2]).amax(dim=1) / size).ceil().clamp(1, max_supersample).long()
    for k in torch.unique(k_all).tolist():
        idx = (k_all == k).nonzero().squeeze(1)
        b = boxes[idx]
        s = size * k
        t = (torch.arange(s, device=image.device, dtype=image.dtype) + 0.5) / s  # sample centres, 0..1
        xs = b[:, 0:1] + t[None] * (b[:, 2:3] - b[:, 0:1])  # [n, s] pixel-edge coordinates
        ys = b[:, 1:2] + t[None] * (b[:, 3:4] - b[:, 1:2])
        gx = (xs * (2.0 / w) - 1)[:, None, :].expand(-1, s, -1)
        gy = (ys * (2.0 / h) - 1)[:, :, None].expand(-1, -1, s)
        grid = torch.stack([gx, gy], dim=-1).reshape(1, len(idx) * s, s, 2)
        crops = F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        crops = crops.reshape(image.shape[0], len(idx), s, s).transpose(0, 1)
        if k > 1:
            crops = F.avg_pool2d(crops, k)
        out[idx] = crops
    return out


def _floats(name, values, scalar=False):
    try:
        return float(values) if scalar else tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ConfigError(f"MTCNN {name} must be {'a number' if scalar else 'numbers'}, got {values!r}") from None


def _normalise(x):
    return (x - 127.5) * 0.0078125


class MTCNNDetector:
    """MTCNN face detector with 5 landmarks (the toolkit's offline default).

    Args:
        device (str | torch.device): 'cpu', 'cuda', 'cuda:N'.
        weight_path (str | dict | sequence | None): None for the catalogue's files (packaged in
            facenet-pytorch); a folder holding pnet.pt, rnet.pt, onet.pt; a dict
            {'pnet': file, 'rnet': file, 'onet': file}; or three files in that order.
        download (bool): allow downloading missing weights (they normally ship in the package).
        min_face_size (float): smallest face side searched, px (default 20, MTCNN's). Larger is
            faster: the pyramid starts at 12 / min_face_size.
        thresholds (3 floats): face-probability thresholds of P-, R-, O-Net (0.6, 0.7, 0.7).
        factor (float): pyramid scale step (0.709, i.e. area halves per level).
        nms_thresholds (4 floats): IoU for NMS per scale, across scales, after R-Net, after
            O-Net (the last as intersection over the smaller box): (0.5, 0.7, 0.7, 0.7).
    """

    has_landmarks = True

    def __init__(self, device="cpu", weight_path=None, download=True, min_face_size=20,
                 thresholds=(0.6, 0.7, 0.7), factor=0.709, nms_thresholds=(0.5, 0.7, 0.7, 0.7)):
        from ..utils.device import resolve_device
        from ..weights import file_sha256

        thresholds = _floats("thresholds", thresholds)
        nms_thresholds = _floats("nms_thresholds", nms_thresholds)
        factor, min_face_size = _floats("factor", factor, True), _floats("min_face_size", min_face_size, True)
        if len(thresholds) != 3 or not all(0 <= t <= 1 for t in thresholds):
            raise ConfigError(f"MTCNN thresholds must be 3 probabilities in [0, 1], got {thresholds}")
        if len(nms_thresholds) != 4 or not all(0 < t <= 1 for t in nms_thresholds):
            raise ConfigError(f"MTCNN nms_thresholds must be 4 values in (0, 1], got {nms_thresholds}")
        if not 0 < float(factor) < 1:
            raise ConfigError(f"MTCNN factor must be in (0, 1), got {factor}")
        if not float(min_face_size) >= 12:
            raise ConfigError(f"MTCNN min_face_size must be >= 12 px (P-Net's window), got {min_face_size}")
        self.device = resolve_device(device) if isinstance(device, str) else torch.device(device)
        self.min_face_size = float(min_face_size)
        self.thresholds = thresholds
        self.nms_thresholds = nms_thresholds
        self.factor = float(factor)
        nets, paths = build_mtcnn_nets(weight_path, download)
        # channels-last: mkldnn's convolutions and max-pooling run several times faster on CPU
        self.pnet, self.rnet, self.onet = (nets[n].to(self.device, memory_format=torch.channels_last)
                                           for n in NET_NAMES)
        self.weight_files = paths
        digest = hashlib.sha256("".join(file_sha256(paths[n]) for n in NET_NAMES).encode()).hexdigest()
        self.identity = (f"mtcnn:{digest}:min{self.min_face_size:g}:t{','.join(f'{t:g}' for t in thresholds)}"
                         f":f{self.factor:g}:nms{','.join(f'{t:g}' for t in nms_thresholds)}")

    # -------------------------------------------------------------- public

    @torch.inference_mode()
    def detect(self, images):
        """Faces in each image.

        Args:
            images (list[np.ndarray]): HxWx3 uint8 RGB arrays (sizes may differ; images of one
                size go through the pyramid together). A single HxWx3 array counts as [it].
        Returns:
            list[list[Face]]: per image, its faces by descending score (box x1, y1, x2, y2 in
            pixel edges, may reach outside the image for a face at the border; landmarks in
            LANDMARK_NAMES order).
        """
        images = as_image_list(images, where="MTCNNDetector.detect")
        results = [[] for _ in images]
        by_size = {}
        for i, im in enumerate(images):
            by_size.setdefault(im.shape[:2], []).append(i)
        for same_size in by_size.values():
            h, w = images[same_size[0]].shape[:2]
            step = max(1, MAX_BATCH_PIXELS.get(self.device.type, MAX_BATCH_PIXELS["cpu"]) // (h * w))
            for start in range(0, len(same_size), step):
                idx = same_size[start:start + step]
                batch = torch.from_numpy(np.stack([images[i] for i in idx])).to(self.device)
                # NCHW-contiguous: the antialiased resize of channels-last batches is slower
                batch = _normalise(batch.permute(0, 3, 1, 2).contiguous().float())
                for j, faces in enumerate(self._detect_batch(batch)):
                    results[idx[j]] = faces
        return results

    # -------------------------------------------------------------- stages

    def _proposals(self, batch):
        """Stage 1: P-Net over the pyramid -> (boxes [N, 4] squared, image index [N])."""
        n, _, h, w = batch.shape
        t0, nms_scale, nms_all = self.thresholds[0], self.nms_thresholds[0], self.nms_thresholds[1]
        all_boxes, all_scores, all_img = [], [], []
        level = batch
        for scale in pyramid_scales(h, w, self.min_face_size, self.factor):
            hs, ws = int(h * scale + 1), int(w * scale + 1)
            # each level is an antialiased resize of the previous one: the cost is that of the
            # pyramid, not of (number of levels) full images
            level = F.interpolate(level, size=(hs, ws), mode="bilinear", antialias=True, align_corners=False)
            reg, prob = self.pnet(level.contiguous(memory_format=torch.channels_last))
            mask = prob[:, 1] >= t0  # [n, h', w']
            hit = mask.nonzero()
            if hit.shape[0] == 0:
                continue
            img, y, x = hit.unbind(1)
            score = prob[:, 1][mask]
            sy, sx = hs / h, ws / w  # the exact scale of each axis
            cell = torch.stack([x * 2.0 / sx, y * 2.0 / sy, (x * 2.0 + 12) / sx, (y * 2.0 + 12) / sy], dim=1)
            boxes = regress_boxes(cell, reg.permute(0, 2, 3, 1)[mask])
            keep = batched_nms(cell, score, img, nms_scale)
            all_boxes.append(boxes[keep])
            all_scores.append(score[keep])
            all_img.append(img[keep])
        if not all_boxes:
            return batch.new_zeros((0, 4)), torch.zeros(0, dtype=torch.long, device=batch.device)
        boxes, scores, img = torch.cat(all_boxes), torch.cat(all_scores), torch.cat(all_img)
        keep = batched_nms(boxes, scores, img, nms_all)
        return square_boxes(boxes[keep]), img[keep]

    def _crops(self, batch, boxes, img, size):
        out = batch.new_zeros((boxes.shape[0], 3, size, size))
        for b in torch.unique(img).tolist():
            sel = (img == b).nonzero().squeeze(1)
            out[sel] = crop_resize(batch[b], boxes[sel], size)
        return out

    def _detect_batch(self, batch):
        n = batch.shape[0]
        boxes, img = self._proposals(batch)
        # stage 2: R-Net refines the proposals
        if boxes.shape[0]:
            reg, prob = self.rnet(self._crops(batch, boxes, img, 24).contiguous(memory_format=torch.channels_last))
            ok = prob[:, 1] >= self.thresholds[1]
            boxes, img, reg, score = boxes[ok], img[ok], reg[ok], prob[ok, 1]
            keep = batched_nms(boxes, score, img, self.nms_thresholds[2])
            boxes = square_boxes(regress_boxes(boxes[keep], reg[keep]))
            img = img[keep]
        # stage 3: O-Net gives the final boxes and the landmarks
        faces = [[] for _ in range(n)]
        if boxes.shape[0] == 0:
            return faces
        reg, marks, prob = self.onet(self._crops(batch, boxes, img, 48).contiguous(memory_format=torch.channels_last))
        ok = prob[:, 1] >= self.thresholds[2]
        boxes, img, reg, marks, score = boxes[ok], img[ok], reg[ok], marks[ok], prob[ok, 1]
        if boxes.shape[0] == 0:
            return faces
        wh = boxes[:, 2:] - boxes[:, :2]
        points = torch.stack([boxes[:, None, 0] + marks[:, :5] * wh[:, None, 0],
                              boxes[:, None, 1] + marks[:, 5:] * wh[:, None, 1]], dim=2)  # [N, 5, 2]
        boxes = regress_boxes(boxes, reg)
        keep = batched_nms(boxes, score, img, self.nms_thresholds[3], mode="min")
        boxes, img, points, score = (t[keep].cpu().numpy() for t in (boxes, img, points, score))
        for b, i, p, s in zip(boxes, img, points, score):  # already by descending score
            faces[int(i)].append(Face(b, float(s), p))
        return faces

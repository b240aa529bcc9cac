"""S3FD face detector (PaddleGAN's default for Wav2Lip and First Order Motion, `--face_detector sfd`).

Zhang et al., "S3FD: Single Shot Scale-invariant Face Detector", ICCV 2017. The net and the
decoding follow PaddleGAN `ppgan/faceutils/face_detection/detection/sfd/` (a port of
face-alignment's S3FD): a VGG-16 trunk with six detection heads at strides 4 .. 128, one square
prior per cell (side 4 x stride), SSD box regression with variances (0.1, 0.2), greedy NMS at
IoU 0.3 and a score threshold of 0.5.

Sub-module names are PaddleGAN's (`conv3_3_norm_mbox_conf`, `fc7`, ...) so its published
`s3fd_paddle.pdparams` loads strictly by name. S3FD gives boxes only (no landmarks).
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..utils.device import resolve_device
from .boxes import Face, nms

BGR_MEAN = (104.0, 117.0, 123.0)  # the Caffe VGG mean the weights were trained with, in BGR order
VARIANCES = (0.1, 0.2)  # SSD box encoding: centre offsets x 0.1 prior, log sizes x 0.2
STRIDES = (4, 8, 16, 32, 64, 128)  # of the six heads, as PaddleGAN's decoder assumes (2 ** (i + 2))
MIN_SIZE = 32  # smallest input side the five poolings leave a cell of


class L2Norm(nn.Module):
    """Channel-wise L2 normalisation with a learned per-channel scale (initialised to `scale`)."""

    def __init__(self, n_channels, scale=1.0):
        super().__init__()
        self.eps = 1e-10
        self.weight = nn.Parameter(torch.full((n_channels,), float(scale)))

    def forward(self, x):
        norm = x.pow(2).sum(dim=1, keepdim=True).sqrt() + self.eps
        return x / norm * self.weight.view(1, -1, 1, 1)


def _conv(c_in, c_out, k=3, stride=1, padding=1):
    return nn.Conv2d(c_in, c_out, kernel_size=k, stride=stride, padding=padding)


class S3FD(nn.Module):
    """The S3FD network (no arguments: one published configuration).

    Input: [B, 3, H, W] float, BGR with `BGR_MEAN` subtracted (no scaling). Output: a list of 12
    tensors, (class logits [B, 2, h_i, w_i], box regression [B, 4, h_i, w_i]) for the six heads;
    the first head's four logits are reduced to two by PaddleGAN's "max-out background" rule.
    """

    def __init__(self):
        super().__init__()
        self.conv1_1, self.conv1_2 = _conv(3, 64), _conv(64, 64)
        self.conv2_1, self.conv2_2 = _conv(64, 128), _conv(128, 128)
        self.conv3_1, self.conv3_2, self.conv3_3 = _conv(128, 256), _conv(256, 256), _conv(256, 256)
        self.conv4_1, self.conv4_2, self.conv4_3 = _conv(256, 512), _conv(512, 512), _conv(512, 512)
        self.conv5_1, self.conv5_2, self.conv5_3 = _conv(512, 512), _conv(512, 512), _conv(512, 512)
        # PaddleGAN's port: a plain 3x3 conv with padding 3 (the Caffe original is dilated), so the
        # fc7 map is 4 cells larger than pool5's; kept as is so its weights mean the same.
        self.fc6 = _conv(512, 1024, 3, padding=3)
        self.fc7 = _conv(1024, 1024, 1, padding=0)
        self.conv6_1, self.conv6_2 = _conv(1024, 256, 1, padding=0), _conv(256, 512, 3, stride=2)
        self.conv7_1, self.conv7_2 = _conv(512, 128, 1, padding=0), _conv(128, 256, 3, stride=2)

        self.conv3_3_norm = L2Norm(256, scale=10)
        self.conv4_3_norm = L2Norm(512, scale=8)
        self.conv5_3_norm = L2Norm(512, scale=5)

        self.conv3_3_norm_mbox_conf, self.conv3_3_norm_mbox_loc = _conv(256, 4), _conv(256, 4)
        self.conv4_3_norm_mbox_conf, self.conv4_3_norm_mbox_loc = _conv(512, 2), _conv(512, 4)
        self.conv5_3_norm_mbox_conf, self.conv5_3_norm_mbox_loc = _conv(512, 2), _conv(512, 4)
        self.fc7_mbox_conf, self.fc7_mbox_loc = _conv(1024, 2), _conv(1024, 4)
        self.conv6_2_mbox_conf, self.conv6_2_mbox_loc = _conv(512, 2), _conv(512, 4)
        self.conv7_2_mbox_conf, self.conv7_2_mbox_loc = _conv(256, 2), _conv(256, 4)

    def forward(self, x):
        def block(h, convs):
            for conv in convs:
                h = F.relu(conv(h))
            return h

        h = block(x, (self.conv1_1, self.conv1_2))
        h = block(F.max_pool2d(h, 2, 2), (self.conv2_1, self.conv2_2))
        f3_3 = block(F.max_pool2d(h, 2, 2), (self.conv3_1, self.conv3_2, self.conv3_3))
        f4_3 = block(F.max_pool2d(f3_3, 2, 2), (self.conv4_1, self.conv4_2, self.conv4_3))
        f5_3 = block(F.max_pool2d(f4_3, 2, 2), (self.conv5_1, self.conv5_2, self.conv5_3))
        ffc7 = block(F.max_pool2d(f5_3, 2, 2), (self.fc6, self.fc7))
        f6_2 = block(ffc7, (self.conv6_1, self.conv6_2))
        f7_2 = block(f6_2, (self.conv7_1, self.conv7_2))

        f3_3, f4_3, f5_3 = self.conv3_3_norm(f3_3), self.conv4_3_norm(f4_3), self.conv5_3_norm(f5_3)
        cls1 = self.conv3_3_norm_mbox_conf(f3_3)
        # max-out background: the stride-4 head has three background logits; keep their maximum
        cls1 = torch.cat([cls1[:, :3].amax(dim=1, keepdim=True), cls1[:, 3:]], dim=1)
        return [cls1, self.conv3_3_norm_mbox_loc(f3_3),
                self.conv4_3_norm_mbox_conf(f4_3), self.conv4_3_norm_mbox_loc(f4_3),
                self.conv5_3_norm_mbox_conf(f5_3), self.conv5_3_norm_mbox_loc(f5_3),
                self.fc7_mbox_conf(ffc7), self.fc7_mbox_loc(ffc7),
                self.conv6_2_mbox_conf(f6_2), self.conv6_2_mbox_loc(f6_2),
                self.conv7_2_mbox_conf(f7_2), self.conv7_2_mbox_loc(f7_2)]


def preprocess(images, device="cpu"):
    """RGB uint8 images of one size [B, H, W, 3] (array or list) -> the net's input [B, 3, H, W]:
    BGR order, `BGR_MEAN` subtracted (PaddleGAN's `batch_detect`).

    PaddleGAN's Wav2Lip path flips its cv2 (BGR) frames to RGB before this step, so it feeds the
    net RGB; the weights come from the Caffe model, trained on BGR, which is what we feed."""
    x = torch.from_numpy(np.ascontiguousarray(np.stack(list(images)))).to(device)
    x = x.flip(-1).permute(0, 3, 1, 2).float()  # RGB -> BGR, NHWC -> NCHW
    return x - torch.tensor(BGR_MEAN, device=x.device).view(1, 3, 1, 1)


def decode(outputs, min_score=0.05):
    """Decode the net's 12 outputs into candidate boxes.

    Args:
        outputs (list[Tensor]): `S3FD.forward`'s list (logits, not probabilities).
        min_score (float): PaddleGAN's pre-filter on the face probability (0.05).
    Returns:
        (boxes [N, 4] x1 y1 x2 y2 in input pixels, scores [N], image index [N]) tensors.
    """
    all_boxes, all_scores, all_index = [], [], []
    for level, stride in enumerate(STRIDES):
        cls, loc = outputs[2 * level], outputs[2 * level + 1]
        score = F.softmax(cls, dim=1)[:, 1]  # [B, h, w] face probability
        b, y, x = torch.nonzero(score > min_score, as_tuple=True)
        if b.numel() == 0:
            continue
        prior = float(stride * 4)  # one square prior per cell, centred on it
        cx = stride / 2 + x.to(loc.dtype) * stride
        cy = stride / 2 + y.to(loc.dtype) * stride
        d = loc[b, :, y, x]  # [N, 4] (dx, dy, dw, dh)
        cx = cx + d[:, 0] * VARIANCES[0] * prior
        cy = cy + d[:, 1] * VARIANCES[0] * prior
        w = prior * torch.exp(d[:, 2] * VARIANCES[1])
        h = prior * torch.exp(d[:, 3] * VARIANCES[1])
        all_boxes.append(torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1))
        all_scores.append(score[b, y, x])
        all_index.append(b)
    if not all_boxes:
        dev = outputs[0].device
        return torch.zeros(0, 4, device=dev), torch.zeros(0, device=dev), torch.zeros(0, dtype=torch.long, device=dev)
    return torch.cat(all_boxes), torch.cat(all_scores), torch.cat(all_index)


def select(boxes, scores, index, batch, threshold=0.5, nms_threshold=0.3, top_k=750):
    """Per image: faces scoring above `threshold` after NMS at `nms_threshold` (PaddleGAN's order
    is NMS then threshold; greedy NMS lets only higher scores suppress a box, so thresholding
    first gives the same faces). At most `top_k` candidates per image enter the NMS.

    Returns: list (length `batch`) of (boxes [n, 4], scores [n]) numpy arrays, best first."""
    keep = scores > threshold
    boxes, scores, index = boxes[keep], scores[keep], index[keep]
    out = []
    for i in range(batch):
        sel = torch.nonzero(index == i, as_tuple=True)[0]
        if sel.numel() > top_k:
            sel = sel[torch.topk(scores[sel], top_k).indices]
        b, s = boxes[sel], scores[sel]
        kept = nms(b, s, nms_threshold)
        out.append((b[kept].cpu().numpy(), s[kept].cpu().numpy()))
    return out


def build_s3fd(weight_path=None, download=True, device="cpu"):
    """An eval-mode `S3FD` with PaddleGAN's weights (catalogue entry 's3fd'), and the file read.

    Raises CheckpointError / DownloadError (one line naming the URL, the cache path and
    --weight_path) when the file is missing and cannot be downloaded, or does not fit."""
    from .nets import load_face_net

    return load_face_net("s3fd", weight_path=weight_path, download=download, device=device)


class S3FDDetector:
    """`FaceDetector('sfd')`: S3FD with PaddleGAN's thresholds.

    Args:
        device (str): 'cpu', 'cuda', 'cuda:N' or 'auto'.
        weight_path (str | None): a `s3fd_paddle.pdparams` overriding cache / download.
        download (bool): whether missing weights may be downloaded.
        threshold (float): minimum face probability (PaddleGAN: 0.5).
        nms_threshold (float): IoU above which a lower-scoring box is dropped (PaddleGAN: 0.3).
        min_score (float): pre-filter before decoding (PaddleGAN: 0.05).
        batch_size (int): images of one size per forward pass.
        max_size (int | None): shrink images whose longer side exceeds this before detection
            (boxes are mapped back); None detects at full resolution, as PaddleGAN does.
    """

    has_landmarks = False

    def __init__(self, device="cpu", weight_path=None, download=True, threshold=0.5, nms_threshold=0.3,
                 min_score=0.05, batch_size=8, max_size=None):
        from ..weights import file_sha256

        self.device = resolve_device(device)
        self.net, path = build_s3fd(weight_path, download, self.device)
        self.threshold, self.nms_threshold, self.min_score = float(threshold), float(nms_threshold), float(min_score)
        self.batch_size = max(1, int(batch_size))
        self.max_size = None if max_size is None else int(max_size)
        # the cache key of found faces: weights and every option that changes them
        self.identity = (f"sfd:{file_sha256(path)}:t{self.threshold:g}:nms{self.nms_threshold:g}:"
                         f"pre{self.min_score:g}:max{self.max_size or 0}")

    def _resized(self, img):
        """(image to run, factor from its pixels back to the original's). Images under 32 pixels
        (the net pools five times) are padded right and bottom with the mean colour."""
        factor = 1.0
        h, w = img.shape[:2]
        if self.max_size is not None and max(h, w) > self.max_size:
            import cv2

            f = self.max_size / max(h, w)
            img = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
            factor = w / img.shape[1]
        h, w = img.shape[:2]
        if min(h, w) < MIN_SIZE:
            padded = np.empty((max(h, MIN_SIZE), max(w, MIN_SIZE), 3), np.uint8)
            padded[:] = np.array(BGR_MEAN[::-1], np.uint8)
            padded[:h, :w] = img
            img = padded
        return img, factor

    @torch.no_grad()
    def detect(self, images):
        """Faces in each of `images` (HxWx3 uint8 RGB): per image a list of `Face`, best first,
        boxes clipped to the image."""
        prepared = [self._resized(np.asarray(img)) for img in images]
        results = [[] for _ in prepared]
        by_size = {}
        for i, (img, _) in enumerate(prepared):
            by_size.setdefault(img.shape, []).append(i)
        for idx in by_size.values():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start:start + self.batch_size]
                x = preprocess([prepared[i][0] for i in chunk], self.device)
                boxes, scores, index = decode(self.net(x), self.min_score)
                found = select(boxes, scores, index, len(chunk), self.threshold, self.nms_threshold)
                for i, (b, s) in zip(chunk, found):
                    h, w = np.shape(images[i])[:2]
                    b = np.clip(b * prepared[i][1], 0, [w, h, w, h])  # PaddleGAN clips at 0 only
                    results[i] = [Face(box, score) for box, score in zip(b, s)]
        return results

"""mediapipe's BlazeFace (short range), 468-point face mesh and selfie segmentation as PyTorch modules,
plus `MediaPipeDetector`, the 'mediapipe' backend of `FaceDetector`.

The three models ship as TFLite flatbuffers inside the `mediapipe==0.10.21` wheel (found with
`ppgan.weights.resolve_weight`; mediapipe itself is never imported). `ppgan.weights.tflite` reads
a file into its op graph and fp32 constants; `TFLiteNet` runs that graph with torch ops in NCHW,
with TFLite's semantics (SAME padding split as TensorFlow splits it, legacy/half-pixel bilinear
resizing, channel padding), its constants held as buffers so `.to(device)` moves them. The
named classes fix the input size and value range each model expects.

`MediaPipeDetector` reproduces mediapipe's face detection graph (face_detection_short_range):
the whole image letterboxed to 128x128 (zero border, values in [-1, 1]), 896 SSD anchors, box and
keypoint decoding with scale 128, sigmoid scores >= 0.5, weighted non-maximum suppression (IoU
0.3, the merged detection keeps its best member's score), letterbox removal. The anchors, the
weighted NMS and the five landmarks (`five_points`: mouth corners estimated from the mouth centre)
are those of PaddleGAN's BlazeFace in `blazeface.py`: the same SSD layout. Use
`landmarks.FaceMesh` for measured mouth corners.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..utils.errors import CheckpointError, ConfigError
from ..weights import file_sha256, resolve_weight
from ..weights.tflite import read_tflite
from .blazeface import FRONT_ANCHOR_OPTIONS, five_points, ssd_anchors, weighted_nms
from .boxes import Face

# TFLite ops that only reorder or pass their input through
_UNARY = {
    "RELU": F.relu,
    "RELU6": lambda x: x.clamp(0, 6),
    "RELU_N1_TO_1": lambda x: x.clamp(-1, 1),
    "LOGISTIC": torch.sigmoid,
    "TANH": torch.tanh,
    "HARD_SWISH": lambda x: x * (x + 3).clamp(0, 6) / 6,
    "DEQUANTIZE": lambda x: x.float(),
}
_ACT = {None: lambda x: x, "RELU": F.relu, "RELU6": lambda x: x.clamp(0, 6),
        "RELU_N1_TO_1": lambda x: x.clamp(-1, 1), "TANH": torch.tanh}
_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


def _same_pads(size, kernel, stride, dilation=1):
    """TensorFlow's SAME padding of one axis: (before, after), the odd pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _resize_bilinear(x, out_h, out_w, align_corners, half_pixel):
    """TFLite RESIZE_BILINEAR (reference kernel) on an NCHW tensor."""
    def axis(n_in, n_out):
        if align_corners and n_out > 1:
            scale = (n_in - 1) / (n_out - 1)
        else:
            scale = n_in / n_out
        pos = torch.arange(n_out, dtype=torch.float32, device=x.device)
        pos = (pos + 0.5) * scale - 0.5 if half_pixel else pos * scale
        lo = pos.floor().clamp(min=0).long()
        hi = pos.ceil().clamp(max=n_in - 1).long()
        frac = pos - lo.float()
        return lo.clamp(max=n_in - 1), hi, frac

    y0, y1, fy = axis(x.shape[2], out_h)
    x0, x1, fx = axis(x.shape[3], out_w)
    top = x[:, :, y0] * (1 - fy)[:, None] + x[:, :, y1] * fy[:, None]
    return top[..., x0] * (1 - fx) + top[..., x1] * fx


# Bounds on what a model file may ask for (a hostile file must not make us allocate without limit)
_MAX_KERNEL, _MAX_DILATION, _MAX_PAD, _MAX_SIZE, _MAX_CHANNELS = 64, 64, 1024, 8192, 4096


def _check_op(graph, k, op):
    """CheckpointError unless op `k`'s options and constant operands are within sane bounds."""
    def bad(what):
        raise CheckpointError(f"{graph.path}: operator {k} ({op.name}) {what}")

    opt = op.options
    for key in ("stride_w", "stride_h"):
        if key in opt and not 1 <= opt[key] <= _MAX_SIZE:
            bad(f"has {key} {opt[key]}")
    for key in ("dilation_w", "dilation_h"):
        if key in opt and not 1 <= opt[key] <= _MAX_DILATION:
            bad(f"has {key} {opt[key]}")
    for key in ("filter_w", "filter_h"):
        if key in opt and not 1 <= opt[key] <= _MAX_SIZE:
            bad(f"has {key} {opt[key]}")
    if op.name in ("PAD", "RESIZE_BILINEAR"):
        if len(op.inputs) < 2 or op.inputs[1] < 0 or graph.tensors[op.inputs[1]].data is None:
            bad("has no constant size operand")
        value = graph.constant(op.inputs[1])
        if op.name == "PAD" and (value.ndim != 2 or value.shape[1] != 2 or not 1 <= value.shape[0] <= 4
                                 or value.min() < 0 or value.max() > _MAX_PAD):
            bad(f"has paddings {value.tolist()}")
        if op.name == "RESIZE_BILINEAR" and (value.shape != (2,) or value.min() < 1 or value.max() > _MAX_SIZE):
            bad(f"has output size {value.tolist()}")
    if op.name == "RESHAPE" and not opt.get("new_shape") and (len(op.inputs) < 2 or op.inputs[1] < 0
                                                              or graph.tensors[op.inputs[1]].data is None):
        bad("has no constant shape")
    if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "Convolution2DTransposeBias"):
        w = op.inputs[1] if len(op.inputs) > 1 else -1
        if w < 0 or graph.tensors[w].data is None or graph.tensors[w].data.ndim != 4:
            bad("has no constant 4-D kernel")
        shape = graph.tensors[w].shape
        if max(shape[1:3]) > _MAX_KERNEL or max(shape[0], shape[3]) > _MAX_CHANNELS:
            bad(f"has a kernel of shape {list(shape)}")


class TFLiteNet(nn.Module):
    """Runs the op graph of a TFLite model (`ppgan.weights.tflite.TFLiteGraph`) with torch ops.

    4-D activations are kept NCHW; forward takes the model's input as NCHW and returns its outputs
    (4-D ones NCHW, others in the TFLite layout). Constants are buffers named `c<tensor index>`
    (`c<index>_<layout>` once moved into the layout their op needs: conv kernels OIHW, PReLU
    slopes and other per-channel operands [1, C, 1, 1]).
    """

    SUPPORTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "Convolution2DTransposeBias", "ADD", "SUB",
                 "MUL", "MAX_POOL_2D", "AVERAGE_POOL_2D", "PAD", "RESHAPE", "CONCATENATION", "PRELU",
                 "RESIZE_BILINEAR", *_UNARY}

    def __init__(self, graph):
        super().__init__()
        unsupported = sorted(set(op.name for op in graph.ops) - self.SUPPORTED)
        if unsupported:
            raise CheckpointError(f"{graph.path}: TFLite ops {', '.join(unsupported)} are not supported")
        self.source = graph.path
        self.graph_inputs = tuple(graph.inputs)
        self.graph_outputs = tuple(graph.outputs)
        self.plan = []  # (op name, input refs, output indices, options); ref: int tensor or str buffer
        self._constant_names = {}  # (tensor index, layout) -> buffer name
        for k, op in enumerate(graph.ops):
            _check_op(graph, k, op)
            refs = []
            options = dict(op.options)
            for slot, i in enumerate(op.inputs):
                if op.name in ("PAD", "RESIZE_BILINEAR", "RESHAPE") and slot == 1:
                    # sizes are kept as Python ints (no device round trip per call)
                    if i >= 0 and graph.tensors[i].data is not None:
                        options["operand"] = [int(v) for v in np.asarray(graph.tensors[i].data).reshape(-1)]
                    refs.append(None)
                elif i < 0:
                    refs.append(None)
                elif graph.tensors[i].data is None:
                    refs.append(i)
                else:
                    refs.append(self._constant(graph, op, slot, i))
            if op.name == "Convolution2DTransposeBias":
                options.update(self._transpose_bias_options(graph, op))
            self.plan.append((op.name, tuple(refs), tuple(op.outputs), options))

    @staticmethod
    def _transpose_bias_options(graph, op):
        raw = op.custom_options
        if len(raw) < 12:
            raise CheckpointError(f"{graph.path}: Convolution2DTransposeBias has no parameters")
        padding, stride_w, stride_h = np.frombuffer(raw[:12], dtype="<i4")
        return {"padding": "VALID" if padding == 2 else "SAME", "stride_w": int(stride_w),
                "stride_h": int(stride_h)}

    def _constant(self, graph, op, slot, index):
        data = graph.constant(index)
        kind = "plain"
        if op.name in ("CONV_2D", "TRANSPOSE_CONV", "Convolution2DTransposeBias") and data.ndim == 4:
            kind = "oihw" if op.name == "CONV_2D" else "iohw"
            data = data.transpose(0, 3, 1, 2)  # OHWI -> OIHW
            if kind == "iohw":
                data = data.transpose(1, 0, 2, 3)  # conv_transpose2d wants IOHW
        elif op.name == "DEPTHWISE_CONV_2D" and slot == 1:
            kind = "depthwise"
            data = data.transpose(3, 0, 1, 2)  # 1HW(C*M) -> (C*M)1HW
        elif op.name in ("PRELU", "ADD", "SUB", "MUL") and len(graph.tensors[op.outputs[0]].shape) == 4 \
                and data.ndim <= 4:
            kind = "nchw"  # broadcast against an NHWC activation: right-align, then move C forward
            data = data.reshape((1,) * (4 - data.ndim) + data.shape).transpose(0, 3, 1, 2)
        key = (index, kind)
        if key not in self._constant_names:
            name = f"c{index}" if kind == "plain" else f"c{index}_{kind}"
            self.register_buffer(name, torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)))
            self._constant_names[key] = name
        return self._constant_names[key]

    def forward(self, *inputs):
        values = dict(zip(self.graph_inputs, inputs))
        for name, refs, outs, opt in self.plan:
            args = [None if r is None else (getattr(self, r) if isinstance(r, str) else values[r]) for r in refs]
            values[outs[0]] = self._run(name, args, opt)
        return tuple(values[i] for i in self.graph_outputs)

    def _run(self, name, a, opt):
        x = a[0]
        if name in _UNARY:
            return _UNARY[name](x)
        if name == "CONV_2D":
            x = self._pad_same(x, a[1].shape[2:], opt, opt.get("dilation_h", 1), opt.get("dilation_w", 1))
            y = F.conv2d(x, a[1], a[2] if len(a) > 2 else None, (opt["stride_h"], opt["stride_w"]), 0,
                         (opt["dilation_h"], opt["dilation_w"]))
            return _ACT[opt["activation"]](y)
        if name == "DEPTHWISE_CONV_2D":
            x = self._pad_same(x, a[1].shape[2:], opt, opt.get("dilation_h", 1), opt.get("dilation_w", 1))
            y = F.conv2d(x, a[1], a[2] if len(a) > 2 else None, (opt["stride_h"], opt["stride_w"]), 0,
                         (opt["dilation_h"], opt["dilation_w"]), groups=x.shape[1])
            return _ACT[opt["activation"]](y)
        if name in ("TRANSPOSE_CONV", "Convolution2DTransposeBias"):
            if name == "TRANSPOSE_CONV":  # inputs: output shape, weights, input, [bias]
                weight, x, bias = a[1], a[2], (a[3] if len(a) > 3 else None)
            else:
                weight, bias = a[1], a[2]
            return _ACT[opt.get("activation")](self._transpose_conv(x, weight, bias, opt))
        if name in ("ADD", "SUB", "MUL"):
            y = x + a[1] if name == "ADD" else (x - a[1] if name == "SUB" else x * a[1])
            return _ACT[opt["activation"]](y)
        if name == "PRELU":
            return torch.where(x >= 0, x, x * a[1])
        if name in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            return _ACT[opt["activation"]](self._pool(name, x, opt))
        if name == "PAD":
            flat = opt["operand"]  # per NHWC axis: before, after
            p = [flat[2 * k:2 * k + 2] for k in range(len(flat) // 2)]
            if x.dim() == 4:
                return F.pad(x, (p[2][0], p[2][1], p[1][0], p[1][1], p[3][0], p[3][1], p[0][0], p[0][1]))
            return F.pad(x, [v for row in reversed(p) for v in row])
        if name == "RESHAPE":
            shape = opt.get("new_shape") or tuple(opt["operand"])
            if x.dim() == 4:
                x = x.permute(0, 2, 3, 1)
            shape = (x.shape[0], *shape[1:])  # batch of the input, whatever the file says
            y = x.reshape(shape)
            return y.permute(0, 3, 1, 2) if y.dim() == 4 else y
        if name == "CONCATENATION":
            axis = opt["axis"] % x.dim()
            if x.dim() == 4:
                axis = _NHWC_TO_NCHW_AXIS[axis]
            return _ACT[opt["activation"]](torch.cat(a, dim=axis))
        if name == "RESIZE_BILINEAR":
            h, w = opt["operand"]
            return _resize_bilinear(x, h, w, opt["align_corners"], opt["half_pixel_centers"])
        raise AssertionError(name)  # SUPPORTED and _run disagree

    @staticmethod
    def _pad_same(x, kernel, opt, dil_h=1, dil_w=1):
        if opt["padding"] != "SAME":
            return x
        top, bottom = _same_pads(x.shape[2], int(kernel[0]), opt["stride_h"], dil_h)
        left, right = _same_pads(x.shape[3], int(kernel[1]), opt["stride_w"], dil_w)
        return F.pad(x, (left, right, top, bottom)) if top or bottom or left or right else x

    @staticmethod
    def _pool(name, x, opt):
        k, s = (opt["filter_h"], opt["filter_w"]), (opt["stride_h"], opt["stride_w"])
        if opt["padding"] == "SAME":
            top, bottom = _same_pads(x.shape[2], k[0], s[0])
            left, right = _same_pads(x.shape[3], k[1], s[1])
            if top or bottom or left or right:
                if name == "MAX_POOL_2D":  # padding never wins the max
                    return F.max_pool2d(F.pad(x, (left, right, top, bottom), value=-math.inf), k, s)
                # TFLite averages over the pixels inside the image only
                pad = (left, right, top, bottom)
                total = F.avg_pool2d(F.pad(x, pad), k, s)
                count = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), pad), k, s)
                return total / count
        return F.max_pool2d(x, k, s) if name == "MAX_POOL_2D" else F.avg_pool2d(x, k, s)

    @staticmethod
    def _transpose_conv(x, weight, bias, opt):
        s = (opt["stride_h"], opt["stride_w"])
        kh, kw = weight.shape[2:]
        y = F.conv_transpose2d(x, weight, bias, s)
        if opt["padding"] == "SAME":
            out_h, out_w = x.shape[2] * s[0], x.shape[3] * s[1]
        else:
            out_h, out_w = (x.shape[2] - 1) * s[0] + kh, (x.shape[3] - 1) * s[1] + kw
        top = max(y.shape[2] - out_h, 0) // 2
        left = max(y.shape[3] - out_w, 0) // 2
        return y[:, :, top:top + out_h, left:left + out_w]


class _MediaPipeNet(TFLiteNet):
    """A TFLiteNet with one NCHW image input of a fixed size and a value range."""

    CATALOG_NAME = None
    INPUT_SIZE = None  # (height, width)
    OUTPUT_SIZES = ()  # numel of each output for one image

    def __init__(self, weight_path=None, download=True):
        path = resolve_weight(self.CATALOG_NAME, weight_path=weight_path, download=download)
        graph = read_tflite(path)
        name = type(self).__name__
        if len(graph.inputs) != 1 or graph.tensors[graph.inputs[0]].shape != (1, *self.INPUT_SIZE, 3):
            raise CheckpointError(f"{path}: not a {name} model (input "
                                  f"{[list(graph.tensors[i].shape) for i in graph.inputs]}, expected "
                                  f"[1, {self.INPUT_SIZE[0]}, {self.INPUT_SIZE[1]}, 3])")
        # build and run once: a damaged graph fails here, with the file's name, not at the first image
        try:
            super().__init__(graph)
            with torch.no_grad():
                outs = TFLiteNet.forward(self, torch.zeros(1, 3, *self.INPUT_SIZE))
            sizes = tuple(o.numel() for o in outs)
        except (RuntimeError, ValueError, IndexError, KeyError, TypeError, ZeroDivisionError) as exc:
            raise CheckpointError(f"{path}: does not run as {name}: {' '.join(str(exc).split())[:200]}") from None
        if sizes != self.OUTPUT_SIZES:
            raise CheckpointError(f"{path}: not a {name} model (output sizes {list(sizes)}, "
                                  f"expected {list(self.OUTPUT_SIZES)})")
        self.weight_path = path

    @property
    def identity(self):
        """Model name + sha256 of its file (cache keys)."""
        return f"{self.CATALOG_NAME}:{file_sha256(self.weight_path)}"


class MediaPipeBlazeFace(_MediaPipeNet):
    """BlazeFace short range: [N, 3, 128, 128] in [-1, 1] -> regressors [N, 896, 16] (box x, y, w, h
    and 6 keypoints x, y, in 128-pixel units relative to the anchors), logits [N, 896, 1]."""

    CATALOG_NAME = "mediapipe-face-detection"
    INPUT_SIZE = (128, 128)
    OUTPUT_SIZES = (896 * 16, 896)


class FaceMeshNet(_MediaPipeNet):
    """468-point face mesh: [N, 3, 192, 192] in [0, 1] -> landmarks [N, 468, 3] (x, y, z in crop
    pixels; z relative, same scale as x), face-presence logit [N]."""

    CATALOG_NAME = "mediapipe-face-mesh"
    INPUT_SIZE = (192, 192)
    OUTPUT_SIZES = (468 * 3, 1)

    def forward(self, x):
        landmarks, flag = super().forward(x)
        return landmarks.reshape(x.shape[0], 468, 3), flag.reshape(x.shape[0])


class SelfieSegmentation(_MediaPipeNet):
    """Selfie segmentation (general model): [N, 3, 256, 256] in [0, 1] -> person probability
    [N, 1, 256, 256]."""

    CATALOG_NAME = "mediapipe-selfie-segmentation"
    INPUT_SIZE = (256, 256)
    OUTPUT_SIZES = (256 * 256,)

    def forward(self, x):
        return super().forward(x)[0]


# ----------------------------------------------------------------------------------------------
# Image -> tensor, as mediapipe's ImageToTensorCalculator (OpenCV path) does it


def rect_crop(images, centers, sizes, rotations, out_size, border="zero", value_range=(0.0, 1.0)):
    """Sample rotated rectangles of uint8 images into an [N, 3, S, S] float tensor.

    Args:
        images: [N, 3, H, W] float tensor of 0..255 pixel values (all images one size).
        centers, sizes: [N, 2] (x, y) / (width, height) in pixels; rotations: [N] radians.
        out_size: S. border: 'zero' or 'replicate'. value_range: what 0 and 255 become.
    Like mediapipe: output pixel (j, i) samples the image at
    center + R(rot) @ ((j / S - 0.5) * w, (i / S - 0.5) * h) with OpenCV's bilinear
    convention (integer coordinates = pixel centres), rounded to uint8, then scaled.
    """
    n, _, h, w = images.shape
    dev = images.device
    grid = torch.arange(out_size, dtype=torch.float32, device=dev) / out_size - 0.5
    gx = grid[None, None, :] * sizes[:, 0, None, None]  # [N, 1, S]
    gy = grid[None, :, None] * sizes[:, 1, None, None]  # [N, S, 1]
    cos, sin = torch.cos(rotations)[:, None, None], torch.sin(rotations)[:, None, None]
    sx = centers[:, 0, None, None] + cos * gx - sin * gy
    sy = centers[:, 1, None, None] + sin * gx + cos * gy
    # OpenCV quantises sample positions to 1/32 pixel
    sx, sy = torch.round(sx * 32) / 32, torch.round(sy * 32) / 32
    if border == "replicate":
        sx, sy = sx.clamp(0, w - 1), sy.clamp(0, h - 1)
    norm = torch.stack([(2 * sx + 1) / w - 1, (2 * sy + 1) / h - 1], dim=-1)
    out = F.grid_sample(images.float(), norm, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = out.round().clamp(0, 255)
    lo, hi = value_range
    return out * ((hi - lo) / 255.0) + lo


def images_to_tensor(images, device):
    """list of HxWx3 uint8 RGB arrays -> list of [1, 3, H, W] float tensors on `device`."""
    out = []
    for k, img in enumerate(images):
        arr = np.asarray(img)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
            raise ConfigError(f"image {k}: expected an HxWx3 uint8 RGB array, got {arr.dtype} {list(arr.shape)}")
        out.append(torch.from_numpy(np.ascontiguousarray(arr)).to(device).permute(2, 0, 1)[None].float())
    return out


# ----------------------------------------------------------------------------------------------
# Detection post-processing (mediapipe's face_detection_short_range options)


def decode_detections(regressors, logits, anchors, scale=128.0, threshold=0.5):
    """Per image: (boxes [K, 4] x1 y1 x2 y2, keypoints [K, 6, 2], scores [K]) in normalised
    tensor coordinates, scores = sigmoid(clip(logit, -100, 100)) >= threshold."""
    scores = torch.sigmoid(logits[..., 0].clamp(-100, 100))
    centers = regressors[..., :2] / scale + anchors
    half = regressors[..., 2:4] / scale / 2
    boxes = torch.cat([centers - half, centers + half], dim=-1)
    kps = regressors[..., 4:16].reshape(*regressors.shape[:2], 6, 2) / scale + anchors[:, None, :]
    out = []
    for b in range(regressors.shape[0]):
        keep = scores[b] >= threshold
        out.append((boxes[b][keep], kps[b][keep], scores[b][keep]))
    return out


def letterbox(height, width, size=128):
    """(roi_center xy, roi_size wh, pads left, top) mediapipe uses to fit a whole HxW image,
    aspect kept, into a square tensor: the ROI grows to a square around the image's centre."""
    side = float(max(height, width))
    pad_x = (side - width) / side / 2
    pad_y = (side - height) / side / 2
    return (width / 2.0, height / 2.0), (side, side), pad_x, pad_y


class MediaPipeDetector:
    """The 'mediapipe' backend of `FaceDetector`: mediapipe's BlazeFace short-range model (faces
    within ~2 m of the camera; small faces in wide shots are missed), as mediapipe runs it.

    Args:
        device: torch device. weight_path: an explicit `.tflite` file. download: unused (the model
        ships in the mediapipe wheel; kept for the backend protocol).
        min_score (float): score threshold (mediapipe's min_detection_confidence, 0.5).
        iou_threshold (float): weighted-NMS IoU (0.3, as mediapipe).
    """

    has_landmarks = True

    def __init__(self, device="cpu", weight_path=None, download=True, min_score=0.5, iou_threshold=0.3):
        self.device = torch.device(device)
        self.net = MediaPipeBlazeFace(weight_path=weight_path, download=download).to(self.device).eval()
        self.anchors = torch.from_numpy(ssd_anchors(**FRONT_ANCHOR_OPTIONS)[:, :2]).to(self.device)  # centres
        self.min_score = float(min_score)
        self.iou_threshold = float(iou_threshold)
        self.identity = f"mediapipe:{file_sha256(self.net.weight_path)}"

    @torch.no_grad()
    def raw_detections(self, images):
        """Per image: (boxes [K, 4] xmin ymin xmax ymax, keypoints [K, 6, 2], scores [K]) in
        image-normalised coordinates (0..1), after NMS and letterbox removal (mediapipe's
        relative_bounding_box / relative_keypoints)."""
        tensors = images_to_tensor(images, self.device)
        if not tensors:
            return []
        crops, pads = [], []
        for t in tensors:
            h, w = t.shape[2:]
            center, size, px, py = letterbox(h, w)
            crops.append(rect_crop(t, torch.tensor([center], device=self.device),
                                   torch.tensor([size], device=self.device),
                                   torch.zeros(1, device=self.device), 128, "zero", (-1.0, 1.0)))
            pads.append((px, py))
        regressors, logits = self.net(torch.cat(crops))
        out = []
        for (boxes, kps, scores), (px, py) in zip(decode_detections(regressors, logits, self.anchors,
                                                                    threshold=self.min_score), pads):
            boxes, kps, scores = (t.detach().double().cpu().numpy() for t in (boxes, kps, scores))
            boxes, kps, scores = weighted_nms(boxes, kps, scores, self.iou_threshold, score="best")
            sx, sy = 1.0 - 2 * px, 1.0 - 2 * py
            boxes = (boxes - [px, py, px, py]) / [sx, sy, sx, sy]
            kps = (kps - [px, py]) / [sx, sy]
            out.append((boxes, kps, scores))
        return out

    def detect(self, images):
        """list of HxWx3 uint8 RGB -> per image a list of `Face` (box, score, 5 landmarks)."""
        results = []
        for img, (boxes, kps, scores) in zip(images, self.raw_detections(images)):
            h, w = np.asarray(img).shape[:2]
            scale = np.array([w, h], dtype=np.float64)
            faces = []
            for box, kp, score in zip(boxes, kps, scores):
                kp_px = kp * scale
                faces.append(Face(box * np.tile(scale, 2), float(score), five_points(kp_px)))
            results.append(faces)
        return results

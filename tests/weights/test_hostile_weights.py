"""Hostile weight files (issue 12, classes 1 and 2): numbers in ncnn `.param` files that overflow
or make no sense, pickles that declare absurd sizes or rebuild the wrong types, and top-level /
nested values of the wrong type, through `ppgan.weights.load` and the entry points that read
weights (`tools/main.py --load`, `tools/convert_paddle.py`, `gan_generate.py --config`). Each
must end in one CheckpointError line naming the file (and layer / key), quickly, allocating
nothing of the size it declares."""
import importlib.util
import io
import os
import pickle
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import ROOT, TINY_GAN, within, write_yaml

from ppgan import weights as W
from ppgan.utils.errors import CheckpointError
from ppgan.weights import pickle_guard
from ppgan.weights.pdparams import _np_core

PARAM_NAME = "realesr-animevideov3-x2"  # the smallest packaged ncnn model (1.2 MB)


def one_line(fn, *needles):
    """Run `fn`, expect CheckpointError with one line holding every needle; return the message."""
    t0 = time.time()
    with pytest.raises(CheckpointError) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert str(needle) in msg, (needle, msg)
    assert time.time() - t0 < 5, f"took {time.time() - t0:.1f} s"
    return msg


# ----------------------------------------------------------------------------- class 1: ncnn numbers

@pytest.fixture(scope="module")
def ncnn_files(tmp_path_factory):
    """(param text, bin bytes) of the packaged x2 model, and a folder to write variants in."""
    param, binf = W.ncnn_pair(W.resolve_weight(PARAM_NAME, download=False))
    with open(param) as f:
        text = f.read()
    with open(binf, "rb") as f:
        data = f.read()
    return text, data, tmp_path_factory.mktemp("ncnn")


def write_pair(folder, name, text, data):
    param, binf = folder / f"{name}.param", folder / f"{name}.bin"
    param.write_text(text)
    binf.write_bytes(data)
    return param, binf


CONV0 = "Conv_0                   1 1 input.1_splitncnn_1 54 0=64 1=3 4=1 5=1 6=1728"
PRELU1 = "PRelu_1                  1 1 54 56 0=64"
SHUFFLE = "DepthToSpace_35          1 1 105 106 0=4"
RESIZE = "Resize_40                1 1 112 output 0=3 1=5.000000e-01 2=5.000000e-01"

# (line of the file, what it becomes, layer, key token expected in the message, reason)
BAD_PARAMS = [
    (CONV0, CONV0.replace("6=1728", "6=1e999"), "Conv_0", "6=1e999", "not a finite"),
    (CONV0, CONV0.replace("0=64", "0=1e999"), "Conv_0", "0=1e999", "not a finite"),
    (CONV0, CONV0.replace("0=64", "0=-1e999"), "Conv_0", "0=-1e999", "not a finite"),
    (CONV0, CONV0.replace("6=1728", "6=-1"), "Conv_0", "6=-1", "must be in [0,"),
    (CONV0, CONV0.replace("6=1728", "6=1000000000000"), "Conv_0", "6=1000000000000", "32-bit integer"),
    (CONV0, CONV0.replace("6=1728", "6=1728.0"), "Conv_0", "6=1728.0", "must be an integer"),
    (CONV0, CONV0.replace("6=1728", "6=1.728e3"), "Conv_0", "6=1.728e3", "must be an integer"),
    (CONV0, CONV0.replace("0=64", "0=0"), "Conv_0", "0=0", "must be in [1,"),
    (CONV0, CONV0.replace("1=3", "1=0"), "Conv_0", "1=0", "must be in [1,"),
    (CONV0, CONV0.replace("1=3", "1=1e39"), "Conv_0", "1=1e39", "not a finite 32-bit float"),
    (CONV0, CONV0.replace("5=1", "5=2"), "Conv_0", "5=2", "must be in [0, 1]"),
    (CONV0, CONV0 + " 9=7", "Conv_0", "9=7", "must be in [0, 6]"),
    (CONV0, CONV0 + " 9=1e999", "Conv_0", "9=1e999", "not a finite"),
    (CONV0, CONV0 + " 10=0.5", "Conv_0", "10=0.5", "must be an array"),
    (CONV0, CONV0 + " -23310=99999999999999,1", "Conv_0", "-23310=99999999999999,1", "32-bit integer"),
    (CONV0, CONV0 + " -23310=3,1,2", "Conv_0", "-23310=3,1,2", "declares 3"),
    (CONV0, CONV0 + " -23310=-1", "Conv_0", "-23310=-1", "declares -1"),
    (CONV0, CONV0 + " -23310=1,1e999", "Conv_0", "-23310=1,1e999", "not a finite"),
    (CONV0, CONV0 + " -23310=1,nan", "Conv_0", "-23310=1,nan", "not a number"),
    (CONV0, CONV0 + " 99999=1", "Conv_0", "99999=1", "parameter id 99999"),
    (CONV0, CONV0 + " -7=1", "Conv_0", "-7=1", "parameter id -7"),
    (CONV0, CONV0 + " 99999999999999999999999=1", "Conv_0", "99999999999999999999999=1", "parameter id"),
    (CONV0, CONV0 + " x=1", "Conv_0", "x=1", "not an integer"),
    (CONV0, CONV0 + " 6", "Conv_0", "'6'", "not key=value"),
    (PRELU1, PRELU1.replace("0=64", "0=1e400"), "PRelu_1", "0=1e400", "not a finite"),
    (PRELU1, PRELU1.replace("0=64", "0=-5"), "PRelu_1", "0=-5", "must be in [0,"),
    (PRELU1, PRELU1.replace("0=64", "0=1.5"), "PRelu_1", "0=1.5", "must be an integer"),
    (PRELU1, PRELU1.replace("0=64", "0=nan"), "PRelu_1", "0=nan", "not a number"),
    (PRELU1, PRELU1.replace("0=64", "0=inf"), "PRelu_1", "0=inf", "not a number"),
    (PRELU1, PRELU1.replace("0=64", "0=99999999999"), "PRelu_1", "0=99999999999", "32-bit integer"),
    (SHUFFLE, SHUFFLE.replace("0=4", "0=0"), "DepthToSpace_35", "0=0", "must be in [1,"),
    (SHUFFLE, SHUFFLE.replace("0=4", "0=-4"), "DepthToSpace_35", "0=-4", "must be in [1,"),
    (RESIZE, RESIZE.replace("1=5.000000e-01", "1=1e999"), "Resize_40", "1=1e999", "not a finite"),
    (RESIZE, RESIZE.replace("0=3", "0=9"), "Resize_40", "0=9", "must be in [0, 3]"),
    (RESIZE, RESIZE.replace("2=5.000000e-01", "2=5.0.0"), "Resize_40", "2=5.0.0", "not a number"),
]


@pytest.mark.parametrize("line, bad, layer, key, reason", BAD_PARAMS, ids=[c[3] for c in BAD_PARAMS])
def test_bad_ncnn_numbers_name_file_layer_and_key(ncnn_files, line, bad, layer, key, reason):
    text, data, folder = ncnn_files
    assert line in text
    param, _ = write_pair(folder, f"case{abs(hash(bad))}", text.replace(line, bad, 1), data)
    msg = one_line(lambda: W.load(param), param, f"layer {layer}", key, reason)
    # the same through a catalogue name with --weight_path (the spec's strict mapping)
    assert one_line(lambda: W.load(PARAM_NAME, weight_path=str(param))) == msg


@pytest.mark.parametrize("line, bad, layer, key", [
    (CONV0, CONV0.replace("6=1728", "6=2147483647"), "Conv_0", "key 6=2147483647"),
    (CONV0, CONV0.replace("0=64", "0=2147483647"), "Conv_0", "key 0=2147483647"),
    (PRELU1, PRELU1.replace("0=64", "0=2147483647"), "PRelu_1", "key 0=2147483647"),
    (PRELU1, PRELU1.replace("0=64", "0=400000000"), "PRelu_1", "key 0=400000000"),
])
def test_ncnn_weight_sizes_beyond_the_bin(ncnn_files, line, bad, layer, key):
    """In-range counts whose bytes the .bin does not hold: refused before anything is allocated."""
    text, data, folder = ncnn_files
    param, binf = write_pair(folder, f"size{abs(hash(bad))}", text.replace(line, bad, 1), data)
    one_line(lambda: W.load(param), binf, f"layer {layer}", key, "too short")


@pytest.mark.parametrize("cut", ["empty", "3 bytes", "minus 1", "half", "plus 1", "other model"])
def test_truncated_or_mismatched_bin(ncnn_files, cut):
    text, data, folder = ncnn_files
    other = W.ncnn_pair(W.resolve_weight("realesrgan-x4plus-anime", download=False))[1]
    new = {"empty": b"", "3 bytes": data[:3], "minus 1": data[:-1], "half": data[:len(data) // 2],
           "plus 1": data + b"\0", "other model": open(other, "rb").read()}[cut]
    param, binf = write_pair(folder, f"bin_{cut.replace(' ', '_')}", text, new)
    one_line(lambda: W.load(param), binf)


# ----------------------------------------------------------------------------- class 2: pickles

class Call:
    """Pickles as `func(*args)` (then `__setstate__(state)` when given): hand-made hostile pickles."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


def long1(v):
    n = (v.bit_length() + 8) // 8
    return b"\x8a" + bytes([n]) + v.to_bytes(n, "little", signed=True)


HUGE = 1 << 44  # 16 TiB
DTYPE_STATE = (3, "<", None, None, None, -1, -1, 0)
_reconstruct = _np_core("multiarray")._reconstruct
_frombuffer = _np_core("numeric")._frombuffer


def dtype(code, state=DTYPE_STATE):
    return Call(np.dtype, (code, False, True), state)


def array(shape, dt, data, version=1):
    return Call(_reconstruct, (np.ndarray, (0,), b"b"), (version, shape, dt, False, data))


def dumps(obj, protocol=2):
    return pickle.dumps({"w": obj}, protocol=protocol)


def deep_lists(n):
    return b"\x80\x02" + b"]" * n + b"a" * (n - 1) + b"."


def tuple_dag(levels):
    """A tuple whose two items are the same tuple, `levels` deep: 2**levels paths, few bytes."""
    out = b"\x80\x02)q\x00"
    for i in range(levels):
        out += b"h" + bytes([i]) + b"h" + bytes([i]) + b"\x86q" + bytes([i + 1])
    return out + b"."


BOMBS = {
    # declared sizes the unpickler would allocate (16 TiB) before noticing the file is tiny
    "bytearray(16 TiB)": (dumps(Call(bytearray, (HUGE,))), "bytearray declares"),
    "__builtin__.bytearray": (b"\x80\x02c__builtin__\nbytearray\n" + long1(HUGE) + b"\x85R.", "bytearray declares"),
    "bytes(16 TiB)": (b"\x80\x02cbuiltins\nbytes\n" + long1(HUGE) + b"\x85R.", "bytes declares"),
    "_reconstruct 16 TiB": (dumps(Call(_reconstruct, (np.ndarray, (HUGE,), b"b"))), "declares"),
    "_reconstruct 3-d": (dumps(Call(_reconstruct, (np.ndarray, (1 << 20, 1 << 20, 1 << 10), b"d"))), "declares"),
    "setstate shape without data": (dumps(array((1 << 40,), dtype("f4"), b"")), "needs 4398046511104 bytes"),
    "setstate 2-d": (dumps(array((1 << 30, 1 << 30), dtype("f8"), b"x" * 8)), "the file gives 8"),
    "ndarray() direct": (dumps(Call(np.ndarray, ((HUGE,), "f8"))), "called directly"),
    "ndarray NEWOBJ": (b"\x80\x02cnumpy\nndarray\n" + long1(HUGE) + b"\x85\x85\x81.", "called directly"),
    "_frombuffer of bytearray": (dumps(Call(_frombuffer, (Call(bytearray, (HUGE,)), dtype("f4"), (HUGE,), "C")),
                                       protocol=5), "bytearray declares"),
    "_frombuffer shape": (dumps(Call(_frombuffer, (b"abcd", dtype("f4"), (1 << 40,), "C")), protocol=5),
                          "invalid buffer"),
    "BINBYTES8": (b"\x80\x04\x8e" + struct.pack("<Q", HUGE) + b"abc", "BINBYTES8"),
    "BINUNICODE8": (b"\x80\x04\x8d" + struct.pack("<Q", HUGE) + b"abc", "BINUNICODE8"),
    "BYTEARRAY8": (b"\x80\x05\x96" + struct.pack("<Q", HUGE) + b"abc", "BYTEARRAY8"),
    "FRAME": (b"\x80\x04\x95" + struct.pack("<Q", HUGE) + b"}.", "FRAME"),
    "BINSTRING": (b"\x80\x02T" + struct.pack("<i", (1 << 31) - 1) + b"abc", "BINSTRING"),
    "LONG4": (b"\x80\x02\x8b" + struct.pack("<i", (1 << 31) - 1) + b"abc", "LONG4"),
    "LONG_BINPUT 2**31": (b"\x80\x02}r" + struct.pack("<I", 1 << 31) + b".", "memo index 2147483648"),
    "PUT 10**12": (b"\x80\x02}p1000000000000\n.", "memo index 1000000000000"),
    # the wrong types: object / structured dtypes (numpy would read pointers from the file), containers
    # filled by iterating an array, classes other than ndarray
    "object array": (dumps(array((3,), dtype("O8"), [1, 2, 3])), "refused numpy dtype 'O8'"),
    "structured with object field": (dumps(array((1,), dtype("V8", (3, "|", None, ("a",), {"a": (dtype("O8"), 0)},
                                                                     8, 1, 1)), b"A" * 8)), "refused numpy dtype 'V8'"),
    "dtype flags": (dumps(array((2,), dtype("f8", (3, "<", None, None, None, -1, -1, 1)), b"A" * 16)),
                    "refused a numpy dtype state"),
    "dtype fields on f8": (dumps(array((1,), dtype("f8", (3, "|", None, ("a",), {"a": (dtype("f8"), 0)}, 8, 1, 0)),
                                       b"A" * 8)), "refused a numpy dtype state"),
    "string dtype": (dumps(array((1,), dtype("U4"), b"A" * 16)), "refused numpy dtype 'U4'"),
    "list(array)": (dumps(Call(list, (np.zeros(1000, np.float32),))), "refused list(ndarray)"),
    "tuple(bytes)": (dumps(Call(tuple, (b"abc" * 100,))), "refused tuple(bytes)"),
    "_reconstruct of matrix": (dumps(Call(_reconstruct, (np.matrix, (0,), b"b"))), "refused to load 'numpy.matrix'"),
    "scalar with short data": (dumps(Call(_np_core("multiarray").scalar, (dtype("f8"), b"ab"))), "invalid data"),
    "nested 100000 deep": (deep_lists(100_000), "nested more than"),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_pickle_bombs_and_wrong_types_are_refused_before_allocating(tmp_path, name):
    payload, reason = BOMBS[name]
    path = tmp_path / "bomb.pdparams"
    path.write_bytes(payload)
    one_line(lambda: W.load(path), path, reason)
    one_line(lambda: W.safe_pickle_load(payload), "pickle data", reason)


def test_shared_references_and_opcode_budget(tmp_path, monkeypatch):
    """A tuple DAG of 2**64 paths is walked once per tuple; a stream of more opcodes than the
    budget is refused by the scan."""
    path = tmp_path / "dag.pdparams"
    path.write_bytes(tuple_dag(64))
    one_line(lambda: W.load(path), path, "got tuple")
    monkeypatch.setattr(pickle_guard, "MAX_OPCODES", 1000)
    path.write_bytes(b"\x80\x02]" + b"(" + b"K\x01" * 1000 + b"e.")
    one_line(lambda: W.load(path), path, "more than 1000 opcodes")


def test_genuine_pickles_still_load_exactly():
    """Every protocol, byte order, memory layout, dtype and container numpy and Paddle write."""
    r = np.random.RandomState(0)
    state = {"a": r.randn(3, 4).astype(np.float32), "b": np.asfortranarray(r.randn(3, 5)),
             "c": r.randn(4).astype(">f4"), "d": np.arange(5, dtype=np.int64), "e": np.array(True),
             "f": np.float32(1.5), "h": r.randn(2).astype(np.float16), "i": ("tensor_name", r.randn(2)),
             "m": np.zeros((0, 3)), "n": np.array(2.0 + 1j), "q": np.uint8([1, 2])}
    for protocol in range(6):
        data = pickle.dumps(state, protocol=protocol)
        got, want = W.safe_pickle_load(data), pickle.loads(data)
        for k, v in want.items():
            a, b = (got[k][1], v[1]) if isinstance(v, tuple) else (got[k], v)
            assert type(a) is type(b) and np.asarray(a).dtype == np.asarray(b).dtype, (protocol, k)
            assert np.array_equal(a, b), (protocol, k)
        flat = W.read_pdparams(got)
        assert all(type(v) is np.ndarray for v in flat.values())


# ----------------------------------------------------------------------------- class 2: wrong top-level / nested types

ARR = np.zeros((2, 2), np.float32)
WRONG = {
    "list": [1, 2], "int": 7, "str": "hello", "none": None, "float": 1.5, "tuple": (ARR,),
    "int keys": {1: ARR}, "tuple keys": {(1, 2): ARR}, "none key": {None: ARR},
    "str values": {"w": "text"}, "list values": {"w": [1.0, 2.0]}, "bytes values": {"w": b"raw"},
    "net of a list": {"netG": [1, 2]}, "net of strs": {"netG": {"w": "str"}}, "net of int keys": {"netG": {3: ARR}},
    "three levels": {"netG": {"w": {"x": ARR}}}, "empty": {},
}


def torch_version(obj):
    """The same structure with tensors instead of numpy arrays."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj)
    if isinstance(obj, dict):
        return {k: torch_version(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(torch_version(v) for v in obj)
    return obj


@pytest.fixture(scope="module")
def wrong_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wrong")
    out = {}
    for name, obj in WRONG.items():
        stem = name.replace(" ", "_")
        out[name, "pdparams"] = folder / f"{stem}.pdparams"
        out[name, "pdparams"].write_bytes(pickle.dumps(obj, protocol=2))
        out[name, "pth"] = folder / f"{stem}.pth"
        torch.save(torch_version(obj), out[name, "pth"])
        out[name, "legacy"] = folder / f"{stem}_legacy.pth"
        torch.save(torch_version(obj), out[name, "legacy"], _use_new_zipfile_serialization=False)
    return out


@pytest.mark.parametrize("fmt", ["pdparams", "pth", "legacy"])
@pytest.mark.parametrize("name", list(WRONG))
def test_wrong_types_end_in_one_line(wrong_files, name, fmt):
    """`load` refuses what is not a state dict; what it accepts then fails the strict load into a
    net with one line: never an AttributeError / TypeError from deeper down."""
    from ppgan.models.generators import build_generator

    path = wrong_files[name, fmt]
    net = build_generator(dict(TINY_GAN["model"]["generator"]))

    def load_into():
        weights = W.load(path)
        W.load_nets({"netG": net}, weights)

    one_line(load_into, path)


# ----------------------------------------------------------------------------- class 2: the entry points

def _module(rel):
    spec = importlib.util.spec_from_file_location(os.path.basename(rel)[:-3], os.path.join(ROOT, rel))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ENTRY_FILES = ["list.pdparams", "int.pth", "none.pdparams", "str_legacy.pth", "int keys.pdparams",
               "tuple keys.pth", "bytearray bomb.pdparams", "bytearray bomb.pth", "ndarray bomb.pdparams"]


def make_entry_file(folder, name):
    stem, ext = os.path.splitext(name)
    path = folder / name.replace(" ", "_")
    if stem == "bytearray bomb" and ext == ".pth":
        torch.save({"netG": {"w": Call(bytearray, (HUGE,))}}, path, pickle_protocol=2)
    elif stem == "bytearray bomb":
        path.write_bytes(dumps(Call(bytearray, (HUGE,))))
    elif stem == "ndarray bomb":
        path.write_bytes(dumps(Call(_reconstruct, (np.ndarray, (HUGE,), b"b"))))
    elif ext == ".pth":
        obj = WRONG[stem.replace("_legacy", "")]
        torch.save(torch_version(obj), path, _use_new_zipfile_serialization="legacy" not in stem)
    else:
        path.write_bytes(pickle.dumps(WRONG[stem], protocol=2))
    return path


@pytest.fixture(scope="module")
def entry(tmp_path_factory):
    folder = tmp_path_factory.mktemp("entry")
    cfg = write_yaml(folder / "c.yaml", TINY_GAN)
    files = {name: make_entry_file(folder, name) for name in ENTRY_FILES}
    return folder, cfg, files


def error_lines(err):
    """stderr's lines, without the predictors' '[ppgan] device: ...' notes."""
    return [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("[ppgan]")]


def check_one_error(rc, err, path):
    lines = error_lines(err)
    assert rc not in (0, None) and len(lines) == 1 and lines[0].startswith("error: "), (rc, err)
    assert str(path) in lines[0] and "Traceback" not in err, err


@pytest.mark.parametrize("name", ENTRY_FILES)
def test_every_entry_point_reports_one_line(entry, name, capsys, tmp_path):
    from ppgan.cli import run_train

    folder, cfg, files = entry
    path = str(files[name])
    runs = {
        "tools/main.py --load": lambda: run_train(["-c", cfg, "--load", path, "--evaluate-only", "--device", "cpu",
                                                   "--output-dir", str(tmp_path / "run"), "--quiet"]),
        "tools/convert_paddle.py": lambda: _module("tools/convert_paddle.py").main([path, str(tmp_path / "o.pth")]),
        "gan_generate.py --config": lambda: _module("applications/tools/gan_generate.py").main(
            ["--config", cfg, "--weight_path", path, "--output", str(tmp_path / "gen"), "--device", "cpu"]),
    }
    for what, run in runs.items():
        rc = run()
        check_one_error(rc, capsys.readouterr().err, path)
    assert not (tmp_path / "o.pth").exists() and not (tmp_path / "gen").exists()


def test_entry_points_in_subprocesses(entry, tmp_path):
    """The same, as real processes (started together: each imports torch)."""
    folder, cfg, files = entry
    bomb, top = str(files["bytearray bomb.pdparams"]), str(files["int.pth"])
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    runs = [
        (["tools/main.py", "-c", cfg, "--load", bomb, "--evaluate-only", "--device", "cpu",
          "--output-dir", str(tmp_path / "run")], bomb),
        (["tools/convert_paddle.py", top, str(tmp_path / "o.pth")], top),
        (["applications/tools/gan_generate.py", "--config", cfg, "--weight_path", bomb, "--output",
          str(tmp_path / "gen"), "--device", "cpu"], bomb),
    ]
    procs = [(subprocess.Popen([sys.executable] + args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True), path) for args, path in runs]
    for proc, path in procs:
        try:
            _, err = proc.communicate(timeout=180)
        finally:
            proc.kill()
        check_one_error(proc.returncode, err, path)


# ----------------------------------------------------------------------------- torch files

class Evil:
    def __reduce__(self):
        return os.system, ("true",)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_torch_refusals_never_advise_weights_only_false(tmp_path, legacy):
    from fractions import Fraction

    kw = {"_use_new_zipfile_serialization": False} if legacy else {}
    cases = {"code.pth": {"w": Evil()}, "class.pth": {"w": Fraction(1, 3)}, "dtype.pth": {"w": np.dtype("f4")},
             "array.pth": {"w": np.zeros(3)}}
    for name, obj in cases.items():
        path = tmp_path / name
        torch.save(obj, path, **kw)
        msg = one_line(lambda: W.load(path), path)
        assert "weights_only" not in msg and "weights only" not in msg.lower() and "safe_globals" not in msg, msg


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_torch_bytearray_bomb_refused_before_torch_load(tmp_path, legacy):
    """torch's weights-only loader allows bytearray(n), which zero-fills n bytes: refused first."""
    path = tmp_path / "bomb.pth"
    torch.save({"w": Call(bytearray, (HUGE,))}, path, _use_new_zipfile_serialization=not legacy)
    one_line(lambda: W.load(path), path, "bytearray")
    # a genuine file next to it still loads
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=not legacy)
    assert torch.equal(W.load(path).state()["w"], torch.ones(2))


def test_torch_zip_bomb_entry_is_refused(tmp_path):
    """A zip entry declaring more bytes than the whole file (deflated zeros) is never inflated."""
    import zipfile

    buf = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    path = tmp_path / "zipbomb.pth"
    with zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            out.writestr(info, src.read(info))
        out.writestr(src.infolist()[0].filename.split("/")[0] + "/data/9", b"\0" * (64 << 20),
                     compress_type=zipfile.ZIP_DEFLATED)
    one_line(lambda: W.load(path), path, "more than the whole file")


def test_zip_and_legacy_damage_is_one_line(tmp_path):
    buf = io.BytesIO()
    torch.save({"w": torch.arange(100.0)}, buf)
    data = buf.getvalue()
    for i, bad in enumerate([data[:10], data[:len(data) // 2], data[:-1], data[:30] + b"\xff" * 50 + data[80:]]):
        path = tmp_path / f"z{i}.pth"
        path.write_bytes(bad)
        one_line(lambda: W.load(path), path)


@pytest.mark.parametrize("kind", ["fifo", "dir", "broken_link"])
def test_weight_path_that_is_not_a_regular_file_is_refused_without_opening(tmp_path, kind):
    from ppgan.weights import load

    p = tmp_path / "w.pth"
    if kind == "fifo":
        os.mkfifo(p)
    elif kind == "dir":
        p.mkdir()
    else:
        os.symlink(tmp_path / "gone.pth", p)
    with within(5), pytest.raises(CheckpointError) as e:
        load(str(p))
    assert "\n" not in str(e.value) and str(p) in str(e.value)


def test_mismatch_message_is_whole_and_counts_what_it_leaves_out():
    from ppgan.weights.pdparams import format_diff

    report = {"missing": [f"m{i}.weight" for i in range(10)], "unexpected": ["x.weight"],
              "mismatched": [(f"s{i}", (3,), None, (4,)) for i in range(5)]}
    msg = format_diff(report, [f"m{i}.weight" for i in range(10)], ["x.weight"])
    assert "\n" not in msg
    assert "10 missing in file: " in msg and "(and 7 more)" in msg
    assert "1 not in model: x.weight" in msg and "x.weight (and" not in msg
    assert "5 shape mismatches: s0 [3] vs model [4]" in msg and "(and 2 more)" in msg

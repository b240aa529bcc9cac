"""Read PaddlePaddle / PaddleGAN `.pdparams` files and convert them for PyTorch modules.

A `.pdparams` file is a pickle of `{name: numpy array}` (Paddle >= 2.1 may store a tensor as
the tuple `(name, array)`). Pickles can run code when loaded, so this module reads them only
through `SafeUnpickler`, which rebuilds numpy arrays and plain containers and refuses every
other global.

Paddle -> PyTorch differences handled by the converter, found per tensor from the target
module (not from names alone):
  * `nn.Linear` weights are `[in, out]` in Paddle: transposed (also a spectral-normed Linear's
    `weight_orig`, e.g. the U-GAT-IT discriminator's `gap_fc`).
  * BatchNorm buffers `_mean` / `_variance` -> `running_mean` / `running_var`;
    PyTorch's `num_batches_tracked` (absent in Paddle) keeps the module's own value.
  * InstanceNorm/LayerNorm `scale` -> `weight`.
  * spectral norm `<p>.spectral_norm.weight_u|v` (PaddleGAN's Spectralnorm) -> `<p>.weight_u|v`;
    weight norm `weight_g` is reshaped to PyTorch's `[out, 1, ...]`.
"""
import codecs
import functools
import io
import os
import pickle
import struct
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from ..utils.errors import CheckpointError, closest
from .pickle_guard import scan_pickle

PADDLE_META_KEYS = ("StructuredToParameterName@@",)


# What the restricted unpickler may allocate. The arrays and byte strings of a genuine file hold
# their own bytes, so nothing in one declares more than the file's size: a bytearray or an array
# shape declaring more than ALLOC_FACTOR x the pickle's size (plus ALLOC_SLACK) is refused before
# anything is allocated. Used when the size is unknown (a stream): DEFAULT_MAX_BYTES.
ALLOC_FACTOR = 2
ALLOC_SLACK = 1 << 20
DEFAULT_MAX_BYTES = 1 << 32
MAX_NDIM = 32  # array dimensions accepted (weights have at most 5)
MAX_DEPTH = 100  # container nesting accepted in a loaded object
_NUMERIC_KINDS = "biufc"  # bool, signed / unsigned int, float, complex: all a weight can be
_MULTIARRAY = ("numpy.core.multiarray", "numpy._core.multiarray")
_NUMERIC = ("numpy.core.numeric", "numpy._core.numeric")


def _latin1_encode(obj, encoding="latin1", errors="strict"):
    # numpy arrays pickled with protocol 2 store their bytes as `_codecs.encode(str, 'latin1')`.
    if encoding not in ("latin1", "latin-1") or not isinstance(obj, str):
        raise pickle.UnpicklingError("refused _codecs.encode call with unexpected arguments")
    return codecs.encode(obj, encoding, errors)


def _np_core(sub):
    import importlib

    for base in ("numpy._core", "numpy.core"):
        try:
            return importlib.import_module(f"{base}.{sub}")
        except ImportError:
            continue
    raise pickle.UnpicklingError(f"numpy has no core.{sub}")


def _numeric_dtype(dtype):
    """`dtype` (a `_PickledDtype`, a type code as str / bytes) as a plain numeric np.dtype, or
    UnpicklingError: object, string, void, structured and sub-array dtypes are refused (object
    fields would make numpy read pointers from the file)."""
    if isinstance(dtype, _PickledDtype):
        return dtype.dtype
    if isinstance(dtype, bytes):
        dtype = dtype.decode("latin-1")
    if not isinstance(dtype, str):
        raise pickle.UnpicklingError(f"expected a numpy dtype, got {type(dtype).__name__}")
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError, SyntaxError):
        raise pickle.UnpicklingError(f"invalid numpy dtype {dtype[:40]!r}") from None
    if dt.kind not in _NUMERIC_KINDS or dt.names is not None or dt.subdtype is not None or dt.hasobject:
        raise pickle.UnpicklingError(f"refused numpy dtype {dtype[:40]!r}: weight files hold numbers only")
    return dt


def _shape(shape):
    """`shape` as a tuple of non-negative ints, or UnpicklingError."""
    if not isinstance(shape, tuple) or len(shape) > MAX_NDIM or \
            not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise pickle.UnpicklingError(f"invalid array shape {str(shape)[:60]}")
    return shape


def _nbytes(shape, dtype):
    n = dtype.itemsize
    for d in shape:
        n *= d
    return n


class _PickledDtype:
    """What the restricted unpickler makes of `numpy.dtype(code, align, copy)`: the plain numeric
    dtype `code` names. Its `__setstate__` takes only the state numpy writes for such a dtype (a
    byte order), never the fields, sub-arrays or flags that numpy's own `dtype.__setstate__`
    would install from the file."""

    def __init__(self, code, align=False, copy=False):
        self.dtype = _numeric_dtype(code)

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4) \
                or any(v is not None for v in state[2:5]) or state[7] != 0 or (len(state) == 9 and state[8]):
            raise pickle.UnpicklingError("refused a numpy dtype state with fields, sub-arrays, flags or metadata")
        order = state[1]
        if order not in ("<", ">", "|", "="):
            raise pickle.UnpicklingError(f"invalid numpy byte order {str(order)[:10]!r}")
        if order in "<>" and self.dtype.itemsize > 1:
            self.dtype = self.dtype.newbyteorder(order)


class _LoadedArray(np.ndarray):
    """The arrays the restricted unpickler rebuilds (`_reconstruct` makes them, BUILD fills them):
    `__setstate__` checks the pickled state (a numeric dtype, data exactly as long as the shape
    needs) before numpy copies it. Calling the class itself (a REDUCE / NEWOBJ of numpy.ndarray,
    which would allocate any shape it declares) is refused. `safe_pickle_load` returns them as
    plain ndarrays."""

    def __new__(cls, *args, **kwargs):
        raise pickle.UnpicklingError("refused numpy.ndarray(...) called directly (numpy's own pickles use "
                                     "_reconstruct)")

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError("invalid numpy array state")
        version = state[0] if len(state) == 5 else 1
        shape, dtype, fortran, data = state[-4:]
        shape, dtype = _shape(shape), _numeric_dtype(dtype)
        if not isinstance(data, (bytes, bytearray, str)):
            raise pickle.UnpicklingError(f"numpy array data is a {type(data).__name__}, not bytes")
        if len(data) != _nbytes(shape, dtype):
            raise pickle.UnpicklingError(f"a numpy array of shape {shape} and dtype {dtype} needs "
                                         f"{_nbytes(shape, dtype)} bytes, the file gives {len(data)}")
        np.ndarray.__setstate__(self, (version, shape, dtype, bool(fortran), data))


def _container(cls):
    """`cls(...)` for the plain containers a pickle may call: from another container only (the
    pickle built it, so its size is bounded by the file), never by iterating an array or bytes."""
    def build(*args):
        if len(args) > 1 or (args and not isinstance(args[0], (list, tuple, dict, set, frozenset))):
            what = ", ".join("ndarray" if isinstance(a, np.ndarray) else type(a).__name__ for a in args)
            raise pickle.UnpicklingError(f"refused {cls.__name__}({what}): only plain containers are rebuilt")
        return cls(*args)

    build.__name__ = cls.__name__
    return build


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds numpy arrays, numpy scalars and plain containers.

    Allocations are bounded by `max_bytes` (default: ALLOC_FACTOR x the size of a seekable
    `file` + ALLOC_SLACK, else DEFAULT_MAX_BYTES): a bytearray or an array declaring more is
    refused before it exists. Arrays come back as a private ndarray subclass; `safe_pickle_load`
    (which also checks the opcodes first, `ppgan.weights.pickle_guard`) returns plain ones."""

    _CONTAINERS = {
        ("collections", "OrderedDict"): OrderedDict,
        ("builtins", "tuple"): tuple,
        ("builtins", "list"): list,
        ("builtins", "dict"): dict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
    }

    def __init__(self, file, *args, max_bytes=None, **kwargs):
        super().__init__(file, *args, **kwargs)
        if max_bytes is None:
            try:
                here = file.tell()
                max_bytes = ALLOC_FACTOR * (file.seek(0, io.SEEK_END) - here) + ALLOC_SLACK
                file.seek(here)
            except (AttributeError, OSError, ValueError):
                max_bytes = DEFAULT_MAX_BYTES
        self.max_bytes = max_bytes

    def _check_size(self, nbytes, what):
        if nbytes > self.max_bytes:
            raise pickle.UnpicklingError(f"{what} declares {nbytes} bytes, more than a file of this size can hold "
                                         f"(limit {self.max_bytes})")

    def _bytes(self, cls, *args):
        if args and isinstance(args[0], int):
            self._check_size(args[0], cls.__name__)
        return cls(*args)

    def _reconstruct(self, subtype, shape, dtype):
        if subtype is not _LoadedArray:
            what = getattr(subtype, "__name__", type(subtype).__name__)
            raise pickle.UnpicklingError(f"refused _reconstruct of {what}")
        shape, dtype = _shape(shape), _numeric_dtype(dtype)
        self._check_size(_nbytes(shape, dtype), f"a numpy array of shape {shape}")
        return _np_core("multiarray")._reconstruct(_LoadedArray, shape, dtype)

    @staticmethod
    def _scalar(dtype, data=None):
        dtype = _numeric_dtype(dtype)
        if not isinstance(data, (bytes, str)) or len(data) != dtype.itemsize:
            raise pickle.UnpicklingError(f"invalid data for a numpy {dtype} scalar")
        return _np_core("multiarray").scalar(dtype, data)

    @staticmethod
    def _frombuffer(buf, dtype, shape, order="C"):
        shape, dtype = _shape(shape), _numeric_dtype(dtype)
        if not isinstance(buf, (bytes, bytearray)) or len(buf) != _nbytes(shape, dtype) or order not in ("C", "F"):
            raise pickle.UnpicklingError(f"invalid buffer for a numpy array of shape {shape} and dtype {dtype}")
        return _np_core("numeric")._frombuffer(buf, dtype, shape, order)

    def find_class(self, module, name):
        if module == "__builtin__":  # Python 2 names, and Python 3's for protocols < 3
            module = "builtins"
        if module in _MULTIARRAY and name == "_reconstruct":
            return self._reconstruct
        if module in _MULTIARRAY and name == "scalar":
            return self._scalar
        if module in _NUMERIC and name == "_frombuffer":
            return self._frombuffer  # pickle protocol 5 arrays
        if module in ("numpy",) + _NUMERIC and name == "ndarray":
            return _LoadedArray
        if module in ("numpy",) + _NUMERIC and name == "dtype":
            return _PickledDtype
        if (module, name) in (("builtins", "bytearray"), ("builtins", "bytes")):
            return functools.partial(self._bytes, bytearray if name == "bytearray" else bytes)
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        if (module, name) in self._CONTAINERS:
            return _container(self._CONTAINERS[module, name])
        raise pickle.UnpicklingError(f"refused to load '{module}.{name}': only numpy arrays and plain "
                                     "containers are allowed in weight files")


def _plain(obj):
    """`obj` with the unpickler's private array / dtype types replaced by numpy's own, walking
    dicts, lists and tuples (each once: shared and cyclic references are fine); UnpicklingError
    for nesting deeper than MAX_DEPTH."""
    done = {}

    def walk(x, depth):
        if isinstance(x, _LoadedArray):
            return x.view(np.ndarray)
        if isinstance(x, _PickledDtype):
            return x.dtype
        if not isinstance(x, (dict, list, tuple)):
            return x
        if id(x) in done:
            return done[id(x)]
        if depth > MAX_DEPTH:
            raise pickle.UnpicklingError(f"containers nested more than {MAX_DEPTH} levels deep")
        done[id(x)] = x
        if isinstance(x, dict):
            for k, v in x.items():
                x[k] = walk(v, depth + 1)
        elif isinstance(x, list):
            for i, v in enumerate(x):
                x[i] = walk(v, depth + 1)
        else:
            items = [walk(v, depth + 1) for v in x]
            if type(x) is tuple and any(a is not b for a, b in zip(items, x)):
                done[id(x)] = tuple(items)
        return done[id(x)]

    return walk(obj, 0)


def _reason(exc):
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if not text or isinstance(exc, (MemoryError, RecursionError)) else text


def _load_checked(f):
    start = f.tell()
    size = f.seek(0, io.SEEK_END) - start
    f.seek(start)
    scan_pickle(f)
    f.seek(start)
    obj = SafeUnpickler(f, encoding="latin1", max_bytes=ALLOC_FACTOR * size + ALLOC_SLACK).load()
    return _plain(obj)


def safe_pickle_load(path_or_bytes):
    """Unpickle a file path, bytes or file object with `SafeUnpickler`, after checking its
    opcodes (`ppgan.weights.pickle_guard.scan_pickle`: no declared length beyond the file, no
    runaway memo). Returns plain containers, numpy arrays and scalars.

    Raises CheckpointError (one line naming the file) for anything refused, malformed or
    truncated; OSError when the file cannot be read."""
    where = path_or_bytes if isinstance(path_or_bytes, (str, os.PathLike)) else "pickle data"
    try:
        if isinstance(path_or_bytes, (bytes, bytearray)):
            return _load_checked(io.BytesIO(path_or_bytes))
        if hasattr(path_or_bytes, "read"):
            f = path_or_bytes
            if not (hasattr(f, "seekable") and f.seekable()):
                f = io.BytesIO(f.read())
            return _load_checked(f)
        with open(path_or_bytes, "rb") as f:
            return _load_checked(f)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"unsafe or invalid pickle {where}: {_reason(e)}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, OverflowError, MemoryError,
            RecursionError, struct.error) as e:
        raise CheckpointError(f"corrupt or truncated pickle {where}: {_reason(e)}") from None


def _as_array(value, name, where):
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], np.ndarray):
        value = value[1]  # Paddle >= 2.1 saves a tensor as (tensor_name, array)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufc":
        return np.asarray(value)
    if isinstance(value, (bool, int, float, np.number)):
        return np.asarray(value)
    what = f"{value.dtype} array" if isinstance(value, np.ndarray) else type(value).__name__
    raise CheckpointError(f"{where}: entry '{name}' is not a numeric array ({what})")


def read_pdparams(src, key=None, where=None):
    """Read a `.pdparams` path (or take a dict) and return a flat `{name: ndarray}` dict.

    `key` selects a sub-dict of a nested checkpoint (`{'generator': {...}, ...}`), dotted for
    deeper levels. A nested checkpoint without `key` is an error listing the choices. Errors
    (one line) name `where` (default: the path, or 'the state dict').
    """
    if isinstance(src, (str, os.PathLike)):
        where = where or os.fspath(src)
        if not os.path.isfile(src):
            raise CheckpointError(f"weight file not found: {src}")
        data = safe_pickle_load(src)
    else:
        data = src
    where = where or "the state dict"
    if not isinstance(data, dict):
        raise CheckpointError(f"{where}: expected a dict of arrays, got {type(data).__name__}")
    if key is not None:
        for part in str(key).split("."):
            if not isinstance(data, dict) or part not in data:
                choices = [k for k, v in data.items() if isinstance(v, dict)] if isinstance(data, dict) else []
                raise CheckpointError(f"key '{key}' not in checkpoint; available: {', '.join(map(str, choices)) or 'none'}")
            data = data[part]
        if not isinstance(data, dict):
            raise CheckpointError(f"{where}: key '{key}' holds a {type(data).__name__}, not a dict of arrays")
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise CheckpointError(f"{where}: key {str(bad[0])[:40]!r} ({type(bad[0]).__name__}) is not a parameter name")
    data = {k: v for k, v in data.items() if k not in PADDLE_META_KEYS}
    nested = [k for k, v in data.items() if isinstance(v, dict)]
    if nested:
        raise CheckpointError(f"{where}: nested checkpoint: pass key= one of {', '.join(map(str, nested))}")
    return {k: _as_array(v, k, where) for k, v in data.items()}


def _module_of(model, param_name):
    prefix = param_name.rpartition(".")[0]
    try:
        return model.get_submodule(prefix) if prefix else model
    except AttributeError:
        return None


def _is_linear(module):
    return isinstance(module, nn.Linear) or getattr(module, "paddle_linear_layout", False)


def _torch_name(pd_name, targets):
    """Map one Paddle state-dict name to the PyTorch name present in `targets`, or None."""
    if pd_name in targets:
        return pd_name
    head, _, tail = pd_name.rpartition(".")
    pre = head + "." if head else ""
    candidates = {
        "_mean": ["running_mean"],
        "_variance": ["running_var"],
        "scale": ["weight"],
        "_weight": ["weight"],  # nn.PReLU's parameter in Paddle
    }.get(tail, [])
    for c in candidates:
        if pre + c in targets:
            return pre + c
    if head.endswith("spectral_norm") and tail in ("weight_u", "weight_v"):
        base = head[: -len("spectral_norm")]
        for c in (base + tail, base + "parametrizations.weight.0._" + tail[-1]):
            if c in targets:
                return c
    if tail == "weight_orig":
        c = pre + "parametrizations.weight.original"
        if c in targets:
            return c
    return None


def convert_paddle_state_dict(model, pd_state, strict=True):
    """Turn a flat Paddle `{name: ndarray}` into a state dict for `model`.

    Raises CheckpointError with a readable diff when names or shapes do not match (`strict`),
    otherwise converts what matches and returns (state_dict, report).
    """
    target = model.state_dict()
    out, unexpected, mismatched, transposed = {}, [], [], []
    for name, arr in pd_state.items():
        tname = _torch_name(name, target)
        if tname is None:
            unexpected.append(name)
            continue
        ref = target[tname]
        t = torch.from_numpy(np.ascontiguousarray(arr))
        module = _module_of(model, tname)
        if t.ndim == 2 and tname.endswith(("weight", "weight_orig")) and module is not None and _is_linear(module):
            t = t.t().contiguous()
            transposed.append(tname)
        if tuple(t.shape) != tuple(ref.shape):
            if t.numel() == ref.numel() and (t.ndim <= 1 or ref.ndim <= 1 or tname.endswith("weight_g")):
                t = t.reshape(ref.shape)
            else:
                mismatched.append((name, tuple(arr.shape), tname, tuple(ref.shape)))
                continue
        out[tname] = t.to(ref.dtype)
    for tname, ref in target.items():
        if tname not in out and tname.endswith("num_batches_tracked"):
            out[tname] = ref.clone()
    shape_bad = {t for _, _, t, _ in mismatched}
    missing = [k for k in target if k not in out and k not in shape_bad]
    report = {"missing": missing, "unexpected": unexpected, "mismatched": mismatched, "transposed": transposed}
    if strict and (missing or unexpected or mismatched):
        raise CheckpointError(format_diff(report, list(target), list(pd_state)))
    return out, report


def format_diff(report, model_keys, file_keys, limit=3):
    """A single-line summary of a name/shape mismatch: each kind's count and its first `limit`
    names, then '(and N more)'."""
    def listed(items, total):
        more = f" (and {total - len(items)} more)" if total > len(items) else ""
        return ", ".join(items) + more

    parts = []
    if report["missing"]:
        items = [f"{k} (file has e.g. {closest(k, file_keys, 1)[0]})" if closest(k, file_keys, 1) else k
                 for k in report["missing"][:limit]]
        parts.append(f"{len(report['missing'])} missing in file: " + listed(items, len(report["missing"])))
    if report["unexpected"]:
        items = [f"{k} (model has e.g. {closest(k, model_keys, 1)[0]})" if closest(k, model_keys, 1) else k
                 for k in report["unexpected"][:limit]]
        parts.append(f"{len(report['unexpected'])} not in model: " + listed(items, len(report["unexpected"])))
    if report["mismatched"]:
        items = [f"{n} {list(s)} vs model {list(ts)}" for n, s, _, ts in report["mismatched"][:limit]]
        parts.append(f"{len(report['mismatched'])} shape mismatches: " + listed(items, len(report["mismatched"])))
    return "weights do not fit the model: " + "; ".join(parts)


def load_paddle_state_dict(model, src, strict=True, key=None):
    """Load a PaddleGAN `.pdparams` file (or a dict of numpy arrays) into `model`.

    Args:
        model (nn.Module): the PyTorch model, built with the same constructor arguments.
        src (str | dict): path to a `.pdparams` file, or `{name: ndarray}` (possibly nested).
        strict (bool): every model tensor must be filled and every file tensor used.
        key (str | None): sub-dict of a nested checkpoint, e.g. 'generator' or 'netG'.
    Returns:
        dict: the conversion report (missing / unexpected / mismatched / transposed names).
    """
    state, report = convert_paddle_state_dict(model, read_pdparams(src, key=key), strict=strict)
    model.load_state_dict(state, strict=strict)
    return report


def guess_torch_state_dict(pd_state):
    """Convert without a model: rename BN buffers and transpose every 2-D `*.weight` whose
    name does not look like an embedding (PaddleGAN's 2-D weights are Linear layers).
    Returns (state_dict, transposed_names). Prefer `convert_paddle_state_dict` with a model."""
    out, transposed = OrderedDict(), []
    for name, arr in pd_state.items():
        head, _, tail = name.rpartition(".")
        pre = head + "." if head else ""
        tname = pre + {"_mean": "running_mean", "_variance": "running_var"}.get(tail, tail)
        t = torch.from_numpy(np.ascontiguousarray(arr))
        if t.ndim == 2 and tail == "weight" and "embed" not in name.lower():
            t = t.t().contiguous()
            transposed.append(tname)
        out[tname] = t
    return out, transposed

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
import io
import os
import pickle
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from ..utils.errors import CheckpointError, closest

PADDLE_META_KEYS = ("StructuredToParameterName@@",)


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


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds numpy arrays, numpy scalars and plain containers."""

    _ALLOWED = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("collections", "OrderedDict"): OrderedDict,
        ("builtins", "tuple"): tuple,
        ("builtins", "list"): list,
        ("builtins", "dict"): dict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "bytearray"): bytearray,
        ("_codecs", "encode"): _latin1_encode,
    }

    def find_class(self, module, name):
        key = (module, name)
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in ("_reconstruct", "scalar"):
            return getattr(_np_core("multiarray"), name)
        if module in ("numpy.core.numeric", "numpy._core.numeric") and name == "_frombuffer":
            return _np_core("numeric")._frombuffer  # pickle protocol 5 arrays
        if module in ("numpy", "numpy.core.numeric", "numpy._core.numeric") and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if key in self._ALLOWED:
            return self._ALLOWED[key]
        raise pickle.UnpicklingError(f"refused to load '{module}.{name}': only numpy arrays and plain "
                                     "containers are allowed in weight files")


def safe_pickle_load(path_or_bytes):
    """Unpickle a file path, bytes or file object with `SafeUnpickler`."""
    try:
        if isinstance(path_or_bytes, (bytes, bytearray)):
            return SafeUnpickler(io.BytesIO(path_or_bytes), encoding="latin1").load()
        if hasattr(path_or_bytes, "read"):
            return SafeUnpickler(path_or_bytes, encoding="latin1").load()
        with open(path_or_bytes, "rb") as f:
            return SafeUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as e:
        where = path_or_bytes if isinstance(path_or_bytes, (str, os.PathLike)) else "pickle data"
        raise CheckpointError(f"unsafe or invalid pickle {where}: {e}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, UnicodeDecodeError) as e:
        where = path_or_bytes if isinstance(path_or_bytes, (str, os.PathLike)) else "pickle data"
        raise CheckpointError(f"corrupt or truncated pickle {where}: {e}") from None


def _as_array(value, name):
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], np.ndarray):
        value = value[1]  # Paddle >= 2.1 saves a tensor as (tensor_name, array)
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (int, float, np.number)):
        return np.asarray(value)
    raise CheckpointError(f"entry '{name}' is not an array ({type(value).__name__})")


def read_pdparams(src, key=None):
    """Read a `.pdparams` path (or take a dict) and return a flat `{name: ndarray}` dict.

    `key` selects a sub-dict of a nested checkpoint (`{'generator': {...}, ...}`), dotted for
    deeper levels. A nested checkpoint without `key` is an error listing the choices.
    """
    if isinstance(src, (str, os.PathLike)):
        if not os.path.isfile(src):
            raise CheckpointError(f"weight file not found: {src}")
        data = safe_pickle_load(src)
    else:
        data = src
    if not isinstance(data, dict):
        raise CheckpointError(f"expected a dict of arrays in the weight file, got {type(data).__name__}")
    if key is not None:
        for part in str(key).split("."):
            if not isinstance(data, dict) or part not in data:
                choices = [k for k, v in data.items() if isinstance(v, dict)] if isinstance(data, dict) else []
                raise CheckpointError(f"key '{key}' not in checkpoint; available: {', '.join(map(str, choices)) or 'none'}")
            data = data[part]
    data = {k: v for k, v in data.items() if k not in PADDLE_META_KEYS}
    nested = [k for k, v in data.items() if isinstance(v, dict)]
    if nested:
        raise CheckpointError(f"nested checkpoint: pass key= one of {', '.join(map(str, nested))}")
    return {k: _as_array(v, k) for k, v in data.items()}


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


def format_diff(report, model_keys, file_keys, limit=8):
    """A readable, still single-line-friendly summary of a name/shape mismatch."""
    parts = []
    if report["missing"]:
        items = [f"{k} (file has e.g. {closest(k, file_keys, 1)[0]})" if closest(k, file_keys, 1) else k
                 for k in report["missing"][:limit]]
        parts.append(f"{len(report['missing'])} missing in file: " + ", ".join(items))
    if report["unexpected"]:
        items = [f"{k} (model has e.g. {closest(k, model_keys, 1)[0]})" if closest(k, model_keys, 1) else k
                 for k in report["unexpected"][:limit]]
        parts.append(f"{len(report['unexpected'])} not in model: " + ", ".join(items))
    if report["mismatched"]:
        items = [f"{n} {list(s)} vs model {list(ts)}" for n, s, _, ts in report["mismatched"][:limit]]
        parts.append(f"{len(report['mismatched'])} shape mismatches: " + ", ".join(items))
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

"""Checkpoints: atomic save, safe load (`weights_only=True`), resume state, weight import.

Two files per snapshot, as PaddleGAN:
  iter_<N>_checkpoint.pth  {'nets', 'optimizers', 'schedulers', 'scaler', 'iter', 'epoch',
                            'rng', 'config', 'version'}   -- everything `--resume` needs
  iter_<N>_weight.pth      {'<net name>': state_dict, ..., '__ppgan__': {'model': cfg, ...}}
                            -- weights only, loadable by name; the model config beside them
"""
import glob
import os
import random
import re

import numpy as np
import torch

from .. import __version__
from ..utils.errors import CheckpointError
from ..utils.io import atomic_path

META_KEY = "__ppgan__"


def save(obj, path):
    """torch.save to a temp file in the same folder, then os.replace (never half-written)."""
    with atomic_path(path, suffix=".tmp") as tmp:
        torch.save(obj, tmp)
    return path


def load(path):
    """torch.load with weights_only=True (no code runs); CheckpointError if missing/corrupt."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"cannot load checkpoint {path}: {msg}") from None


def rng_state():
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                       int(np_state[3]), float(np_state[4])]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def weight_file_dict(model, model_cfg):
    out = {name: net.state_dict() for name, net in model.nets.items()}
    out[META_KEY] = {"model": model_cfg, "version": __version__}
    return out


def extract_net_states(obj, path=""):
    """The {net name: state_dict} held by a weight file, a full checkpoint or a bare state dict."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path or 'weights'}: expected a dict, got {type(obj).__name__}")
    if "nets" in obj and isinstance(obj["nets"], dict):
        return obj["nets"]
    return {k: v for k, v in obj.items() if k != META_KEY and isinstance(v, dict)}


def load_state_strict(net, state, source):
    """`net.load_state_dict(state, strict=True)`, with a one-line CheckpointError naming what is
    missing, unexpected or of the wrong shape (with examples) instead of torch's long message.
    `source` names the file (or 'state dict') in the error. Returns `net`."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shape_bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shape_bad:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing in file (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} not in model (e.g. {', '.join(unexpected[:3])})")
        if shape_bad:
            k = shape_bad[0]
            parts.append(f"{len(shape_bad)} shape mismatches (e.g. {k} {list(state[k].shape)} vs model "
                         f"{list(own[k].shape)})")
        raise CheckpointError(f"weights in {source} do not fit {type(net).__name__}: {'; '.join(parts)}")
    net.load_state_dict(state, strict=True)
    return net


def load_weights(model, path, strict=True):
    """Load net weights into `model` from one of our weight/checkpoint files (`.pth`), a
    PaddleGAN `.pdparams` (nested by net name, e.g. {'netG': ...}) or a `.safetensors` file
    (keys `<net>.<param>`). Returns the names of the nets loaded."""
    from ..utils.paddle_compat import convert_paddle_state_dict, read_pdparams, safe_pickle_load

    if not os.path.isfile(path):
        raise CheckpointError(f"weight file not found: {path}")
    if path.endswith(".pdparams"):
        data = safe_pickle_load(path)
        loaded = []
        nested = {k: v for k, v in data.items() if isinstance(v, dict)}
        for name, net in model.nets.items():
            if name in nested:
                state, _ = convert_paddle_state_dict(net, read_pdparams(nested[name]), strict=strict)
            elif not nested and len(model.nets) >= 1 and not loaded:
                state, _ = convert_paddle_state_dict(net, read_pdparams(data), strict=strict)
            else:
                continue
            net.load_state_dict(state, strict=strict)
            loaded.append(name)
        if not loaded:
            raise CheckpointError(f"{path} holds none of the nets {', '.join(model.nets)} "
                                  f"(it has: {', '.join(nested) or 'a flat state dict'})")
        return loaded
    if path.endswith(".safetensors"):
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise CheckpointError("reading .safetensors needs the 'safetensors' package") from None
        flat = load_file(path)
        states = {}
        for key, value in flat.items():
            net, _, rest = key.partition(".")
            states.setdefault(net, {})[rest] = value
    else:
        states = extract_net_states(load(path), path)
    loaded = []
    for name, net in model.nets.items():
        if name not in states:
            continue
        try:
            net.load_state_dict(states[name], strict=strict)
        except RuntimeError as e:
            first = str(e).strip().splitlines()
            raise CheckpointError(f"weights for '{name}' in {path} do not fit the model: "
                                  f"{' '.join(s.strip() for s in first[:3])}") from None
        loaded.append(name)
    if not loaded or (strict and set(states) - set(model.nets) and not loaded):
        raise CheckpointError(f"{path} holds none of the nets {', '.join(model.nets)} (it has: {', '.join(states)})")
    return loaded


def keep_last(folder, max_keep):
    """Delete all but the newest `max_keep` snapshots (by iteration) in `folder`."""
    if not max_keep or max_keep <= 0:
        return
    pat = re.compile(r"iter_(\d+)_(checkpoint|weight)\.pth$")
    by_iter = {}
    for path in glob.glob(os.path.join(folder, "iter_*_*.pth")):
        m = pat.search(os.path.basename(path))
        if m:
            by_iter.setdefault(int(m.group(1)), []).append(path)
    for it in sorted(by_iter)[:-max_keep]:
        for path in by_iter[it]:
            try:
                os.remove(path)
            except OSError:
                pass

"""Checkpoints: atomic save, resume state, and `--load` through `ppgan.weights.load`.

Two files per snapshot, as PaddleGAN:
  iter_<N>_checkpoint.pth  {'nets', 'optimizers', 'schedulers', 'scaler', 'iter', 'epoch',
                            'rng', 'config', 'version'}   -- everything `--resume` needs
  iter_<N>_weight.pth      {'<net name>': state_dict, ..., '__ppgan__': {'model': cfg, ...}}
                            -- weights only, loadable by name; the model config beside them

`--resume` and `--load` first compare the model the file was written by (its stored config) with
the one the config builds (`check_same_model`), then every net's keys and shapes
(`check_nets_fit`), so a file of another model or size is one line naming both, not a
`load_state_dict` traceback.
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
from ..weights.load import META_KEY, load_nets, read_torch
from ..weights.load import load as load_file
from ..models.builder import describe_model, net_keys  # noqa: F401  (describe_model: re-exported)


def save(obj, path):
    """torch.save to a temp file in the same folder, then os.replace (never half-written)."""
    with atomic_path(path, suffix=".tmp") as tmp:
        torch.save(obj, tmp)
    return path


def load(path):
    """Read one of our checkpoints for `--resume` (`ppgan.weights.read_torch`: weights only, no
    code runs); CheckpointError if missing/corrupt."""
    return read_torch(path)


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
    """The `*_weight.pth` content: every net's state except the training-only ones the model names
    in `checkpoint_only_nets` (kept in `*_checkpoint.pth` for resume), and the model config."""
    skip = set(getattr(model, "checkpoint_only_nets", ()))
    out = {name: net.state_dict() for name, net in model.nets.items() if name not in skip}
    out[META_KEY] = {"model": model_cfg, "version": __version__}
    return out


def load_weights(model, path, strict=True, model_cfg=None):
    """`--load`: fill `model`'s nets from any file `ppgan.weights.load` reads (our weight /
    checkpoint files, PaddleGAN `.pdparams` nested by net name or flat, `.safetensors` with
    `<net>.<param>` keys, BasicSR `.pth`). Returns the names of the nets loaded. When the file
    does not fit and its stored config (ours) names another model than `model_cfg`, the
    CheckpointError names both."""
    weights = load_file(path)
    try:
        return load_nets(model.nets, weights, strict=strict)
    except CheckpointError as e:
        saved = weights.config
        if not (isinstance(saved, dict) and isinstance(model_cfg, dict)):
            raise
        if _architecture(saved) != _architecture(model_cfg):
            raise CheckpointError(f"{path} was written by model {describe_model(saved)}, this config builds "
                                  f"{describe_model(model_cfg)}; its weights do not fit ({e})") from None
        diff = _config_diff(saved, model_cfg)
        if not diff:
            raise
        raise CheckpointError(f"{e}; the config differs in {', '.join(diff)}") from None


def _model_class(name):
    from ..models.builder import MODELS

    return MODELS.get(name) if isinstance(name, str) and name in MODELS else name


def _architecture(model_cfg):
    return _model_class(model_cfg.get("name")), {k: model_cfg[k]["name"] for k in net_keys(model_cfg)}


def _config_diff(saved, current, prefix="model", limit=3):
    """'model.generator.ngf (32 in the file, 16 here)', ... for the first `limit` net settings that
    differ between two model configs (only inside the net sections)."""
    out = []

    def walk(a, b, path):
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b), key=str):
                walk(a.get(k), b.get(k), f"{path}.{k}")
        elif a != b:
            out.append(f"{path} ({a!r} in the file, {b!r} here)")

    for k in net_keys(current):
        walk(saved.get(k), current.get(k), f"{prefix}.{k}")
    return out[:limit]


def config_differences(a, b, path=""):
    """[(dotted key, value in `a`, value in `b`)] for every leaf that differs between two configs
    (a key missing on one side counts as None there), in the order of `a`'s keys then `b`'s."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in list(a) + [k for k in b if k not in a]:
            out += config_differences(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
        return out
    return [] if a == b else [(path, a, b)]


def saved_model_config(obj):
    """The model config a checkpoint (`config.model`) or weight file (`__ppgan__.model`) stores, or None."""
    if not isinstance(obj, dict):
        return None
    cfg = obj.get("config") if isinstance(obj.get("config"), dict) else (obj.get(META_KEY) or {})
    model_cfg = cfg.get("model") if isinstance(cfg, dict) else None
    return model_cfg if isinstance(model_cfg, dict) else None


def check_same_model(saved_cfg, model_cfg, path, what="checkpoint"):
    """CheckpointError when the model config stored in `path` (`saved_cfg`, may be None) builds
    another model class or other net architectures than `model_cfg`."""
    if saved_cfg is None or _architecture(saved_cfg) == _architecture(model_cfg):
        return
    raise CheckpointError(f"{what} {path} was written by model {describe_model(saved_cfg)}, this config builds "
                          f"{describe_model(model_cfg)}; use the config it was trained with "
                          "(config.yaml in its run folder)")


def check_nets_fit(model, nets_state, path, saved_cfg=None, model_cfg=None, limit=3):
    """CheckpointError naming the first mismatching keys when a net of `model` is missing from
    `nets_state` ({net name: state dict}) or its keys or shapes differ; with both configs, also
    the first net settings that differ."""
    if not isinstance(nets_state, dict):
        raise CheckpointError(f"checkpoint {path}: 'nets' is a {type(nets_state).__name__}, not a mapping of nets")
    absent = [n for n in model.nets if not isinstance(nets_state.get(n), dict)]
    if absent:
        held = [k for k, v in nets_state.items() if isinstance(v, dict)]
        raise CheckpointError(f"checkpoint {path} holds nets {', '.join(map(str, held)) or 'none'}; this config's "
                              f"model {type(model).__name__} needs {', '.join(model.nets)}")
    for name, net in model.nets.items():
        state, own = nets_state[name], net.state_dict()
        problems = [f"{k} missing in the file" for k in own if k not in state]
        problems += [f"{k} not in the model" for k in state if k not in own]
        problems += [f"{k} is {list(getattr(state[k], 'shape', []))} in the file, {list(own[k].shape)} in the model"
                     for k in own if k in state and tuple(getattr(state[k], "shape", ())) != tuple(own[k].shape)]
        if problems:
            diff = _config_diff(saved_cfg, model_cfg) if saved_cfg and model_cfg else []
            more = f" (and {len(problems) - limit} more)" if len(problems) > limit else ""
            hint = f"; the config differs in {', '.join(diff)}" if diff else ""
            raise CheckpointError(f"checkpoint {path} does not fit net '{name}' ({type(net).__name__}) of this "
                                  f"config: {'; '.join(problems[:limit])}{more}{hint}")


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

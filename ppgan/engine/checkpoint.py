"""Checkpoints: atomic save, resume state, and `--load` through `ppgan.weights.load`.

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
from ..utils.io import atomic_path
from ..weights.load import META_KEY, load_nets, read_torch
from ..weights.load import load as load_file


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
    out = {name: net.state_dict() for name, net in model.nets.items()}
    out[META_KEY] = {"model": model_cfg, "version": __version__}
    return out


def load_weights(model, path, strict=True):
    """`--load`: fill `model`'s nets from any file `ppgan.weights.load` reads (our weight /
    checkpoint files, PaddleGAN `.pdparams` nested by net name or flat, `.safetensors` with
    `<net>.<param>` keys, BasicSR `.pth`). Returns the names of the nets loaded."""
    return load_nets(model.nets, load_file(path), strict=strict)


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

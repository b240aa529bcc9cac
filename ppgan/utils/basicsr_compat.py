"""Load BasicSR / Real-ESRGAN PyTorch checkpoints (`.pth`) into ppgan generators.

BasicSR (and Real-ESRGAN, which reuses its archs) renamed ESRGAN's RRDBNet modules; ppgan keeps
the original names that PaddleGAN uses (see `ppgan/models/generators/rrdb_net.py`):

    BasicSR                       ppgan / PaddleGAN
    conv_first                    conv_first
    body.<i>.rdb<j>.conv<k>       RRDB_trunk.<i>.RDB<j>.conv<k>
    conv_body                     trunk_conv
    conv_up1, conv_up2            upconv1, upconv2
    conv_hr                       HRconv
    conv_last                     conv_last

BasicSR's x2 / x1 RRDBNet pixel-unshuffles the input with the channel order of
`F.pixel_unshuffle`, as ours does, so those checkpoints map unchanged. `SRVGGNetCompact` uses
Real-ESRGAN's own names. Checkpoints saved by BasicSR wrap the weights as
`{'params': ...}` and / or `{'params_ema': ...}`; the EMA weights win when both are present
(as in Real-ESRGAN's inference helper).
"""
import os
import re
from collections import OrderedDict

import torch

from .errors import CheckpointError

_RRDB_RENAMES = (
    (re.compile(r"^conv_first\.(weight|bias)$"), r"conv_first.\1"),
    (re.compile(r"^body\.(\d+)\.rdb([123])\.conv([1-5])\.(weight|bias)$"), r"RRDB_trunk.\1.RDB\2.conv\3.\4"),
    (re.compile(r"^conv_body\.(weight|bias)$"), r"trunk_conv.\1"),
    (re.compile(r"^conv_up1\.(weight|bias)$"), r"upconv1.\1"),
    (re.compile(r"^conv_up2\.(weight|bias)$"), r"upconv2.\1"),
    (re.compile(r"^conv_hr\.(weight|bias)$"), r"HRconv.\1"),
    (re.compile(r"^conv_last\.(weight|bias)$"), r"conv_last.\1"),
)


def unwrap_state_dict(state, key=None):
    """The tensor dict inside a BasicSR checkpoint.

    Args:
        state (dict): a state dict, or a checkpoint holding one under 'params_ema' / 'params'.
        key (str | None): which wrapper to take; None: 'params_ema' if present, else 'params',
            else `state` itself.
    Returns:
        OrderedDict: name -> tensor, with a leading 'module.' (DataParallel) removed.
    """
    if not isinstance(state, dict):
        raise CheckpointError(f"expected a state dict, got {type(state).__name__}")
    if key is not None:
        if key not in state:
            raise CheckpointError(f"checkpoint has no {key!r} entry (it has {sorted(state)[:5]})")
        state = state[key]
    elif "params_ema" in state:
        state = state["params_ema"]
    elif "params" in state:
        state = state["params"]
    if not isinstance(state, dict):
        raise CheckpointError(f"expected a state dict, got {type(state).__name__}")
    bad = [k for k, v in state.items() if not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(f"state dict entry {bad[0]!r} is not a tensor; is this a BasicSR weight file?")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return OrderedDict(state)


def basicsr_to_ppgan_rrdbnet(state):
    """Rename a BasicSR RRDBNet state dict to ppgan's names; every key must be known.

    Raises CheckpointError naming the first key that is not a BasicSR RRDBNet weight."""
    out = OrderedDict()
    for name, tensor in unwrap_state_dict(state).items():
        for pattern, repl in _RRDB_RENAMES:
            if pattern.match(name):
                out[pattern.sub(repl, name)] = tensor
                break
        else:
            raise CheckpointError(f"{name!r} is not a BasicSR RRDBNet weight name "
                                  "(expected conv_first, body.N.rdbJ.convK, conv_body, conv_up1/2, conv_hr, conv_last)")
    return out


def load_basicsr_weights(net, state_or_path, key=None):
    """Load a BasicSR / Real-ESRGAN checkpoint into an `RRDBNet` or `SRVGGNetCompact`, strictly.

    Args:
        net (nn.Module): RRDBNet (BasicSR names are renamed to ours) or SRVGGNetCompact (same names).
        state_or_path (dict | str | os.PathLike): a state dict / checkpoint dict, or a `.pth` file
            (read with `torch.load(..., weights_only=True)`).
        key (str | None): 'params_ema' / 'params' to pick a wrapper; None: EMA if present.
    Returns:
        nn.Module: `net`.
    """
    from ..engine.checkpoint import load, load_state_strict
    from ..models.generators.rrdb_net import RRDBNet
    from ..models.generators.srvgg import SRVGGNetCompact

    source = "state dict"
    if isinstance(state_or_path, (str, os.PathLike)):
        source = os.fspath(state_or_path)
        state_or_path = load(source)
    if isinstance(net, RRDBNet):
        state = basicsr_to_ppgan_rrdbnet(unwrap_state_dict(state_or_path, key))
    elif isinstance(net, SRVGGNetCompact):
        state = unwrap_state_dict(state_or_path, key)
    else:
        raise CheckpointError(f"BasicSR weights load into RRDBNet or SRVGGNetCompact, not {type(net).__name__}")
    return load_state_strict(net, state, source)

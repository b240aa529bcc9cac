"""BasicSR / Real-ESRGAN PyTorch checkpoints (`.pth`): unwrap and rename to ppgan's keys.

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
(as in Real-ESRGAN's inference helper). Only key names are read here: no net is built.
"""
import re
from collections import OrderedDict

import torch

from ..utils.errors import CheckpointError

WRAPPER_KEYS = ("params_ema", "params")  # in order of preference

_RRDB_RENAMES = (
    (re.compile(r"^conv_first\.(weight|bias)$"), r"conv_first.\1"),
    (re.compile(r"^body\.(\d+)\.rdb([123])\.conv([1-5])\.(weight|bias)$"), r"RRDB_trunk.\1.RDB\2.conv\3.\4"),
    (re.compile(r"^conv_body\.(weight|bias)$"), r"trunk_conv.\1"),
    (re.compile(r"^conv_up1\.(weight|bias)$"), r"upconv1.\1"),
    (re.compile(r"^conv_up2\.(weight|bias)$"), r"upconv2.\1"),
    (re.compile(r"^conv_hr\.(weight|bias)$"), r"HRconv.\1"),
    (re.compile(r"^conv_last\.(weight|bias)$"), r"conv_last.\1"),
)
# names only BasicSR's RRDBNet has (conv_first / conv_last are shared with ours)
_BASICSR_ONLY = re.compile(r"^(body\.\d+\.rdb[123]\.|conv_body\.|conv_up[12]\.|conv_hr\.)")


def is_wrapped(obj):
    """True when `obj` is a BasicSR checkpoint dict (`params_ema` and / or `params`)."""
    return isinstance(obj, dict) and any(isinstance(obj.get(k), dict) for k in WRAPPER_KEYS)


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
            raise CheckpointError(f"checkpoint has no {key!r} entry (it has {sorted(map(str, state))[:5]})")
        state = state[key]
    else:
        for k in WRAPPER_KEYS:
            if isinstance(state.get(k), dict) and state[k]:
                state = state[k]
                break
    if not isinstance(state, dict):
        raise CheckpointError(f"expected a state dict, got {type(state).__name__}")
    bad = [k for k in state if not isinstance(k, str)]
    if bad:
        raise CheckpointError(f"state dict key {str(bad[0])[:40]!r} ({type(bad[0]).__name__}) is not a name; "
                              "is this a BasicSR weight file?")
    bad = [k for k, v in state.items() if not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(f"state dict entry {bad[0]!r} is not a tensor; is this a BasicSR weight file?")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return OrderedDict(state)


def has_basicsr_rrdb_names(state):
    """True when `state`'s keys are BasicSR's RRDBNet names (so `basicsr_to_ppgan_rrdbnet` applies)."""
    return bool(state) and any(_BASICSR_ONLY.match(k) for k in state) and \
        all(any(p.match(k) for p, _ in _RRDB_RENAMES) for k in state)


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


def read_basicsr(obj, key=None, arch=None):
    """The generator's state dict, in ppgan's key names, from a BasicSR checkpoint dict.

    Args:
        obj (dict): a loaded `.pth` (wrapped or a bare state dict).
        key (str | None): 'params_ema' / 'params'; None: EMA if present.
        arch (str | None): the architecture it is for; BasicSR RRDBNet names are renamed when
            `arch` is None or 'RRDBNet' and the file uses them (a stray name then fails).
    """
    state = unwrap_state_dict(obj, key)
    if arch in (None, "RRDBNet") and any(_BASICSR_ONLY.match(k) for k in state):
        state = basicsr_to_ppgan_rrdbnet(state)
    return state

"""The one entry point for weight files: `load(path_or_name)` reads any supported file by its
content and returns a `Weights` (state dicts + metadata); `load_into` / `load_nets` put them
into nets strictly.

Formats, told apart by their first bytes (`sniff_weight_format`), never by the extension alone:

* torch files (`.pth`, zip or legacy), always with `torch.load(..., weights_only=True)` (no code
  runs): our weight files (`{net name: state_dict, '__ppgan__': {...}}`) and checkpoints
  (`{'nets': ..., 'config': ...}`), BasicSR / Real-ESRGAN files (`params_ema` preferred over
  `params`; BasicSR's RRDBNet names renamed to ours), torchvision-style bare state dicts (or
  `{'state_dict': ...}`), DataParallel `module.` prefixes removed.
* `.safetensors` (needs the optional `safetensors` package): flat `{name: tensor}`, optionally
  prefixed by net names (`netG.conv.weight`).
* PaddleGAN `.pdparams`: read by the restricted unpickler (`ppgan.weights.pdparams`), flat or
  nested by net name. Their states keep Paddle's names and numpy arrays until they meet a net
  (`load_into`), because Paddle -> PyTorch needs the module types (Linear weights are transposed,
  BatchNorm buffers renamed).
* Real-ESRGAN ncnn `.param` + `.bin` (`ppgan.weights.ncnn`): mapped onto the catalogue spec's
  architecture (or the one the graph shows) in our key names.

Nothing here builds a net: apps and the engine build one from `Weights.arch` / `kwargs` (or the
spec) with the registries, then call `load_into`.
"""
import dataclasses
import os
from collections import OrderedDict
from typing import Optional

import numpy as np
import torch

from ..utils.errors import CheckpointError
from ..utils.io import not_regular_reason
from .hashing import file_sha256
from .torchfile import read_torch

META_KEY = "__ppgan__"  # our weight files: {'model': model config, 'version': ...}
GENERATOR_NAMES = ("generator", "netG", "net_g")  # what "the generator" is called in nested files
SINGLE = "net"  # the states key of a file that holds one net


@dataclasses.dataclass
class Weights:
    """What `load` read.

    Attributes:
        states (dict): {net name: state dict}; 'net' when the file holds one net. Tensors in our
            key names; for 'pdparams', numpy arrays in Paddle's names (converted by `load_into`).
        format (str): 'ppgan' (our weight / checkpoint file), 'torch' (a bare state dict),
            'basicsr', 'safetensors', 'pdparams' or 'ncnn'.
        path (str | None): the file read (ncnn: the `.param`); None for an in-memory dict.
        files (tuple): every file read (ncnn: the `.param` and the `.bin`), for fingerprints.
        arch (str | None), kwargs (dict | None): the architecture the weights are for, when the
            spec or the file says (ncnn graphs, a spec).
        rescale (float | None): the bicubic output resize of an ncnn graph / spec (`RescaledSR`).
        config (dict | None): the model config our weight files and checkpoints store.
        spec (WeightSpec | None): the catalogue entry, when loaded by name.
    """

    states: dict
    format: str
    path: Optional[str] = None
    files: tuple = ()
    arch: Optional[str] = None
    kwargs: Optional[dict] = None
    rescale: Optional[float] = None
    config: Optional[dict] = None
    spec: Optional[object] = None

    @property
    def sha256(self):
        """Hex sha256 of `path` (cached per file version); None for in-memory weights."""
        return file_sha256(self.path) if self.path else None

    def state(self, name=None):
        """The state dict of net `name` (None: the generator, or the only net).

        A file holding a single net serves any name. Raises CheckpointError naming what the file
        holds when the choice is not there or ambiguous."""
        if name is not None and name in self.states:
            return self.states[name]
        if len(self.states) == 1:
            return next(iter(self.states.values()))
        if name is None:
            for k in GENERATOR_NAMES:
                if k in self.states:
                    return self.states[k]
            raise CheckpointError(f"{self._where()} holds several nets ({', '.join(map(str, self.states)) or 'none'}); "
                                  "cannot tell which is the generator")
        raise CheckpointError(f"{self._where()} has no '{name}' weights (has: {', '.join(map(str, self.states))})")

    def _where(self):
        return self.path or "the state dict"


# ---------------------------------------------------------------- reading

def extract_net_states(obj, path=""):
    """The {net name: state_dict} held by a weight file, a full checkpoint or a bare state dict."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path or 'weights'}: expected a dict, got {type(obj).__name__}")
    if "nets" in obj and isinstance(obj["nets"], dict):
        return obj["nets"]
    return {k: v for k, v in obj.items() if k != META_KEY and isinstance(v, dict)}


def _is_tensor_dict(obj):
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _strip_prefix(state, prefix="module."):
    if state and all(k.startswith(prefix) for k in state):
        return OrderedDict((k[len(prefix):], v) for k, v in state.items())
    return state


def _check_keys(mapping, where, what="state dict"):
    """CheckpointError naming the first key of `mapping` that is not a string."""
    bad = [k for k in mapping if not isinstance(k, str)]
    if bad:
        raise CheckpointError(f"{where}: {what} key {str(bad[0])[:40]!r} ({type(bad[0]).__name__}) is not a name; "
                              "not a weight file")


def _tensors_only(state, where):
    _check_keys(state, where)
    return _strip_prefix(OrderedDict((k, v) for k, v in state.items() if isinstance(v, torch.Tensor)))


def _from_torch_obj(obj, where, key=None, arch=None):
    """(format, states, config) of a loaded torch object."""
    from . import basicsr

    if not isinstance(obj, dict):
        raise CheckpointError(f"{where}: expected a dict of tensors, got {type(obj).__name__}")
    if basicsr.is_wrapped(obj) and not (key is not None and key not in basicsr.WRAPPER_KEYS and key in obj):
        try:
            state = basicsr.read_basicsr(obj, key if key in basicsr.WRAPPER_KEYS else None, arch)
        except CheckpointError as e:
            raise CheckpointError(f"{where}: {e}") from None
        return "basicsr", {SINGLE: state}, None
    if _is_tensor_dict(obj.get("state_dict")) and len(obj) <= 3:  # torchvision / lightning style wrapper
        obj = obj["state_dict"]
    if _is_tensor_dict(obj):
        state = _tensors_only(obj, where)
        if arch in (None, "RRDBNet") and basicsr.has_basicsr_rrdb_names(state):
            return "basicsr", {SINGLE: basicsr.basicsr_to_ppgan_rrdbnet(state)}, None
        return "torch", {SINGLE: state}, None
    meta = obj.get(META_KEY) if isinstance(obj.get(META_KEY), dict) else {}
    config = meta.get("model") or ((obj.get("config") or {}).get("model") if isinstance(obj.get("config"), dict)
                                   else None)
    nets = extract_net_states(obj, where)
    _check_keys(nets, where, "net name")
    states = {k: _tensors_only(v, f"{where} ['{k}']") for k, v in nets.items()}
    if not states:
        raise CheckpointError(f"{where} holds no state dicts")
    return "ppgan", states, config


def _from_pdparams(data, where):
    from .pdparams import PADDLE_META_KEYS, read_pdparams

    if not isinstance(data, dict):
        raise CheckpointError(f"expected a dict of arrays in {where}, got {type(data).__name__}")
    _check_keys(data, where)
    data = {k: v for k, v in data.items() if k not in PADDLE_META_KEYS}
    nested = {k: v for k, v in data.items() if isinstance(v, dict)}
    if nested:
        return {k: read_pdparams(v, where=f"{where} ['{k}']") for k, v in nested.items()}
    return {SINGLE: read_pdparams(data, where=where)}


def _read_safetensors(path):
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise CheckpointError(f"reading {path} needs the 'safetensors' package (pip install safetensors)") from None
    try:
        return OrderedDict(load_file(path))
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"cannot read {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") \
            from None


def load(source, spec=None, key=None, weight_path=None, download=True, progress=True):
    """Read weights from a file, a catalogue name or an in-memory dict, by content.

    Args:
        source (str | os.PathLike | WeightSpec | dict): a weight file (ncnn: the `.param` or the
            `.bin`), a catalogue name (resolved: `weight_path` -> cache -> package -> download),
            or a dict already loaded (classified as a torch file's content).
        spec (WeightSpec | str | None): the catalogue entry the file is for (gives `arch`,
            `kwargs`, `key`, `rescale`); implied when `source` is a name.
        key (str | None): which sub-dict holds the generator ('generator', 'params_ema', ...);
            default `spec.key`.
        weight_path (str | None): with a name, a file that overrides the catalogue's sources.
        download (bool), progress (bool): with a name, whether a missing file may be downloaded.
    Returns:
        Weights: states + metadata.
    Raises:
        CheckpointError: one line, for a missing / unreadable / refused / unknown file.
    """
    from .catalog import WEIGHTS, WeightSpec, get_spec
    from .download import sniff_weight_format
    from .resolve import check_ncnn_pair, ncnn_pair, resolve_weight

    looks_like_name = isinstance(source, str) and not os.path.exists(source) and os.sep not in source \
        and "." not in source  # a catalogue name (an unknown one gets "did you mean ...")
    if isinstance(source, WeightSpec) or looks_like_name or (isinstance(source, str) and source in WEIGHTS
                                                             and not os.path.isfile(source)):
        spec = get_spec(source)
        source = resolve_weight(spec, weight_path=weight_path, download=download, progress=progress)
    elif spec is not None:
        spec = get_spec(spec)
    key = key if key is not None else (spec.key if spec is not None else None)
    arch = spec.arch if spec is not None else None
    meta = dict(arch=arch, kwargs=dict(spec.kwargs) if spec is not None else None,
                rescale=spec.rescale if spec is not None else None, spec=spec)
    if isinstance(source, dict):
        fmt, states, config = _from_torch_obj(source, "the state dict", key, arch)
        return Weights(states, fmt, config=config, **meta)

    path = os.path.abspath(os.fspath(source))
    why = not_regular_reason(path)
    if why == "does not exist":
        raise CheckpointError(f"weight file not found: {path}")
    if why is not None:  # a FIFO would block the reader forever
        raise CheckpointError(f"weight file {path} {why}")
    fmt = sniff_weight_format(path)
    if fmt == "pth":
        fmt, states, config = _from_torch_obj(read_torch(path), path, key, arch)
        return Weights(states, fmt, path, (path,), config=config, **meta)
    if fmt == "pdparams":
        from .pdparams import safe_pickle_load

        return Weights(_from_pdparams(safe_pickle_load(path), path), "pdparams", path, (path,), **meta)
    if fmt == "safetensors":
        return Weights({SINGLE: _read_safetensors(path)}, "safetensors", path, (path,), **meta)
    if fmt in ("ncnn-param", "ncnn-bin"):
        from .ncnn import read_ncnn_state

        param = check_ncnn_pair(path)
        binf = ncnn_pair(param)[1]
        state, arch, kwargs, rescale = read_ncnn_state(param, binf, meta["arch"], meta["kwargs"], meta["rescale"])
        return Weights({SINGLE: state}, "ncnn", param, (param, binf), arch, kwargs, rescale, spec=spec)
    if fmt == "tflite":  # a graph, not a state dict: the face toolkit builds its nets from it
        raise CheckpointError(f"{path} is a TFLite model: it is read by ppgan.faceutils (mediapipe face "
                              "detection, face mesh, selfie segmentation), not loaded into a generator")
    if fmt == "html":
        raise CheckpointError(f"{path} is an HTML page, not a checkpoint (a failed download?); delete it")
    raise CheckpointError(f"{path} is not a checkpoint this tool can read (.pdparams, .pth, .safetensors, "
                          "ncnn .param/.bin)")


# ---------------------------------------------------------------- into nets

def _shape_mismatch(state, own):
    """('N shape mismatches (e.g. ...)', ...) for entries of `state` whose shape differs from the net's."""
    bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if not bad:
        return []
    return [f"{len(bad)} shape mismatches (e.g. {bad[0]} {list(state[bad[0]].shape)} vs model "
            f"{list(own[bad[0]].shape)})"]


def optional_state_keys(net):
    """State-dict keys of `net` a file may lack: those its modules list in `optional_state_keys`
    (a module then fills them in its `_load_from_state_dict`, e.g. a buffer added later)."""
    return {f"{name}.{key}" if name else key for name, module in net.named_modules()
            for key in getattr(module, "optional_state_keys", ())}


def load_state_strict(net, state, source):
    """`net.load_state_dict(state, strict=True)`, with a one-line CheckpointError naming what is
    missing, unexpected or of the wrong shape (with examples) instead of torch's long message.
    `source` names the file (or 'state dict') in the error. Returns `net`."""
    own = net.state_dict()
    optional = optional_state_keys(net)
    missing = [k for k in own if k not in state and k not in optional]
    unexpected = [k for k in state if k not in own]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing in file (e.g. {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} not in model (e.g. {', '.join(unexpected[:3])})")
    parts += _shape_mismatch(state, own)
    if parts:
        raise CheckpointError(f"weights in {source} do not fit {type(net).__name__}: {'; '.join(parts)}")
    net.load_state_dict(state, strict=True)
    return net


def _load_state_loose(net, state, source):
    """strict=False: load what fits by name and shape (shape mismatches are still an error)."""
    own = net.state_dict()
    bad = _shape_mismatch(state, own)
    if bad:
        raise CheckpointError(f"weights in {source} do not fit {type(net).__name__}: {bad[0]}")
    net.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return net


def _strip_single_head(state, own):
    """`netG.conv.weight` -> `conv.weight` when all keys share one head the net does not know."""
    if set(state) == set(own) or not state or not all("." in k for k in state):
        return state
    heads = {k.partition(".")[0] for k in state}
    if len(heads) == 1:
        stripped = OrderedDict((k.partition(".")[2], v) for k, v in state.items())
        if len(set(stripped) & set(own)) > len(set(state) & set(own)):
            return stripped
    return state


def apply_state(net, state, fmt, source, strict=True, subset=False):
    """Put one state dict (as `Weights.states` holds it, in format `fmt`) into `net`.

    Args:
        subset (bool): take only the entries `net` has (a loss using the first VGG layers of a
            full file); every parameter of `net` must still be filled.
    """
    if fmt == "pdparams":
        from .pdparams import _torch_name, convert_paddle_state_dict

        if subset:
            own = net.state_dict()
            state = {k: v for k, v in state.items() if _torch_name(k, own) is not None}
        try:
            state, _ = convert_paddle_state_dict(net, state, strict=strict)
        except CheckpointError as e:
            raise CheckpointError(f"{source}: {e}") from None
    else:
        own = net.state_dict()
        state = _strip_single_head(state, own)
        if subset:
            state = OrderedDict((k, v) for k, v in state.items() if k in own)
    if strict:
        return load_state_strict(net, state, source)
    return _load_state_loose(net, state, source)


def load_into(net, weights, name=None, strict=True, subset=False, **load_kwargs):
    """Load one net's weights into `net` (strict by default).

    Args:
        net (nn.Module): the net, built with the file's architecture and kwargs.
        weights (Weights | str | os.PathLike | dict): what `load` returned, or anything `load` takes.
        name (str | None): which net of a multi-net file (None: the generator, or the only one);
            default the spec's `key`.
        strict, subset: see `apply_state`.
        load_kwargs: passed to `load` when `weights` is not a `Weights`.
    Returns:
        nn.Module: `net`.
    """
    if not isinstance(weights, Weights):
        weights = load(weights, **load_kwargs)
    if name is None and weights.spec is not None and weights.spec.key in weights.states:
        name = weights.spec.key
    return apply_state(net, weights.state(name), weights.format, weights.path or "the state dict", strict, subset)


def load_nets(nets, weights, strict=True):
    """Load every net of `nets` ({name: nn.Module}, a model's `self.nets`) that `weights` holds.

    Files with one net (a flat `.pdparams` or state dict) fill the first net; `.safetensors`
    keys prefixed by net names (`netG.<param>`) are split by that prefix. Returns the names
    loaded; CheckpointError when the file holds none of them.
    """
    if not isinstance(weights, Weights):
        weights = load(weights)
    states, where = weights.states, weights.path or "the state dict"
    if list(states) == [SINGLE] and SINGLE not in nets:
        flat = states[SINGLE]
        heads = {k.partition(".")[0] for k in flat}
        if weights.format == "safetensors" and heads & set(nets):
            states = {}
            for k, v in flat.items():
                head, _, rest = k.partition(".")
                states.setdefault(head, OrderedDict())[rest] = v
        elif nets:
            states = {next(iter(nets)): flat}
    loaded = []
    for name, net in nets.items():
        if name in states:
            apply_state(net, states[name], weights.format, f"{where} ['{name}']", strict)
            loaded.append(name)
    if not loaded:
        raise CheckpointError(f"{where} holds none of the nets {', '.join(nets)} "
                              f"(it has: {', '.join(map(str, states)) or 'nothing'})")
    return loaded


def as_numpy_state(weights, name=None):
    """{name: np.ndarray} of one net's state (for converters and reports)."""
    state = (weights if isinstance(weights, Weights) else load(weights)).state(name)
    return OrderedDict((k, v if isinstance(v, np.ndarray) else v.detach().cpu().numpy()) for k, v in state.items())

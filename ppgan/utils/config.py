"""Config files: YAML (PaddleGAN's schema) -> plain dict, with checked `-o a.b=c` overrides."""
import copy
import inspect
import os
import re

import yaml

from . import yaml_safe
from .errors import ConfigError, closest

# Top-level keys of a config and, for the fixed-schema sections, their keys.
# `model`, `dataset`, `optimizer`, `lr_scheduler` and `validate.metrics` are checked by the
# builders against the constructor of the class they name.
TOP_LEVEL = {
    "total_iters", "epochs", "output_dir", "model", "dataset", "lr_scheduler", "optimizer",
    "log_config", "snapshot_config", "validate", "export_model", "min_max", "seed", "amp",
    "compile", "cuda_graphs", "find_unused_parameters", "enable_visualdl", "profiler_options",
    "is_train", "device", "channels_last", "deterministic",
    "checkpoints_dir", "use_dataset",  # PaddleGAN's video SR configs carry these; unused
    "predict", "reconstruction_params", "animate_params", "visualizer_params",  # PaddleGAN's FOMM/AOT-GAN
}
# Top-level keys PaddleGAN's configs carry for its other tools (export, predict, animate);
# they load and are ignored here (`ignored_keys` names them for the one note the CLI prints).
IGNORED_TOP_LEVEL = ("export_model", "predict", "reconstruction_params", "animate_params", "visualizer_params",
                     "checkpoints_dir", "use_dataset", "enable_visualdl", "profiler_options")
SECTIONS = {
    "log_config": {"interval", "visiual_interval", "visual_interval", "save_samples"},
    "snapshot_config": {"interval", "max_keep", "by_epoch"},
    "validate": {"interval", "save_img", "metrics", "by_epoch", "at_start"},
}
# PaddleGAN's misspelt keys, read as the key they mean (`visiual_interval` is read as is by the
# trainer, which looks for both spellings).
ALIASES = {
    "validate": {"save_imig": "save_img"},  # PaddleGAN's stylegan_v2_256_ffhq.yaml
}
AMP_MODES = (None, False, "none", "bf16", "fp16")


def _check_keys(keys, allowed, where):
    for key in keys:
        if key not in allowed:
            hint = closest(key, allowed)
            more = f"; did you mean {', '.join(hint)}?" if hint else f"; valid keys: {', '.join(sorted(allowed))}"
            raise ConfigError(f"unknown config key '{where}{key}'{more}")


def ignored_keys(cfg):
    """The top-level keys of `cfg` that ppgan loads but does not use (PaddleGAN's other tools)."""
    return [k for k in IGNORED_TOP_LEVEL if k in cfg]


def resolve_aliases(cfg):
    """Rename PaddleGAN's misspelt section keys (ALIASES) to the keys they mean, in place."""
    for section, names in ALIASES.items():
        node = cfg.get(section)
        if not isinstance(node, dict):
            continue
        for alias, key in names.items():
            if alias in node:
                value = node.pop(alias)
                if key in node and node[key] != value:
                    raise ConfigError(f"config sets both '{section}.{key}' ({node[key]!r}) and its PaddleGAN "
                                      f"spelling '{section}.{alias}' ({value!r}); keep one")
                node[key] = value
    return cfg


def _positive_int(cfg, key, where):
    value = cfg.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ConfigError(f"config key '{where}' must be an integer >= 1, got {value!r}")


def validate_config(cfg):
    """Check the fixed parts of the schema; raise ConfigError naming the bad key."""
    if not isinstance(cfg, dict):
        raise ConfigError("config must be a YAML mapping at the top level")
    resolve_aliases(cfg)
    _check_keys(cfg, TOP_LEVEL, "")
    for section, allowed in SECTIONS.items():
        if section in cfg and cfg[section] is not None:
            if not isinstance(cfg[section], dict):
                raise ConfigError(f"config key '{section}' must be a mapping")
            _check_keys(cfg[section], allowed, section + ".")
    if "model" not in cfg or not isinstance(cfg["model"], dict) or "name" not in cfg["model"]:
        raise ConfigError("config needs 'model: {name: ...}'")
    for key in ("total_iters", "epochs"):
        _positive_int(cfg, key, key)
    if cfg.get("total_iters") is None and cfg.get("epochs") is None:
        if cfg.get("is_train", True) is not False:
            raise ConfigError("config needs 'total_iters' or 'epochs'")
    log_cfg = cfg.get("log_config") or {}
    _positive_int(log_cfg, "interval", "log_config.interval")  # 0 would train without a single log line
    if cfg.get("amp", None) not in AMP_MODES:
        raise ConfigError(f"config key 'amp' must be one of bf16, fp16, none; got {cfg['amp']!r}")
    return cfg


_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _floats(obj):
    """YAML 1.1 (PyYAML) reads `1e-4` (no dot) as a string; read it as the float it means."""
    if isinstance(obj, dict):
        return {k: _floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_floats(v) for v in obj]
    if isinstance(obj, str) and _FLOAT.match(obj):
        return float(obj)
    return obj


def _parse_value(text):
    if text == "":
        return ""
    try:
        return _floats(yaml_safe.loads(text, "override"))
    except ConfigError as e:
        why = str(e).split(": ", 1)[-1]
        raise ConfigError(f"cannot parse override value {text!r}: {why}") from None


def _compatible(old, new):
    if old is None or new is None:
        return True
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool)
    if isinstance(old, (int, float)) and isinstance(new, (int, float)):
        return True
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        return True
    return type(old) is type(new)


def apply_overrides(cfg, overrides):
    """Apply `a.b.c=value` strings to `cfg` (in place) and return it.

    Values are YAML scalars/flow collections (`1e-4`, `true`, `[64, 64]`), never evaluated as
    code. Every parent key must exist; the leaf must exist or be part of the fixed schema, and
    a value may not change type (an int may become a float).
    """
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key.sub=value")
        path, text = item.split("=", 1)
        keys = path.strip().split(".")
        if not all(keys):
            raise ConfigError(f"override '{item}' has an empty key")
        node = cfg
        for i, key in enumerate(keys[:-1]):
            if not isinstance(node, dict) or key not in node:
                where = ".".join(keys[:i + 1])
                hint = closest(key, node) if isinstance(node, dict) else []
                more = f"; did you mean {', '.join(hint)}?" if hint else ""
                raise ConfigError(f"override key '{where}' is not in the config{more}")
            node = node[key]
        leaf = keys[-1]
        if len(keys) == 2:
            leaf = ALIASES.get(keys[0], {}).get(leaf, leaf)
        value = _parse_value(text)
        if not isinstance(node, dict):
            raise ConfigError(f"override key '{'.'.join(keys[:-1])}' is not a mapping")
        if leaf not in node:
            allowed = TOP_LEVEL if len(keys) == 1 else SECTIONS.get(keys[0]) if len(keys) == 2 else None
            if allowed is not None and leaf not in allowed:
                hint = closest(leaf, set(node) | allowed)
                more = f"; did you mean {', '.join(hint)}?" if hint else ""
                raise ConfigError(f"override key '{path}' is not in the config{more}")
            if allowed is None and not _accepts_new_key(keys):
                hint = closest(leaf, node)
                more = f"; did you mean {', '.join(hint)}?" if hint else ""
                raise ConfigError(f"override key '{path}' is not in the config{more}")
        elif not _compatible(node[leaf], value):
            raise ConfigError(
                f"override '{path}' expects a {type(node[leaf]).__name__} like {node[leaf]!r}, got {text!r}")
        node[leaf] = value
    return cfg


def _accepts_new_key(keys):
    # Inside a `name:`-ed section (model, generator, dataset, ...) a new key is passed to the
    # class, whose builder checks it against the constructor. Elsewhere it must already exist.
    return keys[0] in ("model", "dataset", "optimizer", "lr_scheduler", "validate")


def load_config(path, overrides=None):
    """Read `path` with the bounded safe YAML reader (`ppgan.utils.yaml_safe`), apply overrides,
    validate; return a plain dict."""
    if not path:
        raise ConfigError("no config given: use -c configs/<name>.yaml")
    cfg = _floats(yaml_safe.read_yaml(os.fspath(path), "config"))
    if isinstance(cfg, dict):
        resolve_aliases(cfg)
    apply_overrides(cfg, overrides)
    return validate_config(cfg)


def dump_config(cfg, path):
    """Write `cfg` as YAML, atomically."""
    from .io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_builtin(cfg), sort_keys=False))


def to_builtin(obj):
    if isinstance(obj, dict):
        return {str(k): to_builtin(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_builtin(v) for v in obj]
    return obj


def accepted_kwargs(obj):
    """Names a class or function accepts as keyword arguments; None if it takes **kwargs
    that cannot be traced to a parent class."""
    names = set()
    classes = obj.__mro__ if inspect.isclass(obj) else (None,)
    for cls in classes:
        fn = obj if cls is None else cls.__dict__.get("__init__")
        if fn is None:
            continue
        if cls is object:
            break
        params = inspect.signature(fn).parameters
        var_kw = False
        for p in params.values():
            if p.kind == p.VAR_KEYWORD:
                var_kw = True
            elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
                names.add(p.name)
        if not var_kw:
            return names
    return None


def check_kwargs(obj, kwargs, where):
    """Raise ConfigError if `kwargs` has a key `obj` does not accept, naming the closest."""
    allowed = accepted_kwargs(obj)
    if allowed is None:
        return
    for key in kwargs:
        if key not in allowed:
            hint = closest(key, allowed)
            more = f"; did you mean {', '.join(hint)}?" if hint else f"; valid: {', '.join(sorted(allowed))}"
            raise ConfigError(f"unknown key '{key}' for {where}{more}")
    sig_required = _required_args(obj)
    missing = [k for k in sig_required if k not in kwargs]
    if missing:
        raise ConfigError(f"{where} needs key(s): {', '.join(missing)}")


_TYPES = (bool, int, float, str)


def _declared_type(param):
    """The type a parameter declares: its annotation when that is bool/int/float/str, else the
    type of its default when that is bool/int/float, else None (anything goes)."""
    if param.annotation in _TYPES:
        return param.annotation
    default = param.default
    if default is param.empty or default is None:
        return None
    # a str default says less: many take a name or a list of names (VSR `val_partition`)
    return next((t for t in _TYPES if type(default) is t and t is not str), None)


def check_values(obj, kwargs, where, positive_sizes=False):
    """Raise ConfigError if a value in `kwargs` does not fit the type `obj`'s constructor declares
    for it (annotation or default, see `_declared_type`): a bool needs true/false, an int an
    integer (or false/true, read as 0/1), a float a number, a str a string. With `positive_sizes`
    (network constructors, whose positive int defaults are sizes: channels, blocks, layers), such
    an int must be an integer >= 1, not a bool."""
    fn = obj.__init__ if inspect.isclass(obj) else obj
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return
    for key, value in kwargs.items():
        param = params.get(key)
        kind = _declared_type(param) if param is not None else None
        if kind is None or value is None:
            continue
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if kind is bool:
            ok, allowed = isinstance(value, bool), "true or false"
        elif kind is int:
            size = positive_sizes and isinstance(param.default, int) and param.default > 0
            ok = is_int and value >= 1 if size else isinstance(value, int)  # PaddleGAN writes `tsa_iter: False`
            allowed = ">= 1 (a whole number)" if size else "an integer"
        elif kind is float:
            ok, allowed = is_int or isinstance(value, float), "a number"
        else:
            ok, allowed = isinstance(value, str), "a string"
        if not ok:
            raise ConfigError(f"{where}: {key} must be {allowed}, got {value!r}")


def _required_args(obj):
    fn = obj.__init__ if inspect.isclass(obj) else obj
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params
            if p.name != "self" and p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def deepcopy(cfg):
    return copy.deepcopy(cfg)

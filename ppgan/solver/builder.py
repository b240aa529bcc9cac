"""Optimizer and LR-scheduler registries and builders (PaddleGAN's config keys)."""
from ..utils.config import check_kwargs
from ..utils.errors import ConfigError
from ..utils.registry import Registry

OPTIMIZERS = Registry("optimizer")
LRSCHEDULERS = Registry("lr_scheduler")


def build_optimizer(cfg, parameters, learning_rate=None):
    """Build a torch optimizer from e.g. `{name: Adam, beta1: 0.5, clip_grad_norm: 1.0}`.

    `learning_rate` (usually the scheduler's) is used unless the optimizer config sets its own
    `learning_rate`. `net_names` is consumed by the model, not here. The returned optimizer
    carries `ppgan_clip` = ('norm' | 'value', threshold) or None.
    """
    cfg = {k: v for k, v in cfg.items() if k != "net_names"}
    fn = OPTIMIZERS.get(cfg.pop("name", None))
    lr = cfg.pop("learning_rate", learning_rate)
    if lr is None:
        raise ConfigError("no learning rate: set lr_scheduler.learning_rate or optimizer learning_rate")
    clip_norm, clip_value = cfg.pop("clip_grad_norm", None), cfg.pop("clip_grad_value", None)
    if clip_norm is not None and clip_value is not None:
        raise ConfigError("set only one of clip_grad_norm and clip_grad_value")
    check_kwargs(fn, dict(cfg, params=None, learning_rate=lr), where=f"optimizer {fn.__name__}")
    opt = fn(parameters, learning_rate=float(lr), **cfg)
    opt.ppgan_clip = ("norm", float(clip_norm)) if clip_norm is not None else \
        ("value", float(clip_value)) if clip_value is not None else None
    return opt


def build_lr_scheduler(cfg, optimizer, iters_per_epoch=1):
    """Wrap `optimizer` in a per-iteration LambdaLR following the schedule `cfg`.

    The schedule's `learning_rate` defines its shape; an optimizer with its own learning rate
    follows the same relative curve."""
    from torch.optim.lr_scheduler import LambdaLR

    cfg = dict(cfg)
    cls = LRSCHEDULERS.get(cfg.pop("name", None))
    if "iters_per_epoch" in cfg or "iters_per_epoch" in (getattr(cls, "NEEDS", ()) or ()):
        cfg["iters_per_epoch"] = iters_per_epoch  # PaddleGAN configs carry a placeholder
    check_kwargs(cls, cfg, where=f"lr_scheduler {cls.__name__}")
    return LambdaLR(optimizer, cls(**cfg))

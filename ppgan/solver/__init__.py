from . import lr_scheduler, optimizer  # noqa: F401  (fill the registries)
from .builder import LRSCHEDULERS, OPTIMIZERS, build_lr_scheduler, build_optimizer

__all__ = ["OPTIMIZERS", "LRSCHEDULERS", "build_optimizer", "build_lr_scheduler"]

"""Learning-rate schedules as functions of the iteration (PaddleGAN's names and arguments).

Each class is a picklable callable `factor(iteration) -> multiplier of the base learning
rate`, used through `torch.optim.lr_scheduler.LambdaLR` stepped once per iteration. Every
schedule takes `warmup_iters` (default 0) and `warmup_start_factor` (default 0.001): a linear
ramp from `warmup_start_factor` to the schedule's value over the first iterations.
"""
import math

from ..utils.errors import ConfigError
from .builder import LRSCHEDULERS


class _Schedule:
    def __init__(self, learning_rate, warmup_iters=0, warmup_start_factor=0.001):
        if learning_rate is None or float(learning_rate) <= 0:
            raise ConfigError(f"learning_rate must be > 0, got {learning_rate!r}")
        self.learning_rate = float(learning_rate)
        self.warmup_iters = int(warmup_iters)
        self.warmup_start_factor = float(warmup_start_factor)

    def lr(self, it):
        raise NotImplementedError

    def __call__(self, it):
        f = self.lr(it) / self.learning_rate
        if it < self.warmup_iters:
            f *= self.warmup_start_factor + (1 - self.warmup_start_factor) * it / self.warmup_iters
        return f


@LRSCHEDULERS.register("ConstantLR")
class Constant(_Schedule):
    def lr(self, it):
        return self.learning_rate


@LRSCHEDULERS.register()
class LinearDecay(_Schedule):
    """Constant for `start_epoch` epochs, then linear decay over `decay_epochs` (PaddleGAN /
    CycleGAN): lr * (1 - max(0, epoch + 1 - start_epoch) / (decay_epochs + 1)).
    `iters_per_epoch` is filled in by the trainer from the data loader."""

    NEEDS = ("iters_per_epoch",)

    def __init__(self, learning_rate, start_epoch, decay_epochs, iters_per_epoch=1, **kw):
        super().__init__(learning_rate, **kw)
        self.start_epoch, self.decay_epochs = int(start_epoch), int(decay_epochs)
        self.iters_per_epoch = max(1, int(iters_per_epoch))

    def lr(self, it):
        epoch = it // self.iters_per_epoch
        return self.learning_rate * max(0.0, 1.0 - max(0, epoch + 1 - self.start_epoch) / float(self.decay_epochs + 1))


@LRSCHEDULERS.register()
class MultiStepDecay(_Schedule):
    """lr * gamma ** (number of milestones <= iteration)."""

    def __init__(self, learning_rate, milestones, gamma=0.1, **kw):
        super().__init__(learning_rate, **kw)
        self.milestones, self.gamma = sorted(int(m) for m in milestones), float(gamma)

    def lr(self, it):
        return self.learning_rate * self.gamma ** sum(1 for m in self.milestones if it >= m)


@LRSCHEDULERS.register("CosineAnnealingLR")
class CosineAnnealingDecay(_Schedule):
    """Cosine from lr to eta_min over T_max iterations, then eta_min."""

    def __init__(self, learning_rate, T_max, eta_min=0.0, **kw):
        super().__init__(learning_rate, **kw)
        self.T_max, self.eta_min = int(T_max), float(eta_min)

    def lr(self, it):
        t = min(it, self.T_max) / max(1, self.T_max)
        return self.eta_min + (self.learning_rate - self.eta_min) * 0.5 * (1 + math.cos(math.pi * t))


@LRSCHEDULERS.register()
class CosineAnnealingRestartLR(_Schedule):
    """Cosine cycles of `periods` iterations, restarting at lr * restart_weights[i] (BasicSR)."""

    def __init__(self, learning_rate, periods, restart_weights=(1,), eta_min=0.0, **kw):
        super().__init__(learning_rate, **kw)
        if len(periods) != len(restart_weights):
            raise ConfigError("periods and restart_weights must have the same length")
        self.periods, self.restart_weights = [int(p) for p in periods], [float(w) for w in restart_weights]
        self.eta_min = float(eta_min)

    def lr(self, it):
        start = 0
        for period, weight in zip(self.periods, self.restart_weights):
            if it < start + period:
                t = (it - start) / period
                return self.eta_min + weight * 0.5 * (self.learning_rate - self.eta_min) * (1 + math.cos(math.pi * t))
            start += period
        return self.eta_min


@LRSCHEDULERS.register()
class NonLinearDecay(_Schedule):
    """lr / (1 + lr_decay * iteration)."""

    def __init__(self, learning_rate, lr_decay, **kw):
        super().__init__(learning_rate, **kw)
        self.lr_decay = float(lr_decay)

    def lr(self, it):
        return self.learning_rate / (1.0 + self.lr_decay * it)

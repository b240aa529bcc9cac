"""Optimizers (PaddleGAN argument names, gradient clipping) and LR schedules."""
import math

import pytest
import torch

from ppgan.models.base_model import BaseModel
from ppgan.solver import build_lr_scheduler, build_optimizer
from ppgan.utils.errors import ConfigError


def _lrs(sched_cfg, n, ipe=1):
    p = [torch.nn.Parameter(torch.zeros(1))]
    opt = build_optimizer({"name": "SGD"}, p, sched_cfg["learning_rate"])
    sched = build_lr_scheduler(sched_cfg, opt, iters_per_epoch=ipe)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_schedules():
    assert _lrs({"name": "MultiStepDecay", "learning_rate": 1.0, "milestones": [2, 4], "gamma": 0.5}, 6) == \
        [1, 1, 0.5, 0.5, 0.25, 0.25]
    lin = _lrs({"name": "LinearDecay", "learning_rate": 1.0, "start_epoch": 1, "decay_epochs": 3,
                "iters_per_epoch": 1}, 8, ipe=2)
    assert lin == pytest.approx([1, 1, 0.75, 0.75, 0.5, 0.5, 0.25, 0.25])
    cos = _lrs({"name": "CosineAnnealingDecay", "learning_rate": 1.0, "T_max": 4, "eta_min": 0.0}, 6)
    assert cos == pytest.approx([1, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4)), 0, 0])
    rst = _lrs({"name": "CosineAnnealingRestartLR", "learning_rate": 1.0, "periods": [2, 2],
                "restart_weights": [1, 0.5]}, 4)
    assert rst == pytest.approx([1, 0.5, 0.5, 0.25])
    warm = _lrs({"name": "ConstantLR", "learning_rate": 1.0, "warmup_iters": 4, "warmup_start_factor": 0.0}, 6)
    assert warm == pytest.approx([0, 0.25, 0.5, 0.75, 1, 1])


def test_optimizer_names_and_arguments():
    p = [torch.nn.Parameter(torch.zeros(2))]
    adam = build_optimizer({"name": "Adam", "beta1": 0.5, "beta2": 0.99, "net_names": ["netG"]}, p, 1e-3)
    assert adam.param_groups[0]["betas"] == (0.5, 0.99) and adam.param_groups[0]["lr"] == 1e-3
    assert isinstance(build_optimizer({"name": "AdamW"}, p, 1e-3), torch.optim.AdamW)
    rms = build_optimizer({"name": "RMSProp", "learning_rate": 8e-4, "rho": 0.9}, p, None)
    assert isinstance(rms, torch.optim.RMSprop) and rms.param_groups[0]["lr"] == 8e-4
    assert isinstance(build_optimizer({"name": "SGD", "momentum": 0.9}, p, 0.1), torch.optim.SGD)
    with pytest.raises(ConfigError, match="did you mean beta1"):
        build_optimizer({"name": "Adam", "betaa1": 0.5}, p, 1e-3)
    with pytest.raises(ConfigError, match="no learning rate"):
        build_optimizer({"name": "Adam"}, p, None)


@pytest.mark.parametrize("kind, value", [("clip_grad_norm", 1.0), ("clip_grad_value", 0.1)])
def test_gradient_clipping(kind, value):
    w = torch.nn.Parameter(torch.zeros(4))
    opt = build_optimizer({"name": "SGD", kind: value}, [w], 1.0)
    w.grad = torch.tensor([3.0, -4.0, 0.05, 0.0])
    BaseModel().optimizer_step(opt)
    step = -w.detach()
    if kind == "clip_grad_norm":
        assert step.norm().item() == pytest.approx(1.0, rel=1e-5)
    else:
        assert torch.allclose(step, torch.tensor([0.1, -0.1, 0.05, 0.0]))


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("beta1, beta2", [(0, 0.99), (0, 0.9), (0.5, 0.999)])
def test_integer_betas_from_yaml_are_accepted(name, beta1, beta2):
    """StyleGAN2 configs write `beta1: 0` (an int in YAML); torch wants floats."""
    from ppgan.solver import build_optimizer

    p = torch.nn.Parameter(torch.zeros(3))
    opt = build_optimizer({"name": name, "beta1": beta1, "beta2": beta2}, [p], learning_rate=1e-3)
    assert opt.param_groups[0]["betas"] == (float(beta1), float(beta2))

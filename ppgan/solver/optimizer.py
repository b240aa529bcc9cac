"""Optimizers with PaddleGAN's argument names (beta1/beta2/epsilon/weight_decay).

Adam and AdamW use PyTorch's fused kernels where every parameter allows it (`fused: auto`):
one kernel per step instead of a loop, the step counters stay on the device (the unfused
path reads each one with `.item()`), and an fp16 GradScaler can skip a step without waiting
for the GPU. Set `fused: false` in the optimizer config for the classic implementation.
"""
import torch

from .builder import OPTIMIZERS

FUSED_DEVICES = ("cpu", "cuda")


def _fused(params, fused):
    """(params as a list, whether to use the fused kernel) for `fused` True | False | None/'auto'."""
    params = list(params)
    if fused in (None, "auto"):
        tensors = [p for g in params for p in (g["params"] if isinstance(g, dict) else [g])]
        fused = bool(tensors) and all(p.is_floating_point() and p.device.type in FUSED_DEVICES for p in tensors)
    return params, bool(fused)


@OPTIMIZERS.register()
def Adam(params, learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.0, amsgrad=False,
         fused="auto"):
    params, fused = _fused(params, fused)
    return torch.optim.Adam(params, lr=learning_rate, betas=(float(beta1), float(beta2)), eps=epsilon,
                            weight_decay=weight_decay or 0.0, amsgrad=amsgrad, fused=fused or None)


@OPTIMIZERS.register()
def AdamW(params, learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.01, amsgrad=False,
          fused="auto"):
    params, fused = _fused(params, fused)
    return torch.optim.AdamW(params, lr=learning_rate, betas=(float(beta1), float(beta2)), eps=epsilon,
                             weight_decay=weight_decay, amsgrad=amsgrad, fused=fused or None)


@OPTIMIZERS.register("RMSProp")
def RMSprop(params, learning_rate, rho=0.9, epsilon=1e-7, momentum=0.0, centered=False, weight_decay=0.0):
    """`rho` is the decay of the squared-gradient average (PyTorch's alpha); defaults as Keras'."""
    return torch.optim.RMSprop(params, lr=learning_rate, alpha=rho, eps=epsilon, momentum=momentum,
                               centered=centered, weight_decay=weight_decay)


@OPTIMIZERS.register("Momentum")
def SGD(params, learning_rate, momentum=0.0, nesterov=False, weight_decay=0.0, use_nesterov=None):
    nesterov = nesterov if use_nesterov is None else use_nesterov
    return torch.optim.SGD(params, lr=learning_rate, momentum=momentum, nesterov=nesterov,
                           weight_decay=weight_decay)

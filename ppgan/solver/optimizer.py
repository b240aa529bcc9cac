"""Optimizers with PaddleGAN's argument names (beta1/beta2/epsilon/weight_decay)."""
import torch

from .builder import OPTIMIZERS


@OPTIMIZERS.register()
def Adam(params, learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.0, amsgrad=False):
    return torch.optim.Adam(params, lr=learning_rate, betas=(beta1, beta2), eps=epsilon,
                            weight_decay=weight_decay or 0.0, amsgrad=amsgrad)


@OPTIMIZERS.register()
def AdamW(params, learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.01, amsgrad=False):
    return torch.optim.AdamW(params, lr=learning_rate, betas=(beta1, beta2), eps=epsilon,
                             weight_decay=weight_decay, amsgrad=amsgrad)


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

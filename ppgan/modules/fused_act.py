"""Bias + leaky ReLU + gain ("fused_lrelu" of StyleGAN2) in plain PyTorch.

StyleGAN2 (Karras et al., 2020, https://arxiv.org/abs/1912.04958) fuses these three steps in a
CUDA kernel; PaddleGAN's `ppgan/modules/fused_act.py` (after rosinality/stylegan2-pytorch) writes
them as ordinary ops, as here. The sqrt(2) gain keeps the activations' second moment at 1 for
the equalised-learning-rate layers (He et al. gain for leaky ReLU with slope 0.2, rounded).
"""
import torch
import torch.nn.functional as F
from torch import nn


def fused_leaky_relu(input, bias=None, negative_slope=0.2, scale=2 ** 0.5):
    """leaky_relu(input + bias, negative_slope) * scale.

    Args:
        input (Tensor): [N, C, ...].
        bias (Tensor | None): [C], added per channel (dim 1).
        negative_slope (float): leaky ReLU slope (default 0.2).
        scale (float): output gain (default sqrt(2)).
    """
    if bias is not None:
        input = input + bias.reshape(1, bias.shape[0], *([1] * (input.ndim - 2)))
    return F.leaky_relu(input, negative_slope=negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    """`fused_leaky_relu` with a learnt per-channel bias (PaddleGAN name `<...>.activate.bias`).

    Args:
        channel (int): number of channels (bias size).
        bias (bool): learn a bias, initialised to 0 (default True).
        negative_slope (float): leaky ReLU slope (default 0.2).
        scale (float): output gain (default sqrt(2)).
    """

    def __init__(self, channel, bias=True, negative_slope=0.2, scale=2 ** 0.5):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel)) if bias else None
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, input):
        return fused_leaky_relu(input, self.bias, self.negative_slope, self.scale)


"""Layers with an equalised learning rate (Karras et al., "Progressive Growing of GANs",
ICLR 2018, https://arxiv.org/abs/1710.10196, section 4.1): weights are drawn from N(0, 1) and
scaled by 1/sqrt(fan_in) at run time, so Adam's per-parameter step sizes are the same for every
layer. Names and arguments follow PaddleGAN's `ppgan/modules/equalized.py` (after
rosinality/stylegan2-pytorch), so its StyleGAN2 `.pdparams` load by name.

Layout: `EqualLinear.weight` is stored PyTorch-style, [out_dim, in_dim]. PaddleGAN stores it
[in_dim, out_dim] (it calls `F.linear(x, W)`, i.e. x @ W); the class sets `paddle_linear_layout`
so `ppgan.weights.pdparams` transposes it on import like any Paddle `nn.Linear`.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.errors import ConfigError
from .fused_act import fused_leaky_relu


class EqualConv2D(nn.Module):
    """Conv2d with an equalised learning rate: conv(x, weight / sqrt(in * k * k)) + bias.

    Args:
        in_channel (int): input channels.
        out_channel (int): output channels.
        kernel_size (int): square kernel size.
        stride (int): stride (default 1).
        padding (int): zero padding (default 0).
        bias (bool): learn a bias, initialised to 0 (default True).
    """

    def __init__(self, in_channel, out_channel, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channel * kernel_size * kernel_size)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_channel)) if bias else None

    def forward(self, input):
        return F.conv2d(input, self.weight * self.scale, bias=self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self):
        o, i, k, _ = self.weight.shape
        return f"{i}, {o}, {k}, stride={self.stride}, padding={self.padding}"


class EqualLinear(nn.Module):
    """Linear layer with an equalised learning rate and a learning-rate multiplier.

    y = x @ (weight * lr_mul / sqrt(in_dim))^T + bias * lr_mul, then, with
    `activation='fused_lrelu'`, leaky_relu(y, 0.2) * sqrt(2) (the bias is added before it).
    The weight is initialised N(0, 1) / lr_mul and the bias to `bias_init` (StyleGAN2's mapping
    network uses lr_mul 0.01, so its parameters move 100x slower at the same Adam step).

    Args:
        in_dim (int): input features.
        out_dim (int): output features.
        bias (bool): learn a bias (default True).
        bias_init (float): initial bias value (default 0; 1 for the style modulation layers).
        lr_mul (float): learning-rate multiplier (default 1).
        activation (str | None): None (linear) or 'fused_lrelu'.
    Shape: [..., in_dim] -> [..., out_dim].
    """

    paddle_linear_layout = True  # PaddleGAN stores `weight` as [in_dim, out_dim]: transposed on import

    def __init__(self, in_dim, out_dim, bias=True, bias_init=0, lr_mul=1, activation=None):
        super().__init__()
        if activation not in (None, False, "fused_lrelu"):
            raise ConfigError(f"EqualLinear activation must be None or 'fused_lrelu', got {activation!r}")
        if lr_mul <= 0:
            raise ConfigError(f"EqualLinear lr_mul must be > 0, got {lr_mul}")
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.activation = activation or None
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, input):
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            return fused_leaky_relu(F.linear(input, self.weight * self.scale), bias)
        return F.linear(input, self.weight * self.scale, bias=bias)

    def extra_repr(self):
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, lr_mul={self.lr_mul}, activation={self.activation}"


EqualConv2d = EqualConv2D  # PyTorch spelling (rosinality/stylegan2-pytorch)

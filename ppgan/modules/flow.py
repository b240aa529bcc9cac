"""Optical-flow blocks shared by the video SR nets (BasicVSR, IconVSR, BasicVSR++, MSVSR).

`flow_warp` samples a tensor at pixel positions displaced by a flow field. `SPyNet` is the
pyramid flow network: Ranjan & Black, "Optical Flow Estimation using a Spatial Pyramid Network",
CVPR 2017, https://arxiv.org/abs/1611.00850, in the six-level, BN-free variant of mmediting /
BasicSR (`basicsr/archs/spynet_arch.py`) used by PaddleGAN `ppgan/models/generators/basicvsr.py`.
Names follow PaddleGAN (`basic_module<k>.conv<i>`, buffers `mean` / `std`) so `.pdparams` load.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.errors import ConfigError
from .sr_blocks import paddle_default_init_


def flow_warp(x, flow, interpolation="bilinear", padding_mode="zeros", align_corners=True):
    """Warp `x` by `flow`: out[..., i, j] = x sampled at (j + flow[i, j, 0], i + flow[i, j, 1]).

    Args:
        x (Tensor): [N, C, H, W].
        flow (Tensor): [N, H, W, 2], pixel displacements (x, y), not normalised.
        interpolation (str): 'bilinear' (default) or 'nearest'.
        padding_mode (str): 'zeros' (default), 'border' or 'reflection'.
        align_corners (bool): passed to `grid_sample` (default True). Positions are always
            normalised as 2 * p / max(size - 1, 1) - 1, as in PaddleGAN / BasicSR.
    Returns:
        Tensor: [N, C, H, W].
    """
    n, _, h, w = x.shape
    if flow.ndim != 4 or flow.shape[0] != n or tuple(flow.shape[1:]) != (h, w, 2):
        raise ConfigError(f"flow must be [N={n}, H={h}, W={w}, 2] to warp x {tuple(x.shape)}, "
                         f"got {tuple(flow.shape)}")
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device, dtype=flow.dtype),
                            torch.arange(w, device=x.device, dtype=flow.dtype), indexing="ij")
    px = gx + flow[..., 0]                                                     # [N, H, W]
    py = gy + flow[..., 1]
    grid = torch.stack((2.0 * px / max(w - 1, 1) - 1.0, 2.0 * py / max(h - 1, 1) - 1.0), dim=3)
    return F.grid_sample(x, grid.to(x.dtype), mode=interpolation, padding_mode=padding_mode,
                         align_corners=align_corners)


class SPyNetBasicModule(nn.Module):
    """One pyramid level: five 7x7 convs (8-32-64-32-16-2) with ReLU between.

    Input [N, 8, H, W] = [reference (3), warped neighbour (3), upsampled flow (2)];
    output [N, 2, H, W], the flow residual.
    """

    def __init__(self):
        super().__init__()
        chans = (8, 32, 64, 32, 16, 2)
        for i in range(5):
            setattr(self, f"conv{i + 1}", paddle_default_init_(nn.Conv2d(chans[i], chans[i + 1], 7, 1, 3)))
        self.relu = nn.ReLU()

    def forward(self, tensor_input):
        out = self.relu(self.conv1(tensor_input))
        out = self.relu(self.conv2(out))
        out = self.relu(self.conv3(out))
        out = self.relu(self.conv4(out))
        return self.conv5(out)


class SPyNet(nn.Module):
    """SPyNet: flow from `ref` to `supp`, both [N, 3, H, W] RGB in [0, 1] -> [N, 2 (x, y), H, W].

    Inputs are resized (bilinear) to multiples of 32, normalised with the `mean` / `std` buffers
    (ImageNet by default; they are part of the state dict, so a checkpoint's values win), and
    refined coarse to fine over six levels (1/32 .. 1/1). The flow is resized back and rescaled.
    Weights are not downloaded here: load a checkpoint (PaddleGAN's BasicVSR weights hold
    `spynet.*`; standalone `spynet.pdparams`) with `ppgan.weights`.
    """

    LEVELS = 6

    def __init__(self):
        super().__init__()
        for k in range(self.LEVELS):
            setattr(self, f"basic_module{k}", SPyNetBasicModule())
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1))

    def level_module(self, level):
        """The flow-refining net of pyramid level `level` (0: coarsest)."""
        return getattr(self, f"basic_module{level}")

    def compute_flow(self, ref, supp):
        """Flow for inputs already sized to multiples of 32: [N, 3, H, W] x 2 -> [N, 2, H, W]."""
        n, _, h, w = ref.shape
        ref = [(ref - self.mean) / self.std]
        supp = [(supp - self.mean) / self.std]
        for _ in range(self.LEVELS - 1):
            ref.append(F.avg_pool2d(ref[-1], kernel_size=2, stride=2))
            supp.append(F.avg_pool2d(supp[-1], kernel_size=2, stride=2))
        ref, supp = ref[::-1], supp[::-1]  # coarse to fine

        flow = ref[0].new_zeros(n, 2, h >> (self.LEVELS - 1), w >> (self.LEVELS - 1))
        for level in range(self.LEVELS):
            if level == 0:
                flow_up = flow
            else:  # twice the size, so twice the displacement
                flow_up = F.interpolate(flow, scale_factor=2, mode="bilinear", align_corners=True) * 2.0
            warped = flow_warp(supp[level], flow_up.permute(0, 2, 3, 1), padding_mode="border")
            flow = flow_up + self.level_module(level)(torch.cat([ref[level], warped, flow_up], 1))
        return flow

    def forward(self, ref, supp):
        """ref, supp: [N, 3, H, W] -> flow [N, 2, H, W] (channel 0: x, channel 1: y)."""
        if ref.shape != supp.shape or ref.ndim != 4 or ref.shape[1] != 3:
            raise ConfigError(f"SPyNet needs ref and supp of the same shape [N, 3, H, W], got "
                             f"{tuple(ref.shape)} and {tuple(supp.shape)}")
        h, w = ref.shape[2:]
        h_up, w_up = 32 * math.ceil(h / 32), 32 * math.ceil(w / 32)
        ref = F.interpolate(ref, size=(h_up, w_up), mode="bilinear", align_corners=False)
        supp = F.interpolate(supp, size=(h_up, w_up), mode="bilinear", align_corners=False)
        flow = F.interpolate(self.compute_flow(ref, supp), size=(h, w), mode="bilinear",
                             align_corners=False)
        scale = flow.new_tensor([w / w_up, h / h_up]).reshape(1, 2, 1, 1)
        return flow * scale

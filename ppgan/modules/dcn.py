"""Modulated deformable convolution (DCNv2) in pure PyTorch, with torchvision as a fast path.

Papers: Dai et al., "Deformable Convolutional Networks", ICCV 2017, https://arxiv.org/abs/1703.06211;
Zhu et al., "Deformable ConvNets v2: More Deformable, Better Results", CVPR 2019,
https://arxiv.org/abs/1811.11168.
Reference semantics: `paddle.vision.ops.deform_conv2d` (what PaddleGAN's EDVR / BasicVSR++ call) and
`torchvision.ops.deform_conv2d`; both agree, and so does this file:

  * `offset` is [N, 2 * dg * kh * kw, Ho, Wo]; for deformable group g and kernel tap
    k = ky * kw + kx, channel g * 2K + 2k holds dy and g * 2K + 2k + 1 holds dx (interleaved y, x).
  * `mask` is [N, dg * kh * kw, Ho, Wo], channel g * K + k (None: all ones, i.e. DCNv1).
  * Deformable group g covers input channels [g * C / dg, (g + 1) * C / dg).
  * Tap k of output (i, j) samples the input bilinearly at
    (i * stride_h - pad_h + ky * dil_h + dy, j * stride_w - pad_w + kx * dil_w + dx);
    corners outside the image contribute 0 (so a point outside (-1, H) x (-1, W) gives 0).

`deform_conv2d(..., impl='torch')` samples with `F.grid_sample` and multiplies by the weights a few
kernel taps at a time, accumulating `weight[:, :, taps] @ samples`: small maps take all taps in one
matmul, large ones never hold more than ~64 MiB of sampled columns (EDVR on full video frames).
`impl='torchvision'` calls `torchvision.ops.deform_conv2d`; `impl='auto'` uses it when torchvision
imports and the pure path otherwise.

Half precision (under `torch.autocast`, or with fp16/bf16 inputs and weights): the sampling
coordinates and the bilinear sampling stay in float32 (in fp16 the pixel grid is 0.25 px apart
between 256 and 512, in bf16 2 px), the sampled columns are written once in the compute dtype and
the weight @ columns matmul runs in it; the output is in the compute dtype. torchvision's kernel
computes coordinates in its input dtype, so under half precision it is run in float32 and its
output cast (what torchvision's own autocast rule does). Autocast's own casts are not relied on:
it would compute the coordinates from half-precision offsets in half precision.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

from .precision import compute_dtype, coordinate_dtype

try:  # optional fast path; remember why it is missing instead of failing later with a NameError
    from torchvision.ops import deform_conv2d as _tv_deform_conv2d
    TORCHVISION_AVAILABLE = True
    _TV_IMPORT_ERROR = None
except Exception as e:  # noqa: BLE001 - a broken torchvision install raises more than ImportError
    _tv_deform_conv2d = None
    TORCHVISION_AVAILABLE = False
    _TV_IMPORT_ERROR = e

IMPLS = ("auto", "torch", "torchvision")
_COLUMN_BUDGET = 1 << 24  # elements of sampled input held at once by the pure path (64 MiB float32)


def _check_impl(impl):
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl == "torchvision" and not TORCHVISION_AVAILABLE:
        raise RuntimeError(f"impl='torchvision' but torchvision does not import: {_TV_IMPORT_ERROR!r}")


def deform_conv2d(input, offset, weight, bias=None, stride=1, padding=0, dilation=1, mask=None,
                  impl="auto"):
    """Modulated deformable 2-D convolution (argument order of `torchvision.ops.deform_conv2d`).

    Args:
        input (Tensor): [N, C, H, W].
        offset (Tensor): [N, 2 * dg * kh * kw, Ho, Wo], (dy, dx) pairs per tap per deformable group
            (layout in the module docstring); dg is inferred from the channel count.
        weight (Tensor): [O, C / groups, kh, kw]; groups is inferred as C / weight.shape[1].
        bias (Tensor | None): [O].
        stride, padding, dilation (int | tuple[int, int]): as in `F.conv2d`.
        mask (Tensor | None): [N, dg * kh * kw, Ho, Wo] modulation (usually sigmoid outputs);
            None means all ones.
        impl (str): 'auto' (torchvision when it imports), 'torch' or 'torchvision'.
    Returns:
        Tensor: [N, O, Ho, Wo].
    """
    _check_impl(impl)
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    n, c, h, w = input.shape
    out_c, c_per_group, kh, kw = weight.shape
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    taps = kh * kw
    if c % c_per_group or out_c % (c // c_per_group):
        raise ValueError(f"weight {tuple(weight.shape)} does not fit {c} input channels in whole groups")
    if offset.ndim != 4 or offset.shape[0] != n or offset.shape[1] % (2 * taps) or offset.shape[1] == 0:
        raise ValueError(f"offset must be [N={n}, 2*dg*{taps}, Ho, Wo], got {tuple(offset.shape)}")
    dg = offset.shape[1] // (2 * taps)
    if c % dg:
        raise ValueError(f"{c} input channels are not divisible by {dg} deformable groups")
    if tuple(offset.shape[2:]) != (ho, wo):
        raise ValueError(f"offset spatial size {tuple(offset.shape[2:])} != output size {(ho, wo)}")
    if mask is not None and tuple(mask.shape) != (n, dg * taps, ho, wo):
        raise ValueError(f"mask must be {(n, dg * taps, ho, wo)}, got {tuple(mask.shape)}")

    cdt = compute_dtype(input)
    use_tv = impl == "torchvision" or (impl == "auto" and TORCHVISION_AVAILABLE)
    if cdt in (torch.float32, torch.float64) and not torch.is_autocast_enabled(input.device.type):
        if use_tv:
            return _tv_deform_conv2d(input, offset, weight, bias, stride=stride, padding=padding,
                                     dilation=dilation, mask=mask)
        return _deform_conv2d_torch(input, offset, weight, bias, stride, padding, dilation, mask, dg,
                                    (ho, wo), cdt)
    # Half precision (autocast, or a net cast to fp16/bf16): dtypes chosen here, not by autocast,
    # whose casts would otherwise leave the sampling coordinates in half precision.
    with torch.autocast(input.device.type, enabled=False):
        if use_tv:
            # torchvision's kernel computes the sampling coordinates in its input dtype (0.25 px
            # apart at 256..512 in fp16; no bf16 kernel): run it in fp32, as its own autocast rule
            # does, and hand back the compute dtype.
            f32 = [None if t is None else t.float() for t in (input, offset, weight, bias, mask)]
            return _tv_deform_conv2d(f32[0], f32[1], f32[2], f32[3], stride=stride, padding=padding,
                                     dilation=dilation, mask=f32[4]).to(cdt)
        return _deform_conv2d_torch(input, offset, weight, bias, stride, padding, dilation, mask, dg,
                                    (ho, wo), cdt)


def _deform_conv2d_torch(x, offset, weight, bias, stride, padding, dilation, mask, dg, out_size, cdt):
    """The pure path. Sampling coordinates, bilinear sampling and the mask product are in
    `coordinate_dtype(cdt)` (float32 for half precision: `grid_sample` computes its source index in
    the grid's dtype, and grid and input must share it); the sampled columns are written once in the
    compute dtype `cdt`, and the big weight @ columns matmul runs in `cdt`. Returns [N, O, Ho, Wo] in
    `cdt`. Called with autocast off."""
    n, c, h, w = x.shape
    out_c, c_per_group, kh, kw = weight.shape
    groups = c // c_per_group
    ho, wo = out_size
    taps, cg = kh * kw, c // dg
    sdt = coordinate_dtype(cdt)  # sampling dtype

    # One zero row/column around the image: `grid_sample(align_corners=True)` then maps padded
    # pixel p to 2p / (size + 1) - 1 for any H, W >= 1, and points in (-1, 0) or (H - 1, H) blend
    # with zeros exactly as the DCN rule says. Beyond that, zeros padding gives 0.
    xp = F.pad(x.to(sdt), (1, 1, 1, 1)).reshape(n * dg, cg, h + 2, w + 2)

    # Sampling positions, in padded pixel coordinates:
    # [1, 1, K, Ho, 1] + [N, dg, K, Ho, Wo]  (y);  [1, 1, K, 1, Wo] + [N, dg, K, Ho, Wo]  (x)
    f = dict(device=x.device, dtype=sdt)
    ky = (torch.arange(kh, **f) * dilation[0]).repeat_interleave(kw)        # [K]
    kx = (torch.arange(kw, **f) * dilation[1]).repeat(kh)                   # [K]
    oy = torch.arange(ho, **f) * stride[0] - padding[0] + 1                 # [Ho]  (+1: pad)
    ox = torch.arange(wo, **f) * stride[1] - padding[1] + 1                 # [Wo]
    off = offset.to(sdt).reshape(n, dg, taps, 2, ho, wo)
    py = (ky[:, None, None] + oy[None, :, None]) + off[:, :, :, 0]          # [N, dg, K, Ho, Wo]
    px = (kx[:, None, None] + ox[None, None, :]) + off[:, :, :, 1]
    grid = torch.stack((px * (2.0 / (w + 1)) - 1.0, py * (2.0 / (h + 1)) - 1.0), dim=-1)
    grid = grid.reshape(n * dg, taps, ho, wo, 2)
    if mask is not None:
        mask = mask.to(sdt).reshape(n, dg, 1, taps, ho * wo)

    # out[n, o] = sum_k weight[o, :, k] @ (mask_k * sample_k), a few taps per matmul: as many as
    # keep the sampled columns under _COLUMN_BUDGET elements (all nine for small maps).
    w_taps = weight.to(cdt).reshape(groups, out_c // groups, c_per_group, taps)   # [G, O/G, C/G, K]
    chunk = max(1, min(taps, _COLUMN_BUDGET // max(1, n * c * ho * wo)))
    out = None
    for k0 in range(0, taps, chunk):
        kc = min(chunk, taps - k0)
        g = grid[:, k0:k0 + kc].reshape(n * dg, kc * ho, wo, 2)
        s = F.grid_sample(xp, g, mode="bilinear", padding_mode="zeros", align_corners=True)
        s = s.reshape(n, dg, cg, kc, ho * wo)                                 # [N, dg, C/dg, kc, L]
        if mask is not None:
            m = mask[:, :, :, k0:k0 + kc]
            if cdt == sdt or torch.is_grad_enabled():  # (out= does not differentiate)
                s = (s * m).to(cdt)
            else:  # product in the sampling dtype, written once in cdt
                s = torch.mul(s, m, out=torch.empty(s.shape, dtype=cdt, device=s.device))
        else:
            s = s.to(cdt)
        s = s.reshape(n, groups, c_per_group * kc, ho * wo)                   # [N, G, C/G * kc, L]
        wk = w_taps[..., k0:k0 + kc].reshape(groups, out_c // groups, c_per_group * kc)
        y = torch.matmul(wk, s)                                               # [N, G, O/G, L]
        out = y if out is None else out.add_(y)
    out = out.reshape(n, out_c, ho, wo)
    if bias is not None:
        out = out + bias.to(cdt).reshape(1, -1, 1, 1)
    return out


class ModulatedDeformConv2d(nn.Module):
    """Modulated deformable conv layer holding `weight` [O, C / groups, kh, kw] and `bias` [O].

    Parameter names and default init are those of Paddle's `paddle.vision.ops.DeformConv2D`
    (weight ~ N(0, sqrt(2 / (kh * kw * C))), bias 0), so PaddleGAN `.pdparams` load by name.
    Offsets and mask come from the caller: `forward(x, offset, mask=None)`.

    Args:
        in_channels (int): input channels C.
        out_channels (int): output channels O.
        kernel_size (int | tuple[int, int]): kernel size.
        stride, padding, dilation (int | tuple[int, int]): as in `nn.Conv2d` (defaults 1, 0, 1).
        deformable_groups (int): offset groups dg; C must be divisible by it (default 1).
        groups (int): ordinary conv groups (default 1).
        bias (bool): learn a bias (default True).
        impl (str): 'auto' | 'torch' | 'torchvision', see `deform_conv2d` (default 'auto').
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 deformable_groups=1, groups=1, bias=True, impl="auto"):
        super().__init__()
        _check_impl(impl)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels {in_channels} and out_channels {out_channels} must be "
                             f"divisible by groups {groups}")
        if in_channels % deformable_groups:
            raise ValueError(f"in_channels {in_channels} must be divisible by deformable_groups "
                             f"{deformable_groups}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        self.deformable_groups, self.groups, self.impl = deformable_groups, groups, impl
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]  # Paddle ignores groups
        nn.init.normal_(self.weight, 0.0, math.sqrt(2.0 / fan_in))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x, offset, mask=None):
        """x: [N, C, H, W]; offset: [N, 2*dg*kh*kw, Ho, Wo]; mask: [N, dg*kh*kw, Ho, Wo] -> [N, O, Ho, Wo]."""
        dg_channels = 2 * self.deformable_groups * self.kernel_size[0] * self.kernel_size[1]
        if offset.shape[1] != dg_channels:
            raise ValueError(f"offset needs {dg_channels} channels for deformable_groups="
                             f"{self.deformable_groups}, got {offset.shape[1]}")
        return deform_conv2d(x, offset, self.weight, self.bias, self.stride, self.padding,
                             self.dilation, mask=mask, impl=self.impl)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"deformable_groups={self.deformable_groups}, groups={self.groups}, impl={self.impl!r}")

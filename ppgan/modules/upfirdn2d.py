"""upfirdn2d (upsample, FIR filter, downsample) in pure PyTorch, and the StyleGAN2 resamplers.

`upfirdn2d` computes what NVIDIA's CUDA op of the same name computes (Karras et al., "Analyzing and
Improving the Image Quality of StyleGAN", CVPR 2020, https://arxiv.org/abs/1912.04958; reference
implementation: stylegan2-ada-pytorch `torch_utils/ops/upfirdn2d.py`, `_upfirdn2d_ref`) with
ordinary tensor ops, so it runs on CPU and CUDA without building an extension:

    1. upsample: insert `up - 1` zeros after every pixel,
    2. pad (negative values crop) by `pad`,
    3. convolve with `kernel` (a true convolution: the kernel is flipped, as PaddleGAN does),
    4. downsample: keep every `down`-th pixel.

Class names follow PaddleGAN's `ppgan/modules/upfirdn2d.py` (`Upfirdn2dUpsample`,
`Upfirdn2dDownsample`, `Upfirdn2dBlur`; `Upsample`, `Downsample`, `Blur` are the same classes):
the kernels of Upsample / Downsample are checkpoint buffers (`<...>.upsample.kernel`), Blur's is not.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ..utils.errors import ConfigError


def _pair4(pad):
    """(x0, x1, y0, y1) from PaddleGAN's (p0, p1) (both axes) or an explicit 4-tuple."""
    pad = tuple(int(p) for p in pad)
    if len(pad) == 2:
        return pad[0], pad[1], pad[0], pad[1]
    if len(pad) == 4:
        return pad
    raise ConfigError(f"upfirdn2d pad must have 2 or 4 values, got {len(pad)}")


def upfirdn2d(input, kernel, up=1, down=1, pad=(0, 0)):
    """Upsample, pad, FIR-filter and downsample a batch of images.

    Args:
        input (Tensor): [N, C, H, W].
        kernel (Tensor): [kh, kw] FIR filter (flipped before the convolution, i.e. a true
            convolution). Cast to the input's dtype and device.
        up (int | tuple): upsampling factor (x, y), >= 1.
        down (int | tuple): downsampling factor (x, y), >= 1.
        pad (tuple): (p0, p1) for both axes, as PaddleGAN, or (x0, x1, y0, y1); negative crops.
    Returns:
        Tensor: [N, C, (H*up_y + y0 + y1 - kh) // down_y + 1, (W*up_x + x0 + x1 - kw) // down_x + 1].
    """
    up_x, up_y = (up, up) if isinstance(up, int) else up
    down_x, down_y = (down, down) if isinstance(down, int) else down
    if min(up_x, up_y, down_x, down_y) < 1:
        raise ConfigError(f"upfirdn2d up/down factors must be >= 1, got up={up}, down={down}")
    x0, x1, y0, y1 = _pair4(pad)
    n, c, h, w = input.shape
    kh, kw = kernel.shape

    # 1. zero insertion: [N, C, H, 1, W, 1] padded to [N, C, H, up_y, W, up_x]
    out = input
    if up_x > 1 or up_y > 1:
        out = input.reshape(n, c, h, 1, w, 1)
        out = F.pad(out, [0, up_x - 1, 0, 0, 0, up_y - 1])
        out = out.reshape(n, c, h * up_y, w * up_x)
    # 2. pad, then crop where the padding is negative
    out = F.pad(out, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    out = out[:, :, max(-y0, 0): out.shape[2] - max(-y1, 0), max(-x0, 0): out.shape[3] - max(-x1, 0)]
    # 3 + 4. depthwise true convolution, keeping every down-th output (= conv with that stride)
    weight = torch.flip(kernel, [0, 1]).to(dtype=out.dtype, device=out.device)
    weight = weight[None, None].expand(c, 1, kh, kw)
    return F.conv2d(out, weight, stride=(down_y, down_x), groups=c)


def make_kernel(k):
    """A normalised 2-D FIR kernel from a 1-D (separable, outer product) or 2-D list / tensor."""
    k = torch.as_tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    if k.ndim != 2 or k.numel() == 0 or float(k.sum()) == 0:
        raise ConfigError(f"blur kernel must be a non-empty 1-D or 2-D list with a non-zero sum, got {k.tolist()}")
    return k / k.sum()


class Upfirdn2dUpsample(nn.Module):
    """2x (or `factor`x) upsampling with a FIR low-pass filter; output size H*factor.

    Args:
        kernel (list): 1-D or 2-D FIR taps, e.g. [1, 3, 3, 1]; normalised and scaled by factor^2.
        factor (int): upsampling factor (default 2).
    """

    def __init__(self, kernel, factor=2):
        super().__init__()
        self.factor = factor
        kernel = make_kernel(kernel) * (factor * factor)
        self.register_buffer("kernel", kernel)  # in PaddleGAN checkpoints
        p = kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, input):
        return upfirdn2d(input, self.kernel, up=self.factor, down=1, pad=self.pad)


class Upfirdn2dDownsample(nn.Module):
    """`factor`x downsampling after a FIR low-pass filter; output size H // factor.

    Args:
        kernel (list): 1-D or 2-D FIR taps, e.g. [1, 3, 3, 1] (normalised).
        factor (int): downsampling factor (default 2).
    """

    def __init__(self, kernel, factor=2):
        super().__init__()
        self.factor = factor
        kernel = make_kernel(kernel)
        self.register_buffer("kernel", kernel)  # in PaddleGAN checkpoints
        p = kernel.shape[0] - factor
        self.pad = ((p + 1) // 2, p // 2)

    def forward(self, input):
        return upfirdn2d(input, self.kernel, up=1, down=self.factor, pad=self.pad)


class Upfirdn2dBlur(nn.Module):
    """FIR blur with padding `pad` (no resampling); the kernel is not saved in checkpoints.

    Args:
        kernel (list): 1-D or 2-D FIR taps (normalised).
        pad (tuple): (p0, p1) on both axes.
        upsample_factor (int): scale the kernel by factor^2 when it follows a zero-inserting
            (transposed, stride-factor) convolution (default 1).
    """

    def __init__(self, kernel, pad, upsample_factor=1):
        super().__init__()
        kernel = make_kernel(kernel)
        if upsample_factor > 1:
            kernel = kernel * (upsample_factor * upsample_factor)
        self.register_buffer("kernel", kernel, persistent=False)  # PaddleGAN: persistable=False
        self.pad = tuple(pad)

    def forward(self, input):
        return upfirdn2d(input, self.kernel, pad=self.pad)


Upsample = Upfirdn2dUpsample
Downsample = Upfirdn2dDownsample
Blur = Upfirdn2dBlur

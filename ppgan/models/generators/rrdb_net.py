"""RRDBNet, the ESRGAN generator, PaddleGAN layout.

Paper: Wang et al., "ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks",
ECCV Workshops 2018, https://arxiv.org/abs/1809.00219 (x1/x2 by pixel-unshuffle: Wang et al.,
"Real-ESRGAN", ICCVW 2021, https://arxiv.org/abs/2107.10833).
Reference: https://github.com/xinntao/ESRGAN (`RRDBNet_arch.py`) and PaddleGAN
`ppgan/models/generators/rrdb_net.py`.

Attribute names are ESRGAN's original ones as used by PaddleGAN (`conv_first`,
`RRDB_trunk.<i>.RDB1.conv1`, `trunk_conv`, `upconv1`, `HRconv`, ...), not BasicSR's newer
`conv_body` / `body.<i>.rdb1`, so PaddleGAN `.pdparams` (ESRGAN, RealSR) load by name.
"""
import functools

import torch
import torch.nn.functional as F
from torch import nn

from ...modules.precision import compute_dtype
from ...modules.sr_blocks import make_layer, paddle_default_init_
from .builder import GENERATORS


class ResidualDenseBlock_5C(nn.Module):
    """Residual dense block: five 3x3 convs with dense connections; [N, nf, H, W] -> same.

    Args:
        nf (int): feature channels (default 64).
        gc (int): growth channels, output of conv1..conv4 (default 32).
        bias (bool): conv biases (default True).
    """

    def __init__(self, nf=64, gc=32, bias=True):
        super().__init__()
        self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1, bias=bias)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1, bias=bias)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1, bias=bias)
        self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1, bias=bias)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1, bias=bias)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2)

    def forward(self, x):
        if not torch.is_grad_enabled() and x.is_contiguous():
            return self._forward_buffered(x)
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x  # residual scaling 0.2 (paper, sec. 3.1) keeps the deep trunk stable

    def _forward_buffered(self, x):
        """Inference without the four growing `torch.cat` copies: one preallocated
        [N, nf + 4gc, H, W] buffer, each conv's activation written once into its channel slice
        (the dense inputs are then prefixes of the buffer). Same numbers as `forward`.

        The buffer is in the dtype the convs compute in (`compute_dtype`: the autocast dtype under
        autocast, else x's), so no conv output is cast on its way in and no conv input on its way
        out; the result has `forward`'s dtype (the promotion of that dtype and x's)."""
        n, nf, h, w = x.shape
        gc = self.conv1.out_channels
        buf = torch.empty((n, nf + 4 * gc, h, w), dtype=compute_dtype(x), device=x.device)
        buf[:, :nf] = x
        for i, conv in enumerate((self.conv1, self.conv2, self.conv3, self.conv4)):
            c = nf + i * gc
            buf[:, c:c + gc] = F.leaky_relu(conv(buf[:, :c]), 0.2, inplace=True)
        out = self.conv5(buf).mul_(0.2)
        return out.add_(x) if out.dtype == x.dtype else out + x


class RRDB(nn.Module):
    """Residual-in-residual dense block: three RDBs and a 0.2-scaled skip; [N, nf, H, W] -> same.

    Args:
        nf (int): feature channels.
        gc (int): growth channels of each RDB (default 32).
    """

    def __init__(self, nf, gc=32):
        super().__init__()
        self.RDB1 = ResidualDenseBlock_5C(nf, gc)
        self.RDB2 = ResidualDenseBlock_5C(nf, gc)
        self.RDB3 = ResidualDenseBlock_5C(nf, gc)

    def forward(self, x):
        return self.RDB3(self.RDB2(self.RDB1(x))) * 0.2 + x


@GENERATORS.register()
class RRDBNet(nn.Module):
    """ESRGAN generator: [N, in_nc, H, W] -> [N, out_nc, 4H, 4W] (for every `scale`).

    The output is always 4x the trunk resolution; `scale` 2 and 1 first pixel-unshuffle the input
    by 2 and 4 (so H, W must be multiples of 2 resp. 4), giving 2x and 1x overall (Real-ESRGAN).
    Inputs are RGB in [0, 1]; the output is not clamped. Convs start from Paddle's default init.

    Args:
        in_nc (int): input channels.
        out_nc (int): output channels.
        nf (int): trunk feature channels.
        nb (int): number of RRDB blocks.
        gc (int): growth channels in each dense block (default 32).
        scale (int): overall upscaling factor: 4 (default), 2 or 1.
    """

    SUPPORTED_SCALES = (1, 2, 4)
    # Half-precision inference casts the whole net (`net.to(dtype)`, channels-last on CUDA) rather
    # than running it under autocast: only convs, LeakyReLU and nearest upsampling, nothing that
    # needs fp32, and autocast measured slower than fp32 on an H200 (ppgan.apps.base_predictor).
    half_mode = "direct"

    def __init__(self, in_nc, out_nc, nf, nb, gc=32, scale=4):
        super().__init__()
        if scale not in self.SUPPORTED_SCALES:
            raise ValueError(f"RRDBNet scale must be one of {self.SUPPORTED_SCALES}, got {scale!r}")
        self.scale = scale
        self.unshuffle = {4: 1, 2: 2, 1: 4}[scale]  # pixel-unshuffle factor before conv_first
        self.size_multiple = self.unshuffle  # H, W needed (see ppgan.utils.inference)

        self.conv_first = nn.Conv2d(in_nc * self.unshuffle ** 2, nf, 3, 1, 1)
        self.RRDB_trunk = make_layer(functools.partial(RRDB, nf=nf, gc=gc), nb)
        self.trunk_conv = nn.Conv2d(nf, nf, 3, 1, 1)
        # upsampling: two nearest x2 + conv stages
        self.upconv1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.upconv2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.HRconv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, out_nc, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2)
        paddle_default_init_(self)

    def forward(self, x):
        """x: [N, in_nc, H, W] -> [N, out_nc, scale*H, scale*W]."""
        if self.unshuffle > 1:
            s = self.unshuffle
            if x.shape[-2] % s or x.shape[-1] % s:
                raise ValueError(f"RRDBNet(scale={self.scale}) needs H and W divisible by {s}, "
                                 f"got {tuple(x.shape[-2:])}")
            # channel order c*s*s + i*s + j, as PaddleGAN's reshape/transpose pixel_unshuffle
            x = F.pixel_unshuffle(x, s)
        fea = self.conv_first(x)
        fea = fea + self.trunk_conv(self.RRDB_trunk(fea))
        fea = self.lrelu(self.upconv1(F.interpolate(fea, scale_factor=2, mode="nearest")))
        fea = self.lrelu(self.upconv2(F.interpolate(fea, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.HRconv(fea)))

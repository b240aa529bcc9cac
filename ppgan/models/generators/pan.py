"""PAN (pixel attention network) generator, PaddleGAN layout.

Paper: Zhao et al., "Efficient Image Super-Resolution Using Pixel Attention",
ECCV Workshops 2020, https://arxiv.org/abs/2010.01073. SCPA blocks adapt self-calibrated
convolutions (Liu et al., CVPR 2020).
Reference: https://github.com/zhaohengyuan1/PAN (`PAN_arch.py`) and PaddleGAN
`ppgan/models/generators/pan.py`.

Attribute names follow the official code and PaddleGAN (`SCPA_trunk.block<i>.PAConv.k2`,
`att1`, `HRconv1`, ...), so `.pdparams` load by name.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ...utils.errors import ConfigError
from ...modules.sr_blocks import make_layer, paddle_default_init_
from .builder import GENERATORS


class PA(nn.Module):
    """Pixel attention: x * sigmoid(conv1x1(x)); [N, nf, H, W] -> same.

    Args:
        nf (int): channels.
    """

    def __init__(self, nf):
        super().__init__()
        self.conv = nn.Conv2d(nf, nf, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        return x * self.sigmoid(self.conv(x))


class PAConv(nn.Module):
    """Pixel-attention conv: k4(k3(x) * sigmoid(k2(x))); [N, nf, H, W] -> same.

    Args:
        nf (int): channels.
        k_size (int): kernel size of k3 and k4 (default 3, odd).
    """

    def __init__(self, nf, k_size=3):
        super().__init__()
        self.k2 = nn.Conv2d(nf, nf, 1)
        self.sigmoid = nn.Sigmoid()
        self.k3 = nn.Conv2d(nf, nf, k_size, padding=(k_size - 1) // 2, bias=False)
        self.k4 = nn.Conv2d(nf, nf, k_size, padding=(k_size - 1) // 2, bias=False)

    def forward(self, x):
        return self.k4(self.k3(x) * self.sigmoid(self.k2(x)))


class SCPA(nn.Module):
    """Self-calibrated block with pixel attention; [N, nf, H, W] -> same.

    Two 1x1-reduced branches (plain 3x3 conv `k1`, and `PAConv`), concatenated [a, b], fused by a
    1x1 conv and added to the input.

    Args:
        nf (int): channels (the branch width is nf // reduction).
        reduction (int): branch reduction (default 2).
        stride (int): stride of `k1` (default 1).
        dilation (int): dilation (and padding) of `k1` (default 1).
    """

    def __init__(self, nf, reduction=2, stride=1, dilation=1):
        super().__init__()
        gw = nf // reduction
        self.conv1_a = nn.Conv2d(nf, gw, 1, bias=False)
        self.conv1_b = nn.Conv2d(nf, gw, 1, bias=False)
        self.k1 = nn.Sequential(nn.Conv2d(gw, gw, 3, stride=stride, padding=dilation,
                                          dilation=dilation, bias=False))
        self.PAConv = PAConv(gw)
        self.conv3 = nn.Conv2d(gw * reduction, nf, 1, bias=False)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2)

    def forward(self, x):
        out_a = self.lrelu(self.k1(self.lrelu(self.conv1_a(x))))
        out_b = self.lrelu(self.PAConv(self.lrelu(self.conv1_b(x))))
        return self.conv3(torch.cat([out_a, out_b], dim=1)) + x


@GENERATORS.register()
class PAN(nn.Module):
    """PAN: [N, in_nc, H, W] -> [N, out_nc, s*H, s*W], a residual over the bilinear upscale.

    conv_first -> nb SCPA blocks -> trunk_conv (+ skip) -> one (x2, x3) or two (x4)
    [nearest upsample -> conv -> pixel attention -> lrelu -> conv -> lrelu] stages -> conv_last,
    plus bilinear (align_corners=False) upscaling of the input. `out_nc` must equal `in_nc` for
    that sum. Inputs are RGB in [0, 1]; the output is not clamped. Convs start from Paddle's
    default init.

    Args:
        in_nc (int): input channels.
        out_nc (int): output channels (== in_nc).
        nf (int): trunk feature channels (even: SCPA splits them in two).
        unf (int): channels of the upsampling stages.
        nb (int): number of SCPA blocks.
        scale (int): upscaling factor: 2, 3 or 4 (default).
    """

    SUPPORTED_SCALES = (2, 3, 4)

    def __init__(self, in_nc, out_nc, nf, unf, nb, scale=4):
        super().__init__()
        if scale not in self.SUPPORTED_SCALES:
            raise ConfigError(f"PAN scale must be one of {self.SUPPORTED_SCALES}, got {scale!r}")
        if out_nc != in_nc:
            raise ConfigError(f"PAN adds the upscaled input to its output, so out_nc must equal "
                             f"in_nc; got in_nc={in_nc}, out_nc={out_nc}")
        self.scale = scale

        self.conv_first = nn.Conv2d(in_nc, nf, 3, 1, 1)
        self.SCPA_trunk = make_layer(SCPA, nb, name_fmt="block{}", nf=nf, reduction=2)
        self.trunk_conv = nn.Conv2d(nf, nf, 3, 1, 1)
        # upsampling; x2 / x3 use stage 1 only (upconv2/att2/HRconv2 exist only for x4)
        self.upconv1 = nn.Conv2d(nf, unf, 3, 1, 1)
        self.att1 = PA(unf)
        self.HRconv1 = nn.Conv2d(unf, unf, 3, 1, 1)
        if scale == 4:
            self.upconv2 = nn.Conv2d(unf, unf, 3, 1, 1)
            self.att2 = PA(unf)
            self.HRconv2 = nn.Conv2d(unf, unf, 3, 1, 1)
        self.conv_last = nn.Conv2d(unf, out_nc, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2)
        paddle_default_init_(self)

    def _up_stage(self, fea, factor, upconv, att, hrconv):
        fea = upconv(F.interpolate(fea, scale_factor=factor, mode="nearest"))
        fea = self.lrelu(att(fea))
        return self.lrelu(hrconv(fea))

    def forward(self, x):
        """x: [N, in_nc, H, W] -> [N, out_nc, scale*H, scale*W]."""
        fea = self.conv_first(x)
        fea = fea + self.trunk_conv(self.SCPA_trunk(fea))
        if self.scale == 4:
            fea = self._up_stage(fea, 2, self.upconv1, self.att1, self.HRconv1)
            fea = self._up_stage(fea, 2, self.upconv2, self.att2, self.HRconv2)
        else:
            fea = self._up_stage(fea, self.scale, self.upconv1, self.att1, self.HRconv1)
        ilr = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return self.conv_last(fea) + ilr

"""MSRResNet: SRResNet without batch norm (the "modified SRResNet" of BasicSR / mmsr).

Papers: Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network" (SRResNet), CVPR 2017, https://arxiv.org/abs/1609.04802; BN removed as in
Lim et al., "EDSR", CVPRW 2017, https://arxiv.org/abs/1707.02921.
Reference: xinntao/mmsr `codes/models/archs/SRResNet_arch.py` (`MSRResNet(in_nc, out_nc, nf, nb,
upscale)`); BasicSR `basicsr/archs/srresnet_arch.py` is the same net under newer names
(`num_feat`, `body`, `conv_hr`). PaddleGAN has no SRResNet; the names here are mmsr's
(`conv_first`, `recon_trunk.<i>.conv1`, `upconv1`, `upconv2`, `HRconv`, `conv_last`), which
ESRGAN-era checkpoints use.
"""
import torch.nn.functional as F
from torch import nn

from ...utils.errors import ConfigError
from ...modules.sr_blocks import ResidualBlockNoBN, _scaled_kaiming_, make_layer
from .builder import GENERATORS


@GENERATORS.register()
class MSRResNet(nn.Module):
    """[N, in_nc, H, W] -> [N, out_nc, upscale*H, upscale*W]: a residual over the bilinear
    upsampled input. Any H, W; output not clamped.

    Args:
        in_nc (int): input channels (default 3); must equal out_nc (the bilinear skip).
        out_nc (int): output channels (default 3).
        nf (int): feature channels (default 64).
        nb (int): residual blocks (default 16).
        upscale (int): 2, 3 or 4 (default 4).
    """

    SUPPORTED_SCALES = (2, 3, 4)

    def __init__(self, in_nc=3, out_nc=3, nf=64, nb=16, upscale=4):
        super().__init__()
        if upscale not in self.SUPPORTED_SCALES:
            raise ConfigError(f"MSRResNet upscale must be one of {self.SUPPORTED_SCALES}, got {upscale!r}")
        if in_nc != out_nc:
            raise ConfigError(f"MSRResNet adds the upsampled input to the output: in_nc ({in_nc}) "
                             f"must equal out_nc ({out_nc})")
        self.upscale = upscale
        self.conv_first = nn.Conv2d(in_nc, nf, 3, 1, 1)
        self.recon_trunk = make_layer(ResidualBlockNoBN, nb, nf=nf)
        shuffle = 3 if upscale == 3 else 2
        self.upconv1 = nn.Conv2d(nf, nf * shuffle * shuffle, 3, 1, 1)
        if upscale == 4:
            self.upconv2 = nn.Conv2d(nf, nf * 4, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(shuffle)
        self.HRconv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, out_nc, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1)
        # mmsr: kaiming-normal * 0.1 everywhere (residual blocks do the same themselves)
        for conv in (self.conv_first, self.upconv1, self.HRconv, self.conv_last):
            _scaled_kaiming_(conv, 0.1)
        if upscale == 4:
            _scaled_kaiming_(self.upconv2, 0.1)

    def forward(self, x):
        """x: [N, in_nc, H, W] -> [N, out_nc, upscale*H, upscale*W]."""
        out = self.recon_trunk(self.lrelu(self.conv_first(x)))
        out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
        if self.upscale == 4:
            out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = self.conv_last(self.lrelu(self.HRconv(out)))
        return out + F.interpolate(x, scale_factor=self.upscale, mode="bilinear", align_corners=False)

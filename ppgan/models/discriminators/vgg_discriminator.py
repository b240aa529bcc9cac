"""VGG-style discriminator for 128x128 images (SRGAN / ESRGAN), PaddleGAN layout.

Papers: Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", CVPR 2017, https://arxiv.org/abs/1609.04802; Wang et al., "ESRGAN",
ECCVW 2018, https://arxiv.org/abs/1809.00219.
Reference: https://github.com/xinntao/ESRGAN via PaddleGAN
`ppgan/models/discriminators/vgg_discriminator.py` (BasicSR `VGGStyleDiscriminator` is the same
net). Attribute names (`conv0_0`, `bn0_1`, ..., `linear1`, `linear2`) are PaddleGAN's, so
`.pdparams` load by name.
"""
import math

from torch import nn

from ...utils.errors import ConfigError
from ...modules.sr_blocks import paddle_default_init_
from .builder import DISCRIMINATORS


@DISCRIMINATORS.register()
class VGGDiscriminator128(nn.Module):
    """Five (3x3 conv, 4x4 stride-2 conv) stages with BatchNorm and LeakyReLU(0.2), then two
    linear layers: [N, in_channels, 128, 128] -> [N, 1] raw logits.

    Args:
        in_channels (int): input channels (3 for RGB).
        num_feat (int): channels of the first stage; stages have 1, 2, 4, 8, 8 times as many.
        norm_layer (str): 'batch' only (PaddleGAN accepts the argument and ignores it).
    """

    INPUT_SIZE = 128

    def __init__(self, in_channels, num_feat, norm_layer="batch"):
        super().__init__()
        if norm_layer != "batch":
            raise ConfigError(f"VGGDiscriminator128 supports only norm_layer='batch', got {norm_layer!r}")
        f = num_feat
        self.conv0_0 = nn.Conv2d(in_channels, f, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(f, f, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(f)
        self.conv1_0 = nn.Conv2d(f, f * 2, 3, 1, 1, bias=False)
        self.bn1_0 = nn.BatchNorm2d(f * 2)
        self.conv1_1 = nn.Conv2d(f * 2, f * 2, 4, 2, 1, bias=False)
        self.bn1_1 = nn.BatchNorm2d(f * 2)
        self.conv2_0 = nn.Conv2d(f * 2, f * 4, 3, 1, 1, bias=False)
        self.bn2_0 = nn.BatchNorm2d(f * 4)
        self.conv2_1 = nn.Conv2d(f * 4, f * 4, 4, 2, 1, bias=False)
        self.bn2_1 = nn.BatchNorm2d(f * 4)
        self.conv3_0 = nn.Conv2d(f * 4, f * 8, 3, 1, 1, bias=False)
        self.bn3_0 = nn.BatchNorm2d(f * 8)
        self.conv3_1 = nn.Conv2d(f * 8, f * 8, 4, 2, 1, bias=False)
        self.bn3_1 = nn.BatchNorm2d(f * 8)
        self.conv4_0 = nn.Conv2d(f * 8, f * 8, 3, 1, 1, bias=False)
        self.bn4_0 = nn.BatchNorm2d(f * 8)
        self.conv4_1 = nn.Conv2d(f * 8, f * 8, 4, 2, 1, bias=False)
        self.bn4_1 = nn.BatchNorm2d(f * 8)
        self.linear1 = nn.Linear(f * 8 * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2)
        # Paddle's default init: convs N(0, sqrt(2 / fan_in)), linears Xavier-uniform, biases 0
        paddle_default_init_(self)
        for lin in (self.linear1, self.linear2):
            bound = math.sqrt(6.0 / (lin.in_features + lin.out_features))
            nn.init.uniform_(lin.weight, -bound, bound)
            nn.init.zeros_(lin.bias)

    def forward(self, x):
        """x: [N, in_channels, 128, 128] -> [N, 1]."""
        if x.ndim != 4 or tuple(x.shape[-2:]) != (self.INPUT_SIZE, self.INPUT_SIZE):
            raise ConfigError(f"VGGDiscriminator128 needs [N, C, 128, 128] input, got {tuple(x.shape)}")
        act = self.lrelu
        feat = act(self.conv0_0(x))
        feat = act(self.bn0_1(self.conv0_1(feat)))  # 64x64
        feat = act(self.bn1_0(self.conv1_0(feat)))
        feat = act(self.bn1_1(self.conv1_1(feat)))  # 32x32
        feat = act(self.bn2_0(self.conv2_0(feat)))
        feat = act(self.bn2_1(self.conv2_1(feat)))  # 16x16
        feat = act(self.bn3_0(self.conv3_0(feat)))
        feat = act(self.bn3_1(self.conv3_1(feat)))  # 8x8
        feat = act(self.bn4_0(self.conv4_0(feat)))
        feat = act(self.bn4_1(self.conv4_1(feat)))  # 4x4
        feat = act(self.linear1(feat.flatten(1)))
        return self.linear2(feat)

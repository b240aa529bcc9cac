"""StarGAN generator (Choi et al., 2018, https://arxiv.org/abs/1711.09020): one network that
translates an image to any target domain, given as a label vector.

Layout of the paper's Table 4 (and of its authors' code): the label is replicated over the
image and concatenated to it as extra channels; 7x7 conv, two stride-2 4x4 downsamplings,
`repeat_num` residual blocks, two stride-2 4x4 transposed-conv upsamplings, 7x7 conv, Tanh.
Every norm is an affine instance norm; the convs have no bias. Sub-modules are one
`nn.Sequential` named `main` in the authors' order.
"""
import torch
from torch import nn

from ...utils.errors import ConfigError
from .builder import GENERATORS


def _instance_norm(channels):
    # instance statistics at training and inference time alike (no running averages)
    return nn.InstanceNorm2d(channels, affine=True)


class StarGANResidualBlock(nn.Module):
    """x + (conv3x3 IN ReLU conv3x3 IN)(x)."""

    def __init__(self, channels):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), _instance_norm(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), _instance_norm(channels))

    def forward(self, x):
        return x + self.main(x)


@GENERATORS.register()
class StarGANGenerator(nn.Module):
    """Image [N, input_nc, H, W] in [-1, 1] and target label [N, c_dim] -> image [N, input_nc, H, W]
    in [-1, 1]. H and W must be multiples of 4.

    Args:
        conv_dim (int): channels of the first conv (default 64); the residual blocks have 4x.
        c_dim (int): length of the label vector (default 5: the paper's CelebA attributes; with
            several datasets, the labels of all of them plus the mask vector).
        repeat_num (int): residual blocks, >= 0 (default 6).
        input_nc (int): image channels (default 3).
    """

    def __init__(self, conv_dim=64, c_dim=5, repeat_num=6, input_nc=3):
        super().__init__()
        if repeat_num < 0:
            raise ConfigError(f"StarGANGenerator repeat_num must be >= 0, got {repeat_num}")
        self.c_dim, self.input_nc = int(c_dim), int(input_nc)
        self.size_multiple = 4  # two stride-2 downsamplings
        layers = [nn.Conv2d(input_nc + c_dim, conv_dim, 7, 1, 3, bias=False), _instance_norm(conv_dim),
                  nn.ReLU(inplace=True)]
        ch = conv_dim
        for _ in range(2):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), _instance_norm(ch * 2), nn.ReLU(inplace=True)]
            ch *= 2
        layers += [StarGANResidualBlock(ch) for _ in range(repeat_num)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), _instance_norm(ch // 2),
                       nn.ReLU(inplace=True)]
            ch //= 2
        layers += [nn.Conv2d(ch, input_nc, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x, c):
        if c.ndim != 2 or c.shape[1] != self.c_dim or c.shape[0] != x.shape[0]:
            raise ConfigError(f"StarGANGenerator: label must be [N={x.shape[0]}, {self.c_dim}], "
                             f"got {list(c.shape)}")
        c = c.to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        return self.main(torch.cat([x, c], dim=1))

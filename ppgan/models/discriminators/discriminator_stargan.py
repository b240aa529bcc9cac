"""StarGAN discriminator (Choi et al., 2018, https://arxiv.org/abs/1711.09020): a PatchGAN
critic with an auxiliary domain classifier on the same features.

Paper's Table 5 / its authors' code: `repeat_num` stride-2 4x4 convs with LeakyReLU(0.01) (no
norm), then `conv1` (3x3, one channel: real/fake per patch) and `conv2` (a kernel covering the
whole remaining map: the `c_dim` domain logits).
"""
from torch import nn

from ...utils.errors import ConfigError
from .builder import DISCRIMINATORS


@DISCRIMINATORS.register()
class StarGANDiscriminator(nn.Module):
    """Image [N, input_nc, image_size, image_size] -> (out_src [N, 1, h, w] critic scores per patch,
    out_cls [N, c_dim] domain logits), h = w = image_size / 2**repeat_num.

    Args:
        image_size (int): input side in pixels (default 128); a multiple of 2**repeat_num.
        conv_dim (int): channels of the first conv (default 64), doubled by every later one.
        c_dim (int): domain labels to predict (default 5).
        repeat_num (int): stride-2 convs (default 6).
        input_nc (int): image channels (default 3).
    """

    def __init__(self, image_size=128, conv_dim=64, c_dim=5, repeat_num=6, input_nc=3):
        super().__init__()
        if image_size % (2 ** repeat_num):
            raise ConfigError(f"StarGANDiscriminator image_size {image_size} must be a multiple of "
                              f"2**repeat_num = {2 ** repeat_num}")
        self.image_size, self.c_dim = int(image_size), int(c_dim)
        layers = [nn.Conv2d(input_nc, conv_dim, 4, 2, 1), nn.LeakyReLU(0.01)]
        ch = conv_dim
        for _ in range(1, repeat_num):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1), nn.LeakyReLU(0.01)]
            ch *= 2
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(ch, 1, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(ch, c_dim, image_size // 2 ** repeat_num, bias=False)

    def forward(self, x):
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ConfigError(f"StarGANDiscriminator was built for {self.image_size}x{self.image_size} images, "
                              f"got {x.shape[-2]}x{x.shape[-1]}; set discriminator.image_size")
        h = self.main(x)
        return self.conv1(h), self.conv2(h).flatten(1)

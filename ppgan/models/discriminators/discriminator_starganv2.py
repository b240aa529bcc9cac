"""StarGAN v2 multi-task discriminator (Choi et al., CVPR 2020), PaddleGAN layout: one real/fake
logit per domain from a shared trunk (`main.<i>`, PaddleGAN's names); each sample is judged by
its own domain's output."""
from torch import nn

from ...utils.errors import ConfigError
from ..generators.generator_starganv2 import (check_img_size, check_input, downsampling_trunk, first_dim,
                                                 select_domain)
from .builder import DISCRIMINATORS


@DISCRIMINATORS.register()
class StarGANv2Discriminator(nn.Module):
    """conv 3x3, ResBlks (downsample) to 4x4, LeakyReLU, conv 4x4 -> 1x1, LeakyReLU, conv 1x1 ->
    num_domains.

    Args:
        img_size (int): image size (power of two).
        num_domains (int): number of domains (one logit each).
        max_conv_dim (int): channel cap.
        dim_in (int | None): channels of the first layer, doubling per block up to max_conv_dim;
            default 2**14 // img_size (PaddleGAN's; smaller for tiny demos).
    forward(x [N, 3, img_size, img_size], y [N] int domains) -> logits [N] (x's logit for its domain y)."""

    def __init__(self, img_size=256, num_domains=2, max_conv_dim=512, dim_in=None):
        super().__init__()
        check_img_size(img_size, "StarGANv2Discriminator")
        for name, v in dict(num_domains=num_domains, max_conv_dim=max_conv_dim).items():
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"StarGANv2Discriminator: {name} must be a positive integer, got {v!r}")
        self.img_size = img_size
        self.num_domains = num_domains
        trunk, dim_out = downsampling_trunk(img_size, max_conv_dim,
                                            first_dim(img_size, dim_in, "StarGANv2Discriminator"))
        self.main = nn.Sequential(*trunk, nn.Conv2d(dim_out, num_domains, 1, 1, 0))

    def forward(self, x, y):
        check_input(x, self.img_size, "StarGANv2Discriminator")
        out = self.main(x).flatten(1)  # [N, num_domains]
        return select_domain(out, y, "StarGANv2Discriminator")

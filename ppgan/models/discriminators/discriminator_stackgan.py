"""StackGAN's matching-aware discriminator (Zhang et al., ICCV 2017; hanzhanggit/StackGAN-Pytorch
`STAGE1_D` / `STAGE2_D` / `D_GET_LOGITS`).

The image is encoded by 4x4 stride-2 convolutions down to 4x4 (no batch norm on the first,
LeakyReLU 0.2); the text code (the sentence embedding compressed by a linear layer and a
LeakyReLU, as in the original TensorFlow StackGAN) is tiled over the 4x4 grid and joined with the
image code by a 3x3 conv; a 4x4 conv gives the logit of "real image that matches this text".
Stage II's discriminator also has the reference's unconditional logit ("real image at all").

`cond_mode: projection` (not in StackGAN; Miyato & Koyama, ICLR 2018, "cGANs with projection
discriminator") replaces the concatenation by logit = psi(h) + <V(text), sum-pooled h>: the text
decides the sign of an inner product with the image features, a much more direct conditional
signal than a feature map the joint conv may learn to ignore.
"""
import math

import torch
from torch import nn

from ...utils.errors import ConfigError
from .builder import DISCRIMINATORS


def _down(in_ch, out_ch, bn=True):
    layers = [nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=False)]
    if bn:
        layers.append(nn.BatchNorm2d(out_ch))
    return layers + [nn.LeakyReLU(0.2, True)]


@DISCRIMINATORS.register()
class StackGANDiscriminator(nn.Module):
    """Matching-aware discriminator for one StackGAN stage.

    Args:
        text_dim (int): sentence-embedding size (the model sets it). Default: 128.
        c_dim (int): size of the compressed text code. Default: 32 (reference: 128).
        ndf (int): width of the first conv; doubled per 2x downsampling, and brought to
            ndf * 8 by a 3x3 conv when it differs (larger: the reference's STAGE2_D). Default: 16.
        input_size (int): image side, a power of two >= 16. Default: 64.
        uncond (bool): add the unconditional logit (stage II in the reference). Default: False.
        cond_mode (str): how the text enters the conditional logit: 'concat' (the reference's:
            text code tiled over the 4x4 grid, joint 3x3 conv, 4x4 conv) or 'projection'
            (psi(h) + <V(text), sum of h over the grid>, V a two-layer MLP). Default: 'concat'.
    Calls:
        forward(img [N, 3, S, S]) -> image code h [N, ndf * 8, 4, 4].
        cond_logits(h, text [N, text_dim]) -> [N] logits (real AND matching the text).
        uncond_logits(h) -> [N] logits (real), only when `uncond`.
    """

    def __init__(self, text_dim=128, c_dim=32, ndf=16, input_size=64, uncond=False, cond_mode="concat"):
        super().__init__()
        if cond_mode not in ("concat", "projection"):
            raise ConfigError(f"StackGANDiscriminator cond_mode must be 'concat' or 'projection', got {cond_mode!r}")
        self.cond_mode = cond_mode
        if input_size < 16 or input_size & (input_size - 1):
            raise ConfigError(f"StackGANDiscriminator input_size must be a power of two >= 16, got {input_size}")
        self.input_size = int(input_size)
        n_down = int(math.log2(input_size // 4))
        layers, ch = _down(3, ndf, bn=False), ndf
        for _ in range(n_down - 1):
            layers += _down(ch, ch * 2)
            ch *= 2
        if ch != ndf * 8:  # 128 px and up (the reference's STAGE2_D), or a tiny input
            layers += [nn.Conv2d(ch, ndf * 8, 3, 1, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, True)]
        self.encode_img = nn.Sequential(*layers)
        if cond_mode == "concat":
            self.text_code = nn.Sequential(nn.Linear(text_dim, c_dim), nn.LeakyReLU(0.2, True))
            self.joint = nn.Sequential(nn.Conv2d(ndf * 8 + c_dim, ndf * 8, 3, 1, 1, bias=False),
                                       nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, True))
        else:  # projection: V(text) [N, ndf * 8], dotted with the pooled image code
            self.text_code = nn.Sequential(nn.Linear(text_dim, c_dim), nn.LeakyReLU(0.2, True),
                                           nn.Linear(c_dim, ndf * 8))
        self.cond_out = nn.Conv2d(ndf * 8, 1, 4, 4)
        self.uncond_out = nn.Conv2d(ndf * 8, 1, 4, 4) if uncond else None
        self.uncond = bool(uncond)

    def forward(self, img):
        if img.shape[-1] != self.input_size or img.shape[-2] != self.input_size:
            raise ValueError(f"StackGANDiscriminator expects {self.input_size}px images, got {tuple(img.shape)}")
        return self.encode_img(img)

    def cond_logits(self, h, text):
        if self.cond_mode == "projection":
            return self.cond_out(h).flatten() + (self.text_code(text) * h.sum(dim=(2, 3))).sum(dim=1)
        c = self.text_code(text)[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        return self.cond_out(self.joint(torch.cat([h, c], dim=1))).flatten()

    def uncond_logits(self, h):
        if self.uncond_out is None:
            raise RuntimeError("this StackGANDiscriminator was built with uncond=False")
        return self.uncond_out(h).flatten()

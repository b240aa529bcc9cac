"""BigGAN discriminator (Brock et al., ICLR 2019, https://arxiv.org/abs/1809.11096) with the
projection head of Miyato & Koyama ("cGANs with Projection Discriminator", ICLR 2018):

    D(x, y) = w^T h(x) + embed(y)^T h(x),   h(x) = sum over pixels of ReLU(features(x)).

Residual down-sampling blocks, spectral norm on every weight (the class embedding included),
an optional self-attention block. Block widths per input size follow the reference code
(ajbrock/BigGAN-PyTorch `BigGAN.py`, `D_arch`), scaled by `ch`; read for facts only.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ...modules.biggan_layers import SelfAttention, SNConv2d, SNEmbedding, SNLinear
from ...utils.errors import ConfigError
from .builder import DISCRIMINATORS

# size -> (output width multipliers (x ch), down-sample flags) of the blocks.
D_ARCH = {
    32: ((4, 4, 4, 4), (True, True, False, False)),
    64: ((1, 2, 4, 8, 16), (True, True, True, True, False)),
    128: ((1, 2, 4, 8, 16, 16), (True, True, True, True, True, False)),
}


class DBlock(nn.Module):
    """[ReLU ->] conv3 -> ReLU -> conv3 [-> avgpool 2x], plus a shortcut conv1 (when the width
    changes or the block down-samples). The first block of the net skips the leading ReLU
    (its input is the image) and pools before its shortcut conv, as the reference."""

    def __init__(self, in_ch, out_ch, downsample=True, preactivation=True):
        super().__init__()
        self.downsample, self.preactivation = downsample, preactivation
        self.conv1 = SNConv2d(in_ch, out_ch, 3, padding=1)
        self.conv2 = SNConv2d(out_ch, out_ch, 3, padding=1)
        self.conv_sc = SNConv2d(in_ch, out_ch, 1) if (in_ch != out_ch or downsample) else None

    def shortcut(self, x):
        if self.preactivation:
            if self.conv_sc is not None:
                x = self.conv_sc(x)
            return F.avg_pool2d(x, 2) if self.downsample else x
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        return self.conv_sc(x) if self.conv_sc is not None else x

    def forward(self, x):
        h = F.relu(x) if self.preactivation else x
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        return h + self.shortcut(x)


@DISCRIMINATORS.register()
class BigGANDiscriminator(nn.Module):
    """Class-conditional BigGAN discriminator with a projection head.

    Args:
        n_class (int): number of classes (default 10).
        size (int): input side, 32, 64 or 128 (default 32).
        input_nc (int): image channels (default 3).
        ch (int): width multiplier (default 32).
        attention (int): resolution of the block output after which a self-attention block sits;
            0 = none (default 0).
    forward(x [N, input_nc, size, size], class_id [N] int64) -> [N] raw scores.
    """

    def __init__(self, n_class=10, size=32, input_nc=3, ch=32, attention=0):
        super().__init__()
        if size not in D_ARCH:
            raise ConfigError(f"BigGANDiscriminator size must be one of {', '.join(map(str, D_ARCH))}, got {size}")
        if int(n_class) < 1:
            raise ConfigError(f"BigGANDiscriminator n_class must be >= 1, got {n_class}")
        out_mult, down = D_ARCH[size]
        resolutions, res = [], size
        for d in down:
            res = res // 2 if d else res
            resolutions.append(res)
        if attention and attention not in resolutions:
            raise ConfigError(f"BigGANDiscriminator attention must be 0 or one of {sorted(set(resolutions))} at size "
                              f"{size}, got {attention}")
        self.n_class, self.size = int(n_class), int(size)
        self.blocks = nn.ModuleList()
        self.attn = nn.ModuleDict()
        in_ch = input_nc
        placed = False
        for i, (m, d) in enumerate(zip(out_mult, down)):
            self.blocks.append(DBlock(in_ch, m * ch, downsample=d, preactivation=i > 0))
            in_ch = m * ch
            if attention == resolutions[i] and not placed:
                self.attn[str(i)] = SelfAttention(in_ch)
                placed = True
        self.feat_dim = in_ch
        self.linear = SNLinear(in_ch, 1)
        self.embed = SNEmbedding(self.n_class, in_ch)
        self._init()

    def _init(self):
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
                nn.init.orthogonal_(m.weight)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)

    def features(self, x):
        """h(x): [N, feat_dim], the sum over pixels of the ReLU'd last block output."""
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h)
            if str(i) in self.attn:
                h = self.attn[str(i)](h)
        return F.relu(h).sum(dim=(2, 3))

    def forward(self, x, class_id):
        h = self.features(x)
        out = self.linear(h).squeeze(1)                                    # unconditional term w^T h
        return out + (self.embed(class_id.long()) * h).sum(1)              # projection: <embed(y), h>

"""BigGAN generator (Brock, Donahue & Simonyan, "Large Scale GAN Training for High Fidelity
Natural Image Synthesis", ICLR 2019, https://arxiv.org/abs/1809.11096).

Residual up-sampling blocks with class-conditional batch norm. The class enters through one
shared embedding; the latent z is split into equal chunks ("hierarchical latent"): the first
chunk feeds the first linear layer, and every block's batch norms get [shared embedding, its own
chunk]. Spectral norm on every conv and linear weight, a self-attention block at one resolution.
Block widths per output size follow the reference code (ajbrock/BigGAN-PyTorch `BigGAN.py`,
`G_arch`), scaled by `ch`; it was read for facts, this is our own code.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ...modules.biggan_layers import ClassConditionalBatchNorm2d, SelfAttention, SNConv2d, SNLinear
from ...utils.errors import ConfigError
from .builder import GENERATORS

# size -> (input width multipliers, output width multipliers) of the up-sampling blocks (x ch);
# the bottom is 4x4, every block doubles the resolution.
G_ARCH = {
    32: ((4, 4, 4), (4, 4, 4)),
    64: ((16, 16, 8, 4), (16, 8, 4, 2)),
    128: ((16, 16, 8, 4, 2), (16, 8, 4, 2, 1)),
}


class GBlock(nn.Module):
    """BN(x, c) -> ReLU -> up 2x -> conv3 -> BN(., c) -> ReLU -> conv3, plus the shortcut
    up 2x -> conv1 (the 1x1 conv only when the width changes or the block up-samples)."""

    def __init__(self, in_ch, out_ch, cond_dim, upsample=True):
        super().__init__()
        self.upsample = upsample
        self.bn1 = ClassConditionalBatchNorm2d(in_ch, cond_dim)
        self.conv1 = SNConv2d(in_ch, out_ch, 3, padding=1)
        self.bn2 = ClassConditionalBatchNorm2d(out_ch, cond_dim)
        self.conv2 = SNConv2d(out_ch, out_ch, 3, padding=1)
        self.conv_sc = SNConv2d(in_ch, out_ch, 1) if (in_ch != out_ch or upsample) else None

    def forward(self, x, cond):
        h = F.relu(self.bn1(x, cond))
        if self.upsample:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), cond)))
        if self.conv_sc is not None:
            x = self.conv_sc(x)
        return h + x


@GENERATORS.register()
class BigGANGenerator(nn.Module):
    """Class-conditional BigGAN generator.

    Args:
        n_class (int): number of classes (default 10).
        size (int): output side, 32, 64 or 128 (default 32).
        output_nc (int): output channels (default 3).
        ch (int): width multiplier (default 32; the paper uses 96 at 128 px).
        latent_dim (int): length of z, split into (blocks + 1) equal chunks: 4 chunks at 32 px,
            5 at 64, 6 at 128; must be divisible by that (default 64 at 32 px -> chunks of 16).
        shared_dim (int): size of the shared class embedding (default 32; the paper's 128).
        attention (int | None): resolution after whose block a self-attention block sits;
            None (YAML null) or 0 = none (default 16).
        hier (bool): hierarchical latent (default True); False feeds all of z to the first layer
            and only the class embedding to the batch norms.
    forward(z [N, latent_dim], class_id [N] int64) -> [N, output_nc, size, size] in [-1, 1].
    """

    def __init__(self, n_class=10, size=32, output_nc=3, ch=32, latent_dim=64, shared_dim=32, attention=16,
                 hier=True):
        super().__init__()
        if size not in G_ARCH:
            raise ConfigError(f"BigGANGenerator size must be one of {', '.join(map(str, G_ARCH))}, got {size}")
        if int(n_class) < 1:
            raise ConfigError(f"BigGANGenerator n_class must be >= 1, got {n_class}")
        in_mult, out_mult = G_ARCH[size]
        resolutions = [8 * 2 ** i for i in range(len(in_mult))]
        if attention and attention not in resolutions:
            raise ConfigError(f"BigGANGenerator attention must be 0 or one of {resolutions} at size {size}, "
                              f"got {attention}")
        self.n_slots = len(in_mult) + 1 if hier else 1
        if int(latent_dim) % self.n_slots:
            raise ConfigError(f"BigGANGenerator latent_dim must be divisible by {self.n_slots} (blocks + 1) at size "
                              f"{size}, got {latent_dim}")
        self.n_class, self.size, self.output_nc = int(n_class), int(size), int(output_nc)
        self.latent_dim, self.shared_dim, self.hier = int(latent_dim), int(shared_dim), bool(hier)
        self.z_chunk = self.latent_dim // self.n_slots
        cond_dim = self.shared_dim + (self.z_chunk if hier else 0)
        self.bottom_ch = in_mult[0] * ch

        self.shared = nn.Embedding(self.n_class, self.shared_dim)
        self.linear = SNLinear(self.z_chunk, self.bottom_ch * 4 * 4)
        self.blocks = nn.ModuleList()
        self.attn = nn.ModuleDict()
        for i, (a, b) in enumerate(zip(in_mult, out_mult)):
            self.blocks.append(GBlock(a * ch, b * ch, cond_dim))
            if attention == resolutions[i]:
                self.attn[str(i)] = SelfAttention(b * ch)
        self.out_bn = nn.BatchNorm2d(out_mult[-1] * ch)
        self.out_conv = SNConv2d(out_mult[-1] * ch, self.output_nc, 3, padding=1)
        self._init()

    def _init(self):
        # orthogonal init of conv / linear weights, N(0, 1) class embedding (the reference's G_init 'ortho')
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.orthogonal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.normal_(self.shared.weight)

    def random_inputs(self, batch_size, generator=None, device=None):
        """[z ~ N(0, I) [batch, latent_dim], class_id uniform [batch]]."""
        z = torch.randn(batch_size, self.latent_dim, generator=generator, device=device)
        class_id = torch.randint(0, self.n_class, (batch_size,), generator=generator, device=device)
        return [z, class_id]

    def forward(self, z, class_id):
        shared = self.shared(class_id.long())                                   # [N, shared_dim]
        if self.hier:
            chunks = torch.split(z, self.z_chunk, dim=1)                        # n_slots x [N, z_chunk]
            conds = [torch.cat([shared, c], 1) for c in chunks[1:]]
            h = self.linear(chunks[0])
        else:
            conds = [shared] * len(self.blocks)
            h = self.linear(z)
        h = h.reshape(z.shape[0], self.bottom_ch, 4, 4)
        for i, block in enumerate(self.blocks):
            h = block(h, conds[i])
            if str(i) in self.attn:
                h = self.attn[str(i)](h)
        return torch.tanh(self.out_conv(F.relu(self.out_bn(h))))

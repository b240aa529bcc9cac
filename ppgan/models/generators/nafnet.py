"""NAFNet: a nonlinear-activation-free U-Net for image restoration, PaddleGAN layout.

Paper: Chen et al., "Simple Baselines for Image Restoration", ECCV 2022, https://arxiv.org/abs/2204.04676.
Reference: https://github.com/megvii-research/NAFNet as ported by PaddleGAN
`ppgan/models/generators/nafnet.py`.

No ReLU / GELU anywhere: the gate is `SimpleGate` (split the channels in halves, multiply them)
and the channel attention is `SCA` (a 1x1 conv of the global average, multiplied in).
Attribute names are PaddleGAN's (`intro`, `encoders.<i>.<j>`, `downs.<i>`, `middle_blks.<j>`,
`ups.<i>.0`, `decoders.<i>.<j>`, `ending`; in a block `norm1`, `conv1..5`, `sca.1`, `beta`,
`gamma`), so PaddleGAN's `.pdparams` load strictly by name. `NAFNetLocal` (same weights)
averages over local boxes at test time instead (TLSC).
"""
import torch
import torch.nn.functional as F
from torch import nn

from ...modules.sr_blocks import paddle_default_init_
from ...utils.errors import ConfigError
from .builder import GENERATORS


class LayerNorm2D(nn.Module):
    """Layer norm over the channels of [N, C, H, W] at each pixel (PaddleGAN's `LayerNorm2D`;
    its hand-written backward is the analytic gradient of this forward)."""

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / (var + self.eps).sqrt()
        return self.weight.view(1, -1, 1, 1) * y + self.bias.view(1, -1, 1, 1)


class SimpleGate(nn.Module):
    """[N, 2C, H, W] -> [N, C, H, W]: first channel half times second half."""

    def forward(self, x):
        x1, x2 = x.chunk(2, dim=1)
        return x1 * x2


class NAFBlock(nn.Module):
    """norm -> 1x1 expand -> 3x3 depthwise -> SimpleGate -> SCA -> 1x1, residual scaled by `beta`;
    then norm -> 1x1 expand -> SimpleGate -> 1x1, residual scaled by `gamma` (both start at 0).

    Args:
        c (int): channels.
        DW_Expand (int): expansion of the depthwise branch (default 2).
        FFN_Expand (int): expansion of the feed-forward branch (default 2).
        drop_out_rate (float): dropout after each branch (default 0: none).
    """

    def __init__(self, c, DW_Expand=2, FFN_Expand=2, drop_out_rate=0.0):
        super().__init__()
        dw = c * DW_Expand
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        # simplified channel attention (NAFNetLocal swaps the pool for a local one)
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw // 2, dw // 2, 1))
        self.sg = SimpleGate()
        ffn = FFN_Expand * c
        self.conv4 = nn.Conv2d(c, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, c, 1)
        self.norm1 = LayerNorm2D(c)
        self.norm2 = LayerNorm2D(c)
        self.drop_out_rate = float(drop_out_rate)
        self.dropout1 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.dropout2 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp):
        x = self.sg(self.conv2(self.conv1(self.norm1(inp))))
        x = self.conv3(x * self.sca(x))
        y = inp + self.dropout1(x) * self.beta
        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        return y + self.dropout2(x) * self.gamma


@GENERATORS.register()
class NAFNet(nn.Module):
    """U-Net of NAFBlocks with a global residual: [N, img_channel, H, W] -> same shape.

    Any H, W: the input is zero-padded bottom/right to a multiple of 2**len(enc_blk_nums) (as
    PaddleGAN) and the output cropped back.

    Args:
        img_channel (int): image channels (default 3).
        width (int): channels at full resolution; doubled at each encoder level (default 16).
        middle_blk_num (int): blocks at the lowest resolution (default 1).
        enc_blk_nums (list[int]): blocks per encoder level (default []).
        dec_blk_nums (list[int]): blocks per decoder level; as many levels as enc_blk_nums.
    """

    def __init__(self, img_channel=3, width=16, middle_blk_num=1, enc_blk_nums=(), dec_blk_nums=()):
        super().__init__()
        enc_blk_nums, dec_blk_nums = list(enc_blk_nums or []), list(dec_blk_nums or [])
        if len(enc_blk_nums) != len(dec_blk_nums):
            raise ConfigError(f"NAFNet needs as many dec_blk_nums as enc_blk_nums, got {enc_blk_nums} "
                              f"and {dec_blk_nums}")
        if int(width) < 1 or int(img_channel) < 1 or int(middle_blk_num) < 0 \
                or any(int(n) < 0 for n in enc_blk_nums + dec_blk_nums):
            raise ConfigError("NAFNet img_channel and width must be positive and block counts >= 0, got "
                              f"img_channel={img_channel}, width={width}, middle_blk_num={middle_blk_num}, "
                              f"enc_blk_nums={enc_blk_nums}, dec_blk_nums={dec_blk_nums}")
        self.intro = nn.Conv2d(img_channel, width, 3, padding=1)
        self.ending = nn.Conv2d(width, img_channel, 3, padding=1)
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        self.ups, self.decoders = nn.ModuleList(), nn.ModuleList()
        chan = width
        for num in enc_blk_nums:
            self.encoders.append(nn.Sequential(*[NAFBlock(chan) for _ in range(int(num))]))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, stride=2))
            chan *= 2
        self.middle_blks = nn.Sequential(*[NAFBlock(chan) for _ in range(int(middle_blk_num))])
        for num in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(chan) for _ in range(int(num))]))
        self.padder_size = 2 ** len(self.encoders)
        paddle_default_init_(self)

    def check_image_size(self, x):
        """Zero-pad bottom/right to multiples of `padder_size`."""
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.padder_size, (-w) % self.padder_size
        return F.pad(x, (0, pw, 0, ph)) if ph or pw else x

    def forward(self, inp):
        h, w = inp.shape[-2:]
        inp = self.check_image_size(inp)
        x = self.intro(inp)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle_blks(x)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips)):
            x = decoder(up(x) + skip)
        x = self.ending(x) + inp
        return x[..., :h, :w]


class LocalAvgPool2d(nn.Module):
    """Test-time local statistics (TLSC, Chu et al. 2021, https://arxiv.org/abs/2112.04491;
    PaddleGAN's `AvgPool2D` with fast_imp False): the mean over each `kernel_size` box instead
    of the whole map, edge-padded back to the input size; the global mean ([N, C, 1, 1]) when the
    box covers the map."""

    def __init__(self, kernel_size):
        super().__init__()
        self.kernel_size = tuple(int(k) for k in kernel_size)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}"

    def forward(self, x):
        h, w = x.shape[-2:]
        if self.kernel_size[0] >= h and self.kernel_size[1] >= w:
            return x.mean((2, 3), keepdim=True)
        k1, k2 = min(h, self.kernel_size[0]), min(w, self.kernel_size[1])
        s = F.pad(x.cumsum(-1).cumsum(-2), (1, 0, 1, 0))  # integral image with a zero row / column
        out = (s[..., k1:, k2:] + s[..., :-k1, :-k2] - s[..., :-k1, k2:] - s[..., k1:, :-k2]) / (k1 * k2)
        dh, dw = h - out.shape[-2], w - out.shape[-1]
        return F.pad(out, (dw // 2, (dw + 1) // 2, dh // 2, (dh + 1) // 2), mode="replicate")


@GENERATORS.register()
class NAFNetLocal(NAFNet):
    """NAFNet with test-time local statistics (PaddleGAN's `NAFNetLocal`): every block's channel
    attention averages over a box of 1.5x the training patch (scaled to the block's resolution)
    instead of the whole image, so large test images see the statistics the net trained on.
    Same weights as `NAFNet`.

    Args:
        *args, **kwargs: NAFNet's.
        train_size ((N, C, H, W)): the training input shape (default (1, 3, 256, 256)).
        fast_imp (bool): PaddleGAN's faster approximation; only False (the exact box mean) is supported.
    """

    def __init__(self, *args, train_size=(1, 3, 256, 256), fast_imp=False, **kwargs):
        super().__init__(*args, **kwargs)
        if fast_imp:
            raise ConfigError("NAFNetLocal fast_imp=True (PaddleGAN's approximate pooling) is not supported; "
                              "use fast_imp: false")
        if len(train_size) != 4 or any(int(s) < 1 for s in train_size):
            raise ConfigError(f"NAFNetLocal train_size must be (N, C, H, W), got {train_size}")
        th, tw = int(train_size[2]), int(train_size[3])
        base = (int(th * 1.5), int(tw * 1.5))
        # PaddleGAN fixes each pool's box on a forward pass at train_size: the padded size at the
        # block's level times base / train_size
        ph, pw = th + (-th) % self.padder_size, tw + (-tw) % self.padder_size
        levels = len(self.encoders)
        stages = ([(blocks, i) for i, blocks in enumerate(self.encoders)] + [(self.middle_blks, levels)]
                  + [(blocks, levels - 1 - i) for i, blocks in enumerate(self.decoders)])
        for blocks, level in stages:
            h, w = ph >> level, pw >> level
            for block in blocks:
                block.sca[0] = LocalAvgPool2d((h * base[0] // th, w * base[1] // tw))
        self.train_size = tuple(int(s) for s in train_size)

"""Photo2Cartoon generator (minivision-ai/photo2cartoon, a U-GAT-IT variant with hourglass blocks
and Soft-AdaLIN), PaddleGAN layout.

Reference: PaddleGAN ppgan/models/generators/resnet_ugatit_p2c.py; U-GAT-IT: Kim et al., 2020,
https://arxiv.org/abs/1907.10830. Sub-module names follow PaddleGAN (`DownBlock.<i>`,
`EncodeBlock<k>`, `DecodeBlock<k>`, `UpBlock.<i>`, `HG`, `ConvBlockskip<k>`, ...), not PEP 8, so
`.pdparams` load by name.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ...utils.errors import ConfigError
from ...modules.adaptive_norm import LIN, AdaLIN
from ...modules.blocks import ResnetBlock, cam_reweight, check_ugatit_input
from .builder import GENERATORS


def _instance_norm(dim):
    return nn.InstanceNorm2d(dim)  # PaddleGAN: weight_attr=False, bias_attr=False (no affine)


class ConvBlock(nn.Module):
    """Pre-activation block: three [IN, ReLU, pad, 3x3 conv] stages with dim_out/2, /4, /4
    channels, concatenated, plus the input (through IN-ReLU-1x1 conv when dim_in != dim_out).

    Args:
        dim_in (int): input channels.
        dim_out (int): output channels, a multiple of 4.
    """

    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.dim_in, self.dim_out = dim_in, dim_out
        self.conv_block1 = self._stage(dim_in, dim_out // 2)
        self.conv_block2 = self._stage(dim_out // 2, dim_out // 4)
        self.conv_block3 = self._stage(dim_out // 4, dim_out // 4)
        if dim_in != dim_out:
            self.conv_skip = nn.Sequential(_instance_norm(dim_in), nn.ReLU(),
                                           nn.Conv2d(dim_in, dim_out, 1, bias=False))

    @staticmethod
    def _stage(dim_in, dim_out):
        return nn.Sequential(_instance_norm(dim_in), nn.ReLU(), nn.ReflectionPad2d(1),
                             nn.Conv2d(dim_in, dim_out, 3, bias=False))

    def forward(self, x):
        x1 = self.conv_block1(x)
        x2 = self.conv_block2(x1)
        x3 = self.conv_block3(x2)
        residual = self.conv_skip(x) if self.dim_in != self.dim_out else x
        return residual + torch.cat([x1, x2, x3], 1)


class HourGlassBlock(nn.Module):
    """Four-level hourglass of ConvBlocks: avg-pool down, nearest-x2 up, ConvBlock skips.
    Needs H and W divisible by 16.

    Args:
        dim_in (int): channels (kept throughout), a multiple of 4.
    """

    def __init__(self, dim_in):
        super().__init__()
        self.n_skip = 4
        self.n_block = 9
        for i in range(self.n_skip):
            setattr(self, f"ConvBlockskip{i + 1}", ConvBlock(dim_in, dim_in))
        for i in range(self.n_block):
            setattr(self, f"ConvBlock{i + 1}", ConvBlock(dim_in, dim_in))

    def forward(self, x):
        skips = []
        for i in range(self.n_skip):  # ConvBlock1..4 going down
            skips.append(getattr(self, f"ConvBlockskip{i + 1}")(x))
            x = getattr(self, f"ConvBlock{i + 1}")(F.avg_pool2d(x, 2))
        x = self.ConvBlock5(x)
        for i in range(self.n_skip):  # ConvBlock6..9 going up
            x = F.interpolate(getattr(self, f"ConvBlock{i + 6}")(x), scale_factor=2, mode="nearest")
            x = skips[self.n_skip - i - 1] + x
        return x


class HourGlass(nn.Module):
    """Hourglass with a 3-channel intermediate output `Conv1`.

    use_res=True returns x + Conv2(features) + Conv3(Conv1(features)) [N, dim, H, W];
    use_res=False returns the 3-channel map Conv1(features) only.

    Args:
        dim (int): channels, a multiple of 4.
        use_res (bool): default True.
    """

    def __init__(self, dim, use_res=True):
        super().__init__()
        self.use_res = use_res
        self.HG = nn.Sequential(HourGlassBlock(dim), ConvBlock(dim, dim), nn.Conv2d(dim, dim, 1, bias=False),
                                _instance_norm(dim), nn.ReLU())
        self.Conv1 = nn.Conv2d(dim, 3, 1)
        if use_res:
            self.Conv2 = nn.Conv2d(dim, dim, 1)
            self.Conv3 = nn.Conv2d(3, dim, 1)

    def forward(self, x):
        ll = self.HG(x)
        tmp_out = self.Conv1(ll)
        if not self.use_res:
            return tmp_out
        return x + self.Conv2(ll) + self.Conv3(tmp_out)


class SoftAdaLIN(nn.Module):
    """AdaLIN whose gamma/beta blend style and content: (1 - w) * s(style) + w * c(content),
    with learnt per-channel w_gamma / w_beta [1, C] (init 0: style only).

    Args:
        num_features (int): C.
        eps (float): default 1e-5.
    """

    def __init__(self, num_features, eps=1e-5):
        super().__init__()
        c = num_features
        self.norm = AdaLIN(c, eps)
        self.w_gamma = nn.Parameter(torch.zeros(1, c))
        self.w_beta = nn.Parameter(torch.zeros(1, c))
        self.c_gamma = nn.Sequential(nn.Linear(c, c, bias=False), nn.ReLU(), nn.Linear(c, c, bias=False))
        self.c_beta = nn.Sequential(nn.Linear(c, c, bias=False), nn.ReLU(), nn.Linear(c, c, bias=False))
        self.s_gamma = nn.Linear(c, c, bias=False)
        self.s_beta = nn.Linear(c, c, bias=False)

    def forward(self, x, content_features, style_features):
        """x [N, C, H, W]; content_features, style_features [N, C]."""
        gamma = (1.0 - self.w_gamma) * self.s_gamma(style_features) + self.w_gamma * self.c_gamma(content_features)
        beta = (1.0 - self.w_beta) * self.s_beta(style_features) + self.w_beta * self.c_beta(content_features)
        return self.norm(x, gamma, beta)


class ResnetSoftAdaLINBlock(nn.Module):
    """Residual block with two Soft-AdaLIN norms.

    Args:
        dim (int): channels.
        use_bias (bool): conv biases (default False).
    """

    def __init__(self, dim, use_bias=False):
        super().__init__()
        self.pad1 = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(dim, dim, 3, bias=use_bias)
        self.norm1 = SoftAdaLIN(dim)
        self.relu1 = nn.ReLU()
        self.pad2 = nn.ReflectionPad2d(1)
        self.conv2 = nn.Conv2d(dim, dim, 3, bias=use_bias)
        self.norm2 = SoftAdaLIN(dim)

    def forward(self, x, content_features, style_features):
        out = self.relu1(self.norm1(self.conv1(self.pad1(x)), content_features, style_features))
        out = self.norm2(self.conv2(self.pad2(out)), content_features, style_features)
        return out + x


@GENERATORS.register()
class ResnetUGATITP2CGenerator(nn.Module):
    """Photo2Cartoon generator: image -> (image, cam_logit, heatmap).

    forward(x [N, input_nc, H, W] in [-1, 1]) returns
        out [N, output_nc, H, W] in [-1, 1],
        cam_logit [N, 2] (GAP and GMP logits of the auxiliary domain classifier),
        heatmap [N, 1, H/4, W/4] (channel sum of the attended features).
    H and W must be multiples of 16 (hourglasses at full resolution); with light=False they must
    equal img_size.

    DecodeBlock k (k = 1..n_blocks) gets the pooled output of EncodeBlock 4 - k + 1, as PaddleGAN
    (`content_features[4 - i - 1]`, hard-coded for 4 blocks; for n_blocks > 4 the negative index
    wraps to the last blocks). For n_blocks < 4, where PaddleGAN raises IndexError, the encoder
    features are used in plain reverse order.

    Args:
        input_nc (int): input channels (default 3).
        output_nc (int): output channels (default 3).
        ngf (int): channels of the first conv, a multiple of 4 (default 32); bottleneck 4 * ngf.
        img_size (int): training size, a multiple of 16 (default 256); sizes the style FC when
            light=False, unused when light=True.
        n_blocks (int): encoder and decoder residual blocks, >= 0 (default 4).
        light (bool): style FC on the globally pooled features (default True).
    """

    def __init__(self, input_nc=3, output_nc=3, ngf=32, img_size=256, n_blocks=4, light=True):
        super().__init__()
        self.size_multiple = 16  # the hourglass blocks halve the size four times
        self.min_input_size = 32  # ...and their innermost reflection pads need 2 pixels
        if n_blocks < 0:
            raise ConfigError(f"n_blocks must be >= 0, got {n_blocks}")
        if ngf <= 0 or ngf % 4:
            raise ConfigError(f"ngf must be a positive multiple of 4 (ConvBlock splits it 1/2, 1/4, 1/4), "
                             f"got {ngf}")
        if not light and (img_size <= 0 or img_size % 16):
            raise ConfigError(f"img_size must be a positive multiple of 16, got {img_size}")
        self.input_nc, self.output_nc, self.ngf = input_nc, output_nc, ngf
        self.n_blocks, self.img_size, self.light = n_blocks, img_size, light

        down = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=False), _instance_norm(ngf), nn.ReLU(),
                HourGlass(ngf), HourGlass(ngf)]
        n_down = 2
        for i in range(n_down):
            c = ngf * 2 ** i
            down += [nn.ReflectionPad2d(1), nn.Conv2d(c, c * 2, 3, 2, bias=False), _instance_norm(c * 2),
                     nn.ReLU()]
        c = ngf * 2 ** n_down
        for i in range(n_blocks):
            setattr(self, f"EncodeBlock{i + 1}", ResnetBlock(c, "reflect", _instance_norm, use_bias=False))

        # Class activation map.
        self.gap_fc = nn.Linear(c, 1, bias=False)
        self.gmp_fc = nn.Linear(c, 1, bias=False)
        self.conv1x1 = nn.Conv2d(c * 2, c, 1)
        self.relu = nn.ReLU()

        fc_in = c if light else (img_size // 4) * (img_size // 4) * c
        fc = [nn.Linear(fc_in, c, bias=False), nn.ReLU(), nn.Linear(c, c, bias=False), nn.ReLU()]

        for i in range(n_blocks):
            setattr(self, f"DecodeBlock{i + 1}", ResnetSoftAdaLINBlock(c))
        up = []
        for i in range(n_down):
            c = ngf * 2 ** (n_down - i)
            up += [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1),
                   nn.Conv2d(c, c // 2, 3, bias=False), LIN(c // 2), nn.ReLU()]
        up += [HourGlass(ngf), HourGlass(ngf, use_res=False),
               nn.ReflectionPad2d(3), nn.Conv2d(3, output_nc, 7, bias=False), nn.Tanh()]

        # Assigned last, as in PaddleGAN, so state_dict() lists names in PaddleGAN's order.
        self.DownBlock = nn.Sequential(*down)
        self.FC = nn.Sequential(*fc)
        self.UpBlock = nn.Sequential(*up)

    def _content_index(self, i):
        return 3 - i if self.n_blocks >= 4 else self.n_blocks - 1 - i

    def forward(self, x):
        check_ugatit_input(x, self.light, self.img_size, multiple=16)
        x = self.DownBlock(x)
        content_features = []
        for i in range(self.n_blocks):
            x = getattr(self, f"EncodeBlock{i + 1}")(x)
            content_features.append(x.mean(dim=(2, 3)))

        x, cam_logit = cam_reweight(x, self.gap_fc, self.gmp_fc)
        x = self.relu(self.conv1x1(x))
        heatmap = x.sum(dim=1, keepdim=True)

        style_features = self.FC(x.mean(dim=(2, 3)) if self.light else x.flatten(1))
        for i in range(self.n_blocks):
            x = getattr(self, f"DecodeBlock{i + 1}")(x, content_features[self._content_index(i)], style_features)
        return self.UpBlock(x), cam_logit, heatmap

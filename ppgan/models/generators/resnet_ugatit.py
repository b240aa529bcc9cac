"""U-GAT-IT generator (Kim et al., 2020, https://arxiv.org/abs/1907.10830), PaddleGAN layout.

Reference: PaddleGAN ppgan/models/generators/resnet_ugatit.py (after znxlwm/UGATIT-pytorch).
Sub-module names follow PaddleGAN (`DownBlock.<i>`, `UpBlock1_<k>`, `UpBlock2.<i>`, `FC`, `gamma`,
`beta`, `gap_fc`, `gmp_fc`, `conv1x1`), not PEP 8, so `.pdparams` load by name.
"""
from torch import nn

from ...utils.errors import ConfigError
from ...modules.adaptive_norm import ILN, AdaILN
from ...modules.blocks import ResnetBlock, build_translation_norm_layer, cam_reweight, check_ugatit_input
from .builder import GENERATORS


class ResnetAdaILNBlock(nn.Module):
    """Residual block whose two norms are AdaILN driven by the style gamma/beta [N, C].

    Args:
        dim (int): channels.
        use_bias (bool): conv biases.
    """

    def __init__(self, dim, use_bias):
        super().__init__()
        self.pad1 = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(dim, dim, 3, bias=use_bias)
        self.norm1 = AdaILN(dim)
        self.relu1 = nn.ReLU()
        self.pad2 = nn.ReflectionPad2d(1)
        self.conv2 = nn.Conv2d(dim, dim, 3, bias=use_bias)
        self.norm2 = AdaILN(dim)

    def forward(self, x, gamma, beta):
        out = self.relu1(self.norm1(self.conv1(self.pad1(x)), gamma, beta))
        out = self.norm2(self.conv2(self.pad2(out)), gamma, beta)
        return out + x


@GENERATORS.register()
class ResnetUGATITGenerator(nn.Module):
    """Encoder, CAM attention, AdaILN residual decoder: image -> (image, cam_logit, heatmap).

    forward(x [N, input_nc, H, W] in [-1, 1]) returns
        out [N, output_nc, H, W] in [-1, 1],
        cam_logit [N, 2] (GAP and GMP logits of the auxiliary domain classifier),
        heatmap [N, 1, H/4, W/4] (channel sum of the attended features).
    H and W must be multiples of 4; with light=False they must equal img_size.

    Args:
        input_nc (int): input channels.
        output_nc (int): output channels.
        ngf (int): channels of the first conv (default 64); the bottleneck has 4 * ngf.
        n_blocks (int): residual blocks in the encoder and in the decoder, >= 0 (default 6).
        img_size (int): training size, a multiple of 4 (default 256); sizes the style FC when
            light=False, unused when light=True.
        light (bool): style FC on the globally pooled features (default False: on the whole
            flattened map, a (img_size/4)^2 * 4ngf -> 4ngf Linear).
        norm_type (str): encoder norm: 'instance' (default; fixed affine), 'batch' or 'none'.
    """

    def __init__(self, input_nc, output_nc, ngf=64, n_blocks=6, img_size=256, light=False,
                 norm_type="instance"):
        super().__init__()
        self.size_multiple = 4  # two stride-2 downsamplings; the full model takes one size only
        self.fixed_input_size = None if light else (img_size, img_size)
        if n_blocks < 0:
            raise ConfigError(f"n_blocks must be >= 0, got {n_blocks}")
        if not light and (img_size <= 0 or img_size % 4):
            raise ConfigError(f"img_size must be a positive multiple of 4, got {img_size}")
        self.input_nc, self.output_nc, self.ngf = input_nc, output_nc, ngf
        self.n_blocks, self.img_size, self.light = n_blocks, img_size, light
        norm_layer, _ = build_translation_norm_layer(norm_type)

        # Encoder: 7x7 conv, two stride-2 convs, residual blocks (all convs bias-free).
        down = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=False), norm_layer(ngf), nn.ReLU()]
        n_down = 2
        for i in range(n_down):
            c = ngf * 2 ** i
            down += [nn.ReflectionPad2d(1), nn.Conv2d(c, c * 2, 3, 2, bias=False), norm_layer(c * 2), nn.ReLU()]
        c = ngf * 2 ** n_down
        down += [ResnetBlock(c, "reflect", norm_layer, use_bias=False) for _ in range(n_blocks)]

        # Class activation map.
        self.gap_fc = nn.Linear(c, 1, bias=False)
        self.gmp_fc = nn.Linear(c, 1, bias=False)
        self.conv1x1 = nn.Conv2d(c * 2, c, 1)
        self.relu = nn.ReLU()

        # Style (gamma, beta) from the attended features.
        fc_in = c if light else (img_size // 4) * (img_size // 4) * c
        fc = [nn.Linear(fc_in, c, bias=False), nn.ReLU(), nn.Linear(c, c, bias=False), nn.ReLU()]
        self.gamma = nn.Linear(c, c, bias=False)
        self.beta = nn.Linear(c, c, bias=False)

        # Decoder: AdaILN residual blocks, two nearest-x2 upsamplings with ILN, 7x7 conv.
        for i in range(n_blocks):
            setattr(self, f"UpBlock1_{i + 1}", ResnetAdaILNBlock(c, use_bias=False))
        up = []
        for i in range(n_down):
            c = ngf * 2 ** (n_down - i)
            up += [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1),
                   nn.Conv2d(c, c // 2, 3, bias=False), ILN(c // 2), nn.ReLU()]
        up += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7, bias=False), nn.Tanh()]

        # Assigned last, as in PaddleGAN, so state_dict() lists names in PaddleGAN's order.
        self.DownBlock = nn.Sequential(*down)
        self.FC = nn.Sequential(*fc)
        self.UpBlock2 = nn.Sequential(*up)

    def forward(self, input):
        check_ugatit_input(input, self.light, self.img_size)
        x = self.DownBlock(input)
        x, cam_logit = cam_reweight(x, self.gap_fc, self.gmp_fc)
        x = self.relu(self.conv1x1(x))
        heatmap = x.sum(dim=1, keepdim=True)

        x_ = x.mean(dim=(2, 3)) if self.light else x.flatten(1)
        x_ = self.FC(x_)
        gamma, beta = self.gamma(x_), self.beta(x_)
        for i in range(self.n_blocks):
            x = getattr(self, f"UpBlock1_{i + 1}")(x, gamma, beta)
        return self.UpBlock2(x), cam_logit, heatmap

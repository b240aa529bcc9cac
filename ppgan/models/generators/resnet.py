"""ResNet generator of CycleGAN (Zhu et al., 2017, https://arxiv.org/abs/1703.10593), PaddleGAN layout.

Reference: PaddleGAN ppgan/models/generators/resnet.py (after junyanz/pytorch-CycleGAN-and-pix2pix,
itself after Johnson et al.'s fast-neural-style). Sub-module names follow PaddleGAN (`model.<i>`,
`model.<i>.conv_block.<j>`), so `.pdparams` load by name.
"""
from torch import nn

from ...utils.errors import ConfigError
from ...modules.blocks import ResnetBlock, build_translation_norm_layer, pad_layer
from .builder import GENERATORS


@GENERATORS.register()
class ResnetGenerator(nn.Module):
    """7x7 conv, two stride-2 downsamplings, `n_blocks` residual blocks, two transposed-conv
    upsamplings, 7x7 conv, Tanh: image [N, input_nc, H, W] -> [N, output_nc, H, W] in [-1, 1].

    H and W must be multiples of 4 (otherwise the output size would differ from the input's).

    Args:
        input_nc (int): input channels.
        output_nc (int): output channels.
        ngf (int): channels of the first conv (default 64); the residual blocks have 4 * ngf.
        norm_type (str): 'instance' (default; fixed affine, convs get biases), 'batch'
            (batch statistics in eval mode too, as PaddleGAN) or 'none'.
        use_dropout (bool): Dropout(0.5) inside each residual block (default False).
        n_blocks (int): residual blocks, >= 0 (default 6; CycleGAN 256x256 uses 9).
        padding_type (str): padding inside the residual blocks: 'reflect' (default),
            'replicate' or 'zero'. The 7x7 convs always reflect-pad.
    """

    def __init__(self, input_nc, output_nc, ngf=64, norm_type="instance", use_dropout=False, n_blocks=6,
                 padding_type="reflect"):
        super().__init__()
        self.size_multiple = 4  # two stride-2 downsamplings (see ppgan.utils.inference)
        if n_blocks < 0:
            raise ConfigError(f"n_blocks must be >= 0, got {n_blocks}")
        pad_layer(padding_type, 1)  # validates padding_type
        norm_layer, use_bias = build_translation_norm_layer(norm_type)
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=use_bias), norm_layer(ngf), nn.ReLU()]
        n_down = 2
        for i in range(n_down):
            c = ngf * 2 ** i
            layers += [nn.Conv2d(c, c * 2, 3, 2, 1, bias=use_bias), norm_layer(c * 2), nn.ReLU()]
        c = ngf * 2 ** n_down
        layers += [ResnetBlock(c, padding_type, norm_layer, use_dropout, use_bias) for _ in range(n_blocks)]
        for i in range(n_down):
            c = ngf * 2 ** (n_down - i)
            layers += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1, bias=use_bias),
                       norm_layer(c // 2), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        h, w = x.shape[-2:]
        if h % 4 or w % 4:
            raise ConfigError(f"ResnetGenerator needs H and W divisible by 4, got {h}x{w}")
        return self.model(x)

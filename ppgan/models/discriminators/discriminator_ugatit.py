"""U-GAT-IT discriminator (Kim et al., 2020, https://arxiv.org/abs/1907.10830), PaddleGAN layout.

Reference: PaddleGAN ppgan/models/discriminators/discriminator_ugatit.py (after
znxlwm/UGATIT-pytorch). A spectral-normed PatchGAN with a class-activation-map head.

Sub-module names follow PaddleGAN (`model.<i>`, `gap_fc`, `gmp_fc`, `conv1x1`, `conv`), and the
spectral norm (torch.nn.utils.spectral_norm) stores what Paddle's `SpectralNorm` hook stores,
under the same names: parameter `<layer>.weight_orig`, buffers `<layer>.weight_u` / `weight_v`
(Paddle's `gap_fc.weight_orig` is `[in, out]`, ours `[out, in]`).
"""
import math

import torch
from torch import nn
from torch.nn.utils import spectral_norm

from ...utils.errors import ConfigError
from .builder import DISCRIMINATORS


def _sn_conv(cin, cout, stride, bias=True):
    return spectral_norm(nn.Conv2d(cin, cout, 4, stride, 0, bias=bias))


@DISCRIMINATORS.register()
class UGATITDiscriminator(nn.Module):
    """image [N, input_nc, H, W] -> (patch logits [N, 1, h, w], cam_logit [N, 2], heatmap [N, 1, h', w']).

    `n_layers - 2` stride-2 convs (each reflect-padded by 1, kernel 4), one stride-1 conv, the
    CAM head (global average / max pooled logits, features weighted by those FCs' weights, a
    1x1 conv), and a stride-1 conv to one channel. U-GAT-IT uses n_layers=7 as the global and
    n_layers=5 as the local discriminator. H and W must be at least 3 * 2 ** (n_layers - 2)
    (24 for n_layers=5, 96 for 7).

    Args:
        input_nc (int): input channels.
        ndf (int): channels of the first conv (default 64); the CAM head has ndf * 2 ** (n_layers - 2).
        n_layers (int): depth, >= 3 (default 5).
    """

    def __init__(self, input_nc, ndf=64, n_layers=5):
        super().__init__()
        if n_layers < 3:
            raise ConfigError(f"n_layers must be >= 3, got {n_layers}")
        model = [nn.ReflectionPad2d(1), _sn_conv(input_nc, ndf, 2), nn.LeakyReLU(0.2)]
        for i in range(1, n_layers - 2):
            mult = 2 ** (i - 1)
            model += [nn.ReflectionPad2d(1), _sn_conv(ndf * mult, ndf * mult * 2, 2), nn.LeakyReLU(0.2)]
        mult = 2 ** (n_layers - 3)
        model += [nn.ReflectionPad2d(1), _sn_conv(ndf * mult, ndf * mult * 2, 1), nn.LeakyReLU(0.2)]

        # Class activation map.
        c = ndf * 2 ** (n_layers - 2)
        self.gap_fc = spectral_norm(nn.Linear(c, 1, bias=False))
        self.gmp_fc = spectral_norm(nn.Linear(c, 1, bias=False))
        self.conv1x1 = nn.Conv2d(c * 2, c, 1)
        self.leaky_relu = nn.LeakyReLU(0.2)

        self.pad = nn.ReflectionPad2d(1)
        self.conv = _sn_conv(c, 1, 1, bias=False)
        self.model = nn.Sequential(*model)  # assigned last, as in PaddleGAN (state_dict order)
        self._paddle_default_init()

    def _paddle_default_init(self):
        # Paddle's defaults, which PaddleGAN trains from for the spectral-normed layers (its
        # `init_weights` writes into a copy of those weights): conv N(0, sqrt(2 / fan_in)),
        # linear Xavier-uniform, biases 0. `weight_orig` is the parameter the norm reads.
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    w = m.weight_orig if hasattr(m, "weight_orig") else m.weight
                    if isinstance(m, nn.Conv2d):
                        fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                        nn.init.normal_(w, 0.0, math.sqrt(2.0 / fan_in))
                    else:
                        nn.init.xavier_uniform_(w)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

    def forward(self, input):
        x = self.model(input)

        # CAM: as PaddleGAN (`list(fc.parameters())[0]`), the features are weighted by the FC's
        # raw `weight_orig` [1, C], not by its spectral-normalised weight.
        gap_logit = self.gap_fc(torch.mean(x, dim=(2, 3)))
        gmp_logit = self.gmp_fc(torch.amax(x, dim=(2, 3)))
        gap = x * self.gap_fc.weight_orig[:, :, None, None]
        gmp = x * self.gmp_fc.weight_orig[:, :, None, None]
        cam_logit = torch.cat([gap_logit, gmp_logit], 1)
        x = self.leaky_relu(self.conv1x1(torch.cat([gap, gmp], 1)))
        heatmap = torch.sum(x, dim=1, keepdim=True)

        out = self.conv(self.pad(x))
        return out, cam_logit, heatmap

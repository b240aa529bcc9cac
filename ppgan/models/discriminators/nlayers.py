"""PatchGAN discriminator (Isola et al., 2017, https://arxiv.org/abs/1611.07004), PaddleGAN layout.

Reference: PaddleGAN ppgan/models/discriminators/nlayers.py. One real/fake score per
receptive-field patch: output [N, 1, H', W'].
"""
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from ...utils.errors import ConfigError
from ...modules.norm import build_norm_layer
from .builder import DISCRIMINATORS

NORM_TYPES = ("batch", "instance", "spectral", "none")


@DISCRIMINATORS.register()
class NLayerDiscriminator(nn.Module):
    """Args:
        input_nc (int): input channels (for pix2pix: input + output channels).
        ndf (int): channels of the first conv (default 64).
        n_layers (int): number of stride-2 convs (default 3).
        norm_type (str): 'instance' (default), 'batch', 'spectral' or 'none'.
        use_sigmoid (bool): apply a sigmoid to the output (default False: raw logits).
    """

    def __init__(self, input_nc, ndf=64, n_layers=3, norm_type="instance", use_sigmoid=False):
        super().__init__()
        if norm_type not in NORM_TYPES:
            raise ConfigError(f"norm_type must be one of {', '.join(NORM_TYPES)}; got {norm_type!r}")
        norm_layer = build_norm_layer(norm_type)
        use_bias = norm_type == "instance"  # PaddleGAN: bias only where the norm has no affine shift
        kw, padw = 4, 1
        sn = norm_type == "spectral"
        slope = 0.01 if sn else 0.2

        def conv(cin, cout, stride, bias):
            c = nn.Conv2d(cin, cout, kw, stride, padw, bias=True if sn else bias)
            return spectral_norm(c) if sn else c

        seq = [conv(input_nc, ndf, 2, use_bias), nn.LeakyReLU(slope)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            seq += [conv(ndf * prev, ndf * mult, 2, use_bias)]
            seq += [] if sn else [norm_layer(ndf * mult)]
            seq += [nn.LeakyReLU(slope)]
        prev, mult = mult, min(2 ** n_layers, 8)
        seq += [conv(ndf * prev, ndf * mult, 1, use_bias)]
        seq += [] if sn else [norm_layer(ndf * mult)]
        seq += [nn.LeakyReLU(slope)]
        last = nn.Conv2d(ndf * mult, 1, kw, 1, padw, bias=not sn)
        seq += [spectral_norm(last) if sn else last]
        self.model = nn.Sequential(*seq)
        self.use_sigmoid = use_sigmoid

    def forward(self, input):
        out = self.model(input)
        return torch.sigmoid(out) if self.use_sigmoid else out


@DISCRIMINATORS.register()
class NLayerDiscriminatorWithClassification(NLayerDiscriminator):
    """Class-conditional PatchGAN: the one-hot class is tiled over the image and concatenated
    as extra channels. forward(x [N, C, H, W], class_id [N] int64).

    Args: input_nc, n_class (default 10), and NLayerDiscriminator's arguments.
    """

    def __init__(self, input_nc, n_class=10, ndf=64, n_layers=3, norm_type="instance", use_sigmoid=False):
        super().__init__(input_nc + n_class, ndf=ndf, n_layers=n_layers, norm_type=norm_type,
                         use_sigmoid=use_sigmoid)
        self.n_class = n_class

    def forward(self, x, class_id):
        if self.n_class > 0:
            onehot = F.one_hot(class_id.long() % self.n_class, self.n_class).to(x.dtype)
            onehot = onehot[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
            x = torch.cat([x, onehot], 1)
        return super().forward(x)

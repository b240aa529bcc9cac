"""The multi-scale patch discriminator of the First Order Motion Model.

Paper: Siarohin et al., "First Order Motion Model for Image Animation", NeurIPS 2019,
https://arxiv.org/abs/2003.00196 (Sec. 3.3: an LSGAN discriminator per pyramid scale, optionally
fed the driving keypoints as Gaussian heatmaps).
Reference: PaddleGAN `ppgan/models/discriminators/discriminator_firstorder.py` (from
AliaksandrSiarohin/first-order-model `modules/discriminator.py`). Sub-module names are
PaddleGAN's (`discs.<scale>.down_blocks.<i>.conv`, `conv`; spectral norm as `weight_orig`,
`weight_u`, `weight_v`), so its `discriminator` weights map by name.

`FirstOrderDiscriminator` is PaddleGAN's registry name and config shape
(`{discriminator_cfg, common_params, train_params}`); here it is only the net (its
`.discriminator` is the `MultiScaleDiscriminator`): the losses live in `FirstOrderModel`.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ...modules.first_order import kp2gaussian
from ...utils.errors import ConfigError
from .builder import DISCRIMINATORS


def scale_name(scale):
    """The pyramid key of a scale: 1 -> '1', 0.5 -> '0.5' (PaddleGAN's `str(scale)`)."""
    return str(scale)


class DownBlock2d(nn.Module):
    """conv (k4, no padding, optional spectral norm) -> instance norm? -> leaky ReLU 0.2 -> avg-pool 2?"""

    def __init__(self, in_features, out_features, norm=False, kernel_size=4, pool=False, sn=False):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size)
        if sn:
            self.conv = nn.utils.spectral_norm(self.conv)
        # PaddleGAN's InstanceNorm2D has an affine scale and shift
        self.norm = nn.InstanceNorm2d(out_features, eps=1e-5, affine=True) if norm else None
        self.pool = pool

    def forward(self, x):
        out = self.conv(x)
        if self.norm is not None:
            out = self.norm(out)
        out = F.leaky_relu(out, 0.2)
        if self.pool:
            out = F.avg_pool2d(out, kernel_size=2, stride=2)
        return out


class Discriminator(nn.Module):
    """One scale: `num_blocks` down blocks then a 1x1 conv to a patch map.

    Args:
        num_channels (int): image channels (default 3).
        block_expansion (int): channels of block i are min(max_features, block_expansion * 2**(i+1)).
        num_blocks (int): down blocks (default 4).
        max_features (int): channel cap (default 512).
        sn (bool): spectral norm on every conv (default False).
        use_kp (bool): concatenate the keypoints as Gaussian heatmaps to the input (default False).
        num_kp (int): keypoints (default 10), kp_variance (float): heatmap variance (default 0.01).
    forward(x [B, C, H, W], kp={'value': [B, K, 2]} | None) -> (feature maps list, prediction map
    [B, 1, h, w]).
    """

    def __init__(self, num_channels=3, block_expansion=64, num_blocks=4, max_features=512, sn=False,
                 use_kp=False, num_kp=10, kp_variance=0.01, **kwargs):
        super().__init__()
        if num_blocks < 1 or block_expansion < 1:
            raise ConfigError(f"FirstOrderDiscriminator needs num_blocks >= 1 and block_expansion >= 1, got "
                              f"{num_blocks} and {block_expansion}")
        blocks = []
        for i in range(num_blocks):
            cin = num_channels + num_kp * use_kp if i == 0 else min(max_features, block_expansion * (2 ** i))
            cout = min(max_features, block_expansion * (2 ** (i + 1)))
            blocks.append(DownBlock2d(cin, cout, norm=(i != 0), kernel_size=4, pool=(i != num_blocks - 1), sn=sn))
        self.down_blocks = nn.ModuleList(blocks)
        self.conv = nn.Conv2d(cout, 1, kernel_size=1)
        if sn:
            self.conv = nn.utils.spectral_norm(self.conv)
        self.use_kp = use_kp
        self.kp_variance = kp_variance

    def forward(self, x, kp=None):
        out = x
        if self.use_kp:
            heatmap = kp2gaussian(kp, x.shape[2:], self.kp_variance).to(x.dtype)
            out = torch.cat([out, heatmap], dim=1)
        feature_maps = []
        for block in self.down_blocks:
            out = block(out)
            feature_maps.append(out)
        return feature_maps, self.conv(out)


class MultiScaleDiscriminator(nn.Module):
    """One `Discriminator` per scale of the image pyramid.

    Args:
        scales (list[float]): pyramid scales it judges (default (1,)); other keyword arguments
            go to every `Discriminator` (`estimate_jacobian` of common_params is accepted and unused).
    forward(pyramid {'prediction_<scale>': [B, C, h, w]}, kp) -> {'feature_maps_<scale>': list,
    'prediction_map_<scale>': [B, 1, h', w']}.
    """

    def __init__(self, scales=(1,), **kwargs):
        super().__init__()
        self.scales = list(scales)
        if not self.scales:
            raise ConfigError("FirstOrderDiscriminator discriminator_cfg.scales must name at least one scale")
        # '.' cannot be in a sub-module name: PaddleGAN writes 0.5 as '0-5'
        self.discs = nn.ModuleDict({scale_name(s).replace(".", "-"): Discriminator(**kwargs) for s in self.scales})

    def forward(self, x, kp=None):
        out = {}
        for key, disc in self.discs.items():
            scale = key.replace("-", ".")
            feature_maps, prediction_map = disc(x["prediction_" + scale], kp)
            out["feature_maps_" + scale] = feature_maps
            out["prediction_map_" + scale] = prediction_map
        return out


@DISCRIMINATORS.register()
class FirstOrderDiscriminator(nn.Module):
    """PaddleGAN's config shape for the FOM discriminator.

    Args:
        discriminator_cfg (dict): scales, block_expansion, max_features, num_blocks, sn
            (and optionally use_kp, kp_variance) of the `MultiScaleDiscriminator`.
        common_params (dict | None): num_kp, num_channels, estimate_jacobian (shared with the
            generator; `FirstOrderModel` passes its own).
        train_params (dict | None): accepted for PaddleGAN configs; the losses are the model's.
    forward = `self.discriminator.forward`.
    """

    def __init__(self, discriminator_cfg, common_params=None, train_params=None):
        super().__init__()
        self.discriminator = MultiScaleDiscriminator(**dict(discriminator_cfg), **dict(common_params or {}))
        self.scales = self.discriminator.scales

    def forward(self, x, kp=None):
        return self.discriminator(x, kp)

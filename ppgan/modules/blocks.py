"""Blocks shared by the image-to-image generators (ResnetGenerator, U-GAT-IT, Photo2Cartoon).

Sub-module names and Sequential indices follow PaddleGAN, so `.pdparams` map by name.
"""
import torch
from torch import nn

from ..utils.errors import ConfigError
from .batch_norm import TrainableStatsBatchNorm2d
from .norm import build_norm_layer

PADDING_TYPES = ("reflect", "replicate", "zero")
TRANSLATION_NORM_TYPES = ("batch", "instance", "none")


def build_translation_norm_layer(norm_type):
    """PaddleGAN's `build_norm_layer(norm_type)` as its translation generators use it.

    Unlike `ppgan.modules.norm.build_norm_layer`, 'batch' gives `TrainableStatsBatchNorm2d`
    (PaddleGAN's BatchNorm with `trainable_statistics=True`: batch statistics in eval mode too).
    'spectral' is refused: PaddleGAN's generators crash with it (they call the norm on a channel count).

    Returns:
        (callable, bool): `f(num_features) -> nn.Module`, and whether the convs before it get a
        bias (PaddleGAN: only for instance norm, whose affine parameters stay fixed at 1/0).
    """
    if norm_type not in TRANSLATION_NORM_TYPES:
        raise ConfigError(f"norm_type must be one of {', '.join(TRANSLATION_NORM_TYPES)}; got {norm_type!r}")
    if norm_type == "batch":
        return TrainableStatsBatchNorm2d, False
    return build_norm_layer(norm_type), norm_type == "instance"


def pad_layer(padding_type, size):
    """A padding layer for 'reflect' / 'replicate', None for 'zero' (the conv pads instead)."""
    if padding_type == "reflect":
        return nn.ReflectionPad2d(size)
    if padding_type == "replicate":
        return nn.ReplicationPad2d(size)
    if padding_type == "zero":
        return None
    raise ConfigError(f"padding_type must be one of {', '.join(PADDING_TYPES)}; got {padding_type!r}")


class ResnetBlock(nn.Module):
    """Residual block `x + conv_block(x)` with two 3x3 convs (He et al., 2016), PaddleGAN layout.

    `conv_block` is [pad, conv, norm, ReLU, (Dropout), pad, conv, norm]; with padding_type 'zero'
    the pads are left out and the convs pad by 1 (indices shift as in PaddleGAN).

    Args:
        dim (int): channels in and out.
        padding_type (str): 'reflect' (default), 'replicate' or 'zero'.
        norm_layer (callable): `f(num_features) -> nn.Module` (default: no-affine InstanceNorm2d).
        use_dropout (bool): Dropout(0.5) after the first ReLU (default False).
        use_bias (bool): conv biases (default True).
    """

    def __init__(self, dim, padding_type="reflect", norm_layer=nn.InstanceNorm2d, use_dropout=False,
                 use_bias=True):
        super().__init__()
        p = 1 if padding_type == "zero" else 0
        layers = []
        for second in (False, True):
            pad = pad_layer(padding_type, 1)
            layers += [pad] if pad is not None else []
            layers += [nn.Conv2d(dim, dim, 3, padding=p, bias=use_bias), norm_layer(dim)]
            if not second:
                layers += [nn.ReLU()] + ([nn.Dropout(0.5)] if use_dropout else [])
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


def cam_reweight(x, gap_fc, gmp_fc):
    """U-GAT-IT class activation map (Kim et al., 2020): weight the features by the CAM logits' FCs.

    Args:
        x (Tensor): features [N, C, H, W].
        gap_fc, gmp_fc (nn.Linear): `Linear(C, 1, bias=False)` on global average / max pooled x.
    Returns:
        (Tensor, Tensor): concat([x * w_gap, x * w_gmp], 1) [N, 2C, H, W] and cam_logit [N, 2].
    """
    gap_logit = gap_fc(torch.flatten(torch.mean(x, dim=(2, 3)), 1))
    gmp_logit = gmp_fc(torch.flatten(torch.amax(x, dim=(2, 3)), 1))
    gap = x * gap_fc.weight[:, :, None, None]  # weight [1, C] -> [1, C, 1, 1]
    gmp = x * gmp_fc.weight[:, :, None, None]
    return torch.cat([gap, gmp], 1), torch.cat([gap_logit, gmp_logit], 1)


def check_ugatit_input(x, light, img_size, multiple=4):
    """U-GAT-IT generators keep the size only for H, W divisible by `multiple`; the full (not
    light) variant's FC was sized for img_size x img_size inputs."""
    h, w = x.shape[-2:]
    if h % multiple or w % multiple:
        raise ConfigError(f"input H and W must be divisible by {multiple}, got {h}x{w}")
    if not light and (h, w) != (img_size, img_size):
        raise ConfigError(f"light=False needs {img_size}x{img_size} inputs (img_size), got {h}x{w}; "
                         "use light=True for other sizes")

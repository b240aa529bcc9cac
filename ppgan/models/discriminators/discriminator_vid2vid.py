"""The vid2vid discriminators: Wang et al., "Video-to-Video Synthesis", NeurIPS 2018,
https://arxiv.org/abs/1808.06601 (facts from NVIDIA/vid2vid `models/networks.py`
`MultiscaleDiscriminator` / `NLayerDiscriminator` and `models/vid2vid_model_D.py`).

One class serves both of the paper's discriminators; the config sets its input:
  * the image discriminator D_I reads a frame beside its source map:
    input_nc = source_nc + output_nc;
  * the temporal discriminator D_V reads n_frames_D consecutive frames and the n_frames_D - 1
    true flows between them (the same flows for real and generated clips, as in NVIDIA's code):
    input_nc = n_frames_D * output_nc + 2 * (n_frames_D - 1).
It is pix2pixHD's multi-scale PatchGAN that returns its intermediate features, which the
generator's feature-matching loss compares between real and generated inputs.
"""
import torch.nn.functional as F
from torch import nn

from ...modules.norm import build_norm_layer
from ...utils.errors import ConfigError
from .builder import DISCRIMINATORS

NORM_TYPES = ("instance", "batch", "none")


class _PatchScale(nn.Module):
    """One scale: n_layers stride-2 4x4 convs, one stride-1 conv, a 1-channel patch output.
    forward -> list of every block's output, the patch logits [N, 1, h, w] last."""

    def __init__(self, input_nc, ndf, n_layers, norm_layer):
        super().__init__()
        blocks = [nn.Sequential(nn.Conv2d(input_nc, ndf, 4, 2, 2), nn.LeakyReLU(0.2))]
        nf = ndf
        for n in range(1, n_layers + 1):
            prev, nf = nf, min(nf * 2, 512)
            stride = 2 if n < n_layers else 1
            blocks.append(nn.Sequential(nn.Conv2d(prev, nf, 4, stride, 2), norm_layer(nf), nn.LeakyReLU(0.2)))
        blocks.append(nn.Sequential(nn.Conv2d(nf, 1, 4, 1, 2)))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats


@DISCRIMINATORS.register()
class Vid2VidDiscriminator(nn.Module):
    """Multi-scale patch discriminator with intermediate features (vid2vid's D_I and D_V).

    Args:
        input_nc (int): input channels (see the module docstring).
        ndf (int): channels of the first conv. Default 64.
        n_layers (int): stride-2 convs per scale (the last block has stride 1). Default 3.
        num_D (int): scales; scale k reads the input average-pooled k times (3x3, stride 2). Default 2.
        norm_type (str): 'instance' (default), 'batch' or 'none'.

    forward(x [N, input_nc, H, W]) -> list (one per scale, full resolution first) of lists of
    features, each ending with the patch logits [N, 1, h, w].
    """

    def __init__(self, input_nc, ndf=64, n_layers=3, num_D=2, norm_type="instance"):
        super().__init__()
        if norm_type not in NORM_TYPES:
            raise ConfigError(f"Vid2VidDiscriminator norm_type must be one of {', '.join(NORM_TYPES)}; "
                              f"got {norm_type!r}")
        if int(num_D) < 1 or int(n_layers) < 1 or int(input_nc) < 1:
            raise ConfigError("Vid2VidDiscriminator needs input_nc, n_layers and num_D >= 1")
        norm_layer = build_norm_layer(norm_type)
        self.input_nc, self.n_layers = int(input_nc), int(n_layers)
        self.scales = nn.ModuleList(_PatchScale(self.input_nc, ndf, self.n_layers, norm_layer)
                                    for _ in range(int(num_D)))

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.input_nc:
            raise ConfigError(f"Vid2VidDiscriminator expects [N, {self.input_nc}, H, W]; got {tuple(x.shape)}")
        out = []
        for k, scale in enumerate(self.scales):
            if k:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(scale(x))
        return out

"""SRVGGNetCompact: the compact VGG-style SR net of Real-ESRGAN (realesr-animevideov3,
realesr-general-x4v3), and `RescaledSR`, an SR net followed by a bicubic resize of its output.

Paper: Wang et al., "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic
Data", ICCVW 2021, https://arxiv.org/abs/2107.10833 (the compact net is described in the
repository's docs, `docs/anime_video_model.md`).
Reference: https://github.com/xinntao/Real-ESRGAN `realesrgan/archs/srvgg_arch.py`.

Sub-module names are Real-ESRGAN's (`body.0` first conv, `body.1` its activation, ...,
`body.<2 * num_conv + 2>` the last conv), so its published `.pth` state dicts load by name.
PaddleGAN has no such net.
"""
import torch.nn.functional as F
from torch import nn

from ...utils.errors import ConfigError
from .builder import GENERATORS


@GENERATORS.register()
class SRVGGNetCompact(nn.Module):
    """[N, num_in_ch, H, W] -> [N, num_out_ch, upscale*H, upscale*W] for any H, W.

    A plain stack of 3x3 convs at input resolution (conv, act, then `num_conv` x [conv, act]),
    a last conv to `num_out_ch * upscale**2` channels, pixel shuffle, plus the nearest-neighbour
    upsampled input (so the body learns a residual). Inputs RGB in [0, 1]; output not clamped.

    Args:
        num_in_ch (int): input channels (default 3).
        num_out_ch (int): output channels (default 3); must equal num_in_ch (the residual skip).
        num_feat (int): feature channels (default 64).
        num_conv (int): convs in the body besides the first and the last (default 16).
        upscale (int): integer up-scaling factor >= 1 (default 4).
        act_type (str): activation after every conv but the last: 'prelu' (default; one slope
            per channel), 'relu' or 'leakyrelu' (slope 0.1), as in Real-ESRGAN.
    """

    ACT_TYPES = ("relu", "prelu", "leakyrelu")

    # half precision casts the whole net to fp16/bf16 (ppgan.apps.base_predictor): plain convs,
    # PReLU, pixel shuffle and nearest upsampling, nothing that needs fp32
    half_mode = "direct"

    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4, act_type="prelu"):
        super().__init__()
        if isinstance(upscale, bool) or not isinstance(upscale, int) or upscale < 1:
            raise ConfigError(f"SRVGGNetCompact upscale must be an integer >= 1, got {upscale!r}")
        if act_type not in self.ACT_TYPES:
            raise ConfigError(f"SRVGGNetCompact act_type must be one of {self.ACT_TYPES}, got {act_type!r}")
        if num_in_ch != num_out_ch:
            raise ConfigError(f"SRVGGNetCompact adds the upsampled input to the output: num_in_ch "
                             f"({num_in_ch}) must equal num_out_ch ({num_out_ch})")
        if num_conv < 0 or num_feat < 1:
            raise ConfigError(f"SRVGGNetCompact needs num_conv >= 0 and num_feat >= 1, got {num_conv}, {num_feat}")
        self.num_in_ch, self.num_out_ch, self.num_feat = num_in_ch, num_out_ch, num_feat
        self.num_conv, self.upscale, self.act_type = num_conv, upscale, act_type
        self.scale = upscale

        layers = [nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), self._act(num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), self._act(num_feat)]
        layers.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.body = nn.ModuleList(layers)  # Real-ESRGAN's names: body.<i>
        self.upsampler = nn.PixelShuffle(upscale)

    def _act(self, num_feat):
        if self.act_type == "prelu":
            return nn.PReLU(num_parameters=num_feat)
        if self.act_type == "relu":
            return nn.ReLU(inplace=True)
        return nn.LeakyReLU(negative_slope=0.1, inplace=True)

    def forward(self, x):
        """x: [N, num_in_ch, H, W] -> [N, num_out_ch, upscale*H, upscale*W]."""
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)
        return out + F.interpolate(x, scale_factor=self.upscale, mode="nearest")


class RescaledSR(nn.Module):
    """An SR net whose output is resized by a bicubic factor: `net(x)` then x`factor`.

    The ncnn builds of realesr-animevideov3 x2 and x3 are the x4 net followed by exactly this
    (an ncnn `Interp` bicubic layer, scale 0.5 resp. 0.75); ncnn's bicubic (a = -0.75, half-pixel
    centres, edge-clamped taps, no antialiasing) is PyTorch's `mode='bicubic'`,
    `align_corners=False`.

    Args:
        net (nn.Module): an SR net with an integer `scale` attribute.
        factor (float): resize factor applied to the net's output (0 < factor); `net.scale *
            factor` must be an integer, the overall `scale` of this module.
    """

    def __init__(self, net, factor):
        super().__init__()
        inner = getattr(net, "scale", None)
        if not isinstance(inner, int) or not factor > 0:
            raise ConfigError(f"RescaledSR needs a net with an integer `scale` and a factor > 0, "
                             f"got scale {inner!r}, factor {factor!r}")
        overall = inner * factor
        if abs(overall - round(overall)) > 1e-9 or round(overall) < 1:
            raise ConfigError(f"RescaledSR: net scale {inner} x factor {factor} is not a positive integer")
        self.net = net
        self.factor = float(factor)
        self.scale = int(round(overall))
        self.size_multiple = getattr(net, "size_multiple", 1)

    def forward(self, x):
        """x: [N, C, H, W] -> [N, C', scale*H, scale*W]."""
        out = self.net(x)
        h, w = x.shape[-2] * self.scale, x.shape[-1] * self.scale
        # an explicit size (not scale_factor) keeps the output exactly scale*H even where
        # net.scale * H * factor rounds; the sampling grid is then in_size / out_size = 1/factor
        return F.interpolate(out, size=(h, w), mode="bicubic", align_corners=False)

"""BasicVSR++, PaddleGAN layout.

Paper: Chan et al., "BasicVSR++: Improving Video Super-Resolution with Enhanced Propagation and
Alignment", CVPR 2022, https://arxiv.org/abs/2104.13371.
Reference: mmediting `mmedit/models/backbones/sr_backbones/basicvsr_pp.py` as ported by PaddleGAN
`ppgan/models/generators/basicvsr_plus_plus.py` (and `SecondOrderDeformableAlignment` of its
`basicvsr.py`).

Attribute names are PaddleGAN's (`spynet.*`, `feat_extract.covn1`, `deform_align_backward_1.
conv_offset.<i>`, `deform_align_backward_1.dcn.weight`, `backbone_forward_2.ResidualBlocks.block<i>`,
`reconstruction.*`, `upsample1.upsample_conv`, `conv_hr`, `conv_last`), so PaddleGAN `.pdparams`
load by name. SPyNet, `flow_warp` and the residual stacks are shared with BasicVSR; the modulated
deformable conv is `ppgan.modules.dcn`.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ...modules.dcn import ModulatedDeformConv2d
from ...modules.flow import SPyNet, flow_warp
from ...modules.sr_blocks import PixelShufflePack, paddle_default_init_
from ...utils.errors import ConfigError
from .basicvsr import BasicVSRNet, ResidualBlocksWithInputConv
from .builder import GENERATORS

__all__ = ["BasicVSRPlusPlus", "SecondOrderDeformableAlignment", "flow_offsets", "offset_conv_stack",
           "check_video_input"]

PROPAGATION = ("backward_1", "forward_1", "backward_2", "forward_2")  # order of the branches


def _conv(cin, cout, k, stride=1, padding=0):
    return paddle_default_init_(nn.Conv2d(cin, cout, k, stride, padding))


def offset_conv_stack(cin, mid, out):
    """PaddleGAN's `conv_offset`: conv-lrelu x3 then a conv to `out` channels, the last zeroed."""
    seq = nn.Sequential(_conv(cin, mid, 3, 1, 1), nn.LeakyReLU(0.1), _conv(mid, mid, 3, 1, 1),
                        nn.LeakyReLU(0.1), _conv(mid, mid, 3, 1, 1), nn.LeakyReLU(0.1),
                        _conv(mid, out, 3, 1, 1))
    nn.init.zeros_(seq[-1].weight)
    nn.init.zeros_(seq[-1].bias)
    return seq


def flow_offsets(flow, taps):
    """A flow [N, 2 (x, y), H, W] as DCN offsets [N, 2 * taps, H, W]: (dy, dx) repeated per tap
    (Paddle `flow.flip(1).tile([1, taps, 1, 1])`)."""
    return flow.flip(1).repeat(1, taps, 1, 1)


def check_video_input(name, x, min_size):
    """Raise ConfigError unless x is [N, T >= 1, 3, H, W] with H, W >= min_size."""
    if x.ndim != 5 or x.shape[2] != 3 or x.shape[1] < 1:
        raise ConfigError(f"{name} needs [N, T, 3, H, W] frames, got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h < min_size or w < min_size:
        raise ConfigError(f"{name} needs H and W of at least {min_size}, got {h} and {w}")


class SecondOrderDeformableAlignment(nn.Module):
    """Flow-guided deformable alignment of the two previous features (BasicVSR++).

    `forward(x, extra_feat, flow_1, flow_2)`: x = [feat_n1, feat_n2] ([N, 2C, H, W]);
    conv_offset([extra_feat, flow_1, flow_2]) gives 27 * dg channels, chunks o1, o2, m; the
    offsets 10 * tanh([o1, o2]) are residuals over the flows (first half of the groups over
    flow_1, for feat_n1; second half over flow_2, for feat_n2), mask = sigmoid(m).

    Args:
        in_channels (int): channels of x (2C).
        out_channels (int): C.
        kernel_size, stride, padding, dilation, groups: of the deformable conv.
        deformable_groups (int): dg, even (default 16).
        impl (str): deformable conv implementation, 'auto' | 'torch' | 'torchvision'.
    """

    def __init__(self, in_channels=128, out_channels=64, kernel_size=3, stride=1, padding=1,
                 dilation=1, groups=1, deformable_groups=16, impl="auto"):
        super().__init__()
        if deformable_groups % 2:
            raise ConfigError(f"SecondOrderDeformableAlignment needs an even deformable_groups, "
                              f"got {deformable_groups}")
        self.conv_offset = offset_conv_stack(3 * out_channels + 4, out_channels, 27 * deformable_groups)
        self.dcn = ModulatedDeformConv2d(in_channels, out_channels, kernel_size, stride, padding,
                                         dilation, deformable_groups=deformable_groups,
                                         groups=groups, impl=impl)

    def forward(self, x, extra_feat, flow_1, flow_2):
        out = self.conv_offset(torch.cat([extra_feat, flow_1, flow_2], dim=1))
        o1, o2, mask = torch.chunk(out, 3, dim=1)
        offset_1, offset_2 = torch.chunk(10 * torch.tanh(torch.cat([o1, o2], dim=1)), 2, dim=1)
        taps = offset_1.shape[1] // 2
        offset = torch.cat([offset_1 + flow_offsets(flow_1, taps),
                            offset_2 + flow_offsets(flow_2, taps)], dim=1)
        return self.dcn(x, offset, torch.sigmoid(mask))


@GENERATORS.register()
class BasicVSRPlusPlus(nn.Module):
    """BasicVSR++: [N, T, 3, H, W] -> [N, T, 3, 4H, 4W] (or [N, T, 3, H, W] when
    `is_low_res_input` is False: the input is full size and is brought down x4 inside).

    Frames are RGB in [0, 1]. Four propagation branches (backward, forward, backward, forward)
    each see all earlier branches' features (grid propagation) and align the two previous
    features with flow-guided deformable convs (second-order propagation); SPyNet flows are
    computed on the low-resolution frames, which must be at least 64 x 64 (PaddleGAN asserts the
    same); H and W need not be multiples of anything for low-res input, and must be multiples of
    4 otherwise. A mirror-extended clip (even T, second half == first half reversed) reuses the
    backward flows, as PaddleGAN does.

    Unlike PaddleGAN, the constructor does not download SPyNet weights: they are part of every
    BasicVSR++ checkpoint (`spynet.*`).

    Args:
        mid_channels (int): feature channels (default 64); a multiple of 8 (16 deformable groups
            over 2 * mid_channels input channels).
        num_blocks (int): residual blocks per propagation branch (default 7).
        is_low_res_input (bool): x4 SR (True, default) or same-size restoration (False).
        dcn_impl (str): deformable conv implementation, 'auto' | 'torch' | 'torchvision'.
    """

    MIN_SIZE = 64  # of the input (256 and multiples of 4 when not is_low_res_input)
    SIZE_MULTIPLE = 1
    DEFORMABLE_GROUPS = 16

    def __init__(self, mid_channels=64, num_blocks=7, is_low_res_input=True, dcn_impl="auto"):
        super().__init__()
        if (2 * mid_channels) % self.DEFORMABLE_GROUPS:
            raise ConfigError(f"BasicVSRPlusPlus mid_channels must be a multiple of 8, got {mid_channels}")
        self.mid_channels = mid_channels
        self.is_low_res_input = bool(is_low_res_input)
        if not self.is_low_res_input:  # full-size input: flows on its bicubic x1/4
            self.MIN_SIZE, self.SIZE_MULTIPLE = 4 * self.MIN_SIZE, 4
        self.spynet = SPyNet()
        if self.is_low_res_input:
            self.feat_extract = ResidualBlocksWithInputConv(3, mid_channels, 5)
        else:
            self.feat_extract = nn.Sequential(
                _conv(3, mid_channels, 3, 2, 1), nn.LeakyReLU(0.1),
                _conv(mid_channels, mid_channels, 3, 2, 1), nn.LeakyReLU(0.1),
                ResidualBlocksWithInputConv(mid_channels, mid_channels, 5))
        for name in PROPAGATION:  # PaddleGAN's definition order, so state dicts list alike
            setattr(self, f"deform_align_{name}", SecondOrderDeformableAlignment(
                2 * mid_channels, mid_channels, 3, padding=1,
                deformable_groups=self.DEFORMABLE_GROUPS, impl=dcn_impl))
        for i, name in enumerate(PROPAGATION):  # branch i sees the spatial feats + i earlier branches
            setattr(self, f"backbone_{name}",
                    ResidualBlocksWithInputConv((2 + i) * mid_channels, mid_channels, num_blocks))
        self.reconstruction = ResidualBlocksWithInputConv(5 * mid_channels, mid_channels, 5)
        self.upsample1 = PixelShufflePack(mid_channels, mid_channels, 2, upsample_kernel=3)
        self.upsample2 = PixelShufflePack(mid_channels, 64, 2, upsample_kernel=3)
        self.conv_hr = _conv(64, 64, 3, 1, 1)
        self.conv_last = _conv(64, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1)

    check_if_mirror_extended = staticmethod(BasicVSRNet.check_if_mirror_extended)

    def compute_flow(self, lqs):
        """(flows_forward, flows_backward), each [N, T-1, 2, H, W]: backward[:, i] warps frame
        i+1's features to frame i, forward[:, i] frame i's to frame i+1."""
        n, t, c, h, w = lqs.shape
        if t == 1:
            empty = lqs.new_zeros(n, 0, 2, h, w)
            return empty, empty
        lqs_1 = lqs[:, :-1].reshape(-1, c, h, w)
        lqs_2 = lqs[:, 1:].reshape(-1, c, h, w)
        flows_backward = self.spynet(lqs_1, lqs_2).reshape(n, t - 1, 2, h, w)
        if self.check_if_mirror_extended(lqs):
            return flows_backward.flip(1), flows_backward
        return self.spynet(lqs_2, lqs_1).reshape(n, t - 1, 2, h, w), flows_backward

    def propagate(self, feats, flows, name):
        """Run branch `name` over the clip; adds feats[name], a list of [N, C, h, w] in time order."""
        t = len(feats["spatial"])
        backward = name.startswith("backward")
        align = getattr(self, f"deform_align_{name}")
        backbone = getattr(self, f"backbone_{name}")
        earlier = [k for k in feats if k not in ("spatial", name)]
        out = []  # in processing order
        feat_prop = feats["spatial"][0].new_zeros(feats["spatial"][0].shape)
        for i, idx in enumerate(range(t - 1, -1, -1) if backward else range(t)):
            feat_current = feats["spatial"][idx]
            if i > 0:
                flow_n1 = flows[:, idx] if backward else flows[:, idx - 1]
                cond_n1 = flow_warp(feat_prop, flow_n1.permute(0, 2, 3, 1))
                feat_n2 = torch.zeros_like(feat_prop)
                flow_n2 = torch.zeros_like(flow_n1)
                cond_n2 = torch.zeros_like(cond_n1)
                if i > 1:  # the feature two steps back, warped by the composed flow
                    feat_n2 = out[-2]
                    flow_n2 = flows[:, idx + 1] if backward else flows[:, idx - 2]
                    flow_n2 = flow_n1 + flow_warp(flow_n2, flow_n1.permute(0, 2, 3, 1))
                    cond_n2 = flow_warp(feat_n2, flow_n2.permute(0, 2, 3, 1))
                cond = torch.cat([cond_n1, feat_current, cond_n2], dim=1)
                feat_prop = align(torch.cat([feat_prop, feat_n2], dim=1), cond, flow_n1, flow_n2)
            feat = torch.cat([feat_current] + [feats[k][idx] for k in earlier] + [feat_prop], dim=1)
            feat_prop = feat_prop + backbone(feat)
            out.append(feat_prop)
        feats[name] = out[::-1] if backward else out
        return feats

    def upsample(self, lqs, feats):
        outputs = []
        for i in range(lqs.shape[1]):
            hr = torch.cat([feats[k][i] for k in ("spatial",) + PROPAGATION], dim=1)
            hr = self.reconstruction(hr)
            hr = self.lrelu(self.upsample1(hr))
            hr = self.lrelu(self.upsample2(hr))
            hr = self.lrelu(self.conv_hr(hr))
            hr = self.conv_last(hr)
            if self.is_low_res_input:
                hr = hr + F.interpolate(lqs[:, i], scale_factor=4, mode="bilinear", align_corners=False)
            else:
                hr = hr + lqs[:, i]
            outputs.append(hr)
        return torch.stack(outputs, dim=1)

    def forward(self, lqs):
        """lqs: [N, T, 3, H, W] -> [N, T, 3, 4H, 4W] (is_low_res_input) or [N, T, 3, H, W]."""
        check_video_input("BasicVSRPlusPlus", lqs, self.MIN_SIZE)
        n, t, c, h, w = lqs.shape
        if self.is_low_res_input:
            lqs_low = lqs
        else:
            if h % 4 or w % 4:
                raise ConfigError(f"BasicVSRPlusPlus with is_low_res_input=False needs H and W "
                                  f"multiples of 4, got {h} and {w}")
            lqs_low = F.interpolate(lqs.reshape(-1, c, h, w), scale_factor=0.25, mode="bicubic",
                                    align_corners=False).reshape(n, t, c, h // 4, w // 4)
        feats_ = self.feat_extract(lqs.reshape(-1, c, h, w))
        feats_ = feats_.reshape(n, t, *feats_.shape[1:])
        feats = {"spatial": list(feats_.unbind(1))}
        flows_forward, flows_backward = self.compute_flow(lqs_low)
        for name in PROPAGATION:
            self.propagate(feats, flows_backward if name.startswith("backward") else flows_forward, name)
        return self.upsample(lqs, feats)

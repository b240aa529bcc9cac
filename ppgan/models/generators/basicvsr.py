"""BasicVSR, PaddleGAN layout.

Paper: Chan et al., "BasicVSR: The Search for Essential Components in Video Super-Resolution and
Beyond", CVPR 2021, https://arxiv.org/abs/2012.02181.
Reference: mmediting `mmedit/models/backbones/sr_backbones/basicvsr_net.py` as ported by PaddleGAN
`ppgan/models/generators/basicvsr.py`.

Attribute names are PaddleGAN's, typo included (`backward_resblocks.covn1`,
`backward_resblocks.ResidualBlocks.block<i>.conv1`, `upsample1.upsample_conv`, `spynet.*`), so
PaddleGAN `.pdparams` load by name. SPyNet and `flow_warp` live in `ppgan/modules/flow.py` (shared
with the other flow-based video nets) and are re-exported here.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ...utils.errors import ConfigError
from ...modules.flow import SPyNet, SPyNetBasicModule, flow_warp
from ...modules.sr_blocks import PixelShufflePack, ResidualBlockNoBN, make_layer, paddle_default_init_
from .builder import GENERATORS

__all__ = ["BasicVSRNet", "ResidualBlocksWithInputConv", "SPyNet", "SPyNetBasicModule", "flow_warp"]


def _conv(cin, cout, k, stride=1, padding=0):
    return paddle_default_init_(nn.Conv2d(cin, cout, k, stride, padding))


class ResidualBlocksWithInputConv(nn.Module):
    """3x3 conv + LeakyReLU(0.1), then `num_blocks` residual blocks: [N, in, H, W] -> [N, out, H, W].

    Args:
        in_channels (int): input channels of the first conv.
        out_channels (int): channels of the residual blocks (default 64).
        num_blocks (int): number of `ResidualBlockNoBN` (default 30).
    """

    def __init__(self, in_channels, out_channels=64, num_blocks=30):
        super().__init__()
        self.covn1 = _conv(in_channels, out_channels, 3, 1, 1)  # sic, PaddleGAN's name
        self.Leaky_relu = nn.LeakyReLU(negative_slope=0.1)
        self.ResidualBlocks = make_layer(ResidualBlockNoBN, num_blocks, name_fmt="block{}", nf=out_channels)

    def forward(self, feat):
        return self.ResidualBlocks(self.Leaky_relu(self.covn1(feat)))


@GENERATORS.register()
class BasicVSRNet(nn.Module):
    """BasicVSR: bidirectional recurrent video SR, [N, T, 3, H, W] -> [N, T, 3, 4H, 4W] (x4 only).

    Frames are RGB in [0, 1]; H and W must be at least 64 (SPyNet's six-level pyramid; PaddleGAN
    asserts the same) and need not be multiples of 32. Features propagate backward then forward in
    time, warped by SPyNet flows; each output frame is a residual over the bilinear x4 input.
    A mirror-extended sequence (even T, second half == first half reversed) reuses the backward
    flows for the forward pass, as PaddleGAN does.

    Unlike PaddleGAN, the constructor does not download SPyNet weights: they are part of every
    BasicVSR checkpoint (`spynet.*`); load one with `ppgan.weights.load_paddle_state_dict`.

    Args:
        mid_channels (int): feature channels (default 64).
        num_blocks (int): residual blocks per propagation branch (default 30).
    """

    MIN_SIZE = 64

    def __init__(self, mid_channels=64, num_blocks=30):
        super().__init__()
        self.mid_channels = mid_channels
        self.spynet = SPyNet()
        self.backward_resblocks = ResidualBlocksWithInputConv(mid_channels + 3, mid_channels, num_blocks)
        self.forward_resblocks = ResidualBlocksWithInputConv(mid_channels + 3, mid_channels, num_blocks)
        self.fusion = _conv(mid_channels * 2, mid_channels, 1, 1, 0)
        self.upsample1 = PixelShufflePack(mid_channels, mid_channels, 2, upsample_kernel=3)
        self.upsample2 = PixelShufflePack(mid_channels, 64, 2, upsample_kernel=3)
        self.conv_hr = _conv(64, 64, 3, 1, 1)
        self.conv_last = _conv(64, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1)

    @staticmethod
    def check_if_mirror_extended(lrs):
        """True if `lrs` [N, T, C, H, W] has even T and frame i equals frame T-1-i."""
        t = lrs.shape[1]
        if t % 2:
            return False
        first, second = lrs.chunk(2, dim=1)
        return torch.equal(first, second.flip(1))

    def compute_flow(self, lrs, mirror_extended=False):
        """Flows [N, T-1, 2, H, W]: (forward, backward). forward[:, i] warps frame i+1's features
        from frame i (None when mirror-extended); backward[:, i] warps frame i's from frame i+1."""
        n, t, c, h, w = lrs.shape
        lrs_1 = lrs[:, :-1].reshape(-1, c, h, w)
        lrs_2 = lrs[:, 1:].reshape(-1, c, h, w)
        flows_backward = self.spynet(lrs_1, lrs_2).reshape(n, t - 1, 2, h, w)
        flows_forward = None if mirror_extended else self.spynet(lrs_2, lrs_1).reshape(n, t - 1, 2, h, w)
        return flows_forward, flows_backward

    def forward(self, lrs):
        """lrs: [N, T, 3, H, W] (T >= 1, H, W >= 64) -> [N, T, 3, 4H, 4W]."""
        if lrs.ndim != 5 or lrs.shape[2] != 3:
            raise ConfigError(f"BasicVSRNet needs [N, T, 3, H, W] frames, got {tuple(lrs.shape)}")
        n, t, _, h, w = lrs.shape
        if h < self.MIN_SIZE or w < self.MIN_SIZE:
            raise ConfigError(f"BasicVSRNet needs H and W of at least {self.MIN_SIZE}, got {h} and {w}")
        flows_forward, flows_backward = (None, None)
        if t > 1:
            flows_forward, flows_backward = self.compute_flow(lrs, self.check_if_mirror_extended(lrs))

        # backward-time propagation: frame t-1 down to 0
        backward_feats = [None] * t
        feat_prop = lrs.new_zeros(n, self.mid_channels, h, w)
        for i in range(t - 1, -1, -1):
            if i < t - 1:
                feat_prop = flow_warp(feat_prop, flows_backward[:, i].permute(0, 2, 3, 1))
            feat_prop = self.backward_resblocks(torch.cat([lrs[:, i], feat_prop], dim=1))
            backward_feats[i] = feat_prop

        # forward-time propagation and upsampling
        outputs = []
        feat_prop = torch.zeros_like(feat_prop)
        for i in range(t):
            lr_curr = lrs[:, i]
            if i > 0:
                flow = flows_forward[:, i - 1] if flows_forward is not None else flows_backward[:, -i]
                feat_prop = flow_warp(feat_prop, flow.permute(0, 2, 3, 1))
            feat_prop = self.forward_resblocks(torch.cat([lr_curr, feat_prop], dim=1))

            out = self.lrelu(self.fusion(torch.cat([backward_feats[i], feat_prop], dim=1)))
            out = self.lrelu(self.upsample1(out))
            out = self.lrelu(self.upsample2(out))
            out = self.lrelu(self.conv_hr(out))
            out = self.conv_last(out)
            base = F.interpolate(lr_curr, scale_factor=4, mode="bilinear", align_corners=False)
            outputs.append(out + base)
        return torch.stack(outputs, dim=1)

"""IconVSR, PaddleGAN layout: BasicVSR with information refill and coupled propagation.

Paper: Chan et al., "BasicVSR: The Search for Essential Components in Video Super-Resolution and
Beyond", CVPR 2021, https://arxiv.org/abs/2012.02181 (IconVSR is its extended variant).
Reference: mmediting `mmedit/models/backbones/sr_backbones/iconvsr.py` as ported by PaddleGAN
`ppgan/models/generators/iconvsr.py`.

Keyframes (every `keyframe_stride`-th frame and the last) get features from an EDVR-M style
extractor over their 2 * padding + 1 neighbours (PCD alignment + TSA fusion); the backward and
forward propagations fuse them in ("information refill"), and the forward branch also takes the
backward features ("coupled propagation"). Attribute names are PaddleGAN's (`spynet.*`,
`edvr.pcd_alignment.PCD_Align_L1_dcn.conv_offset_mask`, `edvr.fusion.tAtt_1`,
`edvr.feature_extraction.<i>.conv1`, `backward_fusion`, `forward_resblocks.covn1`, ...), so
PaddleGAN `.pdparams` load by name. SPyNet, `flow_warp`, the residual stacks and EDVR's PCD / TSA
modules are shared.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ...modules.flow import SPyNet, flow_warp
from ...modules.sr_blocks import PixelShufflePack, ResidualBlockNoBN, make_layer, paddle_default_init_
from ...utils.errors import ConfigError
from .basicvsr import BasicVSRNet, ResidualBlocksWithInputConv
from .basicvsr_plus_plus import check_video_input
from .builder import GENERATORS
from .edvr import PCDAlign, TSAFusion

__all__ = ["IconVSR", "EDVRFeatureExtractor"]


def _conv(cin, cout, k, stride=1, padding=0):
    return paddle_default_init_(nn.Conv2d(cin, cout, k, stride, padding))


class EDVRFeatureExtractor(nn.Module):
    """EDVR-M without its reconstruction: [N, T, 3, H, W] (H, W multiples of 4) -> the centre
    frame's fused features [N, mid_channels, H, W].

    Args:
        in_channels (int): input channels (default 3).
        out_channel (int): unused, PaddleGAN's signature (default 3).
        mid_channels (int): feature channels (default 64).
        num_frames (int): frames T (default 5).
        deform_groups (int): deformable groups of the PCD alignment (default 8).
        num_blocks_extraction (int): residual blocks of the feature extraction (default 5).
        num_blocks_reconstruction (int): unused, PaddleGAN's signature (default 10).
        center_frame_idx (int): index of the reference frame (default 2).
        with_tsa (bool): TSA fusion (True) or a 1x1 conv over the stacked frames (default True).
        dcn_impl (str): deformable conv implementation, 'auto' | 'torch' | 'torchvision'.
    """

    def __init__(self, in_channels=3, out_channel=3, mid_channels=64, num_frames=5, deform_groups=8,
                 num_blocks_extraction=5, num_blocks_reconstruction=10, center_frame_idx=2, with_tsa=True,
                 dcn_impl="auto"):
        super().__init__()
        if not 0 <= center_frame_idx < num_frames:
            raise ConfigError(f"center_frame_idx must be in [0, {num_frames}), got {center_frame_idx}")
        self.center_frame_idx = center_frame_idx
        self.with_tsa = with_tsa
        self.conv_first = _conv(in_channels, mid_channels, 3, 1, 1)
        self.feature_extraction = make_layer(ResidualBlockNoBN, num_blocks_extraction, nf=mid_channels)
        self.feat_l2_conv1 = _conv(mid_channels, mid_channels, 3, 2, 1)
        self.feat_l2_conv2 = _conv(mid_channels, mid_channels, 3, 1, 1)
        self.feat_l3_conv1 = _conv(mid_channels, mid_channels, 3, 2, 1)
        self.feat_l3_conv2 = _conv(mid_channels, mid_channels, 3, 1, 1)
        self.pcd_alignment = PCDAlign(nf=mid_channels, groups=deform_groups, dcn_impl=dcn_impl)
        if with_tsa:
            self.fusion = TSAFusion(nf=mid_channels, nframes=num_frames, center=center_frame_idx)
        else:
            self.fusion = _conv(num_frames * mid_channels, mid_channels, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1)

    def forward(self, x):
        n, t, c, h, w = x.shape
        l1 = self.feature_extraction(self.lrelu(self.conv_first(x.reshape(-1, c, h, w))))
        l2 = self.lrelu(self.feat_l2_conv2(self.lrelu(self.feat_l2_conv1(l1))))
        l3 = self.lrelu(self.feat_l3_conv2(self.lrelu(self.feat_l3_conv1(l2))))
        levels = [f.reshape(n, t, *f.shape[1:]) for f in (l1, l2, l3)]
        ref = [f[:, self.center_frame_idx] for f in levels]
        aligned = torch.stack([self.pcd_alignment([f[:, i] for f in levels], ref) for i in range(t)], dim=1)
        if self.with_tsa:
            return self.fusion(aligned)
        return self.fusion(aligned.reshape(n, -1, h, w))


@GENERATORS.register()
class IconVSR(nn.Module):
    """IconVSR: [N, T, 3, H, W] -> [N, T, 3, 4H, 4W] (x4 only).

    Frames are RGB in [0, 1], H and W at least 64 (PaddleGAN asserts the same); they are
    reflect-padded to multiples of 4 for the EDVR extractor and the output is cropped back to
    4H x 4W (PaddleGAN returns the padded size; the crop is its top-left part). The clip needs at
    least 2 * padding + 1 frames: keyframe features are computed over a time-extended clip,
    frames [2p, .., p+1] in front and [T-p-2, .., T-2p-1] behind (PaddleGAN's rule for p = 2, 3;
    any p here). A mirror-extended clip reuses the backward flows.

    Unlike PaddleGAN, the constructor does not download SPyNet / EDVR-M weights: they are part of
    every IconVSR checkpoint (`spynet.*`, `edvr.*`). PaddleGAN's extractor is always 64 wide (so
    its IconVSR runs only with mid_channels 64); here it is mid_channels wide, the same net at 64.

    Args:
        mid_channels (int): feature channels (default 64), a multiple of 8.
        num_blocks (int): residual blocks per propagation branch (default 30).
        padding (int): frames added at each end for the keyframe extractor; 2 for REDS, 3 for
            Vimeo-90K (default 2).
        keyframe_stride (int): keyframe spacing (default 5).
        dcn_impl (str): deformable conv implementation, 'auto' | 'torch' | 'torchvision'.
    """

    MIN_SIZE = 64

    def __init__(self, mid_channels=64, num_blocks=30, padding=2, keyframe_stride=5, dcn_impl="auto"):
        super().__init__()
        if mid_channels < 8 or mid_channels % 8:
            raise ConfigError(f"IconVSR mid_channels must be a multiple of 8, got {mid_channels}")
        if padding < 1 or keyframe_stride < 1:
            raise ConfigError(f"IconVSR padding and keyframe_stride must be >= 1, got {padding} and {keyframe_stride}")
        self.mid_channels = mid_channels
        self.padding = padding
        self.keyframe_stride = keyframe_stride
        self.spynet = SPyNet()
        self.edvr = EDVRFeatureExtractor(mid_channels=mid_channels, num_frames=padding * 2 + 1,
                                         center_frame_idx=padding, dcn_impl=dcn_impl)
        self.backward_fusion = _conv(2 * mid_channels, mid_channels, 3, 1, 1)
        self.forward_fusion = _conv(2 * mid_channels, mid_channels, 3, 1, 1)
        self.backward_resblocks = ResidualBlocksWithInputConv(mid_channels + 3, mid_channels, num_blocks)
        self.forward_resblocks = ResidualBlocksWithInputConv(2 * mid_channels + 3, mid_channels, num_blocks)
        self.upsample1 = PixelShufflePack(mid_channels, mid_channels, 2, upsample_kernel=3)
        self.upsample2 = PixelShufflePack(mid_channels, 64, 2, upsample_kernel=3)
        self.conv_hr = _conv(64, 64, 3, 1, 1)
        self.conv_last = _conv(64, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1)

    check_if_mirror_extended = staticmethod(BasicVSRNet.check_if_mirror_extended)
    compute_flow = BasicVSRNet.compute_flow  # (forward or None when mirror-extended, backward)

    @staticmethod
    def spatial_padding(lrs):
        """Reflect-pad [N, T, C, H, W] bottom / right to multiples of 4."""
        n, t, c, h, w = lrs.shape
        pad_h, pad_w = (-h) % 4, (-w) % 4
        lrs = F.pad(lrs.reshape(-1, c, h, w), (0, pad_w, 0, pad_h), mode="reflect")
        return lrs.reshape(n, t, c, h + pad_h, w + pad_w)

    def keyframes(self, t):
        idx = list(range(0, t, self.keyframe_stride))
        if idx[-1] != t - 1:
            idx.append(t - 1)  # the last frame is always a keyframe
        return idx

    def compute_refill_features(self, lrs, keyframe_idx):
        """{keyframe index: EDVR features [N, C, H, W]} over the time-extended clip."""
        p, t = self.padding, lrs.shape[1]
        front = [2 * p - j for j in range(p)]
        back = [t - p - 2 - j for j in range(p)]
        extended = torch.cat([lrs[:, front], lrs, lrs[:, back]], dim=1)
        return {i: self.edvr(extended[:, i:i + 2 * p + 1]) for i in keyframe_idx}

    def forward(self, lrs):
        """lrs: [N, T, 3, H, W] (T >= 2 * padding + 1, H, W >= 64) -> [N, T, 3, 4H, 4W]."""
        check_video_input("IconVSR", lrs, self.MIN_SIZE)
        n, t, _, h_in, w_in = lrs.shape
        if t < 2 * self.padding + 1:
            raise ConfigError(f"IconVSR with padding {self.padding} needs at least {2 * self.padding + 1} "
                              f"frames, got {t}")
        mirror = self.check_if_mirror_extended(lrs)
        lrs = self.spatial_padding(lrs)
        h, w = lrs.shape[-2:]
        keyframe_idx = self.keyframes(t)
        flows_forward, flows_backward = self.compute_flow(lrs, mirror)
        feats_refill = self.compute_refill_features(lrs, keyframe_idx)

        # backward-time propagation with information refill
        backward_feats = [None] * t
        feat_prop = lrs.new_zeros(n, self.mid_channels, h, w)
        for i in range(t - 1, -1, -1):
            if i < t - 1:
                feat_prop = flow_warp(feat_prop, flows_backward[:, i].permute(0, 2, 3, 1))
            if i in feats_refill:
                feat_prop = self.backward_fusion(torch.cat([feat_prop, feats_refill[i]], dim=1))
            feat_prop = self.backward_resblocks(torch.cat([lrs[:, i], feat_prop], dim=1))
            backward_feats[i] = feat_prop

        # forward-time propagation (coupled with the backward features) and upsampling
        outputs = []
        feat_prop = torch.zeros_like(feat_prop)
        for i in range(t):
            lr_curr = lrs[:, i]
            if i > 0:
                flow = flows_forward[:, i - 1] if flows_forward is not None else flows_backward[:, -i]
                feat_prop = flow_warp(feat_prop, flow.permute(0, 2, 3, 1))
            if i in feats_refill:
                feat_prop = self.forward_fusion(torch.cat([feat_prop, feats_refill[i]], dim=1))
            feat_prop = self.forward_resblocks(torch.cat([lr_curr, backward_feats[i], feat_prop], dim=1))
            out = self.lrelu(self.upsample1(feat_prop))
            out = self.lrelu(self.upsample2(out))
            out = self.lrelu(self.conv_hr(out))
            out = self.conv_last(out)
            out = out + F.interpolate(lr_curr, scale_factor=4, mode="bilinear", align_corners=False)
            outputs.append(out[..., : 4 * h_in, : 4 * w_in])
        return torch.stack(outputs, dim=1)

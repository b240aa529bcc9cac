"""EDVR, PaddleGAN layout: PCD alignment with modulated deformable convs, optional TSA fusion.

Paper: Wang et al., "EDVR: Video Restoration with Enhanced Deformable Convolutional Networks",
CVPR Workshops 2019, https://arxiv.org/abs/1905.02716; DCN alignment: Chan et al., "Understanding
Deformable Alignment in Video Super-Resolution", AAAI 2021, https://arxiv.org/abs/2009.07265.
Reference: https://github.com/xinntao/EDVR (`EDVR_arch.py`) as ported by PaddleGAN
`ppgan/models/generators/edvr.py`; BasicSR `basicsr/archs/edvr_arch.py` is the same maths under
newer names.

Attribute names are the original EDVR / PaddleGAN ones (`PCDModule.PCD_Align_L3_offset_conv1`,
`TSAModule.sAtt_L2`, `feature_extractor.block<i>.conv1`, `<dcn>.conv_offset_mask`, `<dcn>.dcn`),
not BasicSR's, so PaddleGAN `.pdparams` (EDVR-M / EDVR-L) load by name.
"""
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

from ...modules.dcn import ModulatedDeformConv2d
from ...modules.sr_blocks import ResidualBlockNoBN, make_layer, paddle_default_init_
from .builder import GENERATORS

__all__ = ["DCNPack", "PCDAlign", "TSAFusion", "PredeblurResNetPyramid", "EDVRNet"]


def _conv(cin, cout, k, stride=1, padding=0):
    return paddle_default_init_(nn.Conv2d(cin, cout, k, stride, padding))


def _up2(x):
    # Paddle nn.Upsample(2, 'bilinear', align_corners=False, align_mode=0) == this
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class DCNPack(nn.Module):
    """Modulated deformable conv whose offsets and mask are predicted from separate features.

    `forward([x, feat])`: conv_offset_mask(feat) gives 3 * dg * kh * kw channels, split in three
    equal chunks o1, o2, m; offset = cat(o1, o2) (dy, dx interleaved per tap, see
    `ppgan.modules.dcn`), mask = sigmoid(m); returns dcn(x, offset, mask), [N, nf, Ho, Wo].

    Args:
        num_filters (int): channels nf of x, feat and the output (default 64).
        kernel_size (int | tuple[int, int]): kernel of both convs (default 3).
        stride (int): stride of both convs (default 1).
        padding (int): padding of both convs (default 1).
        dilation (int): dilation of the deformable conv (default 1).
        deformable_groups (int): offset groups; nf must be divisible by it (default 8).
        extra_offset_mask (bool): offsets come from the second input; only True is supported,
            as in PaddleGAN (default True).
        impl (str): deformable conv implementation, 'auto' | 'torch' | 'torchvision'.
    """

    def __init__(self, num_filters=64, kernel_size=3, stride=1, padding=1, dilation=1,
                 deformable_groups=8, extra_offset_mask=True, impl="auto"):
        super().__init__()
        if not extra_offset_mask:
            raise ValueError("DCNPack supports only extra_offset_mask=True (as PaddleGAN)")
        self.extra_offset_mask = extra_offset_mask
        self.num_filters = num_filters
        self.deformable_groups = deformable_groups
        self.kernel_size = _pair(kernel_size)
        self.split_channels = deformable_groups * self.kernel_size[0] * self.kernel_size[1]
        self.conv_offset_mask = nn.Conv2d(num_filters, 3 * self.split_channels, self.kernel_size,
                                          stride, padding)
        self.dcn = ModulatedDeformConv2d(num_filters, num_filters, self.kernel_size, stride, padding,
                                         dilation, deformable_groups=deformable_groups, impl=impl)
        # zero offsets and mask 0.5 at init, as PaddleGAN / BasicSR
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)

    def forward(self, fea_and_offset):
        """fea_and_offset: [x, feat], both [N, nf, H, W] -> [N, nf, Ho, Wo]."""
        x, feat = fea_and_offset
        out = self.conv_offset_mask(feat)
        offset = out[:, :2 * self.split_channels]
        mask = torch.sigmoid(out[:, 2 * self.split_channels:])
        return self.dcn(x, offset, mask)


class PCDAlign(nn.Module):
    """Pyramid, Cascading and Deformable alignment of a neighbour frame to the reference frame.

    Offsets are estimated coarse to fine over three pyramid levels (L3: 1/4, L2: 1/2, L1: full);
    a final cascade DCN refines L1. LeakyReLU(0.1) throughout.

    Args:
        nf (int): feature channels (default 64).
        groups (int): deformable groups (default 8).
        dcn_impl (str): deformable conv implementation, 'auto' | 'torch' | 'torchvision'.
    """

    def __init__(self, nf=64, groups=8, dcn_impl="auto"):
        super().__init__()
        self.nf, self.groups = nf, groups
        self.Leaky_relu = nn.LeakyReLU(negative_slope=0.1)

        def dcn():
            return DCNPack(num_filters=nf, kernel_size=3, stride=1, padding=1, deformable_groups=groups,
                           impl=dcn_impl)

        self.PCD_Align_L3_offset_conv1 = _conv(nf * 2, nf, 3, 1, 1)
        self.PCD_Align_L3_offset_conv2 = _conv(nf, nf, 3, 1, 1)
        self.PCD_Align_L3_dcn = dcn()
        self.PCD_Align_L2_offset_conv1 = _conv(nf * 2, nf, 3, 1, 1)
        self.PCD_Align_L2_offset_conv2 = _conv(nf * 2, nf, 3, 1, 1)
        self.PCD_Align_L2_offset_conv3 = _conv(nf, nf, 3, 1, 1)
        self.PCD_Align_L2_dcn = dcn()
        self.PCD_Align_L2_fea_conv = _conv(nf * 2, nf, 3, 1, 1)
        self.PCD_Align_L1_offset_conv1 = _conv(nf * 2, nf, 3, 1, 1)
        self.PCD_Align_L1_offset_conv2 = _conv(nf * 2, nf, 3, 1, 1)
        self.PCD_Align_L1_offset_conv3 = _conv(nf, nf, 3, 1, 1)
        self.PCD_Align_L1_dcn = dcn()
        self.PCD_Align_L1_fea_conv = _conv(nf * 2, nf, 3, 1, 1)
        self.PCD_Align_cas_offset_conv1 = _conv(nf * 2, nf, 3, 1, 1)
        self.PCD_Align_cas_offset_conv2 = _conv(nf, nf, 3, 1, 1)
        self.PCD_Align_cascade_dcn = dcn()

    def forward(self, nbr_fea_l, ref_fea_l):
        """nbr_fea_l, ref_fea_l: [L1, L2, L3] features [N, nf, H/2^l, W/2^l] -> aligned [N, nf, H, W]."""
        act = self.Leaky_relu
        # L3
        l3_off = act(self.PCD_Align_L3_offset_conv1(torch.cat([nbr_fea_l[2], ref_fea_l[2]], 1)))
        l3_off = act(self.PCD_Align_L3_offset_conv2(l3_off))
        l3_fea = act(self.PCD_Align_L3_dcn([nbr_fea_l[2], l3_off]))
        # L2: offsets from L3, upsampled and doubled (twice the resolution, twice the displacement)
        l2_off = act(self.PCD_Align_L2_offset_conv1(torch.cat([nbr_fea_l[1], ref_fea_l[1]], 1)))
        l2_off = act(self.PCD_Align_L2_offset_conv2(torch.cat([l2_off, _up2(l3_off) * 2], 1)))
        l2_off = act(self.PCD_Align_L2_offset_conv3(l2_off))
        l2_fea = self.PCD_Align_L2_dcn([nbr_fea_l[1], l2_off])
        l2_fea = act(self.PCD_Align_L2_fea_conv(torch.cat([l2_fea, _up2(l3_fea)], 1)))
        # L1
        l1_off = act(self.PCD_Align_L1_offset_conv1(torch.cat([nbr_fea_l[0], ref_fea_l[0]], 1)))
        l1_off = act(self.PCD_Align_L1_offset_conv2(torch.cat([l1_off, _up2(l2_off) * 2], 1)))
        l1_off = act(self.PCD_Align_L1_offset_conv3(l1_off))
        l1_fea = self.PCD_Align_L1_dcn([nbr_fea_l[0], l1_off])
        l1_fea = self.PCD_Align_L1_fea_conv(torch.cat([l1_fea, _up2(l2_fea)], 1))  # no activation here
        # cascade
        off = act(self.PCD_Align_cas_offset_conv1(torch.cat([l1_fea, ref_fea_l[0]], 1)))
        off = act(self.PCD_Align_cas_offset_conv2(off))
        return act(self.PCD_Align_cascade_dcn([l1_fea, off]))


class TSAFusion(nn.Module):
    """Temporal and spatial attention fusion: [N, T, nf, H, W] -> [N, nf, H, W] (H, W even).

    Temporal: each frame is weighted by sigmoid(<tAtt_1(frame), tAtt_2(centre)>) per pixel;
    spatial: a two-level pyramid attention (max + avg pooling) modulates the fused features,
    fea * sigmoid(att) * 2 + att_add. Names follow the original EDVR (`tAtt_2` embeds the centre).

    Args:
        nf (int): feature channels (default 64).
        nframes (int): number of frames T (default 5).
        center (int): index of the reference frame (default 2).
    """

    def __init__(self, nf=64, nframes=5, center=2):
        super().__init__()
        self.nf, self.nframes, self.center = nf, nframes, center
        self.sigmoid = nn.Sigmoid()
        self.Leaky_relu = nn.LeakyReLU(negative_slope=0.1)
        self.tAtt_2 = _conv(nf, nf, 3, 1, 1)
        self.tAtt_1 = _conv(nf, nf, 3, 1, 1)
        self.fea_fusion = _conv(nf * nframes, nf, 1)
        self.sAtt_1 = _conv(nf * nframes, nf, 1)
        self.max_pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.avg_pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=True)  # Paddle exclusive=False
        self.sAtt_2 = _conv(2 * nf, nf, 1)
        self.sAtt_3 = _conv(nf, nf, 3, 1, 1)
        self.sAtt_4 = _conv(nf, nf, 1)
        self.sAtt_5 = _conv(nf, nf, 3, 1, 1)
        self.sAtt_add_1 = _conv(nf, nf, 1)
        self.sAtt_add_2 = _conv(nf, nf, 1)
        self.sAtt_L1 = _conv(nf, nf, 1)
        self.sAtt_L2 = _conv(2 * nf, nf, 3, 1, 1)
        self.sAtt_L3 = _conv(nf, nf, 3, 1, 1)

    def forward(self, aligned_fea):
        """aligned_fea: [N, T, nf, H, W] -> [N, nf, H, W]."""
        b, t, c, h, w = aligned_fea.shape
        act = self.Leaky_relu
        # temporal attention
        emb_ref = self.tAtt_2(aligned_fea[:, self.center])                       # [N, nf, H, W]
        emb = self.tAtt_1(aligned_fea.reshape(-1, c, h, w)).reshape(b, t, -1, h, w)
        cor_prob = self.sigmoid((emb * emb_ref.unsqueeze(1)).sum(2, keepdim=True))  # [N, T, 1, H, W]
        aligned_fea = (aligned_fea * cor_prob).reshape(b, -1, h, w)             # frame-major channels
        fea = act(self.fea_fusion(aligned_fea))
        # spatial attention, two pyramid levels
        att = act(self.sAtt_1(aligned_fea))
        att = act(self.sAtt_2(torch.cat([self.max_pool(att), self.avg_pool(att)], 1)))
        att_l = act(self.sAtt_L1(att))
        att_l = act(self.sAtt_L2(torch.cat([self.max_pool(att_l), self.avg_pool(att_l)], 1)))
        att_l = _up2(act(self.sAtt_L3(att_l)))
        att = act(self.sAtt_3(att)) + att_l
        att = _up2(act(self.sAtt_4(att)))
        att = self.sAtt_5(att)
        att_add = self.sAtt_add_2(act(self.sAtt_add_1(att)))
        return fea * self.sigmoid(att) * 2 + att_add


class PredeblurResNetPyramid(nn.Module):
    """Pre-deblurring module: [N, in_nf, H, W] -> [N, nf, H, W] (H/4 x W/4 with `HR_in`).

    Args:
        in_nf (int): input channels (default 3).
        nf (int): feature channels (default 64).
        HR_in (bool): high-resolution input, first downsampled x4 by two stride-2 convs (default False).
    """

    def __init__(self, in_nf=3, nf=64, HR_in=False):
        super().__init__()
        self.in_nf, self.nf, self.HR_in = in_nf, nf, bool(HR_in)
        self.Leaky_relu = nn.LeakyReLU(negative_slope=0.1)
        if self.HR_in:
            self.conv_first_1 = _conv(in_nf, nf, 3, 1, 1)
            self.conv_first_2 = _conv(nf, nf, 3, 2, 1)
            self.conv_first_3 = _conv(nf, nf, 3, 2, 1)
        else:
            self.conv_first = _conv(in_nf, nf, 3, 1, 1)
        for name in ("RB_L1_1", "RB_L1_2", "RB_L1_3", "RB_L1_4", "RB_L1_5", "RB_L2_1", "RB_L2_2", "RB_L3_1"):
            setattr(self, name, ResidualBlockNoBN(nf=nf))
        self.deblur_L2_conv = _conv(nf, nf, 3, 2, 1)
        self.deblur_L3_conv = _conv(nf, nf, 3, 2, 1)

    def forward(self, x):
        act = self.Leaky_relu
        if self.HR_in:
            l1 = act(self.conv_first_3(act(self.conv_first_2(act(self.conv_first_1(x))))))
        else:
            l1 = act(self.conv_first(x))
        l2 = act(self.deblur_L2_conv(l1))
        l3 = act(self.deblur_L3_conv(l2))
        l3 = _up2(self.RB_L3_1(l3))
        l2 = _up2(self.RB_L2_2(self.RB_L2_1(l2) + l3))
        l1 = self.RB_L1_2(self.RB_L1_1(l1)) + l2
        return self.RB_L1_5(self.RB_L1_4(self.RB_L1_3(l1)))


@GENERATORS.register()
class EDVRNet(nn.Module):
    """EDVR video restoration net: [N, nframes, in_nf, H, W] -> [N, out_nf, 4H, 4W] (x4 SR), or
    [N, out_nf, H, W] with `HR_in` (EDVR's deblurring variant: blurred full-size frames in).

    Frames are RGB in [0, 1], centre frame at index `center`; H and W must be multiples of 4
    (of 16 with `HR_in`). The output is a residual over the bilinear x4 centre frame (the centre
    frame itself with `HR_in`) and is not clamped. With `HR_in` the pre-deblur module first
    brings the frames down x4 by two stride-2 convs, so the trunk and the x4 reconstruction run
    as in the SR net and the output has the input's size, whatever `scale_factor` says (as in
    PaddleGAN, whose deblur configs write `scale_factor: 1`).

    Args:
        in_nf (int): input channels (default 3).
        out_nf (int): output channels (default 3).
        scale_factor (int): 4 (x4 SR) or 1 (same-size output; needs HR_in=True); PaddleGAN has
            no other (default 4).
        nf (int): feature channels (default 64).
        nframes (int): frames per input clip (default 5).
        groups (int): deformable groups of the PCD DCNs; nf must be divisible by it (default 8).
        front_RBs (int): residual blocks of the feature extractor (default 5).
        back_RBs (int): residual blocks of the reconstructor (default 10).
        center (int | None): index of the reference frame; None means nframes // 2.
        predeblur (bool): use the pre-deblurring pyramid instead of conv_first (default False).
        HR_in (bool): high-resolution input, downsampled x4 by the pre-deblur module; needs
            predeblur=True (default False).
        w_TSA (bool): TSA fusion; False fuses with one 1x1 conv, still named `TSAModule`
            (default True).
        dcn_impl (str): deformable conv implementation, 'auto' | 'torch' | 'torchvision'.
    """

    # Half-precision inference casts the whole net (ppgan.apps.base_predictor): convs, LeakyReLU,
    # sigmoid, pooling and bilinear upsampling are fine in fp16/bf16, and the deformable convs keep
    # their sampling coordinates in float32 themselves (ppgan.modules.dcn).
    half_mode = "direct"

    def __init__(self, in_nf=3, out_nf=3, scale_factor=4, nf=64, nframes=5, groups=8, front_RBs=5,
                 back_RBs=10, center=None, predeblur=False, HR_in=False, w_TSA=True, dcn_impl="auto"):
        super().__init__()
        if scale_factor not in (1, 4) or isinstance(scale_factor, bool):
            raise ValueError(f"EDVRNet supports scale_factor=4 (x4 SR) or 1 (with HR_in=True), got {scale_factor!r}")
        if scale_factor == 1 and not HR_in:
            # PaddleGAN builds no upsampler then and fails in forward
            raise ValueError("EDVRNet scale_factor=1 needs HR_in=True and predeblur=True (the deblurring variant)")
        center = nframes // 2 if center is None else center
        if not 0 <= center < nframes:
            raise ValueError(f"center must be in [0, {nframes}), got {center}")
        if nf % groups:
            raise ValueError(f"nf ({nf}) must be divisible by groups ({groups})")
        if HR_in and not predeblur:
            # PaddleGAN would build conv_first and then mis-size every later reshape
            raise ValueError("HR_in=True needs predeblur=True")
        self.in_nf, self.out_nf, self.scale_factor, self.nf = in_nf, out_nf, scale_factor, nf
        self.nframes, self.groups, self.front_RBs, self.back_RBs = nframes, groups, front_RBs, back_RBs
        self.center, self.predeblur, self.HR_in, self.w_TSA = center, bool(predeblur), bool(HR_in), bool(w_TSA)

        self.Leaky_relu = nn.LeakyReLU(negative_slope=0.1)
        if self.predeblur:
            self.pre_deblur = PredeblurResNetPyramid(in_nf=in_nf, nf=nf, HR_in=self.HR_in)
            self.cov_1 = _conv(nf, nf, 1)  # sic, PaddleGAN's name
        else:
            self.conv_first = _conv(in_nf, nf, 3, 1, 1)
        # feature extraction and pyramid
        self.feature_extractor = make_layer(ResidualBlockNoBN, front_RBs, name_fmt="block{}", nf=nf)
        self.fea_L2_conv1 = _conv(nf, nf, 3, 2, 1)
        self.fea_L2_conv2 = _conv(nf, nf, 3, 1, 1)
        self.fea_L3_conv1 = _conv(nf, nf, 3, 2, 1)
        self.fea_L3_conv2 = _conv(nf, nf, 3, 1, 1)
        self.PCDModule = PCDAlign(nf=nf, groups=groups, dcn_impl=dcn_impl)
        if self.w_TSA:
            self.TSAModule = TSAFusion(nf=nf, nframes=nframes, center=center)
        else:
            self.TSAModule = _conv(nframes * nf, nf, 1)
        # reconstruction
        self.reconstructor = make_layer(ResidualBlockNoBN, back_RBs, name_fmt="block{}", nf=nf)
        self.upconv1 = _conv(nf, 4 * nf, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.upconv2 = _conv(nf, 4 * 64, 3, 1, 1)  # 64, not nf, as in EDVR and PaddleGAN
        self.HRconv = _conv(64, 64, 3, 1, 1)
        self.conv_last = _conv(64, out_nf, 3, 1, 1)

    def forward(self, x):
        """x: [N, nframes, in_nf, H, W] -> [N, out_nf, 4H, 4W] (or [N, out_nf, H, W] with HR_in)."""
        if x.ndim != 5 or x.shape[1] != self.nframes or x.shape[2] != self.in_nf:
            raise ValueError(f"EDVRNet needs [N, {self.nframes}, {self.in_nf}, H, W], got {tuple(x.shape)}")
        b, t, c, h, w = x.shape
        mult = 16 if self.HR_in else 4
        if h % mult or w % mult:
            raise ValueError(f"EDVRNet needs H and W divisible by {mult}, got {h} and {w}")
        act = self.Leaky_relu
        x_center = x[:, self.center]

        # features of every frame, three pyramid levels
        if self.predeblur:
            l1 = self.cov_1(self.pre_deblur(x.reshape(-1, c, h, w)))
            if self.HR_in:
                h, w = h // 4, w // 4
        else:
            l1 = act(self.conv_first(x.reshape(-1, c, h, w)))
        l1 = self.feature_extractor(l1)
        l2 = act(self.fea_L2_conv2(act(self.fea_L2_conv1(l1))))
        l3 = act(self.fea_L3_conv2(act(self.fea_L3_conv1(l2))))
        l1 = l1.reshape(b, t, -1, h, w)
        l2 = l2.reshape(b, t, -1, h // 2, w // 2)
        l3 = l3.reshape(b, t, -1, h // 4, w // 4)

        # align every frame (the centre one too) to the centre frame
        ref = [l1[:, self.center], l2[:, self.center], l3[:, self.center]]
        aligned = torch.stack([self.PCDModule([l1[:, i], l2[:, i], l3[:, i]], ref) for i in range(t)], 1)

        if self.w_TSA:
            fea = self.TSAModule(aligned)
        else:  # plain 1x1 conv over frame-major channels, no activation
            fea = self.TSAModule(aligned.reshape(b, -1, h, w))

        out = self.reconstructor(fea)
        out = act(self.pixel_shuffle(self.upconv1(out)))
        out = act(self.pixel_shuffle(self.upconv2(out)))
        out = self.conv_last(act(self.HRconv(out)))
        if self.HR_in:
            base = x_center
        else:
            base = F.interpolate(x_center, scale_factor=4, mode="bilinear", align_corners=False)
        return out + base

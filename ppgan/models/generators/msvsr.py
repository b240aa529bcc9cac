"""PP-MSVSR, PaddleGAN layout (PaddleGAN's own video SR net, small and large variants).

Paper: Jiang et al., "PP-MSVSR: Multi-Stage Video Super-Resolution", 2021,
https://arxiv.org/abs/2112.02828.
Reference: PaddleGAN `ppgan/models/generators/msvsr.py`.

Three stages on the low-resolution features: stage 1 fuses each frame with both neighbours
aligned by flow-guided deformable convs (local fusion); stage 2 propagates backward then forward
(BasicVSR++-style grid propagation, first order); an auxiliary head makes an x4 image from the
stage-2 features and brings it back down into features; stage 3 propagates again from those,
its alignment refined from stage 2's offsets and masks. Attribute names are PaddleGAN's
(`spynet.basic_module.<k>.basic_module.<i>.conv`, `deform_align.stage3_forward.mdconv`,
`backbone.stage2_backward.covn1`, `stage1_align`, `aux_block_down1.0`, `hybrid_conv_last`, ...),
so PaddleGAN `.pdparams` load by name. SPyNet's pyramid loop, `flow_warp`, the residual stacks
and the modulated deformable conv are shared with BasicVSR / BasicVSR++.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ...modules.dcn import ModulatedDeformConv2d
from ...modules.flow import SPyNet, flow_warp
from ...modules.sr_blocks import PixelShufflePack, paddle_default_init_
from ...utils.errors import ConfigError
from .basicvsr import BasicVSRNet, ResidualBlocksWithInputConv
from .basicvsr_plus_plus import BasicVSRPlusPlus, check_video_input, flow_offsets, offset_conv_stack
from .builder import GENERATORS

__all__ = ["MSVSR", "AlignmentModule", "ReAlignmentModule", "ModifiedSPyNet", "SPyNetBlock", "ConvLayer"]

STAGES = ("stage2_backward", "stage2_forward", "stage3_backward", "stage3_forward")


def _conv(cin, cout, k, stride=1, padding=0):
    return paddle_default_init_(nn.Conv2d(cin, cout, k, stride, padding))


def _up4(x):
    return F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)


class ConvLayer(nn.Module):
    """Conv then an optional activation (`act_cfg` {'name': 'ReLU' | 'LeakyReLU'} or None)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 act_cfg=None):
        super().__init__()
        self.conv = paddle_default_init_(nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                                                   dilation, groups))
        self.act = None
        if act_cfg is not None:
            name = act_cfg.get("name")
            if name == "ReLU":
                self.act = nn.ReLU()
            elif name == "LeakyReLU":
                self.act = nn.LeakyReLU(negative_slope=0.1)
            else:
                raise ConfigError(f"ConvLayer act_cfg name must be 'ReLU' or 'LeakyReLU', got {name!r}")

    def forward(self, x):
        x = self.conv(x)
        return self.act(x) if self.act is not None else x


class SPyNetBlock(nn.Module):
    """One level of the modified SPyNet: 3x3 convs (12 in the tiny variant, 15 otherwise),
    [N, 8, H, W] (reference, warped neighbour, upsampled flow) -> flow residual [N, 2, H, W]."""

    TINY = (8, 16, 16, 32, 32, 32, 32, 16, 16, 16, 8, 8, 2)
    FULL = (8, 16, 16, 32, 32, 32, 64, 32, 32, 32, 16, 16, 16, 16, 16, 2)

    def __init__(self, act_cfg=None, use_tiny_block=False):
        super().__init__()
        act_cfg = {"name": "LeakyReLU"} if act_cfg is None else act_cfg
        chans = self.TINY if use_tiny_block else self.FULL
        last = len(chans) - 2
        self.basic_module = nn.Sequential(*[
            ConvLayer(chans[i], chans[i + 1], 3, 1, 1, act_cfg=None if i == last else act_cfg)
            for i in range(len(chans) - 1)])

    def forward(self, tensor_input):
        return self.basic_module(tensor_input)


class ModifiedSPyNet(SPyNet):
    """SPyNet with 3x3-conv levels (`SPyNetBlock`) and `num_blocks` pyramid levels (3 in PP-MSVSR,
    6 in PP-MSVSR-L). Same inputs, outputs and resizing rules as `SPyNet`."""

    def __init__(self, act_cfg=None, num_blocks=6, use_tiny_block=False):
        nn.Module.__init__(self)  # not SPyNet's six 7x7 levels
        if not 1 <= num_blocks <= 6:
            raise ConfigError(f"ModifiedSPyNet num_blocks must be in 1..6, got {num_blocks}")
        self.LEVELS = self.num_blocks = num_blocks
        self.basic_module = nn.ModuleList(SPyNetBlock(act_cfg, use_tiny_block) for _ in range(num_blocks))
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1))

    def level_module(self, level):
        return self.basic_module[level]


class AlignmentModule(nn.Module):
    """First-order flow-guided deformable alignment: `forward(x, extra_feat, flow_1)` ->
    (aligned [N, C, H, W], offset [N, 18 dg, H, W], mask [N, 9 dg, H, W]); offsets are
    10 * tanh residuals over the flow, mask = sigmoid (the offsets and mask are reused by stage 3)."""

    def __init__(self, in_channels=128, out_channels=64, kernel_size=3, stride=1, padding=1, dilation=1,
                 groups=1, deformable_groups=16, impl="auto"):
        super().__init__()
        self.conv_offset = offset_conv_stack(2 * out_channels + 2, out_channels, 27 * deformable_groups)
        self.dcn = ModulatedDeformConv2d(in_channels, out_channels, kernel_size, stride, padding, dilation,
                                         deformable_groups=deformable_groups, groups=groups, impl=impl)

    def forward(self, x, extra_feat, flow_1):
        o1, o2, mask = torch.chunk(self.conv_offset(torch.cat([extra_feat, flow_1], dim=1)), 3, dim=1)
        offset = 10 * torch.tanh(torch.cat([o1, o2], dim=1))
        offset = offset + flow_offsets(flow_1, offset.shape[1] // 2)
        mask = torch.sigmoid(mask)
        return self.dcn(x, offset, mask), offset, mask


class ReAlignmentModule(nn.Module):
    """Stage-3 alignment refined from stage 2: `forward(x, extra_feat, flow_1, feat_current,
    pre_stage_flow, pre_stage_mask)`. With stage 2's offset / mask, x is first aligned by them
    (`mdconv`), new offsets are residuals over stage 2's and the mask is the mean of both;
    without, it is `AlignmentModule` (returning only the aligned features)."""

    def __init__(self, in_channels=128, out_channels=64, kernel_size=3, stride=1, padding=1, dilation=1,
                 groups=1, deformable_groups=16, impl="auto"):
        super().__init__()

        def dcn():
            return ModulatedDeformConv2d(in_channels, out_channels, kernel_size, stride, padding, dilation,
                                         deformable_groups=deformable_groups, groups=groups, impl=impl)

        self.mdconv = dcn()
        self.conv_offset = offset_conv_stack(2 * out_channels + 2, out_channels, 27 * deformable_groups)
        self.dcn = dcn()

    def forward(self, x, extra_feat, flow_1, feat_current, pre_stage_flow=None, pre_stage_mask=None):
        if pre_stage_flow is not None:
            pre_feat = self.mdconv(x, pre_stage_flow, pre_stage_mask)
            extra_feat = torch.cat([pre_feat, feat_current, flow_1], dim=1)
        else:
            extra_feat = torch.cat([extra_feat, flow_1], dim=1)
        o1, o2, mask = torch.chunk(self.conv_offset(extra_feat), 3, dim=1)
        offset = 10 * torch.tanh(torch.cat([o1, o2], dim=1))
        if pre_stage_flow is not None:
            offset = offset + pre_stage_flow
            mask = (torch.sigmoid(mask) + pre_stage_mask) / 2.0
        else:
            offset = offset + flow_offsets(flow_1, offset.shape[1] // 2)
            mask = torch.sigmoid(mask)
        return self.dcn(x, offset, mask)


@GENERATORS.register()
class MSVSR(nn.Module):
    """PP-MSVSR: [N, T, 3, H, W] -> (auxiliary [N, T, 3, 4H, 4W], output [N, T, 3, 4H, 4W]) with
    `auxiliary_loss` (PaddleGAN's configs; both are trained), else the output alone.

    Frames are RGB in [0, 1], H and W at least 64 (PaddleGAN asserts the same), any size above.
    A mirror-extended clip reuses the backward flows, as PaddleGAN does.

    Unlike PaddleGAN, the constructor does not download the flow net's weights: they are part of
    every PP-MSVSR checkpoint (`spynet.*`). PaddleGAN fails in forward with `auxiliary_loss` or
    `use_refine_align` False; here the first skips the auxiliary head (stage 3 then starts from
    the extracted features) and the second aligns stage 3 like stage 2.

    Args:
        mid_channels (int): feature channels (default 32).
        num_init_blocks (int): residual blocks of the feature extractor (default 2).
        num_blocks (int): residual blocks per propagation branch (default 3).
        num_reconstruction_blocks (int): residual blocks before upsampling (default 2).
        only_last (bool): one conv after upsampling (True) or conv_hr + conv_last (default True).
        use_tiny_spynet (bool): 3-level tiny flow net (True) or 6-level (default True).
        deform_groups (int): deformable groups of stages 2 and 3 (default 4).
        stage1_groups (int): deformable groups of stage 1 (default 8).
        auxiliary_loss (bool): auxiliary x4 head after stage 2 (default True).
        use_refine_align (bool): stage-3 alignment refined from stage 2 (default True).
        aux_reconstruction_blocks (int): residual blocks of the auxiliary head (default 1).
        use_local_connnect (bool): add an x4 image made from the stage-1 features (default True;
            PaddleGAN's spelling).
        dcn_impl (str): deformable conv implementation, 'auto' | 'torch' | 'torchvision'.
    """

    MIN_SIZE = 64

    def __init__(self, mid_channels=32, num_init_blocks=2, num_blocks=3, num_reconstruction_blocks=2, only_last=True,
                 use_tiny_spynet=True, deform_groups=4, stage1_groups=8, auxiliary_loss=True, use_refine_align=True,
                 aux_reconstruction_blocks=1, use_local_connnect=True, dcn_impl="auto"):
        super().__init__()
        for name, groups in (("deform_groups", deform_groups), ("stage1_groups", stage1_groups)):
            if groups < 1 or mid_channels % groups:
                raise ConfigError(f"MSVSR mid_channels {mid_channels} must be divisible by {name} {groups}")
        self.mid_channels = mid_channels
        self.only_last = bool(only_last)
        self.deform_groups = deform_groups
        self.auxiliary_loss = bool(auxiliary_loss)
        self.use_refine_align = bool(use_refine_align)
        self.use_local_connnect = bool(use_local_connnect)
        c = mid_channels

        self.spynet = ModifiedSPyNet(num_blocks=3, use_tiny_block=True) if use_tiny_spynet else \
            ModifiedSPyNet(num_blocks=6, use_tiny_block=False)
        self.feat_extract = ResidualBlocksWithInputConv(3, c, num_init_blocks)
        self.deform_align = nn.ModuleDict()
        self.backbone = nn.ModuleDict()
        for i, name in enumerate(STAGES):
            cls = ReAlignmentModule if i > 1 and self.use_refine_align else AlignmentModule
            self.deform_align[name] = cls(c, c, 3, padding=1, deformable_groups=deform_groups, impl=dcn_impl)
            self.backbone[name] = ResidualBlocksWithInputConv((3 + i) * c, c, num_blocks)
        self.stage1_align = AlignmentModule(c, c, 3, padding=1, deformable_groups=stage1_groups, impl=dcn_impl)
        self.stage1_blocks = ResidualBlocksWithInputConv(3 * c, c, 3)

        self.reconstruction = ResidualBlocksWithInputConv(6 * c, c, num_reconstruction_blocks)
        self.upsample1 = PixelShufflePack(c, c, 2, upsample_kernel=3)
        self.upsample2 = PixelShufflePack(c, c, 2, upsample_kernel=3)
        if not self.only_last:
            self.conv_hr = _conv(c, c, 3, 1, 1)
        self.conv_last = _conv(c, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1)

        if self.auxiliary_loss:
            self.aux_fusion = _conv(2 * c, c, 3, 1, 1)
            self.aux_reconstruction = ResidualBlocksWithInputConv(4 * c, c, aux_reconstruction_blocks)
            self.aux_block_down1 = nn.Sequential(_conv(3 + c, c, 3, 2, 1), nn.LeakyReLU(0.1), _conv(c, c, 3, 1, 1))
            self.aux_block_down2 = nn.Sequential(_conv(2 * c, c, 3, 2, 1), nn.LeakyReLU(0.1), _conv(c, c, 3, 1, 1))
            self.aux_conv_last = _conv(c, 3, 3, 1, 1)
        # built whatever the switches say (PaddleGAN does), used by the local connection
        self.aux_upsample1 = PixelShufflePack(c, c, 2, upsample_kernel=3)
        self.aux_upsample2 = PixelShufflePack(c, c, 2, upsample_kernel=3)
        self.hybrid_conv_last = _conv(c, 3, 3, 1, 1)

    compute_flow = BasicVSRPlusPlus.compute_flow
    check_if_mirror_extended = staticmethod(BasicVSRNet.check_if_mirror_extended)

    def _align_pair(self, feat, flow, feat_current):
        cond = torch.cat([flow_warp(feat, flow.permute(0, 2, 3, 1)), feat_current], dim=1)
        return self.stage1_align(feat, cond, flow)[0]

    def stage1(self, feats, flows_backward, flows_forward):
        """Local fusion: each frame with its next and previous frames aligned to it."""
        spatial = feats["spatial"]
        t = len(spatial)
        out = [None] * t
        for idx in range(t - 1, -1, -1):
            cur = spatial[idx]
            nxt = self._align_pair(spatial[idx + 1], flows_backward[:, idx], cur) if idx < t - 1 \
                else torch.zeros_like(cur)
            prv = self._align_pair(spatial[idx - 1], flows_forward[:, idx - 1], cur) if idx > 0 \
                else torch.zeros_like(cur)
            out[idx] = self.stage1_blocks(torch.cat([cur, nxt, prv], dim=1))
        feats["feat_stage1"] = out
        return feats

    def propagate(self, feats, flows, name, current, align):
        """Branch `name` over the clip; `current[idx]` is frame idx's own feature and
        `align(feat_prop, cond, flow, feat_current, flow_index)` the aligned propagated feature.
        Adds feats[name], a list in time order."""
        t = len(current)
        backward = name.endswith("backward")
        earlier = [k for k in feats if k not in ("spatial", name)]
        out = []
        feat_prop = torch.zeros_like(current[0])
        for i, idx in enumerate(range(t - 1, -1, -1) if backward else range(t)):
            feat_current = current[idx]
            if i > 0:
                fi = idx if backward else idx - 1
                flow = flows[:, fi]
                cond = torch.cat([flow_warp(feat_prop, flow.permute(0, 2, 3, 1)), feat_current], dim=1)
                feat_prop = align(feat_prop, cond, flow, feat_current, fi)
            feat = torch.cat([feat_current] + [feats[k][idx] for k in earlier] + [feat_prop], dim=1)
            feat_prop = feat_prop + self.backbone[name](feat)
            out.append(feat_prop)
        feats[name] = out[::-1] if backward else out
        return feats

    def stage2(self, feats, flows):
        """Backward then forward propagation; returns feats and stage 2's offsets / masks per
        branch, indexed by flow index."""
        flows_backward, flows_forward = flows
        t = len(feats["spatial"])
        pre_offset, pre_mask = {}, {}
        for name in STAGES[:2]:
            pre_offset[name], pre_mask[name] = [None] * (t - 1), [None] * (t - 1)

            def align(feat_prop, cond, flow, feat_current, fi, name=name):
                feat, pre_offset[name][fi], pre_mask[name][fi] = self.deform_align[name](feat_prop, cond, flow)
                return feat

            self.propagate(feats, flows_backward if name.endswith("backward") else flows_forward, name,
                           feats["spatial"], align)
        return feats, pre_offset, pre_mask

    def stage3(self, feats, flows, aux_feats=None, pre_offset=None, pre_mask=None):
        flows_backward, flows_forward = flows
        current = aux_feats["feats"] if aux_feats is not None else feats["spatial"]
        for name in STAGES[2:]:
            pre = name.replace("stage3", "stage2")
            module = self.deform_align[name]

            def align(feat_prop, cond, flow, feat_current, fi, module=module, pre=pre):
                if isinstance(module, ReAlignmentModule):
                    return module(feat_prop, cond, flow, feat_current, pre_offset[pre][fi], pre_mask[pre][fi])
                return module(feat_prop, cond, flow)[0]

            self.propagate(feats, flows_backward if name.endswith("backward") else flows_forward, name,
                           current, align)
        return feats

    def auxiliary_stage(self, feats, lqs):
        """x4 images from the stage-2 features ('outs') and features made back from them ('feats')."""
        outs, aux = [], []
        for i in range(lqs.shape[1]):
            hr = torch.cat([feats[k][i] for k in ("spatial", "feat_stage1") + STAGES[:2]], dim=1)
            hr_low = self.aux_reconstruction(hr)
            hr_mid = self.lrelu(self.aux_upsample1(hr_low))
            hr_high = self.lrelu(self.aux_upsample2(hr_mid))
            hr = self.aux_conv_last(hr_high) + _up4(lqs[:, i])
            outs.append(hr)
            feat = self.aux_block_down1(torch.cat([hr, hr_high], dim=1))
            feat = self.aux_block_down2(torch.cat([feat, hr_mid], dim=1))
            aux.append(self.aux_fusion(torch.cat([feat, hr_low], dim=1)))
        return {"outs": outs, "feats": aux}

    def upsample(self, lqs, feats, aux_feats=None):
        outputs = []
        for i in range(lqs.shape[1]):
            local_feat = feats["feat_stage1"][i]
            hr = torch.cat([feats[k][i] for k in ("spatial", "feat_stage1") + STAGES], dim=1)
            hr = self.reconstruction(hr)
            hr = self.lrelu(self.upsample1(hr))
            hr = self.lrelu(self.upsample2(hr))
            if not self.only_last:
                hr = self.lrelu(self.conv_hr(hr))
            hr = self.conv_last(hr) + _up4(lqs[:, i])
            if self.use_local_connnect:
                local = self.lrelu(self.aux_upsample1(local_feat))
                local = self.lrelu(self.aux_upsample2(local))
                hr = self.hybrid_conv_last(local) + hr
            outputs.append(hr)
        out = torch.stack(outputs, dim=1)
        if self.auxiliary_loss:
            return torch.stack(aux_feats["outs"], dim=1), out
        return out

    def forward(self, lqs):
        """lqs: [N, T, 3, H, W] -> (aux, out) or out, each [N, T, 3, 4H, 4W]."""
        check_video_input("MSVSR", lqs, self.MIN_SIZE)
        n, t, c, h, w = lqs.shape
        feats_ = self.feat_extract(lqs.reshape(-1, c, h, w))
        feats = {"spatial": list(feats_.reshape(n, t, *feats_.shape[1:]).unbind(1))}
        flows_forward, flows_backward = self.compute_flow(lqs)
        self.stage1(feats, flows_backward, flows_forward)
        feats, pre_offset, pre_mask = self.stage2(feats, (flows_backward, flows_forward))
        aux_feats = self.auxiliary_stage(feats, lqs) if self.auxiliary_loss else None
        feats = self.stage3(feats, (flows_backward, flows_forward), aux_feats, pre_offset, pre_mask)
        return self.upsample(lqs, feats, aux_feats)

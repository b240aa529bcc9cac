"""Occlusion-aware generator of the First Order Motion Model (Siarohin et al., NeurIPS 2019,
https://arxiv.org/abs/2003.00196), as PaddleGAN's ppgan/models/generators/occlusion_aware.py
(mobile form and the `inference` border handling of its FirstOrderPredictor included).
Names follow PaddleGAN (`dense_motion_network`, `first`, `down_blocks`, `bottleneck.r<i>`,
`up_blocks`, `final`) so `.pdparams` load.
"""
import functools
import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...modules.dense_motion import DenseMotionNetwork
from ...modules.first_order import (DownBlock2d, MobileDownBlock2d, MobileResBlock2d, MobileUpBlock2d, ResBlock2d,
                                    SameBlock2d, UpBlock2d, conv2d, make_coordinate_grid)
from ...utils.errors import ConfigError
from .builder import GENERATORS


@functools.lru_cache(maxsize=16)
def _border_weight(h, w, pad, device, dtype):
    """[1, h, w, 1]: ones with a `pad`-pixel zero border, blurred by cv2.GaussianBlur((9, 9), 0) as
    PaddleGAN's inference mode does (1 inside, falling to 0 at the image edge); cached per device."""
    m = np.zeros((h, w), np.float32)
    m[pad:h - pad, pad:w - pad] = 1.0
    m = cv2.GaussianBlur(m, (9, 9), 0.0, borderType=cv2.BORDER_ISOLATED)
    return torch.from_numpy(m).to(device, dtype)[None, :, :, None]


@GENERATORS.register()
class OcclusionAwareGenerator(nn.Module):
    """Warps the encoded source image by the dense motion between two keypoint sets, masks what the
    source cannot show (occlusion) and decodes the result (a Johnson-style encoder / decoder).

    Args:
        num_channels (int): image channels.
        num_kp (int): keypoints K.
        block_expansion (int): width of the first block.
        max_features (int): channel cap.
        num_down_blocks (int): encoder downsamplings (H and W must be divisible by 2 ** this).
        num_bottleneck_blocks (int): residual blocks at the bottleneck.
        estimate_occlusion_map (bool): predict and apply an occlusion map (default False).
        dense_motion_params (dict | None): DenseMotionNetwork's block_expansion, max_features,
            num_blocks, scale_factor (, kp_variance); None: no warping (default).
        estimate_jacobian (bool): unused, accepted as PaddleGAN's configs pass it (default False).
        inference (bool): FirstOrderPredictor's mode (default False): the deformation fades to the
            identity over a 5-pixel image border and (not mobile) the occlusion map is 1 there.
        mobile_net (bool): PaddleGAN's mobile variant (default False).
    forward(source_image [B, C, H, W] in [0, 1], kp_driving, kp_source) -> dict (H and W multiples of
        `size_multiple`, 128 for PaddleGAN's vox configs, always work):
        'prediction' [B, C, H, W] in [0, 1]; with dense motion also 'mask', 'sparse_deformed',
        'deformed' [B, C, H, W] (the source warped) and, if estimated, 'occlusion_map'.
    """

    def __init__(self, num_channels, num_kp, block_expansion, max_features, num_down_blocks, num_bottleneck_blocks,
                 estimate_occlusion_map=False, dense_motion_params=None, estimate_jacobian=False, inference=False,
                 mobile_net=False):
        super().__init__()
        if num_down_blocks < 0 or num_bottleneck_blocks < 0:
            raise ConfigError(f"OcclusionAwareGenerator num_down_blocks and num_bottleneck_blocks must be >= 0, "
                              f"got {num_down_blocks} and {num_bottleneck_blocks}")
        if dense_motion_params is not None:
            self.dense_motion_network = DenseMotionNetwork(num_kp=num_kp, num_channels=num_channels,
                                                           estimate_occlusion_map=estimate_occlusion_map,
                                                           **dense_motion_params, mobile_net=mobile_net)
        else:
            self.dense_motion_network = None

        if mobile_net:
            self.first = nn.Sequential(
                SameBlock2d(num_channels, num_channels, kernel_size=3, padding=1, mobile_net=True),
                SameBlock2d(num_channels, num_channels, kernel_size=3, padding=1, mobile_net=True),
                SameBlock2d(num_channels, block_expansion, kernel_size=3, padding=1, mobile_net=True))
        else:
            self.first = SameBlock2d(num_channels, block_expansion, kernel_size=(7, 7), padding=(3, 3))

        def width(i):
            return min(max_features, block_expansion * (2 ** i))

        down, up, res = ((MobileDownBlock2d, MobileUpBlock2d, MobileResBlock2d) if mobile_net
                         else (DownBlock2d, UpBlock2d, ResBlock2d))
        self.down_blocks = nn.ModuleList([down(width(i), width(i + 1), kernel_size=(3, 3), padding=(1, 1))
                                          for i in range(num_down_blocks)])
        self.up_blocks = nn.ModuleList([
            up(width(num_down_blocks - i), width(num_down_blocks - i - 1), kernel_size=(3, 3), padding=(1, 1))
            for i in range(num_down_blocks)])
        self.bottleneck = nn.Sequential()
        for i in range(num_bottleneck_blocks):
            self.bottleneck.add_module(f"r{i}", res(width(num_down_blocks), kernel_size=(3, 3), padding=(1, 1)))

        if mobile_net:
            self.final = nn.Sequential(
                conv2d(block_expansion, block_expansion, 3, padding=1, init="kaiming_uniform"), nn.ReLU(),
                conv2d(block_expansion, block_expansion, 3, padding=1, init="kaiming_uniform"), nn.ReLU(),
                conv2d(block_expansion, num_channels, 3, padding=1, init="kaiming_uniform"))
        else:
            self.final = conv2d(block_expansion, num_channels, 7, padding=3)
        self.estimate_occlusion_map = estimate_occlusion_map
        self.num_channels = num_channels
        self.num_down_blocks = num_down_blocks
        # input H and W that are multiples of this always work (encoder, and the dense motion hourglass)
        self.size_multiple = 2 ** num_down_blocks
        if dense_motion_params is not None:
            scale = dense_motion_params.get("scale_factor", 1)
            dm_multiple = round(1 / scale) * 2 ** dense_motion_params["num_blocks"] if scale > 0 else 1
            self.size_multiple = math.lcm(self.size_multiple, dm_multiple)
        self.inference = inference
        self.pad = 5
        self.mobile_net = mobile_net

    def deform_input(self, inp, deformation):
        """Warp `inp` [B, C, H, W] by `deformation` [B, h, w, 2] (bilinearly resized to H x W)."""
        _, h_old, w_old, _ = deformation.shape
        _, _, h, w = inp.shape
        if h_old != h or w_old != w:
            deformation = deformation.permute(0, 3, 1, 2)
            deformation = F.interpolate(deformation, size=(h, w), mode="bilinear", align_corners=False)
            deformation = deformation.permute(0, 2, 3, 1)
        if self.inference:
            identity_grid = make_coordinate_grid((h, w), dtype=deformation.dtype, device=deformation.device)
            weight = _border_weight(h, w, self.pad, deformation.device, deformation.dtype)
            deformation = weight * deformation + (1 - weight) * identity_grid[None]
        dtype = torch.promote_types(inp.dtype, deformation.dtype)  # sample fp16 features at fp32 positions
        return F.grid_sample(inp.to(dtype), deformation.to(dtype), mode="bilinear", padding_mode="zeros",
                             align_corners=True)

    def forward(self, source_image, kp_driving, kp_source):
        h, w = source_image.shape[-2:]
        m = 2 ** self.num_down_blocks
        if h % m or w % m:
            raise ConfigError(f"OcclusionAwareGenerator ({self.num_down_blocks} down blocks) needs H and W "
                              f"divisible by {m}, got {h}x{w}")
        # encoder
        out = self.first(source_image)
        for block in self.down_blocks:
            out = block(out)

        # warp the features by the dense motion; mask what the source cannot show
        output_dict = {}
        if self.dense_motion_network is not None:
            dense_motion = self.dense_motion_network(source_image=source_image, kp_driving=kp_driving,
                                                     kp_source=kp_source)
            output_dict["mask"] = dense_motion["mask"]
            output_dict["sparse_deformed"] = dense_motion["sparse_deformed"]
            occlusion_map = dense_motion.get("occlusion_map")
            if occlusion_map is not None:
                output_dict["occlusion_map"] = occlusion_map
            deformation = dense_motion["deformation"]
            out = self.deform_input(out, deformation)

            if occlusion_map is not None:
                resized = out.shape[2:] != occlusion_map.shape[2:]
                if resized:
                    occlusion_map = F.interpolate(occlusion_map, size=out.shape[2:], mode="bilinear",
                                                  align_corners=False)
                if self.inference and not self.mobile_net:
                    # PaddleGAN sets the border in place; when the map was not resized that tensor is the
                    # one it returns, so the returned map shows the border too
                    p = self.pad
                    occlusion_map = occlusion_map.clone()
                    occlusion_map[:, :, :p, :] = 1.0
                    occlusion_map[:, :, :, :p] = 1.0
                    occlusion_map[:, :, occlusion_map.shape[2] - p:, :] = 1.0
                    occlusion_map[:, :, :, occlusion_map.shape[3] - p:] = 1.0
                    if not resized:
                        output_dict["occlusion_map"] = occlusion_map
                out = out * occlusion_map.to(out.dtype)

            output_dict["deformed"] = self.deform_input(source_image, deformation)

        # decoder
        out = self.bottleneck(out)
        for block in self.up_blocks:
            out = block(out)
        output_dict["prediction"] = torch.sigmoid(self.final(out))
        return output_dict

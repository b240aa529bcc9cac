"""Keypoint detector of the First Order Motion Model (Siarohin et al., NeurIPS 2019,
https://arxiv.org/abs/2003.00196), as PaddleGAN's ppgan/modules/keypoint_detector.py (mobile form
included). Names follow PaddleGAN (`predictor`, `kp`, `jacobian`, `down`) so `.pdparams` load.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ..utils.errors import ConfigError
from .first_order import AntiAliasInterpolation2d, Hourglass, at_least_float32, conv2d, make_coordinate_grid


class KPDetector(nn.Module):
    """Unsupervised keypoints (and local affine jacobians) of an image.

    An hourglass predicts one heatmap per keypoint; softmax(heatmap / temperature) over H x W gives
    a distribution whose mean is the keypoint and whose weighted sum of a per-pixel 2x2 map is the
    jacobian (initialised to the identity).

    Args:
        block_expansion (int): hourglass width.
        num_kp (int): number of keypoints K.
        num_channels (int): image channels.
        max_features (int): hourglass channel cap.
        num_blocks (int): hourglass depth; the (downscaled) input must be divisible by 2 ** num_blocks.
        temperature (float): softmax temperature (> 0; 0.1 in FOM).
        estimate_jacobian (bool): also predict jacobians (default False).
        scale_factor (float): the input is first downscaled by this (1/n; default 1).
        single_jacobian_map (bool): one jacobian map shared by all keypoints (default False).
        pad (int): padding of the kp / jacobian head convs (default 0: a 7x7 head shrinks the map by 6).
        mobile_net (bool): PaddleGAN's mobile variant (depthwise hourglass, three 3x3 head convs).
    Input: x [B, num_channels, H, W] in [0, 1]; H and W multiples of `size_multiple`
        (1 / scale_factor * 2 ** num_blocks: 128 for PaddleGAN's vox configs) always work.
    Returns: {'value': [B, K, 2] (x, y) in [-1, 1], 'jacobian': [B, K, 2, 2] (if estimate_jacobian)}.
    """

    def __init__(self, block_expansion, num_kp, num_channels, max_features, num_blocks, temperature,
                 estimate_jacobian=False, scale_factor=1, single_jacobian_map=False, pad=0, mobile_net=False):
        super().__init__()
        if num_kp < 1:
            raise ConfigError(f"KPDetector num_kp must be >= 1, got {num_kp}")
        if not temperature > 0:
            raise ConfigError(f"KPDetector temperature must be > 0, got {temperature}")
        self.predictor = Hourglass(block_expansion, in_features=num_channels, max_features=max_features,
                                   num_blocks=num_blocks, mobile_net=mobile_net)
        c = self.predictor.out_filters
        if mobile_net:
            self.kp = nn.Sequential(
                conv2d(c, c, 3, padding=pad, init="kaiming_uniform"),
                conv2d(c, c, 3, padding=pad, init="kaiming_uniform"),
                conv2d(c, num_kp, 3, padding=pad, init="kaiming_uniform"))
        else:
            self.kp = conv2d(c, num_kp, 7, padding=pad)

        if estimate_jacobian:
            self.num_jacobian_maps = 1 if single_jacobian_map else num_kp
            if mobile_net:
                self.jacobian = nn.Sequential(conv2d(c, c, 3, padding=pad), conv2d(c, c, 3, padding=pad),
                                              conv2d(c, 4 * self.num_jacobian_maps, 3, padding=pad))
                convs = list(self.jacobian)
            else:
                self.jacobian = conv2d(c, 4 * self.num_jacobian_maps, 7, padding=pad)
                convs = [self.jacobian]
            # zero weights and an identity bias: every jacobian starts as the identity
            with torch.no_grad():
                for conv in convs:
                    conv.weight.zero_()
                convs[-1].bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0] * self.num_jacobian_maps))
        else:
            self.jacobian = None

        self.num_kp = num_kp
        # input H and W that are multiples of this always work (the downscaling, then the hourglass)
        self.size_multiple = round(1 / scale_factor) * 2 ** num_blocks if scale_factor > 0 else 1
        self.temperature = temperature
        self.scale_factor = scale_factor
        if self.scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, self.scale_factor, mobile_net=mobile_net)

    def gaussian2kp(self, heatmap):
        """Mean (x, y) of each heatmap [B, K, H, W] (a distribution over H x W): {'value': [B, K, 2]}."""
        grid = make_coordinate_grid(heatmap.shape[2:], dtype=heatmap.dtype, device=heatmap.device)
        value = (heatmap.unsqueeze(-1) * grid[None, None]).sum(dim=(2, 3))
        return {"value": value}

    def forward(self, x):
        if self.scale_factor != 1:
            x = self.down(x)
        feature_map = self.predictor(x)
        prediction = at_least_float32(self.kp(feature_map))                # [B, K, h, w]
        b, k, h, w = prediction.shape
        heatmap = F.softmax(prediction.reshape(b, k, -1) / self.temperature, dim=2).reshape(b, k, h, w)
        out = self.gaussian2kp(heatmap)

        if self.jacobian is not None:
            jacobian_map = at_least_float32(self.jacobian(feature_map)).reshape(b, self.num_jacobian_maps, 4, h, w)
            jacobian = (heatmap.unsqueeze(2) * jacobian_map).reshape(b, k, 4, -1).sum(dim=-1)
            out["jacobian"] = jacobian.reshape(b, k, 2, 2)
        return out

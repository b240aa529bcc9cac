"""Dense motion network of the First Order Motion Model (Siarohin et al., NeurIPS 2019,
https://arxiv.org/abs/2003.00196), as PaddleGAN's ppgan/modules/dense_motion.py (mobile form
included). Names follow PaddleGAN (`hourglass`, `mask`, `occlusion`, `down`) so `.pdparams` load.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .first_order import (AntiAliasInterpolation2d, Hourglass, at_least_float32, batched_inverse, conv2d,
                          kp2gaussian, make_coordinate_grid)


def _head(channels, out_channels, mobile_net):
    """A 7x7 conv, or (mobile) conv3-ReLU-conv3-ReLU-conv3 with KaimingUniform init."""
    if not mobile_net:
        return conv2d(channels, out_channels, 7, padding=3)
    return nn.Sequential(conv2d(channels, channels, 3, padding=1, init="kaiming_uniform"), nn.ReLU(),
                         conv2d(channels, channels, 3, padding=1, init="kaiming_uniform"), nn.ReLU(),
                         conv2d(channels, out_channels, 3, padding=1, init="kaiming_uniform"))


class DenseMotionNetwork(nn.Module):
    """Dense motion (and occlusion) from the sparse motions around each keypoint pair.

    Every keypoint k gives a local affine motion T_k(z) = J_s,k inv(J_d,k) (z - kp_d,k) + kp_s,k
    (plus the identity for the background); an hourglass over the heatmaps kp_d - kp_s and the
    source warped by each T_k predicts soft masks that blend the motions into one.

    Args:
        block_expansion, num_blocks, max_features (int): hourglass width, depth and channel cap.
        num_kp (int): keypoints K.
        num_channels (int): image channels.
        estimate_occlusion_map (bool): also predict an occlusion map (default False).
        scale_factor (float): the source is first downscaled by this (1/n; default 1).
        kp_variance (float): variance of the keypoint Gaussians (default 0.01).
        mobile_net (bool): PaddleGAN's mobile variant.
    forward(source_image [B, C, H, W], kp_driving, kp_source) -> dict, at h, w = H, W * scale_factor:
        'sparse_deformed' [B, K+1, C, h, w], 'mask' [B, K+1, h, w] (softmax; 0 = background),
        'deformation' [B, h, w, 2] (grid_sample coordinates), 'occlusion_map' [B, 1, h, w] (if estimated).
    """

    def __init__(self, block_expansion, num_blocks, max_features, num_kp, num_channels,
                 estimate_occlusion_map=False, scale_factor=1, kp_variance=0.01, mobile_net=False):
        super().__init__()
        self.hourglass = Hourglass(block_expansion=block_expansion, in_features=(num_kp + 1) * (num_channels + 1),
                                   max_features=max_features, num_blocks=num_blocks, mobile_net=mobile_net)
        self.mask = _head(self.hourglass.out_filters, num_kp + 1, mobile_net)
        self.occlusion = _head(self.hourglass.out_filters, 1, mobile_net) if estimate_occlusion_map else None
        self.num_kp = num_kp
        self.scale_factor = scale_factor
        self.kp_variance = kp_variance
        if self.scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, self.scale_factor, mobile_net=mobile_net)

    def create_heatmap_representations(self, source_image, kp_driving, kp_source):
        """Eq. 6 of the paper, H_k(z): [B, K+1, 1, h, w] with a zero background channel first."""
        spatial_size = source_image.shape[2:]
        heatmap = (kp2gaussian(kp_driving, spatial_size, self.kp_variance)
                   - kp2gaussian(kp_source, spatial_size, self.kp_variance))
        zeros = heatmap.new_zeros(heatmap.shape[0], 1, *spatial_size)
        return torch.cat([zeros, heatmap], dim=1).unsqueeze(2)

    def create_sparse_motions(self, source_image, kp_driving, kp_source):
        """Eq. 4 of the paper, T_{s<-d}(z): [B, K+1, h, w, 2], the identity first."""
        bs, _, h, w = source_image.shape
        identity_grid = make_coordinate_grid((h, w), dtype=kp_source["value"].dtype,
                                             device=kp_source["value"].device).reshape(1, 1, h, w, 2)
        coordinate_grid = identity_grid - kp_driving["value"].reshape(bs, self.num_kp, 1, 1, 2)
        if "jacobian" in kp_driving:
            jacobian = torch.matmul(kp_source["jacobian"], batched_inverse(kp_driving["jacobian"]))  # [B, K, 2, 2]
            jacobian = jacobian.reshape(bs, self.num_kp, 1, 1, 2, 2)
            coordinate_grid = torch.matmul(jacobian, coordinate_grid.unsqueeze(-1)).squeeze(-1)
        driving_to_source = coordinate_grid + kp_source["value"].reshape(bs, self.num_kp, 1, 1, 2)
        identity_grid = identity_grid.to(driving_to_source.dtype).expand(bs, 1, h, w, 2)
        return torch.cat([identity_grid, driving_to_source], dim=1)

    def create_deformed_source_image(self, source_image, sparse_motions):
        """Eq. 7 of the paper: the source warped by each sparse motion, [B, K+1, C, h, w]."""
        bs, c, h, w = source_image.shape
        n = self.num_kp + 1
        source_repeat = source_image.unsqueeze(1).expand(bs, n, c, h, w).reshape(bs * n, c, h, w)
        grid = sparse_motions.reshape(bs * n, h, w, 2)
        dtype = torch.promote_types(source_repeat.dtype, grid.dtype)
        sparse_deformed = F.grid_sample(source_repeat.to(dtype), grid.to(dtype), mode="bilinear",
                                        padding_mode="zeros", align_corners=True)
        return sparse_deformed.reshape(bs, n, c, h, w)

    def forward(self, source_image, kp_driving, kp_source):
        if self.scale_factor != 1:
            source_image = self.down(source_image)
        bs, _, h, w = source_image.shape

        out_dict = {}
        heatmap_representation = self.create_heatmap_representations(source_image, kp_driving, kp_source)
        sparse_motion = self.create_sparse_motions(source_image, kp_driving, kp_source)
        deformed_source = self.create_deformed_source_image(source_image, sparse_motion)
        out_dict["sparse_deformed"] = deformed_source

        x = torch.cat([heatmap_representation.to(deformed_source.dtype), deformed_source], dim=2)
        prediction = self.hourglass(x.reshape(bs, -1, h, w))

        mask = F.softmax(at_least_float32(self.mask(prediction)), dim=1)     # [B, K+1, h, w]
        out_dict["mask"] = mask
        deformation = (sparse_motion.permute(0, 1, 4, 2, 3) * mask.unsqueeze(2)).sum(dim=1)
        out_dict["deformation"] = deformation.permute(0, 2, 3, 1)            # [B, h, w, 2]

        if self.occlusion is not None:  # Sec. 3.2 of the paper
            out_dict["occlusion_map"] = torch.sigmoid(at_least_float32(self.occlusion(prediction)))
        return out_dict

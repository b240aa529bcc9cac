"""Building blocks of the First Order Motion Model, and keypoint normalisation for animation.

Siarohin et al., "First Order Motion Model for Image Animation", NeurIPS 2019,
https://arxiv.org/abs/2003.00196; reference code https://github.com/AliaksandrSiarohin/first-order-model
as PaddleGAN ports it (ppgan/modules/first_order.py, ppgan/utils/animate.py), mobile blocks included.
Sub-module and buffer names follow PaddleGAN (`conv`, `norm`, `conv1`, `norm1`, `conv_pw`, ...,
`down_blocks.<i>`, `up_blocks.<i>`, the anti-alias kernel buffer `weight`) so `.pdparams` load by name.

Conventions: keypoints are dicts {'value': [B, K, 2] (x, y) in [-1, 1], 'jacobian': [B, K, 2, 2]};
images are [B, C, H, W]. Convs start from Paddle's default init (N(0, sqrt(2 / fan_in)), zero bias)
or, where PaddleGAN asks for it, KaimingUniform, so training from scratch starts where PaddleGAN does.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..utils.errors import ConfigError


def conv2d(in_channels, out_channels, kernel_size, padding=0, groups=1, bias=True, stride=1,
           init="normal"):
    """`nn.Conv2d` initialised as Paddle's `nn.Conv2D` is: init 'normal' (Paddle's default,
    N(0, sqrt(2 / (k_h * k_w * in_channels)))) or 'kaiming_uniform' (Paddle's KaimingUniform:
    U(+-sqrt(6 / fan_in)), fan_in = in_channels / groups * k_h * k_w); biases start at 0."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                     groups=groups, bias=bias)
    kh, kw = conv.kernel_size
    if init == "normal":
        nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / (in_channels * kh * kw)))  # Paddle ignores groups
    elif init == "kaiming_uniform":
        nn.init.kaiming_uniform_(conv.weight, a=0, mode="fan_in", nonlinearity="relu")
    else:
        raise ConfigError(f"conv init must be 'normal' or 'kaiming_uniform', got {init!r}")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


def at_least_float32(x):
    """`x` in float32 unless it is already float32 / float64: keypoints, softmax masks and sampling
    grids keep full precision when the convs run in half precision (autocast)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def SyncBatchNorm(num_features):  # noqa: N802 (PaddleGAN's name)
    """PaddleGAN's norm of every FOM block: BatchNorm (eps 1e-5; Paddle momentum 0.9 == PyTorch
    0.1), `SyncBatchNorm` when training on several GPUs. For multi-GPU training convert the built
    net with `torch.nn.SyncBatchNorm.convert_sync_batchnorm`."""
    return nn.BatchNorm2d(num_features)


def detach_kp(kp):
    """A keypoint dict with every tensor detached."""
    return {key: value.detach() for key, value in kp.items()}


def make_coordinate_grid(spatial_size, dtype=torch.float32, device=None, type=None):
    """Grid [H, W, 2] of (x, y) coordinates, each running over [-1, 1] (corners included).

    Args:
        spatial_size (tuple[int, int]): (H, W), each > 1.
        dtype (torch.dtype): float dtype (default float32). `type` is PaddleGAN's spelling.
        device: where to build it.
    """
    dtype = type if type is not None else dtype
    h, w = (int(s) for s in spatial_size)
    x = torch.arange(w, dtype=dtype, device=device)
    y = torch.arange(h, dtype=dtype, device=device)
    x = 2 * (x / (w - 1)) - 1
    y = 2 * (y / (h - 1)) - 1
    yy = y.reshape(-1, 1).expand(h, w)
    xx = x.reshape(1, -1).expand(h, w)
    return torch.stack([xx, yy], dim=2)


def kp2gaussian(kp, spatial_size, kp_variance):
    """Gaussian-like heatmap around each keypoint: exp(-|z - kp|^2 / (2 * kp_variance)).

    Args:
        kp (dict): 'value' [..., K, 2].
        spatial_size (tuple[int, int]): (H, W) of the heatmap.
        kp_variance (float): the variance (0.01 in FOM).
    Returns:
        Tensor: [..., K, H, W].
    """
    mean = kp["value"]
    grid = make_coordinate_grid(spatial_size, dtype=mean.dtype, device=mean.device)  # [H, W, 2]
    mean_sub = grid - mean[..., None, None, :]                                         # [..., K, H, W, 2]
    return torch.exp(-0.5 * (mean_sub ** 2).sum(-1) / kp_variance)


class ResBlock2d(nn.Module):
    """Pre-activation residual block (BN-ReLU-conv twice), same resolution and channels."""

    def __init__(self, in_features, kernel_size, padding):
        super().__init__()
        self.conv1 = conv2d(in_features, in_features, kernel_size, padding=padding)
        self.conv2 = conv2d(in_features, in_features, kernel_size, padding=padding)
        self.norm1 = SyncBatchNorm(in_features)
        self.norm2 = SyncBatchNorm(in_features)

    def forward(self, x):
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class MobileResBlock2d(nn.Module):
    """Inverted-residual form of ResBlock2d: BN-ReLU, 1x1 expand (x2) + BN, depthwise conv + BN +
    ReLU, 1x1 project + BN, plus the input (PaddleGAN's mobile FOM). Convs have no bias."""

    def __init__(self, in_features, kernel_size, padding):
        super().__init__()
        out_features = in_features * 2
        self.conv_pw = conv2d(in_features, out_features, 1, bias=False)
        self.conv_dw = conv2d(out_features, out_features, kernel_size, padding=padding, groups=out_features,
                              bias=False)
        self.conv_pw_linear = conv2d(out_features, in_features, 1, bias=False)
        self.norm1 = SyncBatchNorm(in_features)
        self.norm_pw = SyncBatchNorm(out_features)
        self.norm_dw = SyncBatchNorm(out_features)
        self.norm_pw_linear = SyncBatchNorm(in_features)

    def forward(self, x):
        out = self.norm_pw(self.conv_pw(F.relu(self.norm1(x))))  # no ReLU after norm_pw (as PaddleGAN)
        out = F.relu(self.norm_dw(self.conv_dw(out)))
        out = self.norm_pw_linear(self.conv_pw_linear(out))
        return out + x


class UpBlock2d(nn.Module):
    """Nearest x2 upsampling, conv, BN, ReLU."""

    def __init__(self, in_features, out_features, kernel_size=3, padding=1, groups=1):
        super().__init__()
        self.conv = conv2d(in_features, out_features, kernel_size, padding=padding, groups=groups)
        self.norm = SyncBatchNorm(out_features)

    def forward(self, x):
        out = F.interpolate(x, scale_factor=2, mode="nearest")
        return F.relu(self.norm(self.conv(out)))


class MobileUpBlock2d(nn.Module):
    """Nearest x2 upsampling, depthwise conv + BN + ReLU, 1x1 conv + BN + ReLU (no conv biases)."""

    def __init__(self, in_features, out_features, kernel_size=3, padding=1, groups=1):
        super().__init__()
        self.conv = conv2d(in_features, in_features, kernel_size, padding=padding, groups=in_features, bias=False)
        self.conv1 = conv2d(in_features, out_features, 1, bias=False)
        self.norm = SyncBatchNorm(in_features)
        self.norm1 = SyncBatchNorm(out_features)

    def forward(self, x):
        out = F.interpolate(x, scale_factor=2, mode="nearest")
        out = F.relu(self.norm(self.conv(out)))
        return F.relu(self.norm1(self.conv1(out)))


class DownBlock2d(nn.Module):
    """Conv, BN, ReLU, 2x2 average pooling."""

    def __init__(self, in_features, out_features, kernel_size=3, padding=1, groups=1):
        super().__init__()
        self.conv = conv2d(in_features, out_features, kernel_size, padding=padding, groups=groups)
        self.norm = SyncBatchNorm(out_features)
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))

    def forward(self, x):
        return self.pool(F.relu(self.norm(self.conv(x))))


class MobileDownBlock2d(nn.Module):
    """Depthwise conv + BN + ReLU, 1x1 conv + BN + ReLU, 2x2 average pooling (no conv biases)."""

    def __init__(self, in_features, out_features, kernel_size=3, padding=1, groups=1):
        super().__init__()
        self.conv = conv2d(in_features, in_features, kernel_size, padding=padding, groups=in_features, bias=False)
        self.norm = SyncBatchNorm(in_features)
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))
        self.conv1 = conv2d(in_features, out_features, 1, bias=False)
        self.norm1 = SyncBatchNorm(out_features)

    def forward(self, x):
        out = F.relu(self.norm(self.conv(x)))
        out = F.relu(self.norm1(self.conv1(out)))
        return self.pool(out)


class SameBlock2d(nn.Module):
    """Conv (KaimingUniform init; no bias when `mobile_net`), BN, ReLU; same resolution."""

    def __init__(self, in_features, out_features, groups=1, kernel_size=3, padding=1, mobile_net=False):
        super().__init__()
        self.conv = conv2d(in_features, out_features, kernel_size, padding=padding, groups=groups,
                           bias=not mobile_net, init="kaiming_uniform")
        self.norm = SyncBatchNorm(out_features)

    def forward(self, x):
        return F.relu(self.norm(self.conv(x)))


class Encoder(nn.Module):
    """Hourglass encoder: `num_blocks` down blocks; returns the input and every block's output."""

    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256, mobile_net=False):
        super().__init__()
        block = MobileDownBlock2d if mobile_net else DownBlock2d
        self.down_blocks = nn.ModuleList([
            block(in_features if i == 0 else min(max_features, block_expansion * (2 ** i)),
                  min(max_features, block_expansion * (2 ** (i + 1))), kernel_size=3, padding=1)
            for i in range(num_blocks)])

    def forward(self, x):
        outs = [x]
        for down_block in self.down_blocks:
            outs.append(down_block(outs[-1]))
        return outs


class Decoder(nn.Module):
    """Hourglass decoder: up blocks, each output concatenated with the matching encoder output.
    `out_filters` = block_expansion + in_features channels."""

    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256, mobile_net=False):
        super().__init__()
        block = MobileUpBlock2d if mobile_net else UpBlock2d
        up_blocks = []
        for i in reversed(range(num_blocks)):
            in_filters = (1 if i == num_blocks - 1 else 2) * min(max_features, block_expansion * (2 ** (i + 1)))
            out_filters = min(max_features, block_expansion * (2 ** i))
            up_blocks.append(block(in_filters, out_filters, kernel_size=3, padding=1))
        self.up_blocks = nn.ModuleList(up_blocks)
        self.out_filters = block_expansion + in_features

    def forward(self, x):
        x = list(x)  # PaddleGAN pops from the caller's list; ours leaves it alone
        out = x.pop()
        for up_block in self.up_blocks:
            out = torch.cat([up_block(out), x.pop()], dim=1)
        return out


class Hourglass(nn.Module):
    """U-Net-like hourglass: [B, in_features, H, W] -> [B, out_filters, H, W]; H and W must be
    divisible by 2 ** num_blocks."""

    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256, mobile_net=False):
        super().__init__()
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features, mobile_net=mobile_net)
        self.decoder = Decoder(block_expansion, in_features, num_blocks, max_features, mobile_net=mobile_net)
        self.out_filters = self.decoder.out_filters
        self.num_blocks = num_blocks

    def forward(self, x):
        h, w = x.shape[-2:]
        m = 2 ** self.num_blocks
        if h % m or w % m:
            raise ConfigError(f"the FOM hourglass ({self.num_blocks} blocks) needs H and W divisible by {m} "
                              f"after the net's scale_factor, got {h}x{w}; use an image size that is a multiple "
                              f"of the net's size_multiple")
        return self.decoder(self.encoder(x))


class AntiAliasInterpolation2d(nn.Module):
    """Band-limited downsampling: Gaussian blur (depthwise conv, kernel in the persistent buffer
    `weight`, loaded from checkpoints), then every (1/scale)-th pixel.

    Args:
        channels (int): input channels.
        scale (float): output / input size; 1/scale must be an integer (1 returns the input).
        mobile_net (bool): PaddleGAN's mobile kernel (3x3, sigma 0.25) instead of
            sigma = (1/scale - 1) / 2, size 2 * round(4 * sigma) + 1.
    """

    def __init__(self, channels, scale, mobile_net=False):
        super().__init__()
        inv_scale = 1 / scale if scale > 0 else 0
        if scale <= 0 or scale > 1 or inv_scale != int(inv_scale):
            raise ConfigError(f"AntiAliasInterpolation2d scale must be 1/n for an integer n >= 1, got {scale}")
        if mobile_net:
            sigma, kernel_size = 0.25, 3
        else:
            sigma = (1 / scale - 1) / 2
            kernel_size = 2 * round(sigma * 4) + 1
        self.ka = kernel_size // 2
        self.kb = self.ka - 1 if kernel_size % 2 == 0 else self.ka
        # product of 1-D Gaussians, normalised to sum 1, as PaddleGAN computes it
        grids = torch.meshgrid(torch.arange(kernel_size, dtype=torch.float32),
                               torch.arange(kernel_size, dtype=torch.float32), indexing="ij")
        kernel = 1
        for grid in grids:
            mean = (kernel_size - 1) / 2
            kernel = kernel * torch.exp(-(grid - mean) ** 2 / (2 * sigma ** 2 + 1e-9))
        kernel = kernel / kernel.sum()
        self.register_buffer("weight", kernel.reshape(1, 1, kernel_size, kernel_size).repeat(channels, 1, 1, 1))
        self.groups = channels
        self.scale = scale
        self.step = int(inv_scale)

    def forward(self, x):
        if self.scale == 1.0:
            return x
        out = F.pad(x, [self.ka, self.kb, self.ka, self.kb])
        out = F.conv2d(out, weight=self.weight.to(out.dtype), groups=self.groups)
        return out[:, :, ::self.step, ::self.step]


class ImagePyramide(nn.Module):
    """Downsampled copies of an image for the multi-scale perceptual loss (FOM Sec. 3.3):
    {'prediction_<scale>': [B, C, H*scale, W*scale]}. Sub-modules `downs.<scale with '-' for '.'>`."""

    def __init__(self, scales, num_channels):
        super().__init__()
        self.downs = nn.ModuleDict()
        for scale in scales:
            self.downs[str(scale).replace(".", "-")] = AntiAliasInterpolation2d(num_channels, scale)

    def forward(self, x):
        return {"prediction_" + name.replace("-", "."): down(x) for name, down in self.downs.items()}


def normalize_kp(kp_source, kp_driving, kp_driving_initial, adapt_movement_scale=False,
                 use_relative_movement=False, use_relative_jacobian=False):
    """Driving keypoints moved onto the source, as PaddleGAN's `ppgan.utils.animate.normalize_kp`.

    With `use_relative_movement`: value = (kp_driving - kp_driving_initial) * s + kp_source, where
    s = sqrt(area(hull(kp_source[0]))) / sqrt(area(hull(kp_driving_initial[0]))) (convex hulls of the
    first batch element's keypoints, scipy) if `adapt_movement_scale`, else 1; with
    `use_relative_jacobian` too: jacobian = (J_driving @ inv(J_driving_initial)) @ J_source (skipped
    when the keypoints carry no jacobian). Without relative movement the driving keypoints are
    returned unchanged (the scale is not applied, as in PaddleGAN).

    Args:
        kp_source, kp_driving, kp_driving_initial (dict): 'value' [B, K, 2] (+ 'jacobian' [B, K, 2, 2]);
            batch sizes broadcast (source and initial are usually one frame).
    Returns:
        dict: a new keypoint dict (other keys of kp_driving kept).
    """
    scale = movement_scale(kp_source, kp_driving_initial) if adapt_movement_scale else 1.0
    kp_new = dict(kp_driving)
    if use_relative_movement:
        kp_new["value"] = (kp_driving["value"] - kp_driving_initial["value"]) * scale + kp_source["value"]
        if use_relative_jacobian and "jacobian" in kp_driving:
            jacobian_diff = torch.matmul(kp_driving["jacobian"], batched_inverse(kp_driving_initial["jacobian"]))
            kp_new["jacobian"] = torch.matmul(jacobian_diff, kp_source["jacobian"])
    return kp_new


def movement_scale(kp_source, kp_driving_initial):
    """normalize_kp's adaptive movement scale: sqrt(area(hull(kp_source['value'][0]))) /
    sqrt(area(hull(kp_driving_initial['value'][0]))), a Python float (computed in float64).
    Raises ConfigError when either hull has (almost) no area (< 1e-6: collinear or repeated points),
    where PaddleGAN would return a huge or infinite scale."""
    return math.sqrt(_hull_area(kp_source["value"][0])) / math.sqrt(_hull_area(kp_driving_initial["value"][0]))


def _hull_area(points):
    """Area of the convex hull of [K, 2] points (float64, scipy's `ConvexHull(...).volume`)."""
    from scipy.spatial import ConvexHull, QhullError

    pts = points.detach().to("cpu", torch.float64).numpy()
    try:
        area = ConvexHull(pts).volume
    except (QhullError, ValueError) as exc:
        raise ConfigError(f"adapt_movement_scale: the {len(pts)} keypoints span no area "
                          f"({str(exc).splitlines()[0]}); run without adapt_scale") from exc
    if not np.isfinite(area) or area < 1e-6:  # of at most 4 for [-1, 1] coordinates
        raise ConfigError(f"adapt_movement_scale: the keypoints span no area (convex hull {area:.3g}); "
                          "run without adapt_scale")
    return area


def batched_inverse(m):
    """Batched matrix inverse in (at least) float32, without a device sync (no singularity check:
    a singular matrix gives inf / nan rather than an error)."""
    return torch.linalg.inv_ex(at_least_float32(m))[0]

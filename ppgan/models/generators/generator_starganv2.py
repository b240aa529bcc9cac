"""StarGAN v2 nets (Choi et al., "StarGAN v2: Diverse Image Synthesis for Multiple Domains",
CVPR 2020, https://arxiv.org/abs/1912.01865), PaddleGAN layout.

Reference: clovaai/stargan-v2 `core/model.py` and `core/wing.py`, which PaddleGAN's
`generator_starganv2.py` / `modules/wing.py` port. Class, argument and sub-module names are
PaddleGAN's (`from_rgb`, `encode.<i>`, `decode.<i>`, `to_rgb`, `shared`, `unshared.<i>`, FAN's
`conv1`, `m0`, `top_m_0`, `l0`, ...) so its `.pdparams` load by name (Paddle's InstanceNorm
`scale`, BatchNorm `_mean` / `_variance` and [in, out] Linear weights are converted by
`ppgan.weights`).

    StarGANv2Generator  image + style code -> image (encoder / AdaIN decoder; with w_hpf > 0 the
                        high-pass skip path fed by FAN's face masks)
    StarGANv2Mapping    latent z + domain -> style code
    StarGANv2Style      image + domain -> style code
    FAN                 the face-landmark hourglass whose heatmaps give the two masks
The discriminator (`discriminators/discriminator_starganv2.py`) reuses `ResBlk`.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ...utils.errors import ConfigError
from .builder import GENERATORS

HPF_SIZES = (32, 64, 128)  # feature sizes that get the masked high-pass skip (PaddleGAN's)


def check_img_size(img_size, what):
    """`img_size` as an int: a power of two in 8..16384 (the widest layer has 2**14 // img_size channels)."""
    if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < 8 or img_size > 2 ** 14 \
            or img_size & (img_size - 1):
        raise ConfigError(f"{what}: img_size must be a power of two in 8..16384, got {img_size!r}")
    return img_size


def first_dim(img_size, dim_in, what):
    """Channels of the first layer: `dim_in`, default 2**14 // img_size (PaddleGAN's, fixed there)."""
    if dim_in is None:
        return 2 ** 14 // img_size
    _check_positive(what, dim_in=dim_in)
    return dim_in


def _check_positive(what, **values):
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{what}: {name} must be a positive integer, got {v!r}")


def select_domain(out, y, what):
    """out[i, y[i]] for `out` [N, num_domains, ...]: each sample's own domain.

    `y`: int tensor / list [N] (or [N, 1]), or one int for the whole batch. Domains out of range
    are a ConfigError when `y` is given on the CPU (a label tensor on an accelerator is not read
    back: no device sync per call)."""
    n, num_domains = out.shape[:2]
    y = torch.as_tensor(y)
    if y.is_floating_point() or y.is_complex():
        raise ConfigError(f"{what}: domain labels must be integers, got {y.dtype}")
    y = y.reshape(-1).long()
    if y.numel() == 1 and n != 1:
        y = y.expand(n)
    if y.numel() != n:
        raise ConfigError(f"{what}: {y.numel()} domain labels for a batch of {n}")
    if y.device.type == "cpu" and n and (int(y.min()) < 0 or int(y.max()) >= num_domains):
        bad = int(y.min()) if int(y.min()) < 0 else int(y.max())
        raise ConfigError(f"{what}: domain {bad} out of range for {num_domains} domains (0..{num_domains - 1})")
    return out[torch.arange(n, device=out.device), y.to(out.device)]


class ResBlk(nn.Module):
    """Pre-activation residual block: (shortcut + residual) / sqrt(2).

    shortcut: conv1x1 (no bias, when dim_in != dim_out), avgpool 2 (downsample);
    residual: [IN] act conv1 (dim_in -> dim_in) [avgpool 2] [IN] act conv2 (dim_in -> dim_out).
    IN = affine InstanceNorm (`norm1`, `norm2`) when `normalize`."""

    def __init__(self, dim_in, dim_out, actv=None, normalize=False, downsample=False):
        super().__init__()
        self.actv = actv if actv is not None else nn.LeakyReLU(0.2)
        self.normalize = normalize
        self.downsample = downsample
        self.learned_sc = dim_in != dim_out
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        if normalize:
            self.norm1 = nn.InstanceNorm2d(dim_in, affine=True)
            self.norm2 = nn.InstanceNorm2d(dim_in, affine=True)
        if self.learned_sc:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def _shortcut(self, x):
        if self.learned_sc:
            x = self.conv1x1(x)
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        return x

    def _residual(self, x):
        if self.normalize:
            x = self.norm1(x)
        x = self.conv1(self.actv(x))
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        if self.normalize:
            x = self.norm2(x)
        return self.conv2(self.actv(x))

    def forward(self, x):
        return (self._shortcut(x) + self._residual(x)) / math.sqrt(2)  # unit variance


class AdaIN(nn.Module):
    """(1 + gamma) * IN(x) + beta, [gamma, beta] = fc(s) split in two (gamma first); IN has no affine."""

    def __init__(self, style_dim, num_features):
        super().__init__()
        self.norm = nn.InstanceNorm2d(num_features, affine=False)
        self.fc = nn.Linear(style_dim, num_features * 2)

    def forward(self, x, s):
        h = self.fc(s)[:, :, None, None]
        gamma, beta = h.chunk(2, dim=1)
        return (1 + gamma) * self.norm(x) + beta


class AdainResBlk(nn.Module):
    """AdaIN residual block of the decoder: residual = AdaIN act [up x2 nearest] conv1 AdaIN act conv2.

    With `w_hpf == 0` the output is (residual + shortcut) / sqrt(2), shortcut = [up x2] [conv1x1];
    with `w_hpf > 0` it is the residual only (PaddleGAN / the paper's CelebA-HQ model: `conv1x1`
    exists, so the weights load, but is unused)."""

    def __init__(self, dim_in, dim_out, style_dim=64, w_hpf=0, actv=None, upsample=False):
        super().__init__()
        self.w_hpf = w_hpf
        self.actv = actv if actv is not None else nn.LeakyReLU(0.2)
        self.upsample = upsample
        self.learned_sc = dim_in != dim_out
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = AdaIN(style_dim, dim_in)
        self.norm2 = AdaIN(style_dim, dim_out)
        if self.learned_sc:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def _shortcut(self, x):
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        if self.learned_sc:
            x = self.conv1x1(x)
        return x

    def _residual(self, x, s):
        x = self.actv(self.norm1(x, s))
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv1(x)
        x = self.actv(self.norm2(x, s))
        return self.conv2(x)

    def forward(self, x, s):
        out = self._residual(x, s)
        if self.w_hpf == 0:
            out = (out + self._shortcut(x)) / math.sqrt(2)
        return out


class HighPass(nn.Module):
    """Depthwise 3x3 Laplacian [[-1,-1,-1],[-1,8,-1],[-1,-1,-1]] / w_hpf, padding 1 (a constant,
    not in the state dict)."""

    def __init__(self, w_hpf):
        super().__init__()
        kernel = torch.full((3, 3), -1.0)
        kernel[1, 1] = 8.0
        self.register_buffer("filter", kernel / w_hpf, persistent=False)

    def forward(self, x):
        weight = self.filter.to(x.dtype)[None, None].expand(x.shape[1], 1, 3, 3)
        return F.conv2d(x, weight, padding=1, groups=x.shape[1])


@GENERATORS.register()
class StarGANv2Generator(nn.Module):
    """Encoder (ResBlk with InstanceNorm, down to img_size / 16, or / 32 with w_hpf > 0, then two
    bottleneck blocks) and an AdaIN decoder mirroring it.

    Args:
        img_size (int): image size (power of two).
        style_dim (int): size of the style code s.
        max_conv_dim (int): channel cap.
        w_hpf (float): weight of the high-pass skip path; 0 disables it (AFHQ), 1 = CelebA-HQ.
        dim_in (int | None): channels of the first layer, doubling per downsampling block up to
            max_conv_dim; default 2**14 // img_size (PaddleGAN's; smaller for tiny demos).
    forward(x [N, 3, H, W] in [-1, 1], s [N, style_dim], masks=None) -> [N, 3, H, W], not squashed
    (no tanh). `masks`: FAN.get_heatmap's pair (two [N, 1, h, w] maps, or one tensor stacked as
    [2, N, 1, h, w]): after each decoder block whose output is 32, 64 or 128 px, the encoder
    features of that size masked by masks[0] (32 px) / masks[1] (64, 128 px), bilinearly resized,
    go through the high-pass filter and are added (needs w_hpf > 0)."""

    def __init__(self, img_size=256, style_dim=64, max_conv_dim=512, w_hpf: float = 1, dim_in=None):
        super().__init__()
        check_img_size(img_size, "StarGANv2Generator")
        _check_positive("StarGANv2Generator", style_dim=style_dim, max_conv_dim=max_conv_dim)
        if isinstance(w_hpf, bool) or not isinstance(w_hpf, (int, float)) or not w_hpf >= 0:
            raise ConfigError(f"StarGANv2Generator: w_hpf must be a number >= 0, got {w_hpf!r}")
        dim_in = first_dim(img_size, dim_in, "StarGANv2Generator")
        self.img_size = img_size
        self.w_hpf = w_hpf
        self.from_rgb = nn.Conv2d(3, dim_in, 3, 1, 1)
        self.encode = nn.ModuleList()
        self.decode = nn.ModuleList()  # built outermost first, stored innermost first
        self.to_rgb = nn.Sequential(nn.InstanceNorm2d(dim_in, affine=True), nn.LeakyReLU(0.2),
                                    nn.Conv2d(dim_in, 3, 1, 1, 0))
        repeat_num = max(0, int(math.log2(img_size)) - 4 + (1 if w_hpf > 0 else 0))
        dim_out = dim_in
        for _ in range(repeat_num):  # down / up-sampling blocks
            dim_out = min(dim_in * 2, max_conv_dim)
            self.encode.append(ResBlk(dim_in, dim_out, normalize=True, downsample=True))
            self.decode.insert(0, AdainResBlk(dim_out, dim_in, style_dim, w_hpf=w_hpf, upsample=True))
            dim_in = dim_out
        for _ in range(2):  # bottleneck blocks
            self.encode.append(ResBlk(dim_out, dim_out, normalize=True))
            self.decode.insert(0, AdainResBlk(dim_out, dim_out, style_dim, w_hpf=w_hpf))
        if w_hpf > 0:
            self.hpf = HighPass(w_hpf)

    def forward(self, x, s, masks=None):
        if masks is not None and not hasattr(self, "hpf"):
            raise ConfigError("StarGANv2Generator: masks need the high-pass path (w_hpf > 0); built with w_hpf=0")
        x = self.from_rgb(x)
        cache = {}
        for block in self.encode:
            if masks is not None and x.shape[2] in HPF_SIZES:
                cache[x.shape[2]] = x
            x = block(x)
        for block in self.decode:
            x = block(x, s)
            size = x.shape[2]
            if masks is not None and size in HPF_SIZES and size in cache:
                mask = masks[0] if size == 32 else masks[1]
                mask = F.interpolate(mask.to(x.dtype), size=(size, size), mode="bilinear", align_corners=False)
                x = x + self.hpf(mask * cache[size])
        return self.to_rgb(x)


@GENERATORS.register()
class StarGANv2Mapping(nn.Module):
    """Mapping network: a shared MLP (4 Linear + ReLU, `hidden_dim` wide) and one head per domain
    (3 Linear + ReLU, then Linear -> style_dim).

    Args:
        latent_dim (int), style_dim (int), num_domains (int): PaddleGAN's.
        hidden_dim (int): width of the hidden layers (PaddleGAN: 512, fixed; smaller for demos).
    forward(z [N, latent_dim], y [N] int domains) -> s [N, style_dim] (each sample's own domain's head)."""

    def __init__(self, latent_dim=16, style_dim=64, num_domains=2, hidden_dim=512):
        super().__init__()
        _check_positive("StarGANv2Mapping", latent_dim=latent_dim, style_dim=style_dim, num_domains=num_domains,
                        hidden_dim=hidden_dim)
        self.num_domains = num_domains
        layers = [nn.Linear(latent_dim, hidden_dim), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Linear(hidden_dim, hidden_dim), nn.ReLU()]
        self.shared = nn.Sequential(*layers)
        self.unshared = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
                          nn.Linear(hidden_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, style_dim))
            for _ in range(num_domains))

    def forward(self, z, y):
        h = self.shared(z)
        out = torch.stack([head(h) for head in self.unshared], dim=1)  # [N, num_domains, style_dim]
        return select_domain(out, y, "StarGANv2Mapping")


@GENERATORS.register()
class StarGANv2Style(nn.Module):
    """Style encoder: conv, ResBlks down to 4x4 (no normalisation), LeakyReLU, conv 4x4 -> 1x1,
    LeakyReLU (`shared`), then one Linear -> style_dim per domain (`unshared`). `dim_in`: as the
    generator's (default 2**14 // img_size).

    forward(x [N, 3, img_size, img_size], y [N] int domains) -> s [N, style_dim]."""

    def __init__(self, img_size=256, style_dim=64, num_domains=2, max_conv_dim=512, dim_in=None):
        super().__init__()
        check_img_size(img_size, "StarGANv2Style")
        _check_positive("StarGANv2Style", style_dim=style_dim, num_domains=num_domains, max_conv_dim=max_conv_dim)
        self.img_size = img_size
        self.num_domains = num_domains
        self.shared, dim_out = downsampling_trunk(img_size, max_conv_dim, first_dim(img_size, dim_in, "StarGANv2Style"))
        self.unshared = nn.ModuleList(nn.Linear(dim_out, style_dim) for _ in range(num_domains))

    def forward(self, x, y):
        check_input(x, self.img_size, "StarGANv2Style")
        h = self.shared(x).flatten(1)
        out = torch.stack([head(h) for head in self.unshared], dim=1)  # [N, num_domains, style_dim]
        return select_domain(out, y, "StarGANv2Style")


def downsampling_trunk(img_size, max_conv_dim, dim_in):
    """The layers the style encoder and the discriminator share in design: conv 3x3 (3 -> dim_in),
    ResBlk(downsample) down to 4x4 (channels doubling up to max_conv_dim), LeakyReLU, conv 4x4
    (-> 1x1), LeakyReLU. Returns (nn.Sequential, its output channels); the Sequential's indices
    are PaddleGAN's (`shared.<i>` / `main.<i>`)."""
    blocks = [nn.Conv2d(3, dim_in, 3, 1, 1)]
    dim_out = dim_in
    for _ in range(int(math.log2(img_size)) - 2):
        dim_out = min(dim_in * 2, max_conv_dim)
        blocks.append(ResBlk(dim_in, dim_out, downsample=True))
        dim_in = dim_out
    blocks += [nn.LeakyReLU(0.2), nn.Conv2d(dim_out, dim_out, 4, 1, 0), nn.LeakyReLU(0.2)]
    return nn.Sequential(*blocks), dim_out


def check_input(x, img_size, what):
    """ConfigError unless `x` is [N, 3, img_size, img_size] (the 4x4 conv must end at 1x1)."""
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != img_size or x.shape[3] != img_size:
        raise ConfigError(f"{what}(img_size={img_size}) expects [N, 3, {img_size}, {img_size}] images, "
                          f"got {list(x.shape)}")


# ---------------------------------------------------------------- FAN (face alignment network)

class AddCoordsTh(nn.Module):
    """Appends coordinate channels (x varies along rows, y along columns, both in [-1, 1]; with
    `with_r` the normalised radius), and with `with_boundary` and a heatmap, the coordinates
    where the heatmap's last channel > 0.05. Constants, not in the state dict."""

    def __init__(self, height=64, width=64, with_r=False, with_boundary=False):
        super().__init__()
        self.with_r = with_r
        self.with_boundary = with_boundary
        x_coords = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width) / (height - 1) * 2 - 1
        y_coords = torch.arange(width, dtype=torch.float32)[None, :].expand(height, width) / (width - 1) * 2 - 1
        coords = [x_coords, y_coords]
        if with_r:
            rr = torch.sqrt(x_coords ** 2 + y_coords ** 2)
            coords.append(rr / rr.max())
        self.register_buffer("coords", torch.stack(coords)[None], persistent=False)  # [1, 2 or 3, H, W]
        self.register_buffer("x_coords", x_coords.contiguous(), persistent=False)
        self.register_buffer("y_coords", y_coords.contiguous(), persistent=False)

    def forward(self, x, heatmap=None):
        coords = self.coords.to(x.dtype).expand(x.shape[0], -1, -1, -1)
        if self.with_boundary and heatmap is not None:
            boundary = heatmap[:, -1:].clamp(0.0, 1.0) > 0.05
            zero = torch.zeros((), dtype=x.dtype, device=x.device)
            coords = torch.cat([coords, torch.where(boundary, self.x_coords.to(x.dtype), zero),
                                torch.where(boundary, self.y_coords.to(x.dtype), zero)], dim=1)
        return torch.cat([x, coords], dim=1)


class CoordConvTh(nn.Module):
    """CoordConv: AddCoordsTh then a convolution (`conv`) over the input plus the coordinate
    channels. forward(x, heatmap=None) -> (output, the last two channels it convolved)."""

    def __init__(self, height, width, with_r, with_boundary, in_channels, first_one=False, **conv_kwargs):
        super().__init__()
        self.addcoords = AddCoordsTh(height, width, with_r, with_boundary)
        in_channels += 2 + (1 if with_r else 0) + (2 if with_boundary and not first_one else 0)
        self.conv = nn.Conv2d(in_channels, **conv_kwargs)

    def forward(self, input_tensor, heatmap=None):
        ret = self.addcoords(input_tensor, heatmap)
        return self.conv(ret), ret[:, -2:]


class ConvBlock(nn.Module):
    """FAN's bottleneck: three BN-ReLU-conv3x3 stages (out/2, out/4, out/4 channels, no bias)
    concatenated, plus the input (through BN-ReLU-conv1x1 `downsample` when in != out)."""

    def __init__(self, in_planes, out_planes):
        super().__init__()
        half, quarter = int(out_planes / 2), int(out_planes / 4)
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, half, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, quarter, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(quarter)
        self.conv3 = nn.Conv2d(quarter, quarter, 3, 1, 1, bias=False)
        self.downsample = None
        if in_planes != out_planes:
            self.downsample = nn.Sequential(nn.BatchNorm2d(in_planes), nn.ReLU(True),
                                            nn.Conv2d(in_planes, out_planes, 1, 1, bias=False))

    def forward(self, x):
        out1 = self.conv1(F.relu(self.bn1(x)))
        out2 = self.conv2(F.relu(self.bn2(out1)))
        out3 = self.conv3(F.relu(self.bn3(out2)))
        residual = x if self.downsample is None else self.downsample(x)
        return torch.cat((out1, out2, out3), 1) + residual


class HourGlass(nn.Module):
    """Hourglass of `depth` levels over 256 channels at 64x64, after a CoordConv (`coordconv`);
    sub-modules `b1_<l>`, `b2_<l>`, `b3_<l>` per level and `b2_plus_1` at the bottom."""

    def __init__(self, num_modules, depth, num_features, first_one=False):
        super().__init__()
        self.num_modules = num_modules
        self.depth = depth
        self.features = num_features
        self.coordconv = CoordConvTh(64, 64, True, True, 256, first_one, out_channels=256, kernel_size=1,
                                     stride=1, padding=0)
        self._generate_network(depth)

    def _generate_network(self, level):
        self.add_module(f"b1_{level}", ConvBlock(256, 256))
        self.add_module(f"b2_{level}", ConvBlock(256, 256))
        if level > 1:
            self._generate_network(level - 1)
        else:
            self.add_module(f"b2_plus_{level}", ConvBlock(256, 256))
        self.add_module(f"b3_{level}", ConvBlock(256, 256))

    def _forward(self, level, inp):
        up1 = self._modules[f"b1_{level}"](inp)
        low1 = self._modules[f"b2_{level}"](F.avg_pool2d(inp, 2, stride=2))
        if level > 1:
            low2 = self._forward(level - 1, low1)
        else:
            low2 = self._modules[f"b2_plus_{level}"](low1)
        low3 = self._modules[f"b3_{level}"](low2)
        return up1 + F.interpolate(low3, scale_factor=2, mode="nearest")

    def forward(self, x, heatmap):
        x, last_channel = self.coordconv(x, heatmap)
        return self._forward(self.depth, x), last_channel


# Landmark groups of the 98-point WFLW layout (start, end) and the mask recipe of the paper's code.
_PARTS = dict(chin=(8, 25), eyebrows=(33, 51), eyebrowsedges=(33, 46), nose=(51, 55), nostrils=(55, 60),
              eyes=(60, 76), lipedges=(76, 82), lipupper=(77, 82), liplower=(83, 88), lipinner=(88, 96))


def _shift(x, n):
    """Rows moved up by n (down for n < 0), wrapping around (PaddleGAN's `shift`)."""
    return torch.roll(x, shifts=-n, dims=2)


def heatmaps_to_masks(x):
    """FAN's 98 landmark heatmaps [N, 98, H, W] (H a multiple of 256) -> the generator's two masks
    [N, 1, H, W] in [0, 1]: the whole face, and the face without chin line, mouth and eyebrows.

    Values < 0.1 are zeroed and each map min-max normalised on its own (the paper's code; PaddleGAN's
    port normalises every map by the first map's range, an indexing slip), then parts are shifted
    and sharpened (powers) as in the paper's code."""
    x = torch.where(x < 0.1, torch.zeros_like(x), x)
    flat = x.flatten(2)
    lo, hi = flat.amin(2, keepdim=True), flat.amax(2, keepdim=True)
    x = ((flat - lo) / (hi - lo + 1e-6)).view_as(x).clone()
    sw = x.shape[2] // 256
    for part, (shift, power) in dict(chin=(0, 3), eyebrows=(-7 * sw, 2), nostrils=(8 * sw, 4),
                                     lipupper=(-8 * sw, 4), liplower=(8 * sw, 4), lipinner=(-2 * sw, 3)).items():
        start, end = _PARTS[part]
        x[:, start:end] = _shift(x[:, start:end], shift) ** power
    chin, brows_edges, lip_edges = _PARTS["chin"], _PARTS["eyebrowsedges"], _PARTS["lipedges"]
    zero_out = list(range(0, chin[0])) + list(range(chin[1], 33)) + [brows_edges[0], brows_edges[1],
                                                                      lip_edges[0], lip_edges[1]]
    x[:, zero_out] = 0
    start, end = _PARTS["nose"]
    x[:, start + 1:end] = _shift(x[:, start + 1:end], 4 * sw)
    start, end = _PARTS["eyes"]
    eyes = x[:, start:end].clone()
    x[:, start:end] = _shift(eyes, -8) ** 3 + _shift(eyes, -24)
    x2 = x.clone()  # second-level mask: no chin line, mouth or eyebrows
    x2[:, _PARTS["chin"][0]:_PARTS["chin"][1]] = 0
    x2[:, _PARTS["lipedges"][0]:_PARTS["lipinner"][1]] = 0
    x2[:, _PARTS["eyebrows"][0]:_PARTS["eyebrows"][1]] = 0
    x, x2 = x.sum(1, keepdim=True), x2.sum(1, keepdim=True)
    return torch.nan_to_num(x, nan=0.0).clamp(0, 1), torch.nan_to_num(x2, nan=0.0).clamp(0, 1)


@GENERATORS.register()
class FAN(nn.Module):
    """Face alignment network (Wang et al., "Adaptive Wing Loss", the paper's `wing.ckpt`): a
    CoordConv stem, three ConvBlocks and one hourglass predicting 98 landmark heatmaps (+ a
    boundary map) at 64x64 from a 256x256 image in [0, 1]. StarGAN v2 uses it frozen, for the
    masks of the generator's high-pass path (`get_heatmap`).

    Args:
        num_modules (int), end_relu (bool), num_landmarks (int): PaddleGAN's.
        fname_pretrained (str | None): weights, read by `ppgan.weights.load` (PaddleGAN's
            `wing.pdparams`, `{'state_dict': {...}}`, or any format it reads; a catalogue name
            works too). Entries the net does not have are ignored, as PaddleGAN does; every entry
            it has must be in the file. None (or the string 'None' PaddleGAN's configs write):
            randomly initialised -- unlike PaddleGAN, nothing is downloaded; the masks are then
            meaningless, so give the file for real face models.
    forward(x [N, 3, 256, 256] in [0, 1]) -> ([heatmaps [N, num_landmarks + 1, 64, 64]],
    [boundary channels]); get_heatmap(x in [-1, 1], b_preprocess=True) -> two masks [N, 1, 256, 256]."""

    def __init__(self, num_modules=1, end_relu=False, num_landmarks=98, fname_pretrained=None):
        super().__init__()
        _check_positive("FAN", num_modules=num_modules, num_landmarks=num_landmarks)
        self.num_modules = num_modules
        self.end_relu = end_relu
        self.num_landmarks = num_landmarks
        self.conv1 = CoordConvTh(256, 256, True, False, in_channels=3, out_channels=64, kernel_size=7, stride=2,
                                 padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = ConvBlock(64, 128)
        self.conv3 = ConvBlock(128, 128)
        self.conv4 = ConvBlock(128, 256)
        self.add_module("m0", HourGlass(1, 4, 256, first_one=True))
        self.add_module("top_m_0", ConvBlock(256, 256))
        self.add_module("conv_last0", nn.Conv2d(256, 256, 1, 1, 0))
        self.add_module("bn_end0", nn.BatchNorm2d(256))
        self.add_module("l0", nn.Conv2d(256, num_landmarks + 1, 1, 1, 0))
        if isinstance(fname_pretrained, str) and fname_pretrained.strip().lower() in ("", "none", "null"):
            fname_pretrained = None
        self.fname_pretrained = fname_pretrained
        if fname_pretrained is not None:
            self.load_pretrained_weights(fname_pretrained)

    def load_pretrained_weights(self, fname):
        """Load weights from `fname` (see the class doc); CheckpointError (one line naming the
        file) when it is missing, unreadable or lacks this net's entries. Returns self."""
        from ...weights import load, load_into

        weights = load(fname)
        name = next((k for k in ("state_dict", "fan") if k in weights.states), None)  # PaddleGAN's / a model's
        load_into(self, weights, name=name, subset=True)
        return self

    def forward(self, x):
        x, _ = self.conv1(x)
        x = F.relu(self.bn1(x))
        x = F.avg_pool2d(self.conv2(x), 2, stride=2)
        x = self.conv4(self.conv3(x))
        ll, boundary_channel = self.m0(x, None)
        ll = self.top_m_0(ll)
        ll = F.relu(self.bn_end0(self.conv_last0(ll)))
        out = self.l0(ll)
        if self.end_relu:
            out = F.relu(out)
        return [out], [boundary_channel]

    @torch.no_grad()
    def get_heatmap(self, x, b_preprocess=True):
        """Masks for the generator from images `x` [N, 3, H, W] in [-1, 1] (resized to 256x256):
        with `b_preprocess` the pair `heatmaps_to_masks` makes ([N, 1, 256, 256] each), else
        the raw landmark heatmaps [N, num_landmarks, 64, 64]. Always runs the net in eval mode
        (BatchNorm running statistics, none updated), whatever mode a trainer left it in."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ConfigError(f"FAN.get_heatmap expects [N, 3, H, W] images, got {list(x.shape)}")
        x = F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False)
        was_training = self.training
        self.eval()
        try:
            outputs, _ = self(x * 0.5 + 0.5)
        finally:
            self.train(was_training)
        heatmaps = outputs[-1][:, :-1]
        if not b_preprocess:
            return heatmaps
        if self.num_landmarks != 98:
            raise ConfigError(f"FAN.get_heatmap: the masks need the 98-landmark layout, this FAN has "
                              f"{self.num_landmarks} landmarks (use b_preprocess=False)")
        scale = x.shape[2] // heatmaps.shape[2]
        heatmaps = F.interpolate(heatmaps.float(), scale_factor=scale, mode="bilinear", align_corners=True)
        return heatmaps_to_masks(heatmaps)  # in float32 (under autocast too)

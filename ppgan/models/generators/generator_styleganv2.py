"""StyleGAN2 generator (Karras et al., "Analyzing and Improving the Image Quality of StyleGAN",
CVPR 2020, https://arxiv.org/abs/1912.04958), PaddleGAN layout.

Reference implementations: NVlabs/stylegan2-ada-pytorch `training/networks.py` and
rosinality/stylegan2-pytorch, which PaddleGAN's `generator_styleganv2.py` follows. Class,
argument and sub-module names are PaddleGAN's (`style.<i>`, `conv1`, `to_rgb1`, `convs.<i>`,
`to_rgbs.<i>`, `noises.noise_<i>`, `ModulatedConv2D`, ...) so its `.pdparams` load by name;
resampling is the pure-PyTorch `ppgan.modules.upfirdn2d` (CPU and CUDA, nothing to build).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ...modules.equalized import EqualLinear
from ...modules.fused_act import FusedLeakyReLU
from ...modules.upfirdn2d import Upfirdn2dBlur, Upfirdn2dUpsample
from ...utils.errors import ConfigError
from .builder import GENERATORS

SIZES = (4, 8, 16, 32, 64, 128, 256, 512, 1024)


def stylegan_channels(channel_multiplier=2, narrow=1.0):
    """Feature channels per resolution of the StyleGAN2 generator and discriminator (config F:
    512 up to 32 px, then halving). `narrow` scales them all (PaddleGAN's GPEN argument; 1.0 =
    PaddleGAN's StyleGANv2 nets)."""
    base = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * channel_multiplier, 128: 128 * channel_multiplier,
            256: 64 * channel_multiplier, 512: 32 * channel_multiplier, 1024: 16 * channel_multiplier}
    return {r: max(1, int(c * narrow)) for r, c in base.items()}


def check_size(size, what):
    if size not in SIZES:
        raise ConfigError(f"{what} size must be a power of two in 4..1024, got {size}")


class PixelNorm(nn.Module):
    """x / sqrt(mean(x^2 over dim 1) + 1e-8) (Karras et al. 2018, section 4.2)."""

    def forward(self, inputs):
        return inputs * torch.rsqrt(torch.mean(inputs * inputs, 1, keepdim=True) + 1e-8)


class ModulatedConv2D(nn.Module):
    """Convolution whose weights are scaled per input channel by a style and (optionally)
    demodulated to unit output variance per sample (the paper's section 2.2, eq. 1-3).

    Args:
        in_channel (int), out_channel (int), kernel_size (int): the convolution.
        style_dim (int): size of w.
        demodulate (bool): normalise each output channel's weights per sample (default True).
        upsample (bool): 2x transposed convolution followed by a FIR blur.
        downsample (bool): FIR blur followed by a stride-2 convolution.
        blur_kernel (list): FIR taps (default [1, 3, 3, 1]).
    forward(inputs [N, in, H, W], style, apply_modulation=False, fused=None): `style` is the
    modulation output s [N, in] (PaddleGAN's `style_affine` computes it for all layers first);
    with `apply_modulation=True` it is w [N, style_dim] and `self.modulation` is applied here.
    `fused` picks PaddleGAN's per-sample weights in one batch-grouped convolution (True; the
    default in eval mode) or the equivalent scale-convolve-scale with a shared weight (False; the
    default in training mode, much faster on GPUs).
    """

    def __init__(self, in_channel, out_channel, kernel_size, style_dim, demodulate=True, upsample=False,
                 downsample=False, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.eps = 1e-8
        self.kernel_size = kernel_size
        self.in_channel = in_channel
        self.out_channel = out_channel
        self.upsample = upsample
        self.downsample = downsample
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Upfirdn2dBlur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1),
                                      upsample_factor=factor)
        if downsample:
            factor = 2
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            self.blur = Upfirdn2dBlur(blur_kernel, pad=((p + 1) // 2, p // 2))
        self.scale = 1 / math.sqrt(in_channel * kernel_size * kernel_size)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)
        self.demodulate = demodulate

    def extra_repr(self):
        return (f"{self.in_channel}, {self.out_channel}, {self.kernel_size}, upsample={self.upsample}, "
                f"downsample={self.downsample}, demodulate={self.demodulate}")

    def forward(self, inputs, style, apply_modulation=False, fused=None):
        batch, in_channel, height, width = inputs.shape
        if apply_modulation:
            style = self.modulation(style)
        if fused is None:
            fused = not self.training
        if not fused:
            return self._forward_unfused(inputs, style)
        k = self.kernel_size
        # modulate: [1, O, I, k, k] * [N, 1, I, 1, 1] -> per-sample weights [N, O, I, k, k]
        weight = self.scale * self.weight * style.reshape(batch, 1, in_channel, 1, 1)
        if self.demodulate:
            demod = torch.rsqrt((weight * weight).sum([2, 3, 4]) + self.eps)  # [N, O]
            weight = weight * demod.reshape(batch, self.out_channel, 1, 1, 1)
        # one grouped convolution over the batch: inputs [1, N*I, H, W], groups = N
        inputs = inputs.reshape(1, batch * in_channel, height, width)
        if self.upsample:
            # conv_transpose weights are [N*I, O, k, k]
            weight = weight.transpose(1, 2).reshape(batch * in_channel, self.out_channel, k, k)
            out = F.conv_transpose2d(inputs, weight, padding=0, stride=2, groups=batch)
            out = self.blur(out.reshape(batch, self.out_channel, out.shape[2], out.shape[3]))
        elif self.downsample:
            weight = weight.reshape(batch * self.out_channel, in_channel, k, k)
            inputs = self.blur(inputs.reshape(batch, in_channel, height, width))
            inputs = inputs.reshape(1, batch * in_channel, inputs.shape[2], inputs.shape[3])
            out = F.conv2d(inputs, weight, padding=0, stride=2, groups=batch)
            out = out.reshape(batch, self.out_channel, out.shape[2], out.shape[3])
        else:
            weight = weight.reshape(batch * self.out_channel, in_channel, k, k)
            out = F.conv2d(inputs, weight, padding=self.padding, groups=batch)
            out = out.reshape(batch, self.out_channel, out.shape[2], out.shape[3])
        return out

    def _forward_unfused(self, inputs, style):
        """The same maths with one shared weight: scale the input channels by the style, convolve,
        scale the output channels by the demodulation factor (stylegan2-ada's training path:
        cuDNN runs a plain convolution much faster than a batch-grouped one, backward included)."""
        batch = inputs.shape[0]
        weight = self.scale * self.weight[0]  # [O, I, k, k]
        x = inputs * style.reshape(batch, -1, 1, 1).to(inputs.dtype)
        if self.upsample:
            out = F.conv_transpose2d(x, weight.transpose(0, 1).to(x.dtype), padding=0, stride=2)
        elif self.downsample:
            out = F.conv2d(self.blur(x), weight.to(x.dtype), padding=0, stride=2)
        else:
            out = F.conv2d(x, weight.to(x.dtype), padding=self.padding)
        if self.demodulate:
            # sum over I, k, k of (W * s)^2 = (W^2 summed over k, k) @ s^2
            demod = torch.rsqrt((weight * weight).sum([2, 3]) @ (style * style).t() + self.eps)  # [O, N]
            out = out * demod.t().reshape(batch, self.out_channel, 1, 1).to(out.dtype)
        if self.upsample:
            out = self.blur(out)
        return out


class NoiseInjection(nn.Module):
    """image + weight * noise, noise N(0, 1) [N, 1, H, W] drawn when not given (with `is_concat`,
    PaddleGAN's GPEN variant, weight * noise [N, C, H, W] is concatenated instead, doubling the
    channels). `weight` starts at 0."""

    def __init__(self, is_concat=False):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.is_concat = is_concat

    def forward(self, image, noise=None):
        batch, channel, height, width = image.shape
        if self.is_concat:
            # GPEN passes encoder features [N, C, H, W] as noise; random / single-channel noise is
            # drawn or broadcast to C channels (PaddleGAN would fail on a channel mismatch)
            if noise is None:
                noise = torch.randn(batch, channel, height, width, device=image.device, dtype=image.dtype)
            return torch.cat([image, self.weight * noise.expand(batch, channel, height, width)], 1)
        if noise is None:
            noise = torch.randn(batch, 1, height, width, device=image.device, dtype=image.dtype)
        return image + self.weight * noise


class ConstantInput(nn.Module):
    """The learnt constant [1, channel, size, size] the synthesis starts from, repeated per sample."""

    def __init__(self, channel, size=4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch):
        return self.input.repeat(batch, 1, 1, 1)


class StyledConv(nn.Module):
    """ModulatedConv2D -> NoiseInjection -> FusedLeakyReLU (bias, leaky 0.2, x sqrt 2)."""

    def __init__(self, in_channel, out_channel, kernel_size, style_dim, upsample=False, blur_kernel=(1, 3, 3, 1),
                 demodulate=True, is_concat=False):
        super().__init__()
        self.conv = ModulatedConv2D(in_channel, out_channel, kernel_size, style_dim, upsample=upsample,
                                    blur_kernel=blur_kernel, demodulate=demodulate)
        self.noise = NoiseInjection(is_concat=is_concat)
        self.activate = FusedLeakyReLU(out_channel * 2 if is_concat else out_channel)

    def forward(self, inputs, style, noise=None):
        return self.activate(self.noise(self.conv(inputs, style), noise=noise))


class ToRGB(nn.Module):
    """1x1 modulated conv (no demodulation) to RGB plus bias, added to the FIR-upsampled skip."""

    def __init__(self, in_channel, style_dim, upsample=True, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        if upsample:
            self.upsample = Upfirdn2dUpsample(blur_kernel)
        self.conv = ModulatedConv2D(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, inputs, style, skip=None):
        out = self.conv(inputs, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


@GENERATORS.register()
class StyleGANv2Generator(nn.Module):
    """StyleGAN2 generator (config F, skip architecture): z -> mapping MLP -> w -> synthesis.

    Args:
        size (int): output resolution, a power of two in 4..1024.
        style_dim (int): size of z and w.
        n_mlp (int): layers of the mapping network.
        channel_multiplier (int): width of the >= 64 px layers (default 2, as PaddleGAN).
        blur_kernel (list): FIR taps of the resamplers (default [1, 3, 3, 1]).
        lr_mlp (float): learning-rate multiplier of the mapping network (default 0.01).
        is_concat (bool): concatenate noise as channels instead of adding it (PaddleGAN's GPEN
            variant; default False).
        narrow (float): scale every layer's channels (default 1.0 = PaddleGAN's widths; e.g.
            0.125 for small CPU demos). Not a PaddleGAN argument of this class.

    forward(styles, return_latents=False, inject_index=None, truncation=1.0, truncation_cutoff=None,
            truncation_latent=None, input_is_latent=False, noise=None, randomize_noise=True):
        styles: list of z (or w, with input_is_latent) tensors [N, style_dim] (a tensor
            [L, N, style_dim] is iterated like a list; a single [N, style_dim] tensor is taken as
            one style; with input_is_latent one [N, n_latent, style_dim] W+ latent also works).
            Two styles mix: layers < inject_index (random in [1, n_latent) if None) use the
            first, the rest the second.
        truncation (float): < 1 pulls w towards `truncation_latent` [1, style_dim] (default:
            `get_mean_style()`, drawn at random); truncation_cutoff limits it to the first
            dimensions, as PaddleGAN.
        noise (list | None): num_layers tensors [1 or N, 1, R, R] (with is_concat: one per
            resolution, [N, C, R, R] or broadcastable); None draws fresh noise, or with
            randomize_noise=False uses the stored buffers `noises.noise_<i>`.
    Returns: (image [N, 3, size, size], unbounded (no tanh), latent [N, n_latent, style_dim] if
        return_latents else None).
    """

    def __init__(self, size, style_dim, n_mlp, channel_multiplier=2, blur_kernel=(1, 3, 3, 1), lr_mlp=0.01,
                 is_concat=False, narrow=1.0):
        super().__init__()
        check_size(size, "StyleGANv2Generator")
        if style_dim < 1 or n_mlp < 0:
            raise ConfigError(f"StyleGANv2Generator needs style_dim >= 1 and n_mlp >= 0, got {style_dim}, {n_mlp}")
        self.size = size
        self.style_dim = style_dim
        self.log_size = int(math.log2(size))
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.n_latent = self.log_size * 2 - 2
        self.is_concat = is_concat
        cat = 2 if is_concat else 1

        # mapping network; index 0 (PixelNorm) has no weights, so the linears are `style.1..n_mlp`
        self.style = nn.Sequential(PixelNorm(), *[
            EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation="fused_lrelu") for _ in range(n_mlp)])

        self.channels = stylegan_channels(channel_multiplier, narrow)
        self.input = ConstantInput(self.channels[4])
        self.conv1 = StyledConv(self.channels[4], self.channels[4], 3, style_dim, blur_kernel=blur_kernel,
                                is_concat=is_concat)
        self.to_rgb1 = ToRGB(self.channels[4] * cat, style_dim, upsample=False)

        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for layer_idx in range(self.num_layers):
            res = (layer_idx + 5) // 2
            self.noises.register_buffer(f"noise_{layer_idx}", torch.randn(1, 1, 2 ** res, 2 ** res))
        in_channel = self.channels[4]
        for i in range(3, self.log_size + 1):
            out_channel = self.channels[2 ** i]
            self.convs.append(StyledConv(in_channel * cat, out_channel, 3, style_dim, upsample=True,
                                         blur_kernel=blur_kernel, is_concat=is_concat))
            self.convs.append(StyledConv(out_channel * cat, out_channel, 3, style_dim, blur_kernel=blur_kernel,
                                         is_concat=is_concat))
            self.to_rgbs.append(ToRGB(out_channel * cat, style_dim))
            in_channel = out_channel

    # --- latents ------------------------------------------------------------------------------

    def make_noise(self):
        """Fresh noise inputs, one per layer: [1, 1, R, R] for R = 4, 8, 8, 16, 16, ..."""
        device = self.input.input.device
        noises = [torch.randn(1, 1, 4, 4, device=device)]
        for i in range(3, self.log_size + 1):
            noises += [torch.randn(1, 1, 2 ** i, 2 ** i, device=device) for _ in range(2)]
        return noises

    def random_inputs(self, batch_size, generator=None, device=None):
        """z [batch_size, style_dim] ~ N(0, 1) (pass it as `forward([z])`)."""
        return torch.randn(batch_size, self.style_dim, generator=generator, device=device)

    def mean_latent(self, n_latent):
        """The mean w [1, style_dim] of `n_latent` random z."""
        latent_in = torch.randn(n_latent, self.style_dim, device=self.input.input.device)
        return self.style(latent_in).mean(0, keepdim=True)

    def get_latent(self, inputs):
        """w = mapping(z), [N, style_dim]."""
        return self.style(inputs)

    @torch.no_grad()
    def get_mean_style(self, n_sample=10, n_latent=1024):
        """The average of `n_sample` `mean_latent(n_latent)` draws, [1, style_dim] (PaddleGAN's
        default truncation centre)."""
        return sum(self.mean_latent(n_latent) for _ in range(n_sample)) / n_sample

    def _truncate(self, style, truncation, cutoff, truncation_latent):
        if cutoff is None:
            return truncation_latent + truncation * (style - truncation_latent)
        style = style.clone()
        style[:, :cutoff] = truncation_latent[:, :cutoff] + truncation * (
            style[:, :cutoff] - truncation_latent[:, :cutoff])
        return style

    def get_latents(self, inputs, truncation=1.0, truncation_cutoff=None, truncation_latent=None,
                    input_is_latent=False):
        """w (truncated when truncation < 1) for z `inputs` (or w, with input_is_latent)."""
        if truncation < 0:
            raise ConfigError(f"truncation must be >= 0, got {truncation}")
        style = inputs if input_is_latent else self.style(inputs)
        if truncation < 1.0:
            if truncation_latent is None:
                truncation_latent = self.get_mean_style()
            style = self._truncate(style, truncation, truncation_cutoff, truncation_latent)
        return style

    def get_latent_S(self, inputs):
        """Style-space codes (each layer's modulation output) for z `inputs`."""
        return self.style_affine(self.style(inputs))

    def style_affine(self, latent):
        """Per-layer modulation outputs s for W+ latent [N, n_latent, style_dim] (or w [N, style_dim])."""
        if latent.ndim < 3:
            latent = latent.unsqueeze(1).repeat(1, self.n_latent, 1)
        out = [self.conv1.conv.modulation(latent[:, 0]), self.to_rgb1.conv.modulation(latent[:, 1])]
        i = 1
        for conv1, conv2, to_rgb in zip(self.convs[::2], self.convs[1::2], self.to_rgbs):
            out += [conv1.conv.modulation(latent[:, i]), conv2.conv.modulation(latent[:, i + 1]),
                    to_rgb.conv.modulation(latent[:, i + 2])]
            i += 2
        return out

    # --- synthesis ----------------------------------------------------------------------------

    def synthesis(self, latent, noise=None, randomize_noise=True):
        """Image from the per-layer styles `latent` (the list `style_affine` returns)."""
        # one noise map per layer; with is_concat (GPEN) one per resolution, shared by its two convs
        layers = range(self.num_layers) if not self.is_concat else [0] + list(range(1, self.num_layers, 2))
        if noise is None:
            if randomize_noise:
                noise = [None] * len(layers)
            else:
                noise = [getattr(self.noises, f"noise_{i}") for i in layers]
        elif len(noise) != len(layers):
            raise ConfigError(f"noise must hold {len(layers)} tensors for size {self.size}, got {len(noise)}")
        out = self.input(latent[0].shape[0])
        out = self.conv1(out, latent[0], noise=noise[0])
        skip = self.to_rgb1(out, latent[1])
        i = 2
        for j, (conv1, conv2, to_rgb) in enumerate(zip(self.convs[::2], self.convs[1::2], self.to_rgbs)):
            if self.is_concat:
                n1 = n2 = noise[j + 1]
            else:
                n1, n2 = noise[2 * j + 1], noise[2 * j + 2]
            out = conv1(out, latent[i], noise=n1)
            out = conv2(out, latent[i + 1], noise=n2)
            skip = to_rgb(out, latent[i + 2], skip)
            i += 3
        return skip

    def forward(self, styles, return_latents=False, inject_index=None, truncation=1.0, truncation_cutoff=None,
                truncation_latent=None, input_is_latent=False, noise=None, randomize_noise=True):
        if torch.is_tensor(styles) and styles.ndim == 2:
            styles = [styles]
        styles = list(styles)
        if not styles:
            raise ConfigError("StyleGANv2Generator needs at least one style")
        if truncation < 0:
            raise ConfigError(f"truncation must be >= 0, got {truncation}")
        if not input_is_latent:
            styles = [self.style(s) for s in styles]
        if truncation < 1.0:
            if truncation_latent is None:
                truncation_latent = self.get_mean_style()
            styles = [self._truncate(s, truncation, truncation_cutoff, truncation_latent) for s in styles]

        if len(styles) < 2:
            latent = styles[0] if styles[0].ndim == 3 else styles[0].unsqueeze(1).repeat(1, self.n_latent, 1)
        else:
            if inject_index is None:
                inject_index = int(torch.randint(1, self.n_latent, ()))
            if not 0 <= inject_index <= self.n_latent:
                raise ConfigError(f"inject_index must be in 0..{self.n_latent}, got {inject_index}")
            latent = torch.cat([styles[0].unsqueeze(1).repeat(1, inject_index, 1),
                                styles[1].unsqueeze(1).repeat(1, self.n_latent - inject_index, 1)], 1)

        image = self.synthesis(self.style_affine(latent), noise, randomize_noise)
        return image, (latent if return_latents else None)

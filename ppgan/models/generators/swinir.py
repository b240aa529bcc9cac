"""SwinIR: image restoration with shifted-window transformers, PaddleGAN layout.

Paper: Liang et al., "SwinIR: Image Restoration Using Swin Transformer", ICCVW 2021,
https://arxiv.org/abs/2108.10257. Reference: https://github.com/JingyunLiang/SwinIR (KAIR) as
ported by PaddleGAN `ppgan/models/generators/swinir.py`.

Attribute names are PaddleGAN's (`conv_first`, `patch_embed.norm`, `layers.<i>.residual_group
.blocks.<j>.{norm1, attn.{relative_position_bias_table, qkv, proj}, norm2, mlp.fc1, mlp.fc2}`,
`layers.<i>.conv`, `norm`, `conv_after_body`, `conv_before_upsample.0`, `upsample.<k>`,
`conv_last`, ...), so PaddleGAN's `.pdparams` load strictly by name (Linear weights are
transposed by the converter). Two buffers are part of PaddleGAN's checkpoints and are loaded,
not recomputed: every attention's `relative_position_index` ([N, N] int64 with N = window
pixels; it indexes the bias table) and each shifted block's `attn_mask` ([windows, N, N] for the
`img_size` resolution; other sizes get their mask computed at run time, as PaddleGAN does).

Any input size: the image is reflect-padded bottom/right to a multiple of `window_size`
(edge-replicated where it is too small to reflect; PaddleGAN fails there) and the output
cropped back.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ...modules.sr_blocks import paddle_default_init_
from ...utils.errors import ConfigError
from .builder import GENERATORS

UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect", "nearest+conv", "")
RGB_MEAN = (0.4488, 0.4371, 0.4040)  # DIV2K mean, as EDSR / SwinIR


def _pair(x):
    return (int(x[0]), int(x[1])) if isinstance(x, (list, tuple)) else (int(x), int(x))


def window_partition(x, window_size):
    """[B, H, W, C] -> [B * H/ws * W/ws, ws, ws, C] (H, W multiples of ws), row-major windows."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size, window_size, c)


def window_reverse(windows, window_size, h, w):
    """Inverse of `window_partition`: [B * h/ws * w/ws, ws, ws, C] -> [B, h, w, C]."""
    b = windows.shape[0] // ((h // window_size) * (w // window_size))
    x = windows.reshape(b, h // window_size, w // window_size, window_size, window_size, -1)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, -1)


def relative_position_index(window_size):
    """[N, N] int64 (N = wh * ww): index into the (2wh-1)(2ww-1) relative-position bias table of
    each (query, key) pixel pair of a window."""
    wh, ww = window_size
    coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # [N, N, 2]
    return (rel[..., 0] + wh - 1) * (2 * ww - 1) + (rel[..., 1] + ww - 1)


def shifted_window_mask(h, w, window_size, shift_size, device=None):
    """[windows, N, N] attention mask of the shifted windows of an h x w map: 0 between pixels of
    the same region before the cyclic shift, -100 between regions."""
    img = torch.zeros(1, h, w, 1, device=device)
    cuts = (slice(0, -window_size), slice(-window_size, -shift_size), slice(-shift_size, None))
    label = 0
    for hs in cuts:
        for ws in cuts:
            img[:, hs, ws, :] = label
            label += 1
    win = window_partition(img, window_size).reshape(-1, window_size * window_size)
    diff = win[:, None, :] - win[:, :, None]
    return (diff != 0).float() * -100.0


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a whole sample's branch with probability `drop_prob`
    and scale the others by 1 / (1 - drop_prob)."""

    def __init__(self, drop_prob=0.0):
        super().__init__()
        self.drop_prob = float(drop_prob)

    def forward(self, x):
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = (keep + torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device)).floor()
        return x / keep * mask


class Mlp(nn.Module):
    """fc1 -> GELU -> dropout -> fc2 -> dropout (XavierUniform weights, N(0, 1e-6) biases)."""

    def __init__(self, in_features, hidden_features, dropout=0.0):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.act = nn.GELU()
        self.dropout = nn.Dropout(dropout)
        for fc in (self.fc1, self.fc2):
            nn.init.xavier_uniform_(fc.weight)
            nn.init.normal_(fc.bias, std=1e-6)

    def forward(self, x):
        return self.dropout(self.fc2(self.dropout(self.act(self.fc1(x)))))


@torch.no_grad()
def _trunc_normal_(t, std=0.02):
    """N(0, std) redrawn outside +-2 std (Paddle's TruncatedNormal); `t` contiguous. Faster than
    torch's inverse-CDF `trunc_normal_` on CPU."""
    t.normal_(0.0, std)
    if t.is_meta:
        return t
    flat = t.view(-1)
    idx = (flat.abs() > 2 * std).nonzero().squeeze(1)
    while idx.numel():
        vals = torch.randn(idx.numel(), dtype=t.dtype, device=t.device) * std
        flat[idx] = vals
        idx = idx[vals.abs() > 2 * std]
    return t


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a learned relative-position bias.

    Args:
        dim (int): channels.
        window_size ((int, int)): window height and width.
        num_heads (int): heads (dim must be divisible by it).
        qkv_bias (bool): bias on the qkv projection (default True).
        qk_scale (float | None): attention scale (default head_dim ** -0.5).
        attention_dropout, dropout (float): dropout on the weights / the output.
    Input [B*windows, N, dim] (N = window pixels), optional mask [windows, N, N].
    """

    def __init__(self, dim, window_size, num_heads, qkv_bias=True, qk_scale=None, attention_dropout=0.0,
                 dropout=0.0):
        super().__init__()
        self.window_size = tuple(window_size)
        self.num_heads = num_heads
        self.dim = dim
        self.dim_head = dim // num_heads
        self.scale = qk_scale or self.dim_head ** -0.5
        wh, ww = self.window_size
        self.relative_position_bias_table = nn.Parameter(_trunc_normal_(torch.empty((2 * wh - 1) * (2 * ww - 1),
                                                                                     num_heads)))
        self.register_buffer("relative_position_index", relative_position_index(self.window_size))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_dropout = nn.Dropout(attention_dropout)
        self.proj = nn.Linear(dim, dim)
        self.proj_dropout = nn.Dropout(dropout)
        for fc in (self.qkv, self.proj):
            _trunc_normal_(fc.weight)
            if fc.bias is not None:
                nn.init.zeros_(fc.bias)

    def relative_position_bias(self):
        """[heads, N, N] from the table and the (loaded) index."""
        n = self.window_size[0] * self.window_size[1]
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        return bias.view(n, n, -1).permute(2, 0, 1)

    def forward(self, x, mask=None):
        b, n, c = x.shape
        h = self.num_heads
        q, k, v = self.qkv(x).view(b, n, 3, h, self.dim_head).permute(2, 0, 3, 1, 4)  # [b, heads, n, d]
        bias = self.relative_position_bias().to(q.dtype)  # [heads, n, n]
        if mask is not None:  # windows of one image are consecutive in b: fold them into the heads
            nw = mask.shape[0]
            bias = (bias[None] + mask.to(q.dtype)[:, None]).reshape(1, nw * h, n, n)
            q, k, v = (t.reshape(b // nw, nw * h, n, self.dim_head) for t in (q, k, v))
        else:
            bias = bias[None]
        # softmax(q k^T * scale + bias + mask) v, with the attention dropout in training
        z = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale,
                                           dropout_p=self.attn_dropout.p if self.training else 0.0)
        z = z.reshape(b, h, n, self.dim_head).transpose(1, 2).reshape(b, n, c)
        return self.proj_dropout(self.proj(z))


class SwinTransformerBlock(nn.Module):
    """LayerNorm -> (shifted) window attention -> residual; LayerNorm -> MLP -> residual.

    When the resolution is not larger than the window, the window shrinks to it and nothing is
    shifted (PaddleGAN's rule; it decides parameter shapes). Input [B, H*W, dim] and x_size (H, W),
    H and W multiples of the window.
    """

    def __init__(self, dim, input_resolution, num_heads, window_size=7, shift_size=0, mlp_ratio=4.0,
                 qkv_bias=True, qk_scale=None, dropout=0.0, attention_dropout=0.0, droppath=0.0):
        super().__init__()
        self.dim = dim
        self.input_resolution = tuple(input_resolution)
        self.num_heads = num_heads
        self.window_size = window_size
        self.shift_size = shift_size
        self.mlp_ratio = mlp_ratio
        if min(self.input_resolution) <= self.window_size:
            self.shift_size = 0
            self.window_size = min(self.input_resolution)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, (self.window_size, self.window_size), num_heads, qkv_bias=qkv_bias,
                                    qk_scale=qk_scale, attention_dropout=attention_dropout, dropout=dropout)
        self.drop_path = DropPath(droppath) if droppath > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), dropout)
        if self.shift_size > 0:
            self.register_buffer("attn_mask", shifted_window_mask(*self.input_resolution, self.window_size,
                                                                  self.shift_size))
        else:
            self.attn_mask = None

    def mask_for(self, x_size, device, cache=None):
        """The loaded `attn_mask` at `input_resolution`, else one computed for x_size (kept in
        `cache`, a dict shared by the blocks of one forward pass, when given)."""
        if self.shift_size == 0:
            return None
        if tuple(x_size) == self.input_resolution:
            return self.attn_mask  # PaddleGAN's saved buffer
        key = (tuple(x_size), self.window_size, self.shift_size)
        if cache is None or key not in cache:
            mask = shifted_window_mask(*x_size, self.window_size, self.shift_size, device=device)
            if cache is None:
                return mask
            cache[key] = mask
        return cache[key]

    def forward(self, x, x_size, mask_cache=None):
        h, w = x_size
        b, _, c = x.shape
        ws, shift = self.window_size, self.shift_size
        shortcut = x
        x = self.norm1(x).view(b, h, w, c)
        if shift > 0:
            x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
        windows = window_partition(x, ws).reshape(-1, ws * ws, c)
        windows = self.attn(windows, mask=self.mask_for(x_size, x.device, mask_cache))
        x = window_reverse(windows.reshape(-1, ws, ws, c), ws, h, w)
        if shift > 0:
            x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
        x = shortcut + self.drop_path(x.reshape(b, h * w, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class BasicLayer(nn.Module):
    """`depth` Swin blocks, every second one shifted by half a window."""

    def __init__(self, dim, input_resolution, depth, num_heads, window_size, mlp_ratio=4.0, qkv_bias=True,
                 qk_scale=None, dropout=0.0, attention_dropout=0.0, droppath=0.0):
        super().__init__()
        self.dim, self.input_resolution, self.depth = dim, input_resolution, depth
        self.blocks = nn.ModuleList([
            SwinTransformerBlock(dim, input_resolution, num_heads, window_size=window_size,
                                 shift_size=0 if i % 2 == 0 else window_size // 2, mlp_ratio=mlp_ratio,
                                 qkv_bias=qkv_bias, qk_scale=qk_scale, dropout=dropout,
                                 attention_dropout=attention_dropout,
                                 droppath=droppath[i] if isinstance(droppath, (list, tuple)) else droppath)
            for i in range(depth)])

    def forward(self, x, x_size, mask_cache=None):
        for block in self.blocks:
            x = block(x, x_size, mask_cache)
        return x


def _resi_conv(dim, resi_connection):
    if resi_connection == "1conv":
        return nn.Conv2d(dim, dim, 3, padding=1)
    return nn.Sequential(nn.Conv2d(dim, dim // 4, 3, padding=1), nn.LeakyReLU(0.2),
                         nn.Conv2d(dim // 4, dim // 4, 1), nn.LeakyReLU(0.2),
                         nn.Conv2d(dim // 4, dim, 3, padding=1))


def to_tokens(x):
    """[B, C, H, W] -> [B, H*W, C] (PaddleGAN's PatchEmbed without norm)."""
    return x.flatten(2).transpose(1, 2)


def to_image(x, x_size):
    """[B, H*W, C] -> [B, C, H, W] (PaddleGAN's PatchUnEmbed)."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], x_size[0], x_size[1])


class RSTB(nn.Module):
    """Residual Swin Transformer Block: Swin blocks -> conv (1conv / 3conv) -> + input. [B, H*W, dim]."""

    def __init__(self, dim, input_resolution, depth, num_heads, window_size, mlp_ratio=4.0, qkv_bias=True,
                 qk_scale=None, drop=0.0, attn_drop=0.0, drop_path=0.0, resi_connection="1conv"):
        super().__init__()
        self.dim, self.input_resolution = dim, input_resolution
        self.residual_group = BasicLayer(dim, input_resolution, depth, num_heads, window_size, mlp_ratio,
                                         qkv_bias, qk_scale, drop, attn_drop, drop_path)
        self.conv = _resi_conv(dim, resi_connection)

    def forward(self, x, x_size, mask_cache=None):
        return to_tokens(self.conv(to_image(self.residual_group(x, x_size, mask_cache), x_size))) + x


class PatchEmbed(nn.Module):
    """[B, C, H, W] -> [B, H*W, C], then the optional LayerNorm (`norm`)."""

    def __init__(self, embed_dim, norm=True):
        super().__init__()
        self.norm = nn.LayerNorm(embed_dim) if norm else None

    def forward(self, x):
        x = to_tokens(x)
        return self.norm(x) if self.norm is not None else x


class Upsample(nn.Sequential):
    """(conv to 4C, pixel shuffle 2) x log2(scale), or conv to 9C + shuffle 3 for scale 3."""

    def __init__(self, scale, num_feat):
        layers = []
        if scale & (scale - 1) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [nn.Conv2d(num_feat, 4 * num_feat, 3, padding=1), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [nn.Conv2d(num_feat, 9 * num_feat, 3, padding=1), nn.PixelShuffle(3)]
        else:
            raise ConfigError(f"SwinIR upscale {scale} is not supported with upsampler 'pixelshuffle' (2^n or 3)")
        super().__init__(*layers)


class UpsampleOneStep(nn.Sequential):
    """One conv to scale^2 * out channels and a pixel shuffle (lightweight SR)."""

    def __init__(self, scale, num_feat, num_out_ch):
        super().__init__(nn.Conv2d(num_feat, scale * scale * num_out_ch, 3, padding=1), nn.PixelShuffle(scale))


@GENERATORS.register()
class SwinIR(nn.Module):
    """SwinIR: conv -> residual Swin transformer blocks -> conv -> reconstruction.

    [N, in_chans, H, W] -> [N, in_chans, upscale*H, upscale*W], any H, W (see the module docstring).

    Args (PaddleGAN's):
        img_size (int | (int, int)): training patch size; sets the resolution whose shifted-window
            masks are stored in the weights, and shrinks the window when not larger (default 64).
        patch_size (int): PaddleGAN's patch size (only its default 1 runs; kept for the names).
        in_chans (int): image channels (default 3; 3 subtracts the DIV2K mean).
        embed_dim (int): feature channels (default 96).
        depths (list[int]): Swin blocks per residual group (default [6, 6, 6, 6]).
        num_heads (list[int]): heads per residual group (same length as depths).
        window_size (int): attention window (default 7).
        mlp_ratio (float): MLP hidden size / embed_dim (default 4).
        qkv_bias (bool), qk_scale (float | None): attention options.
        drop_rate, attn_drop_rate, drop_path_rate (float): dropout / stochastic depth (linearly
            increasing over the blocks, default 0.1).
        norm_layer: PaddleGAN passes the LayerNorm class; only None / LayerNorm is accepted.
        ape (bool): absolute position embedding (default False).
        patch_norm (bool): LayerNorm after the patch embedding (default True).
        upscale (int): 2, 3, 4, 8 for SR (default 2); without an upsampler the output keeps the
            input size whatever it is (PaddleGAN's configs say 1).
        img_range (float): 1.0 or 255.0 (default 1.0).
        upsampler (str): 'pixelshuffle', 'pixelshuffledirect', 'nearest+conv' (x4) or '' (none:
            denoising / JPEG, a global residual).
        resi_connection (str): '1conv' or '3conv'.
    """

    def __init__(self, img_size=64, patch_size=1, in_chans=3, embed_dim=96, depths=(6, 6, 6, 6),
                 num_heads=(6, 6, 6, 6), window_size=7, mlp_ratio=4.0, qkv_bias=True, qk_scale=None, drop_rate=0.0,
                 attn_drop_rate=0.0, drop_path_rate=0.1, norm_layer=None, ape=False, patch_norm=True, upscale=2,
                 img_range=1.0, upsampler="", resi_connection="1conv"):
        super().__init__()
        depths, num_heads = [int(d) for d in depths], [int(h) for h in num_heads]
        upsampler = upsampler or ""
        self._check(depths, num_heads, embed_dim, window_size, upscale, upsampler, resi_connection, norm_layer,
                    patch_size, in_chans)
        num_feat = 64
        self.img_range = float(img_range)
        mean = torch.tensor(RGB_MEAN).view(1, 3, 1, 1) if in_chans == 3 else torch.zeros(1, 1, 1, 1)
        self.register_buffer("mean", mean, persistent=False)  # a plain tensor in PaddleGAN: not in its weights
        self.upscale, self.upsampler, self.window_size = int(upscale), upsampler, int(window_size)
        self.size_multiple = 1  # padding to the window is done here (PaddleGAN's check_image_size)
        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, padding=1)
        self.num_layers, self.embed_dim, self.ape = len(depths), embed_dim, bool(ape)
        self.num_features, self.mlp_ratio = embed_dim, mlp_ratio
        img = _pair(img_size)
        patch = _pair(patch_size)
        self.patches_resolution = (img[0] // patch[0], img[1] // patch[1])
        self.patch_embed = PatchEmbed(embed_dim, norm=bool(patch_norm))
        if self.ape:
            n = self.patches_resolution[0] * self.patches_resolution[1]
            self.absolute_pos_embed = nn.ParameterList([nn.Parameter(_trunc_normal_(torch.empty(1, n, embed_dim)))])
        self.pos_drop = nn.Dropout(drop_rate)
        total = sum(depths)  # stochastic depth rises linearly from 0 to drop_path_rate over the blocks
        dpr = [float(drop_path_rate) * i / (total - 1) if total > 1 else 0.0 for i in range(total)]
        self.layers = nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            start = sum(depths[:i])
            self.layers.append(RSTB(embed_dim, self.patches_resolution, depth, heads, self.window_size, mlp_ratio,
                                    qkv_bias, qk_scale, drop_rate, attn_drop_rate, dpr[start:start + depth],
                                    resi_connection))
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = _resi_conv(embed_dim, resi_connection)
        if upsampler == "pixelshuffle":
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, padding=1), nn.LeakyReLU(0.01))
            self.upsample = Upsample(self.upscale, num_feat)
            self.conv_last = nn.Conv2d(num_feat, in_chans, 3, padding=1)
        elif upsampler == "pixelshuffledirect":
            self.upsample = UpsampleOneStep(self.upscale, embed_dim, in_chans)
        elif upsampler == "nearest+conv":
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, padding=1), nn.LeakyReLU(0.01))
            self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, padding=1)
            self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, padding=1)
            self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, padding=1)
            self.conv_last = nn.Conv2d(num_feat, in_chans, 3, padding=1)
            self.lrelu = nn.LeakyReLU(0.2)
        else:
            self.conv_last = nn.Conv2d(embed_dim, in_chans, 3, padding=1)
        # PaddleGAN pads to window_size; blocks whose window shrank to a small img_size need their
        # own multiple too (PaddleGAN fails on such inputs)
        self.pad_multiple = math.lcm(self.window_size, *[b.window_size for layer in self.layers
                                                         for b in layer.residual_group.blocks])
        paddle_default_init_(self)

    @staticmethod
    def _check(depths, num_heads, embed_dim, window_size, upscale, upsampler, resi_connection, norm_layer,
               patch_size, in_chans):
        def bad(msg):
            raise ConfigError(f"SwinIR {msg}")

        if len(depths) != len(num_heads):
            bad(f"needs as many num_heads as depths, got {num_heads} and {depths}")
        if any(d < 0 for d in depths) or any(h < 1 for h in num_heads):
            bad(f"depths must be >= 0 and num_heads >= 1, got {depths} and {num_heads}")
        if any(embed_dim % h for h in num_heads):
            bad(f"embed_dim {embed_dim} must be divisible by every num_heads {num_heads}")
        if int(window_size) < 1 or int(in_chans) < 1:
            bad(f"window_size and in_chans must be positive, got {window_size} and {in_chans}")
        if upsampler not in UPSAMPLERS:
            bad(f"upsampler must be one of {', '.join(repr(u) for u in UPSAMPLERS)}; got {upsampler!r}")
        if upsampler == "nearest+conv" and int(upscale) != 4:
            bad(f"upsampler 'nearest+conv' supports upscale 4 only, got {upscale}")
        if upsampler and int(upscale) < 1:
            bad(f"upscale must be a positive integer, got {upscale}")
        if resi_connection not in ("1conv", "3conv"):
            bad(f"resi_connection must be '1conv' or '3conv', got {resi_connection!r}")
        if norm_layer not in (None, nn.LayerNorm, "LayerNorm"):
            bad(f"norm_layer must be LayerNorm, got {norm_layer!r}")
        if _pair(patch_size) != (1, 1):
            bad(f"patch_size must be 1 (PaddleGAN's forward assumes it), got {patch_size}")

    def check_image_size(self, x):
        """Pad bottom/right to multiples of `window_size` (reflect; edge when too small to reflect)."""
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.pad_multiple, (-w) % self.pad_multiple
        if not ph and not pw:
            return x
        return F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")

    def forward_features(self, x):
        x_size = (x.shape[2], x.shape[3])
        x = self.patch_embed(x)
        if self.ape:
            x = x + self.absolute_pos_embed[0]
        x = self.pos_drop(x)
        masks = {}  # shifted-window masks of sizes other than img_size, computed once per pass
        for layer in self.layers:
            x = layer(x, x_size, masks)
        return to_image(self.norm(x), x_size)

    def forward(self, x):
        h, w = x.shape[-2:]
        x = self.check_image_size(x)
        mean = self.mean.to(x.dtype)
        x = (x - mean) * self.img_range
        if self.upsampler == "":
            first = self.conv_first(x)
            x = x + self.conv_last(self.conv_after_body(self.forward_features(first)) + first)
        else:
            x = self.conv_first(x)
            x = self.conv_after_body(self.forward_features(x)) + x
            if self.upsampler == "pixelshuffle":
                x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
            elif self.upsampler == "pixelshuffledirect":
                x = self.upsample(x)
            else:  # nearest+conv
                x = self.conv_before_upsample(x)
                x = self.lrelu(self.conv_up1(F.interpolate(x, scale_factor=2, mode="nearest")))
                x = self.lrelu(self.conv_up2(F.interpolate(x, scale_factor=2, mode="nearest")))
                x = self.conv_last(self.lrelu(self.conv_hr(x)))
        x = x / self.img_range + mean
        return x[..., : h * self.upscale, : w * self.upscale]

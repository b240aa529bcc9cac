"""DeOldify: a self-attention U-Net on a ResNet encoder that colourises grey photos, PaddleGAN layout.

Reference: Jason Antic, DeOldify (https://github.com/jantic/DeOldify, fastai `DynamicUnetWide` /
`DynamicUnetDeep`), as ported by PaddleGAN `ppgan/models/generators/deoldify.py` (used by
`ppgan/apps/deoldify_predictor.py`). Self-attention: Zhang et al., "Self-Attention Generative
Adversarial Networks", https://arxiv.org/abs/1805.08318.

Sub-module names are PaddleGAN's (`layers.<i>`, `shuf.conv.0`, `spectral_norm.weight_u`, ...), so
its `.pdparams` load by name through `ppgan.weights.load_paddle_state_dict`.

Layer list (`Deoldify.layers`, as PaddleGAN's `SequentialEx`):
    0 encoder: ResNet conv1, bn1, relu, maxpool, layer1..layer4 (keys `layers.0.0` .. `layers.0.7`)
    1 BatchNorm, 2 ReLU, 3 middle: two conv blocks (C -> 2C -> C)
    4-7 U-Net blocks fed by the encoder outputs at /16, /8, /4, /2 (PaddleGAN takes them with
        forward hooks; here `forward` passes them explicitly); self-attention in block 5
    8 PixelShuffle_ICNR (weight-normed 1x1 conv) back to full size
    9 MergeLayer(dense): concat([x, model input]) ; 10 res_block (x + conv(conv(x)))
    11 1x1 conv to `n_classes` ; 12 SigmoidRange (y_range)

PaddleGAN quirks reproduced on purpose (its published weights were run with them):
  * every pixel shuffle is followed by the replication-pad + 2x2 average-pool blur, also the
    final one (layer 8) whose `blur` argument is False: PaddleGAN's forward tests `if self.blur`
    and `self.blur` is a (truthy) layer. So there is no `blur` argument here.
  * eval-mode spectral norm divides by sigma = u . (W v) with the stored u, v as they are: no
    power iteration and no re-normalisation (Paddle's `spectral_norm` op with power_iters=0).
"""
import torch
import torch.nn.functional as F
from torch import nn

from ...utils.errors import ConfigError
from .builder import GENERATORS

MODEL_TYPES = ("stable", "artistic")
NORM_TYPES = ("Batch", "Spectral", "Weight")


# --- normalised convolutions ---------------------------------------------------------------------

def _conv(layer, x, weight):
    fn = F.conv1d if isinstance(layer, nn.Conv1d) else F.conv2d
    return fn(x, weight, layer.bias, layer.stride, layer.padding, layer.dilation, layer.groups)


class SpectralNormVectors(nn.Module):
    """Holds the power-iteration vectors of a spectral norm (PaddleGAN keeps them in a
    `spectral_norm` sub-layer): buffers `weight_u` [out] and `weight_v` [in * k...]."""

    def __init__(self, height, width):
        super().__init__()
        self.register_buffer("weight_u", F.normalize(torch.randn(height), dim=0))
        self.register_buffer("weight_v", F.normalize(torch.randn(width), dim=0))


class Spectralnorm(nn.Module):
    """Spectral normalisation of a conv's weight along dim 0, PaddleGAN's `Spectralnorm` layout:
    parameter `weight_orig`, buffers `spectral_norm.weight_u|v`, the conv (without its weight) as
    `layer`, keeping its bias (`layer.bias`).

    Args:
        layer (nn.Conv1d | nn.Conv2d): the conv; its `weight` moves to `weight_orig`.
        eps (float): added to norms in the training-mode power iteration. Default: 1e-12.

    Eval mode: W = weight_orig / (u . (W_mat v)) with the stored u, v (Paddle's eval forward).
    Training mode: one power iteration first (v = norm(W^T u), u = norm(W v)), written back to
    the buffers as torch.nn.utils.spectral_norm does.
    """

    def __init__(self, layer, eps=1e-12):
        super().__init__()
        weight = layer.weight.detach().clone()
        del layer.weight
        self.layer = layer
        self.eps = eps
        self.weight_orig = nn.Parameter(weight)
        self.spectral_norm = SpectralNormVectors(weight.shape[0], weight[0].numel())

    def normalized_weight(self):
        w = self.weight_orig
        mat = w.reshape(w.shape[0], -1)  # [out, in * k...]
        u, v = self.spectral_norm.weight_u, self.spectral_norm.weight_v
        if self.training:
            with torch.no_grad():
                v = F.normalize(mat.t() @ u, dim=0, eps=self.eps)
                u = F.normalize(mat @ v, dim=0, eps=self.eps)
                self.spectral_norm.weight_u.copy_(u)
                self.spectral_norm.weight_v.copy_(v)
            u, v = u.clone(), v.clone()
        sigma = torch.dot(u, mat @ v)
        return w / sigma

    def forward(self, x):
        return _conv(self.layer, x, self.normalized_weight())


class WeightNormConv2d(nn.Conv2d):
    """Conv2d with weight normalisation along dim 0, Paddle's `weight_norm` layout: parameters
    `weight_g` [out] (1-D, as Paddle stores it) and `weight_v` [out, in, kh, kw];
    weight = g * v / ||v|| (norm over all dims but 0). Takes nn.Conv2d's arguments."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        weight = self.weight.detach().clone()
        del self.weight
        self.weight_v = nn.Parameter(weight)
        self.weight_g = nn.Parameter(weight.flatten(1).norm(dim=1))

    def forward(self, x):
        v = self.weight_v
        scale = self.weight_g / v.flatten(1).norm(dim=1)
        return _conv(self, x, v * scale.reshape(-1, *([1] * (v.ndim - 1))))


def custom_conv_layer(ni, nf, ks=3, stride=1, bias=None, is_1d=False, norm_type="Batch",
                      use_activ=True, self_attention=False, extra_bn=False):
    """nn.Sequential(conv [-> ReLU] [-> BatchNorm] [-> SelfAttention]), PaddleGAN's
    `custom_conv_layer` (and, with extra_bn=False, its `conv_layer`).

    Args:
        ni, nf (int): input / output channels. ks (int): kernel size ('same' padding).
        bias (bool | None): conv bias; None means "no BatchNorm follows".
        norm_type (str): 'Spectral' (spectral-normed conv), 'Weight' (weight-normed conv) or
            'Batch' (plain conv); 'Batch' also adds the BatchNorm.
        extra_bn (bool): add the BatchNorm whatever norm_type is (DeOldify's Spectral nets).
    """
    bn = norm_type in ("Batch", "BatchZero") or extra_bn
    if bias is None:
        bias = not bn
    padding = (ks - 1) // 2
    if norm_type == "Weight":
        conv = WeightNormConv2d(ni, nf, ks, stride=stride, padding=padding, bias=bias)
    else:
        conv_cls = nn.Conv1d if is_1d else nn.Conv2d
        conv = conv_cls(ni, nf, ks, stride=stride, padding=padding, bias=bias)
        if norm_type == "Spectral":
            conv = Spectralnorm(conv)
    layers = [conv]
    if use_activ:
        layers.append(nn.ReLU())
    if bn:
        layers.append(nn.BatchNorm2d(nf))
    if self_attention:
        layers.append(SelfAttention(nf))
    return nn.Sequential(*layers)


class SelfAttention(nn.Module):
    """SAGAN self-attention over all positions: [N, C, H, W] -> [N, C, H, W].
    f, g, h = query, key, value (spectral-normed 1x1 Conv1d, no bias; C -> C/8, C/8, C) on
    x flattened to [N, C, HW]; beta = softmax(f^T g, over dim 1); out = gamma * h @ beta + x.
    gamma starts at 0."""

    def __init__(self, n_channels):
        super().__init__()
        self.query = Spectralnorm(nn.Conv1d(n_channels, n_channels // 8, 1, bias=False))
        self.key = Spectralnorm(nn.Conv1d(n_channels, n_channels // 8, 1, bias=False))
        self.value = Spectralnorm(nn.Conv1d(n_channels, n_channels, 1, bias=False))
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        size = x.shape
        x = x.flatten(2)  # [N, C, HW]
        f, g, h = self.query(x), self.key(x), self.value(x)
        beta = torch.softmax(torch.bmm(f.transpose(1, 2), g), dim=1)  # [N, HW, HW]
        out = self.gamma * torch.bmm(h, beta) + x
        return out.reshape(size)


class PixelShuffle_ICNR(nn.Module):  # noqa: N801 (PaddleGAN's name)
    """1x1 conv to nf * scale^2 channels -> ReLU -> pixel shuffle -> blur (replication pad
    left/top by 1, 2x2 average pool, stride 1): [N, ni, H, W] -> [N, nf, scale H, scale W].
    Covers PaddleGAN's PixelShuffle_ICNR (norm_type='Weight', conv with bias) and
    CustomPixelShuffle_ICNR (norm_type='Spectral', extra_bn=True: conv without bias, BatchNorm).
    The blur is always applied (see the module docstring)."""

    def __init__(self, ni, nf=None, scale=2, norm_type="Weight", extra_bn=False):
        super().__init__()
        nf = ni if nf is None else nf
        self.conv = custom_conv_layer(ni, nf * scale ** 2, ks=1, use_activ=False,
                                      norm_type=norm_type, extra_bn=extra_bn)
        self.shuf = nn.PixelShuffle(scale)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.shuf(self.relu(self.conv(x)))
        return F.avg_pool2d(F.pad(x, (1, 0, 1, 0), mode="replicate"), 2, stride=1)


class _UnetBlock(nn.Module):
    def _merge(self, up_in, skip):
        up_out = self.shuf(up_in)
        if up_out.shape[-2:] != skip.shape[-2:]:  # only for sizes that are not multiples of 32
            up_out = F.interpolate(up_out, size=skip.shape[-2:], mode="nearest")
        return self.relu(torch.cat([up_out, self.bn(skip)], dim=1))


class UnetBlockWide(_UnetBlock):
    """Decoder block of the 'stable' net: up = shuf(up_in) (up_in_c -> n_out/2 channels, x2);
    out = conv(relu(concat([up, bn(skip)]))) with n_out/2 channels (+ self-attention).
    forward(up_in [N, up_in_c, H, W], skip [N, x_in_c, 2H, 2W]) -> [N, n_out // 2, 2H, 2W]."""

    def __init__(self, up_in_c, x_in_c, n_out, self_attention=False, norm_type="Spectral",
                 extra_bn=True):
        super().__init__()
        up_out = x_out = n_out // 2
        self.out_channels = x_out
        self.shuf = PixelShuffle_ICNR(up_in_c, up_out, norm_type=norm_type, extra_bn=extra_bn)
        self.bn = nn.BatchNorm2d(x_in_c)
        self.conv = custom_conv_layer(up_out + x_in_c, x_out, self_attention=self_attention,
                                      norm_type=norm_type, extra_bn=extra_bn)
        self.relu = nn.ReLU()

    def forward(self, up_in, skip):
        return self.conv(self._merge(up_in, skip))


class UnetBlockDeep(_UnetBlock):
    """Decoder block of the 'artistic' net: up = shuf(up_in) (up_in_c -> up_in_c/2, x2);
    ni = up_in_c/2 + x_in_c; nf = int((ni if final_div else ni/2) * nf_factor);
    out = conv2(conv1(relu(concat([up, bn(skip)])))) (+ self-attention after conv2)."""

    def __init__(self, up_in_c, x_in_c, final_div=True, self_attention=False, nf_factor=1.0,
                 norm_type="Spectral", extra_bn=True):
        super().__init__()
        self.shuf = PixelShuffle_ICNR(up_in_c, up_in_c // 2, norm_type=norm_type, extra_bn=extra_bn)
        self.bn = nn.BatchNorm2d(x_in_c)
        ni = up_in_c // 2 + x_in_c
        nf = int((ni if final_div else ni // 2) * nf_factor)
        self.out_channels = nf
        self.conv1 = custom_conv_layer(ni, nf, norm_type=norm_type, extra_bn=extra_bn)
        self.conv2 = custom_conv_layer(nf, nf, self_attention=self_attention,
                                       norm_type=norm_type, extra_bn=extra_bn)
        self.relu = nn.ReLU()

    def forward(self, up_in, skip):
        return self.conv2(self.conv1(self._merge(up_in, skip)))


class MergeLayer(nn.Module):
    """concat([x, orig], dim 1) if dense, else x + orig (fastai's MergeLayer; the shortcut is an
    argument here instead of an attribute set by the parent)."""

    def __init__(self, dense=False):
        super().__init__()
        self.dense = dense

    def forward(self, x, orig):
        return torch.cat([x, orig], dim=1) if self.dense else x + orig


class ResBlock(nn.Module):
    """PaddleGAN's `res_block`: x + conv(conv(x)), conv = conv_layer(norm_type) (conv -> ReLU
    [-> BatchNorm for 'Batch']); kept as `layers.0`, `layers.1`, `layers.2` (the merge)."""

    def __init__(self, nf, norm_type="Spectral", bottle=False, dense=False):
        super().__init__()
        norm2 = "BatchZero" if (not dense and norm_type == "Batch") else norm_type
        nf_inner = nf // 2 if bottle else nf
        self.layers = nn.ModuleList([custom_conv_layer(nf, nf_inner, norm_type=norm_type),
                                     custom_conv_layer(nf_inner, nf, norm_type=norm2),
                                     MergeLayer(dense)])

    def forward(self, x):
        return self.layers[2](self.layers[1](self.layers[0](x)), x)


class SigmoidRange(nn.Module):
    """sigmoid(x) * (high - low) + low."""

    def __init__(self, low, high):
        super().__init__()
        self.low, self.high = low, high

    def forward(self, x):
        return torch.sigmoid(x) * (self.high - self.low) + self.low


# --- ResNet encoder (paddle.vision.models.resnet layout) -----------------------------------------

class BasicBlock(nn.Module):
    """ResNet basic block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), 3x3 convs, the
    stride on conv1; shortcut = `downsample` (1x1 conv + BN) when the shape changes."""
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class BottleneckBlock(nn.Module):
    """ResNet bottleneck: 1x1 (planes) -> 3x3 (planes, the stride here, "ResNet v1.5") -> 1x1
    (4 * planes), each with BN, ReLU after the residual sum."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


RESNET_LAYOUTS = {"resnet34": (BasicBlock, (3, 4, 6, 3)), "resnet101": (BottleneckBlock, (3, 4, 23, 3))}


def resnet_encoder(arch):
    """`nn.Sequential(conv1, bn1, relu, maxpool, layer1, layer2, layer3, layer4)`: a ResNet
    without its pooling and classifier (PaddleGAN: `Sequential(*list(resnetXX().children())[:-2])`).
    Returns (encoder, channels of the eight children's outputs)."""
    if arch not in RESNET_LAYOUTS:
        raise ConfigError(f"encoder must be one of {', '.join(RESNET_LAYOUTS)}, got {arch!r}")
    block, depths = RESNET_LAYOUTS[arch]
    stem = [nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1)]
    channels = [64, 64, 64, 64]
    inplanes, stages = 64, []
    for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths)):
        stride = 1 if i == 0 else 2
        downsample = None
        if stride != 1 or inplanes != planes * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes * block.expansion))
        blocks = [block(inplanes, planes, stride, downsample)]
        inplanes = planes * block.expansion
        blocks += [block(inplanes, planes) for _ in range(depth - 1)]
        stages.append(nn.Sequential(*blocks))
        channels.append(inplanes)
    return nn.Sequential(*stem, *stages), channels


# Encoder children whose outputs feed the decoder, deepest first: layer3 (/16), layer2 (/8),
# layer1 (/4), relu (/2). PaddleGAN finds them as "the last child before the size changes".
SKIP_IDXS = (6, 5, 4, 2)


@GENERATORS.register()
class Deoldify(nn.Module):
    """DeOldify colouriser: ImageNet-normalised RGB in, ImageNet-normalised RGB out.

    Args:
        model_type (str): 'stable' (UnetBlockWide decoder) or 'artistic' (UnetBlockDeep).
            Default: 'stable'.
        encoder (str | None): 'resnet34' or 'resnet101'; None picks the published pairing
            (stable: resnet101, artistic: resnet34).
        n_classes (int): output channels. Default: 3.
        nf_factor (float | None): decoder width factor; None: stable 2, artistic 1.5.
        self_attention (bool): self-attention in the second decoder block. Default: True.
        y_range (tuple | None): output range of the final sigmoid; None for no sigmoid.
            Default: (-3, 3).
        norm_type (str): 'Spectral' (default, with BatchNorm after every conv block), 'Batch'
            or 'Weight'.
        last_cross (bool): concat the input and add the final res block. Default: True.
        bottle (bool): halve the width inside the final res block. Default: False.

    The defaults are what PaddleGAN's `build_model` passes (its class defaults are fastai's
    generic ones, which no DeOldify model uses). Input [N, 3, H, W] with H, W even; sizes that
    are multiples of 32 (`size_multiple`) go through without resizing any feature map.
    Output [N, n_classes, H, W] in y_range.
    """
    size_multiple = 32
    tileable = False  # self-attention over the whole image: tiles would change the result

    def __init__(self, model_type="stable", encoder=None, n_classes=3, nf_factor=None,
                 self_attention=True, y_range=(-3, 3), norm_type="Spectral", last_cross=True,
                 bottle=False):
        super().__init__()
        if model_type not in MODEL_TYPES:
            raise ConfigError(f"Expected model_type in [stable, artistic], but got {model_type!r}")
        if norm_type not in NORM_TYPES:
            raise ConfigError(f"norm_type must be one of {', '.join(NORM_TYPES)}, got {norm_type!r}")
        stable = model_type == "stable"
        encoder = encoder or ("resnet101" if stable else "resnet34")
        nf_factor = (2 if stable else 1.5) if nf_factor is None else nf_factor
        enc, enc_channels = resnet_encoder(encoder)
        conv_kw = dict(norm_type=norm_type, extra_bn=norm_type == "Spectral")

        ni = enc_channels[-1]
        middle = nn.Sequential(custom_conv_layer(ni, ni * 2, **conv_kw), custom_conv_layer(ni * 2, ni, **conv_kw))
        layers = [enc, nn.BatchNorm2d(ni), nn.ReLU(), middle]
        nf = int(512 * nf_factor)
        up_c = ni
        for i, idx in enumerate(SKIP_IDXS):
            not_final = i != len(SKIP_IDXS) - 1
            sa = self_attention and i == len(SKIP_IDXS) - 3
            if stable:
                block = UnetBlockWide(up_c, enc_channels[idx], nf if not_final else nf // 2,
                                      self_attention=sa, **conv_kw)
            else:
                block = UnetBlockDeep(up_c, enc_channels[idx], final_div=not_final, self_attention=sa,
                                      nf_factor=nf_factor, **conv_kw)
            layers.append(block)
            up_c = block.out_channels
        layers.append(PixelShuffle_ICNR(up_c))  # weight-normed, as PaddleGAN (kwargs not passed)
        if last_cross:
            layers += [MergeLayer(dense=True), ResBlock(up_c + 3, norm_type=norm_type, bottle=bottle)]
            up_c += 3
        layers.append(custom_conv_layer(up_c, n_classes, ks=1, use_activ=False, norm_type=norm_type))
        if y_range is not None:
            layers.append(SigmoidRange(*y_range))
        # PaddleGAN's attribute names: `layers.<i>` (see the module docstring).
        self.layers = nn.ModuleList(layers)
        self.last_cross = last_cross

    def forward(self, x):
        """x: [N, 3, H, W] normalised with ImageNet mean/std (see tests/deoldify_reference.py, PaddleGAN's exact pipeline)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ConfigError(f"Deoldify needs [N, 3, H, W] input, got {tuple(x.shape)}")
        if x.shape[-2] % 2 or x.shape[-1] % 2:
            raise ConfigError(f"Deoldify needs even H and W (best multiples of 32), got {x.shape[-2]}x{x.shape[-1]}")
        skips, h = {}, x
        for i, child in enumerate(self.layers[0]):
            h = child(h)
            if i in SKIP_IDXS:
                skips[i] = h
        h = self.layers[3](self.layers[2](self.layers[1](h)))
        n_blocks = len(SKIP_IDXS)
        for block, idx in zip(self.layers[4:4 + n_blocks], SKIP_IDXS):
            h = block(h, skips[idx])
        rest = iter(self.layers[4 + n_blocks:])
        h = next(rest)(h)  # PixelShuffle_ICNR
        if self.last_cross:
            h = next(rest)(h, x)  # MergeLayer(dense): concat the model input
        for layer in rest:
            h = layer(h)
        return h


def build_model(model_type="stable"):
    """The DeOldify net PaddleGAN's DeOldifyPredictor builds: 'stable' (resnet101 encoder,
    nf_factor 2, wide decoder) or 'artistic' (resnet34, nf_factor 1.5, deep decoder); blur,
    self-attention, y_range (-3, 3), spectral norm."""
    if model_type not in MODEL_TYPES:
        raise ConfigError(f"Expected model_type in [stable, artistic], but got {model_type!r}")
    stable = model_type == "stable"
    return Deoldify(model_type=model_type, encoder="resnet101" if stable else "resnet34", n_classes=3,
                    nf_factor=2 if stable else 1.5, self_attention=True, y_range=(-3, 3),
                    norm_type="Spectral")

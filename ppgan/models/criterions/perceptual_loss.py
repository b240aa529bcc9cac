"""Perceptual and style losses on VGG features (PaddleGAN's `PerceptualLoss` interface).

Papers: Johnson et al., "Perceptual Losses for Real-Time Style Transfer and Super-Resolution",
ECCV 2016, https://arxiv.org/abs/1603.08155; Gatys et al., "Image Style Transfer Using
Convolutional Neural Networks", CVPR 2016 (Gram-matrix style loss).
Reference: PaddleGAN `ppgan/models/criterions/perceptual_loss.py` (from mmediting) and BasicSR
`basicsr/losses/basic_loss.py` (`criterion` 'l1' | 'l2' | 'fro').

The VGG weights are catalogue entries of `ppgan.weights` ('vgg19': PaddleGAN's `vgg19.pdparams`;
'vgg19-torchvision': torchvision's `vgg19-dcbb9e9d.pth`), found under `$PPGAN_HOME/weights`
by `ppgan.weights.resolve_vgg` and read by `ppgan.weights.load`; nothing is downloaded here
(`ppgan download vgg19` fills the cache). This module opens no file itself.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ...modules.vgg import VGGFeatures, vgg_layer_count
from ...weights import load_into, resolve_vgg
from .builder import CRITERIONS

PADDLEGAN_VGG_URL = "https://paddlegan.bj.bcebos.com/models/{}.pdparams"  # PaddleGAN's default `pretrained`
CRITERIA = ("l1", "l2", "fro")


class PerceptualVGG(nn.Module):
    """Frozen VGG returning the features named in `layer_name_list`.

    Args:
        layer_name_list (list[str]): indices into `features`, e.g. ['34'] (conv5_4, pre-ReLU).
        vgg_type (str): 'vgg19' (default), 'vgg16', 'vgg13' or 'vgg11'.
        use_input_norm (bool): normalise [0, 1] input with the ImageNet mean / std (default True).
        weights (str | dict | Weights | None): a VGG weight file (from `ppgan.weights.resolve_vgg`),
            a state dict, or what `ppgan.weights.load` returned; None for untrained weights drawn
            from a fixed seed (the global RNG is left untouched either way). Entries for layers
            not built (and `classifier.*`) are skipped; every built layer must be filled.
    """

    def __init__(self, layer_name_list, vgg_type="vgg19", use_input_norm=True, weights=None):
        super().__init__()
        total = vgg_layer_count(vgg_type)
        try:
            indices = [int(n) for n in layer_name_list]
        except (TypeError, ValueError):
            raise ValueError(f"layer names must be feature indices like '34', got {list(layer_name_list)}") from None
        if not indices or min(indices) < 0 or max(indices) >= total:
            raise ValueError(f"{vgg_type} layer indices must be in 0..{total - 1}, got {list(layer_name_list)}")
        self.layer_name_list = [str(i) for i in indices]
        self.use_input_norm = use_input_norm
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            # only the layers that are read: no unused parameters
            self.vgg_layers = VGGFeatures(vgg_type, num_layers=max(indices) + 1)
        if weights is not None:
            load_into(self.vgg_layers, weights, subset=True)
        self.vgg_layers.eval()
        self.vgg_layers.requires_grad_(False)
        # ImageNet statistics for [0, 1] RGB input
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1), persistent=False)

    def train(self, mode=True):
        super().train(mode)
        self.vgg_layers.eval()  # a fixed feature extractor
        return self

    def forward(self, x):
        """x: [N, 3, H, W] -> {layer name: feature}."""
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        return self.vgg_layers(x, self.layer_name_list)


def gram_matrix(x):
    """[N, C, H, W] -> [N, C, C] Gram matrix divided by C*H*W, in float32."""
    n, c, h, w = x.shape
    f = x.float().reshape(n, c, h * w)
    return f.bmm(f.transpose(1, 2)) / (c * h * w)


@CRITERIONS.register()
class PerceptualLoss(nn.Module):
    """Perceptual loss with the commonly used style (Gram) loss.

    Args:
        layer_weights (dict[str, float]): feature index -> weight, e.g. {'34': 1.0}.
        vgg_type (str): feature extractor (default 'vgg19').
        use_input_norm (bool): ImageNet-normalise the (0..1) input inside the VGG (default True).
        perceptual_weight (float): weight of the perceptual term; <= 0 disables it (default 1.0).
        style_weight (float): weight of the style term; <= 0 disables it (default 1.0).
        norm_img (bool): inputs are in [-1, 1] and are mapped to [0, 1] first (default True;
            the ESRGAN configs set False for [0, 1] images).
        pretrained (str | bool | None): PaddleGAN's weight URL (default), a local path, or
            a catalogue name ('vgg19', 'vgg19-torchvision'), or False for untrained seeded
            weights (tests only). See `ppgan.weights.resolve_vgg`.
        criterion (str): distance between features: 'l1' (default, PaddleGAN), 'l2' (MSE) or
            'fro' (Frobenius norm of the difference, BasicSR).
        weight_path (str | None): local VGG weight file overriding `pretrained`
            ('deterministic': untrained seeded weights).
    Call: loss(x, gt) -> (perceptual_loss | None, style_loss | None), x and gt [N, 3, H, W];
    gradients flow to x only.
    Raises CheckpointError at construction when the weight file is not there.
    """

    def __init__(self, layer_weights, vgg_type="vgg19", use_input_norm=True, perceptual_weight=1.0,
                 style_weight=1.0, norm_img=True, pretrained=PADDLEGAN_VGG_URL.format("vgg19"),
                 criterion="l1", weight_path=None):
        super().__init__()
        if criterion not in CRITERIA:
            raise ValueError(f"PerceptualLoss criterion must be one of {', '.join(CRITERIA)}; got {criterion!r}")
        if not isinstance(layer_weights, dict) or not layer_weights:
            raise ValueError(f"layer_weights must be a non-empty mapping like {{'34': 1.0}}, got {layer_weights!r}")
        self.layer_weights = {str(k): float(v) for k, v in layer_weights.items()}
        self.perceptual_weight = float(perceptual_weight)
        self.style_weight = float(style_weight)
        self.norm_img = bool(norm_img)
        self.criterion = criterion
        self.vgg = None
        if self.perceptual_weight > 0 or self.style_weight > 0:
            weights = resolve_vgg(vgg_type, pretrained, weight_path)
            self.vgg = PerceptualVGG(list(self.layer_weights), vgg_type, use_input_norm, weights)

    def _distance(self, a, b):
        if self.criterion == "l1":
            return F.l1_loss(a, b)
        if self.criterion == "l2":
            return F.mse_loss(a, b)
        return torch.linalg.vector_norm((a - b).float())  # Frobenius norm of the whole difference

    def forward(self, x, gt):
        """x, gt: [N, 3, H, W] (in [-1, 1] with norm_img, else [0, 1]) -> (percep, style)."""
        if self.vgg is None:
            return None, None
        if self.norm_img:
            x, gt = (x + 1.0) * 0.5, (gt + 1.0) * 0.5
        x_feats = self.vgg(x)
        with torch.no_grad():
            gt_feats = self.vgg(gt.detach())
        percep = style = None
        if self.perceptual_weight > 0:
            percep = sum(self._distance(x_feats[k], gt_feats[k]) * w for k, w in self.layer_weights.items())
            percep = percep * self.perceptual_weight
        if self.style_weight > 0:
            style = sum(self._distance(gram_matrix(x_feats[k]), gram_matrix(gt_feats[k])) * w
                        for k, w in self.layer_weights.items())
            style = style * self.style_weight
        return percep, style

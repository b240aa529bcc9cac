"""LPIPS: Learned Perceptual Image Patch Similarity (lower = more alike).

Paper: Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric",
CVPR 2018, https://arxiv.org/abs/1801.03924. Reference: richzhang/PerceptualSimilarity (the
`lpips` package, v0.1) and PaddleGAN `ppgan/metrics/lpips.py` (VGG16 only).

The distance: both images (in [-1, 1]) are shifted / scaled per channel (`ScalingLayer`), run
through a frozen ImageNet backbone (VGG16: relu1_2 .. relu5_3; AlexNet: relu1 .. relu5), each
tapped feature map is unit-normalised over channels, the squared difference is weighted per
channel by a learned 1x1 conv (`lin0` .. `lin4`, non-negative), averaged over space and summed
over the layers.

Weights come from two files: the backbone (torchvision's `vgg16-397923af.pth` /
`alexnet-owt-7be5be79.pth`, `features.*` entries) and the linear layers (the `lpips` package's
`weights/v0.1/vgg.pth` / `alex.pth`, keys `lin<k>.model.1.weight`; PaddleGAN's
`lins_0.1_vgg.pdparams`, keys `<k>.model.1.weight`, also loads). Both are looked up in
`$PPGAN_HOME/weights` unless given; `weight_path='deterministic'` builds seeded weights (tests).
"""
import re

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..modules.vgg import VGGFeatures
from ..utils.errors import CheckpointError, ConfigError
from ..utils.visual import parse_min_max
from .builder import METRICS

NO_WEIGHTS = "deterministic"
# net -> (backbone's catalogue name, linear layers' catalogue name); files and URLs are in the catalogue
LPIPS_FILES = {"vgg": ("vgg16-torchvision", "lpips-vgg"), "alex": ("alexnet-torchvision", "lpips-alex")}
CHANNELS = {"vgg": [64, 128, 256, 512, 512], "alex": [64, 192, 384, 256, 256]}
TAPS = {"vgg": ["3", "8", "15", "22", "29"], "alex": ["1", "4", "7", "9", "11"]}


class AlexNetFeatures(nn.Module):
    """torchvision AlexNet's `features` (names `features.<i>`), returning the tapped outputs."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU())

    def forward(self, x, layer_names):
        out = {}
        for name, layer in self.features.named_children():
            x = layer(x)
            if name in layer_names:
                out[name] = x
        return out


class ScalingLayer(nn.Module):
    """[-1, 1] input -> the backbone's ImageNet normalisation (lpips' constants)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([.458, .448, .450]).view(1, 3, 1, 1))

    def forward(self, x):
        return (x - self.shift) / self.scale


class NetLinLayer(nn.Module):
    """Per-channel weights of one layer's squared feature difference: (Dropout) + 1x1 conv -> 1."""

    def __init__(self, chn_in, use_dropout=True):
        super().__init__()
        layers = [nn.Dropout()] if use_dropout else []
        self.model = nn.Sequential(*layers, nn.Conv2d(chn_in, 1, 1, bias=False))


def _normalize(feat, eps=1e-10):
    return feat / (feat.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def _lin_state(weights):
    """{'lin<k>.model.1.weight': tensor} from the lpips package's or PaddleGAN's key names."""
    state = {}
    for key, value in weights.state().items():
        m = re.fullmatch(r"(?:lins\.|lin)?(\d)\.model\.(\d)\.weight", key)
        if m is None:
            raise CheckpointError(f"{weights.path}: unexpected entry {key!r} for LPIPS linear layers "
                                  "(expected lin<k>.model.1.weight)")
        state[f"lin{m.group(1)}.model.1.weight"] = torch.as_tensor(np.asarray(value)) \
            if isinstance(value, np.ndarray) else value
    return state


class LPIPS(nn.Module):
    """LPIPS distance between image batches [N, 3, H, W] in [-1, 1] -> [N, 1, 1, 1].

    Args:
        net (str): backbone, 'vgg' (PaddleGAN's and the `lpips` package's default for losses)
            or 'alex' (the package's default metric). Default: 'vgg'.
        version (str): '0.1' (scaled input, the published weights). Default: '0.1'.
        weight_path (str | None): the linear layers' file; 'deterministic': seeded backbone
            and linear layers (tests). None: `$PPGAN_HOME/weights/lpips_v0.1_<net>.pth`.
        backbone_path (str | None): the backbone file; None: torchvision's file in
            `$PPGAN_HOME/weights`.
        spatial (bool): return the per-pixel map [N, 1, H, W] instead of the mean.

    The nets are frozen (`requires_grad=False`) and stay in eval mode, but gradients flow to the
    inputs (image fitting).
    """

    def __init__(self, net="vgg", version="0.1", weight_path=None, backbone_path=None, spatial=False):
        super().__init__()
        if net in ("vgg16",):
            net = "vgg"
        if net not in CHANNELS:
            raise ConfigError(f"LPIPS net must be 'vgg' or 'alex', got {net!r}")
        if version != "0.1":
            raise ConfigError(f"LPIPS version must be '0.1', got {version!r}")
        self.pnet_type, self.version, self.spatial = net, version, bool(spatial)
        self.scaling_layer = ScalingLayer()
        self.net = VGGFeatures("vgg16", num_layers=30) if net == "vgg" else AlexNetFeatures()
        for k, ch in enumerate(CHANNELS[net]):
            setattr(self, f"lin{k}", NetLinLayer(ch))  # its Dropout (off in eval) keeps the file's key names
        self._load(weight_path, backbone_path)
        self.requires_grad_(False)
        self.eval()

    def _load(self, weight_path, backbone_path):
        from ..weights import load, load_into
        from ..weights.resolve import local_weight

        if weight_path == NO_WEIGHTS:
            gen = torch.Generator().manual_seed(0)
            with torch.no_grad():
                for m in self.modules():
                    if isinstance(m, nn.Conv2d):
                        m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2. / m.weight[0].numel()) ** 0.5)
                        if m.bias is not None:
                            m.bias.zero_()
                for k in range(len(CHANNELS[self.pnet_type])):
                    w = getattr(self, f"lin{k}").model[1].weight
                    w.copy_(torch.rand(w.shape, generator=gen) / w.shape[1])
            return
        bb_name, lin_name = LPIPS_FILES[self.pnet_type]
        load_into(self.net, local_weight(bb_name, backbone_path, "LPIPS backbone"), subset=True)
        lin = load(local_weight(lin_name, weight_path, "LPIPS linear-layer"))
        state = _lin_state(lin)
        own = {k: v for k, v in self.state_dict().items() if k.startswith("lin")}
        if set(state) != set(own) or any(state[k].shape != own[k].shape for k in own):
            raise CheckpointError(f"{lin.path}: LPIPS linear layers for '{self.pnet_type}' need {len(own)} "
                                  f"entries shaped {[tuple(v.shape) for v in own.values()]}; the file does not fit")
        targets = dict(self.named_parameters())
        with torch.no_grad():  # names and shapes checked above: copy the linear layers in place
            for k, v in state.items():
                targets[k].copy_(v)

    def train(self, mode=True):  # always eval: dropout off, the metric is fixed
        return super().train(False)

    def forward(self, in0, in1, normalize=False):
        """in0, in1: [N, 3, H, W] in [-1, 1] ([0, 1] with `normalize`) -> [N, 1, 1, 1]
        (or [N, 1, H, W] when `spatial`)."""
        if in0.shape != in1.shape or in0.ndim != 4 or in0.shape[1] != 3:
            raise ConfigError(f"LPIPS expects two [N, 3, H, W] batches of one shape, got {tuple(in0.shape)} "
                              f"and {tuple(in1.shape)}")
        if normalize:
            in0, in1 = 2 * in0 - 1, 2 * in1 - 1
        taps = TAPS[self.pnet_type]
        f0 = self.net(self.scaling_layer(in0), taps)
        f1 = self.net(self.scaling_layer(in1), taps)
        total = 0
        for k, name in enumerate(taps):
            diff = (_normalize(f0[name]) - _normalize(f1[name])) ** 2
            d = getattr(self, f"lin{k}").model(diff)  # [N, 1, h, w]
            if self.spatial:
                total = total + nn.functional.interpolate(d, size=in0.shape[2:], mode="bilinear", align_corners=False)
            else:
                total = total + d.mean(dim=(2, 3), keepdim=True)
        return total


@METRICS.register()
class LPIPSMetric:
    """Mean LPIPS over a validation set (PaddleGAN's name and arguments); lower is better.

    Args:
        net (str): 'vgg' or 'alex'. Default: 'vgg'.
        version (str): '0.1'.
        mean, std (list | None): PaddleGAN's normalisation of numpy [0, 255] input to [-1, 1].
        weight_path, backbone_path: see `LPIPS`.
        min_max (tuple | str): value range of tensor input. Default: (-1, 1).
        device (str): 'auto', 'cpu' or 'cuda'. Default: 'auto'.

    `update(preds, gts)` takes numpy HWC images in [0, 255] (one or a list, as PaddleGAN) or
    tensors [N, 3, H, W] / [3, H, W] in `min_max`.
    """

    def __init__(self, net="vgg", version="0.1", mean=None, std=None, weight_path=None, backbone_path=None,
                 min_max=(-1., 1.), device="auto"):
        from ..utils.device import resolve_device

        self.device = resolve_device(device)
        self.loss_fn = LPIPS(net, version, weight_path, backbone_path).to(self.device)
        self.mean = np.asarray(mean if mean is not None else [0.5] * 3, np.float32)
        self.std = np.asarray(std if std is not None else [0.5] * 3, np.float32)
        self.min_max = parse_min_max(min_max)
        self.reset()

    def reset(self):
        self.results = []

    def _tensor(self, x):
        if isinstance(x, torch.Tensor):
            x = x[None] if x.ndim == 3 else x
            lo, hi = self.min_max
            return ((x.detach().float() - lo) / (hi - lo) * 2 - 1).to(self.device)
        x = np.asarray(x, np.float32)
        if x.ndim != 3 or x.shape[2] != 3:
            raise ConfigError(f"LPIPSMetric expects HWC RGB images or [N, 3, H, W] tensors, got shape {x.shape}")
        x = (x / 255. - self.mean) / self.std
        return torch.from_numpy(x.transpose(2, 0, 1)[None].copy()).to(self.device)

    @torch.no_grad()
    def update(self, preds, gts):
        preds = preds if isinstance(preds, (list, tuple)) else [preds]
        gts = gts if isinstance(gts, (list, tuple)) else [gts]
        if len(preds) != len(gts):
            raise ConfigError(f"LPIPSMetric.update got {len(preds)} predictions but {len(gts)} ground truths")
        for p, g in zip(preds, gts):
            with torch.autocast(self.device.type, enabled=False):
                d = self.loss_fn(self._tensor(p), self._tensor(g))
            self.results.extend(d.flatten().cpu().tolist())

    def accumulate(self):
        results = list(self.results)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            parts = [None] * dist.get_world_size()
            dist.all_gather_object(parts, results)
            results = [v for part in parts for v in part]
        return float(np.mean(results)) if results else 0.

    def name(self):
        return "LPIPS"

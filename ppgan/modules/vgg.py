"""VGG feature extractors (convolutional part only), torchvision / Paddle layer layout.

Paper: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015, https://arxiv.org/abs/1409.1556.
Reference: torchvision `torchvision/models/vgg.py` and Paddle `paddle/vision/models/vgg.py`,
which number their layers identically: `features.<i>` is a Conv2d (3x3, padding 1), a ReLU or
a 2x2 max-pool. So torchvision's `vgg19-dcbb9e9d.pth` and PaddleGAN's `vgg19.pdparams` load by
name (their `classifier.*` entries are not part of this module and are ignored by the loaders).
"""
from torch import nn
from ..utils.errors import ConfigError

# Channels per conv, 'M' = max-pool (torchvision's cfgs A, B, D, E).
VGG_CFGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}


def vgg_layer_count(vgg_type):
    """Number of `features` layers of `vgg_type` (37 for vgg19)."""
    if vgg_type not in VGG_CFGS:
        raise ConfigError(f"vgg_type must be one of {', '.join(VGG_CFGS)}; got {vgg_type!r}")
    return sum(1 if v == "M" else 2 for v in VGG_CFGS[vgg_type])


class VGGFeatures(nn.Module):
    """The `features` part of a VGG without batch norm: [N, 3, H, W] -> dict of features.

    Only the first `num_layers` layers are built (the ones a loss reads), keeping their
    torchvision indices as names, so `state_dict()` keys are `features.<i>.weight|bias`.

    Args:
        vgg_type (str): 'vgg11' | 'vgg13' | 'vgg16' | 'vgg19' (default 'vgg19').
        num_layers (int | None): layers to build, 1..vgg_layer_count(vgg_type); None builds all.
    """

    def __init__(self, vgg_type="vgg19", num_layers=None):
        super().__init__()
        total = vgg_layer_count(vgg_type)
        num_layers = total if num_layers is None else int(num_layers)
        if not 1 <= num_layers <= total:
            raise ConfigError(f"{vgg_type} has {total} feature layers; asked for {num_layers}")
        self.vgg_type = vgg_type
        layers, in_ch = [], 3
        for v in VGG_CFGS[vgg_type]:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(in_ch, v, kernel_size=3, padding=1), nn.ReLU()]
                in_ch = v
        self.features = nn.Sequential(*layers[:num_layers])

    def forward(self, x, layer_names=None):
        """x: [N, 3, H, W] -> {name: output of features.<name>} for `layer_names` (str indices;
        None: only the last layer)."""
        wanted = set(layer_names) if layer_names is not None else {str(len(self.features) - 1)}
        out = {}
        for name, layer in self.features.named_children():
            x = layer(x)
            if name in wanted:
                out[name] = x
        return out

"""Weight initialisation as PaddleGAN's `init_weights` (DCGAN-style normal(0, 0.02))."""
from torch import nn
from ..utils.errors import ConfigError


def init_weights(net, init_type="normal", init_gain=0.02, distribution="normal"):
    """Initialise conv/linear weights and norm layers of `net` in place.

    Args:
        init_type (str): 'normal' | 'xavier' | 'kaiming' | 'orthogonal'.
        init_gain (float): std for 'normal', gain for 'xavier' / 'orthogonal'.
    """
    if init_type not in ("normal", "xavier", "kaiming", "orthogonal"):
        raise ConfigError(f"init_type must be normal, xavier, kaiming or orthogonal; got {init_type!r}")

    def init_func(m):
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = getattr(m, "weight_orig", m.weight)  # spectral-normed layers: the raw weight
            if init_type == "normal":
                nn.init.normal_(weight, 0.0, init_gain)
            elif init_type == "xavier":
                xavier = nn.init.xavier_normal_ if distribution == "normal" else nn.init.xavier_uniform_
                xavier(weight, gain=init_gain)
            elif init_type == "kaiming":
                (nn.init.kaiming_normal_ if distribution == "normal" else nn.init.kaiming_uniform_)(
                    weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(weight, gain=init_gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, init_gain)
            nn.init.zeros_(m.bias)

    net.apply(init_func)
    return net


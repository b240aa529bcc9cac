"""Normalisation layers by name, as PaddleGAN's `build_norm_layer`."""
from torch import nn
from ..utils.errors import ConfigError


class FrozenInstanceNorm2d(nn.InstanceNorm2d):
    """InstanceNorm2d whose affine scale/bias exist (so Paddle checkpoints load: PaddleGAN's
    instance norm keeps `scale`/`bias` fixed at 1/0) but are not trained."""

    def __init__(self, num_features, eps=1e-5):
        super().__init__(num_features, eps=eps, affine=True, track_running_stats=False)
        self.weight.requires_grad_(False)
        self.bias.requires_grad_(False)


def build_norm_layer(norm_type="instance"):
    """Return a constructor `f(num_features) -> nn.Module` for `norm_type`.

    Args:
        norm_type (str): 'batch' (PaddleGAN's `BatchNorm(trainable_statistics=True)`: batch
            statistics in train AND eval mode; running buffers kept for checkpoints),
            'instance' (InstanceNorm2d with fixed affine, no running stats),
            'spectral' (identity; spectral norm is applied to the conv instead), or 'none'.
    """
    if norm_type == "batch":
        from .batch_norm import TrainableStatsBatchNorm2d

        return TrainableStatsBatchNorm2d
    if norm_type == "instance":
        return FrozenInstanceNorm2d
    if norm_type in ("none", "spectral"):
        return lambda num_features: nn.Identity()
    raise ConfigError(f"norm_type must be one of batch, instance, spectral, none; got {norm_type!r}")


def paddle_bn_momentum(paddle_momentum):
    """Paddle's BatchNorm momentum m keeps m of the old statistics; PyTorch's keeps 1-m."""
    return 1.0 - float(paddle_momentum)

"""DCGAN discriminator (Radford et al., 2015), PaddleGAN layout (`model.<i>`)."""
import math

from torch import nn

from ...utils.errors import ConfigError
from ...modules.improved_gan import MinibatchDiscrimination
from ...modules.norm import build_norm_layer
from .builder import DISCRIMINATORS


@DISCRIMINATORS.register()
class DCDiscriminator(nn.Module):
    """image [N, input_nc, S, S] -> raw logit [N, 1, 1, 1] (no sigmoid).

    Args:
        input_nc (int): input channels.
        ndf (int): channels of the first conv (default 64); doubled per level up to 8x.
        norm_type (str): 'batch', 'instance' (default, as PaddleGAN), 'spectral' (spectral norm,
            Miyato et al. 2018, on every conv / linear layer instead of a feature norm) or 'none'.
        input_size (int): S, a power of two >= 8 (default 64, PaddleGAN's only size).
        minibatch_kernels (int): B of minibatch discrimination (Salimans et al., 2016) on the
            last hidden layer's features; 0 (default) = off, PaddleGAN's net. When on, the last
            4x4 conv becomes `minibatch` + a linear `head` on [features, B minibatch features].
        minibatch_kernel_dim (int): C, the dimension of each minibatch kernel (default 5).
        n_class (int): > 0 makes D class-conditional with a projection (Miyato & Koyama, 2018):
            the logit gains <embed(y), features>, `embed` a learnt [n_class, F] table over the
            last hidden features (used by self-conditioned GANs, whose classes are clusters).
            Default 0 (PaddleGAN's net).
    Call: D(x) -> logits; D(x, y) with class ids y [N] (n_class > 0); D(x, return_features=True)
        -> (logits, features [N, F]) where features are the last hidden layer's activations (for
        feature matching and clustering).
    """

    def __init__(self, input_nc, ndf=64, norm_type="instance", input_size=64, minibatch_kernels=0,
                 minibatch_kernel_dim=5, n_class=0):
        super().__init__()
        if input_size < 8 or input_size & (input_size - 1):
            raise ConfigError(f"input_size must be a power of two >= 8, got {input_size}")
        if minibatch_kernels < 0:
            raise ConfigError(f"minibatch_kernels must be >= 0, got {minibatch_kernels}")
        if int(n_class) < 0:
            raise ConfigError(f"n_class must be >= 0 (0 = unconditional), got {n_class}")
        self.n_class = int(n_class)
        self.input_nc = input_nc
        # PaddleGAN's batch branch uses plain BatchNorm2D (running stats in eval mode).
        norm_layer = nn.BatchNorm2d if norm_type == "batch" else build_norm_layer(norm_type)
        n_down = int(math.log2(input_size)) - 2  # stride-2 convs down to 4x4
        # PaddleGAN quirk kept for checkpoint compatibility: the first conv has no bias; the
        # middle convs have one only with batch norm.
        layers = [nn.Conv2d(input_nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_down):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=norm_type == "batch"),
                       norm_layer(ndf * mult), nn.LeakyReLU(0.2)]
        n_features = ndf * mult * 4 * 4
        if minibatch_kernels:
            self.minibatch = MinibatchDiscrimination(n_features, minibatch_kernels, minibatch_kernel_dim)
            self.head = nn.Linear(n_features + minibatch_kernels, 1)
        else:
            layers += [nn.Conv2d(ndf * mult, 1, 4, 1, 0)]
        self.model = nn.Sequential(*layers)
        self.use_minibatch = bool(minibatch_kernels)
        if self.n_class:  # small at first (as the convs' N(0, 0.02)): the class term starts near 0
            self.embed = nn.Embedding(self.n_class, n_features)
            nn.init.normal_(self.embed.weight, 0.0, 0.02)
        if norm_type == "spectral":
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.utils.spectral_norm(m)

    def _unconditional(self, input, features):
        """(logit [N, 1, 1, 1], last hidden features [N, F] or None when not asked for)."""
        if self.use_minibatch:
            h = self.model(input).flatten(1)
            return self.head(self.minibatch(h))[:, :, None, None], h
        if not features:
            return self.model(input), None
        h = self.model[:-1](input)
        return self.model[-1](h), h.flatten(1)

    def forward(self, input, class_id=None, return_features=False):
        if self.n_class and class_id is None:
            raise ValueError(f"{type(self).__name__} has n_class={self.n_class}: call it as D(x, class_id)")
        out, h = self._unconditional(input, return_features or self.n_class)
        if self.n_class:  # projection: the class embedding's inner product with the features
            out = out + (self.embed(class_id.long()) * h).sum(1).view(-1, 1, 1, 1).to(out.dtype)
        return (out, h) if return_features else out

    def class_scores(self, input):
        """The logits of every class at once, [N, n_class] (the projection is linear in the class
        embedding, so one pass gives them all)."""
        if not self.n_class:
            raise ValueError(f"{type(self).__name__} is unconditional (n_class 0): call D(x)")
        out, h = self._unconditional(input, True)
        return out.flatten(1) + h @ self.embed.weight.t().to(h.dtype)

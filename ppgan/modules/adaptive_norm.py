"""Instance-Layer normalisation of U-GAT-IT (Kim et al., 2020, https://arxiv.org/abs/1907.10830).

Reference: PaddleGAN ppgan/models/generators/resnet_ugatit.py (`ILN`, `AdaILN`) and
resnet_ugatit_p2c.py (`LIN`, `AdaLIN`, the same maths under other names). Parameter names
(`rho`, `gamma`, `beta`, all [1, C, 1, 1]) match PaddleGAN's.
"""
import torch
from torch import nn


def instance_layer_norm(x, rho, eps=1e-5):
    """rho * InstanceNorm(x) + (1 - rho) * LayerNorm(x), no affine.

    Variances are unbiased (divide by n - 1), as `paddle.var` / `torch.var` by default; eps is
    added inside the square root. Paddle's float32 CPU kernel sums the squared deviations one by
    one, which over the ~10^6 elements of the LayerNorm half loses ~5e-4 relative precision;
    PyTorch's sum is more exact, so float32 outputs of a U-GAT-IT decoder can differ from
    PaddleGAN's by up to ~1e-2 while float64 runs of the two agree to ~1e-8.

    Args:
        x (Tensor): [N, C, H, W].
        rho (Tensor): mixing weight [1, C, 1, 1] (not clipped here; U-GAT-IT clips it in training).
    """
    in_mean, in_var = torch.mean(x, dim=(2, 3), keepdim=True), torch.var(x, dim=(2, 3), keepdim=True)
    out_in = (x - in_mean) / torch.sqrt(in_var + eps)
    ln_mean, ln_var = torch.mean(x, dim=(1, 2, 3), keepdim=True), torch.var(x, dim=(1, 2, 3), keepdim=True)
    out_ln = (x - ln_mean) / torch.sqrt(ln_var + eps)
    return rho * out_in + (1 - rho) * out_ln


class AdaILN(nn.Module):
    """Adaptive ILN: the affine gamma/beta [N, C] come from the caller (the generator's style FC).

    Args:
        num_features (int): C.
        eps (float): default 1e-5.
    """

    def __init__(self, num_features, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.rho = nn.Parameter(torch.full((1, num_features, 1, 1), 0.9))

    def forward(self, x, gamma, beta):
        out = instance_layer_norm(x, self.rho, self.eps)
        return out * gamma[:, :, None, None] + beta[:, :, None, None]


class ILN(nn.Module):
    """ILN with learnt per-channel rho (init 0), gamma (1) and beta (0).

    Args:
        num_features (int): C.
        eps (float): default 1e-5.
    """

    def __init__(self, num_features, eps=1e-5):
        super().__init__()
        self.eps = eps
        shape = (1, num_features, 1, 1)
        self.rho = nn.Parameter(torch.zeros(shape))
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))

    def forward(self, x):
        return instance_layer_norm(x, self.rho, self.eps) * self.gamma + self.beta


# Photo2Cartoon's names for the same layers (PaddleGAN resnet_ugatit_p2c.py).
AdaLIN = AdaILN
LIN = ILN

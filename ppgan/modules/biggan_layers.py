"""Layers of BigGAN (Brock, Donahue & Simonyan, ICLR 2019, https://arxiv.org/abs/1809.11096).

Spectral normalisation (Miyato et al., ICLR 2018) of conv / linear / embedding weights, class-
conditional batch norm whose gain and bias are linear in [shared class embedding, z chunk], the
SAGAN self-attention block (Zhang et al., 2019) and BigGAN's orthogonal regularisation.
Facts (layer shapes, where SN applies, the off-diagonal orthogonal penalty) were read from
the authors' reference code, ajbrock/BigGAN-PyTorch `layers.py` and `utils.py`.
"""
import torch
import torch.nn.functional as F
from torch import nn


def _normalize(v, eps):
    return v / (v.norm() + eps)


class SpectralNormMixin:
    """Spectral normalisation of `self.weight` (the weight reshaped to [out, -1]).

    The largest singular value sigma is estimated by power iteration with a persistent left
    singular vector `sn_u` (a buffer, so checkpoints and resumes carry it): every forward in
    training mode runs `sn_iters` iterations and stores u; the weight used is W / sigma with
    sigma = u^T W v, v = W^T u / |W^T u| (u, v constant, the gradient flows through W). In eval
    mode u is not updated (no state changes at inference).
    """

    def _init_sn(self, sn_iters=1, eps=1e-12):
        self.sn_iters, self.sn_eps = int(sn_iters), float(eps)
        u = torch.randn(self.weight.shape[0])
        self.register_buffer("sn_u", u / u.norm())

    def sn_sigma(self, update=False):
        """sigma estimate of the current weight (`update`: power-iterate u first)."""
        w = self.weight.reshape(self.weight.shape[0], -1)
        with torch.no_grad():
            u = self.sn_u
            if update:
                for _ in range(self.sn_iters):
                    u = _normalize(w @ _normalize(w.t() @ u, self.sn_eps), self.sn_eps)
                self.sn_u.copy_(u)
            v = _normalize(w.t() @ u, self.sn_eps)
        return u @ (w @ v)

    def sn_weight(self):
        """W / sigma (the power iteration advances in training mode)."""
        return self.weight / self.sn_sigma(update=self.training)


class SNConv2d(nn.Conv2d, SpectralNormMixin):
    """nn.Conv2d with spectrally normalised weight (extra args: sn_iters=1, sn_eps=1e-12)."""

    def __init__(self, *args, sn_iters=1, sn_eps=1e-12, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_sn(sn_iters, sn_eps)

    def forward(self, x):
        return self._conv_forward(x, self.sn_weight(), self.bias)


class SNLinear(nn.Linear, SpectralNormMixin):
    """nn.Linear with spectrally normalised weight (extra args: sn_iters=1, sn_eps=1e-12)."""

    def __init__(self, *args, sn_iters=1, sn_eps=1e-12, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_sn(sn_iters, sn_eps)

    def forward(self, x):
        return F.linear(x, self.sn_weight(), self.bias)


class SNEmbedding(nn.Embedding, SpectralNormMixin):
    """nn.Embedding with spectrally normalised table [num_embeddings, dim] (the projection
    discriminator's class embedding)."""

    def __init__(self, *args, sn_iters=1, sn_eps=1e-12, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_sn(sn_iters, sn_eps)

    def forward(self, idx):
        return F.embedding(idx, self.sn_weight())


class ClassConditionalBatchNorm2d(nn.Module):
    """Batch norm without its own affine, whose per-sample gain and bias come from a condition
    vector (BigGAN: [shared class embedding, this block's z chunk]):
        y = BN(x) * (1 + W_gain c) + W_bias c,
    W_gain, W_bias spectrally normalised linear maps without bias (as the reference's ccbn).

    Args:
        num_features (int): channels C of x.
        cond_dim (int): length of the condition vector c.
        eps (float): BN epsilon (default 1e-5). momentum (float): running-stat momentum (0.1).
        sn (bool): spectral norm on the two linear maps (default True).
    forward(x [N, C, H, W], cond [N, cond_dim]) -> [N, C, H, W].
    """

    def __init__(self, num_features, cond_dim, eps=1e-5, momentum=0.1, sn=True):
        super().__init__()
        linear = SNLinear if sn else nn.Linear
        self.bn = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum, affine=False)
        self.gain = linear(cond_dim, num_features, bias=False)
        self.bias = linear(cond_dim, num_features, bias=False)

    def forward(self, x, cond):
        gain = 1 + self.gain(cond)
        bias = self.bias(cond)
        return self.bn(x) * gain[:, :, None, None] + bias[:, :, None, None]


class SelfAttention(nn.Module):
    """SAGAN self-attention as in BigGAN: keys and values max-pooled 2x, output scaled by a
    learnt gamma that starts at 0 (the block begins as the identity).

        theta = W_theta x [C/8, HW], phi = maxpool(W_phi x) [C/8, HW/4], g = maxpool(W_g x) [C/2, HW/4]
        beta = softmax_j(theta_i . phi_j) [HW, HW/4];  out = x + gamma * W_o (g beta^T)

    Args:
        ch (int): channels, divisible by 8. sn (bool): spectral norm on the 1x1 convs (default True).
    forward(x [N, ch, H, W], H and W even) -> [N, ch, H, W].
    """

    def __init__(self, ch, sn=True):
        super().__init__()
        if ch % 8:
            raise ValueError(f"SelfAttention needs channels divisible by 8, got {ch}")
        conv = SNConv2d if sn else nn.Conv2d
        self.ch = ch
        self.theta = conv(ch, ch // 8, 1, bias=False)
        self.phi = conv(ch, ch // 8, 1, bias=False)
        self.g = conv(ch, ch // 2, 1, bias=False)
        self.o = conv(ch // 2, ch, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        n, c, h, w = x.shape
        theta = self.theta(x).reshape(n, c // 8, h * w)                       # [N, C/8, HW]
        phi = F.max_pool2d(self.phi(x), 2).reshape(n, c // 8, h * w // 4)     # [N, C/8, HW/4]
        g = F.max_pool2d(self.g(x), 2).reshape(n, c // 2, h * w // 4)         # [N, C/2, HW/4]
        beta = F.softmax(theta.transpose(1, 2) @ phi, dim=-1)                 # [N, HW, HW/4]
        o = (g @ beta.transpose(1, 2)).reshape(n, c // 2, h, w)               # [N, C/2, H, W]
        return x + self.gamma * self.o(o)


def orthogonal_regularization(params):
    """BigGAN's orthogonal regulariser (paper eq. 3): sum over weights W (reshaped to
    [out, -1]) of ||W W^T * (1 - I)||_F^2, i.e. only the off-diagonal entries of the Gram
    matrix are pushed to 0 (filter norms are left free). 1-D tensors (biases, gains) are skipped.

    Args:
        params (iterable of Tensor): the weights.
    Returns:
        0-dim Tensor (0. when no weight has two or more dimensions).
    """
    total = None
    for p in params:
        if p.ndim < 2:
            continue
        w = p.reshape(p.shape[0], -1)
        gram = w @ w.t()
        off = gram - torch.diag_embed(torch.diagonal(gram))
        term = (off * off).sum()
        total = term if total is None else total + term
    return total if total is not None else torch.zeros(())

"""Layers and helpers of "Improved Techniques for Training GANs" (Salimans et al., 2016,
https://arxiv.org/abs/1606.03498) and PacGAN (Lin et al., 2018, https://arxiv.org/abs/1712.04086).

Facts checked against the authors' code (openai/improved-gan: `nn.py` MinibatchLayer; the
TensorFlow `VBN` class of its imagenet folder) and fjxmlzn/PacGAN; the code here is our own.

- `MinibatchDiscrimination`: section 3.2, a layer in D that appends, per sample, how close it is to
  the other samples of the batch (a collapsed generator is easy to spot).
- `VirtualBatchNorm2d`: section 3.4, batch norm whose statistics come from a reference batch fixed
  at the start of training plus the example itself, so one sample does not depend on the others.
- `HistoricalAverage`: section 3.3, the running mean of a net's parameters; the penalty
  ||theta - mean_t theta||^2 is added to that net's loss.
- `pack` / `feature_matching_loss`: PacGAN's channel packing, section 3.1's loss.
"""
import torch
from torch import nn

from ..utils.errors import ConfigError


class MinibatchDiscrimination(nn.Module):
    """x [N, A] -> [x, o] [N, A + B].

    M = x T reshaped to [N, B, C]; c_b(i, j) = exp(-||M_i,b - M_j,b||_1);
    o(x_i)_b = sum over j != i of c_b(i, j) (the sample itself is left out, as the authors'
    code does by adding 1e6 to the diagonal of the distances).

    Args:
        in_features (int): A, the length of the feature vector of each sample.
        n_kernels (int): B, the number of kernels (features appended).
        kernel_dim (int): C, the dimension of each kernel's projection.
        init_std (float | None): std of T's normal initialisation; default 0.8 / sqrt(A), which is
            the authors' 0.05 for their A = 256 features and keeps the distances (and so
            exp(-distance) and its gradient) of the same order for wider inputs.
    """

    def __init__(self, in_features, n_kernels, kernel_dim=5, init_std=None):
        super().__init__()
        if n_kernels < 1 or kernel_dim < 1 or in_features < 1:
            raise ConfigError("minibatch discrimination needs in_features, n_kernels and kernel_dim >= 1")
        self.in_features, self.n_kernels, self.kernel_dim = in_features, n_kernels, kernel_dim
        init_std = 0.8 / in_features ** 0.5 if init_std is None else float(init_std)
        self.T = nn.Parameter(torch.randn(in_features, n_kernels * kernel_dim) * init_std)

    def forward(self, x):
        m = (x @ self.T).view(x.shape[0], self.n_kernels, self.kernel_dim).transpose(0, 1)  # [B, N, C]
        dist = torch.cdist(m, m, p=1)  # [B, N, N]: L1 over C (3x faster than broadcasting on a CPU)
        c = torch.exp(-dist)
        o = c.sum(2).transpose(0, 1) - 1.0  # drop j == i: its distance is 0, its term exactly exp(0) = 1
        return torch.cat([x, o.to(x.dtype)], dim=1)


class VirtualBatchNorm2d(nn.Module):
    """Virtual batch norm over channels of [R + N, C, H, W], the first R rows the reference batch.

    Reference rows are normalised with the reference batch's statistics (mean and mean of
    squares over rows, H and W). Each live row i is normalised with the statistics of the
    reference batch plus itself: mean_i = (R * ref_mean + mean_HW(x_i)) / (R + 1), likewise the
    mean of squares, var = mean_sq - mean^2. Train and eval modes behave the same (no running
    statistics). A learned per-channel scale and shift follow, as in batch norm.

    Args:
        num_features (int): channels C.
        ref_size (int): R, the number of leading reference rows in every input.
        eps (float): added to the variance (default 1e-5).
    """

    def __init__(self, num_features, ref_size, eps=1e-5):
        super().__init__()
        if ref_size < 1:
            raise ConfigError(f"virtual batch norm needs a reference batch of >= 1 samples, got {ref_size}")
        self.num_features, self.ref_size, self.eps = num_features, int(ref_size), float(eps)
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x):
        r = self.ref_size
        if x.shape[0] < r:
            raise ValueError(f"VirtualBatchNorm2d expects the {r} reference rows first; got {x.shape[0]} rows")
        xf = x.float()
        ref = xf[:r]
        ref_mean = ref.mean(dim=(0, 2, 3), keepdim=True)     # [1, C, 1, 1]
        ref_sq = ref.pow(2).mean(dim=(0, 2, 3), keepdim=True)
        live = xf[r:]
        new = 1.0 / (r + 1)
        mean = torch.cat([ref_mean.expand(r, -1, -1, -1),
                          new * live.mean(dim=(2, 3), keepdim=True) + (1 - new) * ref_mean])
        sq = torch.cat([ref_sq.expand(r, -1, -1, -1),
                        new * live.pow(2).mean(dim=(2, 3), keepdim=True) + (1 - new) * ref_sq])
        var = (sq - mean.pow(2)).clamp_min(0)
        out = (xf - mean) * torch.rsqrt(var + self.eps)
        out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return out.to(x.dtype)

    def extra_repr(self):
        return f"{self.num_features}, ref_size={self.ref_size}, eps={self.eps}"


class HistoricalAverage(nn.Module):
    """Running mean of another net's trainable parameters (buffers, so checkpoints keep it).

    `penalty(net)` = sum over parameters of ||theta - mean||^2 (the squared L2 distance of
    section 3.3); `update(net)` after each optimizer step folds the new parameters into the mean:
    mean <- mean + (theta - mean) / (count + 1). The mean starts at the parameters given at
    construction (count 1), so the first penalty is 0.

    Args:
        net (nn.Module): the net whose parameters are averaged (order of `parameters()`).
    """

    def __init__(self, net):
        super().__init__()
        params = [p for p in net.parameters() if p.requires_grad]
        self.n_params = len(params)
        for i, p in enumerate(params):
            self.register_buffer(f"mean_{i}", p.detach().clone())
        self.register_buffer("count", torch.ones((), dtype=torch.float32))

    def means(self):
        return [getattr(self, f"mean_{i}") for i in range(self.n_params)]

    @staticmethod
    def _params(net):
        return [p for p in net.parameters() if p.requires_grad]

    def penalty(self, net):
        params = self._params(net)
        if len(params) != self.n_params:
            raise ValueError(f"HistoricalAverage holds {self.n_params} parameters, the net has {len(params)}")
        diffs = [(p.float() - m.float()).pow(2).sum() for p, m in zip(params, self.means())]
        return torch.stack(diffs).sum()

    @torch.no_grad()
    def update(self, net):
        means = self.means()
        self.count += 1
        weight = 1.0 / self.count  # a tensor: no host read of the counter
        for m, p in zip(means, self._params(net)):
            m.add_((p.detach().to(m.dtype) - m) * weight)

    @torch.no_grad()
    def reset(self, net):
        """Start again from `net`'s current parameters (after loading weights)."""
        for m, p in zip(self.means(), self._params(net)):
            m.copy_(p.detach())
        self.count.fill_(1)

    def forward(self, net):
        return self.penalty(net)


def pack(x, pack_size):
    """PacGAN packing: [N * m, C, H, W] -> [N, m * C, H, W], samples i*m .. i*m + m - 1 side by
    side along channels (consecutive samples form a pack)."""
    if pack_size == 1:
        return x
    n = x.shape[0]
    if n % pack_size:
        raise ValueError(f"a batch of {n} cannot be split into packs of {pack_size}")
    return x.reshape(n // pack_size, pack_size * x.shape[1], *x.shape[2:])


def feature_matching_loss(real_features, fake_features):
    """||mean_batch f(real) - mean_batch f(fake)||^2 over the feature vector (section 3.1),
    averaged over the features (the authors' code takes the mean of the squared differences)."""
    diff = real_features.flatten(1).float().mean(0) - fake_features.flatten(1).float().mean(0)
    return diff.pow(2).mean()

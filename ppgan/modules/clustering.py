"""Clustering for self-conditioned GANs (Liu et al., 2020, "Diverse Image Generation via
Self-Conditioned GANs", https://arxiv.org/abs/2006.10728; facts from stevliu/self-conditioned-gan).

The paper turns an unconditional GAN into a conditional one without labels: the real images are
clustered by k-means on the discriminator's features, G and D are conditioned on the cluster id
(G draws ids from the clusters' sizes), and every few epochs the images are clustered again with
the newer D, the new clusters matched to the old ids (Hungarian matching on their overlap) so
that G and D keep what they learnt for each id.

Here: `kmeans` and `match_clusters` are the maths; `ClusterBank` keeps the recent real images
the clustering runs on (the model never sees the dataset itself, only its batches) and the
centroids that label every later real image, all in buffers so checkpoints resume exactly.
"""
import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn


@torch.no_grad()
def kmeans(x, k, iters=30, generator=None):
    """Lloyd's k-means on the rows of x [N, D] (N >= k).

    Centroids start at k distinct rows drawn with `generator` (a CPU torch.Generator; None: the
    global one); a cluster that empties keeps its centroid. Returns (assignments [N] int64,
    centroids [k, D] of x's dtype), assignments to the nearest of the final centroids.
    """
    n = x.shape[0]
    if n < k:
        raise ValueError(f"k-means needs at least k={k} points, got {n}")
    start = torch.randperm(n, generator=generator)[:k].to(x.device)
    centroids = x[start].clone()
    ones = torch.ones(n, dtype=x.dtype, device=x.device)
    for _ in range(iters):
        assign = torch.cdist(x, centroids).argmin(1)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        counts = torch.zeros(k, dtype=x.dtype, device=x.device).index_add_(0, assign, ones)
        centroids = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centroids)
    return torch.cdist(x, centroids).argmin(1), centroids


def match_clusters(new, old, k):
    """The relabelling of clusters `new` that agrees most with the labels `old` of the same points
    (both [N] ints in 0..k-1): `perm` [k] int64 with perm[j] the old id given to new cluster j,
    maximising the points whose relabelled cluster equals their old label (Hungarian algorithm)."""
    overlap = torch.zeros(k, k, dtype=torch.float64)
    overlap.index_put_((new.cpu().long(), old.cpu().long()), torch.ones(new.shape[0], dtype=torch.float64),
                       accumulate=True)
    rows, cols = linear_sum_assignment(-overlap.numpy())
    perm = np.empty(k, dtype=np.int64)
    perm[rows] = cols
    return torch.from_numpy(perm)


class ClusterBank(nn.Module):
    """The last `size` real images seen (a ring buffer) and the k cluster centroids that label
    images by their nearest centroid in a feature space.

    Images are kept as uint8 (values in [-1, 1] mapped to 0..255: the 8-bit images of a loader
    come back exactly), so a bank of 8192 32x32 grey images takes 8 MB.

    Args:
        size (int): images kept (M).
        image_shape (tuple): (C, H, W) of one image.
        k (int): clusters.
        n_features (int): length of a feature vector.
    Buffers: images [M, C, H, W] uint8, seen (images pushed so far, int64), centroids [k, F].
    """

    def __init__(self, size, image_shape, k, n_features):
        super().__init__()
        self.size, self.k = int(size), int(k)
        self.register_buffer("images", torch.zeros(self.size, *image_shape, dtype=torch.uint8))
        self.register_buffer("seen", torch.zeros((), dtype=torch.int64))
        self.register_buffer("centroids", torch.zeros(self.k, int(n_features)))

    @torch.no_grad()
    def push(self, images):
        """Store a batch [B, C, H, W] in [-1, 1] (the oldest images are overwritten); no host sync."""
        b = images.shape[0]
        if b > self.size:
            images, b = images[-self.size:], self.size
        slots = (self.seen + torch.arange(b, device=self.seen.device)) % self.size
        q = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        self.images.index_copy_(0, slots.to(self.images.device), q.to(self.images.device))
        self.seen.add_(b)

    def stored(self):
        """The images held, [min(seen, M), C, H, W] float in [-1, 1] (reads `seen`: a host sync)."""
        n = min(int(self.seen), self.size)
        return self.images[:n].float() / 127.5 - 1.0

    @staticmethod
    def embed(features):
        """The space clusters live in: features flattened and scaled to unit length."""
        return F.normalize(features.flatten(1).float(), dim=1)

    @torch.no_grad()
    def assign(self, features):
        """Cluster ids [N] int64 of features [N, ...]: the nearest centroid."""
        return torch.cdist(self.embed(features), self.centroids.to(features.device)).argmin(1)

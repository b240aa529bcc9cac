"""FID and KID: the distance between Inception-v3 pool features of generated and real images.

Papers: Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", NeurIPS 2017 (FID, https://arxiv.org/abs/1706.08500); Binkowski et al.,
"Demystifying MMD GANs", ICLR 2018 (KID, https://arxiv.org/abs/1801.01401).
Reference: pytorch-fid (mseitzer/pytorch-fid `inception.py`, `fid_score.py`), whose Inception is
TensorFlow's 2015-12-05 graph ported to PyTorch: torchvision's Inception-v3 layout with four
block variants (`FIDInceptionA`, `FIDInceptionC`, `FIDInceptionE_1`, `FIDInceptionE_2`: average
pools that do not count the padding, a max pool in the last block) and 1008 classes. The same
weights fill `FIDInceptionV3` here by name (`pt_inception-2015-12-05-6726825d.pth`);
PaddleGAN's `InceptionV3.pdparams` is a conversion of the same net with other names.
Preprocessing as pytorch-fid: RGB in [0, 1] -> bilinear resize to 299x299 -> [-1, 1].

* `frechet_distance(mu1, sigma1, mu2, sigma2)` (scipy `sqrtm`, as pytorch-fid),
  `frechet_distance_features(f1, f2)` (the same value without `sqrtm`: what the metrics use) and
  `kid(feats1, feats2, ...)`: pure maths.
* `build_inception(weight_path)`: the net with its weights ('deterministic': seeded, for tests).
* `FID` / `KID`: engine metrics (`validate.metrics`); real statistics can come from a folder
  (`real_dir`), cached under `$PPGAN_HOME/fid_stats` by the files' content and the weights.
* `folder_features(folder, ...)`: the features of every image in a folder (tools/fid.py).
"""
import hashlib
import json
import os
import warnings

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..utils.errors import ConfigError, DatasetError
from ..utils.visual import parse_min_max
from .builder import METRICS

INCEPTION_WEIGHT_NAME = "inception-fid"  # catalogue name (ppgan download inception-fid)
INCEPTION_FILENAME = "pt_inception-2015-12-05-6726825d.pth"  # its cache file name (URL: the catalogue)
NO_WEIGHTS = "deterministic"  # weight_path value: seeded random weights (tests only)
FEATURE_DIM = 2048
STATS_VERSION = 1  # bump when the preprocessing changes: old cache files then miss


# ---------------------------------------------------------------- the maths

def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2):
    |mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)).

    As pytorch-fid: when the product's square root is not finite (near-singular covariances, e.g.
    fewer samples than dimensions), `eps` is added to both diagonals; a small imaginary part
    left by numerical error is dropped, a large one is an error.

    Args:
        mu1, mu2 (array-like): means, shape [D].
        sigma1, sigma2 (array-like): covariances, shape [D, D].
    Returns:
        float
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ConfigError(f"frechet_distance: shapes do not match: mu {mu1.shape} / {mu2.shape}, "
                          f"sigma {sigma1.shape} / {sigma2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():  # singular products are handled below, as pytorch-fid does
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ConfigError(f"frechet_distance: the covariance product's square root has an imaginary "
                              f"part of {np.max(np.abs(covmean.imag)):.3g}; use more samples")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _trace_sqrt_product_eigh(sigma1, sigma2):
    """tr((sigma1 sigma2)^(1/2)) for symmetric PSD covariances, as tr((s1h sigma2 s1h)^(1/2))
    with s1h = sigma1^(1/2): two symmetric eigendecompositions instead of a general `sqrtm`
    (the same value; tens of times faster at D = 2048). Round-off negatives count as 0."""
    w, v = np.linalg.eigh(sigma1)
    s1h = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(s1h @ sigma2 @ s1h), 0, None)).sum())


def frechet_distance_features(feats1, feats2):
    """`frechet_distance` of the Gaussians fitted to features [N1, D] and [N2, D] (N >= 2).

    The trace term is computed without `sqrtm`: with centred features A1, A2 and
    sigma_k = A_k^T A_k / (N_k - 1), the non-zero eigenvalues of sigma1 sigma2 are the squared
    singular values of A1 A2^T / sqrt((N1-1)(N2-1)), so with fewer samples than dimensions (a
    singular covariance, where `sqrtm` is slow and inexact) tr((sigma1 sigma2)^(1/2)) is the sum
    of those singular values; otherwise the symmetric eigendecomposition form is used.
    """
    f1, f2 = np.asarray(feats1, np.float64), np.asarray(feats2, np.float64)
    (mu1, sigma1), (mu2, sigma2) = feature_stats(f1), feature_stats(f2)
    if f1.shape[1] != f2.shape[1]:
        raise ConfigError(f"FID: feature sizes differ: {f1.shape} and {f2.shape}")
    if min(f1.shape[0], f2.shape[0]) <= f1.shape[1]:
        a1, a2 = f1 - mu1, f2 - mu2
        cross = a1 @ a2.T / np.sqrt((f1.shape[0] - 1) * (f2.shape[0] - 1))
        tr_covmean = float(np.linalg.svd(cross, compute_uv=False).sum())
    else:
        tr_covmean = _trace_sqrt_product_eigh(sigma1, sigma2)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def feature_stats(feats):
    """(mean [D], covariance [D, D]) of features [N, D] (N >= 2), in float64."""
    feats = np.asarray(feats, np.float64)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise ConfigError(f"FID needs features of at least 2 images, got shape {feats.shape}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def polynomial_kernel(x, y):
    """KID's kernel k(x, y) = (x . y / d + 1)^3, for rows of x [N, d] and y [M, d] -> [N, M]."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def kid(feats1, feats2, subsets=100, subset_size=1000, seed=0):
    """Kernel Inception Distance: the unbiased estimate of MMD^2 with `polynomial_kernel`,
    averaged over `subsets` random subsets of m = min(subset_size, N1, N2) rows of each set
    (drawn without replacement, from a generator seeded with `seed`), as stylegan2-ada and
    torch-fidelity compute it:

        MMD^2 = sum_{i != j} k(x_i, x_j) / (m (m-1)) + sum_{i != j} k(y_i, y_j) / (m (m-1))
                - 2 sum_{i, j} k(x_i, y_j) / m^2

    Args:
        feats1, feats2 (array-like): features [N1, D] and [N2, D], N1, N2 >= 2.
    Returns:
        float (can be slightly negative for sets from the same distribution)
    """
    x_all, y_all = np.asarray(feats1, np.float64), np.asarray(feats2, np.float64)
    if x_all.ndim != 2 or y_all.ndim != 2 or x_all.shape[1] != y_all.shape[1]:
        raise ConfigError(f"kid: features must be [N, D] with the same D, got {x_all.shape} and {y_all.shape}")
    if int(subsets) < 1 or int(subset_size) < 2:
        raise ConfigError(f"kid: subsets must be >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
    m = min(int(subset_size), x_all.shape[0], y_all.shape[0])
    if m < 2:
        raise ConfigError(f"KID needs features of at least 2 images in each set, got {x_all.shape[0]} "
                          f"and {y_all.shape[0]}")
    rng = np.random.default_rng(seed)
    total = 0.
    for _ in range(int(subsets)):
        x = x_all[rng.choice(x_all.shape[0], m, replace=False)]
        y = y_all[rng.choice(y_all.shape[0], m, replace=False)]
        a = polynomial_kernel(x, x) + polynomial_kernel(y, y)
        b = polynomial_kernel(x, y)
        total += (a.sum() - np.diag(a).sum()) / (m * (m - 1)) - 2 * b.sum() / (m * m)
    return float(total / int(subsets))


# ---------------------------------------------------------------- the network

class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 0.001) -> ReLU; torchvision's names `conv`, `bn`."""

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_ch, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x):  # the TF graph's average pools do not count the zero padding
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    """Mixed_5b/5c/5d: 1x1, 5x5, double 3x3 and pooled branches -> 224 + pool_features channels."""

    def __init__(self, in_ch, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_ch, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_ch, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_ch, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_ch, pool_features, 1)

    def forward(self, x):
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg_pool(x))], 1)


class InceptionB(nn.Module):
    """Mixed_6a (grid reduction 35 -> 17): strided 3x3, double 3x3 and max-pool branches."""

    def __init__(self, in_ch):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_ch, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_ch, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class FIDInceptionC(nn.Module):
    """Mixed_6b..6e: factorised 7x7 branches of width c7 -> 768 channels."""

    def __init__(self, in_ch, c7):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_ch, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_ch, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_ch, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_ch, 192, 1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for i in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg_pool(x))], 1)


class InceptionD(nn.Module):
    """Mixed_7a (grid reduction 17 -> 8)."""

    def __init__(self, in_ch):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_ch, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_ch, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class FIDInceptionE(nn.Module):
    """Mixed_7b (`pool='avg'`, pytorch-fid's FIDInceptionE_1) and Mixed_7c (`pool='max'`,
    FIDInceptionE_2: the TF graph max-pools here) -> 2048 channels."""

    def __init__(self, in_ch, pool="avg"):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ConfigError(f"FIDInceptionE pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_ch, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_ch, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_ch, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_ch, 192, 1)

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        pooled = _avg_pool(x) if self.pool == "avg" else F.max_pool2d(x, 3, stride=1, padding=1)
        return torch.cat([self.branch1x1(x), b3, d, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """pytorch-fid's Inception-v3: images [N, 3, H, W] in [0, 1] -> pool features [N, 2048].

    Module names are torchvision's (`Conv2d_1a_3x3.conv.weight`, `Mixed_7c.branch_pool.bn.
    running_var`, ...), which PaddleGAN's `InceptionV3.pdparams` shares, so both files load
    strictly (their classifier `fc.*`, unused for FID, is dropped first). Input is resized to 299x299 (bilinear, no corner alignment)
    and mapped to [-1, 1], the reference preprocessing.
    """

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = FIDInceptionA(192, 32)
        self.Mixed_5c = FIDInceptionA(256, 64)
        self.Mixed_5d = FIDInceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, 128)
        self.Mixed_6c = FIDInceptionC(768, 160)
        self.Mixed_6d = FIDInceptionC(768, 160)
        self.Mixed_6e = FIDInceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, "avg")
        self.Mixed_7c = FIDInceptionE(2048, "max")

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != 3:
            raise ConfigError(f"FIDInceptionV3 expects [N, 3, H, W] images, got {tuple(x.shape)}")
        if x.shape[2:] != (299, 299):
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # [N, 64, 147, 147]
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))  # [N, 192, 71, 71]
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)  # ... [N, 2048, 8, 8]
        return x.mean(dim=(2, 3))


def _seeded_init(net, seed=0):
    """Deterministic weights for tests: He-normal convs, unit BN; independent of the global RNG."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2. / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.zero_()
    return net


def inception_weight_file(weight_path=None):
    """The Inception weight file to use: `weight_path` (must exist), else the catalogue entry
    `inception-fid` from the cache (`$PPGAN_HOME/weights/pt_inception-2015-12-05-6726825d.pth`).
    Nothing is downloaded here; the error names the file, the URL and the ways to get it."""
    from ..weights.resolve import local_weight

    return local_weight(INCEPTION_WEIGHT_NAME, weight_path, "Inception weight_path")


_NETS = {}  # (weights identity, device) -> net, shared by FID and KID of one config


def build_inception(weight_path=None, device="cpu"):
    """(FIDInceptionV3 in eval mode on `device`, weights identity string).

    Args:
        weight_path (str | None): a weight file; None: the cache / catalogue (see
            `inception_weight_file`); 'deterministic': seeded random weights (tests; the FID
            values then mean nothing against published numbers).
    The identity ('deterministic-v1' or 'sha256:<hex>') keys the real-feature cache.
    """
    from ..weights import apply_state, file_sha256, load

    device = torch.device(device)
    if weight_path == NO_WEIGHTS:
        path, ident = None, "deterministic-v1"
    else:
        path = inception_weight_file(weight_path)
        ident = f"sha256:{file_sha256(path)}"
    key = (ident, str(device))
    if key not in _NETS:
        net = _seeded_init(FIDInceptionV3())
        if path is not None:
            weights = load(path)
            state = {k: v for k, v in weights.state().items() if not k.startswith("fc.")}  # the classifier
            apply_state(net, state, weights.format, path)
        _NETS[key] = net.eval().requires_grad_(False).to(device)
    return _NETS[key], ident


@torch.no_grad()
def inception_features(net, images, batch_size=50):
    """Pool features [N, 2048] (float64 numpy) of images [N, C, H, W] in [0, 1] (C = 1 or 3),
    in float32 whatever autocast the caller runs under."""
    device = next(net.parameters()).device
    out = []
    for i in range(0, images.shape[0], batch_size):
        x = images[i:i + batch_size].to(device=device, dtype=torch.float32)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        with torch.autocast(device.type, enabled=False):
            out.append(net(x.clamp(0, 1)).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM))


# ---------------------------------------------------------------- folders and the cache

def list_images(folder):
    """Image files under `folder` (recursive), sorted; DatasetError when there are none."""
    from ..utils.image import is_image_file

    if not os.path.isdir(folder):
        raise DatasetError(f"image folder {folder} does not exist or is not a folder")
    files = sorted(os.path.join(root, f) for root, _, names in os.walk(folder) for f in names
                   if is_image_file(f))
    if not files:
        raise DatasetError(f"no image files in {folder}")
    return files


def _read_batch(files):
    """Images of `files` as one [N, 3, 299, 299] float tensor in [0, 1] (each resized alone)."""
    from ..utils.image import imread

    batch = []
    for f in files:
        img = torch.from_numpy(np.ascontiguousarray(imread(f, "rgb"))).permute(2, 0, 1)[None].float() / 255.
        batch.append(F.interpolate(img, size=(299, 299), mode="bilinear", align_corners=False))
    return torch.cat(batch)


def stats_cache_dir():
    """Where real-dataset features are cached: `$PPGAN_HOME/fid_stats`."""
    from ..weights import cache_dir

    return os.path.join(cache_dir(), "fid_stats")


def folder_key(files, root, ident):
    """Cache key of a folder's features: sha256 over each file's relative name and content
    digest, the weights identity and the preprocessing version."""
    from ..weights import file_sha256

    h = hashlib.sha256(json.dumps({"v": STATS_VERSION, "weights": ident}).encode())
    for f in files:
        h.update(os.path.relpath(f, root).encode("utf-8", "surrogatepass") + b"\0")
        h.update(file_sha256(f).encode() + b"\n")
    return h.hexdigest()


def folder_features(folder, net, ident, batch_size=50, cache=True, log=None):
    """(features [N, 2048], cache hit?) of every image under `folder`; with `cache`, read from /
    written to `stats_cache_dir()/<folder_key>.npz` (atomically)."""
    from ..utils.io import atomic_path

    files = list_images(folder)
    path = os.path.join(stats_cache_dir(), folder_key(files, folder, ident) + ".npz")
    if cache and os.path.isfile(path):
        try:
            with np.load(path, allow_pickle=False) as data:
                feats = data["features"]
            if feats.ndim == 2 and feats.shape == (len(files), FEATURE_DIM):
                return feats, True
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is recomputed and replaced
    feats = np.concatenate([inception_features(net, _read_batch(files[i:i + batch_size]), batch_size)
                            for i in range(0, len(files), batch_size)])
    if cache:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, features=feats)
        if log:
            log(f"cached the features of {folder} in {path}")
    return feats, False


# ---------------------------------------------------------------- engine metrics

def _gather(arrays):
    """Concatenate a list of [n, D] arrays over every rank."""
    local = np.concatenate(arrays) if arrays else np.zeros((0, FEATURE_DIM))
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        parts = [None] * dist.get_world_size()
        dist.all_gather_object(parts, local)
        local = np.concatenate(parts)
    return local


@METRICS.register()
class FID:
    """Frechet Inception Distance between the generated images and the real ones; lower is better.

    Args:
        batch_size (int): images per Inception forward. Default: 50.
        weight_path (str | None): Inception weights (see `build_inception`); PaddleGAN's
            `premodel_path` is read as the same. 'deterministic' for tests.
        real_dir (str | None): a folder of real images; its features are computed once and
            cached (`$PPGAN_HOME/fid_stats`). None: the real images are the `gts` of `update`
            (features of an identical batch are reused across validations).
        min_max (tuple | str): value range of the tensors given to `update`. Default: (-1, 1).
        device (str): 'auto' (CUDA when available), 'cpu' or 'cuda'. Default: 'auto'.
        cache (bool): cache `real_dir` features on disk. Default: True.
        use_GPU, dims: PaddleGAN's arguments; `dims` must be 2048, `use_GPU=False` means CPU.

    `update(preds, gts=None)` takes tensors [N, C, H, W] (C = 1 or 3) in `min_max`.
    """

    def __init__(self, batch_size=50, weight_path=None, real_dir=None, min_max=(-1., 1.), device="auto",
                 cache=True, premodel_path=None, use_GPU=True, dims=FEATURE_DIM):
        from ..utils.device import resolve_device

        if int(dims) != FEATURE_DIM:
            raise ConfigError(f"{self.name()}: only dims={FEATURE_DIM} (the pool features) is supported, got {dims}")
        if int(batch_size) < 1:
            raise ConfigError(f"{self.name()}: batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.min_max = parse_min_max(min_max)
        self.real_dir = real_dir
        self.cache = bool(cache)
        self.device = resolve_device("cpu" if not use_GPU else device)
        self.net, self.weights_id = build_inception(weight_path or premodel_path, self.device)
        if real_dir is not None:
            list_images(real_dir)  # a wrong folder fails at setup, not at the first validation
        self._memo, self._used = {}, set()  # content digest of a real batch -> its features
        self.reset()

    def reset(self):
        """Start a new validation; real-batch features used in the last one stay memoised."""
        self._memo = {k: v for k, v in self._memo.items() if k in self._used}
        self._used = set()
        self.fake_feats, self.real_feats = [], []

    def _unit(self, x):
        if isinstance(x, (list, tuple)):
            x = torch.stack(list(x)) if x and x[0].ndim == 3 else torch.cat(list(x))
        if not torch.is_tensor(x) or x.ndim not in (3, 4) or x.shape[-3] not in (1, 3):
            raise ConfigError(f"{self.name()} expects image tensors [N, C, H, W] with C = 1 or 3, "
                              f"got {getattr(x, 'shape', type(x).__name__)}")
        x = x[None] if x.ndim == 3 else x
        lo, hi = self.min_max
        return ((x.detach().float() - lo) / (hi - lo)).clamp(0, 1)

    def update(self, preds, gts=None):
        self.fake_feats.append(inception_features(self.net, self._unit(preds), self.batch_size))
        if gts is not None and self.real_dir is None:
            real = self._unit(gts)
            key = hashlib.sha256(real.cpu().numpy().tobytes() + str(tuple(real.shape)).encode()).hexdigest()
            if key not in self._memo:
                self._memo[key] = inception_features(self.net, real, self.batch_size)
            self._used.add(key)
            self.real_feats.append(self._memo[key])

    def _features(self):
        fake = _gather(self.fake_feats)
        if self.real_dir is not None:
            real, _ = folder_features(self.real_dir, self.net, self.weights_id, self.batch_size, self.cache)
        else:
            real = _gather(self.real_feats)
        return fake, real

    def accumulate(self):
        fake, real = self._features()
        if fake.shape[0] < 2 or real.shape[0] < 2:
            raise ConfigError(f"{self.name()} needs at least 2 generated and 2 real images, "
                              f"got {fake.shape[0]} and {real.shape[0]}")
        return frechet_distance_features(fake, real)

    def name(self):
        return "FID"


@METRICS.register()
class KID(FID):
    """Kernel Inception Distance (unbiased MMD^2, cubic polynomial kernel); lower is better.

    Same arguments as `FID`, plus `subsets` (default 100), `subset_size` (default 1000; smaller
    sets use all their images) and `seed` (of the subset draws, default 0).
    """

    def __init__(self, subsets=100, subset_size=1000, seed=0, **kwargs):
        if int(subsets) < 1 or int(subset_size) < 2:
            raise ConfigError(f"KID: subsets must be >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
        self.subsets, self.subset_size, self.seed = int(subsets), int(subset_size), seed
        super().__init__(**kwargs)

    def accumulate(self):
        fake, real = self._features()
        return kid(fake, real, self.subsets, self.subset_size, self.seed)

    def name(self):
        return "KID"

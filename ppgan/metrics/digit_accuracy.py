"""How often a digit classifier recognises a conditional generator's samples as the class
that was asked for: a quality measure for class-conditional GANs on the embedded digits.

The classifier is a small CNN trained on `DigitsDataset` images with a seed the GAN never
saw; `train_digit_classifier` reports its own held-out accuracy so the measure can be trusted.
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..utils.digits import digit_sample
from .builder import METRICS


class DigitClassifier(nn.Module):
    """[N, 1, S, S] in [-1, 1] -> 10 logits (S = 32 by default; any S divisible by 4)."""

    def __init__(self, size=32, width=32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(4 * width, 10))

    def forward(self, x):
        return self.head(self.features(x))


def _digits(n, size, seed):
    """The first `n` images of the embedded digits stream `seed` as [n, 1, size, size] in
    [-1, 1] and their labels (`i % 10`): what `DigitsDataset(n, size, seed=seed)` yields."""
    imgs = np.stack([digit_sample(i % 10, size, seed, i) for i in range(n)]).astype(np.float32)
    xs = torch.from_numpy((imgs - 127.5) / 127.5)[:, None]
    return xs, torch.arange(n, dtype=torch.int64) % 10


def train_digit_classifier(size=32, num_samples=12000, epochs=3, seed=1234, batch_size=128, log=None):
    """Train a DigitClassifier on fresh digits (seed `seed`); return (model, held-out accuracy)."""
    torch.manual_seed(seed)
    xs, ys = _digits(num_samples, size, seed)
    model = DigitClassifier(size)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps = epochs * (len(xs) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    model.train()
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        perm = torch.randperm(len(xs), generator=gen)
        for i in range(len(xs) // batch_size):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            x = xs[idx]
            x = x + 0.05 * torch.randn(x.shape, generator=gen)  # robustness to GAN texture
            loss = F.cross_entropy(model(x), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if log:
            log(f"classifier epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}")
    model.eval()
    tx, ty = _digits(1000, size, seed + 1)
    return model, classify_accuracy(model, tx, ty)


@torch.no_grad()
def classify_accuracy(model, images, labels):
    model.eval()
    pred = torch.cat([model(images[i:i + 256]).argmax(1) for i in range(0, len(images), 256)])
    return float((pred == labels).float().mean())


@METRICS.register()
class DigitAccuracy:
    """Metric: share of generated digits the classifier assigns to the requested class.

    update(fake [N, 1, S, S] in [-1, 1], class_id [N]); accumulate() -> accuracy in [0, 1].
    The classifier is trained at construction (about half a minute on a CPU)."""

    needs_class_id = True

    def __init__(self, size=32, num_samples=12000, epochs=3, seed=1234):
        self.model, self.classifier_accuracy = train_digit_classifier(size, num_samples, epochs, seed)
        self.reset()

    def reset(self):
        self.correct, self.total = 0, 0

    @torch.no_grad()
    def update(self, fake, class_id):
        pred = self.model(fake.float().cpu()).argmax(1)
        self.correct += int((pred == class_id.cpu()).sum())
        self.total += int(class_id.numel())

    def accumulate(self):
        return self.correct / max(1, self.total)

    def name(self):
        return "DigitAccuracy"


# ---- unconditional generators: how many samples are digits, and which -------------------------
# Mode coverage as in PacGAN (Lin et al., 2018, Table 1, after Metz et al.'s stacked-MNIST
# protocol): each sample is assigned the classifier's most likely class; a mode is covered when at
# least one sample lands in it, and the KL divergence of the class histogram from the uniform
# distribution (natural log) measures how evenly the modes are hit. With 10 modes and thousands of
# samples one stray sample covers a mode, so `mode_stats` also counts the modes that receive at
# least `min_share` of the samples, and repeats both figures for the confidently recognised samples
# only (max softmax probability >= `threshold`), which is the demo's measure.


def kl_to_uniform(counts):
    """KL(p || uniform) in nats for a class histogram `counts` (p = counts / sum); 0 terms drop.

    A histogram with all mass in one of K classes gives log K; an even one gives 0. An empty
    histogram gives log K too (nothing was generated in any mode)."""
    counts = np.asarray(counts, dtype=np.float64)
    k = counts.size
    total = counts.sum()
    if total <= 0:
        return float(np.log(k))
    p = counts[counts > 0] / total
    return float(np.sum(p * np.log(p * k)))


@torch.no_grad()
def classify_probs(model, images, batch_size=256):
    """Softmax class probabilities [N, 10] of images [N, 1, S, S] in [-1, 1] (on the CPU)."""
    model.eval()
    return torch.cat([F.softmax(model(images[i:i + batch_size].float().cpu()), 1)
                      for i in range(0, len(images), batch_size)])


def mode_stats(probs, threshold=0.9, min_share=0.01):
    """Mode coverage and quality figures of an unconditional generator's samples.

    Args:
        probs (Tensor | ndarray): [N, K] class probabilities of N samples (`classify_probs`).
        threshold (float): confidence from which a sample counts as a recognised digit.
        min_share (float): share of the samples a mode needs to count in `modes_min_share`.
    Returns:
        dict: n; recognised (share of samples with confidence >= threshold); counts (recognised
        samples per class); classes_present (classes with >= 1 recognised sample);
        kl_recognised (KL of the recognised histogram from uniform); counts_all (argmax class of
        every sample); modes_covered (classes with >= 1 sample, PacGAN's count); modes_min_share
        (classes with >= min_share of all samples); kl_all (KL of counts_all from uniform).
    """
    probs = torch.as_tensor(probs, dtype=torch.float64)
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise ValueError(f"probs must be [N, K] with N >= 1, got shape {tuple(probs.shape)}")
    k = probs.shape[1]
    conf, cls = probs.max(1)
    ok = conf >= threshold
    counts = np.bincount(cls[ok].numpy(), minlength=k)
    counts_all = np.bincount(cls.numpy(), minlength=k)
    n = int(probs.shape[0])
    return {"n": n, "threshold": float(threshold), "recognised": float(ok.double().mean()),
            "counts": counts.tolist(), "classes_present": int((counts > 0).sum()),
            "kl_recognised": kl_to_uniform(counts),
            "counts_all": counts_all.tolist(), "modes_covered": int((counts_all > 0).sum()),
            "min_share": float(min_share), "modes_min_share": int((counts_all >= min_share * n).sum()),
            "kl_all": kl_to_uniform(counts_all)}


@METRICS.register()
class DigitModes:
    """Metric for unconditional digit GANs: share of generated samples the digit classifier
    recognises with confidence >= `threshold` (accumulate() -> float in [0, 1]); `stats()`
    gives every figure of `mode_stats`. update(fake [N, 1, S, S] in [-1, 1], real) ignores real.
    The classifier is trained at construction (about half a minute on a CPU)."""

    def __init__(self, size=32, num_samples=12000, epochs=3, seed=1234, threshold=0.9):
        self.model, self.classifier_accuracy = train_digit_classifier(size, num_samples, epochs, seed)
        self.threshold = float(threshold)
        self.reset()

    def reset(self):
        self.probs = []

    @torch.no_grad()
    def update(self, fake, real=None):
        self.probs.append(classify_probs(self.model, fake[:, :1]))

    def stats(self):
        if not self.probs:
            return None
        return mode_stats(torch.cat(self.probs), self.threshold)

    def accumulate(self):
        s = self.stats()
        return s["recognised"] if s else 0.0

    def name(self):
        return "DigitModes"

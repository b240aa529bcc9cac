"""How often a digit classifier recognises a conditional generator's samples as the class
that was asked for: a quality measure for class-conditional GANs on the embedded digits.

The classifier is a small CNN trained on `DigitsDataset` images with a seed the GAN never
saw; `train_digit_classifier` reports its own held-out accuracy so the measure can be trusted.

The judge (defaults since issue 17): 30,000 digits for 6 epochs plus an 11th class, "not a
digit" (uniform and gaussian noise, flat grey, blurred blobs, random pen strokes: `not_digit_sample`).
The earlier judge (12,000 digits, 3 epochs, 10 classes) was 99 % accurate by argmax but gave
confidence >= 0.9 to only 84 % of held-out real digits, and to 82 % of uniform-noise images (a
confident "4"), so "recognised with confidence >= 0.9" said little about a generator. This one
gives it to 99.6 % of held-out real digits and to none of the noise images (measured by
`judge_report`). Its probabilities for the ten digits sum to 1 minus the "not a digit" share.

Training takes about two CPU-minutes; `train_digit_classifier(cache=True)` (the tools' default)
keeps the result under `$PPGAN_HOME/digit_classifier/`, keyed by every setting, so later runs load
it. The training is seeded, so a cached judge is the one a fresh run would train.
"""
import os

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..utils.digits import digit_sample
from .builder import METRICS

NOT_A_DIGIT = 10  # index of the reject class in a judge built with reject=True
JUDGE_VERSION = 2  # part of the cache key: bump when the classifier or its training data change
DEFAULT_SAMPLES, DEFAULT_EPOCHS = 30000, 6


class DigitClassifier(nn.Module):
    """[N, 1, S, S] in [-1, 1] -> 10 digit logits, plus an 11th "not a digit" logit with
    `reject=True` (S = 32 by default; any S divisible by 4)."""

    def __init__(self, size=32, width=32, reject=False):
        super().__init__()
        self.reject = bool(reject)
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(4 * width, 11 if reject else 10))

    def forward(self, x):
        return self.head(self.features(x))


def _digits(n, size, seed):
    """The first `n` images of the embedded digits stream `seed` as [n, 1, size, size] in
    [-1, 1] and their labels (`i % 10`): what `DigitsDataset(n, size, seed=seed)` yields."""
    imgs = np.stack([digit_sample(i % 10, size, seed, i) for i in range(n)]).astype(np.float32)
    xs = torch.from_numpy((imgs - 127.5) / 127.5)[:, None]
    return xs, torch.arange(n, dtype=torch.int64) % 10


def not_digit_sample(size, rng, kind=None):
    """One image that is no digit, [size, size] uint8 (white ink on black like the digits):
    kind 0 uniform noise, 1 gaussian noise around a random grey, 2 flat dark grey with a little
    noise, 3 one to five blurred discs, 4 one to three random pen strokes (open polylines of
    2-4 points). `kind` None draws one."""
    kind = int(rng.integers(5)) if kind is None else int(kind)
    if kind == 0:
        img = rng.uniform(0, 255, (size, size))
    elif kind == 1:
        img = rng.normal(rng.uniform(0, 128), rng.uniform(20, 90), (size, size))
    elif kind == 2:
        img = rng.uniform(0, 60) + rng.normal(0, 5, (size, size))
    elif kind == 3:
        img = np.zeros((size, size), np.float32)
        for _ in range(int(rng.integers(1, 6))):
            centre = tuple(int(v) for v in rng.integers(size // 8, size - size // 8, 2))
            cv2.circle(img, centre, int(rng.integers(max(1, size // 16), max(2, size // 3))),
                       float(rng.uniform(120, 255)), -1)
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 2.0) * size / 32)
    else:
        img = np.zeros((size, size), np.float32)
        for _ in range(int(rng.integers(1, 4))):
            pts = rng.integers(0, size, (int(rng.integers(2, 5)), 2)).astype(np.int32)
            cv2.polylines(img, [pts], False, float(rng.uniform(150, 255)),
                          max(1, int(round(rng.uniform(1, 4) * size / 32))), cv2.LINE_AA)
    return np.clip(img, 0, 255).astype(np.uint8)


def _not_digits(n, size, seed):
    """n "not a digit" images [n, 1, size, size] in [-1, 1], the kinds cycling."""
    rng = np.random.default_rng([seed, 7])
    imgs = np.stack([not_digit_sample(size, rng, i % 5) for i in range(n)]).astype(np.float32)
    return torch.from_numpy((imgs - 127.5) / 127.5)[:, None]


def _cache_path(size, num_samples, epochs, seed, batch_size, reject):
    from ..weights import cache_dir

    name = (f"digits-v{JUDGE_VERSION}-s{size}-n{num_samples}-e{epochs}-seed{seed}-b{batch_size}"
            f"{'-reject' if reject else ''}-torch{torch.__version__.split('+')[0]}.pth")
    return os.path.join(cache_dir(), "digit_classifier", name)


def _load_cached(path, size, reject):
    from ..weights import load_state_strict, read_torch

    try:
        state = read_torch(path)
        model = load_state_strict(DigitClassifier(size, reject=reject), state["state_dict"], path)
        return model.eval(), float(state["accuracy"])
    except Exception:  # a damaged or foreign file: train again (and replace it)
        return None


def train_digit_classifier(size=32, num_samples=DEFAULT_SAMPLES, epochs=DEFAULT_EPOCHS, seed=1234,
                           batch_size=128, log=None, reject=True, cache=False):
    """Train a DigitClassifier on fresh digits (seed `seed`); return (model, held-out accuracy).

    reject: add the "not a digit" class (`num_samples // 10` images of `not_digit_sample`).
    cache: load the judge from `$PPGAN_HOME/digit_classifier/` when one was trained with the same
    settings, else train and store it there (atomically)."""
    path = _cache_path(size, num_samples, epochs, seed, batch_size, reject) if cache else None
    if path and os.path.isfile(path):
        cached = _load_cached(path, size, reject)
        if cached is not None:
            if log:
                log(f"digit classifier loaded from {path}")
            return cached
    torch.manual_seed(seed)
    xs, ys = _digits(num_samples, size, seed)
    if reject:
        n_junk = max(1, num_samples // 10)
        xs = torch.cat([xs, _not_digits(n_junk, size, seed)])
        ys = torch.cat([ys, torch.full((n_junk,), NOT_A_DIGIT, dtype=torch.int64)])
    model = DigitClassifier(size, reject=reject)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps = max(1, epochs * (len(xs) // batch_size))
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
    accuracy = classify_accuracy(model, tx, ty)
    if path:
        from ..utils.io import atomic_path

        try:
            with atomic_path(path) as tmp:
                torch.save({"state_dict": model.state_dict(), "accuracy": accuracy}, tmp)
            message = f"digit classifier stored in {path}"
        except OSError as e:  # a read-only or full cache: the judge still works, it is just not kept
            message = f"digit classifier not stored in {path}: {e.strerror or e}"
        if log:
            log(message)
    return model, accuracy


def judge_report(model, size=32, threshold=0.9, n=1000, seed=4321):
    """What the judge does with images whose answer is known: the share of `n` held-out real
    digits it recognises (confidence >= threshold, the ceiling of a generator's score), its
    argmax accuracy on them, and the share of `n` uniform-noise images it calls a digit."""
    xs, ys = _digits(n, size, seed)
    probs = classify_probs(model, xs)
    conf, cls = probs.max(1)
    noise = torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return {"real_recognised": float((conf >= threshold).double().mean()),
            "real_accuracy": float((cls == ys).double().mean()),
            "noise_recognised": float((classify_probs(model, noise).max(1).values >= threshold).double().mean())}


@torch.no_grad()
def classify_accuracy(model, images, labels):
    model.eval()
    pred = torch.cat([model(images[i:i + 256]).argmax(1) for i in range(0, len(images), 256)])
    return float((pred == labels).float().mean())


@METRICS.register()
class DigitAccuracy:
    """Metric: share of generated digits the classifier assigns to the requested class.

    update(fake [N, 1, S, S] in [-1, 1], class_id [N]); accumulate() -> accuracy in [0, 1].
    The classifier is trained at construction (about two CPU-minutes with the defaults), or
    loaded from the cache when one with the same settings was trained before (`cache`)."""

    needs_class_id = True

    def __init__(self, size=32, num_samples=DEFAULT_SAMPLES, epochs=DEFAULT_EPOCHS, seed=1234, reject=True, cache=True):
        self.model, self.classifier_accuracy = train_digit_classifier(size, num_samples, epochs, seed,
                                                                      reject=reject, cache=cache)
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
    """Softmax probabilities of the ten digits [N, 10] of images [N, 1, S, S] in [-1, 1] (on the
    CPU). With a "not a digit" class a row sums to 1 minus that class's share."""
    model.eval()
    return torch.cat([F.softmax(model(images[i:i + batch_size].float().cpu()), 1)[:, :10]
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
    The classifier is trained at construction (about two CPU-minutes with the defaults), or
    loaded from the cache when one with the same settings was trained before (`cache`)."""

    def __init__(self, size=32, num_samples=DEFAULT_SAMPLES, epochs=DEFAULT_EPOCHS, seed=1234, threshold=0.9,
                 reject=True, cache=True):
        self.model, self.classifier_accuracy = train_digit_classifier(size, num_samples, epochs, seed,
                                                                      reject=reject, cache=cache)
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

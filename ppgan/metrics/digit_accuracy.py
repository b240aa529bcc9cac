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

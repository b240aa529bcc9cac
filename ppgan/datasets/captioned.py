"""Captioned embedded data for text -> image models (StackGAN): images drawn with the sentence
that describes them, no files needed.

`CaptionedDigitsDataset`: a digit 0-9 drawn in one of six colours, with a thin or thick pen,
slanted left, upright or slanted right, on a dark or light background, and a caption generated
from those attributes with varied templates and synonyms, e.g.
"a thin red seven slanted left on a dark background" or
"the number 7 in bold turquoise strokes, upright, over a pale background".

`CaptionedPhotosDataset`: crops of the colour photos shipped in scikit-image, described by
subject, zoom and region, e.g. "a close-up of the cat from the top left corner".

Sample `index` of a split is fully determined by (`seed`, split, `index`), drawn from
`numpy.random.default_rng([seed, split_id, index])`; the 'test' split (split_id 1) is a
held-out stream of new images and captions (for digits, a new draw of every attribute, pen
and placement; for photos, new crop positions). Batch keys are documented per class; the
token ids come from `ppgan.utils.text.get_vocabulary(vocabulary)`.
"""
import colorsys

import cv2
import numpy as np
import torch

from ..utils.digits import draw_glyph, place_glyph, render_size_for
from ..utils.errors import ConfigError
from ..utils.logger import progress
from ..utils.text import get_vocabulary
from .base_dataset import BaseDataset
from .builder import DATASETS
from .embedded_photos import load_photo

__all__ = ["CaptionedDigitsDataset", "CaptionedPhotosDataset", "COLOURS", "COLOUR_HUES", "DIGIT_WORDS",
           "digit_caption", "ink_to_grey", "judge_colour", "render_attributed_digit", "SPLITS"]

SPLITS = {"train": 0, "test": 1}

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# Six well-separated hues (degrees); tools/eval_stackgan.py judges a generated colour by the
# nearest of these hues, so chance is 1/6.
COLOURS = ("red", "yellow", "green", "cyan", "blue", "magenta")
COLOUR_HUES = (0.0, 60.0, 120.0, 180.0, 240.0, 300.0)
COLOUR_SYNONYMS = (("red", "crimson"), ("yellow", "golden"), ("green", "emerald"),
                   ("cyan", "turquoise"), ("blue", "navy"), ("magenta", "pink"))
STROKES = ("thin", "thick")
STROKE_SYNONYMS = (("thin", "slim", "fine"), ("thick", "bold", "heavy"))
SLANTS = ("left", "upright", "right")
SLANT_PHRASES = (("slanted left", "leaning left", "tilted to the left"),
                 ("upright", "standing straight", "straight up"),
                 ("slanted right", "leaning right", "tilted to the right"))
BACKGROUNDS = ("dark", "light")
BACKGROUND_SYNONYMS = (("dark", "black"), ("light", "white", "pale"))

# Hard negatives (`wrong_captions`): which attribute a wrong caption changes, and how often.
WRONG_ATTRIBUTES = ("digit", "colour", "background", "stroke", "slant")
WRONG_ATTRIBUTE_P = (0.5, 0.3, 0.1, 0.05, 0.05)
ATTRIBUTE_SIZES = {"digit": 10, "colour": len(COLOURS), "background": 2, "stroke": 2, "slant": 3}

# Rendering ranges (fractions of the drawing side unless stated).
PEN = ((0.035, 0.055), (0.10, 0.14))                  # thin, thick
SHEAR = ((0.30, 0.45), (-0.05, 0.05), (-0.45, -0.30))  # x += shear * (y - cy); y points down
GLYPH_HEIGHT = (0.58, 0.72)
ASPECT = (0.85, 1.1)
ROTATION_DEG = (-4.0, 4.0)
OFFSET = 0.05
BACKGROUND_LEVEL = ((0, 45), (195, 240))               # grey level of dark / light backgrounds
HUE_JITTER_DEG = 8.0
SATURATION = (0.8, 1.0)
VALUE = (0.85, 1.0)
NOISE_SIGMA = (0.0, 4.0)
# Upright faces only (the slant is an attribute); script faces are too hard to read at 16 px.
FACES = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX)


def render_attributed_digit(digit, size, rng, stroke, slant):
    """Draw one digit as an ink mask with a given pen and slant.

    Args:
        digit (int): 0-9.
        size (int): output side in pixels.
        rng (np.random.Generator): source of the face, exact pen, shear, height and placement.
        stroke (int): 0 thin, 1 thick.
        slant (int): 0 left (top leans left), 1 upright, 2 right (top leans right, like italics).

    Returns:
        np.ndarray: [size, size] float32 ink coverage in [0, 1].
    """
    big = render_size_for(size)
    font = FACES[rng.integers(len(FACES))]
    text = str(int(digit))
    height = big * rng.uniform(*GLYPH_HEIGHT)
    thickness = max(1, int(round(big * rng.uniform(*PEN[stroke]))))
    canvas, box = draw_glyph(text, font, height, thickness, big)

    # ink box centre -> image centre (+ offset), scaled to the glyph height, sheared, rotated a little
    shear = rng.uniform(*SHEAR[slant])
    theta = np.deg2rad(rng.uniform(*ROTATION_DEG))
    aspect = rng.uniform(*ASPECT)
    img = place_glyph(canvas, box, height, aspect, shear, theta, rng.uniform(-OFFSET, OFFSET, size=2), big)
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return img.astype(np.float32) / 255.0


def colour_rgb(colour, rng):
    """A jittered RGB (floats 0-255) of colour index `colour`."""
    hue = (COLOUR_HUES[colour] + rng.uniform(-HUE_JITTER_DEG, HUE_JITTER_DEG)) % 360.0
    r, g, b = colorsys.hsv_to_rgb(hue / 360.0, rng.uniform(*SATURATION), rng.uniform(*VALUE))
    return np.array([r, g, b], np.float32) * 255.0


def digit_caption(digit, colour, stroke, slant, background, rng):
    """One sentence describing the attributes (template, synonyms and numeral vs word from `rng`).

    Args:
        digit (int): 0-9. colour (int): index in COLOURS. stroke (int): 0 thin, 1 thick.
        slant (int): 0 left, 1 upright, 2 right. background (int): 0 dark, 1 light.
        rng (np.random.Generator)

    Returns:
        str: e.g. "a thin red seven slanted left on a dark background".
    """
    def pick(options):
        return options[rng.integers(len(options))]

    d = str(digit) if rng.random() < 0.25 else DIGIT_WORDS[digit]
    c = pick(COLOUR_SYNONYMS[colour])
    s = pick(STROKE_SYNONYMS[stroke])
    sl = pick(SLANT_PHRASES[slant])
    b = pick(BACKGROUND_SYNONYMS[background])
    template = rng.integers(5)
    if template == 0:
        text = f"a {s} {c} {d} {sl} on a {b} background"
    elif template == 1:
        text = f"{d} written in {c} with a {s} stroke, {sl}, on a {b} background"
    elif template == 2:
        text = f"a {c} {d} on a {b} background, {s} and {sl}"
    elif template == 3:
        text = f"the {pick(('digit', 'number'))} {d} in {s} {c} strokes, {sl}, over a {b} background"
    else:
        text = f"{b} background with a {s} {c} {d} {sl}"
    # 'a' -> 'an' before a vowel sound ("an eight", "an emerald")
    words = text.split(" ")
    for i in range(len(words) - 1):
        if words[i] == "a" and words[i + 1][0] in "aeiou8" and words[i + 1] != "one":
            words[i] = "an"
    return " ".join(words)


class _CaptionedBase(BaseDataset):
    """Shared checks, split handling, caching and tokenisation."""

    def __init__(self, num_samples, size, split, seed, vocabulary, max_length, cache, min_size):
        if int(num_samples) < 1:
            raise ConfigError(f"{type(self).__name__} num_samples must be >= 1, got {num_samples}")
        if int(size) < min_size:
            raise ConfigError(f"{type(self).__name__} size must be >= {min_size}, got {size}")
        if split not in SPLITS:
            raise ConfigError(f"{type(self).__name__} split must be one of {', '.join(SPLITS)}, got {split!r}")
        if int(seed) < 0:
            raise ConfigError(f"{type(self).__name__} seed must be >= 0, got {seed}")
        if int(max_length) < 4:
            raise ConfigError(f"{type(self).__name__} max_length must be >= 4, got {max_length}")
        self.num_samples = int(num_samples)
        self.size = self.resolution = int(size)
        self.split = split
        self.seed = int(seed)
        self.vocab = get_vocabulary(vocabulary)
        self.vocab_size = len(self.vocab)
        self.max_length = int(max_length)
        self._cache = None
        if cache:
            what = f"rendering {self.num_samples} captioned images ({self.size}x{self.size})"
            self._cache = [self._draw(i) for i in progress(range(self.num_samples), self.num_samples, what,
                                                           unit="img")]

    def __len__(self):
        return self.num_samples

    def _rng(self, index):
        return np.random.default_rng([self.seed, SPLITS[self.split], index])

    def draw(self, index):
        """(image [H, W, 3] uint8 RGB, caption str, attributes dict of ints) of sample `index`."""
        if self._cache is not None:
            return self._cache[index]
        return self._draw(index)

    def _draw(self, index):
        raise NotImplementedError

    def get_item(self, index, rng):
        img, caption, attrs = self.draw(index)
        ids = self.vocab.encode(caption)[:self.max_length]
        tokens = torch.zeros(self.max_length, dtype=torch.int64)
        tokens[:len(ids)] = torch.tensor(ids, dtype=torch.int64)
        t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float() / 127.5 - 1.0
        assert t.shape == (3, self.size, self.size), f"bad image {tuple(t.shape)}"
        sample = {"img": t, "tokens": tokens, "length": torch.tensor(len(ids), dtype=torch.int64),
                  "caption": caption}
        sample.update({k: torch.tensor(v, dtype=torch.int64) for k, v in attrs.items()})
        if getattr(self, "wrong_captions", False):
            wrong = self.wrong_caption(index, attrs)
            ids = self.vocab.encode(wrong)[:self.max_length]
            sample["wrong_tokens"] = torch.zeros(self.max_length, dtype=torch.int64)
            sample["wrong_tokens"][:len(ids)] = torch.tensor(ids, dtype=torch.int64)
            sample["wrong_length"] = torch.tensor(len(ids), dtype=torch.int64)
            sample["wrong_caption"] = wrong
        return sample

    def wrong_caption(self, index, attrs):
        raise NotImplementedError


@DATASETS.register("captioned_digits")
class CaptionedDigitsDataset(_CaptionedBase):
    """Coloured digits with a generated caption (text -> image demo data; no files).

    The digit of sample `index` is `index % 10` (balanced); colour, pen, slant and background are
    drawn uniformly from the sample's own generator, as are the caption's template and synonyms.

    Args:
        num_samples (int): dataset length. Default: 10000.
        size (int): image side (the model's final stage, e.g. 64 or 128), >= 16. Default: 64.
        split (str): 'train' or 'test' (a held-out stream of images and captions). Default: 'train'.
        seed (int): non-negative seed. Default: 0.
        vocabulary (str): the tokenizer's built-in vocabulary. Default: 'digits'.
        max_length (int): L, tokens per caption (pad 0; the generated captions have <= 16 words).
            Default: 16.
        cache (bool): draw every sample once when built and keep it in memory. Default: False.
        wrong_captions (bool): add a hard negative per sample: a caption that contradicts the
            image in exactly one attribute (see `wrong_caption`). Default: False.

    Sample dict:
        img (Tensor): float32 [3, H, W] RGB in [-1, 1].
        tokens (Tensor): int64 [L] word ids (pad 0, unknown 1). length (Tensor): int64, words in 1..L.
        caption (str): the sentence.
        digit (Tensor): int64 0-9. colour (Tensor): int64 index in COLOURS.
        stroke (Tensor): int64 0 thin, 1 thick. slant (Tensor): int64 0 left, 1 upright, 2 right.
        background (Tensor): int64 0 dark, 1 light.
        wrong_tokens (Tensor), wrong_length (Tensor), wrong_caption (str): the hard negative, as
            tokens / length / caption (only with `wrong_captions`).

    Attributes:
        resolution (int): `size`. vocab_size (int): len(vocabulary). max_length (int): L.
    """

    def __init__(self, num_samples=10000, size=64, split="train", seed=0, vocabulary="digits", max_length=16,
                 cache=False, wrong_captions=False):
        self.wrong_captions = bool(wrong_captions)
        super().__init__(num_samples, size, split, seed, vocabulary, max_length, cache, min_size=16)

    def wrong_caption(self, index, attrs):
        """A caption that contradicts sample `index` in exactly one attribute (the digit with
        probability 0.5, the colour 0.3, the background 0.1, pen or slant 0.05 each), from its own
        stream `[seed, split, index, 1]`: a hard negative for a matching-aware discriminator."""
        rng = np.random.default_rng([self.seed, SPLITS[self.split], index, 1])
        key = WRONG_ATTRIBUTES[rng.choice(len(WRONG_ATTRIBUTES), p=WRONG_ATTRIBUTE_P)]
        wrong = dict(attrs)
        wrong[key] = (attrs[key] + 1 + int(rng.integers(ATTRIBUTE_SIZES[key] - 1))) % ATTRIBUTE_SIZES[key]
        return digit_caption(rng=rng, **wrong)

    def _draw(self, index):
        rng = self._rng(index)
        attrs = {"digit": index % 10, "colour": int(rng.integers(len(COLOURS))),
                 "stroke": int(rng.integers(2)), "slant": int(rng.integers(3)), "background": int(rng.integers(2))}
        caption = digit_caption(rng=rng, **attrs)
        mask = render_attributed_digit(attrs["digit"], self.size, rng, attrs["stroke"], attrs["slant"])[..., None]
        bg = np.full(3, rng.uniform(*BACKGROUND_LEVEL[attrs["background"]]), np.float32)
        ink = colour_rgb(attrs["colour"], rng)
        img = mask * (ink - bg)                     # bg * (1 - mask) + ink * mask, in place
        img += bg
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(*NOISE_SIGMA))
        img += 0.5
        np.clip(img, 0, 255, out=img)
        return img.astype(np.uint8), caption, attrs


# (scikit-image photo, subject phrases); all ship with scikit-image (no download).
PHOTOS = (
    ("astronaut", ("the astronaut",)),
    ("chelsea", ("the cat",)),
    ("coffee", ("the coffee cup", "the coffee")),
    ("rocket", ("the rocket",)),
    ("hubble_deep_field", ("galaxies in space", "the galaxies")),
    ("immunohistochemistry", ("the cells", "the tissue")),
    ("retina", ("the retina", "the eye")),
)
REGIONS = ("top left", "top right", "centre", "bottom left", "bottom right")
REGION_CENTRES = ((0.25, 0.25), (0.75, 0.25), (0.5, 0.5), (0.25, 0.75), (0.75, 0.75))  # (x, y) fractions
ZOOMS = ("close", "wide")
ZOOM_SIDE = ((0.25, 0.35), (0.5, 0.6))  # crop side as a fraction of the photo's shorter side
REGION_JITTER = 0.06
PHOTO_SCALE = 0.5


@DATASETS.register("captioned_photos")
class CaptionedPhotosDataset(_CaptionedBase):
    """Crops of scikit-image colour photos with a caption naming subject, zoom and region.

    Args:
        num_samples (int): dataset length. Default: 2000.
        size (int): crop side after resizing, >= 16. Default: 64.
        split (str): 'train' or 'test' (held-out crop positions). Default: 'train'.
        seed (int): non-negative seed. Default: 0.
        vocabulary (str): Default: 'photos'.
        max_length (int): L. Default: 16.
        cache (bool): Default: False.

    Sample dict:
        img, tokens, length, caption: as CaptionedDigitsDataset.
        photo (Tensor): int64 index in PHOTOS. region (Tensor): int64 index in REGIONS.
        zoom (Tensor): int64 0 close-up, 1 wide view.
    """

    def __init__(self, num_samples=2000, size=64, split="train", seed=0, vocabulary="photos", max_length=16,
                 cache=False):
        self.photos = [load_photo(name, PHOTO_SCALE) for name, _ in PHOTOS]
        super().__init__(num_samples, size, split, seed, vocabulary, max_length, cache, min_size=16)

    def _draw(self, index):
        rng = self._rng(index)
        attrs = {"photo": index % len(PHOTOS), "region": int(rng.integers(len(REGIONS))),
                 "zoom": int(rng.integers(len(ZOOMS)))}
        photo = self.photos[attrs["photo"]]
        h, w = photo.shape[:2]
        side = int(min(h, w) * rng.uniform(*ZOOM_SIDE[attrs["zoom"]]))
        cx, cy = REGION_CENTRES[attrs["region"]]
        cx = (cx + rng.uniform(-REGION_JITTER, REGION_JITTER)) * w
        cy = (cy + rng.uniform(-REGION_JITTER, REGION_JITTER)) * h
        x0 = int(np.clip(cx - side / 2, 0, w - side))
        y0 = int(np.clip(cy - side / 2, 0, h - side))
        crop = cv2.resize(photo[y0:y0 + side, x0:x0 + side], (self.size, self.size), interpolation=cv2.INTER_AREA)

        subject = PHOTOS[attrs["photo"]][1][rng.integers(len(PHOTOS[attrs["photo"]][1]))]
        region = REGIONS[attrs["region"]]
        where = f"in the {region}" if region == "centre" else f"from the {region} corner"
        if attrs["zoom"] == 0:
            head = ("a close-up of", "a close crop of", "a detail of")[rng.integers(3)]
        else:
            head = ("a wide view of", "a wide crop of")[rng.integers(2)]
        caption = f"{head} {subject} {where}" if rng.random() < 0.5 else f"{head} {subject}, {where}"
        return np.ascontiguousarray(crop), caption, attrs


# ---- judging an image against a caption (used by tools/eval_stackgan.py) -------------------------
# The inverse of the digit renderer above: estimate the background colour from the image border,
# call "ink" whatever is far from it, and read the digit shape (as a white-on-black grey image for
# the digit classifier of ppgan.metrics.digit_accuracy) and the ink's hue.
INK_FRACTION = 0.5   # ink = pixels at least this share of the largest distance from the background
MIN_SATURATION = 0.2  # grey ink has no hue: judged "no colour" (index -1), never a match


def _as_uint8_images(images):
    """[N, 3, H, W] tensor in [-1, 1] or [N, H, W, 3] uint8 array -> float32 [N, H, W, 3] in 0-255."""
    if isinstance(images, torch.Tensor):
        arr = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).permute(0, 2, 3, 1).numpy()
    else:
        arr = np.asarray(images, dtype=np.float32)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"expected RGB images [N, 3, H, W] or [N, H, W, 3], got {tuple(arr.shape)}")
    return arr


def ink_distance(images):
    """Per-pixel colour distance from each image's background (median of its 2-pixel border).

    Args:
        images (Tensor | np.ndarray): [N, 3, H, W] in [-1, 1] or [N, H, W, 3] uint8 RGB.

    Returns:
        tuple[np.ndarray, np.ndarray]: distances float32 [N, H, W] and backgrounds float32 [N, 3].
    """
    arr = _as_uint8_images(images)
    b = 2
    border = np.concatenate([arr[:, :b].reshape(len(arr), -1, 3), arr[:, -b:].reshape(len(arr), -1, 3),
                             arr[:, b:-b, :b].reshape(len(arr), -1, 3), arr[:, b:-b, -b:].reshape(len(arr), -1, 3)],
                            axis=1)
    bg = np.median(border, axis=1).astype(np.float32)
    return np.linalg.norm(arr - bg[:, None, None, :], axis=-1), bg


def ink_to_grey(images, size=32):
    """Coloured digits -> white-on-black grey digits [N, 1, size, size] in [-1, 1], the input of
    `ppgan.metrics.digit_accuracy.DigitClassifier` (ink distance scaled so its 99th percentile is 230,
    then an area resize)."""
    dist, _ = ink_distance(images)
    out = np.empty((len(dist), size, size), np.float32)
    for i, d in enumerate(dist):
        top = max(float(np.percentile(d, 99)), 1e-3)
        grey = np.clip(d * (230.0 / top), 0, 255)
        out[i] = cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(out[:, None] / 127.5 - 1.0)


def judge_colour(images):
    """The caption colour each image shows: a vote of its ink pixels (pixels at least INK_FRACTION of
    the largest distance from the background), each saturated one voting for the nearest of the six
    COLOUR_HUES with its distance as weight; index in COLOURS of the winner, or -1 when less than
    half of the ink weight is saturated (grey ink, saturation < MIN_SATURATION) or there is no ink.
    A vote rather than the mean colour: a red-and-green blob is not yellow.

    Args:
        images (Tensor | np.ndarray): [N, 3, H, W] in [-1, 1] or [N, H, W, 3] uint8 RGB.

    Returns:
        np.ndarray: int64 [N].
    """
    arr = _as_uint8_images(images)
    dist, _ = ink_distance(arr)
    hues = np.asarray(COLOUR_HUES, np.float32)
    out = np.full(len(arr), -1, np.int64)
    for i in range(len(arr)):
        top = dist[i].max()
        if top < 1e-3:
            continue
        sel = dist[i] >= INK_FRACTION * top
        hsv = cv2.cvtColor(arr[i][sel][None] / 255.0, cv2.COLOR_RGB2HSV)[0]  # float: H in degrees, S in 0-1
        weight = dist[i][sel]
        saturated = hsv[:, 1] >= MIN_SATURATION
        if weight[saturated].sum() < 0.5 * weight.sum():
            continue
        gap = np.abs((hsv[saturated, 0:1] - hues[None] + 180.0) % 360.0 - 180.0)  # [P, 6] hue distances
        votes = np.bincount(gap.argmin(1), weights=weight[saturated], minlength=len(hues))
        out[i] = int(votes.argmax())
    return out

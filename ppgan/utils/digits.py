"""Digits 0-9 drawn with OpenCV's Hershey fonts, no files needed (the embedded `digits`
dataset of `ppgan.datasets.digits` and the `DigitAccuracy` classifier both draw from here).

Each image is generated on demand from `numpy.random.default_rng([seed, index])`, so image
`index` is the same in every run, worker and process for a given `seed`; the `rng` handed to
`get_item` drives only the configured augmentation transforms. The label of image `index` is
`classes[index % len(classes)]`, which keeps the classes exactly balanced.

Rendering, at `render_size` (>= 128 px, a multiple of `size`), then downscaled:
  1. `cv2.putText` with a random Hershey face (italic for the faces that have one),
     stroke thickness and glyph height;
  2. one affine warp that centres the ink box and applies a random height, aspect ratio,
     rotation, shear and offset, then a smooth random displacement field (pen wobble);
  3. `cv2.INTER_AREA` downscale (anti-aliasing), random stroke brightness, gaussian blur
     and gaussian pixel noise.
Digits are white on black. About 0.3 ms per image on one CPU core.
"""
import cv2
import numpy as np

# (font face, italic flag) pairs; FONT_ITALIC changes only COMPLEX and TRIPLEX.
HERSHEY_FACES = (
    (cv2.FONT_HERSHEY_SIMPLEX, 0),
    (cv2.FONT_HERSHEY_PLAIN, 0),
    (cv2.FONT_HERSHEY_DUPLEX, 0),
    (cv2.FONT_HERSHEY_COMPLEX, 0),
    (cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_ITALIC),
    (cv2.FONT_HERSHEY_TRIPLEX, 0),
    (cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_ITALIC),
    (cv2.FONT_HERSHEY_COMPLEX_SMALL, 0),
    (cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 0),
    (cv2.FONT_HERSHEY_SCRIPT_COMPLEX, 0),
)

# Ranges of the random draws, as fractions of the image side unless stated.
GLYPH_HEIGHT = (0.56, 0.78)
STROKE = (0.05, 0.11)        # pen thickness
ASPECT = (0.8, 1.15)         # width scale relative to height scale
ROTATION_DEG = (-14.0, 14.0)
SHEAR = (-0.22, 0.22)        # x += shear * y
OFFSET = 0.07                # centre offset, each axis
WOBBLE = 0.025               # amplitude of the smooth displacement field
BRIGHTNESS = (190, 255)      # stroke grey level
BLUR_SIGMA = (0.0, 0.022)
NOISE_SIGMA = (0.0, 10.0)    # in grey levels


def render_size_for(size):
    """The side the digits are drawn at before the anti-aliased downscale to `size`."""
    return size * max(2, -(-128 // size))


def draw_glyph(text, font, height, thickness, big):
    """Draw `text` in OpenCV font `font`, about `height` px tall with pen `thickness`, centred on a
    2*big square canvas. Returns (canvas uint8 [2*big, 2*big], ink box (x, y, w, h))."""
    (w1, h1), _ = cv2.getTextSize(text, font, 1.0, 1)
    scale = height / max(h1, 1)
    side = 2 * big
    canvas = np.zeros((side, side), np.uint8)
    org = (int(side / 2 - w1 * scale / 2), int(side / 2 + height / 2))
    cv2.putText(canvas, text, org, font, scale, 255, thickness, cv2.LINE_AA)
    return canvas, cv2.boundingRect(canvas)


def place_glyph(canvas, box, height, aspect, shear, theta, offset, big):
    """Warp the ink box `box` of `canvas` onto a big x big image: its height scaled to `height`,
    its width by `aspect` more, sheared (x += shear * y), rotated by `theta` radians, its centre
    at the image centre + `offset` (two fractions of `big`). Returns uint8 [big, big]."""
    x, y, w, h = box
    s = height / max(h, 1)
    cos, sin = np.cos(theta), np.sin(theta)
    linear = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([s * aspect, s])
    src_centre = np.array([x + w / 2, y + h / 2])
    dst_centre = big / 2 + big * offset
    matrix = np.hstack([linear, (dst_centre - linear @ src_centre)[:, None]]).astype(np.float32)
    return cv2.warpAffine(canvas, matrix, (big, big), flags=cv2.INTER_LINEAR, borderValue=0)


def render_digit(digit, size, rng):
    """Draw one digit.

    Args:
        digit (int): 0-9.
        size (int): output side in pixels.
        rng (np.random.Generator): source of every random choice.

    Returns:
        np.ndarray: [size, size] uint8, white digit on black.
    """
    big = render_size_for(size)
    face, italic = HERSHEY_FACES[rng.integers(len(HERSHEY_FACES))]
    font = face | italic
    text = str(int(digit))

    # 1. draw roughly at the target height on a canvas with room to spare
    height = big * rng.uniform(*GLYPH_HEIGHT)
    thickness = max(1, int(round(big * rng.uniform(*STROKE))))
    canvas, box = draw_glyph(text, font, height, thickness, big)

    # 2. ink box centre -> image centre + offset, with height, aspect, shear and rotation
    aspect = rng.uniform(*ASPECT)
    shear = rng.uniform(*SHEAR)
    theta = np.deg2rad(rng.uniform(*ROTATION_DEG))
    img = place_glyph(canvas, box, height, aspect, shear, theta, rng.uniform(-OFFSET, OFFSET, size=2), big)

    # smooth wobble: a 4x4 random displacement field upsampled to the full image
    field = rng.normal(0.0, WOBBLE * big, size=(4, 4, 2)).astype(np.float32)
    field = cv2.resize(field, (big, big), interpolation=cv2.INTER_CUBIC)
    grid = np.arange(big, dtype=np.float32)
    map_x = field[..., 0] + grid[None, :]
    map_y = field[..., 1] + grid[:, None]
    img = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderValue=0)

    # 3. anti-aliased downscale, brightness, blur, noise
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    img *= rng.uniform(*BRIGHTNESS) / 255.0
    sigma = size * rng.uniform(*BLUR_SIGMA)
    if sigma > 0.25:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img += rng.normal(0.0, rng.uniform(*NOISE_SIGMA), size=img.shape).astype(np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def digit_sample(digit, size, seed, index):
    """Image `index` of the stream `seed`: [size, size] uint8, identical in every process."""
    return render_digit(digit, size, np.random.default_rng([seed, index]))


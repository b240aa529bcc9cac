"""Face alignment from five landmarks, and pasting a processed crop back.

`align_face(image, landmarks, size, template)` warps a face onto a square crop through the
similarity transform (rotation, uniform scale, translation) that best maps its five landmarks
(`LANDMARK_NAMES` order) onto a template, and returns the crop with the 2x3 image -> crop matrix;
`paste_back(image, crop, M, mask)` warps a processed crop back through the inverse and blends it
in with a feathered mask, leaving every pixel outside the mask exactly as it was.

Templates:
* 'ffhq': the FFHQ / GFPGAN-style five-point template (given for 512 px, scaled to `size`).
* 'p2c': PaddleGAN's photo2cartoon crop (`dlibutils/face_align.py`: rotate so the eyes are level,
  take the box of the 68 dlib landmarks, grow it 0.8 up, 0.3 down and 0.3 sideways, square it)
  rebuilt for five points: the 68-point box is placed where it lies in a mean face (below).
* 'fom': PaddleGAN's First Order Motion crop (`first_order_predictor.extract_bbox`): no rotation;
  around the detection box's centre, 1.6 x 2 times its larger side, clipped to the image and
  resized to `size` x `size`.
"""
import math

import cv2
import numpy as np

from ..utils.errors import ConfigError
from .masks import feather_mask

TEMPLATES = ("ffhq", "p2c", "fom")

# Five points of the FFHQ-aligned 512x512 face (as used by GFPGAN / facexlib for 512 crops).
FFHQ_512 = np.array([[192.98138, 239.94708], [318.90277, 240.19360], [256.63416, 314.01935],
                     [201.26117, 371.41043], [313.08905, 371.15118]], np.float64)

# A mean 68-point dlib face (OpenFace's template), expressed with the eye centres at (-0.5, 0)
# and (0.5, 0) (x right, y down, unit = eye distance), gives the five points and the box of the
# 68 landmarks that PaddleGAN's photo2cartoon crop is built from (made left/right symmetric).
MEAN_FACE_5 = np.array([[-0.5, 0.0], [0.5, 0.0], [0.0, 0.5946], [-0.4528, 1.0907], [0.4528, 1.0907]], np.float64)
MEAN_FACE_68_BOX = (-1.1661, -0.3640, 1.1661, 1.9222)  # x1, y1, x2, y2 in the same units


def similarity_transform(src_pts, dst_pts):
    """The 2x3 similarity (rotation, uniform scale, translation; no reflection) that maps
    `src_pts` onto `dst_pts` with the least squared error (Umeyama 1991).

    Args:
        src_pts, dst_pts (array [N, 2]): N >= 2 corresponding points.
    Returns:
        np.ndarray: float64 [2, 3] matrix M with dst ~= src @ M[:, :2].T + M[:, 2].
    Raises:
        ConfigError: shapes differ, fewer than two points, or the source points coincide.
    """
    src, dst = np.asarray(src_pts, np.float64), np.asarray(dst_pts, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ConfigError(f"similarity_transform needs two [N, 2] point sets with N >= 2; got "
                          f"{list(src.shape)} and {list(dst.shape)}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ConfigError("similarity_transform: the points are not finite")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = (s0 ** 2).sum() / len(src)
    if var_s < 1e-12:
        raise ConfigError("similarity_transform: the source points all coincide")
    cov = d0.T @ s0 / len(src)  # [2, 2]
    u, sig, vt = np.linalg.svd(cov)
    fix = np.diag([1.0, -1.0 if np.linalg.det(u) * np.linalg.det(vt) < 0 else 1.0])  # no reflection
    rot = u @ fix @ vt
    scale = (sig * np.diag(fix)).sum() / var_s
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def transform_points(points, M):
    """Apply a 2x3 affine matrix to [N, 2] points."""
    p = np.asarray(points, np.float64)
    M = np.asarray(M, np.float64)
    return p @ M[:, :2].T + M[:, 2]


def _p2c_square(x1, y1, x2, y2):
    """PaddleGAN's photo2cartoon crop of a landmark box: 0.8 of its height up, 0.3 down, 0.3 of
    its width each side, then squared around the centre of the longer side. -> (x, y, side)."""
    h, w = y2 - y1, x2 - x1
    top, bottom = y1 - 0.8 * h, y2 + 0.3 * h
    left, right = x1 - 0.3 * w, x2 + 0.3 * w
    side = max(bottom - top, right - left)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    return cx - side / 2, cy - side / 2, side


def template_points(template="ffhq", size=256, scale=1.0):
    """The five template points [5, 2] of a `size` x `size` crop ('ffhq' or 'p2c').

    `scale` > 1 shows more around the face (points drawn towards the centre by 1 / scale)."""
    if template == "ffhq":
        pts = FFHQ_512 * (size / 512.0)
    elif template == "p2c":
        x, y, side = _p2c_square(*MEAN_FACE_68_BOX)
        pts = (MEAN_FACE_5 - [x, y]) * (size / side)
    else:
        raise ConfigError(f"template must be one of {', '.join(t for t in TEMPLATES if t != 'fom')} "
                          f"for template points; got {template!r}")
    c = size / 2.0
    return c + (pts - c) / float(scale)


def fom_box(box, image_shape=None, scale=1.0):
    """PaddleGAN's First Order Motion crop of a detection box (x1, y1, x2, y2): centred on the box,
    0.8 x `scale` of its larger side to the left and right, 1 x to the top and bottom, in whole
    pixels, clipped to the image when `image_shape` is given. -> (x1, y1, x2, y2) ints."""
    x1, y1, x2, y2 = (int(v) for v in box)
    bh, bw = y2 - y1, x2 - x1
    cy, cx = y1 + int(bh / 2), x1 + int(bw / 2)
    margin = max(bh, bw) * scale
    out = [cx - int(0.8 * margin), cy - int(margin), cx + int(0.8 * margin), cy + int(margin)]
    if image_shape is not None:
        h, w = image_shape[:2]
        out = [max(0, out[0]), max(0, out[1]), min(w, out[2]), min(h, out[3])]
    return tuple(out)


def _box_matrix(x1, y1, x2, y2, size):
    """The 2x3 matrix taking the image region [x1, x2) x [y1, y2) to a size x size crop as
    `cv2.resize` of that region does (pixel centres aligned)."""
    sx, sy = size / max(x2 - x1, 1e-6), size / max(y2 - y1, 1e-6)
    return np.array([[sx, 0.0, (0.5 - x1) * sx - 0.5], [0.0, sy, (0.5 - y1) * sy - 0.5]])


def _matrix_without_landmarks(box, size, template, scale):
    """A crop with no rotation from the detection box alone (detectors without landmarks)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if template == "p2c":  # PaddleGAN's rule, applied to the face box instead of the landmarks' box
        x, y, side = _p2c_square(x1, y1, x2, y2)
    else:  # an FFHQ crop holds the face box about 1.8 times over
        side = 1.8 * max(x2 - x1, y2 - y1)
        x, y = (x1 + x2 - side) / 2, (y1 + y2 - side) / 2
    cx, cy = x + side / 2, y + side / 2
    side *= scale
    return _box_matrix(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2, size)


def _default_border(template):
    return (255, 255, 255) if template == "p2c" else (0, 0, 0)  # PaddleGAN fills p2c crops white


def warp(image, M, size, border_value=0):
    """`image` warped by the 2x3 matrix `M` onto a `size` x `size` (or (w, h)) canvas, bilinear;
    when `M` shrinks by more than 2, the image is first reduced by area averaging (no aliasing)."""
    w, h = (size, size) if np.isscalar(size) else size
    M = np.asarray(M, np.float64)
    shrink = math.sqrt(abs(np.linalg.det(M[:, :2])))
    src = image
    if shrink < 0.5:
        k = 2.0 * shrink
        ih, iw = image.shape[:2]
        nw, nh = max(1, round(iw * k)), max(1, round(ih * k))
        src = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        kx, ky = nw / iw, nh / ih  # new pixel = (old + 0.5) * k - 0.5
        undo = np.array([[1 / kx, 0, 0.5 / kx - 0.5], [0, 1 / ky, 0.5 / ky - 0.5], [0, 0, 1]])
        M = M @ undo
    if np.ndim(border_value) == 0:
        border_value = (border_value,) * 3
    return cv2.warpAffine(src, M, (int(w), int(h)), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=tuple(float(v) for v in border_value))


def align_face(image, landmarks, size=256, template="ffhq", scale=1.0, box=None, border_value=None):
    """Crop one face to `size` x `size`.

    Args:
        image (np.ndarray): HxWx3 (or HxW) image.
        landmarks (array [5, 2] | None): the face's five points in `LANDMARK_NAMES` order; with
            None the crop is taken, unrotated, from `box`.
        size (int): the crop's side in pixels.
        template (str): 'ffhq', 'p2c' or 'fom' (see the module docstring); 'fom' uses `box` only
            (or, without one, the box around the landmarks).
        scale (float): > 1 shows more around the face, < 1 less.
        box (array [4] | None): the detection box x1, y1, x2, y2 (needed for 'fom' and when
            `landmarks` is None).
        border_value (number | tuple | None): fill outside the image; None: white for 'p2c'
            (PaddleGAN's), black otherwise.
    Returns:
        (crop, M): the crop (image's dtype), and the float64 [2, 3] image -> crop matrix
        (`paste_back` takes it).
    """
    if template not in TEMPLATES:
        raise ConfigError(f"template must be one of {', '.join(TEMPLATES)}; got {template!r}")
    if not (isinstance(size, (int, np.integer)) and size > 0):
        raise ConfigError(f"crop size must be a positive integer; got {size!r}")
    if not scale > 0:
        raise ConfigError(f"scale must be > 0; got {scale!r}")
    if template == "fom" or landmarks is None:
        if box is None:
            if landmarks is None:
                raise ConfigError(f"align_face: template {template!r} needs a box when there are no landmarks")
            pts = np.asarray(landmarks, np.float64).reshape(-1, 2)
            box = (*pts.min(0), *pts.max(0))
        if template == "fom":
            M = _box_matrix(*fom_box(box, image.shape, scale), size)
        else:
            M = _matrix_without_landmarks(box, size, template, scale)
    else:
        M = similarity_transform(np.asarray(landmarks, np.float64).reshape(5, 2),
                                 template_points(template, size, scale))
    border = _default_border(template) if border_value is None else border_value
    return warp(image, M, size, border), M


def feathered_rect(shape, feather):
    """float32 mask of `shape` (h, w): 1 inside, falling smoothly to exactly 0 at the border over
    `feather` pixels (a rectangle inset by `feather`, blurred by a kernel of radius `feather`)."""
    h, w = shape[:2]
    mask = np.zeros((h, w), np.float32)
    f = int(round(feather))
    if f <= 0:
        mask[:] = 1.0
        return mask
    # the blur reaches f pixels: a rectangle inset by f + 1 leaves exactly 0 on the border pixels
    mask[f + 1:h - f - 1, f + 1:w - f - 1] = 1.0
    return feather_mask(mask, f)


def paste_back(image, crop, M, mask=None, feather=None):
    """Warp `crop` back into `image` through the inverse of `M` and blend it in.

    Args:
        image (np.ndarray): HxWxC or HxW image (uint8 or float); not modified.
        crop (np.ndarray): the processed crop (its size need not be `align_face`'s).
        M (array [2, 3]): the image -> crop matrix `align_face` returned.
        mask (np.ndarray | None): float [0, 1] mask in the crop's pixels (h, w); None: the whole
            crop, feathered at its border by `feather` (default 1/32 of the crop's side).
        feather (float | None): with a `mask`, extra blur radius in crop pixels (None: none).
    Returns:
        np.ndarray: a new image (image's dtype); pixels where the warped mask is 0 are exactly
        the input's.
    """
    image = np.asarray(image)
    crop = np.asarray(crop)
    h, w = image.shape[:2]
    ch, cw = crop.shape[:2]
    if mask is None:
        mask = feathered_rect((ch, cw), max(ch, cw) / 32.0 if feather is None else feather)
    else:
        mask = np.asarray(mask, np.float32)
        if mask.ndim == 3:
            mask = mask[..., 0]
        if mask.shape != (ch, cw):
            raise ConfigError(f"paste_back: the mask is {mask.shape[1]}x{mask.shape[0]}, the crop {cw}x{ch}")
        if feather:
            mask = feather_mask(mask, feather)
    M = np.asarray(M, np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP  # dst (image) pixel p samples the crop at M p
    m = cv2.warpAffine(np.clip(mask, 0.0, 1.0), M, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT,
                       borderValue=0.0)
    back = cv2.warpAffine(crop, M, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    if back.ndim < image.ndim:
        back = back[..., None]
    mm = m[..., None] if image.ndim == 3 else m
    blended = image.astype(np.float32) * (1.0 - mm) + back.astype(np.float32) * mm
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        blended = np.clip(np.rint(blended), info.min, info.max)
    out = np.where(mm > 0, blended.astype(image.dtype), image)
    return out

"""Image file I/O: read to RGB / gray numpy arrays, write atomically.

Files are read as bytes with `np.fromfile` and decoded with `cv2.imdecode` (and encoded with
`cv2.imencode`), so paths with non-ASCII characters work on every platform, which
`cv2.imread` / `cv2.imwrite` do not guarantee. Arrays are RGB(A) in memory, OpenCV's BGR(A)
order never leaves this module.
"""
import os

import cv2
import numpy as np

try:  # decoding errors are reported by us, in one line; keep OpenCV's own log quiet
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
except AttributeError:  # pragma: no cover - very old OpenCV
    pass

from .errors import DatasetError, PPGANError
from .io import atomic_write_bytes

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")

_READ_FLAGS = {"rgb": cv2.IMREAD_COLOR, "gray": cv2.IMREAD_GRAYSCALE, "unchanged": cv2.IMREAD_UNCHANGED}


def is_image_file(path, extensions=IMAGE_EXTENSIONS):
    """True when `path` ends with one of `extensions` (case-insensitive, with the dot)."""
    return os.path.splitext(str(path))[1].lower() in extensions


def imread(path, mode="rgb"):
    """Read an image file into a numpy array.

    Args:
        path (str | os.PathLike): image file; any characters in the path are fine.
        mode (str): 'rgb' (default) -> HxWx3 uint8 RGB; 'gray' -> HxW uint8;
            'unchanged' -> the file's own depth and channels (HxW, HxWx3 RGB or HxWx4 RGBA,
            uint8 or uint16).

    Returns:
        np.ndarray: the decoded image.

    Raises:
        DatasetError: "cannot read image <path>: <why>" when the file is missing, empty,
            corrupt or in a format OpenCV cannot decode.
        ValueError: `mode` is not one of the above.
    """
    if mode not in _READ_FLAGS:
        raise ValueError(f"imread mode must be one of {', '.join(_READ_FLAGS)}; got {mode!r}")
    path = os.fspath(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise DatasetError(f"cannot read image {path}: file not found") from None
    except OSError as e:
        raise DatasetError(f"cannot read image {path}: {e.strerror or e}") from None
    if data.size == 0:
        raise DatasetError(f"cannot read image {path}: file is empty")
    img = cv2.imdecode(data, _READ_FLAGS[mode])
    if img is None or img.size == 0:
        raise DatasetError(f"cannot read image {path}: not a valid or supported image file")
    if img.ndim == 3:
        if img.shape[2] == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        elif img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
        elif img.shape[2] == 1:
            img = img[..., 0]
    return img


def imwrite(path, img, params=None):
    """Write an image atomically (temp file in the same folder, then `os.replace`).

    The format follows the extension of `path`; the folder is created if needed.

    Args:
        path (str | os.PathLike): output file, e.g. 'out/sample.png'.
        img (np.ndarray): HxW or HxWx1 gray, HxWx3 RGB or HxWx4 RGBA; uint8 (or uint16 for
            formats that support it, such as PNG and TIFF).
        params (list[int] | None): extra `cv2.imencode` flags, e.g.
            `[cv2.IMWRITE_JPEG_QUALITY, 95]`.

    Raises:
        ValueError: `img` has an unsupported shape or dtype.
        PPGANError: the format is not supported or the file cannot be written.
    """
    path = os.fspath(path)
    img = np.asarray(img)
    if img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"imwrite expects a uint8 or uint16 image, got {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGBA2BGRA)
    elif img.ndim != 2:
        raise ValueError(f"imwrite expects an HxW, HxWx1, HxWx3 or HxWx4 image, got shape {img.shape}")
    ext = os.path.splitext(path)[1].lower()
    if not ext:
        raise PPGANError(f"cannot write image {path}: the file name has no extension to choose the format")
    try:
        ok, buf = cv2.imencode(ext, img, list(params or []))
    except cv2.error as e:
        raise PPGANError(f"cannot write image {path}: {str(e).strip().splitlines()[-1]}") from None
    if not ok:
        raise PPGANError(f"cannot write image {path}: OpenCV could not encode a {img.dtype} image as '{ext}'")
    try:
        atomic_write_bytes(path, buf.tobytes())
    except OSError as e:
        raise PPGANError(f"cannot write image {path}: {e.strerror or e}") from None


# ---- MATLAB-compatible bicubic resize -----------------------------------------------------------
def _cubic(x):
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic'); support [-2, 2]."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def imresize_weights(in_length, out_length, scale, antialiasing=True, dtype=np.float64):
    """MATLAB imresize's `contributions` for one axis.

    Output pixel x (1-based) sits at input coordinate u = x / scale + (1 - 1 / scale) / 2. When
    down-scaling with antialiasing the kernel is stretched by 1 / scale (and its height scaled
    by `scale`), so it acts as a low-pass filter; the weights of each output pixel are then
    normalised to sum to 1. Source indices outside the image are mirrored symmetrically,
    repeating the edge pixel (MATLAB's `aux = [1:n, n:-1:1]`).

    Returns:
        (weights, indices): float [out_length, P] and int64 [out_length, P] (0-based), where
        P = ceil(kernel width) + 2; out[x] = sum_p weights[x, p] * in[indices[x, p]].
    """
    stretch = antialiasing and scale < 1
    kernel_width = 4.0 / scale if stretch else 4.0
    u = np.arange(1, out_length + 1, dtype=np.float64) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = int(np.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based source pixels
    dist = u[:, None] - idx
    weights = scale * _cubic(dist * scale) if stretch else _cubic(dist)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length)[::-1]])
    indices = mirror[np.mod(idx.astype(np.int64) - 1, mirror.size)]
    return weights.astype(dtype), indices


def _resize_axis(img, out_length, scale, axis, antialiasing):
    weights, indices = imresize_weights(img.shape[axis], out_length, scale, antialiasing, img.dtype)
    bshape = [1] * img.ndim
    bshape[axis] = out_length
    out = np.zeros(img.shape[:axis] + (out_length,) + img.shape[axis + 1:], dtype=img.dtype)
    for p in range(weights.shape[1]):  # P gathers of whole rows/columns: O(P * output) work
        if np.any(weights[:, p]):
            out += weights[:, p].reshape(bshape) * np.take(img, indices[:, p], axis=axis)
    return out


def imresize(img, scale, antialiasing=True):
    """Resize like MATLAB's `imresize(img, scale)` (bicubic, the default), as used to make the
    LR images of the SR benchmarks (DIV2K, Set5, Set14, REDS).

    The output size is `ceil(size * scale)` per axis (MATLAB's rule). Each axis is resampled
    with the cubic kernel a = -0.5; down-scaling with `antialiasing` stretches the kernel by
    1 / scale; borders are mirrored symmetrically. The two axes are applied one after the
    other as P-tap gathers (P = 6 up-scaling, 4 / scale + 2 down-scaling), so a 2040x1356 RGB
    image takes well under a second.

    Args:
        img (np.ndarray): HxW or HxWxC; float (any range, typically [0, 1], computed in its own
            float precision, not clipped) or uint8 / uint16 (computed in float64, then rounded
            half away from zero and clipped to the type's range, as MATLAB).
        scale (float | tuple[float, float]): factor, or (scale_h, scale_w).
        antialiasing (bool): low-pass when down-scaling (default True, as MATLAB).

    Returns:
        np.ndarray: the resized image, same dtype and number of dimensions.
    """
    img = np.asarray(img)
    if img.ndim not in (2, 3):
        raise ValueError(f"imresize expects an HxW or HxWxC image, got shape {img.shape}")
    sh, sw = (float(scale), float(scale)) if np.isscalar(scale) else (float(scale[0]), float(scale[1]))
    if sh <= 0 or sw <= 0:
        raise ValueError(f"imresize scale must be positive, got {scale!r}")
    kind = img.dtype.kind
    if kind == "f":
        work = img if img.dtype in (np.float32, np.float64) else img.astype(np.float32)
    elif kind in "ui" or kind == "b":
        work = img.astype(np.float64)
    else:
        raise ValueError(f"imresize expects a float or integer image, got {img.dtype}")
    h, w = img.shape[:2]
    out_h, out_w = int(np.ceil(h * sh)), int(np.ceil(w * sw))
    # the axis that shrinks most first (MATLAB's order): the second pass then has less to do
    axes = [(0, out_h, sh), (1, out_w, sw)]
    for axis, length, s in sorted(axes, key=lambda a: a[2]):
        work = _resize_axis(work, length, s, axis, antialiasing)
    if kind == "f":
        return work.astype(img.dtype, copy=False)
    if kind == "b":
        return work >= 0.5
    info = np.iinfo(img.dtype)
    return np.clip(np.floor(work + 0.5), info.min, info.max).astype(img.dtype)

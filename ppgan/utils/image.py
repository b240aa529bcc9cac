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

"""Image file I/O: read to RGB / gray numpy arrays, write atomically.

Files are read as bytes and decoded with `cv2.imdecode` (and encoded with `cv2.imencode`), so
paths with non-ASCII characters work on every platform, which `cv2.imread` / `cv2.imwrite` do
not guarantee. Arrays are RGB(A) in memory, OpenCV's BGR(A) order never leaves this module.

Before anything is decoded, `imread` reads the size the file declares in its header (PNG, JPEG,
GIF, BMP, TIFF, WebP, PNM/PAM/PFM, Sun raster, Radiance HDR, JPEG 2000, OpenEXR, AVIF) and
refuses an image of more than `max_image_pixels()` pixels: by default 178,956,970 (Pillow's
limit; about 13,377 x 13,377, 537 MB as 8-bit RGB). A 2.6 MB PNG of one colour can declare
30000 x 30000 pixels (2.7 GB decoded). Raise the limit with the environment variable
`PPGAN_MAX_IMAGE_PIXELS` (0 = no limit), `ppgan.utils.image.MAX_IMAGE_PIXELS = n`, or
`imread(..., max_pixels=n)`. Content in no format of that list is refused as not an image.

EXIF orientation (JPEG APP1, PNG eXIf, WebP EXIF) is applied in every mode, so a photo taken
upright comes out upright (TIFF's orientation tag OpenCV applies itself).
"""
import contextlib
import os
import re
import struct
import sys
import tempfile
import threading

import cv2
import numpy as np

try:  # decoding errors are reported by us, in one line; keep OpenCV's own log quiet
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
except AttributeError:  # pragma: no cover - very old OpenCV
    pass

from .errors import ConfigError, DatasetError, PPGANError
from .io import atomic_write_bytes, read_regular

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")

# orientation is applied here, from the file's EXIF, the same way in every mode (OpenCV applies
# it for colour and gray but not for IMREAD_UNCHANGED)
_READ_FLAGS = {"rgb": cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION,
               "gray": cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION,
               "unchanged": cv2.IMREAD_UNCHANGED}

DEFAULT_MAX_IMAGE_PIXELS = 178_956_970
MAX_IMAGE_PIXELS = None  # an int overrides $PPGAN_MAX_IMAGE_PIXELS and the default (0 = no limit)
ENV_MAX_IMAGE_PIXELS = "PPGAN_MAX_IMAGE_PIXELS"


def is_image_file(path, extensions=IMAGE_EXTENSIONS):
    """True when `path` ends with one of `extensions` (case-insensitive, with the dot)."""
    return os.path.splitext(str(path))[1].lower() in extensions


def max_image_pixels():
    """The most pixels `imread` decodes (0: no limit): `MAX_IMAGE_PIXELS` when set, else
    $PPGAN_MAX_IMAGE_PIXELS when set, else DEFAULT_MAX_IMAGE_PIXELS (178,956,970)."""
    if MAX_IMAGE_PIXELS is not None:
        return int(MAX_IMAGE_PIXELS)
    text = os.environ.get(ENV_MAX_IMAGE_PIXELS, "").strip()
    if not text:
        return DEFAULT_MAX_IMAGE_PIXELS
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(f"{ENV_MAX_IMAGE_PIXELS} must be a whole number of pixels (0 = no limit), got {text!r}")
    return value


def imread(path, mode="rgb", max_pixels=None):
    """Read an image file into a numpy array.

    Args:
        path (str | os.PathLike): image file; any characters in the path are fine.
        mode (str): 'rgb' (default) -> HxWx3 uint8 RGB; 'gray' -> HxW uint8;
            'unchanged' -> the file's own depth and channels (HxW, HxWx3 RGB or HxWx4 RGBA,
            uint8 or uint16).
        max_pixels (int | None): refuse images that declare more pixels (0: no limit);
            None: `max_image_pixels()` (see the module docstring).

    Returns:
        np.ndarray: the decoded image, turned upright by its EXIF orientation.

    Raises:
        DatasetError: "cannot read image <path>: <why>" when the file is missing, not a
            regular file (a FIFO, socket, device or folder: never opened), empty, corrupt,
            larger than the pixel limit (before decoding), or in a format OpenCV cannot decode.
        ValueError: `mode` is not one of the above.
    """
    if mode not in _READ_FLAGS:
        raise ValueError(f"imread mode must be one of {', '.join(_READ_FLAGS)}; got {mode!r}")
    path = os.fspath(path)
    try:
        data = read_regular(path)
    except FileNotFoundError:
        raise DatasetError(f"cannot read image {path}: file not found") from None
    except OSError as e:
        raise DatasetError(f"cannot read image {path}: {e.strerror or e}") from None
    if not data:
        raise DatasetError(f"cannot read image {path}: file is empty")
    header = read_header(data)
    if header is None:
        raise DatasetError(f"cannot read image {path}: not a valid or supported image file")
    if isinstance(header, str):
        raise DatasetError(f"cannot read image {path}: not a valid or supported image file ({header})")
    fmt, width, height, pixels, orientation = header
    limit = max_image_pixels() if max_pixels is None else int(max_pixels)
    if limit and pixels > limit:
        raise DatasetError(
            f"cannot read image {path}: the {fmt} header declares {width}x{height} pixels "
            f"({pixels / 1e6:.0f} Mpx), more than the limit of {limit} (raise it with "
            f"{ENV_MAX_IMAGE_PIXELS}=<pixels>, 0 = no limit)")
    messages = []
    try:
        with _decoder_messages(messages):
            img = cv2.imdecode(np.frombuffer(data, np.uint8), _READ_FLAGS[mode])
    except cv2.error as e:
        raise DatasetError(f"cannot read image {path}: OpenCV cannot decode this {fmt} file "
                           f"({_cv2_reason(e)})") from None
    except MemoryError:
        raise DatasetError(f"cannot read image {path}: not enough memory to decode {width}x{height} "
                           "pixels") from None
    if img is None or img.size == 0:
        why = messages[-1] if messages else "truncated or corrupt?"
        raise DatasetError(f"cannot read image {path}: not a valid or supported image file "
                           f"(OpenCV cannot decode this {fmt} file; {why})")
    if any(m.startswith("Premature end of JPEG file") for m in messages):  # libjpeg filled the rest grey
        raise DatasetError(f"cannot read image {path}: the JPEG file is truncated (Premature end of JPEG file)")
    if img.ndim == 3:
        if img.shape[2] == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        elif img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
        elif img.shape[2] == 1:
            img = img[..., 0]
    return apply_orientation(img, orientation)


_STDERR_SWAP = threading.Lock()


@contextlib.contextmanager
def _decoder_messages(out):
    """libpng and libjpeg print their warnings and errors ('libpng error: Not enough image data',
    'Corrupt JPEG data: ...') on file descriptor 2 themselves (OpenCV installs no handler for
    them), which would add lines to a CLI's one-line error. For the few milliseconds of a decode,
    fd 2 goes to a temp file and the lines are collected in `out` (decodes take turns; anything
    another thread writes to fd 2 in that window is collected too)."""
    with _STDERR_SWAP:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, AttributeError, ValueError):  # no stderr to keep clean
            yield
            return
        try:
            with tempfile.TemporaryFile() as tmp:
                os.dup2(tmp.fileno(), 2)
                try:
                    yield
                finally:
                    os.dup2(saved, 2)
                    tmp.seek(0)
                    text = tmp.read(1 << 16).decode("utf-8", "replace")
                    out.extend(line.strip() for line in text.splitlines() if line.strip())
        finally:
            os.close(saved)


def _cv2_reason(e):
    text = " ".join(str(e).split())
    m = re.search(r"error: \(-?\d+:[^)]*\) (.*)", text)
    reason = m.group(1) if m else text
    if "CV_IO_MAX_IMAGE_PIXELS" in reason:
        reason += "; OpenCV takes at most 2^30 pixels unless CV_IO_MAX_IMAGE_PIXELS is set before start"
    return reason


# ---- the header: what a file declares, read without decoding ------------------------------------
def apply_orientation(img, orientation):
    """Turn `img` (HxW[xC], rows from the top) upright by EXIF orientation 1..8."""
    if orientation == 2:
        img = img[:, ::-1]
    elif orientation == 3:
        img = img[::-1, ::-1]
    elif orientation == 4:
        img = img[::-1]
    elif orientation == 5:
        img = img.swapaxes(0, 1)
    elif orientation == 6:
        img = img[::-1].swapaxes(0, 1)  # 90 degrees clockwise
    elif orientation == 7:
        img = img[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        img = img[:, ::-1].swapaxes(0, 1)  # 90 degrees counter-clockwise
    else:
        return img
    return np.ascontiguousarray(img)


def exif_orientation(blob):
    """The Orientation tag (1..8) of an EXIF blob (a TIFF structure, optionally after 'Exif\\0\\0');
    1 when absent or unreadable: a broken EXIF block does not make the image unreadable."""
    try:
        blob = bytes(blob)
        if blob.startswith(b"Exif\0\0"):
            blob = blob[6:]
        bo = {b"II": "<", b"MM": ">"}.get(blob[:2])
        if bo is None or struct.unpack_from(bo + "H", blob, 2)[0] != 42:
            return 1
        ifd = struct.unpack_from(bo + "I", blob, 4)[0]
        for i in range(struct.unpack_from(bo + "H", blob, ifd)[0]):
            tag, kind = struct.unpack_from(bo + "HH", blob, ifd + 2 + 12 * i)
            if tag == 0x0112:
                value = struct.unpack_from(bo + ("H" if kind == 3 else "I"), blob, ifd + 10 + 12 * i)[0]
                return value if kind in (3, 4) and 1 <= value <= 8 else 1
    except (struct.error, IndexError, OverflowError):
        pass
    return 1


class _BadHeader(ValueError):
    """What is wrong with a header, in words."""


def read_header(data):
    """(format, width, height, pixels, orientation) declared by the image bytes `data`, without
    decoding it; `pixels` is the largest area the decoder will allocate for (the image, a GIF
    frame, a TIFF tile). None when the bytes are in no format OpenCV decodes, a string saying
    why when the header of a known format is broken."""
    data = bytes(data)
    for magic, fmt, parse in _FORMATS:
        if data.startswith(magic):
            try:
                width, height, pixels, exif = parse(data)
            except (struct.error, IndexError, ValueError, OverflowError) as e:
                return f"broken {fmt} header" + (f": {e}" if isinstance(e, _BadHeader) else "")
            return fmt, width, height, max(pixels, width * height), exif_orientation(exif) if exif else 1
    if data[4:8] == b"ftyp" and any(b in data[8:64] for b in (b"avif", b"avis")):
        try:
            return ("AVIF",) + _avif(data) + (1,)
        except (struct.error, IndexError, ValueError, OverflowError) as e:
            return "broken AVIF header" + (f": {e}" if isinstance(e, _BadHeader) else "")
    return None


def _png(d):
    if d[12:16] != b"IHDR":
        raise _BadHeader("no IHDR chunk")
    w, h = struct.unpack_from(">II", d, 16)
    pixels, exif, pos = w * h, None, 8
    while pos + 8 <= len(d):  # ancillary chunks before the image data: eXIf, APNG's first fcTL
        length, kind = struct.unpack_from(">I4s", d, pos)
        if kind in (b"IDAT", b"IEND"):
            break
        if kind == b"eXIf":
            exif = d[pos + 8:pos + 8 + length]
        elif kind == b"fcTL":
            fw, fh = struct.unpack_from(">II", d, pos + 12)
            pixels = max(pixels, fw * fh)
        pos += 12 + length
    return w, h, pixels, exif


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(d):
    pos, exif = 2, None
    while pos + 4 <= len(d):
        if d[pos] != 0xFF:
            raise _BadHeader(f"no marker at byte {pos}")
        marker = d[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        length = struct.unpack_from(">H", d, pos + 2)[0]
        if marker in _SOF:
            h, w = struct.unpack_from(">HH", d, pos + 5)
            return w, h, w * h, exif
        if marker in (0xDA, 0xD9) or length < 2:
            break
        if marker == 0xE1 and exif is None and d[pos + 4:pos + 10] == b"Exif\0\0":
            exif = d[pos + 10:pos + 2 + length]
        pos += 2 + length
    raise _BadHeader("no frame header")


def _gif(d):
    w, h = struct.unpack_from("<HH", d, 6)
    flags = d[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while pos < len(d) and d[pos] == 0x21:  # extensions, up to the first image
        pos += 2
        while d[pos]:
            pos += d[pos] + 1
        pos += 1
    if pos < len(d) and d[pos] == 0x2C:
        fw, fh = struct.unpack_from("<HH", d, pos + 5)
        return w, h, fw * fh, None
    return w, h, w * h, None


def _bmp(d):
    if struct.unpack_from("<I", d, 14)[0] == 12:
        w, h = struct.unpack_from("<HH", d, 18)
    else:
        w, h = struct.unpack_from("<ii", d, 18)
    return abs(w), abs(h), 0, None


def _tiff(d):
    bo = "<" if d[:2] == b"II" else ">"
    if struct.unpack_from(bo + "H", d, 2)[0] == 43:  # BigTIFF
        ifd, head, entry, value_at, count_fmt = struct.unpack_from(bo + "Q", d, 8)[0], 8, 20, 12, "Q"
    else:
        ifd, head, entry, value_at, count_fmt = struct.unpack_from(bo + "I", d, 4)[0], 2, 12, 8, "H"
    fields = {}
    for i in range(struct.unpack_from(bo + count_fmt, d, ifd)[0]):
        at = ifd + head + entry * i
        tag, kind = struct.unpack_from(bo + "HH", d, at)
        if tag in (256, 257, 322, 323) and kind in (3, 4, 16):
            fields[tag] = struct.unpack_from(bo + {3: "H", 4: "I", 16: "Q"}[kind], d, at + value_at)[0]
    if 256 not in fields or 257 not in fields:
        raise _BadHeader("no image width or length")
    tile = fields.get(322, 0) * fields.get(323, 0)
    return fields[256], fields[257], tile, None  # orientation: OpenCV applies TIFF's itself


def _webp(d):
    if d[8:12] != b"WEBP":
        raise _BadHeader("not WEBP")
    size, pixels, exif, pos = None, 0, None, 12
    while pos + 8 <= len(d):
        kind, length = struct.unpack_from("<4sI", d, pos)
        body = pos + 8
        if kind == b"VP8X":
            w = 1 + int.from_bytes(d[body + 4:body + 7], "little")
            h = 1 + int.from_bytes(d[body + 7:body + 10], "little")
            size = (w, h)
        elif kind == b"VP8 ":
            if d[body + 3:body + 6] != b"\x9d\x01\x2a":
                raise _BadHeader("bad VP8 start code")
            w, h = (v & 0x3FFF for v in struct.unpack_from("<HH", d, body + 6))
            size, pixels = size or (w, h), max(pixels, w * h)
        elif kind == b"VP8L":
            if d[body] != 0x2F:
                raise _BadHeader("bad VP8L signature")
            bits = struct.unpack_from("<I", d, body + 1)[0]
            w, h = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            size, pixels = size or (w, h), max(pixels, w * h)
        elif kind == b"EXIF":
            exif = d[body:body + length]
        pos = body + length + (length & 1)
    if size is None:
        raise _BadHeader("no image chunk")
    return size[0], size[1], pixels, exif


def _pnm_numbers(d, pos, count):
    """`count` whitespace-separated decimal numbers from `pos`, '#' comments skipped."""
    numbers = []
    while len(numbers) < count:
        if pos > 65536:
            raise _BadHeader("header too long")
        c = d[pos]
        if c == 0x23:  # '#'
            pos = d.index(b"\n", pos, pos + 65536)
        elif c in b" \t\r\n\v\f":
            pos += 1
        elif 0x30 <= c <= 0x39:
            end = pos
            while end < len(d) and 0x30 <= d[end] <= 0x39:
                end += 1
            if end - pos > 18:
                raise _BadHeader("number too long")
            numbers.append(int(d[pos:end]))
            pos = end
        else:
            raise _BadHeader("not a number")
    return numbers


def _pnm(d):
    w, h = _pnm_numbers(d, 2, 2)
    return w, h, 0, None


def _pam(d):
    head = d[:65536]
    end = head.find(b"ENDHDR")
    w, h = (re.search(rb"\n\s*" + key + rb"\s+(\d{1,18})", head[:end if end >= 0 else None]) for key in
            (b"WIDTH", b"HEIGHT"))
    if w is None or h is None:
        raise _BadHeader("no WIDTH or HEIGHT")
    return int(w.group(1)), int(h.group(1)), 0, None


def _sun(d):
    w, h = struct.unpack_from(">II", d, 4)
    return w, h, 0, None


def _hdr(d):
    head = d[:65536]
    end = head.find(b"\n\n")
    m = re.match(rb"\s*[-+]([XY])\s+(\d{1,18})\s+[-+][XY]\s+(\d{1,18})", head[end + 2:]) if end >= 0 else None
    if m is None:
        raise _BadHeader("no resolution line")
    a, b = int(m.group(2)), int(m.group(3))
    return (b, a, 0, None) if m.group(1) == b"Y" else (a, b, 0, None)


def _jpeg2000(d):
    at = d.find(b"\xff\x4f\xff\x51")  # the codestream's SIZ marker (raw, or inside a JP2 box)
    if at < 0:
        raise _BadHeader("no SIZ marker")
    xs, ys, xo, yo, xt, yt = struct.unpack_from(">IIIIII", d, at + 8)
    return max(xs - xo, 0), max(ys - yo, 0), xt * yt, None


def _exr(d):
    pos = 8
    while pos < min(len(d), 1 << 20):
        name_end = d.index(b"\0", pos, pos + 256)
        if name_end == pos:
            break
        type_end = d.index(b"\0", name_end + 1, name_end + 257)
        size = struct.unpack_from("<i", d, type_end + 1)[0]
        if d[pos:name_end] == b"dataWindow":
            x0, y0, x1, y1 = struct.unpack_from("<iiii", d, type_end + 5)
            return max(x1 - x0 + 1, 0), max(y1 - y0 + 1, 0), 0, None
        if size < 0:
            raise _BadHeader("negative attribute size")
        pos = type_end + 5 + size
    raise _BadHeader("no dataWindow")


def _avif(d):
    head = d[:1 << 20]
    sizes, at = [], head.find(b"ispe")
    while at >= 0:  # image spatial extents of every item (the primary image, grid tiles)
        sizes.append(struct.unpack_from(">II", head, at + 8))
        at = head.find(b"ispe", at + 4)
    if not sizes:
        raise _BadHeader("no image size (ispe)")
    w, h = max(sizes, key=lambda s: s[0] * s[1])
    return w, h, w * h


_FORMATS = (
    (b"\x89PNG\r\n\x1a\n", "PNG", _png),
    (b"\xff\xd8\xff", "JPEG", _jpeg),
    (b"GIF87a", "GIF", _gif), (b"GIF89a", "GIF", _gif),
    (b"BM", "BMP", _bmp),
    (b"II*\0", "TIFF", _tiff), (b"MM\0*", "TIFF", _tiff), (b"II+\0", "TIFF", _tiff), (b"MM\0+", "TIFF", _tiff),
    (b"RIFF", "WebP", _webp),
    *((b"P%d" % i, "PNM", _pnm) for i in range(1, 7)),
    (b"P7", "PAM", _pam), (b"PF", "PFM", _pnm), (b"Pf", "PFM", _pnm),
    (b"\x59\xa6\x6a\x95", "Sun raster", _sun),
    (b"#?RADIANCE", "HDR", _hdr), (b"#?RGBE", "HDR", _hdr),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000", _jpeg2000), (b"\xff\x4f\xff\x51", "JPEG 2000", _jpeg2000),
    (b"\x76\x2f\x31\x01", "OpenEXR", _exr),
)


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
        raise PPGANError(f"cannot write image {path}: {_cv2_reason(e)}") from None
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

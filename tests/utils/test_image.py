import os

import numpy as np
import pytest

from conftest import within
from ppgan.utils.errors import DatasetError, PPGANError
from ppgan.utils.image import IMAGE_EXTENSIONS, imread, imwrite


def _rgb(h=6, w=5):
    return np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3) * 3


def test_png_round_trip_keeps_rgb_order(tmp_path):
    img = _rgb()
    img[0, 0] = (255, 0, 0)  # pure red must stay in channel 0
    path = tmp_path / "a.png"
    imwrite(path, img)
    back = imread(path)
    assert back.dtype == np.uint8 and back.shape == (6, 5, 3)
    np.testing.assert_array_equal(back, img)
    assert tuple(back[0, 0]) == (255, 0, 0)


def test_gray_and_unchanged_modes(tmp_path):
    gray = np.arange(30, dtype=np.uint8).reshape(6, 5) * 8
    imwrite(tmp_path / "g.png", gray[..., None])
    np.testing.assert_array_equal(imread(tmp_path / "g.png", "gray"), gray)
    np.testing.assert_array_equal(imread(tmp_path / "g.png", "unchanged"), gray)
    assert imread(tmp_path / "g.png").shape == (6, 5, 3)

    rgba = np.dstack([_rgb(), np.full((6, 5), 7, np.uint8)])
    imwrite(tmp_path / "a.png", rgba)
    np.testing.assert_array_equal(imread(tmp_path / "a.png", "unchanged"), rgba)

    deep = (np.arange(30, dtype=np.uint16).reshape(6, 5) * 2000)
    imwrite(tmp_path / "d.png", deep)
    back = imread(tmp_path / "d.png", "unchanged")
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, deep)


def test_non_ascii_path(tmp_path):
    folder = tmp_path / "données" / "数字"
    path = folder / "图像 ü.png"
    imwrite(path, _rgb())  # creates the folder
    np.testing.assert_array_equal(imread(path), _rgb())
    assert os.listdir(folder) == ["图像 ü.png"]  # no temp file left behind


def test_imwrite_is_atomic_on_failure(tmp_path):
    path = tmp_path / "keep.png"
    imwrite(path, _rgb())
    with pytest.raises(ValueError):
        imwrite(path, np.zeros((4, 4), np.float32))
    with pytest.raises(PPGANError, match="cannot write image"):
        imwrite(tmp_path / "x.unknownext", _rgb())
    np.testing.assert_array_equal(imread(path), _rgb())
    assert sorted(os.listdir(tmp_path)) == ["keep.png"]


@pytest.mark.parametrize("content, why", [
    (None, "file not found"),
    (b"", "file is empty"),
    (b"this is not an image at all", "not a valid or supported image"),
])
def test_unreadable_files_raise_one_line_dataset_error(tmp_path, content, why):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DatasetError) as info:
        imread(path)
    msg = str(info.value)
    assert msg.startswith(f"cannot read image {path}: ") and why in msg and "\n" not in msg


def test_truncated_png_raises(tmp_path):
    imwrite(tmp_path / "ok.png", _rgb(32, 32))
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="cut.png"):
        imread(tmp_path / "cut.png")


def test_directory_and_bad_mode(tmp_path):
    with pytest.raises(DatasetError, match="cannot read image"):
        imread(tmp_path)
    with pytest.raises(ValueError, match="mode"):
        imread(tmp_path / "x.png", mode="bgr")


def test_extensions_are_lowercase_with_dot():
    assert ".png" in IMAGE_EXTENSIONS and ".jpg" in IMAGE_EXTENSIONS
    assert all(e.startswith(".") and e == e.lower() for e in IMAGE_EXTENSIONS)


# ---- EXIF orientation ---------------------------------------------------------------------------
def blocks(h=32, w=24, depth=np.uint8):
    """An image with no symmetry: 8x8 blocks of distinct colours (they survive JPEG)."""
    rng = np.random.default_rng(7)
    colours = rng.integers(0, 256, size=(h // 8, w // 8, 3))
    colours[0, 0] = (250, 10, 10)  # red block top left, for a readable failure
    img = np.kron(colours, np.ones((8, 8, 1), dtype=np.int64)).astype(np.uint8)
    return img.astype(np.uint16) * 257 if depth == np.uint16 else img


def upright(stored, orientation):
    """What a viewer shows for `stored` pixels with EXIF `orientation` (the EXIF 2.3 table, written
    with np.rot90 / np.flip, independently of the code under test)."""
    return {1: lambda a: a, 2: np.fliplr, 3: lambda a: np.rot90(a, 2), 4: np.flipud,
            5: lambda a: np.rot90(np.fliplr(a), 1), 6: lambda a: np.rot90(a, -1),
            7: lambda a: np.rot90(np.fliplr(a), -1), 8: lambda a: np.rot90(a, 1)}[orientation](stored)


def exif_blob(orientation, endian):
    import struct

    bo = "<" if endian == b"II" else ">"
    entries = [struct.pack(bo + "HHIHH", 0x010F, 2, 4, 0, 0)[:8] + b"ppg\0",  # Make, to be skipped
               struct.pack(bo + "HHIHH", 0x0112, 3, 1, orientation, 0)]
    return endian + struct.pack(bo + "HI", 42, 8) + struct.pack(bo + "H", 2) + b"".join(entries) + b"\0\0\0\0"


def with_exif(data, fmt, orientation, endian=b"MM"):
    """Encoded image bytes with an EXIF block carrying `orientation` inserted."""
    import struct
    import zlib

    blob = exif_blob(orientation, endian)
    if fmt == ".jpg":
        app1 = b"Exif\0\0" + blob
        return data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]
    chunk = struct.pack(">I", len(blob)) + b"eXIf" + blob + struct.pack(">I", zlib.crc32(b"eXIf" + blob))
    return data[:33] + chunk + data[33:]  # PNG: right after IHDR


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("endian", [b"MM", b"II"])
def test_jpeg_exif_orientation_is_applied_in_every_mode(tmp_path, orientation, endian):
    import cv2

    ok, buf = cv2.imencode(".jpg", blocks()[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    plain = tmp_path / "plain.jpg"
    plain.write_bytes(buf.tobytes())
    path = tmp_path / f"o{orientation}.jpg"
    path.write_bytes(with_exif(buf.tobytes(), ".jpg", orientation, endian))
    for mode in ("rgb", "unchanged", "gray"):
        stored = imread(plain, mode)  # the same decoded pixels, as stored (no EXIF)
        got = imread(path, mode)
        assert got.shape[:2] == (24, 32) if orientation >= 5 else (32, 24), (mode, got.shape)
        np.testing.assert_array_equal(got, upright(stored, orientation), err_msg=mode)
        assert got.flags["C_CONTIGUOUS"]
    # OpenCV's own reader applies the orientation in colour mode: the same pixels
    np.testing.assert_array_equal(imread(path), cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1])
    # and it is the picture a viewer shows: the red block lands where the table says
    corner = upright(np.pad(np.ones((1, 1)), ((0, 3), (0, 2))), orientation)  # 4x3 grid of blocks
    i, j = np.argwhere(corner)[0]
    assert np.abs(imread(path)[8 * i + 4, 8 * j + 4].astype(int) - (250, 10, 10)).max() < 40


@pytest.mark.parametrize("orientation", range(1, 9))
def test_png_exif_orientation_8_and_16_bit(tmp_path, orientation):
    import cv2

    for depth in (np.uint8, np.uint16):
        stored = blocks(depth=depth)
        ok, buf = cv2.imencode(".png", stored[..., ::-1])
        path = tmp_path / f"o{orientation}_{depth.__name__}.png"
        path.write_bytes(with_exif(buf.tobytes(), ".png", orientation))
        got = imread(path, "unchanged")
        assert got.dtype == depth
        np.testing.assert_array_equal(got, upright(stored, orientation))
        assert imread(path).shape == upright(stored, orientation).shape


def test_exif_matches_pillow_for_webp(tmp_path):
    from PIL import Image, ImageOps

    stored = blocks()
    for orientation in (3, 6, 8):
        im = Image.fromarray(stored)
        exif = im.getexif()
        exif[0x0112] = orientation
        path = tmp_path / f"o{orientation}.webp"
        im.save(path, "WEBP", lossless=True, exif=exif)
        ref = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
        np.testing.assert_array_equal(imread(path, "unchanged"), ref)
        np.testing.assert_array_equal(ref, upright(stored, orientation))


@pytest.mark.parametrize("blob", [
    b"", b"MM", b"MM\0*\xff\xff\xff\xff", b"II*\0\x08\0\0\0\xff\xff", exif_blob(9, b"MM"), exif_blob(0, b"II"),
    b"XX" + exif_blob(6, b"MM")[2:], exif_blob(6, b"MM")[:14],
])
def test_broken_exif_is_ignored_not_fatal(tmp_path, blob):
    import struct

    import cv2

    ok, buf = cv2.imencode(".jpg", blocks()[..., ::-1])
    app1 = b"Exif\0\0" + blob
    data = buf.tobytes()
    path = tmp_path / "e.jpg"
    path.write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:])
    assert imread(path).shape == (32, 24, 3)


# ---- size declared by the header: refused before decoding ---------------------------------------
def forged(fmt, width, height):
    """A small real image whose header declares `width` x `height` (checksums fixed)."""
    import struct
    import zlib

    import cv2

    img = blocks()
    if fmt in (".pgm", ".pfm"):
        img = img[..., 0]
    ok, buf = cv2.imencode(fmt, img.astype(np.float32) / 255 if fmt == ".pfm" else img)
    d = bytearray(buf.tobytes())
    if fmt == ".png":
        d[16:24] = struct.pack(">II", width, height)
        d[29:33] = struct.pack(">I", zlib.crc32(bytes(d[12:29])))
    elif fmt == ".jpg":
        at = next(i for i in range(2, len(d)) if d[i] == 0xFF and d[i + 1] in (0xC0, 0xC2))
        d[at + 5:at + 9] = struct.pack(">HH", height, width)
    elif fmt == ".bmp":
        d[18:26] = struct.pack("<ii", width, -height)
    elif fmt == ".tif":
        bo = "<" if d[:2] == b"II" else ">"
        ifd = struct.unpack_from(bo + "I", d, 4)[0]
        for i in range(struct.unpack_from(bo + "H", d, ifd)[0]):
            at = ifd + 2 + 12 * i
            tag, kind = struct.unpack_from(bo + "HH", d, at)
            if tag in (256, 257):
                value = width if tag == 256 else height
                d[at + 2:at + 12] = struct.pack(bo + "HII", 4, 1, value)
    elif fmt == ".webp":  # lossless: VP8L, 14-bit sizes
        bits = struct.unpack_from("<I", d, 21)[0] & ~((1 << 28) - 1)
        d[21:25] = struct.pack("<I", bits | (width - 1) | ((height - 1) << 14))
    elif fmt in (".pgm", ".pfm"):
        head = bytes(d[:2]) + b"\n%d %d\n" % (width, height)
        rest = bytes(d[2:]).split(b"\n", 2)[2]
        d = bytearray(head + rest)
    elif fmt == ".sr":
        d[4:12] = struct.pack(">II", width, height)
    elif fmt == ".gif":  # 1x1 screen, frame declared huge
        d[6:10] = struct.pack("<HH", 1, 1)
    return bytes(d)


def gif_with_huge_frame():
    """A 1x1 GIF screen whose first frame declares 65535 x 65535 (a comment extension between)."""
    import struct

    return (b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0, 0, 0)
            + b"\x21\xfe\x05hello\x00"  # comment extension: one 5-byte sub-block
            + b"\x2c" + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0x80) + b"\0\0\0\xff\xff\xff"
            + b"\x02\x02\x4c\x01\x00\x3b")


HUGE = [(".png", 30000, 30000), (".png", 60000, 60000), (".png", 2 ** 31 - 1, 2 ** 31 - 1),
        (".jpg", 40000, 40000), (".jpg", 65535, 65535), (".bmp", 20000, 20000), (".tif", 100000, 100000),
        (".webp", 16384, 16384), (".pgm", 99999, 99999), (".pfm", 50000, 50000), (".sr", 70000, 70000)]


@pytest.mark.parametrize("fmt, width, height", HUGE)
def test_huge_declared_sizes_are_refused_from_the_header(tmp_path, fmt, width, height):
    import time

    path = tmp_path / f"bomb{fmt}"
    path.write_bytes(forged(fmt, width, height))
    start = time.perf_counter()
    with pytest.raises(DatasetError) as info:
        imread(path, "unchanged")
    assert time.perf_counter() - start < 1.0
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and f"{width}x{height} pixels" in msg, msg
    assert "PPGAN_MAX_IMAGE_PIXELS" in msg and "178956970" in msg


def test_gif_frame_larger_than_its_screen_is_refused(tmp_path):
    path = tmp_path / "frame.gif"
    path.write_bytes(gif_with_huge_frame())
    with pytest.raises(DatasetError, match="more than the limit"):
        imread(path)


def test_the_pixel_limit_can_be_raised_or_lowered(tmp_path, monkeypatch):
    from ppgan.utils import image as image_mod
    from ppgan.utils.errors import ConfigError

    path = tmp_path / "small.png"
    imwrite(path, blocks())  # 24 x 32 = 768 pixels
    assert image_mod.max_image_pixels() == 178_956_970
    assert imread(path, max_pixels=768).shape == (32, 24, 3)
    with pytest.raises(DatasetError, match="24x32 pixels .* more than the limit of 767"):
        imread(path, max_pixels=767)
    monkeypatch.setenv("PPGAN_MAX_IMAGE_PIXELS", "700")
    with pytest.raises(DatasetError, match="limit of 700"):
        imread(path)
    assert imread(path, max_pixels=0).shape == (32, 24, 3)  # the argument wins
    monkeypatch.setattr(image_mod, "MAX_IMAGE_PIXELS", 1000)  # the setting wins over the variable
    assert imread(path).shape == (32, 24, 3)
    monkeypatch.setattr(image_mod, "MAX_IMAGE_PIXELS", None)
    for bad in ("lots", "-5", "1e9"):
        monkeypatch.setenv("PPGAN_MAX_IMAGE_PIXELS", bad)
        with pytest.raises(ConfigError, match="PPGAN_MAX_IMAGE_PIXELS must be a whole number"):
            imread(path)
    monkeypatch.setenv("PPGAN_MAX_IMAGE_PIXELS", "0")
    assert imread(path).shape == (32, 24, 3)


def test_over_opencvs_own_limit_is_one_line(tmp_path):
    """With our limit off, a 60000^2 header reaches OpenCV, whose CV_IO_MAX_IMAGE_PIXELS check
    raises cv2.error: that must become one line too."""
    path = tmp_path / "grey60k.png"
    path.write_bytes(forged(".png", 60000, 60000))
    with pytest.raises(DatasetError) as info:
        imread(path, max_pixels=0)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and "CV_IO_MAX_IMAGE_PIXELS" in msg


def test_a_real_single_colour_bomb_is_refused_without_decoding(tmp_path):
    """A genuine 20000x20000 grey PNG (400 Mpx, 0.4 MB on disk): refused in well under a second
    and without the 400 MB a decode would take (checked in a fresh process's peak RSS)."""
    import struct
    import subprocess
    import sys
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    side = 20000
    z = zlib.compressobj(9)
    rows = (b"\0" * (side + 1)) * 1000
    idat = b"".join(z.compress(rows) for _ in range(side // 1000)) + z.flush()
    path = tmp_path / "grey.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc for the peak RSS (VmHWM; ru_maxrss carries the parent's over exec)")
    code = ("import re, sys, time\n"
            "from ppgan.utils.image import imread\n"
            "t = time.perf_counter()\n"
            "try:\n    imread(sys.argv[1])\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
            "peak = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
            "print(time.perf_counter() - t, peak)\n")
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    err, stats = r.stdout.strip().splitlines()
    seconds, peak_kb = stats.split()
    assert err.startswith("DatasetError") and "20000x20000" in err
    assert float(seconds) < 1.0 and int(peak_kb) < 300_000, stats


# ---- what is not an image file ---------------------------------------------------------------------
def test_special_files_are_refused_without_being_opened(tmp_path, monkeypatch):
    import socket

    monkeypatch.chdir(tmp_path)  # short relative socket path (AF_UNIX paths are limited to ~100 bytes)
    os.mkfifo("pipe.png")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind("sock.png")
    os.symlink("nowhere.png", "dangling.png")
    os.symlink("pipe.png", "link_to_pipe.png")
    os.mkdir("folder.png")
    cases = [("pipe.png", "is a FIFO (named pipe), not a regular file"),
             ("link_to_pipe.png", "is a FIFO (named pipe), not a regular file"),
             ("sock.png", "is a socket, not a regular file"),
             ("dangling.png", "file not found"),
             ("folder.png", "is a folder, not a regular file"),
             ("/dev/null", "is a character device, not a regular file")]
    try:
        for name, why in cases:
            with within(5), pytest.raises(DatasetError) as info:
                imread(name)
            assert str(info.value) == f"cannot read image {name}: {why}"
    finally:
        sock.close()


@pytest.mark.parametrize("fmt", [".png", ".jpg", ".bmp", ".tif", ".webp", ".ppm", ".pgm", ".sr", ".hdr", ".jp2",
                                 ".pfm", ".avif", ".gif"])
def test_every_format_opencv_reads_gets_a_header_check(tmp_path, fmt):
    """Formats decoded by content, whatever the extension: each one's header size is read (so
    the limit applies to it) and the image still loads."""
    import io

    import cv2

    from ppgan.utils.image import read_header

    img = blocks(48, 32)  # JPEG 2000 needs 32 pixels a side
    if fmt == ".gif":
        from PIL import Image

        b = io.BytesIO()
        Image.fromarray(img).save(b, "GIF")
        data = b.getvalue()
    else:
        src = img[..., 0] if fmt == ".pgm" else img[..., ::-1]
        ok, buf = cv2.imencode(fmt, src.astype(np.float32) / 255 if fmt in (".hdr", ".pfm") else src)
        data = buf.tobytes()
    header = read_header(data)
    assert isinstance(header, tuple) and header[1:3] == (32, 48), header
    path = tmp_path / "x.png"  # a misleading extension changes nothing
    path.write_bytes(data)
    assert imread(path).shape == (48, 32, 3)
    with pytest.raises(DatasetError, match="more than the limit of 100"):
        imread(path, max_pixels=100)


def test_unknown_content_is_not_an_image(tmp_path):
    for i, data in enumerate([b"GIF8", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDX", b"\xff\xd8\xff\xd9", b"RIFF\0\0\0\0WAVE",
                              b"P6\nfoo bar\n", b"#?RADIANCE\nno blank line", b"{\"json\": true}"]):
        path = tmp_path / f"u{i}.png"
        path.write_bytes(data)
        with pytest.raises(DatasetError, match="not a valid or supported image file") as info:
            imread(path)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("fmt, keep, why", [
    (".jpg", 0.6, "truncated"),
    (".jpg", 0.95, "truncated"),
    (".png", 0.6, "libpng error"),
    (".webp", 0.6, "not a valid or supported image file"),
    (".tif", 0.6, "not a valid or supported image file"),
])
def test_truncated_files_are_one_line_and_print_nothing_else(tmp_path, capfd, fmt, keep, why):
    """libjpeg would fill a cut JPEG with grey and print a warning; libpng prints its error on
    stderr itself: both become the one message, nothing else reaches stderr."""
    import cv2

    from skimage import data

    ok, buf = cv2.imencode(fmt, data.astronaut()[::4, ::4, ::-1])
    path = tmp_path / f"cut{fmt}"
    path.write_bytes(buf.tobytes()[: int(len(buf) * keep)])
    with pytest.raises(DatasetError) as info:
        imread(path)
    assert str(info.value).startswith(f"cannot read image {path}: ") and why in str(info.value)
    assert "\n" not in str(info.value)
    assert capfd.readouterr().err == ""

"""Fuzz the image reader with broken copies of real images: deterministic (seeded) truncations and
bit flips of photos from scikit-image in the 14 formats OpenCV reads (PNG 8 and 16 bit, JPEG with
EXIF, WebP, BMP, TIFF, GIF, PPM, JPEG 2000, AVIF, Radiance HDR, PFM, Sun raster, PAM), and
headers forged to declare huge sizes. Each must load, or fail with
one line naming the file (PPGANError / OSError), in bounded time: never another exception, a
hang or a multi-gigabyte allocation. A sample also goes through the super-resolution CLI, where
each bad file is one `failed:` line (folder mode, exit 3) or one `error:` line (exit 2)."""
import io
import os
import struct
import subprocess
import sys
import time
import zlib

import cv2
import numpy as np
import pytest

from ppgan.utils.errors import PPGANError
from ppgan.utils.image import imread

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SR_CLI = os.path.join(ROOT, "applications", "tools", "super_resolution.py")

CASES_PER_KIND = 30  # truncations and bit flips, each, per format
FUZZ_MAX_PIXELS = 4_000_000  # a flipped size bit can declare ~100 Mpx: decode those only up to 4 Mpx here
SECONDS_PER_CASE = 3.0


def exif_app1(orientation):
    tiff = b"MM" + struct.pack(">HIH", 42, 8, 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + b"\0" * 4
    payload = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def encode(fmt, img):
    """Real-photo bytes in `fmt` (RGB or RGB 16-bit input)."""
    if fmt == "gif":
        from PIL import Image

        b = io.BytesIO()
        Image.fromarray(img).save(b, "GIF")
        return b.getvalue()
    ext = {"png16": ".png", "jpeg": ".jpg"}.get(fmt, "." + fmt)
    params = [cv2.IMWRITE_JPEG_QUALITY, 90] if fmt == "jpeg" else [cv2.IMWRITE_WEBP_QUALITY, 80] if fmt == "webp" else []
    img = np.ascontiguousarray(img[..., ::-1])
    if fmt in ("hdr", "pfm"):
        img = img.astype(np.float32) / 255
    ok, buf = cv2.imencode(ext, img, params)
    assert ok
    data = buf.tobytes()
    if fmt == "jpeg":  # with an EXIF block, so its parser is fuzzed too
        data = data[:2] + exif_app1(6) + data[2:]
    return data


@pytest.fixture(scope="module")
def photos():
    from skimage import data

    astronaut = cv2.resize(data.astronaut(), (128, 128), interpolation=cv2.INTER_AREA)
    chelsea = cv2.resize(data.chelsea(), (120, 80), interpolation=cv2.INTER_AREA)
    coffee = cv2.resize(data.coffee(), (96, 64), interpolation=cv2.INTER_AREA)
    return {
        "png": encode("png", astronaut),
        "png16": encode("png16", astronaut.astype(np.uint16) * 257 + 3),
        "jpeg": encode("jpeg", chelsea),
        "webp": encode("webp", coffee),
        "bmp": encode("bmp", coffee),
        "tiff": encode("tiff", chelsea),
        "gif": encode("gif", astronaut),
        "ppm": encode("ppm", chelsea),
        # the other formats OpenCV reads by content, whatever the file is called
        "jp2": encode("jp2", coffee), "avif": encode("avif", coffee), "hdr": encode("hdr", chelsea),
        "pfm": encode("pfm", coffee), "sr": encode("sr", coffee), "pam": encode("pam", chelsea),
    }


def truncations(data, rng, n):
    cuts = sorted(set(int(c) for c in rng.integers(1, len(data), size=n * 2)))[:n - 3]
    return [data[:c] for c in [1, 8, 33] + cuts][:n]  # inside the signature and the header too


def bit_flips(data, rng, n):
    out = []
    for i in range(n):
        d = bytearray(data)
        head = i % 2 == 0  # every other case hits the first 64 bytes: the header and sizes
        for _ in range(int(rng.integers(1, 5))):
            at = int(rng.integers(0, min(64, len(d)) if head else len(d)))
            d[at] ^= 1 << int(rng.integers(0, 8))
        out.append(bytes(d))
    return out


def forged_png(width, height):
    ok, buf = cv2.imencode(".png", np.zeros((4, 4), np.uint8))
    d = bytearray(buf.tobytes())
    d[16:24] = struct.pack(">II", width, height)
    d[29:33] = struct.pack(">I", zlib.crc32(bytes(d[12:29])))
    return bytes(d)


def forged_jpeg(width, height):
    ok, buf = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    d = bytearray(buf.tobytes())
    at = d.index(b"\xff\xc0")
    d[at + 5:at + 9] = struct.pack(">HH", height, width)
    return bytes(d)


FORGED = [forged_png(30000, 30000), forged_png(60000, 60000), forged_png(100000, 3000), forged_png(0xFFFFFFFF, 1),
          forged_jpeg(40000, 40000), forged_jpeg(65535, 65535), forged_jpeg(65500, 3000)]


def check(path, mode, max_pixels=None):
    """Outcome of one case: 'loaded' or 'refused'; anything else is a failure (returned as text)."""
    start = time.perf_counter()
    try:
        img = imread(path, mode, max_pixels=max_pixels)
        outcome = "loaded" if isinstance(img, np.ndarray) and img.size and img.ndim in (2, 3) else f"bad array {img!r:.60}"
    except (PPGANError, OSError) as e:
        msg = str(e)
        outcome = "refused" if "\n" not in msg and str(path) in msg else f"message not one line naming the file: {msg!r}"
    except Exception as e:  # noqa: BLE001 - any other exception is what this test hunts
        outcome = f"{type(e).__name__}: {e}"
    elapsed = time.perf_counter() - start
    if elapsed > SECONDS_PER_CASE:
        outcome = f"took {elapsed:.1f} s"
    return outcome


FORMATS = ["png", "png16", "jpeg", "webp", "bmp", "tiff", "gif", "ppm", "jp2", "avif", "hdr", "pfm", "sr", "pam"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_and_bit_flipped_real_images(tmp_path, photos, fmt, capfd):
    data = photos[fmt]
    assert imread(io_path(tmp_path, "original", data), "unchanged").size  # the source itself loads
    rng = np.random.default_rng(sum(map(ord, fmt)))  # deterministic per format
    cases = [("cut", d) for d in truncations(data, rng, CASES_PER_KIND)] + \
            [("flip", d) for d in bit_flips(data, rng, CASES_PER_KIND)]
    assert len(cases) == 2 * CASES_PER_KIND
    outcomes, problems = {"loaded": 0, "refused": 0}, []
    for i, (kind, d) in enumerate(cases):
        path = io_path(tmp_path, f"{kind}{i}", d)
        outcome = check(path, ("rgb", "gray", "unchanged")[i % 3], max_pixels=FUZZ_MAX_PIXELS)
        if outcome in outcomes:
            outcomes[outcome] += 1
        else:
            problems.append(f"{kind} case {i} ({len(d)} bytes): {outcome}")
    assert not problems, "\n".join(problems)
    assert outcomes["refused"] >= CASES_PER_KIND // 2  # most truncations must be caught, not "loaded"
    assert capfd.readouterr().err == ""  # no decoder printed on stderr (libpng does, unless kept quiet)


def io_path(tmp_path, stem, data):
    path = tmp_path / f"{stem}.png"  # the extension does not matter: content decides
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("i", range(len(FORGED)))
def test_forged_huge_headers_are_refused_with_the_default_limit(tmp_path, i):
    path = io_path(tmp_path, f"forged{i}", FORGED[i])
    for mode in ("rgb", "gray", "unchanged"):
        assert check(path, mode) == "refused"
    with pytest.raises(PPGANError, match="more than the limit of 178956970"):
        imread(path)


def test_bad_images_through_the_sr_cli(tmp_path, photos):
    """Folder mode: fuzzed files are each written or one `failed:` line, never a traceback or a
    hang, exit 3; the EXIF-rotated portrait comes out upright. The pixel limit is lowered through its environment variable so a flipped size bit cannot make
    the CPU model run on a 100-megapixel image."""
    from skimage import data as skdata

    folder = tmp_path / "in"
    folder.mkdir()
    small = {"png": encode("png", skdata.astronaut()[::16, ::16]),
             "jpeg": encode("jpeg", skdata.chelsea()[::10, ::10][:24, :32])}  # 32x24 stored, EXIF 6: portrait
    rng = np.random.default_rng(12)
    bad = []
    for fmt, d in small.items():
        bad += [(f"{fmt}_cut{i}", x) for i, x in enumerate(truncations(d, rng, 4))]
        bad += [(f"{fmt}_flip{i}", x) for i, x in enumerate(bit_flips(d, rng, 4))]
    bad.append(("forged", FORGED[0]))
    for name, d in bad:
        (folder / f"{name}.png").write_bytes(d)
    (folder / "portrait.jpg").write_bytes(small["jpeg"])
    env = dict(os.environ, PPGAN_MAX_IMAGE_PIXELS="65536", OMP_NUM_THREADS="1")
    cmd = [sys.executable, SR_CLI, "--model", "realesr-animevideov3-x2", "--device", "cpu", "--quiet",
           "--output", str(tmp_path / "out")]
    r = subprocess.run(cmd + ["--input", str(folder)], capture_output=True, text=True, timeout=300, env=env)
    assert "Traceback" not in r.stderr and r.returncode == 3, r.stderr
    failed = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert all(ln.startswith("failed: ") for ln in failed), r.stderr
    written = os.listdir(tmp_path / "out" / "RealSR")
    assert len(failed) + len(written) == len(bad) + 1  # each input: an output or one line
    assert any("forged.png" in ln and "more than the limit of 65536" in ln for ln in failed)
    assert imread(tmp_path / "out" / "RealSR" / "portrait_sr.jpg").shape == (64, 48, 3)  # upright x2


@pytest.mark.parametrize("i", [0, 4])
def test_a_bomb_as_the_single_cli_input_is_one_line(tmp_path, i):
    path = io_path(tmp_path, "bomb", FORGED[i])
    cmd = [sys.executable, SR_CLI, "--model", "realesr-animevideov3-x2", "--device", "cpu", "--quiet",
           "--output", str(tmp_path / "out"), "--input", str(path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=dict(os.environ, OMP_NUM_THREADS="1"))
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: cannot read image "), r.stderr
    assert ("30000x30000" if i == 0 else "40000x40000") in lines[0] and "PPGAN_MAX_IMAGE_PIXELS" in lines[0]

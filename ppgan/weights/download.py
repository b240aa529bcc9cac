"""Weight downloads: the cache folder, a resumable fetch, sha256 checks and format sniffing.

`download(url, dest)` fetches `http(s)://` and `file://` URLs into `dest + '.part'`, resumes an
existing part with an HTTP `Range` request (a server that ignores it answers 200 and the
download restarts from byte 0), checks the sha256 when one is given, refuses anything that is
not a weight file (an HTML error page, a login page) and only then renames the part to `dest`.
`dest` therefore either does not exist or is complete.

Trust on first use: most published weights come without a digest. After every successful
download the sha256 that was seen is written beside the file as `<file>.sha256` (the format of
`sha256sum`, so `sha256sum -c` works on it); `verify_sidecar` compares the file with it on later
use, so a file that changed or was truncated after download is caught. The first download
itself is only as trustworthy as the connection that delivered it; so nothing is kept (nor its
digest recorded) unless it is whole: as long as the Content-Length says, and, when no published
sha256 vouches for it, complete by its own structure (`incomplete_reason`: a zip's central
directory and CRCs, a pickle's STOP, a safetensors header's extent). A body without
Content-Length that ends early (the server closed the connection) is an incomplete download:
retried, resuming the part, never cached. A sidecar that exists but is empty, unreadable or
holds no digest is an integrity error naming it, not a reason to trust the file afresh.
"""
import http.client
import os
import re
import shutil
import socket
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from ..utils.errors import CheckpointError, PPGANError
from ..utils.io import atomic_write_text
from .hashing import sha256sum

CHUNK = 1 << 20
SIDECAR_SUFFIX = ".sha256"
# Formats a checkpoint may have; anything else that arrives from a URL is not kept.
WEIGHT_FORMATS = ("pth", "pdparams", "safetensors", "ncnn-param", "ncnn-bin")
# torch.save's legacy (non-zip) files start with a pickled magic number (protocol 2, LONG1 of 10 bytes)
_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
# ncnn weight blobs start with a 4-byte storage tag (fp16, int8, fp32 with tag); 0 = raw fp32
_NCNN_TAGS = {0x01306B47, 0x000D4B38, 0x0002C056}
_NCNN_PARAM_MAGIC = b"7767517"


class DownloadError(PPGANError):
    """A weight file could not be downloaded, or what arrived is not the expected file."""


def cache_dir():
    """The ppgan cache folder: `$PPGAN_HOME`, else `~/.cache/ppgan` (not created here)."""
    return os.path.abspath(os.path.expanduser(os.environ.get("PPGAN_HOME") or os.path.join("~", ".cache", "ppgan")))


def weights_dir():
    """Where downloaded weights live: `<cache_dir()>/weights`."""
    return os.path.join(cache_dir(), "weights")


def sniff_weight_format(path):
    """Guess a weight file's format from its first bytes (the extension only breaks ties).

    Returns one of 'pth' (torch zip `PK\\x03\\x04`, or torch's legacy pickle with its magic
    number), 'pdparams' (another pickle: first byte 0x80), 'safetensors' (8-byte little-endian
    header length, then `{`), 'ncnn-param' (text starting with the magic 7767517), 'ncnn-bin'
    (a `.bin` whose first 4 bytes are an ncnn storage tag), 'html' (`<!DOCTYPE` / `<html`, what
    a web server returns instead of a file), 'tflite' (a TFLite flatbuffer: identifier `TFL3` at
    bytes 4..8) or 'unknown'.
    """
    with open(path, "rb") as f:
        head = f.read(64)
    size = os.path.getsize(path)
    if head.startswith(b"PK\x03\x04"):
        return "pth"
    if head.startswith(_TORCH_LEGACY_MAGIC):
        return "pth"
    if head[4:8] == b"TFL3":
        return "tflite"
    if head[:1] == b"\x80":
        return "pdparams"
    if len(head) >= 9 and head[8:9] == b"{":
        (n,) = struct.unpack("<Q", head[:8])
        if 0 < n <= size - 8:
            return "safetensors"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype", b"<html", b"<head", b"<body")):
        return "html"
    if head.startswith(_NCNN_PARAM_MAGIC) and head[7:8] in (b"\n", b"\r"):
        return "ncnn-param"
    if str(path).lower().endswith(".bin") and len(head) >= 4 and struct.unpack("<I", head[:4])[0] in _NCNN_TAGS:
        return "ncnn-bin"
    return "unknown"


def incomplete_reason(path, fmt=None):
    """Why the weight file at `path` is visibly cut short or damaged, or None when its structure
    is whole. `fmt` as `sniff_weight_format` says (sniffed when None). Checked: a torch zip's
    central directory and CRCs, a legacy torch file by loading it, a pickle's opcodes up to its
    STOP, a safetensors header against the file size, an ncnn `.param` by parsing it (and its
    final end of line). An ncnn `.bin` has no structure to check (None)."""
    import json
    import zipfile

    from .pickle_guard import PickleScanError, scan_pickle

    fmt = fmt or sniff_weight_format(path)
    size = os.path.getsize(path)
    try:
        if fmt == "pth":
            with open(path, "rb") as f:
                zipped = f.read(4) == b"PK\x03\x04"
            if not zipped:
                from .torchfile import read_torch

                read_torch(path)
                return None
            try:
                with zipfile.ZipFile(path) as z:
                    bad = z.testzip()
            except zipfile.BadZipFile as e:
                return f"not a complete zip archive ({e})"
            return f"zip entry {bad} is damaged (CRC mismatch)" if bad else None
        if fmt == "pdparams":
            with open(path, "rb") as f:
                scan_pickle(f)
            return None
        if fmt == "safetensors":
            with open(path, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(n))
            ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
            need = 8 + n + max(ends, default=0)
            return None if size >= need else f"{size} bytes, its header describes {need}"
        if fmt == "ncnn-param":
            from .ncnn import parse_param

            with open(path, encoding="utf-8") as f:
                text = f.read()
            if not text.endswith("\n"):  # a cut inside the last line may still parse
                return "the last line has no end of line"
            parse_param(text, path)
    except (CheckpointError, PickleScanError) as e:
        return str(e)
    except (zipfile.BadZipFile, EOFError, ValueError, KeyError, TypeError, IndexError, struct.error) as e:
        return " ".join(str(e).split()) or type(e).__name__
    return None


def write_sidecar(path, digest=None):
    """Record `path`'s sha256 in `<path>.sha256` (computed unless given); returns the digest."""
    digest = digest or sha256sum(path)
    atomic_write_text(path + SIDECAR_SUFFIX, f"{digest}  {os.path.basename(path)}\n")
    return digest


def read_sidecar(path):
    """The digest recorded in `<path>.sha256`, or None when there is no sidecar.

    Raises CheckpointError (one line naming the sidecar) when it exists but cannot be read (a
    folder, a FIFO, no permission), is not UTF-8 text, or does not start with a sha256: the
    record is lost, which must not pass for a file never recorded."""
    from ..utils.io import read_regular

    side = path + SIDECAR_SUFFIX
    if not os.path.lexists(side):
        return None
    lost = f"the sha256 recorded for {os.path.basename(path)} at download is lost; delete {path} and its " \
        f"sidecar and download it again"
    try:
        text = read_regular(side, max_bytes=4096).decode("utf-8")
    except OSError as e:
        raise CheckpointError(f"cannot read the digest file {side} ({e.strerror or e}): {lost}") from None
    except UnicodeDecodeError:
        raise CheckpointError(f"the digest file {side} is not UTF-8 text: {lost}") from None
    words = text.split()
    if not words or not re.fullmatch(r"[0-9a-fA-F]{64}", words[0]):
        what = "is empty" if not words else f"does not start with a sha256 ({words[0][:20]!r})"
        raise CheckpointError(f"the digest file {side} {what}: {lost}")
    return words[0].lower()


def verify_sidecar(path, expected=None):
    """Check `path` against `expected` (a published sha256) or else its `.sha256` sidecar.

    With neither, the digest is recorded now (trust on first use: a file placed by hand). A
    sidecar that exists but is empty or unreadable is an error (`read_sidecar`), unless a
    published sha256 vouches for the file (the sidecar is then rewritten). Raises
    CheckpointError on a mismatch; returns the digest.
    """
    if expected:
        digest = sha256sum(path)
        if digest != expected.lower():
            raise CheckpointError(f"{path} has sha256 {digest[:16]}..., which does not match the published sha256 "
                                  f"{expected.lower()[:16]}...; the file changed or is damaged: delete it and "
                                  "download again")
        try:
            current = read_sidecar(path)
        except CheckpointError:
            current = None
        if current != digest:
            write_sidecar(path, digest)
        return digest
    recorded = read_sidecar(path)
    digest = sha256sum(path)
    if recorded is None:
        return write_sidecar(path, digest)
    if digest != recorded:
        raise CheckpointError(f"{path} has sha256 {digest[:16]}..., which does not match the digest recorded when "
                              f"it was downloaded ({path}{SIDECAR_SUFFIX}) {recorded[:16]}...; the file changed or "
                              "is damaged: delete it and download again")
    return digest


def _hint(url, dest):
    return "fetch it on a machine with network access and copy it to that path, or pass --weight_path FILE"


def _fail(url, dest, reason):
    return DownloadError(f"cannot download {url} to {dest}: {reason}; {_hint(url, dest)}")


def _progress_bar(total, initial, name, enabled):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                disable=not enabled, file=sys.stderr, dynamic_ncols=True, leave=False)


class _ReadError(Exception):
    """Reading from the network failed mid-file (kept apart from local write errors)."""


def _copy_stream(src, f, bar, network=False):
    while True:
        try:
            block = src.read(CHUNK)
        except (OSError, http.client.HTTPException) as e:
            if not network:
                raise
            if isinstance(e, http.client.IncompleteRead) and e.partial:
                f.write(e.partial)  # what arrived before the cut: the next attempt resumes after it
                bar.update(len(e.partial))
            raise _ReadError(e) from None
        if not block:
            return
        f.write(block)
        bar.update(len(block))


def _fetch_file(url, dest, part, progress):
    parsed = urllib.parse.urlparse(url)
    src = urllib.request.url2pathname(parsed.path)
    if parsed.netloc not in ("", "localhost"):
        src = urllib.request.url2pathname(f"//{parsed.netloc}{parsed.path}")
    if not os.path.isfile(src):
        raise _fail(url, dest, f"no such file {src}")
    with open(src, "rb") as s, open(part, "wb") as f, \
            _progress_bar(os.path.getsize(src), 0, os.path.basename(dest), progress) as bar:
        _copy_stream(s, f, bar)


def _user_agent():
    from .. import __version__

    return f"ppgan/{__version__} (+urllib)"


# errors that mean "no network / no such host / nobody listening": retrying does not help
_OFFLINE_ERRORS = (socket.gaierror, ConnectionRefusedError)


def _reason(exc):
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    inner = getattr(exc, "reason", exc)
    if isinstance(inner, socket.gaierror):
        return f"host not found, offline? ({inner.strerror or inner})"
    if isinstance(inner, ConnectionRefusedError):
        return "connection refused"
    if isinstance(inner, (socket.timeout, TimeoutError)):
        return "timed out"
    text = getattr(inner, "strerror", None) or str(inner) or type(inner).__name__
    return " ".join(str(text).split())


def _fetch_http(url, dest, part, progress, timeout, retries):
    """Stream `url` into `part`, resuming what is there; retries transient failures. A body
    without Content-Length is only complete when the file's structure says so
    (`incomplete_reason`): otherwise the connection was closed early, and the next attempt
    resumes. Returns True when that structure check has been done."""
    last = None
    for attempt in range(max(1, retries)):
        if attempt:
            time.sleep(min(0.5 * 2 ** (attempt - 1), 4.0))
        start = os.path.getsize(part) if os.path.exists(part) else 0
        headers = {"User-Agent": _user_agent(), "Accept-Encoding": "identity"}
        if start:
            headers["Range"] = f"bytes={start}-"
        try:
            resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
        except urllib.error.HTTPError as e:
            if e.code == 416 and start:
                # The part may already be complete (the total is in Content-Range: bytes */N).
                total = (e.headers.get("Content-Range") or "").rpartition("/")[2]
                e.close()
                if total.isdigit() and int(total) == start:
                    return
                os.remove(part)  # longer than the file, or unknown: start over
                last = e
                continue
            e.close()
            if 500 <= e.code < 600 or e.code in (408, 429):
                last = e
                continue
            raise _fail(url, dest, f"HTTP {e.code} {e.reason}") from None
        except _OFFLINE_ERRORS as e:
            raise _fail(url, dest, _reason(e)) from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, _OFFLINE_ERRORS):
                raise _fail(url, dest, _reason(e)) from None
            last = e
            continue
        except (OSError, http.client.HTTPException) as e:
            last = e
            continue
        with resp:
            mode = "wb"
            if start and resp.status == 206:
                got = (resp.headers.get("Content-Range") or "").split()
                if len(got) == 2 and got[1].startswith(f"{start}-"):
                    mode = "ab"
            if mode == "wb":
                start = 0  # no Range support (200) or an odd Content-Range: restart from byte 0
            length = resp.headers.get("Content-Length")
            total = start + int(length) if length and length.isdigit() else None
            try:
                with open(part, mode) as f, _progress_bar(total, start, os.path.basename(dest), progress) as bar:
                    _copy_stream(resp, f, bar, network=True)
            except _ReadError as e:
                last = e.args[0]  # keep the part: the next attempt resumes it
                if isinstance(last, http.client.IncompleteRead):
                    last = OSError(f"connection closed after {os.path.getsize(part)} bytes, in the middle of "
                                   "a chunked transfer")
                continue
        size = os.path.getsize(part)
        if total is not None and size < total:
            last = OSError(f"connection closed after {size} of {total} bytes")
            continue
        if total is None:  # the server's close ended the body: complete, or cut short?
            fmt = sniff_weight_format(part)
            problem = incomplete_reason(part, fmt) if fmt in WEIGHT_FORMATS else None
            if problem:
                last = OSError(f"connection closed after {size} bytes (no Content-Length) and the file is "
                               f"incomplete: {problem}")
                continue
            return fmt in WEIGHT_FORMATS
        return False
    raise _fail(url, dest, f"{_reason(last)} (after {max(1, retries)} attempts)")


def download(url, dest, sha256=None, progress=True, timeout=30, retries=3):
    """Download `url` to `dest` and return `dest`.

    Args:
        url (str): `http://`, `https://` or `file://` URL.
        dest (str): target file; its folder is created. Written as `dest + '.part'` first and
            renamed only when complete, checked and verified.
        sha256 (str | None): expected hex digest; on a mismatch the part is deleted and
            DownloadError raised. Without one, the digest seen is recorded in `dest + '.sha256'`
            (trust on first use, see the module docstring).
        progress (bool): show a tqdm bar (size, rate, ETA) on stderr.
        timeout (float): seconds to wait for the server on connect and on each read.
        retries (int): attempts for transient failures (timeouts, resets, HTTP 5xx); each
            later attempt resumes the part with a Range request. No retry when the host is
            unknown or refuses the connection (offline).
    Raises:
        DownloadError: one line naming the URL, `dest`, the reason and how to place the file
            by hand.
    """
    dest = os.path.abspath(os.fspath(dest))
    part = dest + ".part"
    try:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
    except OSError as e:
        raise _fail(url, dest, f"cannot create {os.path.dirname(dest)} ({e.strerror or e})") from None
    scheme = urllib.parse.urlparse(url).scheme.lower()
    checked = False
    if scheme == "file":
        _fetch_file(url, dest, part, progress)
    elif scheme in ("http", "https"):
        checked = _fetch_http(url, dest, part, progress, timeout, retries)
    else:
        raise DownloadError(f"unsupported URL {url!r}: use http(s):// or file://; or pass --weight_path FILE")

    fmt = sniff_weight_format(part)
    if fmt not in WEIGHT_FORMATS:
        size = os.path.getsize(part)
        os.remove(part)
        what = "an HTML page" if fmt == "html" else f"a file of unknown format ({size} bytes)"
        raise DownloadError(f"{url} returned {what}, not a checkpoint; nothing was saved to {dest}; "
                            "check the URL, or fetch the file by hand and pass --weight_path FILE")
    digest = sha256sum(part)
    if sha256 and digest != sha256.lower():
        os.remove(part)
        raise DownloadError(f"sha256 mismatch for {url}: got {digest}, expected {sha256.lower()}; "
                            f"the download was deleted, nothing was saved to {dest}")
    problem = None if sha256 or checked else incomplete_reason(part, fmt)
    if problem:  # what arrived is as long as announced, yet not a whole file: the server's copy is bad
        os.remove(part)
        raise DownloadError(f"{url} sent a {fmt} file that is cut short or damaged ({problem}); the download was "
                            f"deleted, nothing was saved to {dest}")
    os.replace(part, dest)
    write_sidecar(dest, digest)
    return dest


def disk_free(path):
    """Free bytes on the file system holding `path` (or its nearest existing parent)."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    return shutil.disk_usage(probe).free

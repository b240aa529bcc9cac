"""ppgan.weights.download against a real HTTP server on 127.0.0.1 (no outside network)."""
import hashlib
import http.server
import io
import json
import os
import pickle
import re
import socket
import struct
import threading
import time

import numpy as np
import pytest
import torch

from ppgan import weights as W
from ppgan.weights.download import (DownloadError, cache_dir, download, read_sidecar, sha256sum,
                                    sniff_weight_format, verify_sidecar, weights_dir)
from ppgan.utils.errors import CheckpointError, PPGANError


def torch_checkpoint_bytes():
    """A small real BasicSR-style torch checkpoint (zip format)."""
    from ppgan.models.generators import RRDBNet

    torch.manual_seed(0)
    net = RRDBNet(3, 3, 8, 1, gc=4)
    buf = io.BytesIO()
    torch.save({"params_ema": net.state_dict()}, buf)
    return buf.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's name)
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        data = srv.files.get(self.path)
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and not srv.ignore_range:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", "text/html" if data.lstrip().startswith(b"<") else "application/octet-stream")
        if srv.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif srv.no_length:  # the body ends when the server closes the connection
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = srv.cuts.pop(0) if srv.cuts else None  # drop the connection part-way (a flaky network)
        sent = body if cut is None else body[:cut]
        if srv.chunked:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(sent), sent) if sent else b"")
            if cut is None:
                self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(sent)
        if cut is not None:
            self.wfile.flush()
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.files, srv.requests, srv.ignore_range, srv.cuts = {}, [], False, []
    srv.no_length = srv.chunked = False
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    """Retries without the back-off sleeps (the server answers at once)."""
    import importlib
    import types

    module = importlib.import_module("ppgan.weights.download")  # the package exports a function of that name
    monkeypatch.setattr(module, "time", types.SimpleNamespace(sleep=lambda s: None))


@pytest.fixture(scope="module")
def ckpt():
    return torch_checkpoint_bytes()


def closed_port_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connection refused
    return f"http://127.0.0.1:{port}/w.pth"


def test_download_with_sha256(server, ckpt, tmp_path):
    server.files["/w.pth"] = ckpt
    dest = tmp_path / "sub" / "w.pth"
    out = download(server.url + "/w.pth", str(dest), sha256=hashlib.sha256(ckpt).hexdigest(), progress=False)
    assert out == str(dest)
    assert dest.read_bytes() == ckpt
    assert not os.path.exists(str(dest) + ".part")
    assert read_sidecar(str(dest)) == hashlib.sha256(ckpt).hexdigest()
    assert server.requests == [("/w.pth", None)]
    # the file is a usable checkpoint
    state = torch.load(str(dest), weights_only=True)
    assert "conv_first.weight" in state["params_ema"]


def test_wrong_sha256_leaves_nothing(server, ckpt, tmp_path):
    server.files["/w.pth"] = ckpt
    dest = tmp_path / "w.pth"
    with pytest.raises(DownloadError, match="sha256 mismatch") as e:
        download(server.url + "/w.pth", str(dest), sha256="0" * 64, progress=False)
    assert hashlib.sha256(ckpt).hexdigest() in str(e.value)
    assert sorted(os.listdir(tmp_path)) == []


def test_resume_uses_range(server, ckpt, tmp_path):
    server.files["/w.pth"] = ckpt
    dest = tmp_path / "w.pth"
    half = len(ckpt) // 2
    (tmp_path / "w.pth.part").write_bytes(ckpt[:half])
    download(server.url + "/w.pth", str(dest), sha256=hashlib.sha256(ckpt).hexdigest(), progress=False)
    assert server.requests == [("/w.pth", f"bytes={half}-")]
    assert dest.read_bytes() == ckpt
    assert not (tmp_path / "w.pth.part").exists()


def test_server_ignoring_range_restarts(server, ckpt, tmp_path):
    server.files["/w.pth"] = ckpt
    server.ignore_range = True
    dest = tmp_path / "w.pth"
    (tmp_path / "w.pth.part").write_bytes(ckpt[:1000])
    download(server.url + "/w.pth", str(dest), progress=False)
    assert server.requests == [("/w.pth", "bytes=1000-")]  # asked, got a 200 with the whole file
    assert dest.read_bytes() == ckpt  # not the first 1000 bytes twice


def test_complete_part_and_416(server, ckpt, tmp_path):
    server.files["/w.pth"] = ckpt
    dest = tmp_path / "w.pth"
    (tmp_path / "w.pth.part").write_bytes(ckpt)  # e.g. killed between the last byte and the rename
    download(server.url + "/w.pth", str(dest), progress=False)
    assert server.requests == [("/w.pth", f"bytes={len(ckpt)}-")]
    assert dest.read_bytes() == ckpt


def test_dropped_connection_is_resumed(server, ckpt, tmp_path):
    server.files["/w.pth"] = ckpt
    server.cuts = [3000]
    dest = tmp_path / "w.pth"
    download(server.url + "/w.pth", str(dest), retries=3, progress=False)
    assert server.requests == [("/w.pth", None), ("/w.pth", "bytes=3000-")]
    assert dest.read_bytes() == ckpt


def test_html_page_is_not_kept(server, tmp_path):
    server.files["/w.pth"] = b"<!DOCTYPE html>\n<html><body>Access denied</body></html>\n"
    dest = tmp_path / "w.pth"
    with pytest.raises(DownloadError, match="returned an HTML page, not a checkpoint"):
        download(server.url + "/w.pth", str(dest), progress=False)
    assert os.listdir(tmp_path) == []


def test_http_404(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(server.url + "/missing.pth", str(tmp_path / "w.pth"), progress=False)
    assert os.listdir(tmp_path) == []


def test_file_url(ckpt, tmp_path):
    src = tmp_path / "src dir" / "w.pth"
    src.parent.mkdir()
    src.write_bytes(ckpt)
    dest = tmp_path / "cache" / "w.pth"
    download(src.as_uri(), str(dest), sha256=hashlib.sha256(ckpt).hexdigest(), progress=False)
    assert dest.read_bytes() == ckpt
    with pytest.raises(DownloadError, match="no such file"):
        download((tmp_path / "nope.pth").as_uri(), str(tmp_path / "x.pth"), progress=False)


def test_offline_one_line_error(tmp_path):
    url = closed_port_url()
    dest = tmp_path / "weights" / "w.pth"
    t0 = time.time()
    with pytest.raises(DownloadError) as e:
        download(url, str(dest), progress=False, retries=3)
    msg = str(e.value)
    assert isinstance(e.value, PPGANError)
    assert "\n" not in msg
    assert url in msg and str(dest) in msg and "--weight_path" in msg and "connection refused" in msg
    assert time.time() - t0 < 2  # refused: no pointless retries with back-off
    assert not dest.exists() and not os.path.exists(str(dest) + ".part")


def test_unsupported_scheme(tmp_path):
    with pytest.raises(DownloadError, match="unsupported URL"):
        download("ftp://example.invalid/w.pth", str(tmp_path / "w.pth"), progress=False)


def test_sha256sum(tmp_path):
    data = np.random.default_rng(0).bytes(3 << 20)  # several read chunks
    p = tmp_path / "x.bin"
    p.write_bytes(data)
    assert sha256sum(str(p)) == hashlib.sha256(data).hexdigest()


def test_sniff_formats(tmp_path, ckpt):
    def put(name, data):
        p = tmp_path / name
        p.write_bytes(data)
        return sniff_weight_format(str(p))

    assert put("a.pth", ckpt) == "pth"
    legacy = io.BytesIO()
    torch.save({"w": torch.ones(2)}, legacy, _use_new_zipfile_serialization=False)
    assert put("legacy.pth", legacy.getvalue()) == "pth"
    pd = pickle.dumps({"conv.weight": np.ones((2, 2), np.float32)}, protocol=2)
    assert put("m.pdparams", pd) == "pdparams"
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    assert put("m.safetensors", struct.pack("<Q", len(header)) + header + b"\0" * 8) == "safetensors"
    assert put("m.param", b"7767517\n3 3\nInput data 0 1 data\n") == "ncnn-param"
    assert put("m.bin", struct.pack("<I", 0x01306B47) + b"\0" * 16) == "ncnn-bin"
    assert put("e.pth", b"\n  <!doctype html><html></html>") == "html"
    assert put("e2.pth", b"<html><head></head></html>") == "html"
    assert put("t.pth", b"just some text") == "unknown"
    assert put("same.dat", struct.pack("<I", 0x01306B47) + b"\0" * 16) == "unknown"  # tag alone is no proof


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("PPGAN_HOME", str(tmp_path / "home"))
    assert cache_dir() == str(tmp_path / "home")
    assert weights_dir() == str(tmp_path / "home" / "weights")
    monkeypatch.delenv("PPGAN_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert cache_dir() == str(tmp_path / "user" / ".cache" / "ppgan")


def test_trust_on_first_use(server, ckpt, tmp_path):
    server.files["/w.pth"] = ckpt
    dest = str(tmp_path / "w.pth")
    download(server.url + "/w.pth", dest, progress=False)  # no published digest
    recorded = read_sidecar(dest)
    assert recorded == hashlib.sha256(ckpt).hexdigest()
    with open(dest + ".sha256") as f:
        assert f.read() == f"{recorded}  w.pth\n"  # `sha256sum -c` format
    assert verify_sidecar(dest) == recorded
    with open(dest, "r+b") as f:  # the file changes after download
        f.seek(100)
        f.write(b"\x00\x01\x02")
    with pytest.raises(CheckpointError, match="does not match the digest recorded"):
        verify_sidecar(dest)
    # a published digest wins over the sidecar
    with pytest.raises(CheckpointError, match="published sha256"):
        verify_sidecar(dest, expected=recorded[::-1])
    # no sidecar yet: recorded now
    other = tmp_path / "other.pth"
    other.write_bytes(ckpt)
    assert verify_sidecar(str(other)) == recorded and read_sidecar(str(other)) == recorded


# ---------------------------------------------------------------- integrity (issue 12, class 9)

def weight_file_bytes():
    """One real file of every format a download may bring, by name."""
    legacy = io.BytesIO()
    torch.save({"w": torch.arange(3000.0)}, legacy, _use_new_zipfile_serialization=False)
    arrays = {"conv.weight": np.arange(3000, dtype=np.float32), "conv.bias": np.ones(4, np.float32)}
    data = np.arange(3000, dtype=np.float32).tobytes()
    header = json.dumps({"w": {"dtype": "F32", "shape": [3000], "data_offsets": [0, len(data)]}}).encode()
    with open(W.ncnn_pair(W.resolve_weight("realesr-animevideov3-x2", download=False))[0], "rb") as f:
        param = f.read()
    return {"zip.pth": torch_checkpoint_bytes(), "legacy.pth": legacy.getvalue(),
            "p2.pdparams": pickle.dumps(arrays, protocol=2), "p4.pdparams": pickle.dumps(arrays, protocol=4),
            "m.safetensors": struct.pack("<Q", len(header)) + header + data, "m.param": param}


FORMATS = weight_file_bytes()


def no_cache(dest):
    assert not os.path.exists(dest) and not os.path.exists(dest + ".sha256")


@pytest.mark.parametrize("name", list(FORMATS))
def test_no_content_length_cut_short_is_resumed_never_cached(server, tmp_path, name):
    """A body without Content-Length that ends early looks like a complete one: the file's own
    structure tells, the next attempt resumes it; a file always cut short is never cached."""
    data = FORMATS[name]
    server.files["/" + name] = data
    server.no_length = True
    cut = len(data) // 2
    server.cuts = [cut]
    dest = str(tmp_path / name)
    download(server.url + "/" + name, dest, progress=False, retries=3)
    assert server.requests == [("/" + name, None), ("/" + name, f"bytes={cut}-")]
    assert open(dest, "rb").read() == data and read_sidecar(dest) == hashlib.sha256(data).hexdigest()

    server.requests.clear()
    server.ignore_range = True  # every attempt restarts and is cut again
    server.cuts = [cut] * 3
    dest = str(tmp_path / "again" / name)
    with pytest.raises(DownloadError) as e:
        download(server.url + "/" + name, dest, progress=False, retries=3)
    msg = str(e.value)
    assert "\n" not in msg and "no Content-Length" in msg and "incomplete" in msg and dest in msg, msg
    assert len(server.requests) == 3
    no_cache(dest)


@pytest.mark.parametrize("name", ["zip.pth", "p4.pdparams", "m.safetensors"])
def test_no_content_length_whole_file_is_kept(server, tmp_path, name):
    server.files["/" + name] = FORMATS[name]
    server.no_length = True
    dest = str(tmp_path / name)
    download(server.url + "/" + name, dest, progress=False)
    assert open(dest, "rb").read() == FORMATS[name] and server.requests == [("/" + name, None)]


@pytest.mark.parametrize("cuts", [[3000], [0], [3000, 5000]])
def test_chunked_transfer_cut_short_is_resumed(server, ckpt, tmp_path, cuts):
    server.files["/w.pth"] = ckpt
    server.chunked = True
    server.cuts = list(cuts)
    dest = str(tmp_path / "w.pth")
    download(server.url + "/w.pth", dest, progress=False, retries=len(cuts) + 1)
    assert open(dest, "rb").read() == ckpt and len(server.requests) == len(cuts) + 1
    assert server.requests[1][1] == f"bytes={cuts[0]}-" if cuts[0] else server.requests[1][1] is None


def test_chunked_transfer_always_cut_is_never_cached(server, ckpt, tmp_path):
    server.files["/w.pth"] = ckpt
    server.chunked = server.ignore_range = True
    server.cuts = [3000] * 3
    dest = str(tmp_path / "w.pth")
    with pytest.raises(DownloadError, match="in the middle of a chunked transfer") as e:
        download(server.url + "/w.pth", dest, progress=False, retries=3)
    assert "\n" not in str(e.value)
    no_cache(dest)


@pytest.mark.parametrize("name", ["zip.pth", "legacy.pth", "p2.pdparams", "m.safetensors", "m.param"])
def test_server_copy_cut_short_with_content_length(server, tmp_path, name):
    """The server's own file is cut short (its Content-Length agrees): not kept, part deleted."""
    server.files["/" + name] = FORMATS[name][:len(FORMATS[name]) * 2 // 3]
    dest = str(tmp_path / name)
    with pytest.raises(DownloadError, match="cut short or damaged") as e:
        download(server.url + "/" + name, dest, progress=False)
    assert "\n" not in str(e.value)
    no_cache(dest)
    assert not os.path.exists(dest + ".part")


def test_incomplete_reason_on_whole_files(tmp_path):
    from ppgan.weights.download import incomplete_reason

    for name, data in FORMATS.items():
        p = tmp_path / name
        p.write_bytes(data)
        assert incomplete_reason(str(p)) is None, name
        p.write_bytes(data[:-7])
        assert incomplete_reason(str(p)), name


def broken_sidecar(path, kind):
    side = path + ".sha256"
    if os.path.isdir(side):
        os.rmdir(side)
    elif os.path.lexists(side):
        os.remove(side)
    if kind == "empty":
        open(side, "w").close()
    elif kind == "blank":
        open(side, "w").write("  \n\n")
    elif kind == "not utf-8":
        open(side, "wb").write(b"\xff\xfe\x00garbage\x80")
    elif kind == "not a digest":
        open(side, "w").write("hello  w.pth\n")
    elif kind == "short digest":
        open(side, "w").write("abc123  w.pth\n")
    elif kind == "huge":
        open(side, "w").write("0" * 64 + " " * 10000)
    elif kind == "folder":
        os.mkdir(side)
    elif kind == "fifo":
        os.mkfifo(side)
    elif kind == "broken link":
        os.symlink(side + ".gone", side)
    return side


SIDECARS = ["empty", "blank", "not utf-8", "not a digest", "short digest", "huge", "folder", "fifo", "broken link"]


@pytest.mark.parametrize("kind", SIDECARS)
def test_broken_sidecar_is_an_integrity_error(ckpt, tmp_path, kind):
    dest = str(tmp_path / "w.pth")
    open(dest, "wb").write(ckpt)
    side = broken_sidecar(dest, kind)
    before = os.lstat(side)
    t0 = time.time()
    for check in (verify_sidecar, read_sidecar):
        with pytest.raises(CheckpointError) as e:
            check(dest)
        msg = str(e.value)
        assert "\n" not in msg and side in msg and "lost" in msg, msg
    assert time.time() - t0 < 5  # a FIFO is never opened for reading
    after = os.lstat(side)  # left as it was: not re-trusted with a fresh digest
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)
    if kind != "folder":  # a published digest vouches for the file: the sidecar is written afresh
        assert verify_sidecar(dest, expected=hashlib.sha256(ckpt).hexdigest()) == read_sidecar(dest)

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
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.cuts:  # drop the connection part-way (a flaky network)
            n = srv.cuts.pop(0)
            self.wfile.write(body[:n])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.files, srv.requests, srv.ignore_range, srv.cuts = {}, [], False, []
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


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

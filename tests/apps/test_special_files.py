"""Entries that are not regular files (FIFOs, sockets, devices, broken links) among the inputs of
an app: in a folder or glob run each is one failure line and the rest is processed (exit 3); as the
single input it is one `error:` line (exit 2). None is ever opened: a FIFO named a.png used to
hang the job forever, so every run here has a timeout."""
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import within
from ppgan.apps.base_predictor import ImagePredictor
from ppgan.apps.inputs import check_input_exists, collect_inputs, run_inputs
from ppgan.utils.errors import PPGANError
from ppgan.utils.image import imread, imwrite

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SR_CLI = os.path.join(ROOT, "applications", "tools", "super_resolution.py")


class Invert(ImagePredictor):
    name = "Inv"
    suffix = "_inv"

    def __init__(self, output):
        super().__init__(output=output, device="cpu", verbose=False)

    def predict_rgb(self, rgb):
        return 1.0 - rgb


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """photos/: two real images, and a FIFO, a socket, a broken link and a link to the FIFO, all
    named like images; a FIFO named like a video in a sub-folder."""
    from skimage import data

    d = tmp_path / "photos"
    (d / "sub").mkdir(parents=True)
    imwrite(d / "good1.png", data.astronaut()[::16, ::16])
    imwrite(d / "sub" / "good2.jpg", data.chelsea()[::16, ::16])
    os.mkfifo(d / "a.png")
    os.mkfifo(d / "sub" / "clip.mp4")
    os.symlink("missing.png", d / "broken.png")
    os.symlink("a.png", d / "to_fifo.jpg")
    monkeypatch.chdir(d)  # AF_UNIX paths are limited to ~100 bytes: bind a relative name
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind("sock.png")
    monkeypatch.chdir(tmp_path)
    yield d
    sock.close()


SPECIAL = {"a.png": "is a FIFO (named pipe), not a regular file", "sock.png": "is a socket, not a regular file",
           "broken.png": "is a broken symbolic link", "to_fifo.jpg": "is a FIFO (named pipe), not a regular file",
           os.path.join("sub", "clip.mp4"): "is a FIFO (named pipe), not a regular file"}


def test_folder_run_reports_each_special_entry_and_processes_the_rest(folder, tmp_path):
    pred = Invert(str(tmp_path / "out"))
    with within(20):
        result = run_inputs(pred, str(folder), progress=False)
    assert sorted(os.path.relpath(p, tmp_path / "out" / "Inv") for p in result.outputs) == \
        ["good1_inv.png", os.path.join("sub", "good2_inv.jpg")]
    failed = {os.path.relpath(src, folder): why for src, why in result.failed}
    assert set(failed) == set(SPECIAL)
    for name, why in failed.items():
        assert why == f"{folder / name} {SPECIAL[name]}; not read" and "\n" not in why
    assert not result.ok and result.summary() == "2 written, 0 skipped (output exists), 5 failed"


def test_glob_run_reports_special_matches_too(folder, tmp_path):
    pred = Invert(str(tmp_path / "out"))
    with within(20):
        result = run_inputs(pred, str(folder / "*.png"), progress=False)
    assert [os.path.basename(p) for p in result.outputs] == ["good1_inv.png"]
    assert sorted(os.path.basename(src) for src, _ in result.failed) == ["a.png", "broken.png", "sock.png"]


@pytest.mark.parametrize("name, expect", [
    ("a.png", "is a FIFO (named pipe), not a regular file or folder"),
    ("to_fifo.jpg", "is a FIFO (named pipe), not a regular file or folder"),
    ("sock.png", "is a socket, not a regular file or folder"),
    ("broken.png", "input not found: {path} (a broken symbolic link)"),
    ("/dev/null", "is a character device, not a regular file or folder"),
])
def test_a_special_single_input_is_one_error(folder, tmp_path, name, expect):
    path = name if name.startswith("/") else str(folder / name)
    with within(10):
        with pytest.raises(PPGANError) as info:
            check_input_exists(path)  # what the CLIs call before loading a model
        with pytest.raises(PPGANError) as again:
            run_inputs(Invert(str(tmp_path / "out")), path, progress=False)
    for e in (info, again):
        msg = str(e.value)
        assert "\n" not in msg and path in msg and expect.format(path=path) in msg, msg


def test_collect_inputs_lists_but_never_opens(folder):
    with within(10):
        mode, root, files = collect_inputs(str(folder))
    assert mode == "folder" and len(files) == 7  # 2 images + 5 special entries, reported later


def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, SR_CLI, "--model", "realesr-animevideov3-x2", "--quiet", "--device",
                           "cpu", *args], capture_output=True, text=True, timeout=timeout)


def test_sr_cli_folder_with_a_fifo_finishes_with_exit_3(folder, tmp_path):
    r = run_cli("--input", str(folder), "--output", str(tmp_path / "o"))  # a hang fails by timeout
    assert r.returncode == 3 and "Traceback" not in r.stderr, r.stderr
    failed = [ln for ln in r.stderr.splitlines() if ln.startswith("failed: ")]
    assert len(failed) == 5 and all("not a regular file" in ln or "broken symbolic link" in ln for ln in failed)
    assert "2 written, 0 skipped (output exists), 5 failed" in r.stdout
    assert imread(tmp_path / "o" / "RealSR" / "good1_sr.png").shape == (64, 64, 3)
    assert not os.path.exists(tmp_path / "o" / "RealSR" / "a_sr.png")


@pytest.mark.parametrize("name", ["a.png", "sock.png"])
def test_sr_cli_single_fifo_or_socket_is_one_line(folder, tmp_path, name):
    r = run_cli("--input", str(folder / name), "--output", str(tmp_path / "o"), timeout=60)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(lines) == 1 and lines[0].startswith("error: input ") and "not a regular file" in lines[0], r.stderr


def test_output_folder_holding_a_fifo_is_not_written_through(folder, tmp_path):
    """A FIFO where an output goes is replaced atomically, never opened for writing."""
    out = tmp_path / "out" / "Inv"
    out.mkdir(parents=True)
    os.mkfifo(out / "good1_inv.png")
    with within(20):
        run_inputs(Invert(str(tmp_path / "out")), str(folder / "good1.png"), progress=False)
    assert imread(out / "good1_inv.png").shape == (32, 32, 3)
    np.testing.assert_array_equal(imread(out / "good1_inv.png"), 255 - imread(folder / "good1.png"))

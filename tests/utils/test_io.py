"""Atomic writes: the file appears whole or not at all, with the usual permissions."""
import os
import stat

import pytest

from ppgan.utils import io


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_outputs_get_the_umask_mode_not_0600(tmp_path):
    """mkstemp creates 0600 files; outputs (images, checkpoints, videos) must be readable like any
    other file the user makes: 0666 minus the umask (0644 under the usual 022)."""
    expected = 0o666 & ~io._UMASK
    io.atomic_write_bytes(str(tmp_path / "a.png"), b"x")
    io.atomic_write_text(str(tmp_path / "sub" / "b.yaml"), "y")
    tmp = io.temp_beside(str(tmp_path / "c.mp4"))
    assert mode(tmp_path / "a.png") == mode(tmp_path / "sub" / "b.yaml") == mode(tmp) == expected
    assert os.path.basename(tmp).startswith(".c.mp4.") and tmp.endswith(".mp4")


def test_atomic_path_removes_the_temp_file_on_error(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with io.atomic_path(str(target)) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]

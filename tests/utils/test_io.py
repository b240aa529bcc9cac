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


def test_read_regular_refuses_special_files_without_blocking(tmp_path, monkeypatch):
    import errno
    import socket

    (tmp_path / "ok.bin").write_bytes(b"12345")
    assert io.read_regular(str(tmp_path / "ok.bin")) == b"12345"
    assert io.read_regular(str(tmp_path / "ok.bin"), max_bytes=5) == b"12345"
    with pytest.raises(OSError) as info:
        io.read_regular(str(tmp_path / "ok.bin"), max_bytes=4)
    assert info.value.errno == errno.EFBIG and "5 bytes, more than the 4 allowed" in info.value.strerror
    monkeypatch.chdir(tmp_path)
    os.mkfifo("fifo")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind("sock")
    os.symlink("missing", "dangling")
    try:
        for name, why in [("fifo", "is a FIFO (named pipe), not a regular file"),
                          ("sock", "is a socket, not a regular file"), (".", "is a folder, not a regular file"),
                          ("/dev/zero", "is a character device, not a regular file")]:
            assert io.not_regular_reason(name) == why
            with pytest.raises(OSError) as info:
                io.read_regular(name)  # /dev/zero would never end, the FIFO never start
            assert info.value.strerror == why and not isinstance(info.value, FileNotFoundError)
        assert io.not_regular_reason("dangling") == "is a broken symbolic link"
        assert io.not_regular_reason("nothing") == "does not exist"
        for name in ("dangling", "nothing"):
            with pytest.raises(FileNotFoundError):
                io.read_regular(name)
        assert io.not_regular_reason("ok.bin") is None
    finally:
        sock.close()

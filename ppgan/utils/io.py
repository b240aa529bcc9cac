"""Atomic file writes: a temp file in the target folder, then os.replace."""
import contextlib
import os
import tempfile


_UMASK = os.umask(0o022)
os.umask(_UMASK)


def temp_beside(path, suffix=None):
    """Create an empty, uniquely named temp file in `path`'s folder (created if needed) and return
    its path. It gets the mode a new file gets (0666 minus the umask), not mkstemp's 0600, so the
    file it becomes by `os.replace` is readable like any other output."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base = os.path.basename(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=suffix or os.path.splitext(base)[1] or ".tmp", dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
    finally:
        os.close(fd)
    return tmp


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temp path beside `path`; on success it replaces `path`, on error it is removed."""
    tmp = temp_beside(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def same_file(a, b):
    """True when paths `a` and `b` name the same file (after `..`, links; also hard links)."""
    if os.path.realpath(os.path.abspath(a)) == os.path.realpath(os.path.abspath(b)):
        return True
    with contextlib.suppress(OSError):
        return os.path.samefile(a, b)
    return False


def atomic_write_bytes(path, data):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


def check_writable_dir(path):
    """Create `path` if needed and check we can write there; raise PPGANError if not."""
    from .errors import PPGANError

    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write_test.", dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise PPGANError(f"output folder is not writable: {path} ({e.strerror or e})") from None

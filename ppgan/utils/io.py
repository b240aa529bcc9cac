"""Atomic file writes (a temp file in the target folder, then os.replace), and reading a file
that must be a regular one (never blocking on a FIFO or a device)."""
import contextlib
import errno
import hashlib
import os
import stat
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


def sha256sum(path):
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def missing_dirs(path):
    """The folders `os.makedirs(path)` would create, deepest first (empty if `path` exists)."""
    out = []
    path = os.path.abspath(os.fspath(path))
    while path and not os.path.lexists(path):
        out.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return out


def remove_empty_dirs(paths):
    """Remove those of `paths` (deepest first, as `missing_dirs` gives them) that are empty
    folders; anything else, and any error, is left alone."""
    for path in sorted(set(paths), key=lambda p: p.count(os.sep), reverse=True):
        try:
            os.rmdir(path)  # fails unless it is an empty folder
        except OSError:
            pass


def special_kind(mode):
    """None for a regular file's `st_mode`, else what the entry is ('a FIFO', 'a socket', ...)."""
    if stat.S_ISREG(mode):
        return None
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return kind
    return "not a regular file"


def not_regular_reason(path):
    """None when `path` is a regular file (or a link to one), else why not, as words: 'is a FIFO
    (named pipe), not a regular file', 'is a broken symbolic link', 'does not exist'. Only stats
    the path: never opens it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "is a broken symbolic link" if os.path.islink(path) else "does not exist"
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    kind = special_kind(st.st_mode)
    return None if kind is None else f"is {kind}, not a regular file"


def read_regular(path, max_bytes=None):
    """The bytes of `path`, which must be a regular file (or a link to one) of at most `max_bytes`.

    A FIFO, socket, device or folder is refused without being read (a FIFO is opened
    non-blocking, so a path swapped for one after the check cannot hang us either).

    Raises:
        FileNotFoundError: missing, or a broken link.
        OSError: not a regular file (strerror 'is a FIFO (named pipe), not a regular file'),
            larger than `max_bytes` (errno EFBIG), or unreadable.
    """
    path = os.fspath(path)
    why = not_regular_reason(path)
    if why == "does not exist" or why == "is a broken symbolic link":
        raise FileNotFoundError(errno.ENOENT, why, path)
    if why is not None:
        raise OSError(errno.EINVAL, why, path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        kind = special_kind(st.st_mode)
        if kind is not None:
            raise OSError(errno.EINVAL, f"is {kind}, not a regular file", path)
        if max_bytes is not None and st.st_size > max_bytes:
            raise OSError(errno.EFBIG, f"{st.st_size} bytes, more than the {max_bytes} allowed", path)
        data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise OSError(errno.EFBIG, f"more than the {max_bytes} bytes allowed", path)
    return data

"""sha256 of weight files, cached in memory by (realpath, size, mtime_ns)."""

import hashlib
import os
import threading

_CACHE = {}
_LOCK = threading.Lock()


def file_sha256(path):
    """Return the hex sha256 of the file at ``path``.

    The digest is cached in memory by ``(realpath, size, mtime_ns)``, so
    asking again for an unchanged file costs one ``stat``; a rewritten file
    (new size or modification time) is hashed again.
    """
    real = os.path.realpath(os.fspath(path))
    st = os.stat(real)
    key = (real, st.st_size, st.st_mtime_ns)
    with _LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    with open(real, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    value = digest.hexdigest()
    with _LOCK:
        _CACHE[key] = value
    return value

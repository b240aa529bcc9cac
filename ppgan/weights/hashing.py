"""sha256 of weight files: `sha256sum` reads the file every time (verification);
`file_sha256` caches the digest in memory by (realpath, size, mtime_ns) (fingerprints)."""

import os
import threading

from ..utils.io import sha256sum  # noqa: F401 (re-exported: ppgan.weights.sha256sum)

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
    if cached is None:
        cached = sha256sum(real)
        with _LOCK:
            _CACHE[key] = cached
    return cached

"""Reading torch files (`.pth`, zip or legacy) safely: `torch.load(weights_only=True)` after
checking the pickles inside (`pickle_guard`), with torch's errors as one line that never repeats
its advice to turn the weights-only loader off."""
import io
import os
import re
import zipfile
import zlib

import torch

from ..utils.errors import CheckpointError

# torch's advice on how to load a refused file anyway (never repeated: see `_torch_reason`)
_TORCH_ADVICE = re.compile(r"weights.only|trusted source|trust the source|can still be loaded|"
                           r"documentation of torch\.load|safe_globals|allowlist", re.I)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LEGACY_PICKLES = 5  # a legacy (non-zip) torch file: magic, protocol, sys info, the object, storage keys
_ALLOCATING_CALLS = {("builtins", "bytearray"), ("__builtin__", "bytearray")}


def _torch_reason(exc):
    """torch.load's error as one line, without torch's advice to turn the weights-only loader
    off (`weights_only=False` would let the file run code) or to allowlist what it refused."""
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(_ANSI.sub("", str(exc)).split()))
    kept = [s for s in sentences if s and not _TORCH_ADVICE.search(s)]
    text = re.sub(r"^WeightsUnpickler error:\s*", "", " ".join(kept))
    if not text:
        return f"refused by the weights-only loader ({type(exc).__name__}): the file holds more than tensors " \
            "and plain containers"
    return text if len(text) <= 300 else text[:297] + "..."


def _torch_pickle_scans(path):
    """`scan_pickle` over the pickles of a torch file (the `*.pkl` entries of a zip file, the
    pickles at the head of a legacy one), after checking that no zip entry declares more bytes
    than the whole file (a zip bomb). CheckpointError when malformed; [] for other files
    (torch.load reports those)."""
    from .pickle_guard import PickleScanError, scan_pickle

    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(0)
        try:
            if head == b"PK\x03\x04":
                with zipfile.ZipFile(f) as z:
                    infos = z.infolist()
                    big = next((i for i in infos if i.file_size > size), None)
                    if big is not None:
                        raise CheckpointError(f"cannot load checkpoint {path}: zip entry {big.filename[:80]} declares "
                                              f"{big.file_size} bytes, more than the whole file ({size} bytes)")
                    return [scan_pickle(io.BytesIO(z.read(i))) for i in infos if i.filename.endswith(".pkl")]
            if head[:1] == b"\x80":
                return [scan_pickle(f) for _ in range(_LEGACY_PICKLES)]
        except PickleScanError as e:
            raise CheckpointError(f"cannot load checkpoint {path}: invalid pickle: {e}") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError) as e:
            raise CheckpointError(f"cannot load checkpoint {path}: damaged zip archive ({' '.join(str(e).split())})") \
                from None
    return []


def read_torch(path):
    """`torch.load(path, weights_only=True)` on the CPU: tensors and plain containers only, no code
    runs (a pickle naming any other global is refused). The pickles are checked first
    (`ppgan.weights.pickle_guard`): declared lengths within the file, no zip entry larger than
    the file, no bytearray built from a size (torch's loader would allocate whatever is declared).
    CheckpointError (one line, naming the file) if missing, malformed or refused."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    for scan in _torch_pickle_scans(path):
        if scan.calls & _ALLOCATING_CALLS:
            raise CheckpointError(f"cannot load checkpoint {path}: its pickle builds a bytearray, which weight "
                                  "files never hold (a declared size could exhaust memory)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types
        raise CheckpointError(f"cannot load checkpoint {path}: {_torch_reason(e)}") from None

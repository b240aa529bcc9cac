"""The face toolkit shared by photo2cartoon, First Order Motion and Wav2Lip.

`FaceDetector(name, device=...).detect(images)` is the one entry point for detection ('mtcnn', the
offline default; 'sfd', 'blazeface', 'mediapipe', 'haar'); alignment, masks, landmarks and video
tracking build on its `Face` records. Submodules load lazily so `import ppgan.faceutils` is cheap.
"""
import importlib

from .boxes import LANDMARK_NAMES, Face

_LAZY = {
    "FaceDetector": ".detection",
    "DETECTORS": ".detection",
}

__all__ = ["Face", "LANDMARK_NAMES", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The face toolkit shared by photo2cartoon, First Order Motion and Wav2Lip.

    from ppgan.faceutils import FaceDetector
    faces = FaceDetector('mtcnn', device='cpu').detect([img])[0]   # img: HxWx3 uint8 RGB
    faces[0].box, faces[0].score, faces[0].landmarks               # x1 y1 x2 y2 / [0, 1] / 5x2

`FaceDetector(name)` is the one entry point for detection: 'mtcnn' (the offline default, weights
in the facenet-pytorch wheel), 'mediapipe' (BlazeFace short range, mediapipe wheel), 'sfd' and
'blazeface' (PaddleGAN's weights, downloaded), 'haar' (OpenCV). On top of its `Face` records:
`alignment` (similarity to templates, paste back), `masks` (face / mouth / lower-face regions),
`landmarks.FaceMesh` (468 points), `segmentation.SelfieSegmenter` (person mask) and `tracking`
(ids, smoothing, the face-track cache). Submodules load on first use, so importing this package
is cheap.
"""
import importlib

from .boxes import LANDMARK_NAMES, Face
from .nets import FACE_NETS, face_net_class, load_face_net

_LAZY = {
    "FaceDetector": ".detection",
    "DETECTORS": ".detection",
    "MediaPipeDetector": ".mediapipe_nets",
    "FaceMesh": ".landmarks",
    "SelfieSegmenter": ".segmentation",
    "track_faces": ".tracking",
    "FaceTrack": ".tracking",
    "FaceDetectionStage": ".tracking",
    "align_face": ".alignment",
    "paste_back": ".alignment",
}

__all__ = ["Face", "LANDMARK_NAMES", "FACE_NETS", "face_net_class", "load_face_net", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

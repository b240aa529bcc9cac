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

# The nets behind the catalogue's role='face' entries (`ppgan.weights.catalog`): arch name ->
# (module, class). MTCNN / S3FD / BlazeFace are built empty and filled from a state dict; the
# mediapipe nets are built from their .tflite file.
FACE_NETS = {
    "PNet": (".mtcnn", "PNet"), "RNet": (".mtcnn", "RNet"), "ONet": (".mtcnn", "ONet"),
    "S3FD": (".s3fd", "S3FD"), "BlazeFace": (".blazeface", "BlazeFace"),
    "MediaPipeBlazeFace": (".mediapipe_nets", "MediaPipeBlazeFace"),
    "FaceMeshNet": (".mediapipe_nets", "FaceMeshNet"),
    "SelfieSegmentation": (".mediapipe_nets", "SelfieSegmentation"),
}

__all__ = ["Face", "LANDMARK_NAMES", "FACE_NETS", "face_net_class", *_LAZY]


def face_net_class(arch):
    """The nn.Module class of a face arch name (`FACE_NETS`); KeyError listing the known ones."""
    if arch not in FACE_NETS:
        raise KeyError(f"unknown face net {arch!r}; known: {', '.join(FACE_NETS)}")
    module, cls = FACE_NETS[arch]
    return getattr(importlib.import_module(module, __name__), cls)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

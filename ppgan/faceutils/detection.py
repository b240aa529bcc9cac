"""`FaceDetector(name, device=...)`: the one entry point to the face detectors, and the Haar fallback.

Every backend follows one protocol: `__init__(device='cpu', weight_path=None, download=True,
**options)`, `detect(images) -> list[list[Face]]` (images: a list of HxWx3 uint8 RGB arrays; an
image with no face gives []), `identity` (backend name + sha256 of its weight files and options,
a cache key) and `has_landmarks`. Backends are imported only when asked for:

    mtcnn      .mtcnn.MTCNNDetector              P-/R-/O-Net, 5 landmarks (offline default)
    sfd        .s3fd.S3FDDetector                PaddleGAN's S3FD
    blazeface  .blazeface.BlazeFaceDetector      PaddleGAN's BlazeFace
    mediapipe  .mediapipe_nets.MediaPipeDetector mediapipe's short-range BlazeFace (TFLite)
    haar       HaarDetector (below)              OpenCV's frontal-face cascade, no landmarks
"""
import hashlib
import importlib
import inspect
import math
import os

import numpy as np

from ..utils.errors import ConfigError, PPGANError, closest
from .boxes import Face, as_image_list

# name -> (module relative to this package, class name)
_BACKENDS = {
    "mtcnn": (".mtcnn", "MTCNNDetector"),
    "sfd": (".s3fd", "S3FDDetector"),
    "blazeface": (".blazeface", "BlazeFaceDetector"),
    "mediapipe": (".mediapipe_nets", "MediaPipeDetector"),
    "haar": (".detection", "HaarDetector"),
}
DETECTORS = tuple(_BACKENDS)

HAAR_FILE = "haarcascade_frontalface_default.xml"


def detector_class(name):
    """The backend class for `name` (imported now). PPGANError naming the known detectors."""
    key = str(name).strip().lower()
    if key not in _BACKENDS:
        hint = closest(key, DETECTORS)
        raise PPGANError(f"unknown face detector {name!r}"
                         f"{' (did you mean ' + ' or '.join(map(repr, hint)) + '?)' if hint else ''}; "
                         f"known: {', '.join(DETECTORS)}")
    module, cls = _BACKENDS[key]
    if module == ".detection":
        return globals()[cls]
    try:
        mod = importlib.import_module(module, __package__)
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith(__package__):  # the backend's module is not written yet
            raise PPGANError(f"face detector {key!r} is not available in this build ({e.name} is missing); "
                             f"use one of: mtcnn, haar") from None
        raise
    return getattr(mod, cls)


class FaceDetector:
    """A face detector chosen by name; `detect(images)` gives per image a list of `Face`.

    Args:
        name (str): one of DETECTORS ('mtcnn', 'sfd', 'blazeface', 'mediapipe', 'haar').
        device (str): 'cpu', 'cuda', 'cuda:N' (Haar always runs on the CPU).
        weight_path: the backend's weight file(s), overriding the catalogue.
        download (bool): allow downloading missing weights.
        **options: passed to the backend (e.g. MTCNN's min_face_size, thresholds).
    Raises:
        PPGANError: unknown name (one line, with the closest known name).
    """

    def __init__(self, name="mtcnn", device="cpu", weight_path=None, download=True, **options):
        self.name = str(name).strip().lower()
        cls = detector_class(name)
        try:
            inspect.signature(cls).bind(device=device, weight_path=weight_path, download=download, **options)
        except TypeError:
            known = [p for p in inspect.signature(cls).parameters if p not in ("self", "device", "weight_path",
                                                                              "download")]
            unknown = sorted(set(options) - set(known)) or sorted(options)
            raise ConfigError(f"face detector {self.name!r} has no option {', '.join(unknown)}; "
                              f"its options: {', '.join(known) or 'none'}") from None
        self.backend = cls(device=device, weight_path=weight_path, download=download, **options)

    @property
    def identity(self):
        return self.backend.identity

    @property
    def has_landmarks(self):
        return self.backend.has_landmarks

    def detect(self, images):
        """Faces per image.

        Args:
            images (list[np.ndarray] | np.ndarray): HxWx3 uint8 RGB arrays; one HxWx3 array is
                taken as a list of that one image (the result is still a list of one list), an
                NxHxWx3 array as N images.
        Returns:
            list[list[Face]]: one list per image (empty where no face was found), by descending score.
        Raises:
            PPGANError: input that is not HxWx3 uint8 (one line naming the image's index).
        """
        images = as_image_list(images, where=f"FaceDetector('{self.name}').detect")
        if not images:
            return []
        return self.backend.detect(images)

    def __repr__(self):
        return f"FaceDetector({self.name!r}, identity={self.identity!r})"


class HaarDetector:
    """OpenCV's Viola-Jones frontal-face cascade: the last fallback (no landmarks, CPU only).

    Args:
        device: ignored (OpenCV runs on the CPU).
        weight_path (str | None): a cascade XML file; default OpenCV's
            `haarcascade_frontalface_default.xml` from `cv2.data.haarcascades`.
        download: ignored (the file ships with opencv-python-headless < 5).
        scale_factor (float): pyramid step of detectMultiScale (1.1).
        min_neighbors (int): overlapping hits needed to keep a face (5).
        min_face_size (int): smallest face side, px (20).
    The score is the cascade's level weight squashed to 0..1 (1 / (1 + exp(-weight / 2))).
    """

    has_landmarks = False

    def __init__(self, device="cpu", weight_path=None, download=True, scale_factor=1.1, min_neighbors=5,
                 min_face_size=20):
        import cv2

        if weight_path is None:
            base = getattr(getattr(cv2, "data", None), "haarcascades", None)
            if base is None or not hasattr(cv2, "CascadeClassifier"):
                raise PPGANError("this OpenCV build has no Haar cascades (opencv-python-headless 5.x dropped "
                                 "them); pip install 'opencv-python-headless<5'")
            weight_path = os.path.join(base, HAAR_FILE)
        weight_path = os.path.expanduser(os.fspath(weight_path))
        if not os.path.isfile(weight_path):
            raise PPGANError(f"Haar cascade file not found: {weight_path}")
        if not float(scale_factor) > 1:
            raise ConfigError(f"Haar scale_factor must be > 1, got {scale_factor}")
        try:
            self.cascade = cv2.CascadeClassifier(weight_path)
        except (cv2.error, SystemError):  # OpenCV's XML parser on a file that is not a cascade
            self.cascade = None
        if self.cascade is None or self.cascade.empty():
            raise PPGANError(f"cannot read the Haar cascade {weight_path}: not an OpenCV cascade XML file")
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_face_size = int(min_face_size)
        with open(weight_path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        self.identity = f"haar:{digest}:s{self.scale_factor:g}:n{self.min_neighbors}:min{self.min_face_size}"

    def detect(self, images):
        import cv2

        images = as_image_list(images, where="HaarDetector.detect")
        out = []
        for im in images:
            gray = cv2.equalizeHist(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY))
            rects, _, weights = self.cascade.detectMultiScale3(
                gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                minSize=(self.min_face_size, self.min_face_size), outputRejectLevels=True)
            faces = []
            for (x, y, w, h), lw in zip(np.asarray(rects).reshape(-1, 4), np.asarray(weights).reshape(-1)):
                score = 1.0 / (1.0 + math.exp(-float(lw) / 2))
                faces.append(Face([x, y, x + w, y + h], score))
            out.append(sorted(faces, key=lambda f: -f.score))
        return out

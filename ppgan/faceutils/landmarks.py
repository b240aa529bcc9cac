"""468-point face mesh landmarks (mediapipe's face_landmark model, rebuilt in PyTorch).

`FaceMesh(device='cpu').landmarks(image, faces)` -> one float32 [468, 3] array per face: x, y in
image pixels, z (depth relative to the face centre, same pixel scale as x; smaller = nearer).
It crops each face as mediapipe's face mesh does (face_detection_front_detection_to_roi): a
square of 1.5 x the longer side of the detection box, centred on the box and rotated so the
eyes lie level, sampled to 192x192 in [0, 1]; then maps the model's points back. With the
boxes and eyes of `MediaPipeDetector` (the default when `faces` is None) the result is
mediapipe's `solutions.face_mesh` (static_image_mode=True, refine_landmarks=False). Faces from
other detectors work too (their box conventions differ a little, so the crop does); a face
without landmarks is cropped without rotation.

`mesh_to_five(mesh)` gives the five `LANDMARK_NAMES` points (eye centres, nose tip, mouth corners)
measured on the mesh.
"""
import math

import numpy as np
import torch

from .boxes import Face
from .mediapipe_nets import FaceMeshNet
from .mediapipe_nets import images_to_tensor, rect_crop

ROI_SCALE = 1.5
INPUT_SIZE = 192
# mesh indices: eye corners (outer, inner) of the eye on the image's left / right, nose tip, mouth corners
_EYE_A, _EYE_B, _NOSE_TIP, _MOUTH = (33, 133), (362, 263), 1, (61, 291)


def face_roi(face):
    """mediapipe's face-mesh crop of a `Face`: (centre xy, side, rotation in radians)."""
    box = np.asarray(face.box, np.float64)
    center = (box[:2] + box[2:]) / 2
    side = ROI_SCALE * max(box[2] - box[0], box[3] - box[1])
    rotation = 0.0
    if face.landmarks is not None:
        (x0, y0), (x1, y1) = np.asarray(face.landmarks, np.float64)[:2]
        rotation = -math.atan2(-(y1 - y0), x1 - x0)
        rotation = rotation - 2 * math.pi * math.floor((rotation + math.pi) / (2 * math.pi))
    return center, side, rotation


def mesh_to_five(mesh):
    """[468, 2|3] mesh (pixels) -> float32 [5, 2]: left eye, right eye (centres), nose tip, mouth
    left, mouth right (left = smaller x)."""
    pts = np.asarray(mesh, np.float64)[:, :2]
    eyes = np.stack([pts[list(_EYE_A)].mean(0), pts[list(_EYE_B)].mean(0)])
    mouth = pts[list(_MOUTH)]
    eyes, mouth = eyes[np.argsort(eyes[:, 0])], mouth[np.argsort(mouth[:, 0])]
    return np.stack([eyes[0], eyes[1], pts[_NOSE_TIP], mouth[0], mouth[1]]).astype(np.float32)


class FaceMesh:
    """The 468-point face mesh on faces found by any detector.

    Args:
        device: torch device. weight_path: an explicit face_landmark `.tflite` file.
        download: kept for symmetry with the detectors (the model ships in the mediapipe wheel).
    """

    def __init__(self, device="cpu", weight_path=None, download=True):
        self.device = torch.device(device)
        self.net = FaceMeshNet(weight_path=weight_path, download=download).to(self.device).eval()
        self.identity = self.net.identity
        self._detector = None

    def _faces(self, image):
        if self._detector is None:
            from .mediapipe_nets import MediaPipeDetector
            self._detector = MediaPipeDetector(device=self.device)
        return self._detector.detect([image])[0]

    @torch.no_grad()
    def landmarks(self, image, faces=None, return_scores=False):
        """Mesh points of every face in `image` (HxWx3 uint8 RGB).

        Args:
            faces: `Face` records (boxes and landmarks in this image's pixels); None: detect
                with `MediaPipeDetector` first.
            return_scores: also return each face's presence probability (mediapipe drops
                a face below 0.5).
        Returns:
            list of float32 [468, 3] arrays (x, y, z pixels), one per face, in `faces` order
            (and a list of floats with `return_scores`).
        """
        tensor = images_to_tensor([image], self.device)[0]
        if faces is None:
            faces = self._faces(image)
        faces = [f if isinstance(f, Face) else Face(**f) for f in faces]
        if not faces:
            return ([], []) if return_scores else []
        rois = [face_roi(f) for f in faces]
        centers = torch.tensor(np.array([r[0] for r in rois]), dtype=torch.float32, device=self.device)
        sides = torch.tensor([[r[1], r[1]] for r in rois], dtype=torch.float32, device=self.device)
        rotations = torch.tensor([r[2] for r in rois], dtype=torch.float32, device=self.device)
        crops = rect_crop(tensor.expand(len(faces), -1, -1, -1), centers, sides, rotations, INPUT_SIZE,
                          border="replicate", value_range=(0.0, 1.0))
        points, flags = self.net(crops)
        points = points.double().cpu().numpy()
        out = []
        for (center, side, rot), pts in zip(rois, points):
            x, y = pts[:, 0] / INPUT_SIZE - 0.5, pts[:, 1] / INPUT_SIZE - 0.5
            cos, sin = math.cos(rot), math.sin(rot)
            mesh = np.stack([center[0] + side * (cos * x - sin * y), center[1] + side * (sin * x + cos * y),
                             pts[:, 2] / INPUT_SIZE * side], axis=1)
            out.append(mesh.astype(np.float32))
        if return_scores:
            return out, torch.sigmoid(flags).cpu().tolist()
        return out

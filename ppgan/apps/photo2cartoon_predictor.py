"""Turn the faces of a portrait into cartoons: `Photo2CartoonPredictor` (PaddleGAN's name and
arguments).

    from ppgan.apps import Photo2CartoonPredictor
    pred_img, out_path = Photo2CartoonPredictor(output='output').run('portrait.jpg')  # output/Photo2Cartoon/

How a face is done (PaddleGAN `Photo2CartoonPredictor.run`, with the face toolkit instead of dlib
and the HRNet face parser):
1. faces are found by `ppgan.faceutils.FaceDetector` (MTCNN by default: packaged weights, no
   download); the largest one is taken (PaddleGAN's `get_max_face`), or every one with
   `multi_person`;
2. the face is aligned as PaddleGAN's `align_crop` does (eyes level, the box around the
   landmarks grown 0.8 up, 0.3 down and sideways, squared) straight to a 256x256 crop;
3. a head mask of the crop (mediapipe's selfie segmentation, or an ellipse around the
   landmarks when that model is not installed) whitens the background: `face * m + 255 (1 - m)`;
4. the U-GAT-IT photo2cartoon generator turns the crop into a cartoon in [-1, 1], whose
   background is whitened with the same mask (PaddleGAN's `p2c_cartoon.png`, kept in
   `last_crops`);
5. new here: the cartoon is warped back into the photo and blended through the mask, faded out
   over the crop's last 16 pixels (no seam where the mask meets the crop's edge), so every
   pixel outside the mask keeps its original value exactly.
A photo without a face is an error naming the file; video frames without a face are passed
through unchanged.
"""
import numpy as np
import torch
from torch import nn

from ..utils.errors import PPGANError
from .base_predictor import ImagePredictor, to_numpy

CROP_SIZE = 256  # the generator's training size (PaddleGAN resizes its crop to 256 x 256)


class NoFaceError(PPGANError):
    """The image has no face the detector could find."""


class _CartoonOnly(nn.Module):
    """The generator's image output only (it also returns the CAM logits and the heatmap)."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.tileable = False  # the generator pools globally (CAM, style FC): one window

    def forward(self, x):
        return self.net(x)[0]


class Photo2CartoonPredictor(ImagePredictor):
    """Args:
        output_path (str): output folder (PaddleGAN's argument name); results go to
            `<output_path>/Photo2Cartoon/`. `output=` is accepted too.
        weight_path (str | None): generator weights (PaddleGAN `photo2cartoon_genA2B_weight.pdparams`
            or ours) overriding cache / download.
        multi_person (bool): every face of the photo, not only the largest.
        face_detector (str): 'mtcnn' (default), 'sfd', 'blazeface', 'mediapipe' or 'haar'
            (Haar gives no landmarks: the crop is then not rotated).
        face_enhance: accepted for PaddleGAN compatibility, unused.
        device (str), half (bool | None): as every predictor.
    """

    name = "Photo2Cartoon"
    suffix = "_cartoon"

    def __init__(self, output_path="output", weight_path=None, multi_person=False, face_detector="mtcnn",
                 device="auto", half=None, verbose=True, output=None, detector_weight_path=None):
        super().__init__(output=output or output_path, device=device, half=half, verbose=verbose)
        from ..faceutils import FaceDetector

        self.load_model("photo2cartoon", weight_path)
        self.cartoon_net = _CartoonOnly(self.net).eval()
        self.multi_person = bool(multi_person)
        self.detector = FaceDetector(face_detector, device=self.device, weight_path=detector_weight_path)
        self.segmenter = _head_segmenter(self.device)
        self.last_crops = []  # [(photo crop, cartoon crop)] of the last image: PaddleGAN's p2c_photo / p2c_cartoon
        self.last_regions = []  # [(2x3 image->crop matrix, crop mask)] of the last image
        self.save_crops = False  # run_image also writes them (the CLI's --save_crops)

    # -- one image ----------------------------------------------------------------------------
    def predict_rgb(self, rgb):
        from ..faceutils.alignment import paste_back

        img = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
        faces = self.detector.detect([img])[0]
        if not faces:
            raise NoFaceError("no face found")
        if not self.multi_person:
            faces = [max(faces, key=lambda f: f.width * f.height)]
        out = img
        self.last_crops, self.last_regions = [], []
        for face in faces:
            crop, matrix, mask = self._crop_and_mask(img, face)
            cartoon = self.cartoonize(crop, mask)
            self.last_crops.append((crop, cartoon))
            self.last_regions.append((matrix, mask))
            out = paste_back(out, cartoon, matrix, mask=mask)
        return out.astype(np.float32) / 255.0

    def _crop_and_mask(self, img, face):
        """(256x256 uint8 crop, 2x3 image->crop matrix, float32 mask of the crop in [0, 1])."""
        from ..faceutils.alignment import align_face, feathered_rect
        from ..faceutils.masks import ellipse_mask

        crop, matrix = align_face(img, face.landmarks, size=CROP_SIZE, template="p2c", box=face.box)
        if self.segmenter is not None:
            mask = self.segmenter.mask(crop)
        else:
            pts = None if face.landmarks is None else _affine(face.landmarks, matrix)
            mask = ellipse_mask(pts, crop.shape[:2], box=_affine_box(face.box, matrix))
        # fade out towards the crop's border: the head mask reaches the square's edge at the
        # shoulders, which would otherwise leave a straight seam in the photo
        mask = np.clip(mask.astype(np.float32), 0.0, 1.0) * feathered_rect(mask.shape, CROP_SIZE / 16)
        return crop, matrix, mask

    @torch.no_grad()
    def cartoonize(self, crop, mask):
        """PaddleGAN's steps on one aligned crop: whiten the background, generate, whiten again.
        crop HxWx3 uint8, mask HxW float in [0, 1] -> HxWx3 uint8 cartoon."""
        m = mask[..., None]
        face = crop.astype(np.float32) * m + (1.0 - m) * 255.0
        x = torch.from_numpy(face / 127.5 - 1.0).permute(2, 0, 1)[None].contiguous()
        y = self.forward_image(self.cartoon_net, x, tile=0)  # [1, 3, H, W] in [-1, 1]
        cartoon = (to_numpy(y) + 1.0) * 127.5
        cartoon = cartoon * m + (1.0 - m) * 255.0
        return np.clip(cartoon + 0.5, 0, 255).astype(np.uint8)

    # -- files and video ------------------------------------------------------------------------
    def run_image(self, path, out_path):
        try:
            super().run_image(path, out_path)
        except NoFaceError:
            raise NoFaceError(f"no face found in {path}: photo2cartoon needs a photo with a visible face "
                              f"(try --face_detector mediapipe or haar)") from None
        if self.save_crops:
            self.write_crops(out_path)
        return out_path

    def write_crops(self, out_path):
        """Write `last_crops` beside `out_path` as `<stem>_p2c_photo[_k].png` and
        `<stem>_p2c_cartoon[_k].png` (k from 2 on for further faces); returns the paths."""
        import os

        from ..utils.image import imwrite

        stem = os.path.splitext(out_path)[0]
        written = []
        for k, (photo, cartoon) in enumerate(self.last_crops, 1):
            tail = "" if k == 1 else f"_{k}"
            for kind, img in (("photo", photo), ("cartoon", cartoon)):
                path = f"{stem}_p2c_{kind}{tail}.png"
                imwrite(path, img)
                written.append(path)
        return written

    def predict_batch(self, frames):
        """Video frames: a frame without a face is passed through unchanged."""
        out = []
        for f in frames:
            try:
                out.append(self.predict(f))
            except NoFaceError:
                out.append(f)
        return out

    def stage_params(self):
        return {"multi_person": self.multi_person, "detector": self.detector.identity,
                "mask": "selfie" if self.segmenter is not None else "ellipse"}


def _head_segmenter(device):
    """mediapipe's selfie segmentation when its weights are installed, else None (ellipse masks)."""
    from ..weights import locate

    if locate("mediapipe-selfie-segmentation")[0] == "missing":
        return None
    from ..faceutils.segmentation import SelfieSegmenter

    return SelfieSegmenter(device=device)


def _affine(points, matrix):
    pts = np.asarray(points, np.float64)
    return (pts @ np.asarray(matrix, np.float64)[:, :2].T + np.asarray(matrix, np.float64)[:, 2]).astype(np.float32)


def _affine_box(box, matrix):
    corners = np.array([[box[0], box[1]], [box[2], box[1]], [box[0], box[3]], [box[2], box[3]]], np.float64)
    p = _affine(corners, matrix)
    return np.array([p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()], np.float32)

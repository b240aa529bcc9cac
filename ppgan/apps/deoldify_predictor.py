"""Colourise black-and-white photos and films with DeOldify: `DeOldifyPredictor` (PaddleGAN's
name, arguments and defaults).

    from ppgan.apps import DeOldifyPredictor
    pred_img, out_path = DeOldifyPredictor(output='output', render_factor=32).run('old_photo.jpg')  # output/DeOldify/
    colour = DeOldifyPredictor().predict(gray_or_rgb_uint8)

How a frame is coloured (as PaddleGAN, with two fixes):
1. the image is made gray (BT.601 luma), as PaddleGAN's `convert('LA')`;
2. it is resized so its longer side is `render_factor * 16` pixels **keeping the aspect ratio**
   and padded (edge replication) to a square; PaddleGAN squashes it to the square instead;
3. the generator predicts a colour image, which is cropped back to the content, resized to the
   original size (bilinear), and
4. only its chroma is kept: the result has the original's luminance (full resolution detail)
   and the model's colour (YUV); a colour that would leave the RGB cube is desaturated rather
   than clipped, so the luminance is kept exactly. PaddleGAN feeds RGB arrays to OpenCV's BGR<->YUV conversion,
   which mixes up R and B in the luma weights; here the conversion is done in RGB order.
For videos, `temporal_smoothing` in [0, 1) blends each frame's chroma with the previous
frame's (an exponential moving average), which removes colour flicker on static content.
"""
import cv2
import numpy as np
import torch

from ..utils.errors import PPGANError
from .base_predictor import ImagePredictor, merge_image, split_image
from .predictor_stage import PredictorStage

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
RENDER_BASE = 16


def luma(rgb):
    """BT.601 luma of an HxWx3 float image in [0, 1]."""
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)


def rgb_to_yuv(rgb):
    return cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32), cv2.COLOR_RGB2YUV)


def yuv_to_rgb(yuv):
    return cv2.cvtColor(np.ascontiguousarray(yuv, dtype=np.float32), cv2.COLOR_YUV2RGB)


def fit_square(img, target):
    """Resize HxWxC so the longer side is `target` (aspect kept) and pad to target x target by
    edge replication. Returns (square, (h, w) of the content)."""
    h, w = img.shape[:2]
    s = target / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    if small.ndim == 2:
        small = small[..., None]
    sq = np.pad(small, ((0, target - nh), (0, target - nw), (0, 0)), mode="edge")
    return sq, (nh, nw)


class DeOldifyPredictor(ImagePredictor):
    """Args:
        output (str): output folder; results go to `<output>/DeOldify/`.
        weight_path (str | None): weight file (PaddleGAN `DeOldify_stable.pdparams` /
            `DeOldify_art.pdparams`, or ours) overriding cache / download.
        artistic (bool): the artistic model (ResNet-34 encoder, more colourful) instead of the
            stable one (ResNet-101).
        render_factor (int): the model sees a square of render_factor * 16 pixels (default 32:
            512); larger = more detail in the colour, slower. 7..64 are sensible.
        temporal_smoothing (float): video only; 0 (default) = off, 0.5 = half the previous
            frame's chroma is kept.
        device (str), half (bool | None): as every predictor.
    """

    name = "DeOldify"
    suffix = "_color"
    keep_gray = False

    def __init__(self, output="output", weight_path=None, artistic=False, render_factor=32, temporal_smoothing=0.0,
                 device="auto", half=None, verbose=True, model=None):
        super().__init__(output=output, device=device, half=half, verbose=verbose)
        if not 1 <= int(render_factor) <= 256:
            raise PPGANError(f"render_factor must be in 1..256, got {render_factor}")
        if not 0.0 <= float(temporal_smoothing) < 1.0:
            raise PPGANError(f"temporal_smoothing must be in [0, 1), got {temporal_smoothing}")
        self.render_factor = int(render_factor)
        self.temporal_smoothing = float(temporal_smoothing)
        self.load_model(model or ("deoldify-artistic" if artistic else "deoldify-stable"), weight_path)
        self._log(f"[ppgan] DeOldify model: {self.model_name}, render size {self.render_factor * RENDER_BASE}")

    def stage_params(self):
        return {"render_factor": self.render_factor, "temporal_smoothing": self.temporal_smoothing}

    def _colour(self, gray3):
        """HxWx3 gray float image -> the model's HxWx3 colour image (float, [0, 1])."""
        h, w = gray3.shape[:2]
        sq, (nh, nw) = fit_square(gray3, self.render_factor * RENDER_BASE)
        x = torch.from_numpy(((sq - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1).copy())[None]
        y = self.forward_image(self.net, x)  # whole image (not tileable), fp16 with fp32 redo on CUDA
        out = y[0].numpy().transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN
        out = np.clip(out[:nh, :nw], 0, 1)
        return cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)

    def chroma_and_luma(self, rgb):
        y = luma(rgb)
        gray3 = np.repeat(y[..., None], 3, axis=2)
        return rgb_to_yuv(self._colour(gray3))[..., 1:], y

    @staticmethod
    def combine(y, uv):
        """RGB with luma `y` and chroma `uv`. Where that colour lies outside the RGB cube, the
        chroma is scaled down (desaturated) just enough to fit instead of clipping channels, so
        the luminance stays exactly the original's."""
        rgb = yuv_to_rgb(np.concatenate([y[..., None], uv], axis=2))
        c = rgb - y[..., None]  # the chroma as an RGB offset; luma(c) == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            room = np.where(c > 0, (1.0 - y[..., None]) / c, np.where(c < 0, -y[..., None] / c, np.inf))
        s = np.clip(room.min(axis=2, keepdims=True), 0.0, 1.0)
        return np.clip(y[..., None] + s * c, 0.0, 1.0)

    def predict_rgb(self, rgb):
        uv, y = self.chroma_and_luma(rgb)
        return self.combine(y, uv)

    def frame_stage(self):
        return DeOldifyStage(self)


class DeOldifyStage(PredictorStage):
    """DeOldify on video: with `temporal_smoothing` a, each frame's chroma is a * the previous
    frame's + (1 - a) * its own (the chain restarts at every chunk, so resumed runs match)."""

    def __init__(self, predictor):
        super().__init__(predictor)
        self.prev = None  # the previous frame's chroma

    def reset(self, start_frame):
        super().reset(start_frame)
        self.prev = None

    def push(self, frames):
        pred, a = self.pred, self.pred.temporal_smoothing
        out = []
        for f in frames:
            rgb, alpha, layout = split_image(f)
            uv, y = pred.chroma_and_luma(rgb)
            if a > 0 and self.prev is not None and self.prev.shape == uv.shape:
                uv = a * self.prev + (1 - a) * uv
            self.prev = uv
            out.append(merge_image(pred.combine(y, uv), alpha, layout, keep_gray=False))
        return out

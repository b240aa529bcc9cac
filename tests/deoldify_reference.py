"""Pre- and post-processing of the DeOldify colouriser, exactly as PaddleGAN's
`ppgan/apps/deoldify_predictor.py` (`DeOldifyPredictor.run_image`) does it.

PaddleGAN's pipeline for an image array `img` (RGB, uint8):
  1. grey = PIL `Image.fromarray(img).convert('LA').convert('RGB')`: PIL luma
     L = (19595 R + 38470 G + 7471 B + 32768) >> 16 (ITU-R 601 0.299/0.587/0.114 in 16-bit
     fixed point), replicated to three channels (alpha dropped).
  2. `norm`: PIL resize of the grey image to a square of render_factor * 16 pixels (default
     render_factor 32 -> 512 x 512, `Image.BILINEAR`), /255, then (x - mean) / std with the
     ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), CHW float32, batch of 1.
  3. the model (`ppgan.models.generators.deoldify`), whose output is in the same normalised space.
  4. `denorm`: y * std + mean (float32), HWC, * 255, clip to [0, 255], `astype('uint8')`
     (truncation, not rounding); PIL resize (BILINEAR) back to the grey image's size.
  5. `post_process`: both the colour prediction and the grey image go through
     `cv2.cvtColor(..., COLOR_BGR2YUV)` although they hold RGB data; the grey image's Y is kept,
     U and V are taken from the prediction, and `COLOR_YUV2BGR` gives the result (RGB data again).
     Because RGB is read as BGR, the luminance kept is Y = 0.114 R + 0.587 G + 0.299 B (not the
     usual 0.299 R + 0.587 G + 0.114 B), U = 0.492 (R - Y) + 128 and V = 0.877 (B - Y) + 128 (cv2's
     8-bit formulas with B and R exchanged). The swap is the same both ways, so the result keeps
     the grey input exactly as its (swapped) luminance: the model only chooses the chroma.
`preprocess` does steps 1-2, `postprocess` steps 4-5.

These reproduce PaddleGAN's output for comparisons; `DeOldifyPredictor` itself keeps the aspect
ratio (pads instead of squashing in step 2), uses float YUV in RGB order, and desaturates
out-of-gamut colours instead of clipping (see `ppgan/apps/deoldify_predictor.py`).
"""
import cv2
import numpy as np
import torch
from PIL import Image

from ppgan.utils.errors import PPGANError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RENDER_BASE = 16


def _check_image(img):
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        raise PPGANError(f"DeOldify needs a uint8 image array, got {getattr(img, 'dtype', type(img).__name__)}")
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)) or min(img.shape[:2]) < 1:
        raise PPGANError(f"DeOldify needs an H x W, H x W x 3 (RGB) or H x W x 4 image, got shape {img.shape}")
    return img[..., 0] if img.ndim == 3 and img.shape[2] == 1 else img


def to_grey_rgb(img):
    """PaddleGAN's `Image.fromarray(img).convert('LA').convert('RGB')`: PIL luma of an RGB(A) or
    grey uint8 image, replicated to H x W x 3 uint8 (alpha dropped). Idempotent on grey images."""
    return np.asarray(Image.fromarray(_check_image(img)).convert("LA").convert("RGB"))


def preprocess(img, render_factor=32):
    """The model input for `img`, as PaddleGAN's predictor makes it.

    Args:
        img (np.ndarray): uint8 RGB image H x W x 3 (grey H x W and RGBA are accepted too); it is
            turned grey first (see `to_grey_rgb`).
        render_factor (int | None): the grey image is resized (PIL bilinear) to a square of
            render_factor * 16 pixels, PaddleGAN's default 32 -> 512 x 512. None keeps its size
            (then run the net through `ppgan.utils.inference.padded_forward`).
    Returns:
        torch.Tensor: [1, 3, S, S] (or [1, 3, H, W]) float32, (x / 255 - mean) / std with the
        ImageNet mean and std.
    """
    grey = Image.fromarray(to_grey_rgb(img))
    if render_factor is not None:
        if int(render_factor) < 1:
            raise PPGANError(f"render_factor must be a positive integer, got {render_factor}")
        size = int(render_factor) * RENDER_BASE
        grey = grey.resize((size, size), resample=Image.BILINEAR)
    x = np.asarray(grey).transpose(2, 0, 1).astype(np.float32) / 255.0
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float64).reshape(3, 1, 1)
    std = np.asarray(IMAGENET_STD, dtype=np.float64).reshape(3, 1, 1)
    x -= mean  # in place: float32 arithmetic with float64 constants, as PaddleGAN's `norm`
    x /= std
    return torch.from_numpy(x)[None]


def denormalize(out):
    """PaddleGAN's `denorm`: [1, 3, H, W] or [3, H, W] model output -> H x W x 3 uint8 RGB,
    (y * std + mean) * 255 clipped to [0, 255] and truncated."""
    y = out.detach().float().cpu().numpy() if torch.is_tensor(out) else np.asarray(out, dtype=np.float32)
    if y.ndim == 4:
        if y.shape[0] != 1:
            raise PPGANError(f"postprocess takes one image, got a batch of {y.shape[0]}")
        y = y[0]
    if y.ndim != 3 or y.shape[0] != 3:
        raise PPGANError(f"DeOldify output must be [1, 3, H, W] or [3, H, W], got {tuple(y.shape)}")
    y = y.copy()
    y *= np.asarray(IMAGENET_STD, dtype=np.float64).reshape(3, 1, 1)
    y += np.asarray(IMAGENET_MEAN, dtype=np.float64).reshape(3, 1, 1)
    return (y.transpose(1, 2, 0) * 255).clip(0, 255).astype(np.uint8)


def merge_chroma(color, grey):
    """PaddleGAN's `post_process`: the luminance of `grey` with the chroma of `color` (both
    H x W x 3 uint8 RGB), through cv2's BGR<->YUV on RGB data (see the module docstring)."""
    color_yuv = cv2.cvtColor(np.ascontiguousarray(color), cv2.COLOR_BGR2YUV)
    merged = cv2.cvtColor(np.ascontiguousarray(grey), cv2.COLOR_BGR2YUV)
    merged[:, :, 1:3] = color_yuv[:, :, 1:3]
    return cv2.cvtColor(merged, cv2.COLOR_YUV2BGR)


def postprocess(out, original=None):
    """The colourised image from the model output, as PaddleGAN's predictor makes it.

    Args:
        out (torch.Tensor): model output [1, 3, h, w] (or [3, h, w]), ImageNet-normalised.
        original (np.ndarray | None): the image given to `preprocess` (uint8). When given, the
            colour is resized (PIL bilinear) to its size and merged with its grey version:
            its luminance, the prediction's chroma (`merge_chroma`).
    Returns:
        np.ndarray: H x W x 3 uint8 RGB (h x w without `original`).
    """
    color = denormalize(out)
    if original is None:
        return color
    grey = to_grey_rgb(original)
    h, w = grey.shape[:2]
    color = np.asarray(Image.fromarray(color).resize((w, h), resample=Image.BILINEAR))
    return merge_chroma(color, grey)

"""Tensors -> images: `tensor2img`, `make_grid`, and atomic PNG writers `save_grid` / `save_image`.

Images on the numpy side are HWC, RGB, uint8 in [0, 255]; tensors are CHW / NCHW in `min_max`.
"""
import math
import os
import re

import cv2
import numpy as np
import torch

from .io import atomic_write_bytes

_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def parse_min_max(value):
    """`min_max` as a `(low, high)` float pair.

    Accepts a pair of numbers, or the string a PaddleGAN YAML gives for `min_max: (0., 1.)`
    (`yaml.safe_load` reads a parenthesised pair as text). Raises ValueError otherwise or if
    `low >= high`.
    """
    pair = value
    if isinstance(value, str):
        m = re.fullmatch(rf"\s*[(\[]?\s*({_NUMBER})\s*,\s*({_NUMBER})\s*[)\]]?\s*", value)
        if m is None:
            raise ValueError(f"min_max must be a pair of numbers like (0., 1.), got {value!r}")
        pair = (m.group(1), m.group(2))
    try:
        low, high = (float(v) for v in pair)
    except (TypeError, ValueError):
        raise ValueError(f"min_max must be a pair of numbers like (0., 1.), got {value!r}") from None
    if not low < high:
        raise ValueError(f"min_max needs low < high, got {value!r}")
    return low, high


def _to_numpy(tensor):
    if isinstance(tensor, torch.Tensor):
        return tensor.detach().to("cpu", torch.float64).numpy()
    if isinstance(tensor, np.ndarray):
        return tensor.astype(np.float64)
    raise TypeError(f"expected a torch.Tensor or numpy array, got {type(tensor).__name__}")


def tensor2img(tensor, min_max=(-1., 1.), image_numpy_dtype="uint8"):
    """Convert an image tensor to a HWC RGB numpy image in [0, 255].

    Values are clipped to `min_max` and mapped linearly to [0, 255]. Gray images stay one
    channel: a `[1, H, W]` input gives `[H, W, 1]` (PaddleGAN tiles gray to three channels;
    keeping one channel gives the same PSNR/SSIM and lets `save_image` write a gray PNG).

    Args:
        tensor (Tensor | ndarray): `[C, H, W]`, or `[N, C, H, W]` of which only the first
            image is converted. C is 1 (gray), 3 (RGB) or 4 (RGBA).
        min_max (tuple[float, float] | str): value range of `tensor`. Default: (-1., 1.).
        image_numpy_dtype (str): 'uint8' gives values rounded to uint8; 'float32' or
            'float64' gives unrounded floats in [0, 255]. Default: 'uint8'.

    Returns:
        ndarray: `[H, W, C]` image in [0, 255].
    """
    if image_numpy_dtype not in ("uint8", "float32", "float64"):
        raise ValueError(f"image_numpy_dtype must be 'uint8', 'float32' or 'float64', got {image_numpy_dtype!r}")
    low, high = parse_min_max(min_max)
    img = _to_numpy(tensor)
    if img.ndim == 4:
        if img.shape[0] == 0:
            raise ValueError("tensor2img got an empty batch")
        img = img[0]
    if img.ndim != 3:
        raise ValueError(f"tensor2img expects [C, H, W] or [N, C, H, W], got shape {tuple(img.shape)}")
    img = (np.clip(img, low, high) - low) * (255. / (high - low))
    img = img.transpose(1, 2, 0)  # CHW -> HWC
    if image_numpy_dtype == "uint8":
        return np.round(img).astype(np.uint8)
    return img.astype(image_numpy_dtype)


def make_grid(tensor, nrow=8, padding=2, pad_value=0.):
    """Tile a batch of images into one image, row by row.

    The layout follows torchvision's `make_grid`: `ncol = min(nrow, N)` images per row,
    `ceil(N / ncol)` rows, `padding` pixels of `pad_value` around and between images. Unlike
    torchvision, a single image is padded too and gray stays one channel.

    Args:
        tensor (Tensor | list[Tensor]): `[N, C, H, W]`, `[C, H, W]`, or a list of `[C, H, W]`.
        nrow (int): images per row. Default: 8.
        padding (int): pixels between and around images. Default: 2.
        pad_value (float): value of the padding pixels, in the tensor's range. Default: 0.

    Returns:
        Tensor: `[C, rows * (H + padding) + padding, ncol * (W + padding) + padding]`, same
        dtype and device as the input.
    """
    if isinstance(tensor, (list, tuple)):
        tensor = torch.stack(list(tensor), 0)
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"make_grid expects a tensor or a list of tensors, got {type(tensor).__name__}")
    if tensor.dim() == 3:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 4 or tensor.shape[0] == 0:
        raise ValueError(f"make_grid expects [N, C, H, W] with N >= 1, got shape {tuple(tensor.shape)}")
    if int(nrow) < 1 or int(padding) < 0:
        raise ValueError(f"make_grid needs nrow >= 1 and padding >= 0, got nrow={nrow}, padding={padding}")
    n, c, h, w = tensor.shape
    ncol = min(int(nrow), n)
    nrows = math.ceil(n / ncol)
    cell_h, cell_w = h + padding, w + padding
    grid = tensor.new_full((c, nrows * cell_h + padding, ncol * cell_w + padding), pad_value)
    for k in range(n):
        y, x = divmod(k, ncol)
        top, left = y * cell_h + padding, x * cell_w + padding
        grid[:, top:top + h, left:left + w] = tensor[k]
    return grid


def _encode(img, path):
    ext = os.path.splitext(path)[1].lower()
    if ext not in _IMAGE_EXTS:
        raise ValueError(f"cannot tell the image format of {path!r}; use one of {', '.join(_IMAGE_EXTS)}")
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)
    elif img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(img))
    if not ok:
        raise ValueError(f"OpenCV could not encode a {img.shape} {img.dtype} image as {ext}")
    return buf.tobytes()


def save_image(img, path):
    """Write a `[H, W, 3]` RGB, `[H, W, 4]` RGBA or `[H, W]` / `[H, W, 1]` gray uint8 image.

    The format comes from the extension of `path` (PNG for `.png`). The file is written to a
    temp file in the same folder and moved into place, so `path` is never left half-written.
    """
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ValueError(f"save_image expects a uint8 image, got {img.dtype}")
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] in (1, 3, 4))):
        raise ValueError(f"save_image expects [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got {img.shape}")
    atomic_write_bytes(path, _encode(img, path))
    return path


def save_grid(tensor, path, nrow=8, min_max=(-1., 1.), padding=2, pad_value=None):
    """Write a batch `[N, C, H, W]` (values in `min_max`) as one image grid, atomically.

    Args:
        tensor (Tensor): `[N, C, H, W]` or `[C, H, W]`; C is 1 (saved as gray), 3 or 4.
        path (str): output file; its extension picks the format (normally `.png`).
        nrow (int): images per row. Default: 8.
        min_max (tuple[float, float]): value range of `tensor`. Default: (-1., 1.).
        padding (int): pixels between images. Default: 2.
        pad_value (float | None): padding value in the tensor's range; None means `min_max[0]`
            (black). Default: None.
    """
    low, high = parse_min_max(min_max)
    grid = make_grid(tensor.detach(), nrow=nrow, padding=padding, pad_value=low if pad_value is None else pad_value)
    save_image(tensor2img(grid, (low, high)), path)
    return path

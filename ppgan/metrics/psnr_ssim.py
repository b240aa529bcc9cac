"""PSNR and SSIM on [0, 255] images, as PaddleGAN's `ppgan/metrics/psnr_ssim.py` computes them.

`calculate_psnr` / `calculate_ssim` are the pure functions; `PSNR` / `SSIM` accumulate them over
a validation set (`reset` / `update` / `accumulate`). SSIM follows Wang et al. 2004, "Image
quality assessment: from error visibility to structural similarity": an 11x11 Gaussian window
(sigma 1.5), K1 = 0.01, K2 = 0.03, the map kept only where the window fits ([5:-5] on both
axes), averaged over each channel, then over channels.
"""
import cv2
import numpy as np
import torch
import torch.distributed as dist

from ..utils.errors import ConfigError
from ..utils.visual import parse_min_max, tensor2img
from .builder import METRICS

INPUT_ORDERS = ("HWC", "CHW")

# ITU-R BT.601 for [0, 1] RGB input: rows are R, G, B; columns Y, Cb, Cr (x255 scale).
_RGB2YCBCR = np.array([[65.481, -37.797, 112.0],
                       [128.553, -74.203, -93.786],
                       [24.966, 112.0, -18.214]])
_YCBCR_OFFSET = np.array([16., 128., 128.])


def _check_input_order(input_order):
    if input_order not in INPUT_ORDERS:
        raise ConfigError(f"wrong input_order {input_order!r}; supported input orders are 'HWC' and 'CHW'")


def reorder_image(img, input_order="HWC"):
    """Return `img` in HWC order: `(h, w)` -> `(h, w, 1)`, `(c, h, w)` -> `(h, w, c)` for 'CHW',
    `(h, w, c)` unchanged for 'HWC'. A 2-D input ignores `input_order` (still validated)."""
    _check_input_order(input_order)
    img = np.asarray(img)
    if img.ndim == 2:
        return img[..., None]
    if img.ndim != 3:
        raise ConfigError(f"expected a 2-D or 3-D image, got shape {img.shape}")
    return img.transpose(1, 2, 0) if input_order == "CHW" else img


def rgb2ycbcr(img, y_only=False):
    """RGB -> YCbCr, ITU-R BT.601 (standard-definition TV), not OpenCV's JPEG `RGB2YCrCb`.

    Args:
        img (ndarray): `[..., 3]` RGB; uint8 in [0, 255] or float in [0, 1].
        y_only (bool): return only Y, shape `[...]`. Default: False.

    Returns:
        ndarray: same dtype kind and range as the input (uint8 rounded, float in [0, 1]);
        Y lies in [16, 235] / 255 and Cb, Cr in [16, 240] / 255.

    PaddleGAN's full (non `y_only`) conversion uses the BGR matrix and skips the /255 for float
    input; this one is the correct BT.601 conversion (as BasicSR's). The Y used by the metrics
    is the same in both.
    """
    img = np.asarray(img)
    is_uint8 = img.dtype == np.uint8
    x = img.astype(np.float64) / 255. if is_uint8 else img.astype(np.float64)
    if y_only:
        out = x @ _RGB2YCBCR[:, 0] + _YCBCR_OFFSET[0]
    else:
        out = x @ _RGB2YCBCR + _YCBCR_OFFSET
    if is_uint8:
        return np.clip(np.round(out), 0, 255).astype(np.uint8)
    return (out / 255.).astype(img.dtype if np.issubdtype(img.dtype, np.floating) else np.float64)


def bgr2ycbcr(img, y_only=False):
    """`rgb2ycbcr` for `[..., 3]` BGR input (channels reversed first); same ranges and dtypes."""
    return rgb2ycbcr(np.asarray(img)[..., ::-1], y_only=y_only)


def to_y_channel(img):
    """The BT.601 Y channel of an HWC RGB image in [0, 255].

    Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255, unrounded float, shape `[H, W, 1]`.
    Images that are not 3-channel are returned unchanged (as float).
    """
    img = np.asarray(img, dtype=np.float64)
    if img.ndim == 3 and img.shape[2] == 3:
        return rgb2ycbcr(img / 255., y_only=True)[..., None] * 255.
    return img


def _prepare(img1, img2, crop_border, input_order, test_y_channel):
    """Shared front end of PSNR and SSIM: checks, float64 HWC, border crop, optional Y."""
    _check_input_order(input_order)
    img1, img2 = np.asarray(img1), np.asarray(img2)
    if img1.shape != img2.shape:
        raise ConfigError(f"image shapes differ: {img1.shape} vs {img2.shape}")
    crop_border = int(crop_border)
    if crop_border < 0:
        raise ConfigError(f"crop_border must be >= 0, got {crop_border}")
    img1 = reorder_image(img1.astype(np.float64), input_order)
    img2 = reorder_image(img2.astype(np.float64), input_order)
    if crop_border:
        if min(img1.shape[:2]) <= 2 * crop_border:
            raise ConfigError(f"crop_border {crop_border} leaves nothing of a {img1.shape[:2]} image")
        img1 = img1[crop_border:-crop_border, crop_border:-crop_border, :]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border, :]
    if test_y_channel:
        img1, img2 = to_y_channel(img1), to_y_channel(img2)
    return img1, img2


def calculate_psnr(img1, img2, crop_border, input_order="HWC", test_y_channel=False):
    """PSNR in dB between two images with range [0, 255]: 20 log10(255 / sqrt(MSE)).

    Args:
        img1 (ndarray): image in [0, 255], `[H, W]` or 3-D in `input_order`.
        img2 (ndarray): image of the same shape.
        crop_border (int): pixels dropped at each edge before measuring.
        input_order (str): 'HWC' or 'CHW'. Default: 'HWC'.
        test_y_channel (bool): measure on the BT.601 Y channel of RGB input. Default: False.

    Returns:
        float: PSNR in dB; `inf` for identical images.
    """
    img1, img2 = _prepare(img1, img2, crop_border, input_order, test_y_channel)
    mse = np.mean((img1 - img2) ** 2)
    if mse == 0:
        return float("inf")
    return float(20. * np.log10(255. / np.sqrt(mse)))


def _ssim(img1, img2):
    """SSIM of two single-channel float64 images in [0, 255]; the mean of the valid-region map."""
    c1 = (0.01 * 255) ** 2
    c2 = (0.03 * 255) ** 2
    kernel = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(kernel, kernel.transpose())  # [11, 11], sums to 1

    def filt(x):  # local weighted mean, kept where the window lies fully inside the image
        return cv2.filter2D(x, -1, window)[5:-5, 5:-5]

    mu1, mu2 = filt(img1), filt(img2)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 ** 2, mu2 ** 2, mu1 * mu2
    sigma1_sq = filt(img1 ** 2) - mu1_sq
    sigma2_sq = filt(img2 ** 2) - mu2_sq
    sigma12 = filt(img1 * img2) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))
    return ssim_map.mean()


def calculate_ssim(img1, img2, crop_border, input_order="HWC", test_y_channel=False):
    """SSIM between two images with range [0, 255], per channel then averaged over channels.

    Matches the MATLAB reference of Wang et al. (Gaussian 11x11 window, sigma 1.5, valid region).

    Args:
        img1 (ndarray): image in [0, 255], `[H, W]` or 3-D in `input_order`.
        img2 (ndarray): image of the same shape.
        crop_border (int): pixels dropped at each edge before measuring.
        input_order (str): 'HWC' or 'CHW'. Default: 'HWC'.
        test_y_channel (bool): measure on the BT.601 Y channel of RGB input. Default: False.

    Returns:
        float: SSIM, 1.0 for identical images.
    """
    img1, img2 = _prepare(img1, img2, crop_border, input_order, test_y_channel)
    if min(img1.shape[:2]) < 11:
        raise ConfigError(f"SSIM needs images of at least 11x11 after cropping, got {img1.shape[:2]}")
    return float(np.mean([_ssim(img1[..., i], img2[..., i]) for i in range(img1.shape[2])]))


@METRICS.register()
class PSNR:
    """Mean PSNR over a validation set.

    Args:
        crop_border (int): pixels dropped at each edge. Default: 0.
        input_order (str): 'HWC' or 'CHW', the layout of numpy inputs. Default: 'HWC'.
        test_y_channel (bool): measure on the BT.601 Y channel. Default: False.
        min_max (tuple[float, float] | str): value range of tensor inputs. Default: (0., 1.).

    `update` takes numpy images in [0, 255] (layout `input_order`, used as they are) and torch
    tensors `[C, H, W]` or `[N, C, H, W]` in `min_max`, which are turned into HWC images by
    `tensor2img` and rounded to uint8 values, as PaddleGAN's models do before measuring.
    """

    def __init__(self, crop_border=0, input_order="HWC", test_y_channel=False, min_max=(0., 1.)):
        _check_input_order(input_order)
        if int(crop_border) != crop_border or crop_border < 0:
            raise ConfigError(f"crop_border must be an integer >= 0, got {crop_border!r}")
        self.crop_border = int(crop_border)
        self.input_order = input_order
        self.test_y_channel = bool(test_y_channel)
        self.min_max = parse_min_max(min_max)
        self.reset()

    @staticmethod
    def _measure(img1, img2, crop_border, input_order, test_y_channel):
        return calculate_psnr(img1, img2, crop_border, input_order, test_y_channel)

    def reset(self):
        self.results = []

    def _images(self, x):
        """Flatten one `update` argument into a list of `(image, input_order)`."""
        if isinstance(x, (list, tuple)):
            return [item for part in x for item in self._images(part)]
        if isinstance(x, torch.Tensor):
            if x.dim() == 2:
                x = x.unsqueeze(0)
            if x.dim() == 3:
                x = x.unsqueeze(0)
            if x.dim() != 4:
                raise ConfigError(f"{self.name()} expects tensors [C, H, W] or [N, C, H, W], got {tuple(x.shape)}")
            return [(tensor2img(t, self.min_max).astype(np.float64), "HWC") for t in x]
        x = np.asarray(x)
        if x.ndim == 4:  # a batch of numpy images, each in `input_order`
            return [(img, self.input_order) for img in x]
        return [(x, self.input_order)]

    def update(self, preds, gts, is_seq=False):
        """Measure each `(pred, gt)` pair; with `is_seq`, store their mean as one result.

        Args:
            preds, gts: an image, a batch, or a list of them (see the class docstring).
            is_seq (bool): the images are the frames of one video sequence. Default: False.
        """
        preds, gts = self._images(preds), self._images(gts)
        if len(preds) != len(gts):
            raise ConfigError(f"{self.name()}.update got {len(preds)} predictions but {len(gts)} ground truths")
        values = [self._measure(p, g, self.crop_border, p_order, self.test_y_channel)
                  for (p, p_order), (g, _) in zip(preds, gts)]
        if is_seq:
            if values:
                self.results.append(float(np.mean(values)))
        else:
            self.results.extend(values)

    def accumulate(self):
        """Mean of the results of every rank (0.0 when there are none)."""
        results = list(self.results)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, results)
            results = [v for part in gathered for v in part]
        if not results:
            return 0.
        return float(np.mean(results))

    def name(self):
        return "PSNR"


@METRICS.register()
class SSIM(PSNR):
    """Mean SSIM over a validation set; same arguments and inputs as `PSNR`."""

    @staticmethod
    def _measure(img1, img2, crop_border, input_order, test_y_channel):
        return calculate_ssim(img1, img2, crop_border, input_order, test_y_channel)

    def name(self):
        return "SSIM"


def calculate_mae(img1, img2, crop_border, input_order="HWC", test_y_channel=False):
    """Mean absolute error in grey levels (images in [0, 255]), with PSNR's cropping rules."""
    a, b = _prepare(img1, img2, crop_border, input_order, test_y_channel)
    return float(np.abs(a - b).mean())


@METRICS.register()
class MAE(PSNR):
    """Mean absolute error (0-255 grey levels) over a set; lower is better. Same arguments as PSNR."""

    @staticmethod
    def _measure(img1, img2, crop_border, input_order, test_y_channel):
        return calculate_mae(img1, img2, crop_border, input_order, test_y_channel)

    def name(self):
        return "MAE"

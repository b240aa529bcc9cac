"""Single-image super-resolution datasets.

* `SRDataset` (PaddleGAN): paired LQ / GT folders, matched by file name, with PaddleGAN's
  `preprocess:` pipeline (e.g. `SRPairedRandomCrop`, paired flips, `PairedRandomTransposeHW`).
* `SRGTOnlyDataset`: a folder of GT images only; the LQ image is made on the fly: optional
  Gaussian blur, MATLAB bicubic down-scaling (`ppgan.utils.image.imresize`), optional Gaussian
  noise and JPEG, every parameter drawn from the sample's rng.
* `SRPhotoDataset`: the same degradations on the real photos inside scikit-image, with
  'coffee' and 'rocket' held out for the test split: SR training and evaluation with no download.

Every sample is {'lq': float32 [C, h, w], 'gt': float32 [C, s*h, s*w], 'lq_path', 'gt_path'},
values in [0, 1] with the default pipelines (PaddleGAN's `Normalize` by 255).
"""
import os

import cv2
import numpy as np

from ..utils.errors import ConfigError, DatasetError
from ..utils.image import imread, imresize
from .base_dataset import BaseDataset, to_chw_tensor
from .builder import DATASETS
from .embedded_photos import TEST_PHOTOS, TRAIN_PHOTOS, load_photo
from .image_folder import normalize_extensions
from .paired_dataset import check_folder, scan_nonempty
from .preprocess import Preprocess
from .transforms import paired_augment

DEFAULT_SR_PREPROCESS = (
    {"name": "LoadImageFromFile", "key": "lq"},
    {"name": "LoadImageFromFile", "key": "gt"},
    {"name": "Transforms", "input_keys": ["lq", "gt"],
     "pipeline": [{"name": "Transpose"}, {"name": "Normalize", "mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0]}]},
)


# ---- helpers ------------------------------------------------------------------------------------
def mod_crop(img, scale):
    """Crop H and W down to multiples of `scale` (bottom / right), as the SR benchmarks' GTmod."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def _range(value, name):
    """None | number | [lo, hi] -> None | (lo, hi)."""
    if value is None:
        return None
    if np.isscalar(value):
        return float(value), float(value)
    if len(value) != 2 or float(value[0]) > float(value[1]):
        raise ConfigError(f"{name} must be a number or [low, high] with low <= high, got {value!r}")
    return float(value[0]), float(value[1])


def degrade(gt, scale, rng, blur_sigma=None, noise_sigma=None, jpeg_quality=None):
    """Make an LQ image from a GT image: blur -> bicubic down-scale -> noise -> 8 bits -> JPEG.

    Args:
        gt (np.ndarray): HxWxC uint8 RGB, H and W multiples of `scale`.
        scale (int): down-scaling factor.
        rng (np.random.Generator): every random draw comes from it.
        blur_sigma ((lo, hi) | None): Gaussian blur sigma in GT pixels, uniform in the range.
        noise_sigma ((lo, hi) | None): Gaussian noise sigma in 8-bit levels (0-255).
        jpeg_quality ((lo, hi) | None): JPEG quality, an integer uniform in the range.

    Returns:
        np.ndarray: (H/scale)x(W/scale)xC uint8.
    """
    h, w = gt.shape[:2]
    img = gt.astype(np.float64) / 255.0
    if blur_sigma is not None:
        sigma = rng.uniform(*blur_sigma)
        if sigma > 0:
            k = 2 * int(np.ceil(3 * sigma)) + 1
            img = cv2.GaussianBlur(img, (k, k), sigma, borderType=cv2.BORDER_REFLECT)
            img = img.reshape(gt.shape)
    lq = imresize(img, 1.0 / scale)[: h // scale, : w // scale]
    if noise_sigma is not None:
        sigma = rng.uniform(*noise_sigma) / 255.0
        lq = lq + rng.standard_normal(lq.shape) * sigma
    lq = np.clip(np.floor(lq * 255.0 + 0.5), 0, 255).astype(np.uint8)
    if jpeg_quality is not None:
        q = int(rng.integers(int(jpeg_quality[0]), int(jpeg_quality[1]) + 1))
        bgr = np.ascontiguousarray(lq[..., ::-1]) if lq.shape[-1] == 3 else lq
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, q])
        dec = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        lq = dec[..., ::-1] if lq.shape[-1] == 3 else dec.reshape(lq.shape)
    return np.ascontiguousarray(lq)


def _to_tensor(img):
    return to_chw_tensor(img.astype(np.float32) / 255.0)


def _check_sample(sample, scale, name):
    lq, gt = sample["lq"], sample["gt"]
    if lq.ndim != 3 or gt.ndim != 3 or tuple(gt.shape[-2:]) != (lq.shape[-2] * scale, lq.shape[-1] * scale):
        raise DatasetError(f"{name}: GT {tuple(gt.shape)} is not LQ {tuple(lq.shape)} x{scale} "
                           f"({sample.get('gt_path', '')})")
    return sample


class _DegradationMixin:
    def _init_degradation(self, scale, gt_patch_size, blur_sigma, noise_sigma, jpeg_quality, use_flip, use_rot):
        self.scale = int(scale)
        if self.scale < 1:
            raise ConfigError(f"{type(self).__name__} scale must be a positive integer, got {scale!r}")
        self.gt_patch_size = None if gt_patch_size is None else int(gt_patch_size)
        if self.gt_patch_size is not None and (self.gt_patch_size <= 0 or self.gt_patch_size % self.scale):
            raise ConfigError(f"{type(self).__name__} gt_patch_size {gt_patch_size} must be a positive "
                              f"multiple of scale {scale}")
        self.blur_sigma = _range(blur_sigma, "blur_sigma")
        self.noise_sigma = _range(noise_sigma, "noise_sigma")
        self.jpeg_quality = _range(jpeg_quality, "jpeg_quality")
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ConfigError(f"jpeg_quality must lie in [1, 100], got {jpeg_quality!r}")
        self.use_flip, self.use_rot = bool(use_flip), bool(use_rot)

    def _make_pair(self, gt, rng):
        lq = degrade(gt, self.scale, rng, self.blur_sigma, self.noise_sigma, self.jpeg_quality)
        return _to_tensor(lq), _to_tensor(gt)


# ---- datasets -----------------------------------------------------------------------------------
@DATASETS.register()
class SRDataset(BaseDataset):
    """Paired LQ / GT image folders (PaddleGAN's `SRDataset`), e.g. DIV2K `X4_sub` / `HR_sub`.

    The LQ partner of `<gt_folder>/<dir>/<name><ext>` is `<lq_folder>/<dir>/<filename_tmpl
    .format(name)><ext>` (another image extension is accepted when that file is missing), so
    DIV2K's `0001x4.png` pairs with `0001.png` under `filename_tmpl: '{}x4'`.

    Args:
        lq_folder (str): low-quality images.
        gt_folder (str): ground-truth images.
        preprocess (list[dict] | None): PaddleGAN's step list (`LoadImageFromFile` lq / gt,
            `Transforms` with `SRPairedRandomCrop`, ...). None: load both, CHW, / 255.
        scale (int): GT size / LQ size; checked on every sample.
        filename_tmpl (str): LQ file stem from the GT stem (default '{}').
        extensions (list[str] | None): image extensions (default: all readable ones).

    Sample dict: 'lq' float32 [C, h, w], 'gt' float32 [C, scale*h, scale*w] (in [0, 1] with the
    default preprocess or PaddleGAN's `Normalize` by 255), 'lq_path', 'gt_path' (str).

    Raises:
        DatasetError: a folder is missing or empty, a GT image has no LQ partner, an image
            cannot be read, or LQ and GT sizes do not differ by `scale`.
    """

    def __init__(self, lq_folder, gt_folder, preprocess=None, scale=4, filename_tmpl="{}", extensions=None):
        self.scale = int(scale)
        self.filename_tmpl = str(filename_tmpl)
        self.extensions = normalize_extensions(extensions)
        self.lq_folder = check_folder(lq_folder, "LQ folder")
        self.gt_folder = check_folder(gt_folder, "GT folder")
        self.data_infos = self.prepare_data_infos()
        self.preprocess = Preprocess(list(DEFAULT_SR_PREPROCESS) if preprocess is None else preprocess)
        # DRN's pipelines also make a x2 image of the GT crop ('lqx2', PaddleGAN's key)
        self.extra_keys = tuple(k for k in ("lqx2",) if k in self.preprocess.chw_keys)

    def prepare_data_infos(self):
        lq_files = {os.path.relpath(p, self.lq_folder): p for p in scan_nonempty(self.lq_folder, self.extensions)}
        lq_by_stem = {}
        for rel, p in lq_files.items():
            lq_by_stem.setdefault(os.path.splitext(rel)[0], p)
        infos = []
        for gt_path in scan_nonempty(self.gt_folder, self.extensions):
            rel = os.path.relpath(gt_path, self.gt_folder)
            folder, base = os.path.split(rel)
            stem, ext = os.path.splitext(base)
            lq_stem = os.path.join(folder, self.filename_tmpl.format(stem))
            lq_path = lq_files.get(lq_stem + ext) or lq_by_stem.get(lq_stem)
            if lq_path is None:
                expected = os.path.join(self.lq_folder, lq_stem + ext)
                raise DatasetError(f"GT image {gt_path} has no LQ partner {expected} "
                                   f"(filename_tmpl {self.filename_tmpl!r})")
            infos.append({"lq_path": lq_path, "gt_path": gt_path})
        return infos

    def __len__(self):
        return len(self.data_infos)

    def get_item(self, index, rng):
        sample = self.preprocess.sample(self.data_infos[index], rng, ("lq", "gt") + self.extra_keys)
        return _check_sample(sample, self.scale, type(self).__name__)


@DATASETS.register()
class SRGTOnlyDataset(_DegradationMixin, BaseDataset):
    """GT images only (e.g. DIV2K HR, Flickr2K, your photos); LQ made on the fly from the crop.

    Per sample: a random `gt_patch_size` crop (or the whole image cropped to a multiple of
    `scale` when None), random flips / transposition, then `degrade` (optional blur, MATLAB
    bicubic x1/scale, optional noise, 8-bit rounding, optional JPEG), all drawn from the
    sample's rng. Without blur / noise / JPEG the LQ is exactly the classic bicubic LR image.

    Args:
        gt_folder (str): GT images (searched recursively).
        scale (int): down-scaling factor (default 4).
        gt_patch_size (int | None): GT crop side, a multiple of `scale` (default 128).
        blur_sigma (float | [lo, hi] | None): Gaussian blur sigma in GT pixels (default None).
        noise_sigma (float | [lo, hi] | None): Gaussian noise sigma in 8-bit levels (default None).
        jpeg_quality (int | [lo, hi] | None): JPEG quality range (default None).
        use_flip (bool): random horizontal flip (default True).
        use_rot (bool): random vertical flip and H/W transposition (default True).
        extensions (list[str] | None): image extensions.

    Sample dict: 'lq' float32 [3, P/scale, P/scale], 'gt' float32 [3, P, P] in [0, 1];
    'lq_path' and 'gt_path' both the GT file.

    Raises:
        DatasetError: the folder is missing or empty, or an image is smaller than the patch.
    """

    def __init__(self, gt_folder, scale=4, gt_patch_size=128, blur_sigma=None, noise_sigma=None, jpeg_quality=None,
                 use_flip=True, use_rot=True, extensions=None):
        self._init_degradation(scale, gt_patch_size, blur_sigma, noise_sigma, jpeg_quality, use_flip, use_rot)
        self.gt_folder = check_folder(gt_folder, "GT folder")
        self.files = scan_nonempty(self.gt_folder, normalize_extensions(extensions))

    def __len__(self):
        return len(self.files)

    def get_item(self, index, rng):
        path = self.files[index]
        img = imread(path)
        p = self.gt_patch_size
        if p is None:
            img = mod_crop(img, self.scale)
            if img.shape[0] == 0 or img.shape[1] == 0:
                raise DatasetError(f"image {path} is smaller than the scale {self.scale}")
        else:
            h, w = img.shape[:2]
            if h < p or w < p:
                raise DatasetError(f"image {path} ({h}x{w}) is smaller than gt_patch_size {p}")
            top, left = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
            img = img[top:top + p, left:left + p]
        (img,) = paired_augment([img], rng, self.use_flip, self.use_rot)
        lq, gt = self._make_pair(img, rng)
        return _check_sample({"lq": lq, "gt": gt, "lq_path": path, "gt_path": path}, self.scale, type(self).__name__)


@DATASETS.register()
class SRPhotoDataset(_DegradationMixin, BaseDataset):
    """Super-resolution demo data from the real photos inside scikit-image (no download).

    'train': random `gt_patch_size` crops (with flips / transposition) of astronaut, chelsea,
    hubble_deep_field, immunohistochemistry and retina; 'test': the held-out coffee and rocket,
    whole (cropped to a multiple of `scale`) or a centred `test_size` crop, with a fixed LQ
    (degradation draws seeded by the sample index), so every evaluation sees the same pairs.
    The LQ image is made as in `SRGTOnlyDataset` (bicubic only by default).

    Args:
        split (str): 'train' or 'test'.
        scale (int): down-scaling factor (default 4).
        gt_patch_size (int): train crop side, a multiple of `scale` (default 128).
        num_samples (int): length of the train split (default 1000).
        photos (list[str] | None): override the split's photos (`skimage.data` names).
        photo_scale (float): resize the photos by this factor first (area filter; default 1).
        test_size (int | None): test: centred crop side (a multiple of `scale`), None for the
            whole photo (photos differ in size: batch size 1).
        blur_sigma, noise_sigma, jpeg_quality, use_flip, use_rot: as `SRGTOnlyDataset`.

    Sample dict: 'lq', 'gt' float32 [3, ., .] in [0, 1]; 'lq_path' / 'gt_path' labels such as
    'skimage:coffee@0,0'.
    """

    def __init__(self, split="train", scale=4, gt_patch_size=128, num_samples=1000, photos=None, photo_scale=1.0,
                 test_size=None, blur_sigma=None, noise_sigma=None, jpeg_quality=None, use_flip=True, use_rot=True):
        if split not in ("train", "test"):
            raise ConfigError(f"SRPhotoDataset split must be 'train' or 'test'; got {split!r}")
        self._init_degradation(scale, gt_patch_size, blur_sigma, noise_sigma, jpeg_quality, use_flip, use_rot)
        self.split = split
        self.photos = tuple(photos) if photos else (TRAIN_PHOTOS if split == "train" else TEST_PHOTOS)
        self.images = [load_photo(p, float(photo_scale)) for p in self.photos]
        if split == "train":
            if self.gt_patch_size is None:
                raise ConfigError("SRPhotoDataset train split needs gt_patch_size")
            for name, img in zip(self.photos, self.images):
                if min(img.shape[:2]) < self.gt_patch_size:
                    raise ConfigError(f"photo '{name}' ({img.shape[0]}x{img.shape[1]}) is smaller than "
                                      f"gt_patch_size {self.gt_patch_size}")
            self.num_samples = int(num_samples)
            return
        if test_size is not None and (int(test_size) <= 0 or int(test_size) % self.scale):
            raise ConfigError(f"SRPhotoDataset test_size {test_size} must be a positive multiple of scale {scale}")
        self.pairs = []
        for i, (name, img) in enumerate(zip(self.photos, self.images)):
            if test_size is None:
                y = x = 0
                gt = mod_crop(img, self.scale)
            else:
                t = int(test_size)
                if min(img.shape[:2]) < t:
                    raise ConfigError(f"photo '{name}' ({img.shape[0]}x{img.shape[1]}) is smaller than test_size {t}")
                y, x = (img.shape[0] - t) // 2, (img.shape[1] - t) // 2
                gt = img[y:y + t, x:x + t]
            lq, gt_t = self._make_pair(np.ascontiguousarray(gt), np.random.default_rng(i))
            self.pairs.append((lq, gt_t, f"skimage:{name}@{y},{x}"))
        self.num_samples = len(self.pairs)

    def __len__(self):
        return self.num_samples

    def get_item(self, index, rng):
        if self.split == "test":
            lq, gt, name = self.pairs[index]
            return {"lq": lq.clone(), "gt": gt.clone(), "lq_path": name, "gt_path": name}
        i = index % len(self.images)
        img, p = self.images[i], self.gt_patch_size
        y, x = int(rng.integers(0, img.shape[0] - p + 1)), int(rng.integers(0, img.shape[1] - p + 1))
        (crop,) = paired_augment([img[y:y + p, x:x + p]], rng, self.use_flip, self.use_rot)
        lq, gt = self._make_pair(crop, rng)
        name = f"skimage:{self.photos[i]}@{y},{x}"
        return {"lq": lq, "gt": gt, "lq_path": name, "gt_path": name}

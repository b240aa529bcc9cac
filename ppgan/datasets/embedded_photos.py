"""Image-translation demo data made from the real photos shipped inside scikit-image.

No files to download: `skimage.data` carries a handful of colour photos and, in
`lfw_subset`, 100 small face photos from Labeled Faces in the Wild. Two demo tasks:
  * 'edges2photo' (paired, pix2pix): A = Canny edges, B = the photo. With `source: faces`
    the photos are the LFW faces (80 for training, 20 held out); with `source: photos`,
    crops of the colour photos;
  * 'photo2poster' (unpaired, CycleGAN): A = a crop, B = a warm-tinted, posterised crop.
    Training pairs A and B from *different* crops (unpaired); the test split pairs every
    held-out crop with its true translation, so the held-out error is measurable.
Held-out photos or faces never appear in training (`test` split): they measure generalisation.
"""
import cv2
import numpy as np

from ..utils.errors import ConfigError
from .base_dataset import BaseDataset, to_chw_tensor
from .builder import DATASETS

TRAIN_PHOTOS = ("astronaut", "chelsea", "hubble_deep_field", "immunohistochemistry", "retina")
TEST_PHOTOS = ("coffee", "rocket")
TASKS = ("edges2photo", "photo2poster")
N_FACES, N_TRAIN_FACES = 100, 80  # lfw_subset: 100 faces first (then 100 non-faces)

_PHOTO_CACHE = {}


def load_photo(name, scale):
    """An RGB uint8 photo from skimage.data, resized by `scale` (cached per process)."""
    key = (name, scale)
    if key not in _PHOTO_CACHE:
        import skimage.data

        try:
            img = getattr(skimage.data, name)()
        except Exception as e:  # a photo that skimage would have to download
            raise ConfigError(f"scikit-image photo '{name}' is not available offline: {e}") from None
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        img = np.ascontiguousarray(img[..., :3])
        if scale != 1:
            h, w = img.shape[:2]
            img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        _PHOTO_CACHE[key] = img
    return _PHOTO_CACHE[key]


def load_faces(size):
    """The 100 LFW faces of skimage.data.lfw_subset as RGB uint8 [100, size, size, 3]."""
    key = ("lfw", size)
    if key not in _PHOTO_CACHE:
        import skimage.data

        faces = (skimage.data.lfw_subset()[:N_FACES] * 255).round().astype(np.uint8)
        faces = [cv2.resize(f, (size, size), interpolation=cv2.INTER_CUBIC) for f in faces]
        _PHOTO_CACHE[key] = np.stack([np.repeat(f[..., None], 3, axis=2) for f in faces])
    return _PHOTO_CACHE[key]


def edges(img):
    """Canny edges of an RGB uint8 image as a 3-channel white-on-black uint8 image."""
    gray = cv2.GaussianBlur(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), (3, 3), 0)
    e = cv2.Canny(gray, 60, 150)
    return np.repeat(e[..., None], 3, axis=2)


def posterize(img, levels=4, tint=(1.15, 1.0, 0.75)):
    """The 'poster' domain: a warm colour cast (per-channel gains `tint`), then `levels` grey
    levels per channel."""
    rgb = img.astype(np.float32) * np.asarray(tint, np.float32)
    step = 255.0 / (levels - 1)
    return (np.round(rgb / step) * step).clip(0, 255).astype(np.uint8)


@DATASETS.register()
class EmbeddedPhotoDataset(BaseDataset):
    """Crops of scikit-image's photos for the translation demos.

    Args:
        task (str): 'edges2photo' (paired) or 'photo2poster' (unpaired in training).
        split (str): 'train' (random crops and flips of the training photos) or 'test'
            (a fixed grid of crops of the held-out photos, always paired).
        size (int): crop side in pixels (default 64).
        scale (float): photos are resized by this factor before cropping (default 0.5).
        num_samples (int): length of the train split (default 1000).
        photos (list[str] | None): override the photos of the split.
        per_photo (int): test crops per photo, on a regular grid (default 8).
        source (str): 'photos' (crops of the colour photos, default) or 'faces' (the LFW
            faces, whole, with random flips and shifts in training; edges2photo only).

    Sample dict: 'A', 'B' float32 [3, size, size] in [-1, 1]; 'A_path', 'B_path' (str labels
    such as 'skimage:coffee@40,96').
    """

    def __init__(self, task="edges2photo", split="train", size=64, scale=0.5, num_samples=1000, photos=None,
                 per_photo=8, source="photos"):
        if task not in TASKS:
            raise ConfigError(f"EmbeddedPhotoDataset task must be one of {', '.join(TASKS)}; got {task!r}")
        if split not in ("train", "test"):
            raise ConfigError(f"EmbeddedPhotoDataset split must be 'train' or 'test'; got {split!r}")
        if source not in ("photos", "faces") or (source == "faces" and task != "edges2photo"):
            raise ConfigError(f"EmbeddedPhotoDataset source must be 'photos', or 'faces' with edges2photo; got {source!r}")
        self.task, self.split, self.size, self.scale = task, split, int(size), float(scale)
        self.source = source
        if source == "faces":
            faces = load_faces(self.size)
            self.faces = faces[:N_TRAIN_FACES] if split == "train" else faces[N_TRAIN_FACES:]
            self.num_samples = int(num_samples) if split == "train" else len(self.faces)
            return
        self.photos = tuple(photos) if photos else (TRAIN_PHOTOS if split == "train" else TEST_PHOTOS)
        self.images = [load_photo(p, self.scale) for p in self.photos]
        for name, img in zip(self.photos, self.images):
            if min(img.shape[:2]) < self.size:
                raise ConfigError(f"photo '{name}' at scale {self.scale} is smaller than the crop size {self.size}")
        if split == "test":
            self.crops = [(i, y, x) for i, img in enumerate(self.images) for y, x in self._grid(img, per_photo)]
        self.num_samples = int(num_samples) if split == "train" else len(self.crops)

    def _grid(self, img, n):
        h, w = img.shape[:2]
        rows = max(1, int(np.sqrt(n * h / w)))
        cols = max(1, -(-n // rows))
        ys = np.linspace(0, h - self.size, rows).astype(int)
        xs = np.linspace(0, w - self.size, cols).astype(int)
        return [(int(y), int(x)) for y in ys for x in xs][:n]

    def __len__(self):
        return self.num_samples

    def _random_crop(self, index, rng):
        i = index % len(self.images)
        img = self.images[i]
        y = int(rng.integers(0, img.shape[0] - self.size + 1))
        x = int(rng.integers(0, img.shape[1] - self.size + 1))
        crop = img[y:y + self.size, x:x + self.size]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        return np.ascontiguousarray(crop), f"skimage:{self.photos[i]}@{y},{x}"

    def _face(self, index, rng):
        i = index % len(self.faces)
        face = self.faces[i]
        name = f"skimage:lfw_subset[{i + (N_TRAIN_FACES if self.split == 'test' else 0)}]"
        if self.split == "train":  # random flip and a shift of up to size/16 pixels
            if rng.random() < 0.5:
                face = face[:, ::-1]
            pad = max(1, self.size // 16)
            padded = cv2.copyMakeBorder(np.ascontiguousarray(face), pad, pad, pad, pad, cv2.BORDER_REFLECT)
            y, x = (int(v) for v in rng.integers(0, 2 * pad + 1, size=2))
            face = padded[y:y + self.size, x:x + self.size]
        return np.ascontiguousarray(face), name

    def get_item(self, index, rng):
        if self.source == "faces":
            crop, name = self._face(index, rng)
            other, other_name = crop, name
        elif self.split == "test":
            i, y, x = self.crops[index]
            crop = self.images[i][y:y + self.size, x:x + self.size]
            name = f"skimage:{self.photos[i]}@{y},{x}"
            other, other_name = crop, name
        else:
            crop, name = self._random_crop(index, rng)
            other, other_name = (crop, name) if self.task == "edges2photo" else \
                self._random_crop(int(rng.integers(0, 1 << 30)), rng)
        if self.task == "edges2photo":
            a, b = edges(crop), crop
        else:
            a, b = crop, posterize(other)
        to = lambda im: to_chw_tensor(im.astype(np.float32) / 127.5 - 1.0)  # noqa: E731
        return {"A": to(a), "B": to(b), "A_path": name, "B_path": other_name}

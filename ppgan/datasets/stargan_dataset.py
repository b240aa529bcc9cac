"""Labelled images for StarGAN (v1): CelebA attributes, one sub-folder per domain, several
datasets at once (mask vector), and demo data made from scikit-image's photos.

Sample dict (every dataset here):
    img (Tensor): [3, H, W] float32 in [-1, 1];
    label (Tensor): [L] float32, 0/1 (L = number of selected attributes / domains);
    img_path (str);
    mask (Tensor): [n_groups] float32 one-hot, `StarGANMultiDataset` only.

Each dataset tells the model its labels: `selected_attrs` (names, label order),
`label_type` ('multi': independent attributes, BCE; 'exclusive': one domain, CE) and
`label_groups` ([{name, size, type}], the model's `label_groups` argument).
"""
import os

import numpy as np
import torch

from ..utils.errors import ConfigError, DatasetError, closest
from .base_dataset import BaseDataset, to_chw_tensor
from .builder import DATASETS
from .embedded_photos import load_photo
from .image_folder import normalize_extensions, scan_images
from .paired_dataset import check_folder
from .preprocess import Preprocess

LABEL_TYPES = ("multi", "exclusive")
# yunjey/stargan's default CelebA attributes.
CELEBA_DEFAULT_ATTRS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
ATTR_FILE = "list_attr_celeba.txt"


def _check_label_type(label_type):
    if label_type not in LABEL_TYPES:
        raise ConfigError(f"label_type must be one of {', '.join(LABEL_TYPES)}; got {label_type!r}")
    return label_type


def check_selected(selected, valid, where):
    """`selected` (list or comma-separated str) as a list; DatasetError naming the unknown
    names, the closest valid ones and the first few valid names."""
    if isinstance(selected, str):
        selected = [s.strip() for s in selected.split(",") if s.strip()]
    selected = [str(s) for s in selected]
    if not selected:
        raise ConfigError(f"selected_attrs is empty ({where})")
    unknown = [s for s in selected if s not in valid]
    if unknown:
        hint = closest(unknown[0], valid)
        msg = f"unknown attribute name(s) {', '.join(repr(u) for u in unknown)} for {where}"
        if hint:
            msg += f" (did you mean {', '.join(hint)}?)"
        shown = ", ".join(valid[:8]) + (f", ... ({len(valid)} in total)" if len(valid) > 8 else "")
        raise DatasetError(f"{msg}; valid: {shown}")
    dup = sorted({s for s in selected if selected.count(s) > 1})
    if dup:
        raise ConfigError(f"selected_attrs names {', '.join(dup)} more than once ({where})")
    return selected


def default_stargan_preprocess(image_size, crop_size=None, is_train=True):
    """Load 'img', (train: random horizontal flip), centre crop `crop_size` (if given), resize
    to `image_size`, CHW, [-1, 1] (yunjey/stargan's CelebA pipeline with crop 178, size 128)."""
    pipeline = []
    if is_train:
        pipeline.append({"name": "RandomHorizontalFlip", "prob": 0.5})
    if crop_size:
        pipeline.append({"name": "CenterCrop", "size": int(crop_size)})
    if image_size:
        pipeline.append({"name": "Resize", "size": [int(image_size), int(image_size)], "interpolation": "bilinear"})
    pipeline += [{"name": "Transpose"}, {"name": "Normalize", "mean": [127.5] * 3, "std": [127.5] * 3}]
    return [{"name": "LoadImageFromFile", "key": "img"},
            {"name": "Transforms", "input_keys": ["img"], "pipeline": pipeline}]


def read_celeba_attrs(attr_path):
    """Parse CelebA's `list_attr_celeba.txt`: line 1 the image count, line 2 the attribute
    names, then 'file v1 v2 ...' with values -1 / 1 (0 read as absent).

    Returns (names, [(file, int8 array of 0/1)]). DatasetError (one line naming the file and
    line) when the file is missing or malformed."""
    try:
        with open(attr_path, encoding="utf-8") as f:
            lines = [ln.strip() for ln in f]
    except FileNotFoundError:
        raise DatasetError(f"attribute file not found: {attr_path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read attribute file {attr_path}: {getattr(e, 'strerror', None) or e}") from None
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) < 2:
        raise DatasetError(f"attribute file {attr_path} is too short: it needs a count line, a line of "
                           "attribute names, then one line per image")
    try:
        count = int(lines[0].split()[0])
    except (ValueError, IndexError):
        raise DatasetError(f"attribute file {attr_path} line 1 must be the image count, got {lines[0][:40]!r}") \
            from None
    names = lines[1].split()
    if not names:
        raise DatasetError(f"attribute file {attr_path} line 2 must list the attribute names")
    rows = []
    for no, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(names) + 1:
            raise DatasetError(f"attribute file {attr_path} line {no}: expected a file name and {len(names)} "
                               f"values, got {len(parts)} fields")
        try:
            values = [int(v) for v in parts[1:]]
        except ValueError:
            raise DatasetError(f"attribute file {attr_path} line {no}: values must be -1 or 1") from None
        if any(v not in (-1, 0, 1) for v in values):
            raise DatasetError(f"attribute file {attr_path} line {no}: values must be -1 or 1")
        rows.append((parts[0], (np.asarray(values) > 0).astype(np.int8)))
    if count != len(rows):
        raise DatasetError(f"attribute file {attr_path} says {count} images on line 1 but lists {len(rows)}")
    if not rows:
        raise DatasetError(f"attribute file {attr_path} lists no images")
    return names, rows


@DATASETS.register()
class StarGANDataset(BaseDataset):
    """Images with attribute / domain labels for StarGAN.

    Layouts (`mode`):
      * 'celeba': `dataroot` holds the images (CelebA's `img_align_celeba`); `attr_path`
        (default: `list_attr_celeba.txt` in `dataroot` or next to it) gives each file's
        attributes. As in yunjey/stargan, the rows are shuffled with a fixed seed (1234; numpy's
        generator, so not the same 2000 images as there) and the first `test_count` are the test
        split (`is_train: false`), the rest the train split. Every listed file must exist; images
        the file does not list are ignored.
      * 'folders': one sub-folder of `dataroot` per domain (e.g. RaFD expressions); the folder
        names, sorted, are the domains (exclusive one-hot labels). Point `dataroot` at the train
        or test folder.

    Args:
        dataroot (str): images folder (celeba) or folder of domain folders (folders).
        attr_path (str | None): CelebA attribute file (celeba mode).
        selected_attrs (list[str] | str | None): the attributes / domains to use, in label
            order. Default: Black_Hair, Blond_Hair, Brown_Hair, Male, Young (celeba); every
            sub-folder (folders).
        mode (str): 'celeba' or 'folders'.
        image_size (int): output side (default 128).
        crop_size (int | None): centre crop before resizing. None: 178 in celeba mode (the
            paper's), no crop in folders mode; 0: no crop.
        is_train (bool): train split and random flips (default True).
        preprocess (list[dict] | None): PaddleGAN-style steps over key 'img' (replacing the
            default load / flip / crop / resize / normalise pipeline).
        label_type (str | None): 'multi' or 'exclusive' (default: multi for celeba,
            exclusive for folders). Only tells the model which classification loss to use.
        test_count (int): celeba test split size (default 2000, as yunjey/stargan).
        extensions (list[str] | None): image extensions (folders mode).
        group_name (str | None): name of this label group (default: the mode).

    Raises:
        DatasetError: missing folder / attribute file, unknown attribute names (listing valid
            ones), an attribute file that does not match the images, no images.
    """

    def __init__(self, dataroot, attr_path=None, selected_attrs=None, mode="celeba", image_size=128, crop_size=None,
                 is_train=True, preprocess=None, label_type=None, test_count=2000, extensions=None, group_name=None):
        if mode not in ("celeba", "folders"):
            raise ConfigError(f"StarGANDataset mode must be 'celeba' or 'folders'; got {mode!r}")
        self.mode, self.is_train = mode, bool(is_train)
        self.dataroot = check_folder(dataroot)
        self.label_type = _check_label_type(label_type or ("multi" if mode == "celeba" else "exclusive"))
        self.extensions = normalize_extensions(extensions)
        if mode == "celeba":
            self._load_celeba(attr_path, selected_attrs, int(test_count))
        else:
            self._load_folders(selected_attrs)
        if not self.samples:
            raise DatasetError(f"StarGANDataset found no images for the {'train' if self.is_train else 'test'} "
                               f"split in {self.dataroot}")
        if crop_size is None:
            crop_size = 178 if mode == "celeba" else 0
        self.preprocess = Preprocess(default_stargan_preprocess(image_size, crop_size, self.is_train)
                                     if preprocess is None else preprocess)
        self.group_name = group_name or mode
        self.label_groups = [{"name": self.group_name, "size": len(self.selected_attrs), "type": self.label_type}]

    def _find_attr_file(self, attr_path):
        if attr_path is not None:
            return os.path.expanduser(os.fspath(attr_path))
        for folder in (self.dataroot, os.path.dirname(os.path.abspath(self.dataroot))):
            path = os.path.join(folder, ATTR_FILE)
            if os.path.isfile(path):
                return path
        raise DatasetError(f"no attribute file {ATTR_FILE} in {self.dataroot} or its parent folder; "
                           "set attr_path")

    def _load_celeba(self, attr_path, selected_attrs, test_count):
        path = self._find_attr_file(attr_path)
        names, rows = read_celeba_attrs(path)
        self.all_attrs = names
        self.selected_attrs = check_selected(CELEBA_DEFAULT_ATTRS if selected_attrs is None else selected_attrs,
                                             names, f"attribute file {path}")
        cols = [names.index(a) for a in self.selected_attrs]
        try:
            present = set(os.listdir(self.dataroot))
        except OSError as e:
            raise DatasetError(f"cannot list dataset folder {self.dataroot}: {e.strerror or e}") from None
        missing = [f for f, _ in rows if f not in present and not os.path.isfile(os.path.join(self.dataroot, f))]
        if missing:
            raise DatasetError(f"attribute file {path} does not match the images: {len(missing)} of its {len(rows)} "
                               f"files are not in {self.dataroot}, first {missing[0]!r}")
        order = np.random.default_rng(1234).permutation(len(rows))
        if not 0 <= test_count < len(rows):
            raise DatasetError(f"attribute file {path} lists {len(rows)} images, not more than test_count "
                               f"{test_count}: the train split would be empty (set test_count smaller)")
        keep = order[:test_count] if not self.is_train else order[test_count:]
        self.samples = [(os.path.join(self.dataroot, rows[i][0]), rows[i][1][cols].astype(np.float32))
                        for i in sorted(keep)]

    def _load_folders(self, selected_attrs):
        try:
            subdirs = sorted(e.name for e in os.scandir(self.dataroot) if e.is_dir() and not e.name.startswith("."))
        except OSError as e:
            raise DatasetError(f"cannot list dataset folder {self.dataroot}: {e.strerror or e}") from None
        if not subdirs:
            raise DatasetError(f"StarGANDataset folders mode needs one sub-folder per domain in {self.dataroot}; "
                               "found none")
        self.all_attrs = subdirs
        self.selected_attrs = check_selected(subdirs if selected_attrs is None else selected_attrs, subdirs,
                                             f"the domain folders of {self.dataroot}")
        self.samples = []
        n = len(self.selected_attrs)
        for k, name in enumerate(self.selected_attrs):
            folder = os.path.join(self.dataroot, name)
            files = scan_images(folder, self.extensions)
            if not files:
                raise DatasetError(f"domain folder {folder} has no images ({', '.join(self.extensions)})")
            label = np.zeros(n, np.float32)
            label[k] = 1
            self.samples.extend((f, label) for f in files)

    def __len__(self):
        return len(self.samples)

    def get_item(self, index, rng):
        path, label = self.samples[index]
        out = self.preprocess.sample({"img_path": path}, rng, ("img",))
        return {"img": out["img"], "label": torch.from_numpy(label.copy()), "img_path": path}


@DATASETS.register()
class StarGANMultiDataset(BaseDataset):
    """Several labelled datasets at once (the paper's CelebA + RaFD), for the mask vector.

    Every sample's label has the full length L = sum of the sub-datasets' label counts: its own
    dataset's labels in place, zeros elsewhere; 'mask' [n_groups] is one-hot for its dataset.
    The samples are the sub-datasets' one after the other (the sampler shuffles them).

    Args:
        datasets (list[dict]): sub-dataset configs (any dataset of this module, with 'name').
        is_train (bool | None): passed to sub-configs that do not set it.

    Attributes: selected_attrs (all names, label order), label_groups ([{name, size, type}]).
    """

    def __init__(self, datasets, is_train=None):
        if not isinstance(datasets, (list, tuple)) or len(datasets) < 2:
            raise ConfigError("StarGANMultiDataset needs a list of at least two dataset configs")
        self.datasets = []
        for i, cfg in enumerate(datasets):
            if not isinstance(cfg, dict) or "name" not in cfg:
                raise ConfigError(f"StarGANMultiDataset datasets #{i + 1} must be a mapping with a 'name' key")
            cfg = dict(cfg)
            if is_train is not None and "is_train" not in cfg and "split" not in cfg:
                cfg["is_train"] = is_train
            ds = DATASETS.build(cfg)
            if not hasattr(ds, "label_groups"):
                raise ConfigError(f"StarGANMultiDataset datasets #{i + 1} ({cfg['name']}) gives no labels")
            self.datasets.append(ds)
        self.label_groups, self.selected_attrs, self.offsets = [], [], []
        names = set()
        for i, ds in enumerate(self.datasets):
            group = dict(ds.label_groups[0])
            if group["name"] in names:
                group["name"] = f"{group['name']}{i}"
            names.add(group["name"])
            self.offsets.append(len(self.selected_attrs))
            self.label_groups.append(group)
            self.selected_attrs.extend(ds.selected_attrs)
        self.label_size = len(self.selected_attrs)
        self.cumulative = np.cumsum([len(ds) for ds in self.datasets])

    def __len__(self):
        return int(self.cumulative[-1])

    def get_item(self, index, rng):
        k = int(np.searchsorted(self.cumulative, index, side="right"))
        start = 0 if k == 0 else int(self.cumulative[k - 1])
        sample = self.datasets[k].get_item(index - start, rng)
        label = torch.zeros(self.label_size)
        own = sample["label"]
        label[self.offsets[k]:self.offsets[k] + own.numel()] = own
        mask = torch.zeros(len(self.datasets))
        mask[k] = 1
        return {"img": sample["img"], "label": label, "mask": mask, "img_path": sample["img_path"]}


# ---- demo data: synthetic attributes on crops of scikit-image's photos ---------------------------
DEMO_TRAIN_PHOTOS = ("astronaut", "chelsea", "immunohistochemistry", "retina", "hubble_deep_field")
DEMO_TEST_PHOTOS = ("coffee", "rocket")  # held out, as EmbeddedPhotoDataset
DEMO_ATTRS = ("warm", "bright", "grey")
BASE_LUMA, BASE_CONTRAST, BASE_CHROMA = 0.3, 0.1, 0.07  # the neutral crop: dark, colourful, no cast
BRIGHT_SHIFT = 0.35
WARM_TINT = np.array([0.12, 0.03, -0.12], np.float32)
# attribute_scores above these = attribute present ('grey': below), about halfway between the
# measured absent and present values (clipping at 0 and 1 lowers the chroma of a few crops)
THRESHOLDS = {"warm": 0.12, "bright": BASE_LUMA + BRIGHT_SHIFT / 2, "grey": 0.02}
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def neutral_crop(crop):
    """An RGB uint8 crop as float32 HxWx3 in [0, 1] with fixed statistics: mean luma 0.3,
    luma std <= 0.1, no colour cast (channel means equal) and mean chroma 0.07, so that
    every synthetic attribute starts from the same 'absent' state."""
    img = crop.astype(np.float32) / 255.0
    luma = img @ LUMA
    chroma = img - luma[..., None]
    chroma -= chroma.reshape(-1, 3).mean(0)
    chroma *= BASE_CHROMA / max(np.abs(chroma).mean(), 1e-3)
    luma = (luma - luma.mean()) * min(1.0, BASE_CONTRAST / max(luma.std(), 1e-3)) + BASE_LUMA
    return luma[..., None] + chroma


def random_colour_crop(img, size, rng):
    """(crop, y, x): a random size x size crop of `img` that has colour (up to 20 tries: flat
    crops such as black borders have no colour to take away), flipped left-right half the time."""
    for _ in range(20):
        y = int(rng.integers(0, img.shape[0] - size + 1))
        x = int(rng.integers(0, img.shape[1] - size + 1))
        crop = img[y:y + size, x:x + size]
        if has_colour(crop):
            break
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return crop, y, x


def has_colour(crop, min_chroma=3.0):
    """Whether a uint8 crop has colour variation (mean |chroma - cast| >= `min_chroma` grey
    levels) and is mostly not black (a border), so `neutral_crop` can give it the base chroma."""
    img = crop.astype(np.float32)
    luma = img @ LUMA
    chroma = img - luma[..., None]
    colourful = float(np.abs(chroma - chroma.reshape(-1, 3).mean(0)).mean()) >= min_chroma
    return colourful and float((luma < 12).mean()) < 0.1


def apply_attributes(base, attrs):
    """The neutral crop `base` with the named attributes (a set of DEMO_ATTRS) applied:
    grey (chroma removed), bright (+0.35), warm (an orange cast). Returns uint8 HxWx3."""
    img = base.copy()
    if "grey" in attrs:
        img = np.repeat((img @ LUMA)[..., None], 3, axis=2)
    if "bright" in attrs:
        img = img + BRIGHT_SHIFT
    if "warm" in attrs:
        img = img + WARM_TINT
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def attribute_scores(images):
    """Measured demo attributes of images (torch or numpy [N, 3, H, W] in [-1, 1], or one
    [3, H, W]): {'warm': mean R - mean B, 'bright': mean luma, 'grey': mean |chroma| after
    removing the colour cast}, each a float array [N]. Above THRESHOLDS[name] = present."""
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    x = (x.astype(np.float32) + 1) / 2
    if x.ndim == 3:
        x = x[None]
    rgb = x.transpose(0, 2, 3, 1)
    luma = rgb @ LUMA
    chroma = rgb - luma[..., None]
    chroma = chroma - chroma.mean(axis=(1, 2), keepdims=True)
    return {"warm": rgb[..., 0].mean((1, 2)) - rgb[..., 2].mean((1, 2)),
            "bright": luma.mean((1, 2)),
            "grey": np.abs(chroma).mean((1, 2, 3))}


def predict_attributes(images, attrs=DEMO_ATTRS):
    """0/1 float32 [N, len(attrs)]: the attributes measured present (see `attribute_scores`).
    'grey' is present when the measured chroma is BELOW its threshold."""
    scores = attribute_scores(images)
    cols = []
    for a in attrs:
        if a not in THRESHOLDS:
            raise ConfigError(f"unknown demo attribute {a!r}; valid: {', '.join(DEMO_ATTRS)}")
        s = scores[a] < THRESHOLDS[a] if a == "grey" else scores[a] > THRESHOLDS[a]
        cols.append(s.astype(np.float32))
    return np.stack(cols, axis=1)


def photo_crops(photos, size, scale, per_photo):
    """[(photo index, y, x)]: `per_photo` crops of each photo on a regular grid."""
    out = []
    for i, name in enumerate(photos):
        h, w = load_photo(name, scale).shape[:2]
        if min(h, w) < size:
            raise ConfigError(f"photo '{name}' at scale {scale} is smaller than the crop size {size}")
        rows = max(1, int(np.sqrt(per_photo * h / w)))
        cols = max(1, -(-per_photo // rows))
        ys = np.linspace(0, h - size, rows).astype(int)
        xs = np.linspace(0, w - size, cols).astype(int)
        out += [(i, int(y), int(x)) for y in ys for x in xs][:per_photo]
    return out


@DATASETS.register("EmbeddedStarGANDataset")
class EmbeddedAttributeDataset(BaseDataset):
    """StarGAN demo data: crops of scikit-image's photos with synthetic attributes.

    Each crop is first made 'neutral' (`neutral_crop`: dark, colourful, no colour cast), then
    each selected attribute is applied or not: 'warm' (orange cast), 'bright' (+0.35),
    'grey' (no colour). The label says which were applied; `predict_attributes` measures them
    back from any image (held-out accuracy of translated images).

    Args:
        selected_attrs (list[str] | str): a subset of warm, bright, grey (label order).
        split (str): 'train' (random crops, flips and random labels) or 'test' (held-out
            photos: a grid of crops x every label combination, deterministic).
        size (int): crop side (default 32).
        scale (float): photos are resized by this factor before cropping (default 0.25).
        num_samples (int): train split length (default 2000).
        per_photo (int): test crops per photo (default 8).
        photos (list[str] | None): override the split's photos (skimage.data names).
        is_train (bool | None): alternative to `split` (True: train, False: test).
    """

    def __init__(self, selected_attrs=DEMO_ATTRS, split="train", size=32, scale=0.25, num_samples=2000, per_photo=8,
                 photos=None, is_train=None):
        if is_train is not None:
            split = "train" if is_train else "test"
        if split not in ("train", "test"):
            raise ConfigError(f"EmbeddedAttributeDataset split must be 'train' or 'test'; got {split!r}")
        self.selected_attrs = check_selected(selected_attrs, list(DEMO_ATTRS), "the embedded demo")
        self.split, self.size, self.scale = split, int(size), float(scale)
        self.is_train = split == "train"
        self.label_type = "multi"
        self.label_groups = [{"name": "embedded", "size": len(self.selected_attrs), "type": "multi"}]
        self.photos = tuple(photos) if photos else (DEMO_TRAIN_PHOTOS if self.is_train else DEMO_TEST_PHOTOS)
        self.images = [load_photo(p, self.scale) for p in self.photos]
        self.crops = photo_crops(self.photos, self.size, self.scale, 1 if self.is_train else int(per_photo))
        self.n_combos = 2 ** len(self.selected_attrs)
        self.num_samples = int(num_samples) if self.is_train else len(self.crops) * self.n_combos

    def __len__(self):
        return self.num_samples

    def crop_at(self, index, rng):
        """(uint8 crop, name) of sample `index`: random (train) or the test grid."""
        if self.is_train:
            i = index % len(self.images)
            crop, y, x = random_colour_crop(self.images[i], self.size, rng)
        else:
            i, y, x = self.crops[index // self.n_combos]
            crop = self.images[i][y:y + self.size, x:x + self.size]
        return np.ascontiguousarray(crop), f"skimage:{self.photos[i]}@{y},{x}"

    def get_item(self, index, rng):
        crop, name = self.crop_at(index, rng)
        if self.is_train:
            label = (rng.random(len(self.selected_attrs)) < 0.5).astype(np.float32)
        else:
            combo = index % self.n_combos
            label = np.array([(combo >> k) & 1 for k in range(len(self.selected_attrs))], np.float32)
        on = {a for a, v in zip(self.selected_attrs, label) if v}
        img = apply_attributes(neutral_crop(crop), on)
        tag = "+".join(a for a in self.selected_attrs if a in on) or "none"
        return {"img": to_chw_tensor(img.astype(np.float32) / 127.5 - 1.0), "label": torch.from_numpy(label),
                "img_path": f"{name}:{tag}"}

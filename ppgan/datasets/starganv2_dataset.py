"""Images of several domains for StarGAN v2 (PaddleGAN's `StarGANv2Dataset`), and the
embedded demo domains made from scikit-image's photos.

Sample dict (PaddleGAN's keys):
    train: 'src', 'src_cls', 'ref', 'ref2', 'ref_cls';  test: 'src', 'src_cls', 'ref', 'ref_cls'
    images float32 [3, H, W] (in [-1, 1] with PaddleGAN's Normalize 127.5), classes int64
    scalars (domain index), plus '<key>_path' strings.
"""
import os

import numpy as np
import torch

from ..utils.errors import ConfigError, DatasetError
from .base_dataset import BaseDataset, to_chw_tensor
from .builder import DATASETS
from .embedded_photos import load_photo
from .image_folder import normalize_extensions, scan_images
from .paired_dataset import check_folder
from .preprocess import Preprocess
from .stargan_dataset import LUMA, check_selected, neutral_crop, photo_crops, random_colour_crop

TRAIN_KEYS = ("src", "ref", "ref2")
TEST_KEYS = ("src", "ref")


def default_v2_preprocess(keys, img_size=None):
    """Load `keys`, (resize to img_size), CHW, [-1, 1]."""
    pipeline = [{"name": "Resize", "size": [int(img_size)] * 2, "interpolation": "bilinear"}] if img_size else []
    pipeline += [{"name": "Transpose"}, {"name": "Normalize", "mean": [127.5] * 3, "std": [127.5] * 3}]
    return [{"name": "LoadImageFromFile", "key": k} for k in keys] + \
        [{"name": "Transforms", "input_keys": list(keys), "pipeline": pipeline}]


def scan_domains(root, extensions):
    """(domain names sorted, [[paths] per domain]) of `root`/<domain>/**; DatasetError if `root`
    has no domain folders or a domain folder has no images."""
    try:
        names = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    except OSError as e:
        raise DatasetError(f"cannot list dataset folder {root}: {e.strerror or e}") from None
    if not names:
        raise DatasetError(f"StarGANv2Dataset needs one sub-folder per domain in {root} (e.g. female/, male/); "
                           "found none")
    files = []
    for name in names:
        found = scan_images(os.path.join(root, name), extensions)
        if not found:
            raise DatasetError(f"domain folder {os.path.join(root, name)} has no images ({', '.join(extensions)})")
        files.append(found)
    return names, files


def round_robin(files):
    """[(path, domain)] taking one image of each domain in turn (domains of unequal size:
    the smaller ones run out first)."""
    out, longest = [], max(len(f) for f in files)
    for i in range(longest):
        out += [(f[i], d) for d, f in enumerate(files) if i < len(f)]
    return out


@DATASETS.register()
class StarGANv2Dataset(BaseDataset):
    """PaddleGAN's StarGAN v2 data: `dataroot/<domain>/**/<image>`, domains = sub-folder names
    sorted (AFHQ: cat, dog, wild; CelebA-HQ: female, male).

    Training (`is_train`): sample i's source is image i, or with `balanced` (default, as
    PaddleGAN's weighted sampler) a random image of a domain drawn uniformly; the references
    'ref' and 'ref2' are two random images of one random domain ('ref_cls'). All draws come
    from the sample's rng (reproducible, resumable).
    Test: if `dataroot` has 'src' and 'ref' folders, sources come from src/ and references from
    ref/; else both from `dataroot`. Sources alternate between domains; the reference of a
    source of domain d is the next image of domain d + 1 (cycling), so every pair translates
    across domains; the first `test_count` pairs are used. PaddleGAN pairs image i with image i of the same list (the
    same image) and takes the first `test_count` files of the first domain; here the pairs
    cover every domain.

    Args:
        dataroot (str): the domain folders (train) or the val folder.
        is_train (bool): train or test sampling.
        preprocess (list[dict] | None): PaddleGAN's steps over keys src/ref/ref2 (see
            configs/starganv2_*.yaml). None: load, (resize to `img_size`), CHW, [-1, 1].
        test_count (int): number of test pairs; 0 or None: all (PaddleGAN's 0 gives none).
        balanced (bool): balanced source sampling in training (default True).
        img_size (int | None): resize in the default preprocess.
        extensions (list[str] | None): image extensions.

    Attributes: domains (names, class order), num_domains.
    """

    def __init__(self, dataroot, is_train=True, preprocess=None, test_count=0, balanced=True, img_size=None,
                 extensions=None):
        self.dataroot = check_folder(dataroot)
        self.is_train, self.balanced = bool(is_train), bool(balanced)
        self.extensions = normalize_extensions(extensions)
        keys = TRAIN_KEYS if self.is_train else TEST_KEYS
        if self.is_train:
            self.domains, self.files = scan_domains(self.dataroot, self.extensions)
            self.samples = [(p, d) for d, f in enumerate(self.files) for p in f]
        else:
            src, ref = os.path.join(self.dataroot, "src"), os.path.join(self.dataroot, "ref")
            if os.path.isdir(src) and os.path.isdir(ref):
                self.domains, src_files = scan_domains(src, self.extensions)
                ref_domains, ref_files = scan_domains(ref, self.extensions)
                if ref_domains != self.domains:
                    raise DatasetError(f"the domain folders of {src} ({', '.join(self.domains)}) and {ref} "
                                       f"({', '.join(ref_domains)}) differ")
            else:
                self.domains, src_files = scan_domains(self.dataroot, self.extensions)
                ref_files = src_files
            k = len(self.domains)
            self.samples = round_robin(src_files)
            # source of domain d -> the next unused reference of domain d + 1 (cycling)
            used = [1 if k == 1 else 0] * k
            self.refs = []
            for _, d in self.samples:
                r = (d + 1) % k
                self.refs.append((ref_files[r][used[r] % len(ref_files[r])], r))
                used[r] += 1
            if test_count:
                self.samples, self.refs = self.samples[:int(test_count)], self.refs[:int(test_count)]
        self.num_domains = len(self.domains)
        self.keys = keys
        self.preprocess = Preprocess(default_v2_preprocess(keys, img_size) if preprocess is None else preprocess)

    def __len__(self):
        return len(self.samples)

    def _pick(self, files, rng):
        return files[int(rng.integers(len(files)))]

    def get_item(self, index, rng):
        if self.is_train:
            if self.balanced:
                src_cls = int(rng.integers(self.num_domains))
                src = self._pick(self.files[src_cls], rng)
            else:
                src, src_cls = self.samples[index]
            ref_cls = int(rng.integers(self.num_domains))
            refs = self.files[ref_cls]
            i, j = rng.choice(len(refs), size=2, replace=len(refs) < 2)
            datas = {"src_path": src, "ref_path": refs[int(i)], "ref2_path": refs[int(j)]}
        else:
            (src, src_cls), (ref, ref_cls) = self.samples[index], self.refs[index]
            datas = {"src_path": src, "ref_path": ref}
        out = self.preprocess.sample(datas, rng, self.keys)
        out["src_cls"] = torch.tensor(src_cls, dtype=torch.int64)
        out["ref_cls"] = torch.tensor(ref_cls, dtype=torch.int64)
        return out


# ---- demo domains: colour styles on crops of scikit-image's photos ------------------------------
DEMO_DOMAINS = ("warm", "cool", "grey")
DOMAIN_TRAIN_PHOTOS = ("astronaut", "chelsea", "immunohistochemistry", "retina", "hubble_deep_field")
DOMAIN_TEST_PHOTOS = ("coffee", "rocket")
TINTS = {"warm": np.array([0.15, 0.04, -0.15], np.float32), "cool": np.array([-0.12, 0.0, 0.15], np.float32)}


def domain_style(base, domain, strength=1.0, brightness=0.0):
    """A neutral crop (`neutral_crop`) in a demo domain: 'warm' / 'cool' (a colour cast times
    `strength`) or 'grey' (no colour; `strength` scales the contrast), plus `brightness`.
    The within-domain variation (strength, brightness) is the style StarGAN v2 encodes.
    Returns uint8 HxWx3."""
    if domain == "grey":
        luma = base @ LUMA
        img = np.repeat(((luma - luma.mean()) * strength + luma.mean())[..., None], 3, axis=2)
    else:
        img = base + TINTS[domain] * strength
    return (np.clip(img + brightness, 0, 1) * 255).round().astype(np.uint8)


def predict_domain(images, domains=DEMO_DOMAINS):
    """The demo domain index of each image (torch or numpy [N, 3, H, W] in [-1, 1]), measured:
    grey if the chroma is below 0.02, else warm / cool by the sign of mean R - mean B
    (a domain not in `domains` gets -1). int64 array [N]."""
    from .stargan_dataset import attribute_scores

    scores = attribute_scores(images)
    names = np.where(scores["grey"] < 0.02, "grey", np.where(scores["warm"] > 0, "warm", "cool"))
    return np.array([domains.index(n) if n in domains else -1 for n in names], np.int64)


@DATASETS.register()
class EmbeddedDomainDataset(BaseDataset):
    """StarGAN v2 demo data: crops of scikit-image's photos in colour-style domains (warm,
    cool, grey), each with a random strength and brightness (the style), with
    StarGANv2Dataset's keys.

    Args:
        domains (list[str] | str): two or three of warm, cool, grey (class order).
        split (str): 'train' (random crops, domains, strengths) or 'test' (held-out photos: a
            grid of crops x domains, fixed styles; references from the next crop and domain).
        size (int): crop side (default 32).
        scale (float): photos are resized by this factor before cropping (default 0.25).
        num_samples (int): train split length (default 2000).
        per_photo (int): test crops per photo (default 8).
        is_train (bool | None): alternative to `split`.
    """

    def __init__(self, domains=DEMO_DOMAINS, split="train", size=32, scale=0.25, num_samples=2000, per_photo=8,
                 is_train=None):
        if is_train is not None:
            split = "train" if is_train else "test"
        if split not in ("train", "test"):
            raise ConfigError(f"EmbeddedDomainDataset split must be 'train' or 'test'; got {split!r}")
        self.domains = check_selected(domains, list(DEMO_DOMAINS), "the embedded demo domains")
        if len(self.domains) < 2:
            raise ConfigError("EmbeddedDomainDataset needs at least two domains")
        self.num_domains = len(self.domains)
        self.split, self.size, self.scale = split, int(size), float(scale)
        self.is_train = split == "train"
        self.photos = DOMAIN_TRAIN_PHOTOS if self.is_train else DOMAIN_TEST_PHOTOS
        self.images = [load_photo(p, self.scale) for p in self.photos]
        self.crops = photo_crops(self.photos, self.size, self.scale, 1 if self.is_train else int(per_photo))
        self.num_samples = int(num_samples) if self.is_train else len(self.crops) * self.num_domains

    def __len__(self):
        return self.num_samples

    def _random_crop(self, rng):
        i = int(rng.integers(len(self.images)))
        crop, y, x = random_colour_crop(self.images[i], self.size, rng)
        return neutral_crop(np.ascontiguousarray(crop)), f"skimage:{self.photos[i]}@{y},{x}"

    def _styled(self, base, name, cls, rng=None):
        if rng is None:
            strength, brightness = 1.0, 0.1
        else:
            strength, brightness = float(rng.uniform(0.6, 1.4)), float(rng.uniform(0.0, 0.3))
        img = domain_style(base, self.domains[cls], strength, brightness)
        return to_chw_tensor(img.astype(np.float32) / 127.5 - 1.0), f"{name}:{self.domains[cls]}"

    def get_item(self, index, rng):
        k = self.num_domains
        if self.is_train:
            src_cls, ref_cls = index % k, int(rng.integers(k))
            out = {}
            for key, cls in (("src", src_cls), ("ref", ref_cls), ("ref2", ref_cls)):
                base, name = self._random_crop(rng)
                out[key], out[f"{key}_path"] = self._styled(base, name, cls, rng)
        else:
            c, src_cls = divmod(index, k)
            ref_cls = (src_cls + 1) % k
            out = {}
            for key, crop_index, cls in (("src", c, src_cls), ("ref", (c + 1) % len(self.crops), ref_cls)):
                i, y, x = self.crops[crop_index]
                base = neutral_crop(self.images[i][y:y + self.size, x:x + self.size])
                out[key], out[f"{key}_path"] = self._styled(base, f"skimage:{self.photos[i]}@{y},{x}", cls)
        out["src_cls"] = torch.tensor(src_cls, dtype=torch.int64)
        out["ref_cls"] = torch.tensor(ref_cls, dtype=torch.int64)
        return out

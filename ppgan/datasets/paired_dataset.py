"""Paired images for pix2pix: side-by-side A|B files (PaddleGAN's `PairedDataset`), or two
aligned folders."""
import os

from ..utils.errors import ConfigError, DatasetError
from .base_dataset import BaseDataset
from .builder import DATASETS
from .image_folder import normalize_extensions, scan_images
from .preprocess import Preprocess, default_preprocess


def check_folder(path, what="dataset folder"):
    root = os.path.expanduser(os.fspath(path))
    if not os.path.isdir(root):
        raise DatasetError(f"{what} not found: {root}")
    return root


def scan_nonempty(root, extensions):
    files = scan_images(root, extensions)
    if not files:
        raise DatasetError(f"no images ({', '.join(extensions)}) found in dataset folder {root}")
    return files


def align_folders(dir_a, dir_b, extensions):
    """[(a_path, b_path)] matched by path relative to each folder, extension ignored."""
    def by_stem(root):
        return {os.path.splitext(os.path.relpath(p, root))[0]: p for p in scan_nonempty(root, extensions)}

    a, b = by_stem(dir_a), by_stem(dir_b)
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        side, names, other = (dir_a, only_a, dir_b) if only_a else (dir_b, only_b, dir_a)
        raise DatasetError(f"{len(names)} image(s) in {side} have no partner in {other}, e.g. '{names[0]}' "
                           "(aligned folders pair files by name)")
    return [(a[k], b[k]) for k in sorted(a)]


@DATASETS.register()
class PairedDataset(BaseDataset):
    """Pairs (A, B) of aligned images.

    Layouts:
      * `dataroot` holding side-by-side images, A on the left half and B on the right (the
        pix2pix datasets, e.g. facades/train/1.jpg); PaddleGAN's preprocess loads key 'pair'
        and splits it with `SplitPairedImage`;
      * two aligned folders, `dataroot_a` and `dataroot_b`, or `dataroot` with sub-folders `A/`
        and `B/`; files pair by name (extension ignored); preprocess loads keys 'A' and 'B'.

    Args:
        dataroot (str | None): the folder (see the layouts).
        preprocess (list[dict] | None): PaddleGAN's step list (`ppgan.datasets.preprocess`).
            None: load (and split), transpose to CHW, normalise to [-1, 1].
        dataroot_a, dataroot_b (str | None): the aligned folders (instead of `dataroot`).
        extensions (list[str] | None): image extensions (default: ppgan.utils.image.IMAGE_EXTENSIONS).

    Sample dict: 'A', 'B' float32 [C, H, W] (in [-1, 1] with the default preprocess),
    'A_path', 'B_path' (str; the same file for side-by-side pairs).

    Raises:
        DatasetError: a folder is missing or empty, aligned folders do not match, an image
            cannot be read or a preprocess step fails (naming the file).
    """

    def __init__(self, dataroot=None, preprocess=None, dataroot_a=None, dataroot_b=None, extensions=None):
        self.extensions = normalize_extensions(extensions)
        if (dataroot_a is None) != (dataroot_b is None):
            raise ConfigError("PairedDataset needs both dataroot_a and dataroot_b, or neither")
        if dataroot_a is None:
            if dataroot is None:
                raise ConfigError("PairedDataset needs dataroot (or dataroot_a and dataroot_b)")
            root = check_folder(dataroot)
            sub_a, sub_b = os.path.join(root, "A"), os.path.join(root, "B")
            if os.path.isdir(sub_a) and os.path.isdir(sub_b):
                dataroot_a, dataroot_b = sub_a, sub_b
        elif dataroot is not None:
            raise ConfigError("PairedDataset takes dataroot or dataroot_a/dataroot_b, not both")

        if dataroot_a is None:  # side-by-side A|B images
            self.dataroot = root
            self.aligned = False
            self.data_infos = [{"pair_path": p} for p in scan_nonempty(root, self.extensions)]
            default = default_preprocess(["pair"], split="pair")
        else:
            dir_a, dir_b = check_folder(dataroot_a), check_folder(dataroot_b)
            self.dataroot = os.path.dirname(dir_a)
            self.aligned = True
            self.data_infos = [{"A_path": a, "B_path": b} for a, b in align_folders(dir_a, dir_b, self.extensions)]
            default = default_preprocess(["A", "B"])
        self.preprocess = Preprocess(default if preprocess is None else preprocess)

    def __len__(self):
        return len(self.data_infos)

    def get_item(self, index, rng):
        return self.preprocess.sample(self.data_infos[index], rng, ("A", "B"))

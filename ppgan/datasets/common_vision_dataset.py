"""MNIST, Fashion-MNIST and CIFAR-10 from local files, with PaddleGAN's `CommonVisionDataset`.

PaddleGAN wraps `paddle.vision.datasets.<dataset_name>` (configs/dcgan_mnist.yaml:
`dataset_name: MNIST`, `params: {mode: train}`); here the same config reads the standard
files with strict readers and never downloads anything. Files are found from, in order:
  * `params.image_path` + `params.label_path` (MNIST / FashionMNIST idx files, plain or .gz),
    `params.data_file` (CIFAR-10: `cifar-10-python.tar.gz` or a folder);
  * `dataroot` (a folder, or for CIFAR-10 also the archive);
  * Paddle's download cache, `~/.cache/paddle/dataset/{mnist,fashion-mnist,cifar}`.
Accepted layouts: the idx files in the folder, in `raw/` or `<MNIST|FashionMNIST>/raw/`
(torchvision); CIFAR-10 python batches (`cifar-10-batches-py/`), binary batches
(`cifar-10-batches-bin/`, 3073 bytes per record) or the official tar archives read in place.

CIFAR python batches are pickles; they are read only through
`ppgan.weights.safe_pickle_load`, which rebuilds numpy arrays and plain
containers and refuses anything else, so a crafted batch file cannot run code.
"""
import gzip
import os
import struct
import tarfile
import zlib

import numpy as np
import torch

from ..utils.errors import CheckpointError, ConfigError, DatasetError
from ..weights import safe_pickle_load
from .base_dataset import BaseDataset, to_chw_tensor
from .builder import DATASETS
from .transforms import Compose

PADDLE_DATA_HOME = os.path.join("~", ".cache", "paddle", "dataset")
DEFAULT_TRANSFORMS = ({"name": "Normalize", "mean": [127.5], "std": [127.5]},)
MODES = ("train", "test")

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# dataset_name -> (class names, Paddle cache sub-folder, torchvision folder)
MNIST_LIKE = {"MNIST": (MNIST_CLASSES, "mnist", "MNIST"),
              "FashionMNIST": (FASHION_MNIST_CLASSES, "fashion-mnist", "FashionMNIST")}
SUPPORTED = ("MNIST", "FashionMNIST", "Cifar10")

IDX_UBYTE = 0x08
CIFAR_SIDE, CIFAR_RECORD = 32, 1 + 3 * 32 * 32
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_BATCHES = ("test_batch",)
CIFAR_ARCHIVES = ("cifar-10-python.tar.gz", "cifar-10-binary.tar.gz")


# ---- MNIST idx files --------------------------------------------------------------------------
def read_maybe_gz(path):
    """The bytes of `path`, gunzipped when the file starts with the gzip magic."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror or e}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DatasetError(f"cannot read {path}: corrupt or truncated gzip data ({e})") from None
    return raw


def read_idx(path, ndim):
    """Read an IDX file of unsigned bytes (MNIST format), checking magic number and sizes.

    Args:
        path (str): the file, plain or gzip-compressed.
        ndim (int): the expected number of dimensions (3 for images, 1 for labels).

    Returns:
        np.ndarray: uint8 array of the shape the header gives.

    Raises:
        DatasetError: wrong magic number, data type or rank, or a size that does not match
            the header (truncated or padded file).
    """
    raw = read_maybe_gz(path)
    expected_magic = (IDX_UBYTE << 8) | ndim
    if len(raw) < 4 + 4 * ndim:
        raise DatasetError(f"cannot read {path}: file too short for an IDX header ({len(raw)} bytes)")
    magic = struct.unpack(">I", raw[:4])[0]
    if magic != expected_magic:
        raise DatasetError(f"cannot read {path}: bad IDX magic number {magic:#010x}, expected {expected_magic:#010x} "
                           f"(unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''})")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    header = 4 + 4 * ndim
    size = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != size:
        state = "truncated" if len(raw) - header < size else "has trailing data"
        raise DatasetError(f"cannot read {path}: file {state}: header says {'x'.join(map(str, dims))} = {size} "
                           f"bytes, found {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def read_mnist(images_path, labels_path):
    """Read an MNIST-format image/label pair.

    Returns:
        tuple[np.ndarray, np.ndarray]: images [N, H, W, 1] uint8 and labels [N] int64.
    """
    images = read_idx(images_path, 3)
    labels = read_idx(labels_path, 1)
    if len(images) != len(labels):
        raise DatasetError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise DatasetError(f"{labels_path}: label {int(labels.max())} out of range 0-9")
    return images[..., None], labels.astype(np.int64)


def _find_file(folder, names):
    for name in names:
        for candidate in (name, name + ".gz"):
            path = os.path.join(folder, candidate)
            if os.path.isfile(path):
                return path
    return None


def find_mnist_files(dataset_name, dataroot, mode):
    """(images_path, labels_path) for `mode` in `dataroot`, or DatasetError naming where it looked."""
    prefix = "train" if mode == "train" else "t10k"
    image_names = (f"{prefix}-images-idx3-ubyte", f"{prefix}-images.idx3-ubyte")
    label_names = (f"{prefix}-labels-idx1-ubyte", f"{prefix}-labels.idx1-ubyte")
    tv_folder = MNIST_LIKE[dataset_name][2]
    folders = [dataroot, os.path.join(dataroot, "raw"), os.path.join(dataroot, tv_folder, "raw")]
    for folder in folders:
        images, labels = _find_file(folder, image_names), _find_file(folder, label_names)
        if images and labels:
            return images, labels
    raise DatasetError(
        f"{dataset_name} {mode} files not found: looked for {image_names[0]}[.gz] and {label_names[0]}[.gz] in "
        f"{', '.join(folders)}; datasets are not downloaded automatically: put {image_names[0]}.gz and "
        f"{label_names[0]}.gz from the {dataset_name} release in {dataroot}")


# ---- CIFAR-10 -------------------------------------------------------------------------------------
def _check_cifar_labels(labels, where):
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DatasetError(f"{where}: CIFAR-10 label out of range 0-9")


def parse_cifar_python_batch(obj, where):
    """A loaded python batch (dict with 'data'/'labels', str or bytes keys) -> (images NHWC uint8, labels)."""
    if not isinstance(obj, dict):
        raise DatasetError(f"{where}: expected a dict in a CIFAR-10 batch, found {type(obj).__name__}")
    data = obj.get("data", obj.get(b"data"))
    labels = obj.get("labels", obj.get(b"labels"))
    if data is None or labels is None:
        raise DatasetError(f"{where}: CIFAR-10 batch has no 'data' and 'labels' entries")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise DatasetError(f"{where}: CIFAR-10 'data' must be a uint8 array [N, 3072], found "
                           f"{type(data).__name__} {getattr(data, 'dtype', '')} {shape}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(data) or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise DatasetError(f"{where}: CIFAR-10 'labels' must be {len(data)} integers")
    labels = labels.astype(np.int64)
    _check_cifar_labels(labels, where)
    images = data.reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def parse_cifar_binary_batch(raw, where):
    """Bytes of a binary batch (records of 1 label byte + 3072 pixel bytes) -> (images NHWC, labels)."""
    if not raw or len(raw) % CIFAR_RECORD:
        raise DatasetError(f"{where}: size {len(raw)} is not a positive multiple of the {CIFAR_RECORD}-byte "
                           "CIFAR-10 record (truncated or not a CIFAR-10 binary batch)")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    labels = records[:, 0].astype(np.int64)
    _check_cifar_labels(labels, where)
    images = records[:, 1:].reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def load_cifar_python_batch(src, where):
    """Unpickle a python batch (path or bytes) safely and parse it."""
    try:
        obj = safe_pickle_load(src)
    except CheckpointError as e:
        # drop the location safe_pickle_load puts in its message: `where` names it better
        msg = str(e).replace(f" {src if isinstance(src, str) else 'pickle data'}:", ":", 1)
        raise DatasetError(f"cannot read CIFAR-10 batch {where}: {msg}") from None
    return parse_cifar_python_batch(obj, where)


def _concat(parts):
    images, labels = zip(*parts)
    return np.concatenate(images), np.concatenate(labels)


def read_cifar10_folder(folder, mode):
    """Read the batches of `mode` from a folder of python batches (`data_batch_1`, ...) or
    binary batches (`data_batch_1.bin`, ...)."""
    names = CIFAR_TRAIN_BATCHES if mode == "train" else CIFAR_TEST_BATCHES
    if all(os.path.isfile(os.path.join(folder, n)) for n in names):
        return _concat([load_cifar_python_batch(os.path.join(folder, n), os.path.join(folder, n)) for n in names])
    if all(os.path.isfile(os.path.join(folder, n + ".bin")) for n in names):
        parts = []
        for n in names:
            path = os.path.join(folder, n + ".bin")
            try:
                with open(path, "rb") as f:
                    raw = f.read()
            except OSError as e:
                raise DatasetError(f"cannot read {path}: {e.strerror or e}") from None
            parts.append(parse_cifar_binary_batch(raw, path))
        return _concat(parts)
    return None


def read_cifar10_archive(path, mode):
    """Read the batches of `mode` straight from `cifar-10-python.tar.gz` or
    `cifar-10-binary.tar.gz` (one streaming pass, nothing extracted to disk)."""
    names = CIFAR_TRAIN_BATCHES if mode == "train" else CIFAR_TEST_BATCHES
    wanted = set(names) | {n + ".bin" for n in names}
    found = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                base = os.path.basename(member.name)
                if member.isfile() and base in wanted and base not in found:
                    found[base] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise DatasetError(f"cannot read CIFAR-10 archive {path}: {e}") from None
    if all(n in found for n in names):
        return _concat([load_cifar_python_batch(found[n], f"{path}:{n}") for n in names])
    if all(n + ".bin" in found for n in names):
        return _concat([parse_cifar_binary_batch(found[n + ".bin"], f"{path}:{n}.bin") for n in names])
    raise DatasetError(f"CIFAR-10 archive {path} lacks the {mode} batches ({', '.join(names)})")


def read_cifar10(source, mode):
    """Read CIFAR-10 `mode` ('train' or 'test') from an archive or a folder.

    `source` may be `cifar-10-python.tar.gz` / `cifar-10-binary.tar.gz`, a folder holding the
    batches, or a folder holding `cifar-10-batches-py/`, `cifar-10-batches-bin/` or the archive.

    Returns:
        tuple[np.ndarray, np.ndarray]: images [N, 32, 32, 3] uint8 RGB and labels [N] int64.
    """
    source = os.path.expanduser(os.fspath(source))
    if os.path.isfile(source):
        return read_cifar10_archive(source, mode)
    looked = []
    if os.path.isdir(source):
        for folder in (os.path.join(source, "cifar-10-batches-py"), os.path.join(source, "cifar-10-batches-bin"),
                       source):
            looked.append(folder)
            if os.path.isdir(folder):
                result = read_cifar10_folder(folder, mode)
                if result is not None:
                    return result
        for name in CIFAR_ARCHIVES:
            archive = os.path.join(source, name)
            looked.append(archive)
            if os.path.isfile(archive):
                return read_cifar10_archive(archive, mode)
    else:
        looked.append(source)
    names = CIFAR_TRAIN_BATCHES if mode == "train" else CIFAR_TEST_BATCHES
    raise DatasetError(
        f"CIFAR-10 {mode} data not found: looked for {names[0]}{'..5' if mode == 'train' else ''} (python or .bin "
        f"batches) and {CIFAR_ARCHIVES[0]} in {', '.join(looked)}; datasets are not downloaded automatically: put "
        f"{CIFAR_ARCHIVES[0]} (https://www.cs.toronto.edu/~kriz/cifar.html) or its extracted cifar-10-batches-py/ "
        f"folder in {source}")


# ---- datasets ---------------------------------------------------------------------------------
def resolve_class_filter(class_filter, class_names):
    """Class ids for `class_filter` (ids or names, names case-insensitive); None -> None."""
    if class_filter is None:
        return None
    if isinstance(class_filter, (str, int, np.integer)):
        class_filter = [class_filter]
    lower = [n.lower() for n in class_names]
    ids = []
    for item in class_filter:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool) and 0 <= item < len(class_names):
            ids.append(int(item))
        elif isinstance(item, str) and item.lower() in lower:
            ids.append(lower.index(item.lower()))
        else:
            raise ConfigError(f"class_filter entry {item!r} is not a class id 0-{len(class_names) - 1} or one of "
                              f"{', '.join(class_names)}")
    if not ids:
        raise ConfigError("class_filter is empty")
    return sorted(set(ids))


def _check_mode(mode):
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")


class ArrayImageDataset(BaseDataset):
    """Base of the in-memory datasets: images [N, H, W, C] uint8 and labels [N] int64.

    Subclasses call `setup(...)` from `__init__`.

    Sample dict:
        img (Tensor): [C, H, W] float32, in [-1, 1] with the default transforms.
        class_id (Tensor): int64 scalar, the original class id (only when `return_label`).

    Attributes:
        class_names (tuple[str]): names of all classes, by id.
        num_classes (int): number of classes of the full dataset (label dimension).
        resolution (int): image height.
    """

    def setup(self, images, labels, class_names, transforms, return_label, class_filter, where):
        ids = resolve_class_filter(class_filter, class_names)
        if ids is not None:
            keep = np.isin(labels, ids)
            images, labels = images[keep], labels[keep]
        if len(images) == 0:
            detail = f" of classes {', '.join(class_names[i] for i in ids)}" if ids is not None else ""
            raise DatasetError(f"no images{detail} in {where}")
        self.images, self.labels = images, labels
        self.class_names = tuple(class_names)
        self.num_classes = len(class_names)
        self.resolution, self.channels = images.shape[1], images.shape[3]
        self.return_label = bool(return_label)
        self.transforms = Compose(list(DEFAULT_TRANSFORMS) if transforms is None else transforms)

    def __len__(self):
        return len(self.images)

    def get_item(self, index, rng):
        img = to_chw_tensor(self.transforms(self.images[index], rng), is_chw=self.transforms.has_transpose)
        sample = {"img": img}
        if self.return_label:
            sample["class_id"] = torch.tensor(int(self.labels[index]), dtype=torch.int64)
        return sample


def load_vision_arrays(dataset_name, mode, dataroot=None, image_path=None, label_path=None, data_file=None):
    """(images NHWC uint8, labels int64, where) for one of `SUPPORTED` from local files."""
    _check_mode(mode)
    if dataset_name in MNIST_LIKE:
        if data_file is not None:
            raise ConfigError(f"params.data_file is for Cifar10; {dataset_name} takes image_path and label_path")
        if (image_path is None) != (label_path is None):
            raise ConfigError(f"{dataset_name} needs both params.image_path and params.label_path, or neither")
        if image_path is None:
            root = dataroot if dataroot is not None else os.path.join(PADDLE_DATA_HOME, MNIST_LIKE[dataset_name][1])
            root = os.path.expanduser(os.fspath(root))
            image_path, label_path = find_mnist_files(dataset_name, root, mode)
        else:
            image_path, label_path = (os.path.expanduser(os.fspath(p)) for p in (image_path, label_path))
            missing = [p for p in (image_path, label_path) if not os.path.isfile(p)]
            if missing:
                raise DatasetError(f"{dataset_name} file(s) not found: {', '.join(missing)}; datasets are not "
                                   "downloaded automatically: put the idx files (plain or .gz) there")
        images, labels = read_mnist(image_path, label_path)
        return images, labels, image_path
    if dataset_name == "Cifar10":
        if image_path is not None or label_path is not None:
            raise ConfigError("params.image_path / label_path are for MNIST; Cifar10 takes data_file")
        source = data_file if data_file is not None else dataroot
        if source is None:
            source = os.path.join(PADDLE_DATA_HOME, "cifar")
        images, labels = read_cifar10(source, mode)
        return images, labels, os.path.expanduser(os.fspath(source))
    raise ConfigError(f"dataset_name must be one of {', '.join(SUPPORTED)}; got {dataset_name!r}")


@DATASETS.register()
class CommonVisionDataset(ArrayImageDataset):
    """PaddleGAN's `CommonVisionDataset` over local MNIST, FashionMNIST or CIFAR-10 files.

    Args:
        dataset_name (str): 'MNIST', 'FashionMNIST' or 'Cifar10' (Paddle's class names).
        transforms (list[dict] | None): transform configs applied to the HxWxC uint8 image
            (C = 1 for MNIST-like, 3 for CIFAR-10). None means normalize to [-1, 1]; a given
            pipeline replaces that default.
        return_label (bool): add 'class_id'. Default: True.
        params (dict | None): Paddle's dataset arguments: `mode` ('train' or 'test', default
            'train'); `image_path` and `label_path` (MNIST-like) or `data_file` (Cifar10);
            `download` and `backend` are accepted and ignored (nothing is downloaded).
        dataroot (str | None): folder (or CIFAR-10 archive) to look in when the params name
            no file. Default: Paddle's cache folder.
        class_filter (list[int | str] | None): keep only these classes (ids or names such as
            'frog'); labels keep their original ids.

    Raises:
        DatasetError: files missing (the message says where to put them) or corrupt.
        ConfigError: unknown dataset name, params key, mode or class.
    """

    PARAM_KEYS = ("mode", "image_path", "label_path", "data_file", "download", "backend")

    def __init__(self, dataset_name, transforms=None, return_label=True, params=None, dataroot=None,
                 class_filter=None):
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.PARAM_KEYS))
        if unknown:
            raise ConfigError(f"unknown CommonVisionDataset params {', '.join(unknown)}; "
                              f"valid: {', '.join(self.PARAM_KEYS)}")
        if dataset_name not in SUPPORTED:
            raise ConfigError(f"CommonVisionDataset dataset_name must be one of {', '.join(SUPPORTED)}; "
                              f"got {dataset_name!r}")
        self.dataset_name = dataset_name
        self.mode = params.get("mode", "train")
        images, labels, where = load_vision_arrays(dataset_name, self.mode, dataroot, params.get("image_path"),
                                                   params.get("label_path"), params.get("data_file"))
        names = CIFAR10_CLASSES if dataset_name == "Cifar10" else MNIST_LIKE[dataset_name][0]
        self.setup(images, labels, names, transforms, return_label, class_filter, where)


@DATASETS.register()
class MNISTDataset(ArrayImageDataset):
    """MNIST from a local folder (idx files, plain or .gz).

    Args:
        dataroot (str): folder holding `train-images-idx3-ubyte[.gz]` and friends (also
            found in `raw/` or `MNIST/raw/`).
        mode (str): 'train' (60000 images) or 'test' (10000). Default: 'train'.
        transforms (list[dict] | None): as `CommonVisionDataset`; None -> [-1, 1].
        return_label (bool): add 'class_id'. Default: True.
        class_filter (list[int | str] | None): keep only these digits.
    """

    def __init__(self, dataroot, mode="train", transforms=None, return_label=True, class_filter=None):
        self.mode = mode
        images, labels, where = load_vision_arrays("MNIST", mode, dataroot=dataroot)
        self.setup(images, labels, MNIST_CLASSES, transforms, return_label, class_filter, where)


@DATASETS.register()
class CIFAR10Dataset(ArrayImageDataset):
    """CIFAR-10 from local python batches, binary batches or the official archive.

    Args:
        dataroot (str): `cifar-10-python.tar.gz`, or a folder holding it,
            `cifar-10-batches-py/`, `cifar-10-batches-bin/` or the batch files themselves.
        mode (str): 'train' (50000 images) or 'test' (10000). Default: 'train'.
        class_filter (list[int | str] | None): keep only these classes, e.g. ['frog'].
        transforms (list[dict] | None): as `CommonVisionDataset`; None -> [-1, 1].
        return_label (bool): add 'class_id'. Default: True.
    """

    def __init__(self, dataroot, mode="train", class_filter=None, transforms=None, return_label=True):
        self.mode = mode
        images, labels, where = load_vision_arrays("Cifar10", mode, dataroot=dataroot)
        self.setup(images, labels, CIFAR10_CLASSES, transforms, return_label, class_filter, where)

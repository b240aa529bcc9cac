import gzip
import os
import pickle
import struct
import tarfile

import numpy as np
import pytest
import torch

from ppgan.datasets import (DATASETS, CIFAR10Dataset, CommonVisionDataset, MNISTDataset, build_dataloader,
                            build_dataset)
from ppgan.utils.errors import CheckpointError, ConfigError, DatasetError

RAW = [{"name": "Transpose"}]  # keeps the 0..255 values, to compare with the files exactly


# ---- MNIST helpers ----------------------------------------------------------------------------
def idx_bytes(arr, magic=None):
    arr = np.asarray(arr, np.uint8)
    magic = magic if magic is not None else (0x08 << 8) | arr.ndim
    return struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def write(path, data, gz=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def mnist_arrays(n=12, h=5, w=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, h, w), dtype=np.uint8), np.arange(n, dtype=np.uint8) % 10


def write_mnist(folder, prefix="train", gz=False, n=12, seed=0):
    images, labels = mnist_arrays(n, seed=seed)
    suffix = ".gz" if gz else ""
    write(folder / f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(images), gz)
    write(folder / f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(labels), gz)
    return images, labels


# ---- CIFAR helpers ----------------------------------------------------------------------------
def cifar_arrays(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), [int(v) for v in rng.integers(0, 10, n)]


def cifar_batches():
    """{name: (data [N, 3072], labels)} for the five train batches and the test batch."""
    batches = {f"data_batch_{i}": cifar_arrays(3, i) for i in range(1, 6)}
    batches["test_batch"] = cifar_arrays(4, 99)
    return batches


def write_cifar_py(folder, batches, bytes_keys=True, protocol=2):
    folder.mkdir(parents=True, exist_ok=True)
    for name, (data, labels) in batches.items():
        obj = {b"data": data, b"labels": labels, b"batch_label": b"x"} if bytes_keys else \
            {"data": data, "labels": labels, "filenames": ["a.png"] * len(labels)}
        with open(folder / name, "wb") as f:
            pickle.dump(obj, f, protocol=protocol)


def write_cifar_bin(folder, batches):
    folder.mkdir(parents=True, exist_ok=True)
    for name, (data, labels) in batches.items():
        records = np.concatenate([np.asarray(labels, np.uint8)[:, None], data], axis=1)
        (folder / f"{name}.bin").write_bytes(records.tobytes())


def tar_folder(folder, archive, arcdir):
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=arcdir)
    return archive


def expected_cifar(batches, names):
    data = np.concatenate([batches[n][0] for n in names]).reshape(-1, 3, 32, 32).astype(np.float32)
    labels = np.concatenate([batches[n][1] for n in names])
    return data, labels


def check_cifar(ds, batches, mode="train"):
    names = [f"data_batch_{i}" for i in range(1, 6)] if mode == "train" else ["test_batch"]
    data, labels = expected_cifar(batches, names)
    assert len(ds) == len(data) and ds.resolution == 32 and ds.channels == 3
    for i in range(len(ds)):
        sample = ds[i]
        np.testing.assert_array_equal(sample["img"].numpy(), data[i])
        assert int(sample["class_id"]) == labels[i]


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


# ---- MNIST ------------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_values_and_labels_exactly(tmp_path, gz):
    images, labels = write_mnist(tmp_path, gz=gz)
    ds = MNISTDataset(str(tmp_path), transforms=RAW)
    assert len(ds) == 12 and ds.channels == 1 and ds.num_classes == 10
    for i in range(12):
        sample = ds[i]
        assert sample["img"].shape == (1, 5, 4) and sample["img"].dtype == torch.float32
        np.testing.assert_array_equal(sample["img"][0].numpy(), images[i])
        assert sample["class_id"].dtype == torch.int64 and int(sample["class_id"]) == labels[i]


def test_mnist_default_range_test_mode_and_layouts(tmp_path):
    images, _ = write_mnist(tmp_path / "MNIST" / "raw", prefix="t10k", n=7, seed=3)
    ds = MNISTDataset(tmp_path, mode="test")
    assert len(ds) == 7
    img = ds[0]["img"]
    np.testing.assert_allclose(img[0].numpy(), images[0] / 127.5 - 1, atol=1e-6)
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte"):
        MNISTDataset(tmp_path, mode="train")
    with pytest.raises(ConfigError, match="mode"):
        MNISTDataset(tmp_path, mode="valid")


def test_paddlegan_dcgan_mnist_config(tmp_path):
    images, labels = write_mnist(tmp_path / "data", gz=True)
    cfg = {"name": "CommonVisionDataset", "dataset_name": "MNIST", "num_workers": 0, "batch_size": 4,
           "return_label": True,
           "transforms": [{"name": "Resize", "size": [64, 64], "interpolation": "bicubic"},
                          {"name": "Normalize", "mean": [127.5], "std": [127.5], "keys": ["image"]}],
           "params": {"mode": "train", "image_path": str(tmp_path / "data" / "train-images-idx3-ubyte.gz"),
                      "label_path": str(tmp_path / "data" / "train-labels-idx1-ubyte.gz"), "download": True}}
    ds, loader, _ = build_dataloader(cfg, is_train=False)
    batch = next(iter(loader))
    assert batch["img"].shape == (4, 1, 64, 64) and batch["img"].dtype == torch.float32
    assert -1.0 <= batch["img"].min() and batch["img"].max() <= 1.0
    assert batch["class_id"].tolist() == labels[:4].tolist()


def test_mnist_class_filter_and_fashion_names(tmp_path):
    _, labels = write_mnist(tmp_path, n=30)
    ds = MNISTDataset(tmp_path, class_filter=[3, "7"])
    got = [int(ds[i]["class_id"]) for i in range(len(ds))]
    assert got == [int(v) for v in labels if v in (3, 7)] and len(got) == 6
    fashion = CommonVisionDataset("FashionMNIST", dataroot=str(tmp_path), class_filter=["trouser"])
    assert {int(fashion[i]["class_id"]) for i in range(len(fashion))} == {1} and len(fashion) == 3
    with pytest.raises(ConfigError, match="class_filter"):
        MNISTDataset(tmp_path, class_filter=["frog"])
    with pytest.raises(ConfigError, match="class_filter"):
        MNISTDataset(tmp_path, class_filter=[10])


@pytest.mark.parametrize("corrupt, message", [
    (lambda img, lbl: (idx_bytes(img, magic=0x0804), idx_bytes(lbl)), "magic number"),
    (lambda img, lbl: (idx_bytes(img)[:-5], idx_bytes(lbl)), "truncated"),
    (lambda img, lbl: (idx_bytes(img) + b"\0", idx_bytes(lbl)), "trailing data"),
    (lambda img, lbl: (idx_bytes(img), idx_bytes(lbl[:-1])), "labels"),
    (lambda img, lbl: (idx_bytes(img), idx_bytes(lbl + 10)), "out of range"),
    (lambda img, lbl: (b"\0\0\x08", idx_bytes(lbl)), "too short"),
    (lambda img, lbl: (idx_bytes(lbl), idx_bytes(img)), "magic number"),  # swapped files
])
def test_mnist_corrupt_files(tmp_path, corrupt, message):
    images, labels = mnist_arrays()
    img_bytes, lbl_bytes = corrupt(images, labels)
    write(tmp_path / "train-images-idx3-ubyte", img_bytes)
    write(tmp_path / "train-labels-idx1-ubyte", lbl_bytes)
    with pytest.raises(DatasetError, match=message):
        MNISTDataset(tmp_path)


def test_mnist_truncated_gzip(tmp_path):
    images, labels = mnist_arrays()
    data = gzip.compress(idx_bytes(images))
    write(tmp_path / "train-images-idx3-ubyte.gz", data[: len(data) - 20])
    write(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(labels), gz=True)
    with pytest.raises(DatasetError, match="gzip"):
        MNISTDataset(tmp_path)


def test_mnist_missing_files_message(tmp_path, monkeypatch):
    with pytest.raises(DatasetError) as info:
        MNISTDataset(tmp_path)
    msg = str(info.value)
    assert "\n" not in msg and "not downloaded automatically" in msg
    assert "train-images-idx3-ubyte" in msg and str(tmp_path) in msg
    with pytest.raises(DatasetError, match="not found: .*nope.gz"):
        CommonVisionDataset("MNIST", params={"image_path": str(tmp_path / "nope.gz"),
                                             "label_path": str(tmp_path / "nope2.gz")})
    # without dataroot or paths: Paddle's download cache under $HOME
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DatasetError, match=os.path.join(".cache", "paddle", "dataset", "mnist")):
        CommonVisionDataset("MNIST")
    write_mnist(tmp_path / ".cache" / "paddle" / "dataset" / "mnist", gz=True, n=4)
    assert len(CommonVisionDataset("MNIST")) == 4


def test_bad_common_vision_config(tmp_path):
    with pytest.raises(ConfigError, match="dataset_name"):
        CommonVisionDataset("Cifar100", dataroot=str(tmp_path))
    with pytest.raises(ConfigError, match="unknown CommonVisionDataset params"):
        CommonVisionDataset("MNIST", dataroot=str(tmp_path), params={"mdoe": "train"})
    with pytest.raises(ConfigError, match="both"):
        CommonVisionDataset("MNIST", params={"image_path": "x"})
    with pytest.raises(ConfigError, match="data_file"):
        CommonVisionDataset("MNIST", params={"data_file": "x"})


# ---- CIFAR-10 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bytes_keys, protocol", [(True, 2), (False, 2), (True, pickle.HIGHEST_PROTOCOL)])
def test_cifar_python_batches(tmp_path, bytes_keys, protocol):
    batches = cifar_batches()
    write_cifar_py(tmp_path / "cifar-10-batches-py", batches, bytes_keys, protocol)
    check_cifar(CIFAR10Dataset(str(tmp_path), transforms=RAW), batches)
    check_cifar(CIFAR10Dataset(str(tmp_path / "cifar-10-batches-py"), mode="test", transforms=RAW), batches, "test")


def test_cifar_binary_batches(tmp_path):
    batches = cifar_batches()
    write_cifar_bin(tmp_path / "cifar-10-batches-bin", batches)
    check_cifar(CIFAR10Dataset(tmp_path, transforms=RAW), batches)
    check_cifar(CIFAR10Dataset(tmp_path, mode="test", transforms=RAW), batches, "test")


def test_cifar_archives_read_in_place(tmp_path):
    batches = cifar_batches()
    write_cifar_py(tmp_path / "py" / "cifar-10-batches-py", batches)
    archive = tar_folder(tmp_path / "py" / "cifar-10-batches-py", tmp_path / "cifar-10-python.tar.gz",
                         "cifar-10-batches-py")
    check_cifar(CIFAR10Dataset(str(archive), transforms=RAW), batches)
    ds = CommonVisionDataset("Cifar10", transforms=RAW, params={"mode": "test", "data_file": str(archive)})
    check_cifar(ds, batches, "test")
    write_cifar_bin(tmp_path / "bin" / "cifar-10-batches-bin", batches)
    tar_folder(tmp_path / "bin" / "cifar-10-batches-bin", tmp_path / "b" / "cifar-10-binary.tar.gz",
               "cifar-10-batches-bin")
    check_cifar(CIFAR10Dataset(tmp_path / "b", transforms=RAW), batches)  # archive found in the folder
    assert not any(p.name.startswith("data_batch") for p in (tmp_path / "b").iterdir())  # nothing extracted


def test_cifar_default_range_class_filter_and_builder(tmp_path):
    batches = cifar_batches()
    write_cifar_py(tmp_path / "cifar-10-batches-py", batches)
    _, labels = expected_cifar(batches, [f"data_batch_{i}" for i in range(1, 6)])
    ds = build_dataset({"name": "CIFAR10Dataset", "dataroot": str(tmp_path), "class_filter": ["frog", "cat", 9]})
    keep = [i for i, v in enumerate(labels) if v in (3, 6, 9)]
    assert len(ds) == len(keep) > 0
    assert [int(ds[i]["class_id"]) for i in range(len(ds))] == [labels[i] for i in keep]
    img = ds[0]["img"]
    assert img.shape == (3, 32, 32) and -1.0 <= img.min() and img.max() <= 1.0
    cv = CommonVisionDataset("Cifar10", dataroot=str(tmp_path), return_label=False, class_filter="frog")
    assert set(cv[0]) == {"img"}
    with pytest.raises(ConfigError, match="frogs"):
        CIFAR10Dataset(tmp_path, class_filter=["frogs"])
    assert DATASETS.get("MNISTDataset") is MNISTDataset and DATASETS.get("CommonVisionDataset") is CommonVisionDataset


def test_cifar_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    batches = cifar_batches()
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_py(folder, batches)
    with open(folder / "data_batch_3", "wb") as f:
        pickle.dump({b"data": Evil(marker), b"labels": [1]}, f, protocol=2)
    with pytest.raises((DatasetError, CheckpointError), match="data_batch_3"):
        CIFAR10Dataset(tmp_path)
    assert not marker.exists()
    # the same file inside an archive
    archive = tar_folder(folder, tmp_path / "evil.tar.gz", "cifar-10-batches-py")
    with pytest.raises((DatasetError, CheckpointError), match="refused"):
        CIFAR10Dataset(archive)
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["bin_truncated", "bin_label", "py_shape", "py_labels", "py_garbage", "tar"])
def test_cifar_corrupt_files(tmp_path, kind):
    batches = cifar_batches()
    if kind.startswith("bin"):
        write_cifar_bin(tmp_path, batches)
        path = tmp_path / "data_batch_2.bin"
        raw = bytearray(path.read_bytes())
        if kind == "bin_truncated":
            raw = raw[:-10]
        else:
            raw[0] = 12
        path.write_bytes(bytes(raw))
        match = "multiple" if kind == "bin_truncated" else "label"
    elif kind == "tar":
        (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b not really a tar")
        match = "cannot read CIFAR-10 archive"
    else:
        write_cifar_py(tmp_path, batches)
        with open(tmp_path / "data_batch_2", "wb") as f:
            if kind == "py_shape":
                pickle.dump({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, f)
            elif kind == "py_labels":
                pickle.dump({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}, f)
            else:
                f.write(b"\x80\x02garbage")
        match = "data_batch_2"
    with pytest.raises(DatasetError, match=match):
        CIFAR10Dataset(tmp_path)


def test_cifar_missing_message(tmp_path):
    with pytest.raises(DatasetError) as info:
        CIFAR10Dataset(tmp_path)
    msg = str(info.value)
    assert "\n" not in msg and "not downloaded automatically" in msg
    assert "cifar-10-python.tar.gz" in msg and str(tmp_path) in msg
    with pytest.raises(DatasetError, match="not found"):
        CommonVisionDataset("Cifar10", params={"data_file": str(tmp_path / "missing.tar.gz")})

import os

import numpy as np
import pytest
import torch

from ppgan.datasets import DATASETS, ImageFolderDataset, build_dataloader
from ppgan.utils.errors import ConfigError, DatasetError
from ppgan.utils.image import imwrite


def _img(value, h=8, w=8):
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = value
    img[..., 1] = 255 - value
    img[0, 0] = (0, 0, 255)
    return img


def _class_tree(root):
    imwrite(root / "dog" / "b.png", _img(10))
    imwrite(root / "cat" / "z.png", _img(20))
    imwrite(root / "cat" / "nested" / "a.png", _img(30))
    imwrite(root / "cat" / ".hidden.png", _img(40))
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "empty").mkdir()
    return root


def test_class_subfolders_give_sorted_labels(tmp_path):
    ds = ImageFolderDataset(str(_class_tree(tmp_path)))
    assert ds.classes == ["cat", "dog"] and ds.class_to_idx == {"cat": 0, "dog": 1} and ds.num_classes == 2
    assert len(ds) == 3 and ds.return_label
    samples = [ds[i] for i in range(3)]
    assert [int(s["class_id"]) for s in samples] == [0, 0, 1]
    assert [os.path.relpath(s["img_path"], tmp_path) for s in samples] == [
        os.path.join("cat", "nested", "a.png"), os.path.join("cat", "z.png"), os.path.join("dog", "b.png")]
    img = samples[0]["img"]
    assert img.shape == (3, 8, 8) and img.dtype == torch.float32
    # RGB order and normalisation to [-1, 1]: value 30 in R, 225 in G, pure blue at (0, 0)
    assert img[0, 1, 1] == pytest.approx(30 / 127.5 - 1) and img[1, 1, 1] == pytest.approx(225 / 127.5 - 1)
    assert img[:, 0, 0].tolist() == [-1.0, -1.0, 1.0]
    assert samples[0]["class_id"].dtype == torch.int64


def test_flat_folder_has_no_labels(tmp_path):
    imwrite(tmp_path / "1.png", _img(1))
    imwrite(tmp_path / "sub" / "2.jpg", _img(2))
    ds = ImageFolderDataset(tmp_path)
    assert len(ds) == 2 and ds.classes == [] and not ds.return_label
    assert set(ds[0]) == {"img", "img_path"}
    with pytest.raises(ConfigError, match="class sub-folders"):
        ImageFolderDataset(tmp_path, return_label=True)
    only_png = ImageFolderDataset(tmp_path, extensions=["PNG"])
    assert len(only_png) == 1


def test_gray_channels_and_transforms(tmp_path):
    imwrite(tmp_path / "a.png", _img(100, 10, 12))
    ds = ImageFolderDataset(tmp_path, channels=1, transforms=[
        {"name": "Resize", "size": [4, 6]}, {"name": "Transpose"},
        {"name": "Normalize", "mean": [0.0], "std": [255.0]}])
    img = ds[0]["img"]
    assert img.shape == (1, 4, 6) and 0.0 <= img.min() and img.max() <= 1.0


def test_paddlegan_preprocess_spelling(tmp_path):
    imwrite(tmp_path / "a.png", _img(100, 10, 12))
    preprocess = [{"name": "LoadImageFromFile", "key": "A"},
                  {"name": "Transforms", "input_keys": ["A"], "pipeline": [
                      {"name": "Resize", "size": [4, 4], "interpolation": "bicubic"},
                      {"name": "Transpose", "keys": ["image"]},
                      {"name": "Normalize", "mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5],
                       "keys": ["image"]}]}]
    ds = ImageFolderDataset(tmp_path, preprocess=preprocess)
    assert ds[0]["img"].shape == (3, 4, 4)
    with pytest.raises(ConfigError, match="not both"):
        ImageFolderDataset(tmp_path, transforms=[], preprocess=preprocess)


def test_non_ascii_paths(tmp_path):
    root = tmp_path / "画像"
    imwrite(root / "chat é" / "чёрный.png", _img(50))
    ds = ImageFolderDataset(root)
    assert ds.classes == ["chat é"] and ds[0]["img_path"].endswith("чёрный.png")
    assert ds[0]["img"][0, 1, 1] == pytest.approx(50 / 127.5 - 1)


def test_missing_empty_and_corrupt(tmp_path):
    with pytest.raises(DatasetError, match="dataset folder not found: .*nowhere"):
        ImageFolderDataset(tmp_path / "nowhere")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(DatasetError, match="no images"):
        ImageFolderDataset(tmp_path / "empty")

    bad_root = tmp_path / "bad"
    imwrite(bad_root / "good.png", _img(1))
    (bad_root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ds = ImageFolderDataset(bad_root)  # construction does not open the files
    assert len(ds) == 2
    with pytest.raises(DatasetError) as info:
        ds[0]
    assert str(info.value).startswith(f"cannot read image {bad_root / 'broken.png'}:")
    assert ds[1]["img"].shape == (3, 8, 8)


def test_transform_failure_names_the_file(tmp_path):
    imwrite(tmp_path / "small.png", _img(1, 4, 4))
    ds = ImageFolderDataset(tmp_path, transforms=[{"name": "RandomCrop", "size": [8, 8]}])
    with pytest.raises(DatasetError, match="small.png.*RandomCrop"):
        ds[0]


def test_registered_and_loads_in_batches(tmp_path):
    _class_tree(tmp_path)
    assert DATASETS.get("ImageFolderDataset") is ImageFolderDataset
    ds, loader, _ = build_dataloader({"name": "ImageFolderDataset", "dataroot": str(tmp_path), "batch_size": 3},
                                     is_train=False)
    batch = next(iter(loader))
    assert batch["img"].shape == (3, 3, 8, 8) and batch["class_id"].tolist() == [0, 0, 1]
    assert len(batch["img_path"]) == 3

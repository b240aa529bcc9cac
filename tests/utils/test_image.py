import os

import numpy as np
import pytest

from ppgan.utils.errors import DatasetError, PPGANError
from ppgan.utils.image import IMAGE_EXTENSIONS, imread, imwrite


def _rgb(h=6, w=5):
    return np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3) * 3


def test_png_round_trip_keeps_rgb_order(tmp_path):
    img = _rgb()
    img[0, 0] = (255, 0, 0)  # pure red must stay in channel 0
    path = tmp_path / "a.png"
    imwrite(path, img)
    back = imread(path)
    assert back.dtype == np.uint8 and back.shape == (6, 5, 3)
    np.testing.assert_array_equal(back, img)
    assert tuple(back[0, 0]) == (255, 0, 0)


def test_gray_and_unchanged_modes(tmp_path):
    gray = np.arange(30, dtype=np.uint8).reshape(6, 5) * 8
    imwrite(tmp_path / "g.png", gray[..., None])
    np.testing.assert_array_equal(imread(tmp_path / "g.png", "gray"), gray)
    np.testing.assert_array_equal(imread(tmp_path / "g.png", "unchanged"), gray)
    assert imread(tmp_path / "g.png").shape == (6, 5, 3)

    rgba = np.dstack([_rgb(), np.full((6, 5), 7, np.uint8)])
    imwrite(tmp_path / "a.png", rgba)
    np.testing.assert_array_equal(imread(tmp_path / "a.png", "unchanged"), rgba)

    deep = (np.arange(30, dtype=np.uint16).reshape(6, 5) * 2000)
    imwrite(tmp_path / "d.png", deep)
    back = imread(tmp_path / "d.png", "unchanged")
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, deep)


def test_non_ascii_path(tmp_path):
    folder = tmp_path / "données" / "数字"
    path = folder / "图像 ü.png"
    imwrite(path, _rgb())  # creates the folder
    np.testing.assert_array_equal(imread(path), _rgb())
    assert os.listdir(folder) == ["图像 ü.png"]  # no temp file left behind


def test_imwrite_is_atomic_on_failure(tmp_path):
    path = tmp_path / "keep.png"
    imwrite(path, _rgb())
    with pytest.raises(ValueError):
        imwrite(path, np.zeros((4, 4), np.float32))
    with pytest.raises(PPGANError, match="cannot write image"):
        imwrite(tmp_path / "x.unknownext", _rgb())
    np.testing.assert_array_equal(imread(path), _rgb())
    assert sorted(os.listdir(tmp_path)) == ["keep.png"]


@pytest.mark.parametrize("content, why", [
    (None, "file not found"),
    (b"", "file is empty"),
    (b"this is not an image at all", "not a valid or supported image"),
])
def test_unreadable_files_raise_one_line_dataset_error(tmp_path, content, why):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DatasetError) as info:
        imread(path)
    msg = str(info.value)
    assert msg.startswith(f"cannot read image {path}: ") and why in msg and "\n" not in msg


def test_truncated_png_raises(tmp_path):
    imwrite(tmp_path / "ok.png", _rgb(32, 32))
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="cut.png"):
        imread(tmp_path / "cut.png")


def test_directory_and_bad_mode(tmp_path):
    with pytest.raises(DatasetError, match="cannot read image"):
        imread(tmp_path)
    with pytest.raises(ValueError, match="mode"):
        imread(tmp_path / "x.png", mode="bgr")


def test_extensions_are_lowercase_with_dot():
    assert ".png" in IMAGE_EXTENSIONS and ".jpg" in IMAGE_EXTENSIONS
    assert all(e.startswith(".") and e == e.lower() for e in IMAGE_EXTENSIONS)

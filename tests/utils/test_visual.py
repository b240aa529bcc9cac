"""make_grid layout, tensor2img ranges, and atomic PNG writing."""
import os

import cv2
import numpy as np
import pytest
import torch

from ppgan.utils.visual import make_grid, parse_min_max, save_grid, save_image, tensor2img


def numbered_batch(n, c=1, h=2, w=3):
    """Image k is filled with the value k (and channel i of it with k + 10 i)."""
    chan = torch.arange(c, dtype=torch.float32).view(1, c, 1, 1) * 10
    return torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1) + chan + torch.zeros(n, c, h, w)


def test_make_grid_layout_and_padding():
    batch = numbered_batch(5, c=2)
    grid = make_grid(batch, nrow=3, padding=1, pad_value=-1.)
    # 3 per row, 2 rows; each cell is (h + 1) x (w + 1) plus one leading pad row/column.
    assert grid.shape == (2, 2 * 3 + 1, 3 * 4 + 1)
    expected = np.full((2, 7, 13), -1., np.float32)
    for k in range(5):
        y, x = divmod(k, 3)
        for ch in range(2):
            expected[ch, 1 + 3 * y:1 + 3 * y + 2, 1 + 4 * x:1 + 4 * x + 3] = k + 10 * ch
    np.testing.assert_array_equal(grid.numpy(), expected)
    # spot checks of the picture above: image 4 sits in row 1, column 1; slot 5 is empty.
    assert grid[0, 4, 5].item() == 4 and grid[1, 5, 7].item() == 14
    assert (grid[:, 4:6, 9:12] == -1).all()


def test_make_grid_no_padding_is_concatenation():
    batch = torch.randn(4, 3, 5, 6)
    grid = make_grid(batch, nrow=2, padding=0)
    rows = [torch.cat([batch[0], batch[1]], 2), torch.cat([batch[2], batch[3]], 2)]
    assert torch.equal(grid, torch.cat(rows, 1))


def test_make_grid_inputs():
    img = numbered_batch(1, c=3)[0] + 7
    single = make_grid(img, padding=2, pad_value=0.5)  # [C, H, W] is one padded image
    assert single.shape == (3, 6, 7) and torch.equal(single[:, 2:4, 2:5], img)
    as_list = make_grid(list(numbered_batch(3)), nrow=8)
    assert torch.equal(as_list, make_grid(numbered_batch(3)))
    assert as_list.shape == (1, 2 + 2 + 2, 3 * 5 + 2)  # nrow larger than N: one row of N
    assert make_grid(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), pad_value=255).dtype == torch.uint8
    with pytest.raises(ValueError, match="N, C, H, W"):
        make_grid(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="nrow"):
        make_grid(torch.zeros(2, 1, 2, 2), nrow=0)
    with pytest.raises(TypeError):
        make_grid(np.zeros((2, 1, 2, 2)))


def test_tensor2img_ranges_and_clipping():
    t = torch.tensor([[[-3., -1., 0., 0.5, 1., 2.]]]).repeat(3, 1, 1)  # [3, 1, 6]
    t[1] *= -1  # the green channel is mirrored, to check channels are not mixed up
    img = tensor2img(t)
    assert img.shape == (1, 6, 3) and img.dtype == np.uint8
    # -1 -> 0, 1 -> 255, 0 -> 127.5 (rounds to even 128), 0.5 -> 191.25 -> 191; out of range clips.
    np.testing.assert_array_equal(img[0, :, 0], [0, 0, 128, 191, 255, 255])
    np.testing.assert_array_equal(img[0, :, 1], [255, 255, 128, 64, 0, 0])
    f = tensor2img(t, min_max=(-1., 1.), image_numpy_dtype="float64")
    assert f.dtype == np.float64 and f[0, 3, 0] == pytest.approx(191.25)
    unit = tensor2img(torch.tensor([[[0., 0.2, 1.]]]), min_max=(0., 1.))
    assert unit.shape == (1, 3, 1)  # gray stays one channel: [H, W, 1]
    np.testing.assert_array_equal(unit[..., 0], [[0, 51, 255]])


def test_tensor2img_batch_and_inputs():
    batch = torch.stack([torch.zeros(3, 2, 2), torch.ones(3, 2, 2)])
    assert (tensor2img(batch, (0, 1)) == 0).all()  # only the first image
    assert (tensor2img(batch[1].numpy(), "(0., 1.)") == 255).all()  # numpy CHW, YAML-style min_max
    if torch.cuda.is_available():
        assert (tensor2img(batch.cuda().requires_grad_(), (0, 1)) == 0).all()
    assert (tensor2img(batch.requires_grad_(), (0, 1)) == 0).all()
    with pytest.raises(ValueError, match="C, H, W"):
        tensor2img(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="image_numpy_dtype"):
        tensor2img(batch, image_numpy_dtype="int16")


def test_parse_min_max():
    assert parse_min_max((0, 1)) == (0., 1.)
    assert parse_min_max([-1, 1.]) == (-1., 1.)
    assert parse_min_max("(0., 1.)") == (0., 1.)
    assert parse_min_max(" [-1, 1e0] ") == (-1., 1.)
    for bad in ("0, 1, 2", "(1., 0.)", (0,), "__import__('os')", None):
        with pytest.raises(ValueError, match="min_max"):
            parse_min_max(bad)


def files_in(folder):
    return sorted(os.listdir(folder))


def test_save_grid_png(tmp_path):
    red = torch.tensor([1., -1., -1.]).view(3, 1, 1).expand(3, 4, 5)
    white = torch.ones(3, 4, 5)
    path = tmp_path / "grid.png"
    save_grid(torch.stack([red, white, white]), str(path), nrow=2, min_max=(-1, 1), padding=1)
    assert files_in(tmp_path) == ["grid.png"]  # no temp file left behind
    back = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert back.shape == (2 * 5 + 1, 2 * 6 + 1, 3) and back.dtype == np.uint8
    rgb = back[..., ::-1]  # OpenCV reads BGR
    np.testing.assert_array_equal(rgb[1, 1], [255, 0, 0])  # red image, top-left
    np.testing.assert_array_equal(rgb[1:5, 1:6], np.broadcast_to([255, 0, 0], (4, 5, 3)))
    np.testing.assert_array_equal(rgb[1:5, 7:12], 255)  # white image, top-right
    np.testing.assert_array_equal(rgb[0], 0)  # padding is black (min_max[0])
    np.testing.assert_array_equal(rgb[6:10, 7:12], 0)  # the empty fourth slot


def test_save_grid_gray(tmp_path):
    batch = torch.linspace(0, 1, 2 * 3 * 4).view(2, 1, 3, 4)
    path = tmp_path / "gray.png"
    save_grid(batch, str(path), min_max=(0, 1), padding=0)
    back = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert back.shape == (3, 8)  # saved as a one-channel PNG
    np.testing.assert_array_equal(back, tensor2img(make_grid(batch, padding=0), (0, 1))[..., 0])


def test_save_image(tmp_path):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (6, 7, 4), dtype=np.uint8)
    save_image(rgba, str(tmp_path / "a.png"))
    back = cv2.imread(str(tmp_path / "a.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(cv2.cvtColor(back, cv2.COLOR_BGRA2RGBA), rgba)
    gray = rgba[..., 0]
    save_image(gray, str(tmp_path / "sub" / "g.png"))  # missing folders are created
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "sub" / "g.png"), cv2.IMREAD_UNCHANGED), gray)
    with pytest.raises(ValueError, match="uint8"):
        save_image(rgba.astype(np.float32), str(tmp_path / "f.png"))
    with pytest.raises(ValueError, match="format"):
        save_image(gray, str(tmp_path / "noext"))
    assert files_in(tmp_path) == ["a.png", "sub"]


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "grid.png"
    path.write_bytes(b"old")

    def fail(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)  # os.fsync runs inside the atomic write
    with pytest.raises(OSError, match="disk full"):
        save_grid(torch.zeros(1, 3, 4, 4), str(path))
    assert path.read_bytes() == b"old"
    assert files_in(tmp_path) == ["grid.png"]

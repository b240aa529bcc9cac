"""Dataset folders holding entries that are not regular files (a FIFO or socket named like an
image, a broken link): listing skips them, so nothing ever opens them (a FIFO would block the
loader forever); an image path given directly is refused by imread with one line."""
import os
import socket

import numpy as np
import pytest

from conftest import within
from ppgan.datasets import ImageFolderDataset
from ppgan.datasets.image_folder import scan_images
from ppgan.datasets.transforms import SRNoise
from ppgan.datasets.vsr_dataset import list_frames
from ppgan.utils.errors import DatasetError
from ppgan.utils.image import imread, imwrite


@pytest.fixture
def frames(tmp_path, monkeypatch):
    """clip/: 00000000.png and 00000002.png real; 00000001.png a FIFO, 00000003.png a socket,
    00000004.png a broken link, 00000005.png a folder."""
    d = tmp_path / "clip"
    rng = np.random.default_rng(0)
    imwrite(d / "00000000.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    imwrite(d / "00000002.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    os.mkfifo(d / "00000001.png")
    monkeypatch.chdir(d)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind("00000003.png")
    os.symlink("gone.png", "00000004.png")
    os.mkdir("00000005.png")
    yield d
    sock.close()


def test_listing_skips_entries_that_are_not_regular_files(frames):
    expected = [str(frames / "00000000.png"), str(frames / "00000002.png")]
    with within(10):
        assert list_frames(str(frames)) == expected
        assert scan_images(str(frames)) == expected
        ds = ImageFolderDataset(str(frames))
        assert [p for p, _ in ds.samples] == expected
        assert [tuple(ds[i]["img"].shape) for i in range(len(ds))] == [(3, 8, 8)] * 2
        noise = SRNoise(str(frames), size=4)
        assert noise.noise_files == expected


@pytest.mark.parametrize("name, why", [("00000001.png", "is a FIFO (named pipe), not a regular file"),
                                       ("00000003.png", "is a socket, not a regular file"),
                                       ("00000004.png", "file not found"),
                                       ("00000005.png", "is a folder, not a regular file")])
def test_a_special_path_given_directly_is_one_line(frames, name, why):
    with within(5), pytest.raises(DatasetError) as info:
        imread(frames / name)
    assert str(info.value) == f"cannot read image {frames / name}: {why}"

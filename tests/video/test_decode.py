"""Decoding: exact content and order, colour matrix, start_frame, closing early."""


import numpy as np

from ppgan.video import iter_frames
from ppgan.video.synthetic import _source_image, read_barcode, render_frame
from video_helpers import decode, psnr
from video_helpers import vids  # noqa: F401 (a fixture)


# ---- decoding --------------------------------------------------------------------------------

def test_iter_frames_exact_content(vids):
    made = vids["mp4"]
    frames = decode(made["path"])
    img = _source_image("astronaut")
    assert len(frames) == made["n_frames"]
    assert all(f.shape == (64, 96, 3) and f.dtype == np.uint8 for f in frames)
    assert [read_barcode(f) for f in frames] == list(range(made["n_frames"]))
    for i in (0, made["n_frames"] // 2, made["n_frames"] - 3):
        # ~29 dB: 4:2:0 chroma subsampling of a detailed 96x64 picture; a neighbour frame scores ~13 dB
        src = render_frame(img, i, made["n_frames"], (96, 64))
        assert psnr(frames[i], src) > 27 > 17 > psnr(frames[i + 2], src)
        assert np.abs(frames[i].reshape(-1, 3).mean(0) - src.reshape(-1, 3).mean(0)).max() < 2
    later = decode(made["path"], start_frame=17)
    assert len(later) == made["n_frames"] - 17
    assert all(np.array_equal(a, b) for a, b in zip(later, frames[17:]))


def test_iter_frames_colour_matrix(vids):
    """A BT.709-tagged video decodes to the RGB it was made from (no BT.601 colour shift)."""
    made = vids["bt709"]
    frames = decode(made["path"])
    img = _source_image("coffee")
    src = np.stack([render_frame(img, i, made["n_frames"], (96, 64)) for i in range(made["n_frames"])])
    got = np.stack(frames)
    assert psnr(got, src) > 27
    assert np.abs(got.reshape(-1, 3).mean(0) - src.reshape(-1, 3).mean(0)).max() < 1.5


def test_iter_frames_bounded_and_closable(vids):
    it = iter_frames(vids["mp4"]["path"])
    first = next(it)
    it.close()  # stops and reaps the decoder
    assert first.shape == (64, 96, 3)

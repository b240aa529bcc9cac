"""The app framework without real weights: image layouts, fp16 fallback, OOM halving, inputs."""
import os

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ppgan.apps.base_predictor import BasePredictor, ImagePredictor, _HalfWithFallback, merge_image, split_image
from ppgan.apps.inputs import collect_inputs
from ppgan.utils.errors import PPGANError
from ppgan.utils.image import imread, imwrite


class Up2(nn.Module):
    """x2 nearest upsampling with a fixed 3x3 blur: a deterministic SR stand-in."""
    scale = 2

    def forward(self, x):
        k = torch.full((x.shape[1], 1, 3, 3), 1 / 9.0, dtype=x.dtype)
        return F.interpolate(F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k, groups=x.shape[1]),
                             scale_factor=2, mode="nearest")


class UpPredictor(ImagePredictor):
    name = "Up"
    suffix = "_x2"

    def __init__(self, output, tile=0, **kw):
        super().__init__(output=output, device="cpu", verbose=False, **kw)
        self.net, self.tile = Up2(), tile

    def predict_rgb(self, rgb):
        x = torch.from_numpy(rgb.transpose(2, 0, 1).copy())[None]
        return self.forward_image(self.net, x, tile=self.tile, overlap=2, scale=2)[0].permute(1, 2, 0).numpy()


@pytest.fixture
def photo():
    from skimage import data

    return data.astronaut()[::8, ::8].copy()  # 64x64x3 uint8


def test_split_merge_round_trip_all_layouts(photo):
    gray = photo[..., 0]
    rgba = np.concatenate([photo, np.full(photo.shape[:2] + (1,), 200, np.uint8)], axis=2)
    deep = photo.astype(np.uint16) * 257
    for img in (photo, gray, rgba, deep):
        rgb, alpha, layout = split_image(img)
        assert rgb.shape == photo.shape and rgb.dtype == np.float32 and 0 <= rgb.min() and rgb.max() <= 1
        back = merge_image(rgb, alpha, layout)
        assert back.dtype == img.dtype and back.shape == img.shape
        np.testing.assert_array_equal(back, img)
    with pytest.raises(PPGANError, match="unsupported image dtype"):
        split_image(photo.astype(np.int32))
    with pytest.raises(PPGANError, match="unsupported image shape"):
        split_image(np.zeros((4, 4, 2), np.uint8))


def test_predict_keeps_layout_and_alpha(tmp_path, photo):
    pred = UpPredictor(str(tmp_path))
    out = pred.predict(photo)
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    gray = pred.predict(photo[..., 1])
    assert gray.shape == (128, 128)
    alpha = np.zeros(photo.shape[:2], np.uint8)
    alpha[16:48, 16:48] = 255
    rgba = pred.predict(np.dstack([photo, alpha]))
    assert rgba.shape == (128, 128, 4)
    assert rgba[40:88, 40:88, 3].min() == 255 and rgba[:24, :24, 3].max() == 0  # alpha upscaled, kept
    np.testing.assert_array_equal(rgba[..., :3], out)  # colour unaffected by alpha
    deep = pred.predict(photo.astype(np.uint16) * 257)
    assert deep.dtype == np.uint16
    assert np.abs(deep.astype(np.float64) / 257 - out).max() <= 1.0


def test_tiled_equals_untiled(tmp_path, photo):
    whole = UpPredictor(str(tmp_path), tile=0).predict(photo)
    tiled = UpPredictor(str(tmp_path), tile=32).predict(photo)
    np.testing.assert_array_equal(whole, tiled)


class Overflow(nn.Module):
    """Overflows (inf) when run under autocast, fine in fp32: fp16's 'black frame' failure."""

    def forward(self, x):
        if torch.is_autocast_enabled("cpu"):
            return x * float("inf")
        return x * 2


def test_half_precision_non_finite_output_is_recomputed_in_fp32():
    stats = {"fp32_retries": 0}
    out = _HalfWithFallback(Overflow(), stats, device_type="cpu")(torch.ones(1, 3, 4, 4))
    assert torch.isfinite(out).all() and torch.equal(out, torch.full((1, 3, 4, 4), 2.0))
    assert stats["fp32_retries"] == 1


class OOMAbove(nn.Module):
    """Raises out-of-memory for windows larger than `limit` pixels per side."""
    scale = 2

    def __init__(self, limit):
        super().__init__()
        self.limit, self.sizes = limit, []

    def forward(self, x):
        self.sizes.append(x.shape[-1])
        if x.shape[-1] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return F.interpolate(x, scale_factor=2, mode="nearest")


def test_out_of_memory_halves_the_tile_and_retries():
    pred = BasePredictor(device="cpu", verbose=False)
    net = OOMAbove(limit=80)
    x = torch.rand(1, 3, 200, 200)
    out = pred.forward_image(net, x, tile=256, overlap=8, scale=2)
    torch.testing.assert_close(out, F.interpolate(x, scale_factor=2, mode="nearest"))
    assert pred.stats["oom_retries"] == 2  # 256 -> 128 -> 64 (+16 context = 80 fits)
    with pytest.raises(PPGANError, match="out of memory on cpu: a 200x200 image at x2 needs about .*even 32-pixel "
                                         "tiles do not fit"):
        pred.forward_image(OOMAbove(limit=10), x, tile=64, overlap=0, scale=2)


def test_half_on_cpu_and_cuda_without_gpu_are_errors():
    with pytest.raises(PPGANError, match="half precision needs a CUDA device"):
        BasePredictor(device="cpu", half=True)
    if not torch.cuda.is_available():
        with pytest.raises(PPGANError, match="no CUDA device"):
            BasePredictor(device="cuda")


def test_folder_mode_mirrors_tree_skips_bad_files_and_existing(tmp_path, photo):
    src = tmp_path / "in dir ü"
    (src / "sub").mkdir(parents=True)
    imwrite(src / "a.png", photo)
    imwrite(src / "sub" / "b.jpg", photo)
    (src / "sub" / "broken.png").write_bytes(b"not a png")
    (src / "notes.txt").write_text("ignored")
    pred = UpPredictor(str(tmp_path / "out"))
    res = pred.run(str(src), progress=False)
    assert sorted(os.path.relpath(p, tmp_path / "out" / "Up") for p in res.outputs) == ["a_x2.png",
                                                                                      os.path.join("sub", "b_x2.jpg")]
    assert [os.path.basename(f) for f, _ in res.failed] == ["broken.png"] and "not a valid" in res.failed[0][1]
    assert imread(res.outputs[0]).shape == (128, 128, 3)
    assert not (tmp_path / "out" / "Up" / "sub" / "broken_x2.png").exists()
    again = pred.run(str(src), skip_existing=True, progress=False)
    assert len(again.skipped) == 2 and not again.outputs


def test_single_file_glob_and_errors(tmp_path, photo):
    imwrite(tmp_path / "p1.png", photo)
    imwrite(tmp_path / "p2.png", photo)
    pred = UpPredictor(str(tmp_path / "o"))
    img, out = pred.run(str(tmp_path / "p1.png"), progress=False)  # PaddleGAN's (pred_img, out_path)
    assert out == str(tmp_path / "o" / "Up" / "p1_x2.png") and imread(out).shape == (128, 128, 3)
    assert np.array_equal(img, imread(out)) and pred.last_output == out
    res = pred.run(str(tmp_path / "p*.png"), progress=False)
    assert len(res.outputs) == 2 and res.ok
    with pytest.raises(PPGANError, match="input not found"):
        pred.run(str(tmp_path / "missing.png"))
    with pytest.raises(PPGANError, match="no files match"):
        pred.run(str(tmp_path / "*.tif"))
    with pytest.raises(PPGANError, match="output path is the input"):
        pred.run(str(tmp_path / "p1.png"), output_path=str(tmp_path / "p1.png"))
    (tmp_path / "t.txt").write_text("x")
    with pytest.raises(PPGANError, match="unsupported file type"):
        pred.run(str(tmp_path / "t.txt"), output_path=str(tmp_path / "t.png"))
    assert collect_inputs(str(tmp_path / "p1.png"))[0] == "file"


def test_a_net_that_cannot_be_tiled_runs_whole_and_reports_out_of_memory():
    pred = BasePredictor(device="cpu", verbose=False)
    net = OOMAbove(limit=1000)
    net.tileable = False
    x = torch.rand(1, 3, 40, 60)
    pred.forward_image(net, x, tile=16, overlap=4, scale=2)
    assert net.sizes == [60]  # one window: the whole image, whatever tile was asked for
    net.limit = 10
    with pytest.raises(PPGANError, match="cannot be tiled"):
        pred.forward_image(net, x, scale=2)
    assert pred.stats["oom_retries"] == 0

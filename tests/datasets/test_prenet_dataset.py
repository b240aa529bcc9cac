"""PairedToTensor (PaddleGAN's paddle.vision ToTensor over paired images), as PReNet's config uses it:
HWC -> CHW, uint8 / 255, floats unchanged, the `Transforms` step seeing CHW output."""
import numpy as np
import pytest

from ppgan.datasets.preprocess import Transforms
from ppgan.datasets.transforms import TRANSFORMS, Compose
from ppgan.utils.errors import ConfigError


@pytest.mark.parametrize("dtype,shape", [(np.uint8, (5, 7, 3)), (np.float32, (4, 6, 3)), (np.uint8, (3, 2)),
                                         (np.float64, (2, 3, 1))])
def test_paired_to_tensor_converts_every_image(dtype, shape):
    rng = np.random.default_rng(0)
    a = (rng.integers(0, 256, shape) if dtype == np.uint8 else rng.random(shape) * 3 - 1).astype(dtype)
    b = a[::-1].copy()
    out = Compose([{"name": "PairedToTensor", "keys": ["image", "image"]}])([a, b], rng)
    assert len(out) == 2
    hwc = a if a.ndim == 3 else a[..., None]
    want = hwc.transpose(2, 0, 1).astype(np.float32)
    if dtype == np.uint8:
        want = want / 255.0
    for got, src in zip(out, (want, want[:, ::-1])):
        assert got.dtype == np.float32 and got.flags["C_CONTIGUOUS"]
        np.testing.assert_allclose(got, src, rtol=1e-7, atol=0)


def test_paired_to_tensor_hwc_and_the_transposition_flag():
    img = np.full((4, 5, 3), 51, np.uint8)
    hwc = Compose([{"name": "PairedToTensor", "data_format": "HWC"}])
    assert not hwc.has_transpose
    out = hwc(img, np.random.default_rng(0))
    assert out.shape == (4, 5, 3) and np.allclose(out, 0.2)
    assert Compose([{"name": "PairedToTensor"}]).has_transpose
    # a Transforms step leaves CHW output alone after PairedToTensor, and transposes HWC output itself
    for fmt in ("CHW", "HWC"):
        step = Transforms([{"name": "PairedRandomHorizontalFlip"}, {"name": "PairedToTensor", "data_format": fmt}],
                          input_keys=["lq", "gt"])
        datas = step({"lq": img, "gt": img}, np.random.default_rng(0))
        assert datas["lq"].shape == datas["gt"].shape == (3, 4, 5)


@pytest.mark.parametrize("fmt", ["NCHW", "chw", ""])
def test_paired_to_tensor_bad_format(fmt):
    with pytest.raises(ConfigError, match="data_format"):
        TRANSFORMS.build({"name": "PairedToTensor", "data_format": fmt})

"""DRN's data: SRPairedRandomCrop with `scale_list` (PaddleGAN: an extra x2 image, the GT patch
resized bicubically to twice the LQ patch, for `output_keys: [lq, lqx2, gt]`), and the config's
SRDataset producing it."""
import copy
import os

import cv2
import numpy as np
import pytest

from ppgan.datasets import build_dataset
from ppgan.datasets.transforms import Compose
from ppgan.utils.config import load_config
from ppgan.utils.errors import DatasetError
from ppgan.utils.image import imwrite

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _pair(seed, h=10, w=12):
    lq = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return lq, lq.repeat(4, 0).repeat(4, 1)  # GT = nearest x4: a right crop pair has gt == up(lq)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scale_list_adds_the_bicubic_x2_image(seed):
    lq, gt = _pair(seed)
    crop = Compose([{"name": "SRPairedRandomCrop", "gt_patch_size": 32, "scale": 4, "scale_list": True,
                     "keys": ["image", "image"]}])
    out = crop([lq, gt], np.random.default_rng(seed))
    assert [o.shape for o in out] == [(8, 8, 3), (16, 16, 3), (32, 32, 3)]
    lq_c, x2, gt_c = out
    np.testing.assert_array_equal(gt_c, lq_c.repeat(4, 0).repeat(4, 1))
    np.testing.assert_array_equal(x2, cv2.resize(np.ascontiguousarray(gt_c), (16, 16), interpolation=cv2.INTER_CUBIC))
    assert x2.dtype == np.uint8


def test_scale_list_is_ignored_off_x4_and_refused_for_sequences():
    lq = np.zeros((10, 12, 3), np.uint8)
    gt2 = np.zeros((20, 24, 3), np.uint8)
    out = Compose([{"name": "SRPairedRandomCrop", "gt_patch_size": 16, "scale": 2, "scale_list": True}])(
        [lq, gt2], np.random.default_rng(0))
    assert [o.shape for o in out] == [(8, 8, 3), (16, 16, 3)]  # PaddleGAN: only scale 4 adds lqx2
    _, gt = _pair(0)
    crop = Compose([{"name": "SRPairedRandomCrop", "gt_patch_size": 32, "scale": 4, "scale_list": True}])
    with pytest.raises(DatasetError, match="one LQ and one GT"):
        crop([lq, lq, gt, gt], np.random.default_rng(0))


def test_config_pipeline_keeps_the_three_images_together():
    """The flips / transposition after the crop act on lq, lqx2 and gt with one draw."""
    cfg = load_config(os.path.join(ROOT, "configs", "drn_psnr_x4_div2k.yaml"))
    step = [s for s in cfg["dataset"]["train"]["preprocess"] if s["name"] == "Transforms"][0]
    pipeline = copy.deepcopy(step["pipeline"])
    pipeline[0]["gt_patch_size"] = 32
    compose = Compose(pipeline)
    for seed in range(6):
        lq, gt = _pair(seed)
        lq_c, x2, gt_c = compose([lq, gt], np.random.default_rng(seed))
        assert lq_c.shape == (3, 8, 8) and x2.shape == (3, 16, 16) and gt_c.shape == (3, 32, 32)
        np.testing.assert_array_equal(gt_c, lq_c.repeat(4, 1).repeat(4, 2))
        # x2 is the bicubic half of the GT under the same flips (exact x2 resizing commutes with them)
        half = cv2.resize(np.ascontiguousarray(gt_c.transpose(1, 2, 0).astype(np.uint8)), (16, 16),
                          interpolation=cv2.INTER_CUBIC)
        np.testing.assert_allclose(x2, half.transpose(2, 0, 1), atol=1)


def test_config_dataset_returns_lqx2(tmp_path):
    cfg = load_config(os.path.join(ROOT, "configs", "drn_psnr_x4_div2k.yaml"))
    for i in range(2):
        lq, gt = _pair(i)
        imwrite(tmp_path / "LR" / f"{i:04d}.png", lq)
        imwrite(tmp_path / "HR" / f"{i:04d}.png", gt)
    train = copy.deepcopy(cfg["dataset"]["train"])
    train.update(lq_folder=str(tmp_path / "LR"), gt_folder=str(tmp_path / "HR"))
    train["preprocess"][2]["pipeline"][0]["gt_patch_size"] = 32
    s = build_dataset(train)[0]
    assert s["lq"].shape == (3, 8, 8) and s["lqx2"].shape == (3, 16, 16) and s["gt"].shape == (3, 32, 32)

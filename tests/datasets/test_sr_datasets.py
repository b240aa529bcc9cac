"""SR and video-SR datasets: folder pairing, on-the-fly degradation, PaddleGAN SR / VSR
pipelines (crop correspondence, frame windows, padding, mirroring), errors, determinism."""
import copy
import os

import numpy as np
import pytest
import torch

from ppgan.datasets import (RepeatDataset, SRDataset, SRGTOnlyDataset, SRPhotoDataset, SRREDSMultipleGTDataset,
                            VSRFolderDataset, VSRREDSDataset, VSRREDSMultipleGTDataset, VSRVimeo90KDataset,
                            build_dataloader, build_dataset)
from ppgan.datasets.sr_dataset import degrade
from ppgan.datasets.transforms import Compose
from ppgan.datasets.vsr_dataset import GetFrameIdxwithPadding
from ppgan.utils.config import load_config
from ppgan.utils.errors import ConfigError, DatasetError
from ppgan.utils.image import imresize, imwrite

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
S = 4


def lq_image(h, w, seed, marker=None):
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    if marker is not None:  # channel 2 constant: identifies the frame through crops and flips
        img[..., 2] = marker
    return img


def up(img):
    """GT = nearest x4 of LQ, so a correct LQ/GT crop pair satisfies gt == up(lq) exactly."""
    return img.repeat(S, 0).repeat(S, 1)


def t2u8(t):
    return np.round(t.numpy() * 255).astype(np.int64)


def assert_gt_matches_lq(lq, gt):
    """lq [.., C, h, w], gt [.., C, 4h, 4w] float in [0, 1]."""
    np.testing.assert_array_equal(t2u8(gt), t2u8(lq).repeat(S, -2).repeat(S, -1))


def paddle_preprocess(config, split="train", patch=16):
    cfg = load_config(os.path.join(ROOT, "configs", config))["dataset"][split]
    steps = copy.deepcopy(cfg["dataset"]["preprocess"] if cfg["name"] == "RepeatDataset" else cfg["preprocess"])
    for step in steps:
        for t in step.get("pipeline", []):
            if t["name"] == "SRPairedRandomCrop":
                t["gt_patch_size"] = patch
    return steps


# ---- single image -----------------------------------------------------------------------------
@pytest.fixture
def sr_folders(tmp_path):
    gt_dir, lq_dir = tmp_path / "HR", tmp_path / "LR" / "X4"
    for i in range(3):
        lq = lq_image(8, 10, i)
        imwrite(gt_dir / f"{i:04d}.png", up(lq))
        imwrite(lq_dir / f"{i:04d}x4.png", lq)
    return str(lq_dir), str(gt_dir)


def test_srdataset_paddlegan_train_pipeline_keeps_lq_gt_aligned(sr_folders):
    lq_dir, gt_dir = sr_folders
    ds = SRDataset(lq_dir, gt_dir, preprocess=paddle_preprocess("esrgan_psnr_x4_div2k.yaml"), scale=4,
                   filename_tmpl="{}x4")
    assert len(ds) == 3 and ds.data_infos[0]["lq_path"].endswith("0000x4.png")
    seen = set()
    for seed in range(8):
        s = ds[(1, seed)]
        assert s["lq"].shape == (3, 4, 4) and s["gt"].shape == (3, 16, 16) and s["lq"].dtype == torch.float32
        assert 0 <= float(s["lq"].min()) and float(s["gt"].max()) <= 1
        assert_gt_matches_lq(s["lq"], s["gt"])
        seen.add(t2u8(s["lq"]).tobytes())
    assert len(seen) > 4  # crops / flips vary with the seed...
    torch.testing.assert_close(ds[(2, 5)]["gt"], ds[(2, 5)]["gt"])  # ...and repeat with it


def test_srdataset_default_and_test_pipeline(sr_folders):
    lq_dir, gt_dir = sr_folders
    for pre in (None, paddle_preprocess("esrgan_psnr_x4_div2k.yaml", "test")):
        s = SRDataset(lq_dir, gt_dir, preprocess=pre, filename_tmpl="{}x4")[0]
        assert s["lq"].shape == (3, 8, 10) and s["gt"].shape == (3, 32, 40)
        assert_gt_matches_lq(s["lq"], s["gt"])
        assert s["gt_path"].endswith("0000.png")


def test_srdataset_errors(sr_folders, tmp_path):
    lq_dir, gt_dir = sr_folders
    with pytest.raises(DatasetError, match="not found"):
        SRDataset(str(tmp_path / "nope"), gt_dir)
    with pytest.raises(DatasetError, match="no LQ partner"):
        SRDataset(lq_dir, gt_dir)  # default template '{}' finds no 0000.png in LR
    ds = SRDataset(lq_dir, gt_dir, scale=2, filename_tmpl="{}x4")
    with pytest.raises(DatasetError, match="x2"):
        ds[0]


def test_build_srdataset_and_repeat_from_config(sr_folders):
    lq_dir, gt_dir = sr_folders
    inner = {"name": "SRDataset", "lq_folder": lq_dir, "gt_folder": gt_dir, "scale": 4, "filename_tmpl": "{}x4",
             "preprocess": paddle_preprocess("esrgan_psnr_x4_div2k.yaml")}
    cfg = {"name": "RepeatDataset", "times": 4, "dataset": inner, "batch_size": 4}
    snapshot = copy.deepcopy(cfg)
    ds, loader, _ = build_dataloader(cfg, is_train=True, seed=0)
    assert cfg == snapshot and isinstance(ds, RepeatDataset) and len(ds) == 12
    batch = next(iter(loader))
    assert batch["lq"].shape == (4, 3, 4, 4) and batch["gt"].shape == (4, 3, 16, 16)
    assert_gt_matches_lq(batch["lq"], batch["gt"])


def test_sr_transforms_registered_and_srnoise(tmp_path):
    noise_dir = tmp_path / "noise"
    imwrite(noise_dir / "n0.png", np.random.default_rng(5).integers(90, 130, (20, 20, 3), dtype=np.uint8))
    lq, gt = lq_image(8, 8, 0).astype(np.float32) / 255, up(lq_image(8, 8, 0)).astype(np.float32) / 255
    pipe = Compose([{"name": "SRPairedRandomCrop", "gt_patch_size": 16, "scale": 4},
                    {"name": "PairedRandomTransposeHW", "prob": 1.0},
                    {"name": "Transpose"},
                    {"name": "SRNoise", "noise_path": str(noise_dir), "size": 4, "keys": ["image"]}])
    out_lq, out_gt = pipe([lq, gt], np.random.default_rng(0))
    assert out_lq.shape == (3, 4, 4) and out_gt.shape == (3, 16, 16)
    assert out_lq.min() >= 0 and out_lq.max() <= 1
    assert not np.allclose(out_lq, out_gt[:, ::4, ::4])  # noise on LQ only...
    assert abs(float((out_lq - out_gt[:, ::4, ::4]).mean())) < 0.05  # ...with zero mean (before clipping)
    with pytest.raises(ConfigError):
        Compose([{"name": "SRPairedRandomCrop", "gt_patch_size": 15, "scale": 4}])
    with pytest.raises(ValueError, match="scale size not match"):
        Compose([{"name": "SRPairedRandomCrop", "gt_patch_size": 16, "scale": 4}])([gt, gt], np.random.default_rng(0))


def test_gt_only_dataset_bicubic_lq_and_degradations(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(2):
        imwrite(tmp_path / "gt" / f"{i}.png", rng.integers(0, 256, (37, 45, 3), dtype=np.uint8))
    whole = SRGTOnlyDataset(str(tmp_path / "gt"), scale=4, gt_patch_size=None, use_flip=False, use_rot=False)
    s = whole[0]
    assert s["gt"].shape == (3, 36, 44) and s["lq"].shape == (3, 9, 11)
    gt = t2u8(s["gt"]).transpose(1, 2, 0).astype(np.uint8)
    np.testing.assert_array_equal(t2u8(s["lq"]).transpose(1, 2, 0), imresize(gt, 0.25))  # MATLAB bicubic LR
    ds = SRGTOnlyDataset(str(tmp_path / "gt"), scale=4, gt_patch_size=16)
    for seed in range(4):  # flips happen before degradation, so LQ is always bicubic(GT)
        s = ds[(1, seed)]
        gt = t2u8(s["gt"]).transpose(1, 2, 0).astype(np.uint8)
        np.testing.assert_array_equal(t2u8(s["lq"]).transpose(1, 2, 0), imresize(gt, 0.25))
    noisy = SRGTOnlyDataset(str(tmp_path / "gt"), scale=4, gt_patch_size=16, blur_sigma=[0.5, 1.5],
                            noise_sigma=[5, 10], jpeg_quality=[30, 60])
    a, b = noisy[(0, 3)], noisy[(0, 3)]
    torch.testing.assert_close(a["lq"], b["lq"])
    gt = t2u8(a["gt"]).transpose(1, 2, 0).astype(np.uint8)
    assert np.abs(t2u8(a["lq"]).transpose(1, 2, 0) - imresize(gt, 0.25).astype(np.int64)).mean() > 2
    with pytest.raises(DatasetError, match="smaller"):
        SRGTOnlyDataset(str(tmp_path / "gt"), gt_patch_size=64)[0]
    with pytest.raises(ConfigError):
        SRGTOnlyDataset(str(tmp_path / "gt"), gt_patch_size=18)
    with pytest.raises(DatasetError):
        SRGTOnlyDataset(str(tmp_path / "missing"))


def test_degrade_gray_and_ranges():
    gt = np.random.default_rng(0).integers(0, 256, (16, 16, 1), dtype=np.uint8)
    lq = degrade(gt, 2, np.random.default_rng(0), (1.0, 1.0), (3, 3), (50, 50))
    assert lq.shape == (8, 8, 1) and lq.dtype == np.uint8


def test_sr_photo_dataset_splits():
    train = SRPhotoDataset("train", scale=4, gt_patch_size=32, num_samples=10, photo_scale=0.25)
    s = train[(3, 0)]
    assert s["lq"].shape == (3, 8, 8) and s["gt"].shape == (3, 32, 32)
    assert s["lq_path"].startswith("skimage:") and "coffee" not in s["lq_path"]
    test = SRPhotoDataset("test", scale=4, test_size=64, photo_scale=0.5)
    assert [test[i]["gt_path"].split("@")[0] for i in range(len(test))] == ["skimage:coffee", "skimage:rocket"]
    again = SRPhotoDataset("test", scale=4, test_size=64, photo_scale=0.5)
    torch.testing.assert_close(test[(1, 7)]["lq"], again[(1, 99)]["lq"])  # fixed pairs
    whole = SRPhotoDataset("test", scale=4, photos=["coffee"], photo_scale=0.25)[0]
    assert whole["gt"].shape == (3, 100, 148) and whole["lq"].shape == (3, 25, 37)  # 100x150 mod 4


# ---- video -----------------------------------------------------------------------------------
N_FRAMES = 7


def frame_id(t):
    """Frame ids of [T, C, H, W] frames (channel 2 marker)."""
    return [int(v) for v in t2u8(t[:, 2, 0, 0])]


@pytest.fixture
def reds(tmp_path):
    lq_root, gt_root = tmp_path / "train_sharp_bicubic" / "X4", tmp_path / "train_sharp" / "X4"
    for c in range(3):
        for f in range(N_FRAMES):
            lq = lq_image(8, 8, c * 100 + f, marker=10 * c + f)
            imwrite(lq_root / f"{c:03d}" / f"{f:08d}.png", lq)
            imwrite(gt_root / f"{c:03d}" / f"{f:08d}.png", up(lq))
    ann = tmp_path / "meta_info_REDS_GT.txt"
    ann.write_text("".join(f"{c:03d}/{f:08d}.png (32,32,3)\n" for c in range(3) for f in range(N_FRAMES)))
    return str(lq_root), str(gt_root), str(ann)


def test_vsr_reds_edvr_train_window(reds):
    lq, gt, ann = reds
    ds = VSRREDSDataset(lq, gt, ann, num_frames=5, preprocess=paddle_preprocess("edvr_m_wo_tsa.yaml"),
                        val_partition=["000"])
    assert len(ds) == 2 * N_FRAMES and ds.data_infos[0]["key"] == "001/00000000"
    for i in (0, 3, 13):
        s = ds[(i, i)]
        assert s["lq"].shape == (5, 3, 4, 4) and s["gt"].shape == (1, 3, 16, 16)
        ids = frame_id(s["lq"])
        clip, frame = ds.data_infos[i]["key"].split("/")
        center = ids[2]
        assert ids == [center - 2, center - 1, center, center + 1, center + 2] and ids[0] >= 10 * int(clip)
        if 2 <= int(frame) <= N_FRAMES - 3:
            assert center == 10 * int(clip) + int(frame)
        assert frame_id(s["gt"]) == [center]
        assert_gt_matches_lq(s["lq"][2], s["gt"][0])  # same crop and flips on LQ and GT
        assert len(s["lq_path"]) == 5 and s["gt_path"][0].endswith(f"{center % 10:08d}.png")


def test_vsr_reds_edvr_test_padding(reds):
    lq, gt, ann = reds
    ds = VSRREDSDataset(lq, gt, ann, num_frames=5, preprocess=paddle_preprocess("edvr_m_wo_tsa.yaml", "test"),
                        val_partition=["000"], test_mode=True)
    assert len(ds) == N_FRAMES
    s = ds[0]
    assert s["lq"].shape == (5, 3, 8, 8) and frame_id(s["lq"]) == [4, 3, 0, 1, 2] and frame_id(s["gt"]) == [0]
    assert frame_id(VSRREDSDataset(lq, gt, ann, val_partition=["000"], test_mode=True)[N_FRAMES - 1]["lq"]) == \
        [4, 5, 6, 3, 2]
    pad = GetFrameIdxwithPadding("replicate")
    assert pad.indices(0, 99, 5) == [0, 0, 0, 1, 2]
    assert GetFrameIdxwithPadding("reflection").indices(0, 99, 5) == [2, 1, 0, 1, 2]
    assert GetFrameIdxwithPadding("circle").indices(0, 99, 5) == [3, 4, 0, 1, 2]


def test_vsr_reds_multiple_gt_basicvsr(reds):
    lq, gt, ann = reds
    ds = VSRREDSMultipleGTDataset(lq, gt, ann, num_frames=4, preprocess=paddle_preprocess("basicvsr_reds.yaml"),
                                  val_partition=["002"])
    assert [d["key"] for d in ds.data_infos] == ["000", "001"]
    s = ds[(1, 3)]
    assert s["lq"].shape == (4, 3, 4, 4) and s["gt"].shape == (4, 3, 16, 16)
    ids = frame_id(s["lq"])
    assert ids == list(range(ids[0], ids[0] + 4)) and frame_id(s["gt"]) == ids and 10 <= ids[0] <= 13
    assert_gt_matches_lq(s["lq"], s["gt"])
    test = VSRREDSMultipleGTDataset(lq, gt, None, num_frames=None, val_partition=["002"], test_mode=True)
    s = test[0]
    assert len(test) == 1 and frame_id(s["lq"]) == list(range(20, 27)) and s["gt"].shape == (7, 3, 32, 32)
    # BasicSR-style annotation ('clip count (h,w,c)')
    other = os.path.join(os.path.dirname(ann), "basicsr.txt")
    with open(other, "w") as f:
        f.write("000 7 (32,32,3)\n001 7 (32,32,3)\n")
    assert len(VSRREDSMultipleGTDataset(lq, gt, other, num_frames=3, val_partition="REDS4")) == 1  # '000' is REDS4
    assert len(VSRREDSDataset(lq, gt, other, val_partition="REDS4")) == N_FRAMES


def test_vsr_loader_batches(reds):
    lq, gt, ann = reds
    cfg = {"name": "RepeatDataset", "times": 2, "batch_size": 2,
           "dataset": {"name": "VSRREDSMultipleGTDataset", "lq_folder": lq, "gt_folder": gt, "ann_file": ann,
                       "num_frames": 3, "val_partition": ["002"],
                       "preprocess": paddle_preprocess("basicvsr_reds.yaml")}}
    _, loader, _ = build_dataloader(cfg, seed=1)
    batch = next(iter(loader))
    assert batch["lq"].shape == (2, 3, 3, 4, 4) and batch["gt"].shape == (2, 3, 3, 16, 16)


def test_vsr_errors(reds, tmp_path):
    lq, gt, ann = reds
    with pytest.raises(DatasetError, match="not found"):
        VSRREDSDataset(str(tmp_path / "nope"), gt, ann)
    with pytest.raises(DatasetError, match="annotation file not found"):
        VSRREDSMultipleGTDataset(lq, gt, str(tmp_path / "none.txt"))
    bad = tmp_path / "bad.txt"
    bad.write_text("005/00000000.png (32,32,3)\n")
    with pytest.raises(DatasetError, match="005"):
        VSRREDSDataset(lq, gt, str(bad))
    with pytest.raises(ConfigError):
        VSRREDSMultipleGTDataset(lq, gt, ann, num_frames=20, val_partition=["002"])
    with pytest.raises(ConfigError):
        VSRREDSDataset(lq, gt, ann, num_frames=4)
    with pytest.raises(ConfigError):
        VSRREDSDataset(lq, gt, ann, val_partition="nope")


def test_vimeo90k_and_mirror(tmp_path):
    lq_root, gt_root = tmp_path / "lq" / "sequences", tmp_path / "gt" / "sequences"
    keys = ["00001/0001", "00001/0002"]
    for k, key in enumerate(keys):
        for f in range(1, 8):
            lq = lq_image(8, 8, k * 10 + f, marker=10 * k + f)
            imwrite(lq_root / key / f"im{f}.png", lq)
            imwrite(gt_root / key / f"im{f}.png", up(lq))
    (tmp_path / "sep_trainlist.txt").write_text("\n".join(keys) + "\n")
    cfg = {"name": "VSRVimeo90KDataset", "lq_folder": str(lq_root), "gt_folder": str(gt_root),
           "ann_file": str(tmp_path / "sep_trainlist.txt"),
           "preprocess": [{"name": "ReadImageSequence", "key": "lq"}, {"name": "ReadImageSequence", "key": "gt"},
                          {"name": "Transforms", "input_keys": ["lq", "gt"], "pipeline": [
                              {"name": "SRPairedRandomCrop", "gt_patch_size": 16, "scale": 4},
                              {"name": "PairedRandomHorizontalFlip"}, {"name": "PairedRandomVerticalFlip"},
                              {"name": "PairedRandomTransposeHW"}, {"name": "TransposeSequence"},
                              {"name": "MirrorVideoSequence"},
                              {"name": "NormalizeSequence", "mean": [0, 0, 0], "std": [255, 255, 255]}]}]}
    ds = build_dataset(cfg)
    s = ds[(1, 0)]
    assert s["lq"].shape == (14, 3, 4, 4) and s["gt"].shape == (14, 3, 16, 16)
    assert frame_id(s["lq"]) == [11, 12, 13, 14, 15, 16, 17, 17, 16, 15, 14, 13, 12, 11]
    assert_gt_matches_lq(s["lq"], s["gt"])
    plain = VSRVimeo90KDataset(str(lq_root), str(gt_root))  # keys from the folders
    assert len(plain) == 2 and plain[0]["lq"].shape == (7, 3, 8, 8) and frame_id(plain[0]["gt"])[0] == 1
    with pytest.raises(DatasetError):
        (tmp_path / "bad.txt").write_text("00002/0001\n")
        VSRVimeo90KDataset(str(lq_root), str(gt_root), str(tmp_path / "bad.txt"))


def test_folder_and_legacy_reds(reds):
    lq, gt, _ = reds
    folder = VSRFolderDataset(lq, gt)
    assert len(folder) == 3 and frame_id(folder[1]["lq"]) == list(range(10, 17))
    legacy = SRREDSMultipleGTDataset("train", lq, gt, crop_size=16, number_frames=3, use_flip=True, use_rot=True,
                                     random_reverse=True, val_partition=["000"], num_clips=3)
    assert len(legacy) == 2
    for seed in range(4):
        s = legacy[(0, seed)]
        assert s["lq"].shape == (3, 3, 4, 4) and s["gt"].shape == (3, 3, 16, 16)
        ids = frame_id(s["lq"])
        assert ids in (list(range(ids[0], ids[0] + 3)), list(range(ids[0], ids[0] - 3, -1)))
        assert_gt_matches_lq(s["lq"], s["gt"])
    test = SRREDSMultipleGTDataset("test", lq, gt, number_frames=7, val_partition=["000"], num_clips=3)
    assert len(test) == 1 and test[0]["lq"].shape == (7, 3, 8, 8)

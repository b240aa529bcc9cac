"""EmbeddedVideoEdgesDataset / EmbeddedVideoFramesDataset: sample contract, the true flow (it warps
frame t-1 onto frame t; a pure pan gives a constant flow), fixed held-out clips, bad arguments."""
import numpy as np
import pytest
import torch

from ppgan.datasets import build_dataset
from ppgan.datasets.embedded_photos import TEST_PHOTOS, TRAIN_PHOTOS
from ppgan.datasets.vid2vid_dataset import (EmbeddedVideoEdgesDataset, EmbeddedVideoFramesDataset, edge_map,
                                            edges_to_tensor, true_flow)
from ppgan.modules.flow import flow_warp
from ppgan.utils.errors import ConfigError


@pytest.fixture(scope="module")
def train_ds():
    return EmbeddedVideoEdgesDataset(split="train", size=32, n_frames=4, num_samples=6)


def test_sample_contract(train_ds):
    s = train_ds[(1, 1234)]
    assert s["A"].shape == (4, 1, 32, 32) and s["B"].shape == (4, 3, 32, 32)
    assert s["flow"].shape == (3, 2, 32, 32) and s["flow_mask"].shape == (3, 1, 32, 32)
    assert all(s[k].dtype == torch.float32 for k in ("A", "B", "flow", "flow_mask"))
    assert set(torch.unique(s["A"]).tolist()) <= {-1.0, 1.0} and (s["A"] > 0).any()  # binary edge maps
    assert -1 <= float(s["B"].min()) and float(s["B"].max()) <= 1 and float(s["B"].std()) > 0.05
    assert set(torch.unique(s["flow_mask"]).tolist()) <= {0.0, 1.0} and float(s["flow_mask"].mean()) > 0.5
    assert s["A_path"].split(":")[1].split("#")[0] in TRAIN_PHOTOS
    again = train_ds[(1, 1234)]
    assert torch.equal(again["B"], s["B"])  # same key, same clip
    assert not torch.equal(train_ds[(1, 99)]["B"], s["B"])  # another draw, another clip


def test_true_flow_warps_the_previous_frame_onto_the_next(train_ds):
    for key in ((0, 1), (3, 7), (5, 11)):
        s = train_ds[key]
        b, flow, m = s["B"], s["flow"], s["flow_mask"]
        warped = flow_warp(b[:-1], flow.permute(0, 2, 3, 1), padding_mode="border")
        err = float(((warped - b[1:]).abs() * m).sum() / (3 * m.sum()))
        still = float(((b[:-1] - b[1:]).abs() * m).sum() / (3 * m.sum()))
        assert err < 0.6 * still, (key, err, still)  # slow pans of smooth photos differ little anyway


def test_pure_pan_gives_a_constant_flow():
    motion = {"side": np.array([40.0, 40.0]), "centre": np.array([[50.0, 60.0], [54.0, 58.0]])}
    flow, valid = true_flow(motion, 1, 20)  # window moved (+4, -2) photo px; 20 px frames of a 40 px window
    np.testing.assert_allclose(flow[0], 2.0, atol=1e-9)   # frame-1 content sits 2 px to the right in frame 0
    np.testing.assert_allclose(flow[1], -1.0, atol=1e-9)
    ys, xs = np.mgrid[0:20, 0:20]
    assert np.array_equal(valid[0], (xs <= 17) & (ys >= 1))  # the last 2 columns and the top row entered the view
    zoom = {"side": np.array([40.0, 20.0]), "centre": np.array([[50.0, 50.0], [50.0, 50.0]])}
    flow, _ = true_flow(zoom, 1, 20)  # zoom x2 about the centre: frame-1 pixel x sits at 10 + (x - 10) / 2 in frame 0
    xs = np.arange(20.0)
    np.testing.assert_allclose(flow[0, 7], 10 + (xs - 10) / 2 - xs, atol=1e-9)


def test_held_out_clips_are_fixed_and_disjoint_from_training():
    ds = EmbeddedVideoEdgesDataset(split="test", size=32, n_frames=3, clips_per_photo=2)
    assert len(ds) == 2 * len(TEST_PHOTOS) and not set(TEST_PHOTOS) & set(TRAIN_PHOTOS)
    a, b = ds[1], ds[(1, 5)]  # the trainer's (index, seed) key does not change a held-out clip
    assert torch.equal(a["B"], b["B"]) and torch.equal(a["flow"], b["flow"])
    assert {ds[i]["A_path"].split(":")[1].split("#")[0] for i in range(len(ds))} == set(TEST_PHOTOS)


def test_frames_dataset_lists_the_held_out_clips_frame_by_frame():
    kw = {"split": "test", "size": 32, "n_frames": 3, "clips_per_photo": 1}
    clips, frames = EmbeddedVideoEdgesDataset(**kw), EmbeddedVideoFramesDataset(**kw)
    assert len(frames) == len(clips) * 3
    for index in (0, 4):
        c, t = divmod(index, 3)
        f = frames[index]
        assert torch.equal(f["A"], clips[c]["A"][t]) and torch.equal(f["B"], clips[c]["B"][t])
    train = build_dataset({"name": "EmbeddedVideoFramesDataset", "size": 32, "num_samples": 5, "source_nc": 3})
    s = train[(2, 8)]
    assert len(train) == 5 and s["A"].shape == (3, 32, 32) and s["B"].shape == (3, 32, 32)


def test_edge_helpers():
    img = np.zeros((16, 16, 3), np.uint8)
    img[:, 8:] = 255
    e = edge_map(img)
    assert e.dtype == np.uint8 and e.shape == (16, 16) and e[:, 7:9].any() and not e[:, :5].any()
    t = edges_to_tensor(np.stack([e, e]), channels=3)
    assert t.shape == (2, 3, 16, 16) and float(t.max()) == 1.0 and float(t.min()) == -1.0


@pytest.mark.parametrize("kw", [{"split": "val"}, {"size": 8}, {"n_frames": 1}, {"source_nc": 2},
                                {"max_zoom": 0.9}, {"num_samples": 0}])
def test_bad_arguments(kw):
    with pytest.raises(ConfigError):
        EmbeddedVideoEdgesDataset(**kw)

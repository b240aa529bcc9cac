"""Box maths of the face toolkit: IoU, greedy NMS (vs a brute-force reference), batched NMS, input checks."""
import numpy as np
import pytest
import torch

from ppgan.faceutils.boxes import Face, as_image_list, batched_nms, box_iou, nms
from ppgan.utils.errors import PPGANError


def _random_boxes(seed, n, span=100.0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, span, (n, 2))
    wh = rng.uniform(2, span / 3, (n, 2))
    boxes = np.concatenate([xy, xy + wh], 1)
    # half of them jittered copies of the others, so that every threshold suppresses some
    src = rng.integers(0, n // 2, n - n // 2)
    boxes[n // 2:] = boxes[src] + rng.normal(0, 1.5, (len(src), 4))
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)  # no degenerate box
    scores = rng.permutation(n) / n + rng.uniform(0, 1e-3, n)  # distinct scores: one right answer
    return torch.tensor(boxes, dtype=torch.float32), torch.tensor(scores, dtype=torch.float32)


def _overlap(a, b, mode):
    """Plain-Python overlap of two boxes (the reference)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return inter / (min(area_a, area_b) if mode == "min" else area_a + area_b - inter)


def _reference_nms(boxes, scores, thr, mode="union"):
    b = boxes.double().tolist()
    order = sorted(range(len(b)), key=lambda i: -float(scores[i]))
    keep = []
    for i in order:
        if all(_overlap(b[i], b[j], mode) <= thr for j in keep):
            keep.append(i)
    return keep


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("thr", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("mode", ["union", "min"])
def test_nms_matches_brute_force(seed, thr, mode):
    boxes, scores = _random_boxes(seed, 120)
    keep = nms(boxes, scores, thr, mode=mode)
    assert keep.dtype == torch.long
    assert keep.tolist() == _reference_nms(boxes, scores, thr, mode)
    assert 0 < len(keep) < len(boxes)  # the data do exercise suppression


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_batched_nms_works_per_group(seed):
    boxes, scores = _random_boxes(seed, 150)
    groups = torch.as_tensor(np.random.default_rng(seed).integers(0, 4, 150))
    keep = batched_nms(boxes, scores, groups, 0.5)
    expected = []
    for g in range(4):
        idx = torch.nonzero(groups == g).squeeze(1)
        expected += idx[torch.as_tensor(_reference_nms(boxes[idx], scores[idx], 0.5), dtype=torch.long)].tolist()
    assert sorted(keep.tolist()) == sorted(expected)
    assert torch.all(scores[keep][:-1] >= scores[keep][1:])  # by descending score
    assert len(keep) > len(nms(boxes, scores, 0.5))  # groups do not suppress each other


def test_identical_boxes_in_different_groups_are_both_kept():
    boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 10, 10]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert sorted(batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.5).tolist()) == [0, 1]
    assert nms(boxes, scores, 0.5).tolist() == [0]


def test_nms_empty_and_iou_values():
    assert nms(torch.zeros((0, 4)), torch.zeros(0), 0.5).numel() == 0
    assert batched_nms(torch.zeros((0, 4)), torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5).numel() == 0
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0, 1]], atol=1e-6)
    np.testing.assert_allclose(box_iou(torch.tensor(a), torch.tensor(b)).numpy(), [[50 / 150, 0, 1]], atol=1e-6)


def test_nms_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        nms(torch.zeros((1, 4)), torch.zeros(1), 0.5, mode="max")


def test_face_record():
    f = Face([1, 2, 11, 22], 0.5, np.arange(10))
    assert f.box.dtype == np.float32 and f.landmarks.shape == (5, 2)
    assert f.width == 10 and f.height == 20 and f.center.tolist() == [6, 12]
    assert f.to_dict()["landmarks"][1] == [2.0, 3.0]


def test_as_image_list_accepts_lists_and_arrays():
    im = np.zeros((4, 5, 3), np.uint8)
    assert len(as_image_list([im, im])) == 2
    assert len(as_image_list(im)) == 1
    assert len(as_image_list(np.zeros((3, 4, 5, 3), np.uint8))) == 3
    assert as_image_list([]) == []


@pytest.mark.parametrize("bad, match", [
    (np.zeros((4, 5, 3), np.float32), "dtype float32"),
    (np.zeros((4, 5), np.uint8), r"shape \(4, 5\)"),
    ([np.zeros((4, 5, 4), np.uint8)], r"image 0 has shape \(4, 5, 4\)"),
    ([np.zeros((4, 5, 3), np.uint8), np.zeros((4, 5), np.uint8)], "image 1 has shape"),
    ([np.zeros((0, 5, 3), np.uint8)], "image 0 has shape"),
    ("photo.png", "got str"),
    ([[1, 2, 3]], "image 0 is a list"),
])
def test_as_image_list_rejects_bad_input_in_one_line(bad, match):
    with pytest.raises(PPGANError, match=match) as e:
        as_image_list(bad)
    assert "\n" not in str(e.value)

"""Feathered region masks: convex hulls of face-mesh index sets, boxes and landmark ellipses."""
import cv2
import numpy as np
import pytest

from ppgan.faceutils.masks import (FACE_OVAL, LIPS_OUTER, LOWER_FACE, box_mask, ellipse_mask, face_mask,
                                   feather_mask, hull_mask, lower_face_mask, mouth_mask)
from ppgan.utils.errors import ConfigError

SHAPE = (160, 200)


def circle(cx, cy, r, n=64):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


def distances(binary):
    """(distance of each pixel outside `binary` to it, distance of each pixel inside to its edge)."""
    b = binary.astype(np.uint8)
    return cv2.distanceTransform(1 - b, cv2.DIST_L2, 5), cv2.distanceTransform(b, cv2.DIST_L2, 5)


def disc(cx, cy, r, shape=SHAPE):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return np.hypot(xx - cx, yy - cy)


def test_a_circle_of_points_gives_a_disc():
    m = hull_mask(circle(100, 80, 40), SHAPE, feather=0)
    assert m.dtype == np.float32 and m.shape == SHAPE and set(np.unique(m)) == {0.0, 1.0}
    d = disc(100, 80, 40)
    assert (m[d < 38.5] == 1).all() and (m[d > 41] == 0).all()  # the outline pixels are filled
    assert m.sum() == pytest.approx(np.pi * 40 ** 2, rel=0.03)


@pytest.mark.parametrize("feather", [2, 5, 9, 16])
def test_feather_width_is_exact_outside_and_reaches_one_inside(feather):
    hard = hull_mask(circle(100, 80, 40), SHAPE, feather=0)
    m = hull_mask(circle(100, 80, 40), SHAPE, feather=feather)
    outside, inside = distances(hard > 0)
    assert (m[outside > feather + 0.5] == 0).all()  # exactly 0 beyond the feather radius
    assert (m[outside > 0] > 0).any() and m[(outside > 0) & (outside <= feather)].max() < 0.6
    assert (m[inside > feather + 1] > 0.999).all()
    edge = m[(np.abs(disc(100, 80, 40) - 40) < 0.5)]
    assert 0.35 < edge.mean() < 0.7  # about half way on the outline (filled outline pixels add a little)
    row = m[80, 100:]  # along a ray from the centre: never rising
    assert (np.diff(row) <= 1e-6).all()
    assert 0.0 <= m.min() and m.max() <= 1.0


def test_feather_mask_keeps_zero_far_from_the_image_border():
    hard = np.zeros(SHAPE, np.float32)
    hard[:30, :] = 1  # touching the top border: the replicated border adds no mass farther down
    m = feather_mask(hard, 8)
    assert (m[39:] == 0).all() and (m[:22] > 0.999).all() and (m[30:38] > 0).all()


def test_expand_grows_the_hull_about_its_centre():
    small = hull_mask(circle(100, 80, 20), SHAPE, feather=0)
    grown = hull_mask(circle(100, 80, 20), SHAPE, feather=0, expand=1.5)
    assert grown.sum() == pytest.approx(small.sum() * 2.25, rel=0.05) and (grown >= small).all()


def synthetic_mesh():
    """468 points: everything in a blob at the nose, the oval on a circle of radius 60 around
    (100, 90), the outer lips on an ellipse around (100, 120), the jaw set on the oval's lower half."""
    pts = np.tile([[100.0, 95.0]], (468, 1)) + np.random.RandomState(0).uniform(-3, 3, (468, 2))
    upper = [i for i in FACE_OVAL if i not in LOWER_FACE]  # forehead and temples
    a = np.linspace(np.pi, 2 * np.pi, len(upper))
    pts[upper] = np.stack([100 + 60 * np.cos(a), 90 + 60 * np.sin(a)], 1)
    t = np.linspace(0, 2 * np.pi, len(LIPS_OUTER), endpoint=False)
    pts[list(LIPS_OUTER)] = np.stack([100 + 20 * np.cos(t), 120 + 8 * np.sin(t)], 1)
    jaw = [i for i in LOWER_FACE if i != 1]
    a = np.linspace(0, np.pi, len(jaw))
    pts[jaw] = np.stack([100 + 60 * np.cos(a), 90 + 60 * np.sin(a)], 1)
    pts[1] = (100, 90)  # the nose tip closes the lower face at the centre line
    return pts


def test_mesh_masks_cover_their_regions():
    mesh = synthetic_mesh()
    face, mouth, lower = (f(mesh, SHAPE, feather=0) for f in (face_mask, mouth_mask, lower_face_mask))
    d = disc(100, 90, 60)
    assert (face[d < 59] == 1).all() and (face[d > 61] == 0).all()
    yy, xx = np.mgrid[:SHAPE[0], :SHAPE[1]]
    lips = ((xx - 100) / 20.0) ** 2 + ((yy - 120) / 8.0) ** 2
    assert (mouth[lips < 0.85] == 1).all() and (mouth[lips > 1.2] == 0).all()
    assert mouth.sum() == pytest.approx(np.pi * 20 * 8, rel=0.1)
    assert (lower[(d < 59) & (yy > 92)] == 1).all() and (lower[yy < 88] == 0).all()  # the half below the nose
    assert (lower <= face).all() and (mouth <= face).all()


@pytest.mark.parametrize("mesh", [np.zeros((68, 2)), np.zeros((468,)), np.zeros((468, 1))])
def test_mesh_masks_reject_other_point_sets(mesh):
    with pytest.raises(ConfigError, match="face mesh"):
        face_mask(mesh, SHAPE)


def test_a_478_point_mesh_with_depth_is_accepted():
    mesh = np.concatenate([synthetic_mesh(), np.zeros((468, 1))], 1)
    mesh = np.concatenate([mesh, np.zeros((10, 3))])  # iris points, ignored
    assert np.array_equal(face_mask(mesh, SHAPE, feather=0), face_mask(synthetic_mesh(), SHAPE, feather=0))


@pytest.mark.parametrize("feather", [0, 6])
def test_box_mask(feather):
    m = box_mask((40, 30, 120, 90), SHAPE, feather=feather)
    hard = np.zeros(SHAPE, bool)
    hard[30:91, 40:121] = True  # the filled polygon includes its outline pixels
    if feather == 0:
        assert np.array_equal(m > 0, hard) and (m[hard] == 1).all()
    else:
        outside, _ = distances(hard)
        assert (m[outside > feather + 0.5] == 0).all() and m[60, 80] > 0.999


@pytest.mark.parametrize("points, shape", [
    (np.zeros((2, 2)), SHAPE),                           # too few points
    (np.full((4, 2), np.nan), SHAPE),                    # not finite
    (circle(10, 10, 5), (0, 20)),                        # empty image
])
def test_hull_mask_rejects_bad_input(points, shape):
    with pytest.raises(ConfigError):
        hull_mask(points, shape)


def test_bad_boxes_and_feathers_are_config_errors():
    with pytest.raises(ConfigError, match="x2 > x1"):
        box_mask((50, 50, 40, 60), SHAPE)
    with pytest.raises(ConfigError, match="feather"):
        box_mask((10, 10, 40, 60), SHAPE, feather=-1)
    with pytest.raises(ConfigError, match="landmarks or a box"):
        ellipse_mask(None, SHAPE)


# the astronaut's five landmarks (see test_face_alignment.py), moved into a 160x200 frame
FIVE = np.array([[203.0, 101.5], [245.5, 103.0], [224.0, 127.0], [204.0, 139.5], [244.5, 140.5]]) - [124, 40]


def test_ellipse_from_landmarks_covers_the_face_and_turns_with_it():
    m = ellipse_mask(FIVE, SHAPE, feather=0)
    for x, y in FIVE:
        assert m[int(round(y)), int(round(x))] == 1
    assert m[0, 0] == 0 and m[-1, -1] == 0 and m[:, :40].max() == 0
    # rotate the landmarks by 25 degrees about the nose: the mask rotates with them
    c = FIVE[2]
    rot = cv2.getRotationMatrix2D((float(c[0]), float(c[1])), 25, 1.0)
    turned = ellipse_mask(FIVE @ rot[:, :2].T + rot[:, 2], SHAPE, feather=0)
    expect = cv2.warpAffine(m, rot, (SHAPE[1], SHAPE[0]), flags=cv2.INTER_NEAREST)
    iou = ((turned > 0.5) & (expect > 0.5)).sum() / ((turned > 0.5) | (expect > 0.5)).sum()
    assert iou > 0.95


def test_ellipse_in_a_box_and_auto_feather():
    m = ellipse_mask(None, SHAPE, box=(40, 20, 160, 140), feather=0)
    assert m[80, 100] == 1 and m[20, 40] == 0 and m[80, 39] == 0 and m[80, 41] == 1
    soft = ellipse_mask(None, SHAPE, box=(40, 20, 160, 140))  # feather None: 5% of 120 px = 6 px
    outside, _ = distances(m > 0)
    assert (soft[outside > 6.5] == 0).all() and soft[(outside > 0) & (outside < 3)].max() > 0

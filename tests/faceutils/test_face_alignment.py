"""Five-point alignment (similarity fit, FFHQ / photo2cartoon / FOM crops) and paste-back."""
import math

import cv2
import numpy as np
import pytest

from ppgan.faceutils.alignment import (FFHQ_512, MEAN_FACE_5, MEAN_FACE_68_BOX, align_face, fom_box, paste_back,
                                       similarity_transform, template_points, transform_points, warp)
from ppgan.faceutils.masks import ellipse_mask
from ppgan.utils.errors import ConfigError

# The astronaut photo (skimage.data.astronaut(), 512x512): five landmarks read by hand from a 10x
# enlargement of the face (pupil centres, nose tip, mouth corners), x y pixels, LANDMARK_NAMES order.
ASTRONAUT_5 = np.array([[203.0, 101.5], [245.5, 103.0], [224.0, 127.0], [204.0, 139.5], [244.5, 140.5]])
ASTRONAUT_BOX = (180, 70, 270, 170)  # a detector-like box around that face


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return data.astronaut()


def rotation(deg):
    t = math.radians(deg)
    return np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])


# ---------------------------------------------------------------- the similarity fit

@pytest.mark.parametrize("deg, scale, shift", [(0, 1.0, (0, 0)), (30, 2.5, (10, -4)), (-75, 0.3, (100, 200)),
                                               (180, 1.7, (-50, 5))])
def test_similarity_recovers_a_known_transform(deg, scale, shift):
    src = np.random.RandomState(1).uniform(-50, 50, (7, 2))
    dst = scale * src @ rotation(deg).T + shift
    M = similarity_transform(src, dst)
    assert np.allclose(M[:, :2], scale * rotation(deg), atol=1e-9)
    assert np.allclose(M[:, 2], shift, atol=1e-9)
    assert np.allclose(transform_points(src, M), dst, atol=1e-9)


def test_similarity_is_the_least_squares_fit_and_never_reflects():
    from skimage.transform import SimilarityTransform

    r = np.random.RandomState(2)
    src = r.uniform(0, 100, (5, 2))
    dst = 1.3 * src @ rotation(12).T + (4, 9) + r.normal(0, 2.0, (5, 2))
    ref = SimilarityTransform.from_estimate(src, dst) if hasattr(SimilarityTransform, "from_estimate") else None
    if ref is None:
        ref = SimilarityTransform()
        ref.estimate(src, dst)
    assert np.allclose(similarity_transform(src, dst), ref.params[:2], atol=1e-6)
    mirrored = src * [-1, 1]  # the best similarity cannot mirror: a proper rotation still comes out
    M = similarity_transform(src, mirrored)
    assert np.linalg.det(M[:, :2]) > 0


@pytest.mark.parametrize("src, dst", [
    (np.zeros((1, 2)), np.zeros((1, 2))),          # one point
    (np.zeros((5, 2)), np.zeros((4, 2))),          # counts differ
    (np.zeros((5, 3)), np.zeros((5, 3))),          # not 2-D points
    (np.ones((5, 2)), np.random.rand(5, 2)),       # source points coincide
    (np.full((5, 2), np.nan), np.zeros((5, 2))),   # not finite
])
def test_similarity_rejects_bad_points(src, dst):
    with pytest.raises(ConfigError):
        similarity_transform(src, dst)


# ---------------------------------------------------------------- templates and crops

@pytest.mark.parametrize("size", [256, 512])
def test_astronaut_ffhq_crop_puts_the_face_on_the_template(astronaut, size):
    crop, M = align_face(astronaut, ASTRONAUT_5, size=size, template="ffhq")
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    tpl = FFHQ_512 * size / 512
    err = np.linalg.norm(transform_points(ASTRONAUT_5, M) - tpl, axis=1)
    assert err[:2].max() < 0.015 * size and err.max() < 0.03 * size  # hand-placed points; she smiles wide
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(float)
    r = size // 64
    for x, y in tpl[:2]:  # the pupils land on the template's eyes: darker than the skin around
        eye = gray[int(y) - r:int(y) + r + 1, int(x) - r:int(x) + r + 1].mean()
        cheek = gray[int(y + 0.12 * size) - r:int(y + 0.12 * size) + r + 1, int(x) - r:int(x) + r + 1].mean()
        assert eye < cheek - 40, (eye, cheek)


def test_scale_shows_more_around_the_face(astronaut):
    _, M1 = align_face(astronaut, ASTRONAUT_5, 256, "ffhq")
    _, M2 = align_face(astronaut, ASTRONAUT_5, 256, "ffhq", scale=2.0)
    det = [np.linalg.det(M[:, :2]) for M in (M1, M2)]
    assert det[1] == pytest.approx(det[0] / 4, rel=1e-6)
    assert np.allclose(template_points("ffhq", 256, 2.0), 128 + (template_points("ffhq", 256) - 128) / 2)


def test_p2c_template_is_paddlegans_crop_of_the_mean_face():
    """Fitting the mean face onto the template, its 68-landmark box sits in the crop as PaddleGAN's
    `crop` leaves it: 0.8 of the box height above it, 0.3 below, centred left-right."""
    size = 256
    M = similarity_transform(MEAN_FACE_5, template_points("p2c", size))
    x1, y1, x2, y2 = MEAN_FACE_68_BOX
    (bx1, by1), (bx2, by2) = transform_points([[x1, y1], [x2, y2]], M)
    h = by2 - by1
    assert by1 == pytest.approx(0.8 * h, abs=1e-6)
    assert size - by2 == pytest.approx(0.3 * h, abs=1e-6)
    assert bx1 == pytest.approx(size - bx2, abs=1e-6)
    tpl = template_points("p2c", size)
    assert tpl[0, 1] == tpl[1, 1] and tpl[0, 0] + tpl[1, 0] == pytest.approx(size)  # eyes level, centred


def test_p2c_crop_levels_the_eyes_and_fills_white(astronaut):
    tilted = warp(astronaut, np.hstack([rotation(20), [[120], [-60]]]), (512, 512))
    pts = transform_points(ASTRONAUT_5, np.hstack([rotation(20), [[120], [-60]]]))
    crop, M = align_face(tilted, pts, 256, "p2c")
    eyes = transform_points(pts[:2], M)
    assert abs(eyes[0, 1] - eyes[1, 1]) < 2.0  # level again (the hand points tilt ~2 degrees)
    corner = astronaut[60:, 150:]  # the face near the top edge: the crop reaches above the photo
    crop, _ = align_face(corner, ASTRONAUT_5 - [150, 60], 256, "p2c")
    assert (crop[:10] == 255).all()  # PaddleGAN's white fill
    crop, _ = align_face(corner, ASTRONAUT_5 - [150, 60], 256, "p2c", border_value=0)
    assert (crop[:10] == 0).all()


def test_fom_crop_is_paddlegans_box_resized(astronaut):
    x1, y1, x2, y2 = fom_box(ASTRONAUT_BOX, astronaut.shape)
    assert (x1, y1, x2, y2) == (145, 20, 305, 220)  # centre (225, 120), margin 100: 0.8 sideways, 1 up/down
    crop, M = align_face(astronaut, None, 256, "fom", box=ASTRONAUT_BOX)
    ref = cv2.resize(astronaut[y1:y2, x1:x2], (256, 256), interpolation=cv2.INTER_LINEAR)
    diff = np.abs(crop.astype(int) - ref.astype(int))
    # cv2.resize repeats the region's edge rows where the warp reads the image beyond them
    assert diff.mean() < 0.5 and diff[1:-1, 1:-1].max() <= 3
    assert M[0, 1] == 0 and M[1, 0] == 0  # no rotation
    assert fom_box((0, 0, 60, 60), (512, 512)) == (0, 0, 78, 90)  # clipped to the image


def test_without_landmarks_the_crop_is_unrotated_around_the_box(astronaut):
    for template in ("p2c", "ffhq"):
        crop, M = align_face(astronaut, None, 128, template, box=ASTRONAUT_BOX)
        assert crop.shape == (128, 128, 3) and M[0, 1] == 0 and M[1, 0] == 0
        centre = transform_points([[225, 120]], M)[0]
        assert abs(centre[0] - 64) < 1  # box centred left-right
    with pytest.raises(ConfigError, match="needs a box"):
        align_face(astronaut, None, 128, "p2c")


@pytest.mark.parametrize("kwargs", [dict(template="arcface"), dict(size=0), dict(size=12.5), dict(scale=0)])
def test_align_face_rejects_bad_arguments(astronaut, kwargs):
    args = dict(size=64, template="ffhq")
    args.update(kwargs)
    with pytest.raises(ConfigError):
        align_face(astronaut, ASTRONAUT_5, **args)


def test_shrinking_warp_averages_instead_of_aliasing():
    r = np.random.RandomState(0)
    img = (r.rand(512, 512, 3) * 255).astype(np.uint8)  # noise: aliasing shows
    M = np.array([[0.25, 0, 0.25 * 0.5 - 0.5], [0, 0.25, 0.25 * 0.5 - 0.5]])
    ref = cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA).astype(float)
    got = warp(img, M, 128).astype(float)
    assert np.abs(got - ref).mean() < 3.0
    naive = cv2.warpAffine(img, M, (128, 128), flags=cv2.INTER_LINEAR).astype(float)
    assert np.abs(naive - ref).mean() > 4 * np.abs(got - ref).mean()


# ---------------------------------------------------------------- paste back

def footprint(image_shape, crop_shape, M, mask=None, feather=None):
    """The blend weight paste_back gives each image pixel: pasting ones onto zeros returns it."""
    zeros = np.zeros(image_shape[:2], np.float32)
    return paste_back(zeros, np.ones(crop_shape[:2], np.float32), M, mask=mask, feather=feather)


@pytest.mark.parametrize("template, size", [("ffhq", 256), ("p2c", 256), ("fom", 192), ("ffhq", 512)])
def test_an_unchanged_crop_pastes_back_to_the_image(astronaut, template, size):
    """Round trip on a slightly blurred photo (bilinear resampling twice loses only fine texture):
    mean error 0.1-0.5 grey levels measured; a matrix off by half a pixel gives over 1."""
    astronaut = cv2.GaussianBlur(astronaut, (0, 0), 1.5)
    crop, M = align_face(astronaut, ASTRONAUT_5, size, template, box=ASTRONAUT_BOX)
    out = paste_back(astronaut, crop, M)
    weight = footprint(astronaut.shape, crop.shape, M)
    assert out.dtype == np.uint8 and out.shape == astronaut.shape
    assert np.array_equal(out[weight == 0], astronaut[weight == 0])  # outside the mask: untouched, exactly
    inside = weight > 0.99
    assert inside.sum() > 5000
    diff = np.abs(out.astype(int) - astronaut.astype(int))[inside]
    assert diff.mean() < 0.8 and np.percentile(diff, 99) <= 4 and diff.max() <= 8


@pytest.mark.parametrize("feather", [0, 4, 12])
def test_a_processed_crop_changes_only_inside_the_feathered_mask(astronaut, feather):
    crop, M = align_face(astronaut, ASTRONAUT_5, 256, "p2c")
    mask = ellipse_mask(transform_points(ASTRONAUT_5, M), crop.shape, feather=0)
    out = paste_back(astronaut, 255 - crop, M, mask=mask, feather=feather)
    weight = footprint(astronaut.shape, crop.shape, M, mask=mask, feather=feather)
    assert np.array_equal(out[weight == 0], astronaut[weight == 0])
    changed = np.abs(out.astype(int) - astronaut.astype(int)).max(-1) > 0
    assert changed[weight > 0.5].mean() > 0.9 and not changed[weight == 0].any()
    if feather:  # a wider feather spreads the blend over more pixels
        assert ((weight > 0) & (weight < 1)).sum() > 0
    x, y = ASTRONAUT_5[2].astype(int)  # the nose: fully replaced by the inverted crop
    assert np.abs(out[y, x].astype(int) - (255 - astronaut[y, x].astype(int))).max() <= 30


def test_paste_back_keeps_float_and_gray_images_and_checks_the_mask(astronaut):
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    crop, M = align_face(gray, ASTRONAUT_5, 128, "ffhq")
    assert crop.shape == (128, 128) and crop.dtype == np.float32
    out = paste_back(gray, np.zeros_like(crop), M)
    assert out.dtype == np.float32 and out.shape == gray.shape and out.min() == 0.0
    before = gray.copy()
    paste_back(gray, crop, M)
    assert np.array_equal(gray, before)  # the input is not modified
    with pytest.raises(ConfigError, match="mask is 64x64, the crop 128x128"):
        paste_back(gray, crop, M, mask=np.ones((64, 64), np.float32))


@pytest.mark.parametrize("shape, feather", [((64, 64), 4), ((40, 90), 7), ((256, 256), 16)])
def test_feathered_rect_is_exactly_zero_on_the_border(shape, feather):
    from ppgan.faceutils.alignment import feathered_rect

    m = feathered_rect(shape, feather)
    assert m[0].max() == 0 and m[-1].max() == 0 and m[:, 0].max() == 0 and m[:, -1].max() == 0
    assert m[shape[0] // 2, shape[1] // 2] == pytest.approx(1.0, abs=1e-6)

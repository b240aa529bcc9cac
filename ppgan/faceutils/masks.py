"""Soft masks of face regions: float32 HxW in [0, 1], for blending (Wav2Lip's mouth, photo2cartoon).

From the 468-point face mesh (MediaPipe's topology; indices from its `face_mesh_connections`):
`face_mask` (face oval), `mouth_mask` (outer lips), `lower_face_mask` (nose tip to chin), each the
convex hull of its points. Without a mesh: `box_mask` (a detection box) and `ellipse_mask` (an
ellipse placed from the five landmarks, or inscribed in a box).

Every mask is a hard shape (outline pixels included) blurred by a Gaussian cut to a disc of
`feather` pixels: about 0.5 on the shape's outline, exactly 0 farther than `feather` outside it
and (up to rounding) 1 farther than `feather` inside. `feather=None` picks 5% of the shape's
larger side.
"""
import cv2
import numpy as np

from ..utils.errors import ConfigError

# MediaPipe face-mesh index sets
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
             176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
# the jaw line of the oval from cheek to cheek (below the eyes) closed by the nose tip (1)
LOWER_FACE = (93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 1)
MESH_POINTS = 468  # 478 with the iris points; the sets above use the first 468

AUTO_FEATHER = 0.05  # feather=None: this fraction of the shape's larger side


def feather_mask(mask, radius):
    """Blur by a Gaussian (sigma = radius / 2.5) cut to a disc of `radius` pixels, so that farther
    than `radius` (Euclidean) from the mask's support the result stays exactly 0; the replicated
    image border adds nothing nearer than the pixel it copies. float32 in [0, 1]."""
    r = int(round(radius))
    if r <= 0:
        return np.clip(mask.astype(np.float32), 0.0, 1.0)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    d2 = (xx ** 2 + yy ** 2).astype(np.float64)
    kernel = np.where(d2 <= r * r, np.exp(-d2 / (2 * (r / 2.5) ** 2)), 0.0)
    kernel = (kernel / kernel.sum()).astype(np.float32)
    out = cv2.filter2D(mask.astype(np.float32), -1, kernel, borderType=cv2.BORDER_REPLICATE)
    out[out < 1e-6] = 0.0  # the DFT path of filter2D leaves rounding noise where the sum is 0
    return np.clip(out, 0.0, 1.0)


def _shape_hw(shape):
    h, w = (int(v) for v in tuple(shape)[:2])
    if h <= 0 or w <= 0:
        raise ConfigError(f"mask shape must be positive (h, w); got {tuple(shape)}")
    return h, w


def _auto(feather, extent):
    if feather is None:
        return max(1, int(round(AUTO_FEATHER * extent)))
    if feather < 0:
        raise ConfigError(f"feather must be >= 0 pixels; got {feather}")
    return feather


def _scaled(points, expand):
    """Points scaled by `expand` about their centre (1: unchanged)."""
    if expand == 1.0:
        return points
    c = (points.min(0) + points.max(0)) / 2
    return c + (points - c) * float(expand)


def hull_mask(points, shape, feather=None, expand=1.0):
    """The feathered convex hull of `points` ([N, 2] x, y pixels, N >= 3) on an image of `shape`."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if len(pts) < 3 or not np.isfinite(pts).all():
        raise ConfigError(f"a hull mask needs at least 3 finite points; got {len(pts)}")
    h, w = _shape_hw(shape)
    pts = _scaled(pts, expand)
    hull = cv2.convexHull(np.round(pts * 16).astype(np.int32))  # 4 fractional bits (shift=4)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8, shift=4)
    extent = float((pts.max(0) - pts.min(0)).max())
    return feather_mask(mask, _auto(feather, extent))


def _mesh(mesh_pts):
    pts = np.asarray(mesh_pts, np.float64)
    if pts.ndim != 2 or pts.shape[0] < MESH_POINTS or pts.shape[1] < 2:
        raise ConfigError(f"a face mesh must be [468, 2] (or [478, 2|3]) points; got {list(pts.shape)}")
    return pts[:, :2]


def face_mask(mesh_pts, shape, feather=None, expand=1.0):
    """The face oval of a 468-point mesh (pixels) as a feathered mask of `shape` (h, w)."""
    return hull_mask(_mesh(mesh_pts)[list(FACE_OVAL)], shape, feather, expand)


def mouth_mask(mesh_pts, shape, feather=None, expand=1.0):
    """The outer lips of a 468-point mesh; `expand` > 1 takes a margin around them."""
    return hull_mask(_mesh(mesh_pts)[list(LIPS_OUTER)], shape, feather, expand)


def lower_face_mask(mesh_pts, shape, feather=None, expand=1.0):
    """Jaw, mouth and cheeks below the nose tip (Wav2Lip's region) of a 468-point mesh."""
    return hull_mask(_mesh(mesh_pts)[list(LOWER_FACE)], shape, feather, expand)


def box_mask(box, shape, feather=None, expand=1.0):
    """The box (x1, y1, x2, y2 pixels) as a feathered mask of `shape`."""
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box).reshape(4))
    if not (x2 > x1 and y2 > y1):
        raise ConfigError(f"box must have x2 > x1 and y2 > y1; got {[x1, y1, x2, y2]}")
    corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
    return hull_mask(corners, shape, feather, expand)


# The face as an ellipse in eye units (eye centres at (-0.5, 0) and (0.5, 0), y towards the chin):
# a mean 68-point face spans x in [-1.17, 1.17] (jaw) and y down to 1.92 (chin); the ellipse adds
# the forehead up to about -0.95.
ELLIPSE_CENTRE = (0.0, 0.5)
ELLIPSE_AXES = (1.2, 1.45)


def ellipse_mask(landmarks, shape, box=None, feather=None, expand=1.0):
    """An elliptic face mask when no mesh is available.

    Args:
        landmarks (array [5, 2] | None): five points (`LANDMARK_NAMES` order); the ellipse is
            placed, sized and turned from the eyes and the mouth. None: inscribed in `box`.
        shape (tuple): (h, w) of the mask.
        box (array [4] | None): x1, y1, x2, y2, used when `landmarks` is None.
        feather (float | None), expand (float): as every mask here.
    """
    h, w = _shape_hw(shape)
    if landmarks is not None:
        p = np.asarray(landmarks, np.float64).reshape(5, 2)
        eye_l, eye_r = p[0], p[1]
        mouth = (p[3] + p[4]) / 2
        x_axis = eye_r - eye_l
        eye_dist = np.hypot(*x_axis)
        mid = (eye_l + eye_r) / 2
        # the face's scale: the eye distance, or the eye-mouth distance (1.09 eye units in a mean
        # face) for a face turned sideways, whichever is larger
        unit = max(eye_dist, np.hypot(*(mouth - mid)) / 1.09)
        if unit <= 0:
            raise ConfigError("ellipse_mask: the landmarks coincide")
        x_dir = x_axis / eye_dist if eye_dist > 0 else np.array([1.0, 0.0])
        y_dir = np.array([-x_dir[1], x_dir[0]])
        centre = mid + unit * (ELLIPSE_CENTRE[0] * x_dir + ELLIPSE_CENTRE[1] * y_dir)
        axes = (unit * ELLIPSE_AXES[0] * expand, unit * ELLIPSE_AXES[1] * expand)
        angle = np.degrees(np.arctan2(x_dir[1], x_dir[0]))
    elif box is not None:
        x1, y1, x2, y2 = (float(v) for v in np.asarray(box).reshape(4))
        if not (x2 > x1 and y2 > y1):
            raise ConfigError(f"box must have x2 > x1 and y2 > y1; got {[x1, y1, x2, y2]}")
        centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
        axes = ((x2 - x1) / 2 * expand, (y2 - y1) / 2 * expand)
        angle = 0.0
    else:
        raise ConfigError("ellipse_mask needs landmarks or a box")
    mask = np.zeros((h, w), np.uint8)
    s = 16  # 4 fractional bits
    cv2.ellipse(mask, (int(round(centre[0] * s)), int(round(centre[1] * s))),
                (max(1, int(round(axes[0] * s))), max(1, int(round(axes[1] * s)))), float(angle), 0, 360, 1,
                thickness=-1, lineType=cv2.LINE_8, shift=4)
    return feather_mask(mask, _auto(feather, 2 * max(axes)))

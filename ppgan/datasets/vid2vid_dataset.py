"""Video-to-video demo data: clips panning and zooming over scikit-image photos, Canny edges as source.

No files to download. Each clip is a crop window that moves in a straight line and zooms at a
constant rate over one photo of `skimage.data` (the crop-window maths of
`ppgan.video.synthetic.render_frame`, which the video tests use, with a random motion per clip
and no barcode). Because the motion is known, so is the true optical flow between frames.

Training clips come from the training photos of `ppgan.datasets.embedded_photos`
(astronaut, chelsea, hubble_deep_field, immunohistochemistry, retina), held-out clips from its
test photos (coffee, rocket); the held-out clips are the same for every run (seeded by index).

Flow convention (that of `ppgan.modules.flow.flow_warp`): `flow[t - 1]` ([2, H, W], pixels,
channel 0 = x, 1 = y) maps frame t to frame t - 1: frame t at pixel p is frame t - 1 at
p + flow[t - 1](p), so `flow_warp(B[t - 1], flow[t - 1].permute(1, 2, 0)[None]) ~ B[t]`
wherever `flow_mask[t - 1]` is 1 (the point is inside frame t - 1; elsewhere it is "occluded",
i.e. it entered the view at frame t).
"""
import cv2
import numpy as np
import torch

from ..utils.errors import ConfigError
from .base_dataset import BaseDataset, to_chw_tensor
from .builder import DATASETS
from .embedded_photos import TEST_PHOTOS, TRAIN_PHOTOS, load_photo

SPLITS = ("train", "test")


def edge_map(frame):
    """Canny edges of an RGB uint8 frame [H, W, 3] -> uint8 [H, W] (255 on edges, 0 elsewhere).

    The same operator as `ppgan.datasets.embedded_photos.edges` (3x3 Gaussian blur, Canny 60/150);
    the vid2vid app computes its source maps from photo videos with this function.
    """
    gray = cv2.GaussianBlur(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY), (3, 3), 0)
    return cv2.Canny(gray, 60, 150)


def edges_to_tensor(edges, channels=1):
    """uint8 edge map(s) [..., H, W] in {0, 255} -> float32 tensor [..., channels, H, W] in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(edges)).float().div_(127.5).sub_(1.0).unsqueeze(-3)
    return t.expand(*t.shape[:-3], channels, *t.shape[-2:]).contiguous() if channels != 1 else t


def draw_motion(rng, photo_hw, size, n_frames, max_shift=2.0, max_zoom=0.03, crop_range=(0.4, 0.6)):
    """Random straight-line pan and constant-rate zoom of a square crop window over a photo.

    Args:
        rng (np.random.Generator): the draw.
        photo_hw (tuple[int, int]): photo height, width (pixels).
        size (int): output frame side (pixels).
        n_frames (int): frames in the clip.
        max_shift (float): largest pan per frame, in output pixels (default 2.0).
        max_zoom (float): largest relative change of the window side per frame (default 0.03).
        crop_range (tuple): window side at the first frame as a fraction of the photo's shorter side.
    Returns:
        dict: 'side' [T] window side (photo pixels), 'centre' [T, 2] window centre (x, y).
    """
    ih, iw = photo_hw
    side0 = rng.uniform(*crop_range) * min(ih, iw)
    zoom = rng.uniform(-max_zoom, max_zoom)
    t = np.arange(n_frames, dtype=np.float64)
    side = side0 * (1.0 + zoom) ** t
    half = side.max() / 2
    lo, hi = np.array([half, half]), np.array([iw - half, ih - half])
    start = rng.uniform(lo, np.maximum(lo, hi))
    angle = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(0.3, 1.0) * max_shift * side.min() / size  # photo pixels per frame
    step = speed * np.array([np.cos(angle), np.sin(angle)])
    end = np.clip(start + step * max(1, n_frames - 1), lo, np.maximum(lo, hi))  # stay inside the photo
    centre = start + (end - start) * (t / max(1, n_frames - 1))[:, None]
    return {"side": side, "centre": centre}


def window_matrix(side, centre, size):
    """2x3 affine map from photo pixels to output pixels of the window (side, centre (x, y))."""
    s = size / side
    return np.array([[s, 0.0, size / 2 - s * centre[0]], [0.0, s, size / 2 - s * centre[1]]], np.float64)


def render_window(img, side, centre, size):
    """The window as an RGB uint8 frame [size, size, 3]."""
    return cv2.warpAffine(img, window_matrix(side, centre, size), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def true_flow(motion, t, size):
    """Flow from frame t to frame t - 1 of `motion` -> (flow float32 [2, H, W], valid float32 [1, H, W])."""
    side, centre = motion["side"], motion["centre"]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    p = np.stack([xs, ys])                                                        # [2, H, W] pixels of frame t
    q = (p - size / 2) * (side[t] / size) + centre[t][:, None, None]                # photo coordinates
    p_prev = (q - centre[t - 1][:, None, None]) * (size / side[t - 1]) + size / 2   # pixels of frame t - 1
    valid = ((p_prev >= 0) & (p_prev <= size - 1)).all(axis=0, keepdims=True)
    return (p_prev - p).astype(np.float32), valid.astype(np.float32)


class _PhotoClips(BaseDataset):
    """What the clip and frame datasets share: photos, motion draws, rendering."""

    def __init__(self, split, size, n_frames, num_samples, clips_per_photo, photos, max_shift, max_zoom,
                 source_nc, seed):
        if split not in SPLITS:
            raise ConfigError(f"{type(self).__name__} split must be 'train' or 'test'; got {split!r}")
        if int(size) < 16 or int(n_frames) < 2:
            raise ConfigError(f"{type(self).__name__} needs size >= 16 and n_frames >= 2; "
                              f"got size {size}, n_frames {n_frames}")
        if source_nc not in (1, 3):
            raise ConfigError(f"{type(self).__name__} source_nc must be 1 or 3; got {source_nc!r}")
        if float(max_shift) < 0 or not 0 <= float(max_zoom) < 0.5:
            raise ConfigError(f"{type(self).__name__} needs max_shift >= 0 and 0 <= max_zoom < 0.5")
        self.split, self.size, self.n_frames = split, int(size), int(n_frames)
        self.max_shift, self.max_zoom, self.source_nc, self.seed = float(max_shift), float(max_zoom), source_nc, seed
        self.photos = tuple(photos) if photos else (TRAIN_PHOTOS if split == "train" else TEST_PHOTOS)
        # Each photo resized so its shorter side is 2 * size: a window (40-60 % of that side) is
        # then rendered at a scale near 1, without aliasing.
        self.images = []
        for name in self.photos:
            full = load_photo(name, 1.0)
            self.images.append(load_photo(name, 2.0 * self.size / min(full.shape[:2])))
        self.n_clips = int(num_samples) if split == "train" else len(self.photos) * int(clips_per_photo)
        if self.n_clips < 1:
            raise ConfigError(f"{type(self).__name__} has no clips (num_samples / clips_per_photo must be >= 1)")

    def clip(self, index, rng):
        """(photo index, motion) of clip `index`; held-out clips ignore `rng` (fixed by seed, index)."""
        if self.split == "test":
            rng = np.random.default_rng([int(self.seed), index])
            i = index % len(self.images)
        else:
            i = int(rng.integers(len(self.images)))
        motion = draw_motion(rng, self.images[i].shape[:2], self.size, self.n_frames, self.max_shift, self.max_zoom)
        return i, motion

    def frame(self, i, motion, t):
        """(RGB uint8 frame, uint8 edge map) of frame t."""
        rgb = render_window(self.images[i], motion["side"][t], motion["centre"][t], self.size)
        return rgb, edge_map(rgb)

    def name(self, i, index, t=None):
        return f"skimage:{self.photos[i]}#clip{index}" + ("" if t is None else f"@{t}")


@DATASETS.register()
class EmbeddedVideoEdgesDataset(_PhotoClips):
    """Clips of moving and zooming scikit-image photos with their Canny edges, for vid2vid.

    Args:
        split (str): 'train' (random clips of the training photos) or 'test' (fixed clips of the
            held-out photos). Default 'train'.
        size (int): frame side in pixels (default 64).
        n_frames (int): frames per clip, T (default 6).
        num_samples (int): length of the train split (default 1000).
        clips_per_photo (int): held-out clips per test photo (default 4).
        photos (list[str] | None): override the photos of the split.
        max_shift (float): largest pan per frame in pixels (default 2.0).
        max_zoom (float): largest zoom per frame, relative (default 0.03).
        source_nc (int): channels of the edge maps, 1 (default) or 3 (repeated).
        seed (int): seed of the held-out clips (default 0).

    Sample dict:
        'A' float32 [T, source_nc, H, W]: edges, 1 on edges, -1 elsewhere.
        'B' float32 [T, 3, H, W]: RGB frames in [-1, 1].
        'flow' float32 [T-1, 2, H, W]: true flow from frame t to frame t-1 (pixels, x then y; see
            the module docstring), 'flow_mask' float32 [T-1, 1, H, W]: 1 where that flow lands
            inside frame t-1.
        'A_path' str: e.g. 'skimage:coffee#clip3'.
    """

    def __init__(self, split="train", size=64, n_frames=6, num_samples=1000, clips_per_photo=4, photos=None,
                 max_shift=2.0, max_zoom=0.03, source_nc=1, seed=0):
        super().__init__(split, size, n_frames, num_samples, clips_per_photo, photos, max_shift, max_zoom,
                         source_nc, seed)

    def __len__(self):
        return self.n_clips

    def get_item(self, index, rng):
        i, motion = self.clip(index, rng)
        rgb, edges = zip(*(self.frame(i, motion, t) for t in range(self.n_frames)))
        flows, valid = zip(*(true_flow(motion, t, self.size) for t in range(1, self.n_frames)))
        out = {
            "A": edges_to_tensor(np.stack(edges), self.source_nc),
            "B": torch.stack([to_chw_tensor(f.astype(np.float32) / 127.5 - 1.0) for f in rgb]),
            "flow": torch.from_numpy(np.stack(flows)),
            "flow_mask": torch.from_numpy(np.stack(valid)),
            "A_path": self.name(i, index),
        }
        t, s = self.n_frames, self.size
        assert out["A"].shape == (t, self.source_nc, s, s) and out["B"].shape == (t, 3, s, s)
        assert out["flow"].shape == (t - 1, 2, s, s) and out["flow_mask"].shape == (t - 1, 1, s, s)
        return out


@DATASETS.register()
class EmbeddedVideoFramesDataset(_PhotoClips):
    """Single frames of the same clips, for per-frame baselines (pix2pix on edges -> frame).

    Arguments as `EmbeddedVideoEdgesDataset`. The train split draws a random clip and a random
    frame of it per sample (`num_samples` samples); the test split lists every frame of every
    held-out clip of `EmbeddedVideoEdgesDataset` with the same arguments, in order (index =
    clip * n_frames + t), so per-frame outputs can be regrouped into the held-out clips.

    Sample dict: 'A' float32 [source_nc, H, W] edges in [-1, 1], 'B' float32 [3, H, W] frame in
    [-1, 1], 'A_path' / 'B_path' str, e.g. 'skimage:coffee#clip3@5'.
    """

    def __init__(self, split="train", size=64, n_frames=6, num_samples=1000, clips_per_photo=4, photos=None,
                 max_shift=2.0, max_zoom=0.03, source_nc=1, seed=0):
        super().__init__(split, size, n_frames, num_samples, clips_per_photo, photos, max_shift, max_zoom,
                         source_nc, seed)

    def __len__(self):
        return self.n_clips if self.split == "train" else self.n_clips * self.n_frames

    def get_item(self, index, rng):
        if self.split == "train":
            clip_index, t = index, int(rng.integers(self.n_frames))
        else:
            clip_index, t = divmod(index, self.n_frames)
        i, motion = self.clip(clip_index, rng)
        rgb, edges = self.frame(i, motion, t)
        name = self.name(i, clip_index, t)
        return {"A": edges_to_tensor(edges, self.source_nc), "B": to_chw_tensor(rgb.astype(np.float32) / 127.5 - 1.0),
                "A_path": name, "B_path": name}

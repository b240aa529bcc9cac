"""Videos for First Order Motion training: two frames of one video per sample.

PaddleGAN `ppgan/datasets/firstorder_dataset.py` (from AliaksandrSiarohin/first-order-model
`frames_dataset.py`): the same config keys and sample keys. Layout:

    <dataroot>/train/<video>   <dataroot>/test/<video>

where each <video> is one of
  * a folder of frames (`0.png, 1.png, ...`; numeric names are ordered by number, others by name),
  * a video file ffmpeg reads (.mp4, .mov, .gif, ...): only the frames up to the later of the two
    sampled ones are decoded, streamed (`ppgan.video.iter_frames`), never the whole video in memory,
  * an image strip (.png / .jpg): the frames side by side, each `frame_shape[1]` pixels wide.
Frames of another size than `frame_shape` are resized to it.

Samples: train {'source', 'driving': float32 [3, H, W] in [0, 1], 'name'}, two frames of one
video (drawn with replacement, in time order, swapped with probability 0.5 when `time_flip`);
test {'video': float32 [3, T, H, W] in [0, 1] (every frame), 'name'}.
"""
import os
import re
from collections import defaultdict

import cv2
import numpy as np
import torch

from ..utils.errors import ConfigError, DatasetError
from ..utils.image import IMAGE_EXTENSIONS, imread
from .base_dataset import BaseDataset
from .builder import DATASETS
from .transforms import TRANSFORMS, Compose, Transform

PHASES = ("train", "test")
STRIP_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def _natural_key(name):
    stem = os.path.splitext(name)[0]
    return (0, int(stem), name) if stem.isdigit() else \
        (1, [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)], name)


def frame_files(folder):
    """The image files of a frame folder in frame order."""
    names = [n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)
             and os.path.isfile(os.path.join(folder, n))]
    return [os.path.join(folder, n) for n in sorted(names, key=_natural_key)]


def _is_video_entry(root, name):
    """A frame folder, an image strip or a video file (other files, e.g. notes, are skipped)."""
    from ..video.probe import VIDEO_EXTS

    ext = os.path.splitext(name)[1].lower()
    return os.path.isdir(os.path.join(root, name)) or ext in STRIP_EXTENSIONS or ext in VIDEO_EXTS or ext == ".gif"


def _to_rgb(img):
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    return img[..., :3]


class _Video:
    """One video of the dataset: `len(v)` frames, `v.frames(indices)` -> list of HxWx3 uint8 RGB."""

    def __init__(self, path, frame_shape):
        self.path = path
        self.name = os.path.basename(path)
        self.h, self.w = int(frame_shape[0]), int(frame_shape[1])
        self._info = None
        self._files = None
        if os.path.isdir(path):
            self.kind = "folder"
        elif path.lower().endswith(STRIP_EXTENSIONS):
            self.kind = "strip"
        else:
            self.kind = "video"

    def _fit(self, img):
        img = _to_rgb(img)
        if img.dtype != np.uint8:  # 16-bit frames
            img = (img.astype(np.float32) / 257.0).round().astype(np.uint8)
        if img.shape[:2] != (self.h, self.w):
            shrink = img.shape[0] > self.h or img.shape[1] > self.w
            img = cv2.resize(img, (self.w, self.h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return np.ascontiguousarray(img)

    def __len__(self):
        if self.kind == "folder":
            if self._files is None:
                self._files = frame_files(self.path)
            return len(self._files)
        if self.kind == "strip":
            return max(1, self._strip().shape[1] // self.w)
        return self._probe().n_frames

    def _probe(self):
        if self._info is None:
            from ..video import VideoError, probe_video

            try:
                self._info = probe_video(self.path)
            except VideoError as e:  # names the file
                raise DatasetError(str(e)) from None
        return self._info

    def _strip(self):
        img = imread(self.path, mode="unchanged")
        if img.shape[1] % self.w:
            raise DatasetError(f"{self.path}: an image strip must be a row of frames {self.w} pixels wide "
                               f"(frame_shape), but it is {img.shape[1]} wide")
        return img

    def all_frames(self):
        """Every frame, in order (a video file: as many as it decodes, whatever its header says)."""
        if self.kind != "video":
            return self.frames(range(len(self)))
        from ..video import VideoError, iter_frames

        try:
            frames = [self._fit(f) for f in iter_frames(self.path, self._probe())]
        except VideoError as e:
            raise DatasetError(str(e)) from None
        if not frames:
            raise DatasetError(f"{self.path}: no frames")
        return frames

    def frames(self, indices):
        """The frames at `indices` (any order, repeats allowed), resized to frame_shape."""
        if len(self) == 0:
            raise DatasetError(f"{self.path}: no frames (a frame folder needs image files)")
        if self.kind == "folder":
            return [self._fit(imread(self._files[i], mode="unchanged")) for i in indices]
        if self.kind == "strip":
            img = self._strip()
            return [self._fit(img[:, i * self.w:(i + 1) * self.w]) for i in indices]
        from ..video import VideoError, iter_frames

        info = self._probe()
        first, last = min(indices), max(indices)
        got = {}
        frames = iter_frames(self.path, info, start_frame=first)
        try:
            for k, frame in enumerate(frames, start=first):
                if k in indices:
                    got[k] = self._fit(frame)
                if k >= last:
                    break
        except VideoError as e:
            raise DatasetError(str(e)) from None
        finally:
            frames.close()  # stops the decoder
        missing = [i for i in indices if i not in got]
        if missing:
            raise DatasetError(f"{self.path}: frame {missing[0]} could not be decoded (the header says "
                               f"{info.n_frames} frames)")
        return [got[i] for i in indices]


@TRANSFORMS.register()
class PairedColorJitter(Transform):
    """Random brightness, contrast, saturation and hue (torchvision `ColorJitter`'s ranges and
    random order), drawn once and applied to every image of the sample (PaddleGAN's FOM configs).

    Args:
        brightness, contrast, saturation (float): factor drawn from [max(0, 1 - v), 1 + v].
        hue (float): shift drawn from [-hue, hue] turns of the colour wheel (hue <= 0.5).
    """

    def __init__(self, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, keys=None):
        super().__init__(keys)
        if not 0 <= float(hue) <= 0.5:
            raise ConfigError(f"PairedColorJitter hue must be in [0, 0.5], got {hue}")
        for key, v in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if float(v) < 0:
                raise ConfigError(f"PairedColorJitter {key} must be >= 0, got {v}")
        self.brightness, self.contrast = float(brightness), float(contrast)
        self.saturation, self.hue = float(saturation), float(hue)

    def apply(self, images, rng):
        ops = []
        for kind, v in (("brightness", self.brightness), ("contrast", self.contrast),
                        ("saturation", self.saturation)):
            if v > 0:
                ops.append((kind, rng.uniform(max(0.0, 1 - v), 1 + v)))
        if self.hue > 0:
            ops.append(("hue", rng.uniform(-self.hue, self.hue)))
        order = rng.permutation(len(ops))
        return [self._jitter(im, [ops[i] for i in order]) for im in images]

    @staticmethod
    def _jitter(img, ops):
        if img.ndim != 3 or img.shape[2] != 3:
            return img
        x = img.astype(np.float32) / 255.0
        for kind, f in ops:
            if kind == "brightness":
                x = x * f
            elif kind == "contrast":
                gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)
                x = (x - gray.mean()) * f + gray.mean()
            elif kind == "saturation":
                gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)[..., None]
                x = (x - gray) * f + gray
            else:
                hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)  # float input: H in [0, 360)
                hsv[..., 0] = (hsv[..., 0] + 360.0 * f) % 360.0
                x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
            x = np.clip(x, 0.0, 1.0)
        return (x * 255.0 + 0.5).astype(np.uint8)


def _augmentation_transforms(params):
    """The original repo's `augmentation_params` ({flip_param: {horizontal_flip, time_flip},
    jitter_param: {brightness, contrast, saturation, hue}}) as transform configs + time_flip."""
    params = dict(params or {})
    unknown = set(params) - {"flip_param", "jitter_param"}
    if unknown:
        raise ConfigError(f"unknown key 'augmentation_params.{sorted(unknown)[0]}' (valid: flip_param, jitter_param)")
    flips = dict(params.get("flip_param") or {})
    out = []
    if flips.get("horizontal_flip"):
        out.append({"name": "PairedRandomHorizontalFlip", "prob": 0.5})
    jitter = params.get("jitter_param")
    if jitter:
        out.append(dict(jitter, name="PairedColorJitter"))
    return out, flips.get("time_flip")


@DATASETS.register()
class FirstOrderDataset(BaseDataset):
    """Args:
        dataroot (str): folder holding `train/` and `test/`.
        phase (str): 'train' (two frames per sample) or 'test' (whole videos).
        frame_shape (list): [H, W, 3] (default [256, 256, 3]).
        id_sampling (bool): train on identities: videos named `<id>#<rest>` are grouped, a sample
            is a random video of one identity (default False).
        time_flip (bool): swap source and driving with probability 0.5 (default True; train only).
        num_repeats (int): passes over the videos per epoch (default 1; train only).
        transforms (list[dict] | None): augmentation applied to both frames with one draw, e.g.
            PairedRandomHorizontalFlip, PairedColorJitter (train only).
        augmentation_params (dict | None): the original repo's form of the same augmentation
            (flip_param: horizontal_flip, time_flip; jitter_param: brightness, contrast, saturation, hue).
        pairs_list (str | None), create_frames_folder (bool), process_time, max_dataset_size,
            direction, input_nc, output_nc: PaddleGAN keys, accepted and unused (videos are read
            directly, streaming only the frames needed; nothing is written into `dataroot`).
    """

    def __init__(self, dataroot, phase="train", frame_shape=(256, 256, 3), id_sampling=False, time_flip=True,
                 num_repeats=1, transforms=None, augmentation_params=None, pairs_list=None,
                 create_frames_folder=False, process_time=False, max_dataset_size=None, direction=None,
                 input_nc=3, output_nc=3):
        if phase not in PHASES:
            raise ConfigError(f"FirstOrderDataset phase must be one of {', '.join(PHASES)}, got {phase!r}")
        if not isinstance(frame_shape, (list, tuple)) or len(frame_shape) not in (2, 3) or \
                not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in frame_shape[:2]):
            raise ConfigError(f"FirstOrderDataset frame_shape must be [H, W, 3], got {frame_shape!r}")
        if int(num_repeats) < 1:
            raise ConfigError(f"FirstOrderDataset num_repeats must be >= 1, got {num_repeats}")
        self.root = os.path.join(os.fspath(dataroot), phase)
        if not os.path.isdir(self.root):
            raise DatasetError(f"FirstOrderDataset: no folder {self.root} (dataroot needs train/ and test/)")
        self.phase = phase
        self.is_train = phase == "train"
        self.frame_shape = tuple(int(s) for s in frame_shape[:2]) + (3,)
        self.time_flip = bool(time_flip)
        self.num_repeats = int(num_repeats) if self.is_train else 1
        self.id_sampling = bool(id_sampling) and self.is_train
        cfgs = list(transforms or [])
        if augmentation_params:
            extra, flip = _augmentation_transforms(augmentation_params)
            cfgs += extra
            if flip is not None:
                self.time_flip = bool(flip)
        self.transform = Compose(cfgs) if (cfgs and self.is_train) else None

        entries = sorted(n for n in os.listdir(self.root) if not n.startswith(".") and _is_video_entry(self.root, n))
        if not entries:
            raise DatasetError(f"FirstOrderDataset: {self.root} holds no videos (frame folders, video files or "
                               "image strips)")
        self.videos = [_Video(os.path.join(self.root, n), self.frame_shape) for n in entries]
        if self.id_sampling:
            groups = defaultdict(list)
            for v in self.videos:
                groups[v.name.split("#")[0]].append(v)
            self.groups = [groups[k] for k in sorted(groups)]
        else:
            self.groups = [[v] for v in self.videos]

    def __len__(self):
        return self.num_repeats * len(self.groups)

    def get_item(self, index, rng):
        group = self.groups[index % len(self.groups)]
        video = group[int(rng.integers(len(group)))] if len(group) > 1 else group[0]
        if not self.is_train:
            frames = video.all_frames()
            arr = np.stack(frames).astype(np.float32) / 255.0          # [T, H, W, 3]
            return {"video": torch.from_numpy(np.ascontiguousarray(arr.transpose(3, 0, 1, 2))), "name": video.name}
        n = len(video)
        if n == 0:
            raise DatasetError(f"{video.path}: no frames")
        idx = np.sort(rng.choice(n, size=2, replace=True))
        source, driving = video.frames([int(i) for i in idx])
        if self.transform is not None:
            source, driving = self.transform([source, driving], rng)
        chw = self.transform is not None and self.transform.has_transpose
        out = {"source": self._to_float(source, chw), "driving": self._to_float(driving, chw), "name": video.name}
        if self.time_flip and rng.random() < 0.5:
            out["source"], out["driving"] = out["driving"], out["source"]
        return out

    @staticmethod
    def _to_float(img, chw):
        """HxWx3 uint8 (or what the transforms made) -> float32 tensor [3, H, W] in [0, 1]."""
        arr = np.asarray(img)
        arr = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(arr if chw else arr.transpose(2, 0, 1)))

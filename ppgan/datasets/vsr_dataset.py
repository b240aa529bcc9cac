"""Video super-resolution datasets (PaddleGAN names, arguments and `preprocess:` steps).

Layouts:
  * REDS: `<lq_folder>/<clip>/<frame:08d>.png` and `<gt_folder>/<clip>/<frame:08d>.png`
    (`train_sharp_bicubic/X4/000/00000000.png`, `train_sharp/000/00000000.png`), 100 frames
    per clip; clips '000', '011', '015', '020' (REDS4) or '240'-'269' ('official') are the
    validation partition (`test_mode: True` selects them, training excludes them).
  * Vimeo-90K: `<folder>/<00001>/<0001>/im1.png .. im7.png` with `sep_trainlist.txt` /
    `sep_testlist.txt` listing `00001/0001` keys.
  * Folder (Vid4, UDM10): `<lq_folder>/<sequence>/<frames>`, one sample per sequence.

Datasets list sample *descriptions* (paths, clip key, frame count); the `preprocess:` steps pick
frame indices (`GetFrameIdx`, `GetFrameIdxwithPadding`, `GetNeighboringFramesIdx`, drawing
from the sample's rng), read them (`ReadImageSequence`) and transform LQ and GT sequences with
one random draw (`Transforms` with `SRPairedRandomCrop`, paired flips, `PairedRandomTransposeHW`,
`TransposeSequence`, `NormalizeSequence`, `MirrorVideoSequence`).

Sample dict: 'lq' float32 [T, C, h, w]; 'gt' float32 [T', C, s*h, s*w] (T' = T for the
recurrent-net datasets, 1 for `VSRREDSDataset`: the centre frame); values in [0, 1] with
PaddleGAN's `NormalizeSequence` by 255 (the default pipelines); 'lq_path', 'gt_path': lists of
frame paths; 'key': the clip (and frame) key.
"""
import os

import numpy as np
import torch

from ..utils.errors import ConfigError, DatasetError
from ..utils.image import IMAGE_EXTENSIONS, imread
from .base_dataset import BaseDataset
from .builder import DATASETS
from .paired_dataset import check_folder
from .preprocess import PREPROCESS, LoadImageFromFile, Preprocess, Transforms
from .transforms import paired_augment, sr_paired_crop_params

VAL_PARTITIONS = {"REDS4": ("000", "011", "015", "020"), "official": tuple(f"{v:03d}" for v in range(240, 270))}


# ---- preprocess steps -----------------------------------------------------------------------------
@PREPROCESS.register()
class ReadImageSequence(LoadImageFromFile):
    """datas['<key>_path'] (list of files) -> datas['<key>'] (list of HxWxC uint8 frames).

    Args: as `LoadImageFromFile` (key default 'gt').
    """

    def __init__(self, key="gt", flag=-1, to_rgb=True, save_original_img=False, backend=None):
        super().__init__(key, flag, to_rgb, save_original_img, backend)

    def __call__(self, datas, rng):
        paths = datas.get(f"{self.key}_path")
        if not isinstance(paths, (list, tuple)):
            raise TypeError(f"ReadImageSequence needs a list of paths in '{self.key}_path', got {type(paths).__name__}")
        frames = []
        for p in paths:
            img = imread(p, "gray" if self.gray else "rgb")
            if img.ndim == 2:
                img = img[..., None]
            elif not self.to_rgb:
                img = np.ascontiguousarray(img[..., ::-1])
            frames.append(img)
        datas[self.key] = frames
        datas[f"{self.key}_path"] = [str(p) for p in paths]
        return datas


def _frame_paths(datas, clip, indices, tmpl):
    lq = [os.path.join(datas["lq_path"], clip, tmpl.format(v)) for v in indices]
    gt = [os.path.join(datas["gt_path"], clip, tmpl.format(v)) for v in indices]
    return lq, gt


@PREPROCESS.register()
class GetNeighboringFramesIdx:
    """`num_frames` consecutive frames (every `interval`-th, interval drawn from
    `interval_list`) from a random start in the clip: LQ and GT paths (recurrent nets).

    Args:
        interval_list (list[int]): temporal strides to draw from.
        start_idx (int): index of the clip's first frame file (default 0).
        filename_tmpl (str): frame file name (default '{:08d}.png').

    Reads datas 'key' (clip), 'sequence_length', 'num_frames' (None: the whole clip), and the
    folders in 'lq_path' / 'gt_path'; writes the frame path lists and 'interval'.
    """

    def __init__(self, interval_list, start_idx=0, filename_tmpl="{:08d}.png"):
        self.interval_list = [int(v) for v in interval_list]
        self.start_idx, self.filename_tmpl = int(start_idx), filename_tmpl

    def writes(self):
        return []

    def __call__(self, datas, rng):
        interval = int(rng.choice(self.interval_list))
        length = int(datas["sequence_length"])
        num_frames = datas.get("num_frames") or length
        if length - num_frames * interval < 0:
            raise DatasetError(f"clip {datas['key']} has {length} frames: too short for {num_frames} frames "
                             f"at interval {interval}")
        start = int(rng.integers(0, length - num_frames * interval + 1))
        indices = [v + self.start_idx for v in range(start, start + num_frames * interval, interval)]
        datas["lq_path"], datas["gt_path"] = _frame_paths(datas, datas["key"], indices, self.filename_tmpl)
        datas["interval"] = interval
        return datas


@PREPROCESS.register()
class GetFrameIdx:
    """EDVR training frames: `num_frames` LQ frames around a centre frame and the centre GT.

    The centre is the key's frame ('000/00000042'); if the window (interval drawn from
    `interval_list`) does not fit in the clip, a random centre that fits is drawn instead.

    Args:
        interval_list (list[int]): temporal strides to draw from.
        frames_per_clip (int): last frame index of a clip (default 99 for REDS); a shorter clip
            (datas 'max_frame_num') uses its own length.
        filename_tmpl (str): frame file name (default '{:08d}.png').
    """

    def __init__(self, interval_list, frames_per_clip=99, filename_tmpl="{:08d}.png"):
        self.interval_list = [int(v) for v in interval_list]
        self.frames_per_clip, self.filename_tmpl = int(frames_per_clip), filename_tmpl

    def writes(self):
        return []

    def __call__(self, datas, rng):
        clip, frame = datas["key"].split("/")
        last = self.frames_per_clip
        if "max_frame_num" in datas:
            last = min(last, int(datas["max_frame_num"]) - 1)
        half = int(datas["num_frames"]) // 2
        interval = int(rng.choice(self.interval_list))
        if 2 * half * interval > last:
            raise DatasetError(f"clip {clip} (frames 0..{last}) is too short for {2 * half + 1} frames "
                             f"at interval {interval}")
        center = int(frame)
        if center - half * interval < 0 or center + half * interval > last:
            center = int(rng.integers(half * interval, last - half * interval + 1))
        indices = list(range(center - half * interval, center + half * interval + 1, interval))
        lq, _ = _frame_paths(datas, clip, indices, self.filename_tmpl)
        _, datas["gt_path"] = _frame_paths(datas, clip, [center], self.filename_tmpl)
        datas["lq_path"] = lq
        datas["interval"] = interval
        return datas


@PREPROCESS.register()
class GetFrameIdxwithPadding:
    """EDVR test frames: `num_frames` LQ frames around the key's frame, indices outside the clip
    padded; the GT is the key's frame.

    Args:
        padding (str): for current 0 and 5 frames: 'replicate' [0, 0, 0, 1, 2], 'reflection'
            [2, 1, 0, 1, 2], 'reflection_circle' [4, 3, 0, 1, 2], 'circle' [3, 4, 0, 1, 2].
        filename_tmpl (str): frame file stem (default '{:08d}'; '.png' is appended).
    """

    PADDINGS = ("replicate", "reflection", "reflection_circle", "circle")

    def __init__(self, padding, filename_tmpl="{:08d}"):
        if padding not in self.PADDINGS:
            raise ConfigError(f"GetFrameIdxwithPadding padding must be one of {', '.join(self.PADDINGS)}; "
                              f"got {padding!r}")
        self.padding, self.filename_tmpl = padding, filename_tmpl

    def writes(self):
        return []

    def indices(self, current, last, num_frames):
        pad = num_frames // 2
        out = []
        for i in range(current - pad, current + pad + 1):
            if i < 0:
                j = {"replicate": 0, "reflection": -i, "reflection_circle": current + pad - i,
                     "circle": num_frames + i}[self.padding]
            elif i > last:
                j = {"replicate": last, "reflection": last * 2 - i,
                     "reflection_circle": (current - pad) - (i - last), "circle": i - num_frames}[self.padding]
            else:
                j = i
            out.append(j)
        return out

    def __call__(self, datas, rng):
        clip, frame = datas["key"].split("/")
        indices = self.indices(int(frame), int(datas["max_frame_num"]) - 1, int(datas["num_frames"]))
        tmpl = self.filename_tmpl + ".png"
        lq, _ = _frame_paths(datas, clip, indices, tmpl)
        _, datas["gt_path"] = _frame_paths(datas, clip, [int(frame)], tmpl)
        datas["lq_path"] = lq
        return datas


# ---- sequences through the `Transforms` step -----------------------------------------------------
def _flatten(groups):
    lengths = [len(g) if isinstance(g, (list, tuple)) else None for g in groups]
    flat = [im for g, n in zip(groups, lengths) for im in (g if n is not None else [g])]
    return flat, lengths


def _unflatten(flat, lengths):
    out, i = [], 0
    for n in lengths:
        if n is None:
            out.append(flat[i])
            i += 1
        else:
            out.append(list(flat[i:i + n]))
            i += n
    return out


class SequenceTransforms:
    """A built `Transforms` step whose input keys may hold frame lists: all frames of all keys
    go through each transform as one list (one random draw for the whole sample); sequence-aware
    transforms (`MirrorVideoSequence`) get the lists. Each sequence is stacked to [T, C, H, W]."""

    def __init__(self, step):
        self.step = step

    def writes(self):
        return self.step.writes()

    def __call__(self, datas, rng):
        flat, lengths = _flatten([datas[k] for k in self.step.input_keys])
        for per_image, compose in self.step.steps:
            ts = compose.transforms
            if len(ts) == 1 and getattr(ts[0], "sequence_aware", False):
                flat, lengths = _flatten(ts[0].apply_sequences(_unflatten(flat, lengths), rng))
            elif per_image:
                flat = [compose(im, rng) for im in flat]
            else:
                flat = compose(flat, rng)
        if not self.step.has_transpose:
            flat = [(im[..., None] if im.ndim == 2 else im).transpose(2, 0, 1) for im in flat]
        for k, v in zip(self.step.output_keys, _unflatten(flat, lengths)):
            datas[k] = np.stack(v) if isinstance(v, list) else v
        return datas


class SequencePreprocess(Preprocess):
    """`Preprocess` for video samples: `Transforms` steps take frame lists (`SequenceTransforms`);
    `sample` returns [T, C, H, W] tensors and lists of frame paths."""

    def __init__(self, cfgs):
        super().__init__(cfgs)
        self.steps = [SequenceTransforms(s) if isinstance(s, Transforms) else s for s in self.steps]

    def sample(self, datas, rng, keys):
        datas = self({k: list(v) if isinstance(v, list) else v for k, v in datas.items()}, rng)
        out = {}
        for k in keys:
            if k not in datas:
                raise DatasetError(f"preprocess produced no '{k}' frames for {datas.get('key', datas)}")
            v = datas[k]
            if isinstance(v, list):  # frames never went through a Transforms step: HWC
                v = np.stack([(f[..., None] if f.ndim == 2 else f).transpose(2, 0, 1) for f in v])
            v = np.asarray(v, dtype=np.float32)
            if v.ndim == 3:
                v = v[None]
            out[k] = torch.from_numpy(np.ascontiguousarray(v))
            paths = datas.get(f"{k}_path", [])
            out[f"{k}_path"] = [str(p) for p in paths] if isinstance(paths, (list, tuple)) else str(paths)
        out["key"] = str(datas.get("key", ""))
        return out


def default_vsr_preprocess(index_step=None):
    steps = [index_step] if index_step else []
    return steps + [
        {"name": "ReadImageSequence", "key": "lq"},
        {"name": "ReadImageSequence", "key": "gt"},
        {"name": "Transforms", "input_keys": ["lq", "gt"],
         "pipeline": [{"name": "TransposeSequence"},
                      {"name": "NormalizeSequence", "mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0]}]},
    ]


# ---- helpers -------------------------------------------------------------------------------------
def list_frames(folder):
    """Sorted image files directly in `folder` (hidden files and entries that are not regular
    files, such as a FIFO named 0001.png, skipped)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    return sorted(e.path for e in entries
                  if not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS
                  and e.is_file())


def list_clips(folder):
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def read_ann_file(path):
    """First whitespace-separated token of each non-empty line."""
    path = os.path.expanduser(os.fspath(path))
    if not os.path.isfile(path):
        raise DatasetError(f"annotation file not found: {path}")
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip()]


def val_clips(val_partition):
    if isinstance(val_partition, (list, tuple)):
        return tuple(str(v) for v in val_partition)
    if val_partition not in VAL_PARTITIONS:
        raise ConfigError(f"val_partition must be one of {', '.join(VAL_PARTITIONS)} or a list of clips; "
                          f"got {val_partition!r}")
    return VAL_PARTITIONS[val_partition]


class VSRBaseDataset(BaseDataset):
    """Shared parts: `data_infos` (sample descriptions), a `SequencePreprocess`, output checks."""

    def _check_clip(self, clip):
        """Frame count of `clip`, which must exist in both folders."""
        n = len(list_frames(os.path.join(self.lq_folder, clip)))
        if n == 0:
            raise DatasetError(f"no frames in clip folder {os.path.join(self.lq_folder, clip)}")
        if not os.path.isdir(os.path.join(self.gt_folder, clip)):
            raise DatasetError(f"GT clip folder not found: {os.path.join(self.gt_folder, clip)}")
        return n

    def __len__(self):
        return len(self.data_infos)

    def get_item(self, index, rng):
        sample = self.preprocess.sample(self.data_infos[index], rng, ("lq", "gt"))
        if sample["lq"].ndim != 4 or sample["gt"].ndim != 4:
            raise DatasetError(f"{type(self).__name__}: expected [T, C, H, W] frames, got lq "
                               f"{tuple(sample['lq'].shape)}, gt {tuple(sample['gt'].shape)} ({sample['key']})")
        return sample


# ---- datasets ------------------------------------------------------------------------------------
@DATASETS.register()
class VSRREDSDataset(VSRBaseDataset):
    """REDS for sliding-window nets (EDVR): `num_frames` LQ frames around a centre frame, and
    the centre GT frame ('gt' is [1, C, H, W]). One sample per frame of each clip.

    Args:
        lq_folder (str): e.g. data/REDS/train_sharp_bicubic/X4.
        gt_folder (str): e.g. data/REDS/train_sharp/X4.
        ann_file (str | None): frame list, one 'clip/frame.png ...' per line (mmedit's
            meta_info_REDS_GT.txt) or one 'clip N (h,w,c)' per clip (BasicSR's); None: every
            frame of every clip folder in `lq_folder`.
        num_frames (int): odd window length (default 5).
        preprocess (list[dict] | None): PaddleGAN's steps. None: `GetFrameIdx` (train) or
            `GetFrameIdxwithPadding` 'reflection_circle' (test), read, CHW, / 255.
        val_partition (str | list[str]): 'REDS4', 'official' or clip names.
        test_mode (bool): use the validation clips (True) or all others (False).

    Raises:
        DatasetError: a folder, the annotation file or a listed clip is missing.
    """

    def __init__(self, lq_folder, gt_folder, ann_file=None, num_frames=5, preprocess=None, val_partition="REDS4",
                 test_mode=False):
        if int(num_frames) % 2 != 1:
            raise ConfigError(f"VSRREDSDataset num_frames must be odd, got {num_frames!r}")
        self.lq_folder, self.gt_folder = check_folder(lq_folder, "LQ folder"), check_folder(gt_folder, "GT folder")
        self.ann_file, self.num_frames = ann_file, int(num_frames)
        self.val_partition, self.test_mode = val_partition, bool(test_mode)
        self.data_infos = self.prepare_data_infos()
        if preprocess is None:
            preprocess = default_vsr_preprocess(
                {"name": "GetFrameIdxwithPadding", "padding": "reflection_circle"} if self.test_mode
                else {"name": "GetFrameIdx", "interval_list": [1]})
        self.preprocess = SequencePreprocess(preprocess)

    def prepare_data_infos(self):
        counts = {}
        if self.ann_file is None:
            keys = [f"{c}/{os.path.splitext(os.path.basename(f))[0]}" for c in list_clips(self.lq_folder)
                    for f in list_frames(os.path.join(self.lq_folder, c))]
        else:
            keys = []
            for token in read_ann_file(self.ann_file):
                if "/" in token:
                    keys.append(os.path.splitext(token)[0])
                else:  # a whole clip ('000 100 (720,1280,3)')
                    keys.extend(f"{token}/{os.path.splitext(os.path.basename(f))[0]}"
                                for f in list_frames(os.path.join(self.lq_folder, token)))
        val = set(val_clips(self.val_partition))
        keys = [k for k in keys if (k.split("/")[0] in val) == self.test_mode]
        infos = []
        for key in keys:
            clip = key.split("/")[0]
            if clip not in counts:
                counts[clip] = self._check_clip(clip)
            infos.append({"lq_path": self.lq_folder, "gt_path": self.gt_folder, "key": key,
                          "max_frame_num": counts[clip], "num_frames": self.num_frames})
        return infos


@DATASETS.register()
class VSRREDSMultipleGTDataset(VSRBaseDataset):
    """REDS for recurrent nets (BasicVSR, IconVSR, BasicVSR++): `num_frames` consecutive LQ
    frames and their GT frames. One sample per clip.

    Args:
        lq_folder, gt_folder, ann_file, preprocess, val_partition, test_mode: as `VSRREDSDataset`
            (ann_file lines give the clip as the part before the first '/').
        num_frames (int | None): frames per sample (default 15; None: the whole clip).
            Default preprocess: `GetNeighboringFramesIdx` interval 1, read, CHW, / 255.
    """

    def __init__(self, lq_folder, gt_folder, ann_file=None, num_frames=15, preprocess=None, val_partition="REDS4",
                 test_mode=False):
        self.lq_folder, self.gt_folder = check_folder(lq_folder, "LQ folder"), check_folder(gt_folder, "GT folder")
        self.ann_file = ann_file
        self.num_frames = None if num_frames is None else int(num_frames)
        self.val_partition, self.test_mode = val_partition, bool(test_mode)
        self.data_infos = self.prepare_data_infos()
        if preprocess is None:
            preprocess = default_vsr_preprocess({"name": "GetNeighboringFramesIdx", "interval_list": [1]})
        self.preprocess = SequencePreprocess(preprocess)

    def prepare_data_infos(self):
        if self.ann_file is None:
            clips = list_clips(self.lq_folder)
        else:
            clips = sorted({token.split("/")[0] for token in read_ann_file(self.ann_file)})
        val = set(val_clips(self.val_partition))
        infos = []
        for clip in clips:
            if (clip in val) != self.test_mode:
                continue
            n = self._check_clip(clip)
            if self.num_frames is not None and self.num_frames > n:
                raise ConfigError(f"num_frames {self.num_frames} is more than the {n} frames of clip "
                                  f"{os.path.join(self.lq_folder, clip)}")
            infos.append({"lq_path": self.lq_folder, "gt_path": self.gt_folder, "key": clip,
                          "sequence_length": n, "num_frames": self.num_frames})
        return infos


@DATASETS.register()
class VSRVimeo90KDataset(VSRBaseDataset):
    """Vimeo-90K septuplets: all frames of `<folder>/<key>/` (im1..im7.png) for LQ and GT.

    Args:
        lq_folder (str): e.g. data/vimeo90k/vimeo_septuplet_BD_matlabLRx4/sequences.
        gt_folder (str): e.g. data/vimeo90k/vimeo_septuplet/sequences.
        ann_file (str | None): keys such as '00001/0001' (sep_trainlist.txt); None: every
            '<a>/<b>' folder under `lq_folder`.
        preprocess (list[dict] | None): PaddleGAN's steps. None: read, CHW, / 255.
    """

    def __init__(self, lq_folder, gt_folder, ann_file=None, preprocess=None):
        self.lq_folder, self.gt_folder = check_folder(lq_folder, "LQ folder"), check_folder(gt_folder, "GT folder")
        self.ann_file = ann_file
        self.data_infos = self.prepare_data_infos()
        self.preprocess = SequencePreprocess(default_vsr_preprocess() if preprocess is None else preprocess)

    def prepare_data_infos(self):
        if self.ann_file is None:
            keys = [f"{a}/{b}" for a in list_clips(self.lq_folder) for b in list_clips(os.path.join(self.lq_folder, a))]
        else:
            keys = read_ann_file(self.ann_file)
        if not keys:
            raise DatasetError(f"no sequences found in {self.ann_file or self.lq_folder}")
        infos = []
        for key in keys:
            lq = list_frames(os.path.join(self.lq_folder, key))
            gt = list_frames(os.path.join(self.gt_folder, key))
            if not lq or not gt:
                raise DatasetError(f"no frames in {os.path.join(self.lq_folder if not lq else self.gt_folder, key)}")
            infos.append({"lq_path": lq, "gt_path": gt, "key": key})
        return infos


@DATASETS.register()
class VSRFolderDataset(VSRBaseDataset):
    """Test sequences in folders (Vid4, UDM10): `<lq_folder>/<sequence>/<frames>`.

    Args:
        lq_folder, gt_folder (str): sequence folders.
        preprocess (list[dict] | None): PaddleGAN's steps. None: `GetNeighboringFramesIdx`
            (the whole sequence), read, CHW, / 255.
        num_frames (int | None): frames per sample (None: the whole sequence).
        times (int): repeat the sequence list this many times (default 1; PaddleGAN accepts
            but ignores it).
    """

    def __init__(self, lq_folder, gt_folder, preprocess=None, num_frames=None, times=1):
        self.lq_folder, self.gt_folder = check_folder(lq_folder, "LQ folder"), check_folder(gt_folder, "GT folder")
        self.num_frames, self.times = num_frames, int(times)
        infos = []
        for seq in list_clips(self.lq_folder):
            n = self._check_clip(seq)
            infos.append({"lq_path": self.lq_folder, "gt_path": self.gt_folder, "key": seq,
                          "num_frames": num_frames or n, "sequence_length": n})
        if not infos:
            raise DatasetError(f"no sequence folders in {self.lq_folder}")
        self.data_infos = infos * self.times
        if preprocess is None:
            preprocess = default_vsr_preprocess({"name": "GetNeighboringFramesIdx", "interval_list": [1]})
        self.preprocess = SequencePreprocess(preprocess)


@DATASETS.register()
class SRREDSMultipleGTDataset(VSRBaseDataset):
    """PaddleGAN 2.0's REDS dataset for BasicVSR, with its arguments (before `preprocess:`
    pipelines): `number_frames` consecutive frames from a random start, optionally reversed,
    cropped (`crop_size` GT) and flipped / rotated in 'train' and 'valid' modes.

    Args:
        mode (str): 'train' (clips outside `val_partition`), 'valid' or 'test' (its clips).
        lq_folder, gt_folder (str): REDS folders.
        crop_size (int): GT crop side (default 256).
        interval_list (list[int]): temporal strides to draw from (default [1]).
        random_reverse (bool): reverse the frame order with probability 0.5.
        number_frames (int): frames per sample (default 15).
        use_flip (bool), use_rot (bool): random flips / transposition.
        scale (int): LQ -> GT factor (default 4).
        val_partition (str | list[str]): 'REDS4', 'official' or clip names.
        batch_size (int): accepted and unused (PaddleGAN's argument).
        num_clips (int): clips '000'..'<num_clips - 1>' (default 270).
    """

    def __init__(self, mode, lq_folder, gt_folder, crop_size=256, interval_list=(1,), random_reverse=False,
                 number_frames=15, use_flip=False, use_rot=False, scale=4, val_partition="REDS4", batch_size=4,
                 num_clips=270):
        if mode not in ("train", "valid", "test"):
            raise ConfigError(f"SRREDSMultipleGTDataset mode must be 'train', 'valid' or 'test'; got {mode!r}")
        self.mode = mode
        self.lq_folder, self.gt_folder = check_folder(lq_folder, "LQ folder"), check_folder(gt_folder, "GT folder")
        self.crop_size, self.scale = int(crop_size), int(scale)
        self.interval_list = [int(v) for v in interval_list]
        self.random_reverse, self.number_frames = bool(random_reverse), int(number_frames)
        self.use_flip, self.use_rot = bool(use_flip), bool(use_rot)
        val = set(val_clips(val_partition))
        clips = [f"{i:03d}" for i in range(int(num_clips))]
        clips = [c for c in clips if (c in val) == (mode != "train")]
        self.data_infos = [(c, self._check_clip(c)) for c in clips]

    def get_item(self, index, rng):
        clip, length = self.data_infos[index]
        interval = int(rng.choice(self.interval_list))
        span = (self.number_frames - 1) * interval + 1
        if span > length:
            raise DatasetError(f"clip {clip} has {length} frames: too short for {self.number_frames} "
                               f"at interval {interval}")
        start = int(rng.integers(0, length - span + 1))
        indices = list(range(start, start + span, interval))
        if self.random_reverse and rng.random() < 0.5:
            indices.reverse()
        lq_paths = [os.path.join(self.lq_folder, clip, f"{v:08d}.png") for v in indices]
        gt_paths = [os.path.join(self.gt_folder, clip, f"{v:08d}.png") for v in indices]
        frames = [imread(p) for p in lq_paths] + [imread(p) for p in gt_paths]
        if self.mode in ("train", "valid"):
            params = sr_paired_crop_params(frames, self.scale, self.crop_size, rng)
            frames = [f[t:t + s, lft:lft + s] for f, (t, lft, s) in zip(frames, params)]
            frames = paired_augment(frames, rng, self.use_flip, self.use_rot)
        n = len(indices)
        return {"lq": _stack(frames[:n]), "gt": _stack(frames[n:]), "lq_path": lq_paths, "gt_path": gt_paths,
                "key": clip}


def _stack(frames):
    """HxWxC uint8 frames -> float32 tensor [T, C, H, W] in [0, 1]."""
    return torch.from_numpy(np.stack([f.transpose(2, 0, 1) for f in frames]).astype(np.float32) / 255.0)

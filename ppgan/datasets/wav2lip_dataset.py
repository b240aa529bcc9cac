"""Wav2Lip and SyncNet training data: LRS2-style folders of face crops with their audio.

Layout (PaddleGAN's `Wav2LipDataset`, after Wav2Lip's `preprocess.py`):

    dataroot/<video>/0.jpg 1.jpg ... N.jpg   face crops, one per video frame (any size; resized
                                             to img_size x img_size), named by frame number
    dataroot/<video>/audio.wav               the video's audio (any format ffmpeg reads)
    <filelists_path>/<split>.txt             one <video> folder per line (relative to dataroot;
                                             LRS2's 'main/5535415699068794046/00001'); also
                                             looked up as <filelists_path>/filelists/<split>.txt,
                                             where PaddleGAN and Wav2Lip read it

`filelists_path: null` uses every folder below dataroot holding an audio.wav.

Windows (PaddleGAN / Wav2Lip): a sample draws a frame id k of its video and reads frames
k .. k+4 (syncnet_T = 5, all present); the sync window is the 16 mel frames (0.2 s) starting at
int(80 * k / fps); `indiv_mels` are the windows of frames k-1 .. k+3 (Wav2Lip's 0/1-indexing
offset, kept so its checkpoints stay comparable). Frames are BGR (read as OpenCV does), as every
Wav2Lip and SyncNet checkpoint was trained on them.

Unlike PaddleGAN, which ignores the index and loops forever over random videos, sample i comes
from video i (the sampler shuffles) and its random choices from the sample's generator; a video
with no usable window gives way to random others for `max_tries` tries, then a DatasetError
names it. Melspectrograms are cached per video (LRU, per worker).
"""
import os
from collections import OrderedDict

import cv2
import numpy as np
import torch

from ..utils.audio import melspectrogram
from ..utils.errors import DatasetError, PPGANError
from ..utils.image import imread
from ..video.audio import read_audio
from .base_dataset import BaseDataset
from .builder import DATASETS

SYNCNET_T = 5  # frames per window (the SyncNet expert sees 5 stacked lower halves)
SYNCNET_MEL_STEP_SIZE = 16  # mel frames per window: 0.2 s at 80 mel frames per second
MEL_FRAMES_PER_SECOND = 80.  # 16 kHz / hop 200
SAMPLE_RATE = 16000
AUDIO_NAME = "audio.wav"


def _find_filelist(filelists_path, split):
    tried = [os.path.join(filelists_path, f"{split}.txt"), os.path.join(filelists_path, "filelists", f"{split}.txt")]
    for path in tried:
        if os.path.isfile(path):
            return path
    raise DatasetError(f"no filelist for split '{split}': looked for {' and '.join(tried)}")


def read_filelist(dataroot, filelists_path, split):
    """The video folders listed in the split's filelist (first word of each line), checked."""
    path = _find_filelist(filelists_path, split)
    videos = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            folder = os.path.join(dataroot, words[0])
            if not os.path.isdir(folder):
                raise DatasetError(f"{path}:{n}: video folder {folder} not found")
            videos.append(folder)
    if not videos:
        raise DatasetError(f"{path} lists no videos")
    return videos


def scan_videos(dataroot):
    """Every folder below `dataroot` that holds an audio.wav (sorted; not searched further)."""
    found = []
    for folder, subdirs, files in os.walk(dataroot):
        subdirs.sort()
        if AUDIO_NAME in files and folder != dataroot:
            found.append(folder)
            subdirs.clear()
    if not found:
        raise DatasetError(f"no video folders with an {AUDIO_NAME} under {dataroot}")
    return sorted(found)


class _LRS2Windows(BaseDataset):
    """What the Wav2Lip and SyncNet datasets share: the video list, frame windows, mel windows."""

    MEL_CACHE = 16  # videos whose melspectrogram each worker keeps

    def __init__(self, dataroot, img_size=96, filelists_path=None, split="train", fps=25., max_tries=100):
        if not os.path.isdir(dataroot):
            raise DatasetError(f"dataroot {dataroot} is not a folder")
        if int(img_size) != img_size or img_size < 2 or img_size % 2:
            raise DatasetError(f"img_size must be an even integer >= 2, got {img_size!r}")
        if not fps or fps <= 0:
            raise DatasetError(f"fps must be > 0, got {fps!r}")
        self.dataroot = dataroot
        self.img_size = int(img_size)
        self.split = split
        self.fps = float(fps)
        self.max_tries = max(1, int(max_tries))
        self.all_videos = read_filelist(dataroot, filelists_path, split) if filelists_path is not None \
            else scan_videos(dataroot)
        self._frames = {}
        self._mels = OrderedDict()

    def __len__(self):
        return len(self.all_videos)

    # ---- frames -------------------------------------------------------------------------------
    def frame_ids(self, video):
        """Sorted frame numbers of the `<int>.jpg` files in `video` (cached)."""
        ids = self._frames.get(video)
        if ids is None:
            names = (os.path.splitext(n) for n in os.listdir(video))
            ids = sorted(int(stem) for stem, ext in names if ext.lower() == ".jpg" and stem.isdigit())
            self._frames[video] = ids
        return ids

    def draw_frames(self, video, rng):
        """(frame id, a different 'wrong' frame id), or a reason string when the video is too short."""
        ids = self.frame_ids(video)
        if len(ids) <= 3 * SYNCNET_T:
            return f"{video} has {len(ids)} frames (needs more than {3 * SYNCNET_T})"
        i, j = rng.choice(len(ids), size=2, replace=False)
        return ids[i], ids[j]

    def read_window(self, video, start):
        """SYNCNET_T frames from `start`: uint8 BGR [T, S, S, 3], or a reason string."""
        window = []
        for frame_id in range(start, start + SYNCNET_T):
            path = os.path.join(video, f"{frame_id}.jpg")
            if not os.path.isfile(path):
                return f"{path} is missing"
            try:
                img = imread(path, "rgb")
            except DatasetError as e:
                return str(e)
            img = cv2.resize(np.ascontiguousarray(img[..., ::-1]), (self.img_size, self.img_size))
            window.append(img)
        return np.stack(window)

    # ---- audio --------------------------------------------------------------------------------
    def mel(self, video):
        """The video's melspectrogram, time first: float32 [n_mel_frames, 80] (cached)."""
        spec = self._mels.get(video)
        if spec is not None:
            self._mels.move_to_end(video)
            return spec
        wav = read_audio(os.path.join(video, AUDIO_NAME), sample_rate=SAMPLE_RATE)
        spec = np.ascontiguousarray(np.asarray(melspectrogram(wav), dtype=np.float32).T)
        self._mels[video] = spec
        while len(self._mels) > self.MEL_CACHE:
            self._mels.popitem(last=False)
        return spec

    def crop_audio_window(self, spec, frame_id):
        """The SYNCNET_MEL_STEP_SIZE mel frames of video frame `frame_id`: [16, 80] (shorter at the end)."""
        start = int(MEL_FRAMES_PER_SECOND * (frame_id / self.fps))
        return spec[start:start + SYNCNET_MEL_STEP_SIZE]

    # ---- sampling -----------------------------------------------------------------------------
    def get_item(self, index, rng):
        video, why = self.all_videos[index], None
        for attempt in range(self.max_tries):
            try:
                sample = self.sample(video, rng)
            except (PPGANError, OSError) as e:  # unreadable audio: PaddleGAN skips the video too
                sample = str(e)
            if not isinstance(sample, str):
                return sample
            why = why or sample
            if attempt >= 2:  # the drawn frames did not fit: a few more draws, then other videos
                video = self.all_videos[int(rng.integers(len(self.all_videos)))]
        raise DatasetError(f"{type(self).__name__}: no usable {SYNCNET_T}-frame window with audio in "
                           f"{self.max_tries} tries from {self.all_videos[index]} ({why})")

    def sample(self, video, rng):
        raise NotImplementedError


@DATASETS.register()
class Wav2LipDataset(_LRS2Windows):
    """Generator training samples (PaddleGAN's `Wav2LipDataset`).

    Args:
        dataroot (str): folder of video folders (see the module docstring).
        img_size (int): face side after resizing. Default: 96.
        filelists_path (str | None): folder of `<split>.txt` (or of `filelists/<split>.txt`);
            None: every folder under dataroot holding an audio.wav. Default: None.
        split (str): filelist name ('train', 'val', 'test'). Default: 'train'.
        fps (float): video frame rate, which places each frame's mel window. Default: 25.
        max_tries (int): draws before a DatasetError. Default: 100.

    Sample (float32 tensors; S = img_size, T = 5):
        'x': [6, T, S, S] in [0, 1]: the window with its lower half zeroed, then a 'wrong'
            (reference) window from elsewhere in the video; BGR.
        'indiv_mels': [T, 1, 80, 16]: each frame's mel window (generator input).
        'mel': [1, 80, 16]: the window's mel (SyncNet expert input).
        'y': [3, T, S, S] in [0, 1]: the target window; BGR.
    """

    def sample(self, video, rng):
        drawn = self.draw_frames(video, rng)
        if isinstance(drawn, str):
            return drawn
        frame_id, wrong_id = drawn
        window = self.read_window(video, frame_id)
        if isinstance(window, str):
            return window
        wrong = self.read_window(video, wrong_id)
        if isinstance(wrong, str):
            return wrong
        spec = self.mel(video)
        mel = self.crop_audio_window(spec, frame_id)
        if mel.shape[0] != SYNCNET_MEL_STEP_SIZE:
            return f"{video}: audio ends before frame {frame_id + SYNCNET_T - 1}"
        indiv = self.get_segmented_mels(spec, frame_id)
        if isinstance(indiv, str):
            return f"{video}: {indiv}"

        y = self.prepare_window(window)  # [3, T, S, S]
        masked = y.copy()
        masked[:, :, self.img_size // 2:] = 0.  # hide the mouth: the lower half of every frame
        x = np.concatenate([masked, self.prepare_window(wrong)], axis=0)
        return {"x": torch.from_numpy(x),
                "indiv_mels": torch.from_numpy(np.ascontiguousarray(indiv[:, None])),
                "mel": torch.from_numpy(np.ascontiguousarray(mel.T[None])),
                "y": torch.from_numpy(y)}

    def get_segmented_mels(self, spec, frame_id):
        """[T, 80, 16]: the mel windows of frames frame_id-1 .. frame_id+3 (Wav2Lip's offset)."""
        if frame_id < 1:
            return f"frame {frame_id} has no previous frame for its mel windows"
        mels = []
        for k in range(frame_id - 1, frame_id - 1 + SYNCNET_T):
            m = self.crop_audio_window(spec, k)
            if m.shape[0] != SYNCNET_MEL_STEP_SIZE:
                return f"audio ends before frame {k}"
            mels.append(m.T)
        return np.stack(mels)

    @staticmethod
    def prepare_window(window):
        """uint8 [T, S, S, 3] -> float32 [3, T, S, S] in [0, 1]."""
        return np.ascontiguousarray((window.astype(np.float32) / 255.).transpose(3, 0, 1, 2))


@DATASETS.register()
class SyncNetDataset(_LRS2Windows):
    """SyncNet (lip-sync expert) pre-training samples, as Wav2Lip's `color_syncnet_train.py`
    (PaddleGAN has no SyncNet training). Arguments as `Wav2LipDataset`.

    A sample pairs the mel window of frame k with, at even odds, the face window of frame k
    (label 1, in sync) or of another frame of the same video (label 0, off sync).

    Sample (float32 tensors):
        'x': [15, S/2, S] in [0, 1]: lower halves of the 5 frames on channels (3 * t + c, BGR).
        'mel': [1, 80, 16].
        'y': [1]: 1. in sync, 0. not.
    """

    def sample(self, video, rng):
        drawn = self.draw_frames(video, rng)
        if isinstance(drawn, str):
            return drawn
        frame_id, wrong_id = drawn
        in_sync = bool(rng.integers(2))
        window = self.read_window(video, frame_id if in_sync else wrong_id)
        if isinstance(window, str):
            return window
        mel = self.crop_audio_window(self.mel(video), frame_id)
        if mel.shape[0] != SYNCNET_MEL_STEP_SIZE:
            return f"{video}: audio ends before frame {frame_id + SYNCNET_T - 1}"
        x = window.astype(np.float32) / 255.  # [T, S, S, 3]
        x = x.transpose(0, 3, 1, 2).reshape(-1, self.img_size, self.img_size)  # [3T, S, S], channel 3t + c
        x = np.ascontiguousarray(x[:, self.img_size // 2:])
        return {"x": torch.from_numpy(x),
                "mel": torch.from_numpy(np.ascontiguousarray(mel.T[None])),
                "y": torch.tensor([1. if in_sync else 0.])}

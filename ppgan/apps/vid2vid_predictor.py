"""Video-to-video synthesis with a Vid2Vid model trained by this project: `Vid2VidPredictor`.

    from ppgan.apps import Vid2VidPredictor
    pred = Vid2VidPredictor("output_dir/vid2vid_edges_demo-.../iter_1500_weight.pth")
    frames, out = pred.run("edges.mp4", "out.mp4")    # or a photo video: its Canny edges are the source
    img = pred.predict(edge_map_uint8)                  # one image: generated as a first frame

The weight file (`iter_<N>_weight.pth`) holds the generator (`netG`, and `netG_ema` when the run
kept an EMA copy, preferred unless `use_ema=False`) and the model config it was trained with, from
which the generator is rebuilt; `config=` replaces the stored config (a file without one).

Sequential generation (Wang et al. 2018, "Video-to-Video Synthesis"; `Vid2VidGenerator.step`):
frame t is generated from its source map, the K previous source maps and the K previous generated
frames (K = the generator's `n_frames_G` - 1), so the generator's flow and occlusion mask carry
the previous frames' pixels forward. On a video the frames stream through the shared pipeline
(`ppgan.video.process_video`: audio and subtitles kept, exact frame rate and count, resumable
chunks); the history is carried from frame to frame and restarts at every chunk of the pipeline
(`chunk_seconds`, 10 s by default; the chunk's first frame is generated like a video's first frame),
so a resumed run writes exactly the frames of an uninterrupted one.

The source. `source='edges'`: each frame is a photo and its Canny edge map (the same function as
the training data, `ppgan.datasets.vid2vid_dataset`) is the source; `'map'`: each frame already
is an edge map (white edges on black, e.g. a video written from such maps): its grey level,
resized (bilinear) to the working size when needed, is binarised at `MAP_THRESHOLD` (the training
maps are binary; this undoes the codec's blur); `'auto'` (default) decides per frame: a grey frame
whose pixels are (nearly) all black or white is a map, any other frame a photo.

Frame size. The generator is fully convolutional, but it learnt objects at the scale of its
training frames (`frame_size` in the model config). With `resize=True` (default) every frame is
resized so that its shorter side is the training frames' shorter side (aspect ratio kept, each
side rounded to a multiple of the generator's `size_multiple`), generated, and the result resized
back: the output has the input's size. `resize=False` generates at the input's own size, which
must then be a multiple of `size_multiple` (else one error line saying so).
"""
import os

import cv2
import numpy as np
import torch

from ..models.builder import describe_model
from ..models.generators.builder import build_generator
from ..utils.config import load_config
from ..utils.errors import CheckpointError, ConfigError, PPGANError
from ..weights import load
from ..weights.load import Weights, load_into
from .base_predictor import ImagePredictor, merge_image, split_image
from .predictor_stage import PredictorStage

SOURCES = ("auto", "edges", "map")
MAP_THRESHOLD = 127         # a decoded edge-map pixel > this is an edge (255), else 0
MAP_MAX_CHROMA = 6.0        # 'auto': a map's mean (over pixels) of max - min channel is at most this (codec chroma)
MAP_MIN_BINARY = 0.97       # 'auto': at least this fraction of a map's pixels is within 48 of 0 or 255
MODEL_NAME = "Vid2VidModel"


def _read_model_config(weights, config):
    """(model config, where it came from) for a Vid2Vid weight file."""
    where = weights.path or "the weights"
    if config is not None:
        cfg = load_config(config) if isinstance(config, (str, os.PathLike)) else config
        if not isinstance(cfg, dict):
            raise ConfigError(f"config {config} is not a mapping")
        model_cfg, source = (cfg["model"] if isinstance(cfg.get("model"), dict) else cfg), "given"
    elif isinstance(weights.config, dict):
        model_cfg, source = weights.config, "stored in the file"
    else:
        raise CheckpointError(f"{where} carries no model config (not written by this project's training?): "
                              "pass --config with the training config")
    if model_cfg.get("name") != MODEL_NAME or not isinstance(model_cfg.get("generator"), dict):
        raise CheckpointError(f"{where}: the model config {source} builds {describe_model(model_cfg)}, not a "
                              f"{MODEL_NAME} (train one with configs/vid2vid_edges_demo.yaml)")
    return dict(model_cfg)


def frame_size_of(model_cfg, net):
    """(W, H) of the training frames: model config `frame_size` ([W, H] or one int), else the
    generator's `frame_size` attribute, else None (unknown)."""
    size = model_cfg.get("frame_size", getattr(net, "frame_size", None))
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    w, h = size
    return int(w), int(h)


def is_edge_map(frame):
    """True when an HxWx3 uint8 frame looks like an edge map: grey, and (nearly) every pixel black
    or white."""
    f = frame.astype(np.int16)
    if (f.max(axis=2) - f.min(axis=2)).mean() > MAP_MAX_CHROMA:
        return False
    g = f.mean(axis=2)
    near = (g <= 48) | (g >= 207)
    return bool(near.mean() >= MAP_MIN_BINARY)


def work_size(in_size, frame_size, multiple, resize):
    """(W, H) the generator runs at for an input of `in_size` (W, H). See the module docstring."""
    w, h = in_size
    m = max(1, int(multiple))
    if not resize:
        if w % m or h % m:
            raise PPGANError(f"the input is {w}x{h}, but this generator needs sides that are multiples of {m} "
                             f"(e.g. {max(m, w // m * m)}x{max(m, h // m * m)}); drop --no_resize to let the app "
                             "resize it")
        return w, h
    if frame_size is not None:
        s = min(frame_size) / min(w, h)
        w, h = w * s, h * s
    return max(m, int(round(w / m)) * m), max(m, int(round(h / m)) * m)


class Vid2VidPredictor(ImagePredictor):
    """Args:
        weight_path (str | Weights): a Vid2VidModel weight file of training (`iter_<N>_weight.pth`
            or `*_checkpoint.pth`).
        output (str): output folder for `run` without an output path: `<output>/Vid2Vid/`.
        config (str | dict | None): the training config (or its model section), instead of the
            one stored in the weight file.
        source (str): 'auto' (default), 'edges' (photo frames: their Canny edges are the source)
            or 'map' (the frames are edge maps). See the module docstring.
        resize (bool): generate at the training frames' scale and resize back (default True), or at
            the input's own size (False).
        use_ema (bool): use `netG_ema` when the file has it (default True).
        device (str), half (bool | str | None), verbose (bool): as every predictor.
    """

    name = "Vid2Vid"
    suffix = "_vid2vid"
    keep_gray = False

    def __init__(self, weight_path=None, output="output", config=None, source="auto", resize=True, use_ema=True,
                 device="auto", half=None, verbose=True):
        if source not in SOURCES:
            raise ConfigError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
        super().__init__(output=output, device=device, half=half, verbose=verbose)
        if weight_path is None or weight_path == "":
            raise CheckpointError("no weight file given: pass --weight_path FILE (an iter_<N>_weight.pth of "
                                  "training configs/vid2vid_edges_demo.yaml)")
        weights = weight_path if isinstance(weight_path, Weights) else load(weight_path)
        self.model_cfg = _read_model_config(weights, config)
        self.netG = build_generator(self.model_cfg["generator"])
        if not hasattr(self.netG, "step"):
            raise CheckpointError(f"generator {type(self.netG).__name__} of {weights.path or 'the weights'} does not "
                                  "generate frame by frame (expected a Vid2VidGenerator)")
        self.net_name = "netG_ema" if use_ema and "netG_ema" in weights.states else "netG"
        if self.net_name not in weights.states:
            raise CheckpointError(f"{weights.path or 'the weights'} has no 'netG' weights (it has: "
                                  f"{', '.join(map(str, weights.states))})")
        load_into(self.netG, weights, name=self.net_name)
        self.netG.to(self.device).eval()
        self.weight_files = list(weights.files)
        self.model_name = f"{MODEL_NAME}:{self.net_name}"
        self.source, self.resize = source, bool(resize)
        self.n_prev = int(self.netG.n_frames_G) - 1
        self.source_nc = int(self.netG.source_nc)
        self.size_multiple = 2 ** int(self.netG.n_downsampling)
        self.frame_size = frame_size_of(self.model_cfg, self.netG)
        self._log(f"[ppgan] Vid2Vid: {self.net_name}, {self.n_prev} previous frames, source {source}, "
                  + (f"training frames {self.frame_size[0]}x{self.frame_size[1]}" if self.frame_size else
                     "training frame size unknown"))

    # -- one frame ---------------------------------------------------------------------------
    def stage_params(self):
        return {"source": self.source, "resize": self.resize, "net": self.net_name,
                "frame_size": list(self.frame_size) if self.frame_size else None}

    def source_map(self, frame, size):
        """HxWx3 uint8 RGB frame -> the generator's source tensor [1, C, h, w] in [-1, 1] at `size`
        (w, h), on the device."""
        from ..datasets.vid2vid_dataset import edge_map

        w, h = size
        mode = self.source if self.source != "auto" else ("map" if is_edge_map(frame) else "edges")
        if mode == "edges":
            img = frame if frame.shape[:2] == (h, w) else cv2.resize(
                frame, (w, h), interpolation=cv2.INTER_AREA if w * h < frame.shape[0] * frame.shape[1]
                else cv2.INTER_CUBIC)
            m = edge_map(np.ascontiguousarray(img))
        else:
            g = frame.mean(axis=2).astype(np.float32)
            if g.shape != (h, w):
                g = cv2.resize(g, (w, h), interpolation=cv2.INTER_LINEAR)
            m = np.where(g > MAP_THRESHOLD, 255, 0).astype(np.uint8)
        m = m if m.ndim == 3 else m[..., None]
        if m.shape[2] != self.source_nc:
            m = np.repeat(m[..., :1], self.source_nc, axis=2)
        t = torch.from_numpy(np.ascontiguousarray(m.transpose(2, 0, 1))).float().div_(127.5).sub_(1.0)
        return t[None].to(self.device)

    @torch.no_grad()
    def step(self, src, state=None):
        """One generator step (`Vid2VidGenerator.step`): source [1, C, h, w] in [-1, 1] and the
        state of the previous step (None: a first frame) -> (frame [1, 3, h, w] in [-1, 1], state)."""
        if self.half:
            with torch.autocast(self.device.type, dtype=self.compute_dtype):
                out, new_state = self.netG.step(src, state)
            if torch.isfinite(out).all():  # the history is kept in fp32, so an fp32 redo can read it
                return out.float(), {k: v.float() for k, v in new_state.items()}
            self.stats["fp32_retries"] += 1
        out, new_state = self.netG.step(src, state)
        return out.float(), new_state

    def _generate(self, frame, history):
        """HxWx3 uint8 frame -> HxWx3 float32 in [0, 1] at the frame's size; `history` (a dict: the
        generator state and the size it runs at) is read and updated."""
        h, w = frame.shape[:2]
        size = work_size((w, h), self.frame_size, self.size_multiple, self.resize)
        src = self.source_map(frame, size)
        if history.get("size") != size:  # a new sequence (or frames of another size: start over)
            history.update(size=size, state=None)
        fake, history["state"] = self.step(src, history["state"])
        out = ((fake[0].clamp(-1, 1) + 1) * 0.5).permute(1, 2, 0).cpu().numpy()
        if out.shape[:2] != (h, w):
            out = np.clip(cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
        return out

    def predict(self, img):
        """One image (an edge map or a photo, HxW / HxWx3 / HxWx4 uint8): generated as the first
        frame of a video (no previous frames). Returns HxWx3 uint8 RGB (alpha kept)."""
        rgb, alpha, layout = split_image(img)
        frame = (rgb * 255.0 + 0.5).astype(np.uint8)
        out = self._generate(frame, {})
        return merge_image(out, alpha, layout, keep_gray=False)

    def predict_sequence(self, frames):
        """HxWx3 uint8 frames of one video -> the generated frames (uint8), the history carried
        from each frame to the next (as one chunk of the video pipeline)."""
        history = {}
        return [merge_image(self._generate(np.asarray(f), history), None, (False, np.uint8)) for f in frames]

    # -- video -------------------------------------------------------------------------------
    def frame_stage(self):
        return Vid2VidStage(self)


class Vid2VidStage(PredictorStage):
    """Vid2Vid on video: frames in order, each generated with the history of the frames before it
    in the same chunk (reset at every chunk start, so resumed runs match)."""

    def __init__(self, predictor):
        super().__init__(predictor)
        self.history = {}

    def reset(self, start_frame):
        super().reset(start_frame)
        self.history = {}

    def push(self, frames):
        out = []
        for f in frames:
            rgb, alpha, layout = split_image(f)
            frame = f if f.dtype == np.uint8 and f.ndim == 3 and f.shape[2] == 3 else \
                (rgb * 255.0 + 0.5).astype(np.uint8)
            out.append(merge_image(self.pred._generate(frame, self.history), None, layout, keep_gray=False))
        return out

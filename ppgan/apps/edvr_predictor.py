"""Video super-resolution apps: `EDVRPredictor` (sliding window of frames around each output
frame) and `BasicVSRPredictor` (bidirectional recurrence over clips of `num_frames`).

Both stream: frames come in from the video pipeline (`ppgan.video.process_video`), are
held only as long as the temporal window needs them, and leave as soon as they are done. At
the edges of a clip (the video's ends, and the pipeline's resumable chunks) the window is
filled by repeating the edge frame, as EDVR does at a video's ends, so a resumed run gives
exactly the frames of an uninterrupted one.
"""
import numpy as np
import torch

from ..utils.errors import ConfigError
from .base_predictor import ImagePredictor, merge_image, split_image
from .predictor_stage import PredictorStage


def _clip_tensor(frames):
    """list of HxWx3 float32 -> [1, T, 3, H, W]."""
    return torch.from_numpy(np.ascontiguousarray(np.stack(frames).transpose(0, 3, 1, 2)))[None]


class _ClipAsImage(torch.nn.Module):
    """A video net seen as an image net, so clips can be tiled like images: [N, T*3, H, W] ->
    the net's output with frames folded into channels ([N, 3, sH, sW] for EDVR, [N, T*3, sH, sW]
    for BasicVSR)."""

    def __init__(self, net, multiple, min_size):
        super().__init__()
        self.net = net
        self.size_multiple, self.min_input_size = multiple, min_size
        self.video_out = False  # whether the net returns every frame ([N, T, 3, sH, sW])

    def forward(self, x):
        n, tc, h, w = x.shape
        out = self.net(x.reshape(n, tc // 3, 3, h, w))
        self.video_out = out.ndim == 5
        return out.reshape(n, -1, *out.shape[-2:])


class _VideoSRPredictor(ImagePredictor):
    suffix = "_sr"
    default_model = None

    def __init__(self, output="output", weight_path=None, model=None, device="auto", half=None, verbose=True,
                 tile=None, tile_overlap=None):
        super().__init__(output=output, device=device, half=half, verbose=verbose)
        self.load_model(model or self.default_model, weight_path)
        multiple = int(getattr(self.net, "size_multiple", 4) or 4)
        min_size = int(getattr(self.net, "min_input_size", 0) or getattr(self.net, "MIN_SIZE", 1))
        self.clip_net = _ClipAsImage(self.net, multiple, min_size)
        self.tile, self.tile_overlap = tile, 32 if tile_overlap is None else int(tile_overlap)
        self._log(f"[ppgan] {self.name} model: {self.model_name}")

    def _net(self, clip):
        """[1, T, 3, H, W] float32 CPU -> the net's output ([1, 3, 4H, 4W] or [1, T, 3, 4H, 4W]) on
        CPU, float32 in [0, 1]. Large frames run in overlapping tiles (`tile`, `tile_overlap`),
        with the fp16 fall-back and out-of-memory halving of `BasePredictor.forward_image`."""
        n, t, c, h, w = clip.shape
        out = self.forward_image(self.clip_net, clip.reshape(n, t * c, h, w), tile=self.tile,
                                 overlap=self.tile_overlap, scale=4)
        out = out.clamp_(0, 1)
        return out.reshape(n, t, c, *out.shape[-2:]) if self.clip_net.video_out else out



class EDVRPredictor(_VideoSRPredictor):
    """EDVR video super-resolution (x4): each output frame is computed from the `nframes`
    frames centred on it.

    Args:
        output (str): output folder; results go to `<output>/EDVR/`.
        weight_path (str | None): weight file overriding the model's default source.
        model (str | None): a name from `ppgan.weights.catalog` (default PaddleGAN's EDVR-L with TSA).
        tile (int | None), tile_overlap (int | None): spatial tiles of the frames, as RealSRPredictor
            (None: from memory; the whole frame when it fits); overlap None: 32.
        device, half: as for every predictor.
        bs (int | None): PaddleGAN's batch size: video frames handed to the model stage at a time
            (`process_video`'s `batch_size`; default 4). Changes speed and memory, not the output.
    """

    name = "EDVR"
    default_model = "edvr-l-w-tsa"  # PaddleGAN's EDVRPredictor: EDVRNet(nf=128, back_RBs=40), TSA

    def __init__(self, output="output", weight_path=None, model=None, device="auto", half=None, verbose=True,
                 tile=None, tile_overlap=None, bs=None):
        if bs is not None and (isinstance(bs, bool) or not isinstance(bs, int) or bs < 1):
            raise ConfigError(f"bs must be an integer >= 1, got {bs!r}")
        super().__init__(output, weight_path, model, device, half, verbose, tile, tile_overlap)
        self.nframes = int(getattr(self.net, "nframes", 5))
        self.batch_size = bs  # None: process_video's default

    def predict_rgb(self, rgb):
        """A single image: the window is the image repeated."""
        return self._net(_clip_tensor([rgb] * self.nframes))[0].permute(1, 2, 0).numpy()

    def stage_params(self):
        return {"nframes": self.nframes}

    def frame_stage(self):
        return EDVRWindowStage(self)


class BasicVSRPredictor(_VideoSRPredictor):
    """BasicVSR video super-resolution (x4): frames are processed in clips of `num_frames`
    (bidirectional propagation inside a clip); memory grows with `num_frames`, not the video.

    Args:
        output (str): output folder; results go to `<output>/BasicVSR/`.
        weight_path (str | None): weight file overriding the model's default source.
        model (str | None): a name from `ppgan.weights.catalog` (default PaddleGAN's BasicVSR REDS).
        num_frames (int): frames per clip (default 10, as PaddleGAN).
        tile (int | None), tile_overlap (int): spatial tiles, as EDVRPredictor.
        device, half: as for every predictor.
    """

    name = "BasicVSR"
    default_model = "basicvsr-reds"

    def __init__(self, output="output", weight_path=None, model=None, num_frames=10, device="auto", half=None,
                 verbose=True, tile=None, tile_overlap=None):
        super().__init__(output, weight_path, model, device, half, verbose, tile, tile_overlap)
        if int(num_frames) < 1:
            raise ConfigError(f"num_frames must be >= 1, got {num_frames}")
        self.num_frames = int(num_frames)

    def predict_rgb(self, rgb):
        return self._net(_clip_tensor([rgb]))[0, 0].permute(1, 2, 0).numpy()

    def stage_params(self):
        return {"num_frames": self.num_frames}

    def frame_stage(self):
        return BasicVSRClipStage(self)


class EDVRWindowStage(PredictorStage):
    """EDVR on video: emits frame i once frames i-r .. i+r are in (r = nframes // 2), repeating the
    edge frames at chunk ends; holds at most 2r + 1 frames."""

    def __init__(self, predictor):
        super().__init__(predictor)
        self.r = predictor.nframes // 2
        self.reset(0)

    def reset(self, start_frame):
        super().reset(start_frame)
        # buf[k] is chunk frame first + k (kept as float RGB, with its layout); next: the next to emit
        self.buf, self.layouts, self.first, self.next = [], [], 0, 0

    def _emit(self, i):
        r, last = self.r, self.first + len(self.buf) - 1  # frames past the newest are the newest repeated
        idx = [min(max(j, 0), last) - self.first for j in range(i - r, i + r + 1)]
        out = self.pred._net(_clip_tensor([self.buf[k] for k in idx]))[0].permute(1, 2, 0).numpy()
        return merge_image(out, None, self.layouts[i - self.first])

    def _drop_old(self):
        keep_from = max(self.next - self.r, 0)
        if keep_from > self.first:
            del self.buf[: keep_from - self.first], self.layouts[: keep_from - self.first]
            self.first = keep_from

    def push(self, frames):
        for f in frames:
            rgb, _, layout = split_image(f)
            self.buf.append(rgb)
            self.layouts.append(layout)
        out, n = [], self.first + len(self.buf)
        while self.next + self.r < n:
            out.append(self._emit(self.next))
            self.next += 1
            self._drop_old()
        return out

    def flush(self):
        out, n = [], self.first + len(self.buf)
        while self.next < n:
            out.append(self._emit(self.next))
            self.next += 1
        self.reset(self.start_frame)
        return out


class BasicVSRClipStage(PredictorStage):
    """BasicVSR on video: frames are run in clips of `num_frames` (the last clip of a chunk shorter)."""

    def __init__(self, predictor):
        super().__init__(predictor)
        self.buf = []

    def reset(self, start_frame):
        super().reset(start_frame)
        self.buf = []

    def _run(self):
        rgbs, layouts = zip(*[(s[0], s[2]) for s in (split_image(f) for f in self.buf)])
        out = self.pred._net(_clip_tensor(list(rgbs)))[0].permute(0, 2, 3, 1).numpy()
        self.buf = []
        return [merge_image(o, None, lay) for o, lay in zip(out, layouts)]

    def push(self, frames):
        out = []
        for f in frames:
            self.buf.append(f)
            if len(self.buf) == self.pred.num_frames:
                out += self._run()
        return out

    def flush(self):
        return self._run() if self.buf else []

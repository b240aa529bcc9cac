"""Video super-resolution apps: `EDVRPredictor` (sliding window of frames around each output
frame) and the recurrent nets `BasicVSRPredictor`, `IconVSRPredictor`, `BasicVSRPlusPlusPredictor`
(PaddleGAN's `BasiVSRPlusPlusPredictor` too), `PPMSVSRPredictor` and `PPMSVSRLargePredictor`
(bidirectional recurrence over overlapping windows of `num_frames`).

All stream: frames come in from the video pipeline (`ppgan.video.process_video`), are held only
as long as the temporal window needs them, and leave as soon as they are done, so memory does not
grow with the video's length. At the edges of a clip (the video's ends, and the pipeline's
resumable chunks) EDVR's window is filled by repeating the edge frame, as EDVR does at a video's
ends, and the recurrent nets' windows stop at the edge, so a resumed run gives exactly the frames
of an uninterrupted one.

Recurrent windows: a bidirectional recurrent net (BasicVSR, ...) computes frame i from the whole
clip it is given. Run on a long video in windows of `num_frames` frames (PaddleGAN's flag; the
memory bound), each window also sees `overlap` frames before and after the frames it outputs, so
no output frame sits at a window's cut. A chunk no longer than `num_frames` is one window: exactly
the whole-clip result. On longer chunks the frames near a seam differ from whole-clip inference
by what the features carried from beyond `overlap` frames would have added; the bound measured on
deterministic weights is in tests/apps/test_vsr_windows.py (test_window_seams_match_whole_clip).
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
        if isinstance(out, (tuple, list)):  # PP-MSVSR with its auxiliary head: (aux, output)
            out = out[-1]
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
        # x4 unless the net says otherwise (EDVR deblurring: scale_factor 1; BasicVSR++ HR input)
        self.scale = int(getattr(self.net, "scale_factor", 0) or (4 if getattr(self.net, "is_low_res_input", True)
                                                                   else 1))
        self.tile, self.tile_overlap = tile, 32 if tile_overlap is None else int(tile_overlap)
        self._log(f"[ppgan] {self.name} model: {self.model_name}")

    def _net(self, clip):
        """[1, T, 3, H, W] float32 CPU -> the net's output ([1, 3, 4H, 4W] or [1, T, 3, 4H, 4W]) on
        CPU, float32 in [0, 1]. Large frames run in overlapping tiles (`tile`, `tile_overlap`),
        with the fp16 fall-back and out-of-memory halving of `BasePredictor.forward_image`."""
        n, t, c, h, w = clip.shape
        out = self.forward_image(self.clip_net, clip.reshape(n, t * c, h, w), tile=self.tile,
                                 overlap=self.tile_overlap, scale=self.scale)
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


def check_window(num_frames, overlap):
    """(num_frames, overlap) as ints; ConfigError unless num_frames >= 1 and 0 <= 2 * overlap <
    num_frames (every window outputs at least one frame)."""
    for name, v in (("num_frames", num_frames), ("overlap", overlap)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ConfigError(f"{name} must be an integer, got {v!r}")
    num_frames, overlap = int(num_frames), int(overlap)
    if num_frames < 1:
        raise ConfigError(f"num_frames must be >= 1, got {num_frames}")
    if overlap < 0 or 2 * overlap >= num_frames:
        raise ConfigError(f"overlap must be >= 0 and less than half of num_frames ({num_frames}), got {overlap}")
    return num_frames, overlap


class _RecurrentVSRPredictor(_VideoSRPredictor):
    """A bidirectional recurrent video SR net (x4) run in overlapping windows (see the module
    docstring): the net sees at most `num_frames` frames at a time, whatever the video's length.

    Args:
        output (str): output folder; results go to `<output>/<name>/`.
        weight_path (str | None): weight file overriding the model's default source.
        model (str | None): a name from `ppgan.weights.catalog` (default: PaddleGAN's weights).
        num_frames (int): frames the net sees at once (default 10, as PaddleGAN): memory grows with
            it, not with the video.
        overlap (int): frames of context before and after the frames a window outputs (default 2;
            0 is PaddleGAN's back-to-back clips). Each window outputs num_frames - 2 * overlap
            frames (num_frames - overlap at a chunk's start), so 2 * overlap < num_frames.
        tile (int | None), tile_overlap (int): spatial tiles, as EDVRPredictor.
        device, half: as for every predictor.
    """

    def __init__(self, output="output", weight_path=None, model=None, num_frames=10, device="auto", half=None,
                 verbose=True, tile=None, tile_overlap=None, overlap=2):
        from ..weights import get_spec

        self.num_frames, self.overlap = check_window(num_frames, overlap)
        spec = get_spec(model or self.default_model)  # checked before any weights are read
        # IconVSR: windows take at least 2 * padding + 1 frames (its keyframe extractor) and start on
        # a keyframe of the whole clip (every keyframe_stride-th frame), so the refills fall alike;
        # num_frames >= stride + min_frames - 1 leaves the chunk's last window such a start
        icon = spec.arch == "IconVSR"
        self.min_frames = 2 * int(spec.kwargs.get("padding", 2)) + 1 if icon else 1
        self.window_stride = int(spec.kwargs.get("keyframe_stride", 5)) if icon else 1
        need = max(self.min_frames, 2 * self.overlap + self.window_stride,
                   self.window_stride + self.min_frames - 1 if icon else 1)
        if self.num_frames < need:
            raise ConfigError(f"{spec.name} ({spec.arch}) needs num_frames >= {need} with overlap {self.overlap}, "
                              f"got {self.num_frames}")
        super().__init__(output, weight_path, model, device, half, verbose, tile, tile_overlap)
        self._log(f"[ppgan] {self.name}: windows of {self.num_frames} frames, {self.overlap} of overlap on each side")

    def predict_rgb(self, rgb):
        """A single image: a clip of the image repeated (as few frames as the net takes)."""
        return self._net(_clip_tensor([rgb] * self.min_frames))[0, 0].permute(1, 2, 0).numpy()

    def run_window(self, rgbs):
        """HxWx3 float32 frames (at most num_frames) -> their x4 frames, HxWx3 float32 in [0, 1].
        Fewer frames than the net takes are padded by repeating the last (their outputs dropped)."""
        clip = list(rgbs) + [rgbs[-1]] * (self.min_frames - len(rgbs))
        out = self._net(_clip_tensor(clip))[0, : len(rgbs)]
        return list(out.permute(0, 2, 3, 1).numpy())

    def stage_params(self):
        return {"num_frames": self.num_frames, "overlap": self.overlap}

    def frame_stage(self):
        return RecurrentWindowStage(self)


class BasicVSRPredictor(_RecurrentVSRPredictor):
    __doc__ = """BasicVSR video super-resolution (x4), PaddleGAN's weights (REDS) by default.
""" + _RecurrentVSRPredictor.__doc__

    name = "BasicVSR"
    default_model = "basicvsr-reds"


class IconVSRPredictor(_RecurrentVSRPredictor):
    __doc__ = """IconVSR video super-resolution (x4; information refill + coupled propagation),
    PaddleGAN's weights (REDS) by default. Windows start on its keyframes (every 5th frame), so
    num_frames must be at least 2 * overlap + 5 and at least 9 (the keyframe extractor's 5 frames
    for the last window of a chunk).
""" + _RecurrentVSRPredictor.__doc__

    name = "IconVSR"
    default_model = "iconvsr-reds"


class BasicVSRPlusPlusPredictor(_RecurrentVSRPredictor):
    __doc__ = """BasicVSR++ video super-resolution (x4; second-order grid propagation with
    flow-guided deformable alignment), PaddleGAN's weights (REDS) by default.
""" + _RecurrentVSRPredictor.__doc__

    name = "BasicVSR_PP"  # PaddleGAN's output folder is 'BasiVSR_PP' (sic)
    default_model = "basicvsr++-reds"


BasiVSRPlusPlusPredictor = BasicVSRPlusPlusPredictor  # PaddleGAN's spelling


class PPMSVSRPredictor(_RecurrentVSRPredictor):
    __doc__ = """PP-MSVSR video super-resolution (x4; PaddleGAN's multi-stage VSR), PaddleGAN's
    weights (REDS) by default; `model='pp-msvsr-vimeo90k'` for its Vimeo-90K (BD) weights.
""" + _RecurrentVSRPredictor.__doc__

    name = "PPMSVSR"
    default_model = "pp-msvsr-reds"


class PPMSVSRLargePredictor(_RecurrentVSRPredictor):
    __doc__ = """PP-MSVSR-L video super-resolution (x4; the large PP-MSVSR), PaddleGAN's weights
    (REDS) by default.
""" + _RecurrentVSRPredictor.__doc__

    name = "PPMSVSR-L"
    default_model = "pp-msvsr-l-reds"


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


class RecurrentWindowStage(PredictorStage):
    """A recurrent net on video, in windows of at most `num_frames` frames (W) with `overlap` (O)
    frames of context on each side of the frames a window outputs: frames [a, a + W) give outputs
    [next, a + W - O), with a = max(next - O, 0) (chunk-relative indices; rounded down to a multiple
    of the predictor's `window_stride`, IconVSR's keyframe stride). At the chunk's end the last
    window reaches back as far as W allows and outputs the rest. A window runs once the frame
    after it is in (so the chunk's last window runs once, in flush): holds at most W + 1 frames."""

    def __init__(self, predictor):
        super().__init__(predictor)
        self.max_held = 0  # the most frames held at once (memory stays flat: <= num_frames + 1)
        self.reset(0)

    def reset(self, start_frame):
        super().reset(start_frame)
        # buf[k] is chunk frame first + k (float RGB, layout); next: the next frame to output
        self.buf, self.first, self.next = [], 0, 0

    def _start(self, latest, earliest):
        """The window start: `latest` rounded down to a multiple of the stride, unless that is
        before `earliest` (then `earliest`)."""
        stride = getattr(self.pred, "window_stride", 1)
        a = max(latest, 0) // stride * stride
        return a if a >= earliest else earliest

    def _window(self, a, b, upto):
        """Run frames [a, b), return the outputs of frames [next, upto)."""
        out = self.pred.run_window([self.buf[k - self.first][0] for k in range(a, b)])
        done = [merge_image(out[i - a], None, self.buf[i - self.first][1]) for i in range(self.next, upto)]
        self.next = upto
        return done

    def push(self, frames):
        w, o = self.pred.num_frames, self.pred.overlap
        out = []
        for f in frames:
            rgb, _, layout = split_image(f)
            self.buf.append((rgb, layout))
            if len(self.buf) > w + 1:  # older than any window still to run needs
                del self.buf[0]
                self.first += 1
            self.max_held = max(self.max_held, len(self.buf))
            a = self._start(self.next - o, self.first)
            # the window [a, a + w) is in, and is not the chunk's last (flush runs that one whole)
            if self.first + len(self.buf) == a + w + 1:
                out += self._window(a, a + w, a + w - o)
        return out

    def flush(self):
        n = self.first + len(self.buf)
        out = []
        if self.next < n:
            # as far back as num_frames allows, on a multiple of the stride when one is early enough
            # for the context and leaves the net the frames it needs (IconVSR: the last frame is a
            # keyframe of the whole clip; padding the window would move it)
            lo = max(n - self.pred.num_frames, self.first)
            hi = min(max(self.next - self.pred.overlap, lo), n - getattr(self.pred, "min_frames", 1))
            stride = getattr(self.pred, "window_stride", 1)
            a = -(-lo // stride) * stride
            out = self._window(a if a <= hi else lo, n, n)
        self.reset(self.start_frame)
        return out


BasicVSRClipStage = RecurrentWindowStage  # the name before windows overlapped

"""Stages: the per-frame work of `process_video`, between the decoder and the encoder.

A stage is a `FrameStage` (or any object with `reset`, `push`, `flush`, `identity`) or a plain
function `f(list of frames) -> list of frames` (HxWx3 uint8 RGB). `StageChain` runs a list of them,
each stage's output feeding the next, and checks that over a chunk every stage returns exactly one
frame per input frame.
"""
import json
import re

from .ffmpeg import VideoError


class FrameStage:
    """One step of `process_video`: frames in, the same number of frames out over each chunk.

    `push` may return fewer frames than it got (a temporal window holding frames back) as long as
    `flush` returns the rest at the chunk end. `reset(start_frame)` is called at the start of every
    chunk with the index (in the whole video, from 0) of the next frame `push` will receive: 0 on a
    fresh run, the first unfinished chunk's first frame on a resumed one. It must clear per-chunk
    state, so that chunks (and resumed runs) are independent; a stage whose work depends on the
    frame's position (audio window per frame, face tracks) takes it from here.

    `identity()` returns every parameter that changes the output (JSON-serialisable: a string or a
    dict; for a model: its weights' sha256, precision, tile, ...). It is part of the resume key: a
    run whose stages' identities differ from the interrupted run's starts over and logs what changed.
    """

    label = None  # short name for the progress bar; None: derived from identity() or the class name

    def reset(self, start_frame):
        pass

    def push(self, frames):
        return list(frames)

    def flush(self):
        return []

    def identity(self):
        return stable_repr(self)


class _FunctionStage(FrameStage):
    """A plain function as a stage. Its resume identity: its own `identity` attribute (a value or a
    callable) when set, else its module and qualified name."""

    def __init__(self, fn):
        self.fn = fn
        self.label = getattr(fn, "__name__", type(fn).__name__)

    def push(self, frames):
        return self.fn(list(frames))

    def identity(self):
        fn = self.fn
        ident = getattr(fn, "identity", None)
        if ident is not None:
            return ident() if callable(ident) else ident
        if hasattr(fn, "__qualname__"):
            return f"{getattr(fn, '__module__', '')}.{fn.__qualname__}"
        return stable_repr(fn)


def stable_repr(obj):
    """repr without memory addresses (`<X object at 0x7f..>` differs between runs)."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(obj))


def as_stages(stages):
    """`stages` (one stage, a function, or a list of them) as a list of stage objects."""
    if stages is None:
        return []
    if isinstance(stages, FrameStage) or callable(stages) and not isinstance(stages, (list, tuple)):
        stages = [stages]
    out = []
    for s in stages:
        if isinstance(s, FrameStage) or all(hasattr(s, a) for a in ("reset", "push", "flush")):
            out.append(s)
        elif callable(s):
            out.append(_FunctionStage(s))
        else:
            raise VideoError(f"a stage must be a FrameStage or a function of a frame list, got {type(s).__name__}")
    return out


def stage_identity(stage):
    """The stage's `identity()` as a JSON value (str, number, list or dict)."""
    fn = getattr(stage, "identity", None)
    ident = fn() if callable(fn) else stable_repr(stage)
    return json.loads(json.dumps(ident, sort_keys=True, default=str))  # tuples -> lists, as read back


def stage_label(stage, i):
    """A short name for a stage's progress bar: its `label` attribute, the `stage` entry or the first
    name of its identity (e.g. 'RealSRPredictor'), or its class name."""
    label = getattr(stage, "label", None)
    if not label:
        ident = stage_identity(stage)
        if isinstance(ident, dict):
            ident = str(ident.get("stage", ""))
        m = re.match(r"[A-Za-z_][\w.]*", str(ident))
        label = m.group(0).rsplit(".", 1)[-1] if m else type(stage).__name__
    return str(label)[:24] or f"stage {i + 1}"


class StageChain:
    """Runs frames through the stages, counting per stage to enforce count in == count out."""

    def __init__(self, stages):
        self.stages = stages
        self.identities = [stage_identity(s) for s in stages]
        self.names = [stage_label(s, i) for i, s in enumerate(stages)]
        self.on_output = None  # on_output(i, n): stage i returned n frames
        self.n_in = [0] * len(stages)
        self.n_out = [0] * len(stages)

    def reset(self, start_frame):
        """Start a chunk whose first frame has index `start_frame` in the video."""
        for s in self.stages:
            s.reset(int(start_frame))
        self.n_in = [0] * len(self.stages)
        self.n_out = [0] * len(self.stages)

    def _out(self, i, frames, chunk):
        frames = list(frames) if frames is not None else []
        self.n_out[i] += len(frames)
        if self.on_output is not None and frames:
            self.on_output(i, len(frames))
        if self.n_out[i] > self.n_in[i]:
            raise VideoError(f"stage {self.names[i]} returned {self.n_out[i]} frames for {self.n_in[i]} input "
                             f"frames in chunk {chunk}; a stage must return one frame per input frame")
        return frames

    def push(self, frames, chunk, first=0):
        for i in range(first, len(self.stages)):
            if not frames:
                return []
            self.n_in[i] += len(frames)
            frames = self._out(i, self.stages[i].push(frames), chunk)
        return frames

    def flush(self, chunk):
        out = []
        for i, s in enumerate(self.stages):
            rest = self._out(i, s.flush(), chunk)
            out += self.push(rest, chunk, i + 1)
        for i, name in enumerate(self.names):
            if self.n_in[i] != self.n_out[i]:
                raise VideoError(f"stage {name} returned {self.n_out[i]} frames for {self.n_in[i]} input frames "
                                 f"in chunk {chunk}; over a chunk a stage must return exactly one frame per input "
                                 f"frame (hold frames back in push(), return them from flush())")
        return out

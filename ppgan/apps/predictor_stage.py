"""Predictors as stages of the video pipeline (`ppgan.video.process_video`).

`PredictorStage` is the one base class. It names the progress bar after the predictor, hands the
pipeline's batches to `predictor.predict_batch` (one batch on the device for apps with a tensor
path), remembers the index of the next frame (`reset(start_frame)`), and builds the resume
identity from the predictor, so a video job continues only with the same model:

    stage        the predictor's class
    model        its catalogue name
    weights      sha256 of each weight file it loaded (`ppgan.weights.file_sha256`, cached)
    precision    the dtype the net computes in ('float32', 'float16', 'bfloat16')
    tile, overlap  the spatial tiling (None: from the device's memory)
    ...          the app's own parameters (`predictor.stage_params()`: render factor, window, ...)

Apps with state across frames subclass it in their own module (DeOldify's chroma smoothing,
EDVR's sliding window, BasicVSR's clips).
"""

from ..video import FrameStage


def precision_of(predictor):
    """The dtype the predictor's net computes in, as a string ('float32', 'float16', ...)."""
    return str(predictor.compute_dtype).replace("torch.", "")


def predictor_identity(predictor):
    """Everything about `predictor` that changes its output: the resume key of its video stage."""
    from ..weights import file_sha256

    ident = {"stage": type(predictor).__name__, "model": getattr(predictor, "model_name", None),
             "weights": [file_sha256(path) for path in predictor.weight_files],
             "precision": precision_of(predictor), "tile": getattr(predictor, "tile", None),
             "overlap": getattr(predictor, "tile_overlap", None)}
    ident.update(predictor.stage_params())
    return ident


class PredictorStage(FrameStage):
    """`predictor` as a `FrameStage`: frames go through `predictor.predict_batch`.

    Args:
        predictor (ImagePredictor): a loaded predictor (its `weight_files`, `net` and settings
            make up `identity()`).
    """

    def __init__(self, predictor):
        self.pred = predictor
        self.label = type(predictor).__name__
        self.start_frame = 0  # index in the video of the current chunk's first frame (from reset)

    def reset(self, start_frame):
        self.start_frame = int(start_frame)

    def push(self, frames):
        return self.pred.predict_batch(list(frames))

    def identity(self):
        return predictor_identity(self.pred)

"""Several apps chained on one input: `EnhancePipeline([DeOldifyPredictor(), RealSRPredictor()])`.

For a video every predictor contributes its streaming stage(s), so frames flow decode ->
stage 1 -> stage 2 -> ... -> encode in one pass: no intermediate video files, no frame dumps.
For an image the predictors' `predict` run one after the other.
"""
from ..utils.errors import ConfigError
from .base_predictor import ImagePredictor


class EnhancePipeline(ImagePredictor):
    """Args:
        predictors (list[ImagePredictor]): applied in this order (all on the same device).
        output (str): output folder; results go to `<output>/VideoEnhance/`.
    """

    name = "VideoEnhance"

    def __init__(self, predictors, output="output", verbose=True):
        if not predictors:
            raise ConfigError("EnhancePipeline needs at least one predictor")
        first = predictors[0]
        self.predictors = list(predictors)
        self.output = output
        self.device, self.half, self.verbose = first.device, first.half, verbose
        self.stats = first.stats
        self.suffix = "_" + "_".join(type(p).__name__.replace("Predictor", "").lower() for p in predictors)
        self.keep_gray = all(p.keep_gray for p in predictors)
        self.tile_progress = False

    def predict(self, img):
        for p in self.predictors:
            shown, p.tile_progress = getattr(p, "tile_progress", False), self.tile_progress  # `run` on one image: tiles shown
            try:
                img = p.predict(img)
            finally:
                p.tile_progress = shown
        return img

    def video_stages(self):
        return [s for p in self.predictors for s in p.video_stages()]

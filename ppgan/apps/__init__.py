"""One-shot applications: thin predictors over the library's generators.

Each is importable from here (`from ppgan.apps import RealSRPredictor`) and has a CLI in
`applications/tools/`."""
from .base_predictor import BasePredictor, ImagePredictor
from .deoldify_predictor import DeOldifyPredictor
from .edvr_predictor import BasicVSRPredictor, EDVRPredictor
from .enhance_pipeline import EnhancePipeline
from .gan_predictor import GANPredictor
from .realsr_predictor import RealSRPredictor

__all__ = ["BasePredictor", "ImagePredictor", "GANPredictor", "RealSRPredictor", "EDVRPredictor",
           "BasicVSRPredictor", "DeOldifyPredictor", "EnhancePipeline"]

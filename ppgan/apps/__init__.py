from .base_predictor import BasePredictor
from .gan_predictor import GANPredictor

__all__ = ["BasePredictor", "GANPredictor"]

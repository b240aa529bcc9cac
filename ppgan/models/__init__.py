from . import criterions, discriminators, generators  # noqa: F401  (fill the registries)
from .base_model import BaseModel
from .builder import MODELS, build_model
from .gan_model import DCGANModel, GANModel

__all__ = ["MODELS", "build_model", "BaseModel", "GANModel", "DCGANModel"]
from .pix2pix_model import Pix2PixModel
from .cycle_gan_model import CycleGANModel
from .ugatit_model import UGATITModel

__all__ += ["Pix2PixModel", "CycleGANModel", "UGATITModel"]

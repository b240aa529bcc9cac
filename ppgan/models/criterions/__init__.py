from .builder import CRITERIONS, build_criterion
from .gan_loss import GANLoss, gradient_penalty, r1_penalty
from .pixel_loss import CharbonnierLoss, L1Loss, MSELoss

__all__ = ["CRITERIONS", "build_criterion", "GANLoss", "gradient_penalty", "r1_penalty",
           "L1Loss", "MSELoss", "CharbonnierLoss"]
from .pixel_loss import BCEWithLogitsLoss

__all__ += ["BCEWithLogitsLoss"]
from .perceptual_loss import PerceptualLoss

__all__ += ["PerceptualLoss"]
from .pixel_loss import EdgeLoss, PSNRLoss

__all__ += ["EdgeLoss", "PSNRLoss"]
from .ssim import SSIM

__all__ += ["SSIM"]

from . import criterions, discriminators, generators  # noqa: F401  (fill the registries)
from .base_model import BaseModel
from .builder import MODELS, build_model
from .gan_model import DCGANModel, GANModel

__all__ = ["MODELS", "build_model", "BaseModel", "GANModel", "DCGANModel"]
from .pix2pix_model import Pix2PixModel
from .cycle_gan_model import CycleGANModel
from .ugatit_model import UGATITModel

__all__ += ["Pix2PixModel", "CycleGANModel", "UGATITModel"]
from .sr_model import BaseSRModel, RCANModel
from .esrgan_model import ESRGAN
from .edvr_model import EDVRModel
from .basicvsr_model import BasicVSRModel

__all__ += ["BaseSRModel", "RCANModel", "ESRGAN", "EDVRModel", "BasicVSRModel"]
from .wav2lip_model import SyncNetModel, Wav2LipModel, Wav2LipModelHq
from .firstorder_model import FirstOrderModel, FirstOrderModelMobile
from .styleganv2_model import StyleGAN2Model
from .progressive_gan_model import ProgressiveGAN

__all__ += ["SyncNetModel", "Wav2LipModel", "Wav2LipModelHq", "FirstOrderModel", "FirstOrderModelMobile",
            "StyleGAN2Model", "ProgressiveGAN"]
from .stargan_model import StarGANModel  # noqa: F401,E402 (issue 16)
from .nafnet_model import NAFNetModel  # noqa: F401,E402 (issue 18, R1)
from .swinir_model import SwinIRModel  # noqa: F401,E402 (issue 18, R1)
from .starganv2_model import StarGANv2Model  # noqa: F401,E402 (issue 16)
from .prenet_model import PReNetModel  # noqa: F401,E402 (issue 18, R3)
from .drn_model import DRN  # noqa: F401,E402 (issue 18, R3)
from .mpr_model import MPRModel  # noqa: F401,E402 (issue 18, R2)
from .invdn_model import InvDNModel  # noqa: F401,E402 (issue 18, R2)
from .msvsr_model import MultiStageVSRModel  # noqa: F401,E402 (issue 18, R4)
from .vae_model import VAEModel  # noqa: F401,E402 (issue 17)
from .biggan_model import BigGANModel  # noqa: F401,E402 (issue 17)
from .stackgan_model import StackGANModel  # noqa: F401,E402 (issue 17)
from .vid2vid_model import Vid2VidModel  # noqa: F401,E402 (issue 17)

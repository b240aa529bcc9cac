from .builder import GENERATORS, build_generator
from .classic_dcgan import ClassicDCGenerator
from .dcgenerator import DCGenerator
from .deep_conv import ConditionalDeepConvGenerator, DeepConvGenerator
from .mlp import MLPGenerator

__all__ = ["GENERATORS", "build_generator", "DCGenerator", "DeepConvGenerator",
           "ConditionalDeepConvGenerator", "MLPGenerator", "ClassicDCGenerator"]
from .rrdb_net import RRDBNet
from .lesrcnn import LESRCNNGenerator
from .pan import PAN

__all__ += ["RRDBNet", "LESRCNNGenerator", "PAN"]
from .unet import UnetGenerator
from .resnet import ResnetGenerator
from .resnet_ugatit import ResnetUGATITGenerator
from .resnet_ugatit_p2c import ResnetUGATITP2CGenerator

__all__ += ["UnetGenerator", "ResnetGenerator", "ResnetUGATITGenerator", "ResnetUGATITP2CGenerator"]
from .edvr import EDVRNet
from .basicvsr import BasicVSRNet

__all__ += ["EDVRNet", "BasicVSRNet"]
from .rcan import RCAN
from .msrresnet import MSRResNet

__all__ += ["RCAN", "MSRResNet"]
from .occlusion_aware import OcclusionAwareGenerator

__all__ += ["OcclusionAwareGenerator"]
from .deoldify import Deoldify  # noqa: F401 (registered; deoldify.build_model builds PaddleGAN's two nets)
from .srvgg import RescaledSR, SRVGGNetCompact

__all__ += ["SRVGGNetCompact", "RescaledSR"]
from .wav2lip import Wav2Lip

__all__ += ["Wav2Lip"]
from .generator_styleganv2 import StyleGANv2Generator  # noqa: F401,E402 (issue 15)
from .generator_pggan import PGGANGenerator  # noqa: F401,E402 (issue 15)
from .generator_stargan import StarGANGenerator  # noqa: F401,E402 (issue 16)
from .generator_starganv2 import FAN, StarGANv2Generator, StarGANv2Mapping, StarGANv2Style  # noqa: F401,E402 (issue 16)
from .nafnet import NAFNet  # noqa: F401,E402 (issue 18, R1)
from .swinir import SwinIR  # noqa: F401,E402 (issue 18, R1)
from .prenet import PReNet  # noqa: F401,E402 (issue 18, R3)
from .drn import DRNGenerator  # noqa: F401,E402 (issue 18, R3)
from .mpr import MPRNet  # noqa: F401,E402 (issue 18, R2)
from .invdn import InvDN  # noqa: F401,E402 (issue 18, R2)
from .basicvsr_plus_plus import BasicVSRPlusPlus  # noqa: F401,E402 (issue 18, R4)
from .msvsr import MSVSR  # noqa: F401,E402 (issue 18, R4)
from .iconvsr import IconVSR  # noqa: F401,E402 (issue 18, R4)
from .vae import VAEDecoder, VAEEncoder  # noqa: F401,E402 (issue 17)
from .biggan import BigGANGenerator  # noqa: F401,E402 (issue 17)
from .stackgan import StackGANStageI, StackGANStageII  # noqa: F401,E402 (issue 17)
from .vid2vid import Vid2VidGenerator  # noqa: F401,E402 (issue 17)

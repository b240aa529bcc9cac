from .builder import DISCRIMINATORS, build_discriminator
from .classic_dcgan import ClassicDCDiscriminator
from .dcdiscriminator import DCDiscriminator
from .mlp import MLPDiscriminator
from .nlayers import NLayerDiscriminator, NLayerDiscriminatorWithClassification

__all__ = ["DISCRIMINATORS", "build_discriminator", "DCDiscriminator", "NLayerDiscriminator",
           "NLayerDiscriminatorWithClassification", "MLPDiscriminator", "ClassicDCDiscriminator"]
from .discriminator_ugatit import UGATITDiscriminator

__all__ += ["UGATITDiscriminator"]
from .vgg_discriminator import VGGDiscriminator128

__all__ += ["VGGDiscriminator128"]
from .syncnet import SyncNetColor
from .wav2lip_disc_qual import Wav2LipDiscQual

__all__ += ["SyncNetColor", "Wav2LipDiscQual"]
from .discriminator_firstorder import FirstOrderDiscriminator

__all__ += ["FirstOrderDiscriminator"]
from .discriminator_styleganv2 import StyleGANv2Discriminator  # noqa: F401,E402 (issue 15)
from .discriminator_pggan import PGGANDiscriminator  # noqa: F401,E402 (issue 15)
from .discriminator_stargan import StarGANDiscriminator  # noqa: F401,E402 (issue 16)
from .discriminator_starganv2 import StarGANv2Discriminator  # noqa: F401,E402 (issue 16)
from .discriminator_biggan import BigGANDiscriminator  # noqa: F401,E402 (issue 17)
from .discriminator_stackgan import StackGANDiscriminator  # noqa: F401,E402 (issue 17)
from .discriminator_vid2vid import Vid2VidDiscriminator  # noqa: F401,E402 (issue 17)

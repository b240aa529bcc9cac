from .builder import GENERATORS, build_generator
from .classic_dcgan import ClassicDCGenerator
from .dcgenerator import DCGenerator
from .deep_conv import ConditionalDeepConvGenerator, DeepConvGenerator
from .mlp import MLPGenerator

__all__ = ["GENERATORS", "build_generator", "DCGenerator", "DeepConvGenerator",
           "ConditionalDeepConvGenerator", "MLPGenerator", "ClassicDCGenerator"]

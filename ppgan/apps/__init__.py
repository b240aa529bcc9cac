"""One-shot applications: thin predictors over the library's generators.

Each is importable from here (`from ppgan.apps import RealSRPredictor`) and has a CLI in
`applications/tools/`. The predictors are imported on first use (PEP 562), so that
`from ppgan.apps import cli_args` (every CLI, before parsing its arguments) does not load torch:
`--help` and argument errors answer at once."""
import importlib

_WHERE = {"BasePredictor": "base_predictor", "ImagePredictor": "base_predictor",
          "DeOldifyPredictor": "deoldify_predictor", "EDVRPredictor": "edvr_predictor",
          "BasicVSRPredictor": "edvr_predictor", "EnhancePipeline": "enhance_pipeline",
          "GANPredictor": "gan_predictor", "RealSRPredictor": "realsr_predictor",
          "Photo2CartoonPredictor": "photo2cartoon_predictor", "FirstOrderPredictor": "first_order_predictor",
          "Wav2LipPredictor": "wav2lip_predictor", "StyleGANv2Predictor": "styleganv2_predictor",
          "StyleGANv2MixingPredictor": "styleganv2_predictor", "StyleGANv2FittingPredictor": "styleganv2_predictor",
          "StarGANPredictor": "stargan_predictor", "StarGANv2Predictor": "stargan_predictor",
          "SwinIRPredictor": "restoration_predictor", "NAFNetPredictor": "restoration_predictor",
          "MPRPredictor": "restoration_predictor", "InvDNPredictor": "restoration_predictor",
          "IconVSRPredictor": "edvr_predictor", "BasicVSRPlusPlusPredictor": "edvr_predictor",
          "BasiVSRPlusPlusPredictor": "edvr_predictor", "PPMSVSRPredictor": "edvr_predictor",
          "PPMSVSRLargePredictor": "edvr_predictor",
          "DiscriminatorSampler": "d_sampler_predictor", "Vid2VidPredictor": "vid2vid_predictor",
          "TextToImagePredictor": "text2image_predictor"}

__all__ = ["BasePredictor", "ImagePredictor", "GANPredictor", "RealSRPredictor", "EDVRPredictor",
           "BasicVSRPredictor", "DeOldifyPredictor", "EnhancePipeline", "Photo2CartoonPredictor",
           "FirstOrderPredictor", "Wav2LipPredictor", "StyleGANv2Predictor", "StyleGANv2MixingPredictor",
           "StyleGANv2FittingPredictor", "StarGANPredictor", "StarGANv2Predictor",
           "SwinIRPredictor", "NAFNetPredictor", "MPRPredictor", "InvDNPredictor",
           "IconVSRPredictor", "BasicVSRPlusPlusPredictor", "BasiVSRPlusPlusPredictor", "PPMSVSRPredictor",
           "PPMSVSRLargePredictor", "DiscriminatorSampler", "Vid2VidPredictor", "TextToImagePredictor"]


def __getattr__(name):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))

from ..utils.registry import Registry

MODELS = Registry("model")


def build_model(cfg):
    """Build the model named by `cfg['name']`; the other keys are its constructor arguments."""
    return MODELS.build(cfg)

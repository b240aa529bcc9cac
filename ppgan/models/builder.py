from ..utils.registry import Registry

MODELS = Registry("model")


def build_model(cfg):
    """Build the model named by `cfg['name']`; the other keys are its constructor arguments."""
    return MODELS.build(cfg)


def check_model_config(cfg):
    """Check a model config's names, keys and value types, and those of the nets it names, without
    building anything (so a wrong `-o model.generator.ngf=16.5` fails before the data is loaded)."""
    from .discriminators.builder import DISCRIMINATORS
    from .generators.builder import GENERATORS

    MODELS.check(cfg)
    for key, sub in cfg.items():
        if isinstance(sub, dict) and "name" in sub:
            if "generator" in key and sub["name"] in GENERATORS:
                GENERATORS.check(sub)
            elif "discriminator" in key and sub["name"] in DISCRIMINATORS:
                DISCRIMINATORS.check(sub)

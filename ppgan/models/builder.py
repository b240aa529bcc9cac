from ..utils.registry import Registry

MODELS = Registry("model")


def build_model(cfg):
    """Build the model named by `cfg['name']`; the other keys are its constructor arguments."""
    return MODELS.build(cfg)


def net_keys(model_cfg):
    """The config keys that name a net architecture ('generator', 'discriminator', ...)."""
    return sorted((k for k, v in model_cfg.items()
                   if isinstance(v, dict) and "name" in v and ("generator" in k or "discriminator" in k)),
                  key=lambda k: ("discriminator" in k, k))  # generators first


def describe_model(model_cfg):
    """'DCGANModel (generator DCGenerator, discriminator DCDiscriminator)' for a model config."""
    nets = ", ".join(f"{k} {model_cfg[k]['name']}" for k in net_keys(model_cfg))
    return f"{model_cfg.get('name', '?')}" + (f" ({nets})" if nets else "")


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

from ...utils.registry import Registry

DISCRIMINATORS = Registry("discriminator")


def build_discriminator(cfg):
    """Build the discriminator named by `cfg['name']` (cfg is not modified)."""
    return DISCRIMINATORS.build(cfg)

from ...utils.registry import Registry

GENERATORS = Registry("generator")


def build_generator(cfg):
    """Build the generator named by `cfg['name']` (cfg is not modified)."""
    return GENERATORS.build(cfg)

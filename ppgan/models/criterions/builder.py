from ...utils.registry import Registry

CRITERIONS = Registry("criterion")


def build_criterion(cfg):
    """Build the loss named by `cfg['name']` (cfg is not modified)."""
    return CRITERIONS.build(cfg)

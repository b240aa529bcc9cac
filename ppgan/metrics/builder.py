from ..utils.registry import Registry

METRICS = Registry("metric")


def build_metric(cfg):
    """Build the metric named by `cfg['name']`; the other keys are its constructor arguments.

    `cfg` is one entry of a config's `validate.metrics` mapping, e.g.
    `{'name': 'PSNR', 'crop_border': 4, 'test_y_channel': True}`; it is not modified.
    """
    return METRICS.build(cfg)

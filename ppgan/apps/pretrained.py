"""Pretrained nets of the apps: a catalogue entry (`ppgan.weights.catalog`) built by the
GENERATORS registry and filled through `ppgan.weights.load` (strict)."""
from ..models.generators import build_generator
from ..weights import get_spec, load, load_into


def build_arch(spec):
    """Build `spec`'s generator with its kwargs (random weights)."""
    return build_generator(get_spec(spec).config())


def build_pretrained(name_or_spec, weight_path=None, device="cpu", download=True):
    """Build a model variant with its pretrained weights, in eval mode on `device`.

    Args:
        name_or_spec (str | WeightSpec): a catalogue name or a spec.
        weight_path (str | None): a weight file that overrides the spec's sources (any format
            `ppgan.weights.load` reads).
        device (str | torch.device): where to put the net.
        download (bool): allow a download when the weights are nowhere local.
    Returns:
        (nn.Module, Weights): the generator, wrapped in `RescaledSR` when the spec has `rescale`
        (the resize has no weights; ncnn graphs include it as their last layer, checked by the
        reader), and what was loaded (`Weights.files` are the files read).
    """
    spec = get_spec(name_or_spec)
    weights = load(spec, weight_path=weight_path, download=download)
    net = load_into(build_arch(spec), weights)
    if spec.rescale:
        from ..models.generators.srvgg import RescaledSR

        net = RescaledSR(net, spec.rescale)
    return net.to(device).eval(), weights


def build_from_spec(name_or_spec, weight_path=None, device="cpu", download=True):
    """`build_pretrained` without the `Weights`: just the net."""
    return build_pretrained(name_or_spec, weight_path, device, download)[0]

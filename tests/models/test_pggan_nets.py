"""PGGAN nets: shapes at every depth, the fade-in (alpha = 0 is the previous depth upsampled /
fed a downsampled image, alpha = 1 the new block alone), equalised learning rate, pixel norm,
minibatch stddev, gradients and bad arguments."""
import pytest
import torch
import torch.nn.functional as F

from ppgan.models.discriminators import DISCRIMINATORS, build_discriminator
from ppgan.models.discriminators.discriminator_pggan import PGGANDiscriminator
from ppgan.models.generators import GENERATORS, build_generator
from ppgan.models.generators.generator_pggan import PGGANGenerator, pggan_channels
from ppgan.modules.equalized import EqualConv2D
from ppgan.utils.errors import ConfigError

SMALL = {"fmap_base": 64, "fmap_max": 32}


def _nets(size=32, latent_dim=16, seed=0, **kwargs):
    torch.manual_seed(seed)
    kw = {**SMALL, **kwargs}
    return PGGANGenerator(size, latent_dim=latent_dim, **kw), PGGANDiscriminator(size, **kw)


@pytest.mark.parametrize("size, latent_dim, batch", [(4, 8, 2), (16, 16, 3), (32, 16, 4), (64, 8, 2)])
def test_shapes_at_every_depth(size, latent_dim, batch):
    g, d = _nets(size, latent_dim)
    assert g.max_depth == d.max_depth == size.bit_length() - 3
    z = g.random_inputs(batch)
    assert z.shape == (batch, latent_dim)
    for depth in range(g.max_depth + 1):
        res = 4 * 2 ** depth
        for alpha in (0.0, 0.3, 1.0):
            img = g(z, depth, alpha)
            assert img.shape == (batch, 3, res, res) and torch.isfinite(img).all()
            logits = d(img, depth, alpha)
            assert logits.shape == (batch, 1) and torch.isfinite(logits).all()
    assert g(z).shape == (batch, 3, size, size)  # default: the final depth
    assert g(z[:, :, None, None]).shape == (batch, 3, size, size)  # [N, C, 1, 1] latents too


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_generator_fade_in(depth):
    g, _ = _nets(32)
    z = torch.randn(3, 16)
    with torch.no_grad():
        prev = g(z, depth - 1, 1.0)
        faded0 = g(z, depth, 0.0)
        new = g(z, depth, 1.0)
        half = g(z, depth, 0.5)
    torch.testing.assert_close(faded0, F.interpolate(prev, scale_factor=2, mode="nearest"))
    torch.testing.assert_close(half, 0.5 * new + 0.5 * faded0)
    assert (new - faded0).abs().max() > 1e-3
    # alpha = 1 is the new block alone: the previous toRGB does not matter
    with torch.no_grad():
        g.to_rgbs[depth - 1].weight.add_(1.0)
        torch.testing.assert_close(g(z, depth, 1.0), new)
        assert (g(z, depth, 0.0) - faded0).abs().max() > 1e-3


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_discriminator_fade_in(depth):
    _, d = _nets(32)
    res = 4 * 2 ** depth
    x = torch.randn(4, 3, res, res)
    with torch.no_grad():
        faded0 = d(x, depth, 0.0)
        prev = d(F.avg_pool2d(x, 2), depth - 1, 1.0)
        new = d(x, depth, 1.0)
    torch.testing.assert_close(faded0, prev)
    assert (new - faded0).abs().max() > 1e-4
    with torch.no_grad():
        d.from_rgbs[depth - 1][0].weight.add_(1.0)
        torch.testing.assert_close(d(x, depth, 1.0), new)


def test_pixel_norm_and_equalised_lr():
    g, d = _nets(16)
    feats = {}
    g.blocks[1].register_forward_hook(lambda m, i, o: feats.setdefault("x", o))
    g(torch.randn(2, 16) * 50, 1)
    # every feature vector has unit mean square after pixel norm
    torch.testing.assert_close(feats["x"].pow(2).mean(1), torch.ones(2, 8, 8), atol=1e-4, rtol=1e-4)
    convs = [m for m in list(g.modules()) + list(d.modules()) if isinstance(m, EqualConv2D)]
    assert convs
    for m in convs:  # weights N(0, 1) scaled at run time by 1/sqrt(fan_in)
        fan_in = m.weight[0].numel()
        assert abs(m.scale - fan_in ** -0.5) < 1e-9
    # a latent's scale does not matter with the input pixel norm
    z = torch.randn(2, 16)
    torch.testing.assert_close(g(z), g(z * 7))


def test_minibatch_stddev_feature():
    """The discriminator sees the batch spread: a sample's score depends on the others in its group."""
    _, d = _nets(16)
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        a = d(x)
        y = x.clone()
        y[1:] = y[1:] * 5
        b = d(y)
    assert (a[0] - b[0]).abs() > 1e-5
    torch.manual_seed(0)
    d0 = PGGANDiscriminator(16, mbstd_group_size=0, **SMALL)
    with torch.no_grad():
        y0 = d0(y)[0]
        assert torch.allclose(d0(x)[0], y0)


def test_channels():
    assert [pggan_channels(s) for s in range(1, 10)] == [512, 512, 512, 512, 256, 128, 64, 32, 16]
    g, d = _nets(32)
    assert g.channels == d.channels == [32, 16, 8, 4]
    assert g.blocks[3][0][0].weight.shape == (4, 8, 3, 3)
    assert d.blocks[3][1][0].weight.shape == (8, 4, 3, 3)


def test_gradients_flow():
    g, d = _nets(16)
    z = torch.randn(4, 16)
    loss = F.softplus(-d(g(z, 2, 0.5), 2, 0.5)).mean()
    loss.backward()
    # at depth 2 every layer takes part except the depth-0 toRGB / fromRGB (and the larger ones)
    unused = ("to_rgbs.0.", "from_rgbs.0.")
    for name, p in list(g.named_parameters()) + list(d.named_parameters()):
        if name.startswith(unused):
            assert p.grad is None, name
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    # the faded-out layers get gradients too while 0 < alpha < 1
    assert g.to_rgbs[1].weight.grad.abs().sum() > 0 and d.from_rgbs[1][0].weight.grad.abs().sum() > 0
    # R1 double backward
    real = torch.randn(4, 3, 16, 16, requires_grad=True)
    (grad,) = torch.autograd.grad(d(real, 2, 0.5).sum(), real, create_graph=True)
    grad.pow(2).sum().backward()


def test_registered_and_built():
    assert GENERATORS.get("PGGANGenerator") is PGGANGenerator
    assert DISCRIMINATORS.get("PGGANDiscriminator") is PGGANDiscriminator
    g = build_generator({"name": "PGGANGenerator", "size": 8, "latent_dim": 4, **SMALL})
    d = build_discriminator({"name": "PGGANDiscriminator", "size": 8, **SMALL})
    assert d(g(torch.randn(2, 4), 1, 0.5), 1, 0.5).shape == (2, 1)


@pytest.mark.parametrize("call, match", [
    (lambda g, d: PGGANGenerator(24), "power of two"),
    (lambda g, d: PGGANDiscriminator(2), "power of two"),
    (lambda g, d: g(torch.randn(1, 16), 4), "depth"),
    (lambda g, d: g(torch.randn(1, 16), -1), "depth"),
    (lambda g, d: g(torch.randn(1, 16), 1, 1.5), "alpha"),
    (lambda g, d: d(torch.randn(1, 3, 16, 16), 1), r"\[N, 3, 8, 8\]"),
    (lambda g, d: d(torch.randn(1, 3, 8, 8), 1, -0.1), "alpha"),
])
def test_bad_arguments(call, match):
    g, d = _nets(32)
    with pytest.raises(ConfigError, match=match):
        call(g, d)

"""PaddleGAN parity: DCGAN generator/discriminator and the conditional generator compute what
PaddleGAN computes for the same weights (fixtures made by PaddleGAN's own code)."""
import pytest
import torch
from parity import Fixture

from ppgan.models.discriminators import DISCRIMINATORS
from ppgan.models.generators import GENERATORS
from ppgan.weights import load_paddle_state_dict


@pytest.mark.parametrize("fixture, registry, name", [
    ("dcgan_generator", GENERATORS, "DCGenerator"),
    ("dcgan_discriminator", DISCRIMINATORS, "DCDiscriminator"),
    ("cond_dcgan_generator", GENERATORS, "ConditionalDeepConvGenerator"),
    ("pix2pix_nlayer_disc", DISCRIMINATORS, "NLayerDiscriminator"),
])
def test_parity(fixture, registry, name):
    fx = Fixture(fixture)
    assert fx.meta["paddlegan_class"].endswith("." + name)
    net = registry.build(dict(fx.kwargs, name=name)).eval()
    load_paddle_state_dict(net, fx.paddle_state_dict(), strict=True)
    with torch.no_grad():
        out = net(*fx.inputs)
    fx.assert_matches(out)
    # sensitivity: a wrong weight layout would not pass; perturbing a weight moves the output
    sd = fx.paddle_state_dict()
    last = [k for k in sd if k.endswith(("weight", "bias"))][-1]  # (a first conv is undone by BN)
    sd[last] = sd[last] * 1.5 + 0.1
    load_paddle_state_dict(net, sd)
    with torch.no_grad():
        moved = net(*fx.inputs)
    assert (moved - out).abs().max() > 10 * fx.meta["atol"]


@pytest.mark.parametrize("kwargs, z_shape, out_shape", [
    ({"input_nz": 16, "input_nc": 1, "output_nc": 3, "ngf": 8, "output_size": 32}, (2, 16, 1, 1), (2, 3, 32, 32)),
    ({"input_nz": 16, "input_nc": 1, "output_nc": 1, "ngf": 4, "output_size": 128, "norm_type": "instance"},
     (1, 16), (1, 1, 128, 128)),
])
def test_dcgenerator_other_sizes(kwargs, z_shape, out_shape):
    g = GENERATORS.build(dict(kwargs, name="DCGenerator"))
    assert g(torch.randn(*z_shape)).shape == out_shape


@pytest.mark.parametrize("size", [8, 32, 128])
def test_dcdiscriminator_other_sizes(size):
    d = DISCRIMINATORS.build({"name": "DCDiscriminator", "input_nc": 3, "ndf": 4, "input_size": size,
                              "norm_type": "batch"})
    assert d(torch.randn(2, 3, size, size)).shape == (2, 1, 1, 1)


def test_size_validation():
    with pytest.raises(ValueError, match="power of two"):
        GENERATORS.build({"name": "DCGenerator", "input_nz": 4, "input_nc": 1, "output_nc": 1, "output_size": 48})
    with pytest.raises(ValueError, match="divisible by 4"):
        GENERATORS.build({"name": "DeepConvGenerator", "latent_dim": 4, "output_nc": 1, "size": 30})


def test_conditional_nets_use_the_class():
    g = GENERATORS.build({"name": "ConditionalDeepConvGenerator", "latent_dim": 8, "output_nc": 1, "size": 16,
                          "ngf": 4, "n_class": 10}).eval()
    z = torch.randn(1, 8).repeat(2, 1)
    out = g(z, torch.tensor([3, 4]))
    assert out.shape == (2, 1, 16, 16) and not torch.allclose(out[0], out[1])
    assert torch.allclose(g(z, torch.tensor([3, 13])), g(z, torch.tensor([3, 3])))  # class_id % n_class
    d = DISCRIMINATORS.build({"name": "NLayerDiscriminatorWithClassification", "input_nc": 1, "n_class": 10,
                              "ndf": 4, "n_layers": 2, "norm_type": "batch"}).eval()
    x = torch.randn(1, 1, 16, 16).repeat(2, 1, 1, 1)
    p = d(x, torch.tensor([1, 2]))
    assert not torch.allclose(p[0], p[1])


def test_mlp_latent_plane_and_classic_nets():
    g = GENERATORS.build({"name": "MLPGenerator", "latent_dim": 2, "size": 16}).eval()
    grid = g.latent_grid(5)
    assert grid.shape == (25, 2)
    assert torch.allclose(grid[:5, 1], grid[0, 1].expand(5))          # a row shares its y
    assert (grid[1:5, 0] > grid[:4, 0]).all()                         # x grows along a row
    assert g(grid).shape == (25, 1, 16, 16)
    cg = GENERATORS.build({"name": "ClassicDCGenerator"})
    cd = DISCRIMINATORS.build({"name": "ClassicDCDiscriminator"})
    img = cg(torch.randn(2, 32))
    assert img.shape == (2, 3, 32, 32) and cd(img).shape == (2, 1)
    # the recipe's layers: dense to 16x16x128, 5x5, transposed 4x4 s2, two 5x5, 7x7
    convs = [m for m in cg.convs if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert [m.kernel_size[0] for m in convs] == [5, 4, 5, 5, 7] and cg.dense[0].out_features == 128 * 16 * 16


@pytest.mark.parametrize("norm_type", ["batch", "instance", "spectral", "none"])
@pytest.mark.parametrize("n_layers, size", [(1, 16), (3, 40), (5, 130)])
def test_nlayer_discriminator_other_arguments(norm_type, n_layers, size):
    d = DISCRIMINATORS.build({"name": "NLayerDiscriminator", "input_nc": 2, "ndf": 4, "n_layers": n_layers,
                              "norm_type": norm_type})
    x = torch.randn(2, 2, size, size, requires_grad=True)
    out = d(x)
    side = size
    for _ in range(n_layers):
        side = (side + 2 - 4) // 2 + 1
    side = side - 1 - 1  # two stride-1 4x4 convs with padding 1
    assert out.shape == (2, 1, side, side)
    out.mean().backward()
    assert torch.isfinite(x.grad).all()

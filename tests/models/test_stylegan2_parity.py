"""StyleGAN2 nets: PaddleGAN parity (fixtures in tests/fixtures/parity), other constructor
arguments, style mixing, truncation, gradients, the discriminator, and upfirdn2d against a
direct reference.

Parity: manifest -> rule weights -> `load_paddle_state_dict(strict=True)` -> eval forward with
the fixture's `extra.forward_kwargs` (randomize_noise=False: the noise buffers come from the
file) -> PaddleGAN's recorded outputs.
"""
import os
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))
from parity import Fixture, write_pdparams  # noqa: E402

from ppgan.models.discriminators import DISCRIMINATORS, build_discriminator  # noqa: E402
from ppgan.models.discriminators.discriminator_styleganv2 import (StyleGANv2Discriminator,  # noqa: E402
                                                                  minibatch_stddev)
from ppgan.models.generators import GENERATORS, build_generator  # noqa: E402
from ppgan.models.generators.generator_styleganv2 import ModulatedConv2D, StyleGANv2Generator  # noqa: E402
from ppgan.modules.equalized import EqualConv2D, EqualLinear  # noqa: E402
from ppgan.modules.fused_act import FusedLeakyReLU, fused_leaky_relu  # noqa: E402
from ppgan.modules.upfirdn2d import Blur, Downsample, Upsample, make_kernel, upfirdn2d  # noqa: E402
from ppgan.utils.errors import CheckpointError, ConfigError  # noqa: E402
from ppgan.weights import load_paddle_state_dict  # noqa: E402


# --- parity -------------------------------------------------------------------------------------

def _forward_kwargs(fixture):
    return fixture.meta.get("extra", {}).get("forward_kwargs", {})


def test_parity_equal_linear():
    fixture = Fixture("stylegan2_equal_linear")
    layer = EqualLinear(**fixture.kwargs).eval()
    report = load_paddle_state_dict(layer, fixture.paddle_state_dict(), strict=True)
    assert report["transposed"] == ["weight"]  # Paddle's [in, out] -> PyTorch's [out, in]
    with torch.no_grad():
        out = layer(*fixture.inputs)
    fixture.assert_matches(out)
    # the square weight would also load untransposed: make sure that would have been caught
    state = fixture.paddle_state_dict()
    layer.weight.data.copy_(torch.from_numpy(state["weight"]))
    with torch.no_grad():
        wrong = layer(*fixture.inputs).numpy()
    assert np.abs(wrong - fixture.outputs[0]).max() > 100 * fixture.meta["atol"]


@pytest.fixture(scope="module")
def parity_generator():
    """One generator for both generator fixtures (same kwargs and manifest, so the same weights)."""
    fixture = Fixture("stylegan2_generator")
    model = StyleGANv2Generator(**fixture.kwargs).eval()
    state = fixture.paddle_state_dict()
    report = load_paddle_state_dict(model, state, strict=True)
    return model, report, state


@pytest.mark.parametrize("name", ["stylegan2_generator", "stylegan2_generator_w"])
def test_parity_generator(name, parity_generator):
    fixture = Fixture(name)
    model, report, _ = parity_generator
    assert fixture.kwargs == {"size": 256, "style_dim": 512, "n_mlp": 8}
    # every EqualLinear (8 mapping + 13 convs' and 7 toRGBs' modulations) was transposed
    assert len(report["transposed"]) == 8 + 13 + 7
    assert all(n.endswith("weight") and ("style." in n or "modulation" in n) for n in report["transposed"])
    with torch.no_grad():
        out = model(*fixture.inputs, **_forward_kwargs(fixture))
    assert isinstance(out, tuple) and len(out) == 2
    fixture.assert_matches(out)


def test_pdparams_kernels_and_noise_are_loaded(parity_generator):
    """The skip-upsample kernels and noise buffers come from the file; the blur kernels are not in it."""
    model, _, state = parity_generator
    torch.testing.assert_close(model.to_rgbs[2].upsample.kernel, torch.from_numpy(state["to_rgbs.2.upsample.kernel"]))
    torch.testing.assert_close(model.noises.noise_5, torch.from_numpy(state["noises.noise_5"]))
    assert "convs.0.conv.blur.kernel" not in model.state_dict()
    torch.testing.assert_close(model.convs[0].conv.blur.kernel, make_kernel([1, 3, 3, 1]) * 4)


@pytest.mark.parametrize("in_dim, out_dim, lr_mul, activation", [
    (8, 5, 1, None), (5, 8, 0.01, "fused_lrelu"), (16, 16, 0.1, "fused_lrelu")])
def test_equal_linear_paddle_layout(in_dim, out_dim, lr_mul, activation):
    """A Paddle-layout [in, out] weight loads transposed and computes x @ W * scale + b * lr_mul."""
    rng = np.random.RandomState(in_dim * 100 + out_dim)
    w = rng.randn(in_dim, out_dim).astype(np.float32)
    b = rng.randn(out_dim).astype(np.float32)
    layer = EqualLinear(in_dim, out_dim, lr_mul=lr_mul, activation=activation)
    load_paddle_state_dict(layer, {"weight": w, "bias": b}, strict=True)
    x = rng.randn(3, in_dim).astype(np.float32)
    want = x @ w * (lr_mul / np.sqrt(in_dim)) + b * lr_mul
    if activation:
        want = np.where(want > 0, want, 0.2 * want) * np.sqrt(2)
    with torch.no_grad():
        got = layer(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    if in_dim != out_dim:  # a PyTorch-layout weight in a Paddle file is refused, naming the key
        with pytest.raises(CheckpointError, match="weight"):
            load_paddle_state_dict(layer, {"weight": w.T.copy(), "bias": b}, strict=True)


def test_pdparams_file_round_trip(tmp_path):
    """A small generator and discriminator saved as PaddleGAN would (EqualLinear weights [in, out])
    load strictly from a .pdparams file and give the same outputs."""
    g = _small_generator(16, style_dim=16, seed=1)
    d = StyleGANv2Discriminator(16, narrow=0.0625)
    for net, cls, kwargs in [(g, StyleGANv2Generator, dict(size=16, style_dim=16, n_mlp=2, narrow=0.0625,
                                                           channel_multiplier=1)),
                             (d, StyleGANv2Discriminator, dict(size=16, narrow=0.0625))]:
        state = {}
        for k, v in net.state_dict().items():
            v = v.numpy()
            if isinstance(net.get_submodule(k.rpartition(".")[0]), EqualLinear) and k.endswith("weight"):
                v = v.T.copy()  # Paddle layout
            state[k] = v
        path = write_pdparams(tmp_path / f"{cls.__name__}.pdparams", state)
        torch.manual_seed(99)
        fresh = cls(**kwargs).eval()
        report = load_paddle_state_dict(fresh, path, strict=True)
        assert report["transposed"] and not report["missing"]
        net.eval()
        with torch.no_grad():
            if cls is StyleGANv2Generator:
                z = torch.randn(2, 16)
                torch.testing.assert_close(fresh([z], randomize_noise=False)[0], net([z], randomize_noise=False)[0])
            else:
                x = torch.randn(2, 3, 16, 16)
                torch.testing.assert_close(fresh(x), net(x))


# --- generator: other arguments -----------------------------------------------------------------

def _small_generator(size=16, channel_multiplier=1, narrow=0.0625, seed=0, **kwargs):
    torch.manual_seed(seed)
    kwargs = {"style_dim": 32, "n_mlp": 2, **kwargs}
    return StyleGANv2Generator(size, channel_multiplier=channel_multiplier, narrow=narrow, **kwargs).eval()


@pytest.mark.parametrize("size, channel_multiplier, narrow, style_dim, n_mlp", [
    (16, 1, 0.0625, 32, 2), (32, 2, 0.0625, 32, 2), (64, 1, 0.125, 32, 2), (64, 2, 0.0625, 16, 3),
    (8, 2, 1.0, 32, 2), (4, 1, 0.125, 8, 1)])
def test_generator_other_sizes(size, channel_multiplier, narrow, style_dim, n_mlp):
    g = _small_generator(size, channel_multiplier, narrow, style_dim=style_dim, n_mlp=n_mlp)
    assert g.n_latent == 2 * int(np.log2(size)) - 2 and g.num_layers == 2 * int(np.log2(size)) - 3
    assert len([k for k in g.state_dict() if k.startswith("style.")]) == 2 * n_mlp
    z = torch.randn(3, style_dim)
    with torch.no_grad():
        img, latent = g([z], return_latents=True, randomize_noise=False)
        again, none = g([z], randomize_noise=False)
        noisy, _ = g([z])
    assert img.shape == (3, 3, size, size) and latent.shape == (3, g.n_latent, style_dim)
    assert none is None and torch.isfinite(img).all()
    torch.testing.assert_close(again, img)  # fixed noise buffers: deterministic
    # samples differ from each other
    assert (img[0] - img[1]).abs().max() > 1e-4
    # fresh noise changes the image once the noise weights are non-zero
    if size > 4:
        for m in g.modules():
            if type(m).__name__ == "NoiseInjection":
                m.weight.data.fill_(0.5)
        with torch.no_grad():
            a, _ = g([z])
            b, _ = g([z])
        assert (a - b).abs().max() > 1e-4


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_generator_is_concat(mode):
    """PaddleGAN's GPEN variant: noise concatenated as channels (weights double in width)."""
    g = getattr(StyleGANv2Generator(16, 16, 2, narrow=0.0625, is_concat=True), mode)()
    assert g.conv1.activate.bias.shape == (64,) and g.convs[0].conv.weight.shape == (1, 32, 64, 3, 3)
    with torch.no_grad():
        a, _ = g([torch.randn(2, 16)])
        b, _ = g([torch.randn(2, 16)], randomize_noise=False)
        c, _ = g([torch.randn(2, 16)], noise=[torch.randn(2, 32, r, r) for r in (4, 8, 16)])
    assert a.shape == b.shape == c.shape == (2, 3, 16, 16)


def test_generator_channels():
    g = StyleGANv2Generator(64, 32, 1, channel_multiplier=1, narrow=0.25)
    # the 32 -> 64 px upsampling conv: 512 * 0.25 in, 256 * 1 * 0.25 out
    assert g.convs[-2].conv.weight.shape == (1, 64, 128, 3, 3)
    assert g.convs[-1].conv.weight.shape == (1, 64, 64, 3, 3)
    g2 = StyleGANv2Generator(64, 32, 1, channel_multiplier=2, narrow=0.25)
    assert g2.convs[-2].conv.weight.shape == (1, 128, 128, 3, 3)


@pytest.mark.parametrize("upsample, downsample, demodulate, kernel_size", [
    (False, False, True, 3), (True, False, True, 3), (False, True, True, 3), (False, False, False, 1),
    (True, False, False, 3)])
def test_modulated_conv_unfused_path_is_the_same_maths(upsample, downsample, demodulate, kernel_size):
    torch.manual_seed(kernel_size + 2 * upsample + 4 * downsample)
    conv = ModulatedConv2D(6, 5, kernel_size, 8, demodulate=demodulate, upsample=upsample,
                           downsample=downsample).double()
    x, w = torch.randn(3, 6, 8, 8, dtype=torch.double), torch.randn(3, 8, dtype=torch.double)
    fused = conv(x, w, apply_modulation=True, fused=True)
    torch.testing.assert_close(conv(x, w, apply_modulation=True, fused=False), fused)
    size = 16 if upsample else 4 if downsample else 8
    assert fused.shape == (3, 5, size, size)
    if demodulate:  # demodulation: unit-variance output per channel for unit-variance input, roughly
        assert 0.2 < float(fused.detach().std()) < 5


def test_train_mode_matches_eval_mode():
    g = _small_generator(16, seed=4)
    z = torch.randn(2, 32)
    with torch.no_grad():
        want, _ = g.eval()([z], randomize_noise=False)
        got, _ = g.train()([z], randomize_noise=False)  # training: the unfused convolutions
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_registered_and_built_from_config():
    assert GENERATORS.get("StyleGANv2Generator") is StyleGANv2Generator
    assert DISCRIMINATORS.get("StyleGANv2Discriminator") is StyleGANv2Discriminator
    cfg = {"name": "StyleGANv2Generator", "size": 16, "style_dim": 16, "n_mlp": 2, "narrow": 0.0625}
    g = build_generator(cfg)
    assert isinstance(g, StyleGANv2Generator) and cfg["name"] == "StyleGANv2Generator"
    d = build_discriminator({"name": "StyleGANv2Discriminator", "size": 16, "narrow": 0.0625})
    assert d(g([torch.randn(2, 16)])[0]).shape == (2, 1)


@pytest.mark.parametrize("inject_index", [1, 3, 5])
def test_style_mixing(inject_index):
    g = _small_generator(16)
    z1, z2 = torch.randn(2, 32), torch.randn(2, 32)
    with torch.no_grad():
        w1, w2 = g.get_latent(z1), g.get_latent(z2)
        mixed, latent = g([z1, z2], inject_index=inject_index, return_latents=True, randomize_noise=False)
        torch.testing.assert_close(latent[:, :inject_index], w1[:, None].expand(-1, inject_index, -1))
        torch.testing.assert_close(latent[:, inject_index:], w2[:, None].expand(-1, g.n_latent - inject_index, -1))
        only1, _ = g([z1], randomize_noise=False)
        only2, _ = g([z2], randomize_noise=False)
        same, _ = g([z1, z1], inject_index=inject_index, randomize_noise=False)
        # the mixed W+ latent fed directly gives the same image
        direct, _ = g([latent], input_is_latent=True, randomize_noise=False)
        all1, _ = g([z1, z2], inject_index=g.n_latent, randomize_noise=False)
    torch.testing.assert_close(same, only1)
    torch.testing.assert_close(direct, mixed)
    torch.testing.assert_close(all1, only1)
    assert (mixed - only1).abs().max() > 1e-4 and (mixed - only2).abs().max() > 1e-4


def test_random_inject_index_and_more_styles():
    g = _small_generator(16)
    zs = [torch.randn(2, 32) for _ in range(3)]  # PaddleGAN mixes the first two only
    torch.manual_seed(3)
    with torch.no_grad():
        _, latent = g(zs, return_latents=True)
        w1 = g.get_latent(zs[0])
    k = int((latent - w1[:, None]).abs().amax(dim=(0, 2)).gt(0).float().argmax())
    assert 1 <= k < g.n_latent
    # the stacked [L, N, D] tensor form (the fixtures' in_styles) iterates like the list
    with torch.no_grad():
        a, _ = g(torch.stack(zs[:1]), randomize_noise=False)
        b, _ = g(zs[:1], randomize_noise=False)
        c, _ = g(zs[0], randomize_noise=False)  # a bare [N, D] tensor is one style
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(c, b)


@pytest.mark.parametrize("truncation", [0.0, 0.5, 0.7])
def test_truncation(truncation):
    g = _small_generator(16)
    z = torch.randn(2, 32)
    center = torch.randn(1, 32)
    with torch.no_grad():
        w = g.get_latent(z)
        img, latent = g([z], truncation=truncation, truncation_latent=center, return_latents=True,
                        randomize_noise=False)
        torch.testing.assert_close(latent[:, 0], center + truncation * (w - center))
        torch.testing.assert_close(g.get_latents(z, truncation=truncation, truncation_latent=center), latent[:, 0])
        direct, _ = g([center + truncation * (w - center)], input_is_latent=True, randomize_noise=False)
        torch.testing.assert_close(img, direct)
        cut, cut_latent = g([z], truncation=truncation, truncation_cutoff=8, truncation_latent=center,
                            return_latents=True)
    torch.testing.assert_close(cut_latent[:, 0, :8], latent[:, 0, :8])
    torch.testing.assert_close(cut_latent[:, 0, 8:], w[:, 8:])
    if truncation == 0.0:  # every sample collapses onto the centre
        torch.testing.assert_close(img[0], img[1])


def test_mean_latent_and_default_truncation_centre():
    g = _small_generator(16)
    torch.manual_seed(0)
    with torch.no_grad():
        m = g.mean_latent(256)
        torch.manual_seed(0)
        want = g.get_latent(torch.randn(256, 32)).mean(0, keepdim=True)
    assert m.shape == (1, 32)
    torch.testing.assert_close(m, want)
    with torch.no_grad():
        img, _ = g([torch.randn(2, 32)], truncation=0.0)  # centre drawn by get_mean_style
    torch.testing.assert_close(img[0], img[1], atol=1e-4, rtol=1e-4)  # same centre, fresh noise per sample
    assert g.get_mean_style(n_sample=2, n_latent=64).shape == (1, 32)


def test_input_is_latent_matches_mapping():
    g = _small_generator(32, narrow=0.03125)
    z = torch.randn(2, 32)
    with torch.no_grad():
        a, _ = g([z], randomize_noise=False)
        b, _ = g([g.get_latent(z)], input_is_latent=True, randomize_noise=False)
        noise = g.make_noise()
        c, _ = g([z], noise=noise)
        d, _ = g([z], noise=noise)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(c, d)
    assert len(noise) == g.num_layers


def test_gradients_flow_generator_and_discriminator():
    g = _small_generator(16).train()
    d = StyleGANv2Discriminator(16, channel_multiplier=1, narrow=0.0625).train()
    for m in g.modules():
        if type(m).__name__ == "NoiseInjection":
            m.weight.data.fill_(0.1)
    img, _ = g([torch.randn(4, 32), torch.randn(4, 32)], inject_index=2)
    loss = F.softplus(-d(img)).mean()
    loss.backward()
    for name, p in list(g.named_parameters()) + list(d.named_parameters()):
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    # R1-style double backward through the discriminator works
    real = torch.randn(4, 3, 16, 16, requires_grad=True)
    (grad,) = torch.autograd.grad(d(real).sum(), real, create_graph=True)
    grad.pow(2).sum().backward()
    assert torch.isfinite(d.final_conv[0].weight.grad).all()


def test_bad_arguments():
    with pytest.raises(ConfigError, match="power of two"):
        StyleGANv2Generator(48, 32, 2)
    with pytest.raises(ConfigError, match="power of two"):
        StyleGANv2Discriminator(2048)
    with pytest.raises(ConfigError, match="activation"):
        EqualLinear(4, 4, activation="relu")
    g = _small_generator(8)
    with pytest.raises(ConfigError, match="inject_index"):
        g([torch.randn(1, 32)] * 2, inject_index=9)
    with pytest.raises(ConfigError, match="noise"):
        g([torch.randn(1, 32)], noise=[None])
    with pytest.raises(ConfigError, match="truncation"):
        g([torch.randn(1, 32)], truncation=-1)
    d = StyleGANv2Discriminator(16, narrow=0.0625)
    with pytest.raises(ConfigError, match="16"):
        d(torch.randn(2, 3, 32, 32))


# --- discriminator ------------------------------------------------------------------------------

@pytest.mark.parametrize("size, channel_multiplier, batch", [(16, 1, 2), (16, 2, 4), (32, 1, 3), (32, 2, 8),
                                                            (32, 1, 6)])
def test_discriminator_shapes(size, channel_multiplier, batch):
    torch.manual_seed(size + batch)
    d = StyleGANv2Discriminator(size, channel_multiplier=channel_multiplier, narrow=0.0625).eval()
    n_res = sum(1 for m in d.convs if type(m).__name__ == "ResBlock")
    assert n_res == int(np.log2(size)) - 2
    x = torch.randn(batch, 3, size, size)
    with torch.no_grad():
        out = d(x)
        again = d(x)
    assert out.shape == (batch, 1) and torch.isfinite(out).all()
    torch.testing.assert_close(out, again)
    assert out.std() > 0


def test_discriminator_paddle_names():
    """The state-dict names PaddleGAN's StyleGANv2Discriminator writes (ConvLayer is a Sequential:
    blur (no weights), conv, activation)."""
    keys = set(StyleGANv2Discriminator(16, narrow=0.0625).state_dict())
    expected = {"convs.0.0.weight", "convs.0.1.bias", "convs.1.conv1.0.weight", "convs.1.conv1.1.bias",
                "convs.1.conv2.1.weight", "convs.1.conv2.2.bias", "convs.1.skip.1.weight",
                "convs.2.conv2.1.weight", "final_conv.0.weight", "final_conv.1.bias",
                "final_linear.0.weight", "final_linear.0.bias", "final_linear.1.weight", "final_linear.1.bias"}
    assert expected <= keys
    assert not any(k.endswith("kernel") for k in keys)
    assert len(keys) == 2 + 2 * 5 + 2 + 4  # fromRGB, 2 ResBlocks x (conv1 w+b, conv2 w+b, skip w), final


@pytest.mark.parametrize("batch, group", [(8, 4), (4, 4), (2, 4), (6, 4), (5, 4), (3, 2)])
def test_minibatch_stddev(batch, group):
    x = torch.randn(batch, 6, 4, 4, dtype=torch.float64)
    out = minibatch_stddev(x, group)
    assert out.shape == (batch, 7, 4, 4)
    torch.testing.assert_close(out[:, :6], x)
    g = min(batch, group)
    while batch % g:
        g -= 1
    m = batch // g
    for i in range(batch):
        members = x[i % m::m]  # samples i, i + N/G, ... form a group
        want = members.std(0, unbiased=False).add(0).pow(2).add(1e-8).sqrt().mean()
        torch.testing.assert_close(out[i, 6], want.expand(4, 4))


# --- upfirdn2d ----------------------------------------------------------------------------------

def _reference_upfirdn2d(x, k, up, down, pad):
    """Explicit zero insertion, padding / cropping, a tap-by-tap true convolution, subsampling."""
    x, k = x.double(), k.double()
    n, c, h, w = x.shape
    x0, x1, y0, y1 = pad
    upx = torch.zeros(n, c, h * up, w * up, dtype=x.dtype)
    upx[:, :, ::up, ::up] = x
    big = torch.zeros(n, c, h * up + max(y0, 0) + max(y1, 0), w * up + max(x0, 0) + max(x1, 0), dtype=x.dtype)
    big[:, :, max(y0, 0): max(y0, 0) + h * up, max(x0, 0): max(x0, 0) + w * up] = upx
    big = big[:, :, max(-y0, 0): big.shape[2] - max(-y1, 0), max(-x0, 0): big.shape[3] - max(-x1, 0)]
    kh, kw = k.shape
    oh, ow = big.shape[2] - kh + 1, big.shape[3] - kw + 1
    out = torch.zeros(n, c, oh, ow, dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):  # out[y, x] = sum k[i, j] * in[y + kh-1-i, x + kw-1-j]
            out += k[i, j] * big[:, :, kh - 1 - i: kh - 1 - i + oh, kw - 1 - j: kw - 1 - j + ow]
    return out[:, :, ::down, ::down]


@pytest.mark.parametrize("up, down, pad, ksize", [
    (1, 1, (0, 0, 0, 0), 3), (2, 1, (2, 1, 2, 1), 4), (1, 2, (1, 1, 1, 1), 4), (2, 2, (1, 2, 0, 3), 4),
    (1, 1, (-1, 2, 1, -2), 3), (3, 1, (1, 1, 2, 2), 5), (1, 3, (2, 2, 2, 2), 5), (2, 1, (-2, 0, 0, -1), 2)])
def test_upfirdn2d_against_reference(up, down, pad, ksize):
    gen = torch.Generator().manual_seed(up * 10 + down + ksize)
    x = torch.randn(2, 3, 7, 6, generator=gen)
    k = torch.randn(ksize, ksize, generator=gen)  # asymmetric: catches a missing flip
    got = upfirdn2d(x, k, up=up, down=down, pad=pad)
    want = _reference_upfirdn2d(x, k, up, down, pad)
    assert got.shape == want.shape
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)


def test_upfirdn2d_two_value_pad_and_gradient():
    x = torch.randn(1, 2, 5, 5, requires_grad=True)
    k = make_kernel([1, 3, 3, 1])
    out = upfirdn2d(x, k, up=2, pad=(2, 1))
    torch.testing.assert_close(out, upfirdn2d(x, k, up=2, pad=(2, 1, 2, 1)))
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("kernel", [[1, 3, 3, 1], [1, 2, 1], [1, 1]])
def test_resamplers(kernel):
    const = torch.full((1, 2, 8, 8), 3.0)
    up = Upsample(kernel)(const)
    down = Downsample(kernel)(const)
    assert up.shape == (1, 2, 16, 16) and down.shape == (1, 2, 4, 4)
    # normalised kernels keep a constant image constant away from the zero-padded border
    torch.testing.assert_close(up[:, :, 3:-3, 3:-3], torch.full_like(up[:, :, 3:-3, 3:-3], 3.0))
    torch.testing.assert_close(down[:, :, 1:-1, 1:-1], torch.full_like(down[:, :, 1:-1, 1:-1], 3.0))
    p = len(kernel) - 1
    blurred = Blur(kernel, pad=((p + 1) // 2, p // 2))(const)
    assert blurred.shape == const.shape
    assert "kernel" in Upsample(kernel).state_dict() and "kernel" not in Blur(kernel, (1, 1)).state_dict()


def test_make_kernel_rejects_bad():
    with pytest.raises(ConfigError):
        make_kernel([])
    with pytest.raises(ConfigError):
        make_kernel([1, -1])
    with pytest.raises(ConfigError, match="pad"):
        upfirdn2d(torch.zeros(1, 1, 4, 4), make_kernel([1, 1]), pad=(1, 1, 1))


def test_fused_act_and_equal_conv():
    x = torch.randn(2, 4, 3, 3)
    b = torch.randn(4)
    want = F.leaky_relu(x + b[None, :, None, None], 0.2) * 2 ** 0.5
    torch.testing.assert_close(fused_leaky_relu(x, b), want)
    act = FusedLeakyReLU(4)
    act.bias.data.copy_(b)
    torch.testing.assert_close(act(x), want)
    torch.testing.assert_close(fused_leaky_relu(x[:, :, 0, 0], b), want[:, :, 0, 0])
    conv = EqualConv2D(4, 5, 3, padding=1)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight / 6.0, conv.bias, padding=1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    g = _small_generator(32)
    d = StyleGANv2Discriminator(32, narrow=0.0625).eval()
    z = torch.randn(2, 32)
    with torch.no_grad():
        cpu_img, _ = g([z], randomize_noise=False)
        cpu_logit = d(cpu_img)
        gpu_img, _ = g.cuda()([z.cuda()], randomize_noise=False)
        gpu_logit = d.cuda()(gpu_img)
    torch.testing.assert_close(gpu_img.cpu(), cpu_img, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(gpu_logit.cpu(), cpu_logit, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_autocast_bfloat16(mode):
    """Under autocast (the engine's AMP path) both convolution paths run and stay close to fp32."""
    g = getattr(_small_generator(16, seed=5), mode)()
    d = StyleGANv2Discriminator(16, narrow=0.0625)
    z = torch.randn(2, 32)
    with torch.no_grad():
        want, _ = g([z], randomize_noise=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        img, _ = g([z], randomize_noise=False)
        logits = d(img)
    assert torch.isfinite(img).all() and torch.isfinite(logits.float()).all()
    assert (img.float() - want).abs().max() < 0.05 * want.abs().max() + 0.05
    logits.float().sum().backward()
    assert torch.isfinite(g.style[1].weight.grad).all() and g.style[1].weight.grad.abs().sum() > 0

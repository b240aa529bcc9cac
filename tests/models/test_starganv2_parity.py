"""StarGAN v2 nets: PaddleGAN parity (fixtures in tests/fixtures/parity), other constructor
arguments, per-domain selection of the mapping network / style encoder / discriminator, the
high-pass mask path, FAN (names, masks, weights from a file) and bad arguments.

Parity: manifest -> rule weights -> a PaddleGAN `.pdparams` file -> `load_paddle_state_dict`
(strict) -> eval forward -> PaddleGAN's recorded outputs (within 10x the fixture's atol).
"""
import os
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))
from parity import Fixture, rule_tensor, write_pdparams  # noqa: E402

from ppgan.models.discriminators import DISCRIMINATORS, build_discriminator  # noqa: E402
from ppgan.models.discriminators.discriminator_starganv2 import StarGANv2Discriminator  # noqa: E402
from ppgan.models.generators import GENERATORS, build_generator  # noqa: E402
from ppgan.models.generators.generator_starganv2 import (FAN, AdainResBlk, HighPass, StarGANv2Generator,  # noqa: E402
                                                         StarGANv2Mapping, StarGANv2Style, heatmaps_to_masks)
from ppgan.utils.errors import CheckpointError, ConfigError  # noqa: E402
from ppgan.weights import load_paddle_state_dict  # noqa: E402


def paddle_layout(net):
    """`net`'s state as PaddleGAN's .pdparams holds it: Linear weights [in, out], InstanceNorm
    `scale`, BatchNorm `_mean` / `_variance` (no num_batches_tracked)."""
    state = {}
    for k, v in net.state_dict().items():
        head, _, tail = k.rpartition(".")
        module = net.get_submodule(head) if head else net
        v = v.detach().numpy().copy()
        if tail == "num_batches_tracked":
            continue
        if isinstance(module, torch.nn.Linear) and tail == "weight":
            v = v.T.copy()
        if isinstance(module, torch.nn.InstanceNorm2d) and tail == "weight":
            tail = "scale"
        if isinstance(module, torch.nn.BatchNorm2d):
            tail = {"running_mean": "_mean", "running_var": "_variance"}.get(tail, tail)
        state[f"{head}.{tail}" if head else tail] = v
    return state


# --- parity -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def parity_generator(tmp_path_factory):
    """One generator for both fixtures (same kwargs and manifest, so the same weights), loaded
    from a .pdparams file written from the rule weights."""
    fixture = Fixture("starganv2_generator")
    assert fixture.kwargs == {"img_size": 256, "style_dim": 64, "w_hpf": 1}
    path = write_pdparams(tmp_path_factory.mktemp("v2") / "generator.pdparams", fixture.paddle_state_dict())
    torch.manual_seed(0)
    model = StarGANv2Generator(**fixture.kwargs).eval()
    report = load_paddle_state_dict(model, path, strict=True)
    return model, report, fixture.manifest


@pytest.mark.parametrize("name", [pytest.param("starganv2_generator", marks=pytest.mark.slow),
                                  "starganv2_generator_masked"])  # the masked run covers every layer
def test_parity_generator(name, parity_generator):
    fixture = Fixture(name)
    model, report, manifest = parity_generator
    assert fixture.manifest == manifest
    # the 14 AdaIN fc weights (7 decoder blocks x 2) are Paddle [in, out] Linears: transposed
    assert sorted(report["transposed"]) == sorted(f"decode.{i}.norm{j}.fc.weight" for i in range(7) for j in (1, 2))
    assert not report["missing"] and not report["unexpected"]
    threads = torch.get_num_threads()
    torch.set_num_threads(max(threads, 2))  # the 256 px net: the only big forward in this file
    try:
        with torch.no_grad():
            out = model(*fixture.inputs)
    finally:
        torch.set_num_threads(threads)
    assert out.shape == (1, 3, 256, 256)
    fixture.assert_matches(out)


def test_parity_names_match_manifest(parity_generator):
    """Every PaddleGAN name (InstanceNorm `scale` = our `weight`) is ours, with the same shape
    (Linear transposed); no extra tensors (the high-pass filter is a constant)."""
    model, _, manifest = parity_generator
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {}
    for name, shape, _ in manifest:
        if name.endswith(".scale"):
            name = name[: -len("scale")] + "weight"
        theirs[name] = tuple(shape[::-1]) if name.endswith("fc.weight") else tuple(shape)
    assert ours == theirs
    assert [k.replace(".scale", ".weight") for k, _, _ in manifest] == list(ours)  # PaddleGAN's order too
    assert "hpf.filter" not in ours and len(model.encode) == len(model.decode) == 7


# --- generator: other arguments -----------------------------------------------------------------

def _generator(img_size=32, style_dim=16, max_conv_dim=64, w_hpf=1, seed=0, dim_in=8):
    torch.manual_seed(seed)
    g = StarGANv2Generator(img_size, style_dim, max_conv_dim, w_hpf, dim_in=dim_in).eval()
    for m in g.modules():  # non-trivial norms / biases so every path shows in the output
        if isinstance(m, torch.nn.InstanceNorm2d) and m.affine:
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return g


@pytest.mark.parametrize("img_size, style_dim, max_conv_dim, w_hpf, dim_in", [
    (32, 16, 64, 0, None), (32, 8, 32, 1, 8), (64, 16, 64, 0, 16), (64, 32, 128, 1, None), (64, 16, 64, 2, 4),
    (16, 8, 64, 1, 16), (128, 8, 32, 0, 8), (8, 4, 16, 0, 4)])
def test_generator_other_sizes(img_size, style_dim, max_conv_dim, w_hpf, dim_in):
    g = _generator(img_size, style_dim, max_conv_dim, w_hpf, dim_in=dim_in)
    n_down = max(0, int(np.log2(img_size)) - 4 + (w_hpf > 0))
    assert len(g.encode) == len(g.decode) == n_down + 2
    dim_in = dim_in or 2 ** 14 // img_size  # widest: the first layer, or the cap once doubled past it
    assert g.from_rgb.out_channels == dim_in
    assert max(m.out_channels for m in g.modules() if isinstance(m, torch.nn.Conv2d)) == \
        max(dim_in, min(max_conv_dim, dim_in * 2 ** n_down))
    assert hasattr(g, "hpf") == (w_hpf > 0)
    x, s = torch.randn(2, 3, img_size, img_size), torch.randn(2, style_dim)
    with torch.no_grad():
        out = g(x, s)
        other_style = g(x, torch.randn(2, style_dim))
    assert out.shape == (2, 3, img_size, img_size) and torch.isfinite(out).all()
    assert (out - other_style).abs().max() > 1e-4  # the style code matters
    if w_hpf > 0:
        masks = torch.rand(2, 2, 1, 256, 256)
        with torch.no_grad():
            masked = g(x, s, masks=masks)
            as_tuple = g(x, s, masks=(masks[0], masks[1]))
        torch.testing.assert_close(as_tuple, masked)
        if img_size >= 32:  # 32 / 64 / 128 px features exist: the skip path changes the output
            assert (masked - out).abs().max() > 1e-4
        else:
            torch.testing.assert_close(masked, out)
    else:
        with pytest.raises(ConfigError, match="w_hpf"):
            g(x, s, masks=torch.rand(2, 2, 1, 256, 256))


def _manual_hpf_forward(g, x, s, masks):
    """The high-pass path written out: encoder features cached at 32/64/128 px, after each
    decoder block of that size x += laplacian(resized mask * cache) / w_hpf."""
    lap = torch.tensor([[-1.0, -1, -1], [-1, 8, -1], [-1, -1, -1]]) / g.w_hpf
    h, cache = g.from_rgb(x), {}
    for block in g.encode:
        if h.shape[2] in (32, 64, 128):
            cache[h.shape[2]] = h
        h = block(h)
    for block in g.decode:
        h = block(h, s)
        size = h.shape[2]
        if size in (32, 64, 128):
            m = F.interpolate(masks[0] if size == 32 else masks[1], size=(size, size), mode="bilinear",
                              align_corners=False)
            feat = m * cache[size]
            h = h + F.conv2d(feat, lap.expand(feat.shape[1], 1, 3, 3), padding=1, groups=feat.shape[1])
    return g.to_rgb(h)


@pytest.mark.parametrize("img_size, w_hpf, mask_size", [(64, 1, 256), (64, 2, 64), (128, 1, 128)])
def test_high_pass_path_by_hand(img_size, w_hpf, mask_size):
    g = _generator(img_size, 8, 32, w_hpf)
    x, s = torch.randn(1, 3, img_size, img_size), torch.randn(1, 8)
    masks = (torch.rand(1, 1, mask_size, mask_size), torch.rand(1, 1, mask_size, mask_size))
    with torch.no_grad():
        torch.testing.assert_close(g(x, s, masks=masks), _manual_hpf_forward(g, x, s, masks))
        # masks[0] only feeds the 32 px level, masks[1] the 64 / 128 px levels
        swapped = g(x, s, masks=(masks[0], torch.zeros_like(masks[1])))
        only0 = _manual_hpf_forward(g, x, s, (masks[0], torch.zeros_like(masks[1])))
    torch.testing.assert_close(swapped, only0)


@pytest.mark.parametrize("w_hpf", [1, 3])
def test_high_pass_filter(w_hpf):
    hp = HighPass(w_hpf)
    assert "filter" not in hp.state_dict()
    const = torch.full((1, 4, 6, 6), 2.5)
    out = hp(const)
    torch.testing.assert_close(out[:, :, 1:-1, 1:-1], torch.zeros(1, 4, 4, 4))  # a constant has no high pass
    delta = torch.zeros(1, 2, 5, 5)
    delta[0, 1, 2, 2] = 1.0
    out = hp(delta)
    assert out[0, 0].abs().max() == 0  # depthwise: channels stay apart
    assert out[0, 1, 2, 2] == pytest.approx(8 / w_hpf) and out[0, 1, 1, 1] == pytest.approx(-1 / w_hpf)


@pytest.mark.parametrize("w_hpf, dim_in, dim_out, upsample", [(0, 8, 4, True), (1, 8, 4, True), (0, 6, 6, False),
                                                              (1, 6, 6, False)])
def test_adain_resblk_shortcut(w_hpf, dim_in, dim_out, upsample):
    """w_hpf = 0: (residual + shortcut) / sqrt(2); w_hpf > 0: the residual only (conv1x1 unused)."""
    torch.manual_seed(dim_in + w_hpf)
    blk = AdainResBlk(dim_in, dim_out, style_dim=5, w_hpf=w_hpf, upsample=upsample)
    assert hasattr(blk, "conv1x1") == (dim_in != dim_out)
    x, s = torch.randn(2, dim_in, 4, 4), torch.randn(2, 5)
    with torch.no_grad():
        res = blk._residual(x, s)
        sc = F.interpolate(x, scale_factor=2, mode="nearest") if upsample else x
        if dim_in != dim_out:
            sc = blk.conv1x1(sc)
        want = (res + sc) / 2 ** 0.5 if w_hpf == 0 else res
        torch.testing.assert_close(blk(x, s), want)
    # AdaIN: (1 + gamma) * IN(x) + beta, gamma first
    h = blk.norm1.fc(s)
    gamma, beta = h[:, :dim_in, None, None], h[:, dim_in:, None, None]
    torch.testing.assert_close(blk.norm1(x, s), (1 + gamma) * F.instance_norm(x, eps=1e-5) + beta)


# --- mapping network, style encoder, discriminator ---------------------------------------------

@pytest.mark.parametrize("latent_dim, style_dim, num_domains, hidden_dim", [
    (16, 64, 2, 512), (8, 16, 3, 32), (4, 8, 5, 16), (16, 8, 1, 8)])
def test_mapping_per_domain(latent_dim, style_dim, num_domains, hidden_dim):
    torch.manual_seed(num_domains)
    m = StarGANv2Mapping(latent_dim, style_dim, num_domains, hidden_dim=hidden_dim)
    assert len(m.unshared) == num_domains and len(m.shared) == 8 and len(m.unshared[0]) == 7
    z = torch.randn(4, latent_dim)
    y = torch.tensor([i % num_domains for i in range(4)])
    s = m(z, y)
    assert s.shape == (4, style_dim)
    h = m.shared(z)
    for i in range(4):
        torch.testing.assert_close(s[i], m.unshared[int(y[i])](h[i:i + 1])[0])
    torch.testing.assert_close(m(z, y[:, None]), s)  # [N, 1] labels
    torch.testing.assert_close(m(z, y.tolist()), s)
    torch.testing.assert_close(m(z, num_domains - 1), m(z, torch.full((4,), num_domains - 1)))  # one int for all
    if num_domains > 1:
        assert (m(z, torch.zeros(4, dtype=torch.long)) - m(z, torch.ones(4, dtype=torch.long))).abs().max() > 0


@pytest.mark.parametrize("img_size, style_dim, num_domains, max_conv_dim, dim_in", [
    (32, 16, 2, 64, None), (64, 8, 3, 32, 8), (16, 8, 3, 512, 16), (8, 4, 2, 16, None)])
def test_style_encoder_per_domain(img_size, style_dim, num_domains, max_conv_dim, dim_in):
    torch.manual_seed(img_size)
    st = StarGANv2Style(img_size, style_dim, num_domains, max_conv_dim, dim_in=dim_in).eval()
    assert st.shared[0].out_channels == (dim_in or 2 ** 14 // img_size)
    n_res = sum(type(b).__name__ == "ResBlk" for b in st.shared)
    assert n_res == int(np.log2(img_size)) - 2 and len(st.unshared) == num_domains
    x = torch.randn(3, 3, img_size, img_size)
    y = torch.tensor([num_domains - 1, 0, 1 % num_domains])
    with torch.no_grad():
        s = st(x, y)
        h = st.shared(x)
    assert h.shape[2:] == (1, 1) and s.shape == (3, style_dim)
    for i in range(3):
        torch.testing.assert_close(s[i], st.unshared[int(y[i])](h[i].flatten()))


@pytest.mark.parametrize("img_size, num_domains, max_conv_dim, batch, dim_in", [
    (32, 2, 64, 2, None), (64, 3, 128, 4, 16), (32, 3, 32, 3, 4), (16, 5, 512, 2, 8)])
def test_discriminator_per_domain(img_size, num_domains, max_conv_dim, batch, dim_in):
    torch.manual_seed(batch)
    d = StarGANv2Discriminator(img_size, num_domains, max_conv_dim, dim_in=dim_in).eval()
    x = torch.randn(batch, 3, img_size, img_size)
    y = torch.arange(batch) % num_domains
    with torch.no_grad():
        out = d(x, y)
        full = d.main(x)
    assert full.shape == (batch, num_domains, 1, 1) and out.shape == (batch,)
    torch.testing.assert_close(out, full[torch.arange(batch), y, 0, 0])
    keys = list(d.state_dict())
    n_res = int(np.log2(img_size)) - 2
    assert keys[:2] == ["main.0.weight", "main.0.bias"]  # PaddleGAN's Sequential indices
    assert keys[-4:] == [f"main.{n_res + 2}.weight", f"main.{n_res + 2}.bias", f"main.{n_res + 4}.weight",
                         f"main.{n_res + 4}.bias"]
    assert d.state_dict()[f"main.{n_res + 4}.weight"].shape[0] == num_domains


def test_gradients_flow():
    g, d = _generator(32, 8, 32, 1).train(), StarGANv2Discriminator(32, 2, 32, dim_in=8)
    m, st = StarGANv2Mapping(4, 8, 2, hidden_dim=16), StarGANv2Style(32, 8, 2, 32, dim_in=8)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 1])
    s = m(torch.randn(2, 4), y) + st(x, 1 - y)
    fake = g(x, s, masks=(torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)))
    F.softplus(-d(fake, y)).mean().backward()
    for net in (g, d, m, st):
        for name, p in net.named_parameters():
            if ".conv1x1." in name and isinstance(net, StarGANv2Generator) and name.startswith("decode"):
                assert p.grad is None, name  # unused with w_hpf > 0
                continue
            if name.startswith("unshared.") and isinstance(net, StarGANv2Style):
                continue  # one domain's head per sample; both used here
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    real = torch.randn(2, 3, 32, 32, requires_grad=True)  # R1: double backward through D
    (grad,) = torch.autograd.grad(d(real, y).sum(), real, create_graph=True)
    grad.pow(2).sum().backward()
    assert torch.isfinite(d.main[0].weight.grad).all()


@pytest.mark.parametrize("cls, kwargs, inputs", [
    (StarGANv2Mapping, dict(latent_dim=4, style_dim=8, num_domains=3, hidden_dim=16),
     lambda: (torch.randn(2, 4), torch.tensor([2, 0]))),
    (StarGANv2Style, dict(img_size=16, style_dim=8, num_domains=3, max_conv_dim=32, dim_in=8),
     lambda: (torch.randn(2, 3, 16, 16), torch.tensor([1, 2]))),
    (StarGANv2Discriminator, dict(img_size=16, num_domains=3, max_conv_dim=32, dim_in=8),
     lambda: (torch.randn(2, 3, 16, 16), torch.tensor([1, 2]))),
    (StarGANv2Generator, dict(img_size=32, style_dim=8, max_conv_dim=32, w_hpf=1, dim_in=8),
     lambda: (torch.randn(2, 3, 32, 32), torch.randn(2, 8))),
])
def test_pdparams_file_round_trip(tmp_path, cls, kwargs, inputs):
    """A net saved as PaddleGAN would (Linear [in, out], InstanceNorm `scale`) loads strictly
    from a .pdparams file into a freshly built one and gives the same outputs."""
    torch.manual_seed(1)
    net = cls(**kwargs).eval()
    for p in net.parameters():  # InstanceNorm weights away from their init so a miss shows
        p.data.add_(0.1 * torch.randn_like(p))
    path = write_pdparams(tmp_path / f"{cls.__name__}.pdparams", paddle_layout(net))
    torch.manual_seed(2)
    fresh = cls(**kwargs).eval()
    report = load_paddle_state_dict(fresh, path, strict=True)
    linears = [k for k, v in net.state_dict().items() if k.endswith("weight") and v.ndim == 2]
    assert sorted(report["transposed"]) == sorted(linears) and not report["missing"] and not report["unexpected"]
    args = inputs()
    with torch.no_grad():
        torch.testing.assert_close(fresh(*args), net(*args))


def test_registered_and_built_from_config():
    for name, cls in [("StarGANv2Generator", StarGANv2Generator), ("StarGANv2Mapping", StarGANv2Mapping),
                      ("StarGANv2Style", StarGANv2Style), ("FAN", FAN)]:
        assert GENERATORS.get(name) is cls
    assert DISCRIMINATORS.get("StarGANv2Discriminator") is StarGANv2Discriminator
    cfg = {"name": "StarGANv2Generator", "img_size": 32, "style_dim": 8, "max_conv_dim": 32, "w_hpf": 0, "dim_in": 8}
    g = build_generator(cfg)
    assert isinstance(g, StarGANv2Generator) and cfg["name"] == "StarGANv2Generator"
    d = build_discriminator({"name": "StarGANv2Discriminator", "img_size": 32, "num_domains": 3, "max_conv_dim": 32,
                             "dim_in": 8})
    assert d(g(torch.randn(2, 3, 32, 32), torch.randn(2, 8)), torch.tensor([2, 1])).shape == (2,)
    # PaddleGAN's configs write `fname_pretrained: None`, which YAML reads as the string 'None'
    assert isinstance(build_generator({"name": "FAN", "fname_pretrained": "None"}), FAN)


@pytest.mark.parametrize("make", [
    lambda: StarGANv2Generator(48),
    lambda: StarGANv2Generator(0),
    lambda: StarGANv2Generator("256"),
    lambda: StarGANv2Generator(4),
    lambda: StarGANv2Generator(256, style_dim=0),
    lambda: StarGANv2Generator(256, w_hpf=-1),
    lambda: StarGANv2Style(100),
    lambda: StarGANv2Style(32, num_domains=0),
    lambda: StarGANv2Mapping(latent_dim=0),
    lambda: StarGANv2Mapping(num_domains=2.5),
    lambda: StarGANv2Discriminator(img_size=2 ** 15),
    lambda: StarGANv2Discriminator(32, num_domains=True),
    lambda: StarGANv2Discriminator(32, max_conv_dim=-4),
    lambda: StarGANv2Discriminator(32, dim_in=0),
    lambda: StarGANv2Style(32, dim_in=2.0),
    lambda: FAN(num_landmarks=0),
])
def test_bad_arguments(make):
    with pytest.raises(ConfigError):
        make()


@pytest.mark.parametrize("call, match", [
    (lambda m, st, d: m(torch.randn(2, 4), torch.tensor([0, 3])), "domain 3 out of range"),
    (lambda m, st, d: m(torch.randn(2, 4), torch.tensor([-1, 0])), "domain -1 out of range"),
    (lambda m, st, d: m(torch.randn(2, 4), torch.tensor([0.0, 1.0])), "integers"),
    (lambda m, st, d: m(torch.randn(3, 4), torch.tensor([0, 1])), "2 domain labels for a batch of 3"),
    (lambda m, st, d: st(torch.randn(2, 3, 32, 32), torch.tensor([0, 1])), r"\[N, 3, 16, 16\]"),
    (lambda m, st, d: st(torch.randn(2, 3, 16, 16), torch.tensor([0, 5])), "out of range"),
    (lambda m, st, d: d(torch.randn(2, 1, 16, 16), torch.tensor([0, 1])), r"\[N, 3, 16, 16\]"),
    (lambda m, st, d: d(torch.randn(2, 3, 16, 16), 3), "domain 3 out of range for 3 domains"),
])
def test_bad_inputs(call, match):
    m = StarGANv2Mapping(4, 8, 3, hidden_dim=8)
    st, d = StarGANv2Style(16, 8, 3, 32, dim_in=4), StarGANv2Discriminator(16, 3, 32, dim_in=4)
    with pytest.raises(ConfigError, match=match) as info:
        call(m, st, d)
    assert "\n" not in str(info.value)


# --- FAN ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fan():
    torch.manual_seed(0)
    return FAN().eval()


def test_fan_paddle_names(fan):
    """PaddleGAN's FAN sub-module names and shapes (wing.pdparams loads by name)."""
    shapes = {k: tuple(v.shape) for k, v in fan.state_dict().items()}
    assert shapes["conv1.conv.weight"] == (64, 6, 7, 7)  # RGB + x, y, r coordinates
    assert shapes["m0.coordconv.conv.weight"] == (256, 259, 1, 1)  # first hourglass: no boundary channels
    assert shapes["l0.weight"] == (99, 256, 1, 1) and shapes["conv_last0.weight"] == (256, 256, 1, 1)
    assert shapes["conv2.downsample.2.weight"] == (128, 64, 1, 1) and "conv3.downsample.0.weight" not in shapes
    assert shapes["conv4.conv1.weight"] == (128, 128, 3, 3) and shapes["conv4.conv3.weight"] == (64, 64, 3, 3)
    levels = {k.split(".")[1] for k in shapes if k.startswith("m0.b")}
    assert levels == {f"b{i}_{level}" for i in (1, 2, 3) for level in (1, 2, 3, 4)} | {"b2_plus_1"}
    for k in ("bn1.running_mean", "bn_end0.running_var", "top_m_0.bn3.weight", "m0.b2_plus_1.conv3.weight"):
        assert k in shapes
    assert not any("coords" in k for k in shapes)  # coordinate maps are constants
    assert sum(v.numel() for v in fan.parameters()) == 6333603


@pytest.mark.parametrize("size", [64, 256])
def test_fan_heatmaps_and_masks(fan, size):
    x = torch.rand(1, 3, size, size) * 2 - 1
    with torch.no_grad():
        outputs, boundaries = fan(F.interpolate(x, size=(256, 256), mode="bilinear") * 0.5 + 0.5)
    assert len(outputs) == 1 and outputs[0].shape == (1, 99, 64, 64) and boundaries[0].shape == (1, 2, 64, 64)
    raw = fan.get_heatmap(x, b_preprocess=False)
    torch.testing.assert_close(raw, outputs[0][:, :-1])
    masks = fan.get_heatmap(x)
    assert isinstance(masks, tuple) and len(masks) == 2
    for m in masks:
        assert m.shape == (1, 1, 256, 256) and m.min() >= 0 and m.max() <= 1 and not m.requires_grad
    # a trainer's .train() does not change the masks, nor the BatchNorm statistics
    running = fan.bn1.running_mean.clone()
    fan.train()
    try:
        again = fan.get_heatmap(x)
        assert fan.training  # the mode is restored
    finally:
        fan.eval()
    torch.testing.assert_close(again[0], masks[0])
    torch.testing.assert_close(fan.bn1.running_mean, running)


def _blob_heatmaps(points, n=1, size=256):
    h = torch.zeros(n, 98, size, size)
    for b, c, row, col, value in points:
        h[b, c, row, col] = value
    return h


@pytest.mark.parametrize("channel, rows, in_second", [
    (60, (108, 124), True),   # eye: shifted down 8 (cubed) plus down 24
    (10, (100,), False),      # chin line: kept, not in the second mask
    (40, (107,), False),      # eyebrow: down 7, not in the second mask
    (78, (108,), False),      # upper lip: down 8
    (85, (92,), False),       # lower lip: up 8
    (53, (96,), True),        # nose (not its first point): up 4
    (51, (100,), True),       # nose first point: unshifted
    (0, (), False),           # outer chin points are dropped
    (46, (), False),          # eyebrow edge point dropped
])
def test_masks_from_heatmaps(channel, rows, in_second):
    """The paper's mask recipe, by landmark group, on a one-pixel heatmap (row 100, column 50)."""
    h = _blob_heatmaps([(0, channel, 100, 50, 0.8)])
    m1, m2 = heatmaps_to_masks(h)
    assert m1.shape == m2.shape == (1, 1, 256, 256)
    want = torch.zeros(256, 256)
    for r in rows:
        want[r, 50] = 1.0
    torch.testing.assert_close(m1[0, 0], want, atol=1e-5, rtol=0)
    torch.testing.assert_close(m2[0, 0], want if in_second else torch.zeros(256, 256), atol=1e-5, rtol=0)


def test_masks_truncate_and_per_map_normalisation():
    # below 0.1 is dropped; each map is scaled by its own range (sample 1 does not see sample 0)
    h = _blob_heatmaps([(0, 60, 10, 10, 0.05), (0, 61, 40, 40, 5.0), (1, 61, 40, 40, 0.5), (1, 62, 50, 60, 0.3)],
                       n=2)
    m1, _ = heatmaps_to_masks(h)
    assert m1[0, 0, 18, 10] == 0 and m1[0, 0, 48, 40] == pytest.approx(1.0, abs=1e-5)
    assert m1[1, 0, 48, 40] == pytest.approx(1.0, abs=1e-4) and m1[1, 0, 58, 60] == pytest.approx(1.0, abs=1e-4)
    empty, empty2 = heatmaps_to_masks(torch.full((1, 98, 256, 256), float("nan")))
    assert (empty == 0).all() and (empty2 == 0).all()


def test_fan_weights_from_file(tmp_path, fan):
    """PaddleGAN's wing.pdparams layout ({'state_dict': {...}}, Paddle BN names, extra entries
    ignored as PaddleGAN does) loads through ppgan.weights; the masks then match the source net."""
    state = paddle_layout(fan)
    for k in state:  # non-default BN statistics / weights so a miss would show
        state[k] = (state[k] + 0.05 * rule_tensor(k, state[k].shape)).astype(np.float32)
        if k.endswith("_variance"):
            state[k] = np.abs(state[k]) + 0.5
    state["fc_extra.weight"] = np.zeros((3, 3), np.float32)
    path = write_pdparams(tmp_path / "wing.pdparams", {"state_dict": state})
    loaded = FAN(fname_pretrained=path).eval()
    assert loaded.fname_pretrained == path
    torch.testing.assert_close(loaded.bn1.running_var, torch.from_numpy(state["bn1._variance"]))
    torch.testing.assert_close(loaded.m0.b2_plus_1.conv3.weight, torch.from_numpy(state["m0.b2_plus_1.conv3.weight"]))
    # the same file loaded as a flat dict works too
    flat = write_pdparams(tmp_path / "flat.pdparams", state)
    torch.testing.assert_close(FAN(fname_pretrained=flat).l0.weight, loaded.l0.weight)
    # and a model file of ours holding several nets gives its 'fan'
    ours = tmp_path / "model.pth"
    torch.save({"generator": {"w": torch.zeros(1)}, "fan": loaded.state_dict()}, ours)
    torch.testing.assert_close(FAN(fname_pretrained=str(ours)).bn_end0.running_mean, loaded.bn_end0.running_mean)


def test_fan_bad_files(tmp_path):
    missing = tmp_path / "nope" / "wing.pdparams"
    with pytest.raises(CheckpointError, match="not found") as info:
        FAN(fname_pretrained=str(missing))
    assert str(missing) in str(info.value) and "\n" not in str(info.value)
    torch.manual_seed(0)
    state = paddle_layout(FAN())
    del state["l0.bias"]
    path = write_pdparams(tmp_path / "short.pdparams", {"state_dict": state})
    with pytest.raises(CheckpointError, match="l0.bias") as info:
        FAN(fname_pretrained=path)
    assert "short.pdparams" in str(info.value) and "\n" not in str(info.value)
    junk = tmp_path / "junk.pdparams"
    junk.write_bytes(b"\x80\x02cos\nsystem\nq\x00.")
    with pytest.raises(CheckpointError):
        FAN(fname_pretrained=str(junk))
    fan = FAN()
    with pytest.raises(ConfigError, match="N, 3, H, W"):
        fan.get_heatmap(torch.rand(2, 1, 64, 64))


# --- devices and precision ----------------------------------------------------------------------

def test_autocast_bfloat16():
    """Under autocast (the engine's AMP path) the nets run, the masked path included, and stay
    close to fp32."""
    g = _generator(32, 8, 32, 1)
    d, st = StarGANv2Discriminator(32, 2, 32, dim_in=8), StarGANv2Style(32, 8, 2, 32, dim_in=8)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([1, 0])
    masks = (torch.rand(2, 1, 256, 256), torch.rand(2, 1, 256, 256))
    with torch.no_grad():
        want = g(x, st(x, y), masks=masks)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = g(x, st(x, y), masks=masks)
            logits = d(got, y)
    assert torch.isfinite(got.float()).all() and logits.shape == (2,)
    assert (got.float() - want).abs().max() < 0.05 * want.abs().max() + 0.05


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    g, fan_net = _generator(64, 8, 32, 1), FAN().eval()
    m = StarGANv2Mapping(4, 8, 3, hidden_dim=16)
    x, z, y = torch.rand(2, 3, 64, 64) * 2 - 1, torch.randn(2, 4), torch.tensor([2, 0])
    with torch.no_grad():
        cpu = g(x, m(z, y), masks=fan_net.get_heatmap(x))
        g, fan_net, m = g.cuda(), fan_net.cuda(), m.cuda()
        xc = x.cuda()
        gpu = g(xc, m(z.cuda(), y.cuda()), masks=fan_net.get_heatmap(xc))
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-3, rtol=1e-3)

"""InvDN against PaddleGAN: `.pdparams` names / shapes / order (invdn_manifest.json, written from
PaddleGAN's code and checked against its nets), a strict load of rule weights through the
converter with the Haar filters taken from the file, outputs equal to PaddleGAN's
(invdn_reference.npz), and the maths: forward / inverse round trip, the Haar step, latent
resampling."""
import json
import os

import numpy as np
import pytest
import torch

from parity import rule_tensor, write_pdparams
from ppgan.models.generators import build_generator
from ppgan.models.generators.invdn import HaarDownsampling, InvDN, haar_filters
from ppgan.utils.errors import CheckpointError, ConfigError
from ppgan.weights.pdparams import load_paddle_state_dict

FIX = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                   "fixtures", "restoration")
with open(os.path.join(FIX, "invdn_manifest.json")) as f:
    MANIFESTS = json.load(f)
REF = np.load(os.path.join(FIX, "invdn_reference.npz"), allow_pickle=False)
META = json.loads(str(REF["meta_json"]))


def rule_state(manifest, true_haar=False):
    state = {n: rule_tensor(n, s, d) for n, s, d in manifest}
    if true_haar:
        for n, s, _ in manifest:
            if n.endswith("haar_weights"):
                state[n] = haar_filters(s[0] // 4).numpy()
    return state


@pytest.mark.parametrize("case", sorted(MANIFESTS))
def test_state_dict_names_shapes_and_order_are_paddlegans(case):
    entry = MANIFESTS[case]
    net = InvDN(**entry["kwargs"])
    assert [[k, list(v.shape)] for k, v in net.state_dict().items()] == [[n, s] for n, s, _ in entry["manifest"]]
    haar = [n for n, _, _ in entry["manifest"] if n.endswith("haar_weights")]
    assert len(haar) == entry["kwargs"]["down_num"]
    assert all(not n.endswith("haar_weights") for n, _ in net.named_parameters())  # fixed, not trained


@pytest.mark.parametrize("case", sorted(META["cases"]))
def test_strict_load_and_outputs_match_paddlegan(case, tmp_path):
    entry = MANIFESTS[case]
    state = rule_state(entry["manifest"])  # rule values for the Haar filters too: they must come from the file
    net = InvDN(**entry["kwargs"])
    report = load_paddle_state_dict(net, write_pdparams(tmp_path / "w.pdparams", state), strict=True)
    assert not report["missing"] and not report["unexpected"] and not report["mismatched"]
    for name, buf in net.named_buffers():
        assert np.array_equal(buf.numpy(), state[name]) and not torch.equal(buf, haar_filters(buf.shape[0] // 4))
    net.eval()
    for i, spec in enumerate(META["cases"][case]):
        x, noise = (torch.from_numpy(REF[f"{case}_{i}_in{j}"]) for j in range(2))
        with torch.no_grad():
            outs = net(x, noise)
        assert len(outs) == spec["outputs"] == 2
        for j, out in enumerate(outs):
            want = REF[f"{case}_{i}_out{j}"]
            np.testing.assert_allclose(out.numpy(), want, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("drop", ["operations.0.haar_weights", "operations.1.H.conv3.bias"])
def test_strict_load_needs_every_key(drop, tmp_path):
    entry = MANIFESTS["small"]
    state = rule_state(entry["manifest"])
    del state[drop]
    with pytest.raises(CheckpointError, match="1 missing in file: " + drop.replace(".", r"\.")):
        load_paddle_state_dict(InvDN(**entry["kwargs"]), write_pdparams(tmp_path / "w.pdparams", state))


@pytest.mark.parametrize("case,shape", [("small", (1, 3, 12, 20)), ("small", (2, 3, 8, 4)),
                                        ("one_level", (1, 3, 6, 10)), ("invdn_denoising", (1, 3, 8, 8))])
def test_forward_inverse_round_trip(case, shape):
    entry = MANIFESTS[case]
    net = InvDN(**entry["kwargs"])
    load_paddle_state_dict(net, rule_state(entry["manifest"], true_haar=True))
    x = torch.rand(shape, generator=torch.Generator().manual_seed(shape[-1]))
    with torch.no_grad():
        z = net.transform(x)
        back = net.transform(z, rev=True)
    scale = entry["kwargs"]["scale"]
    assert z.shape == (shape[0], net.latent_channels, shape[2] // scale, shape[3] // scale)
    assert (back - x).abs().max() < 1e-5
    # the latent is not the input rearranged: the coupling blocks changed it
    assert not torch.allclose(z[:, :3], torch.nn.functional.avg_pool2d(x, scale), atol=1e-3)


@pytest.mark.parametrize("channels,hw", [(1, (2, 2)), (3, (4, 6)), (12, (6, 2))])
def test_haar_step(channels, hw):
    haar = HaarDownsampling(channels)
    x = torch.rand(2, channels, *hw, dtype=torch.float64)
    y = haar(x)
    assert y.shape == (2, 4 * channels, hw[0] // 2, hw[1] // 2)
    torch.testing.assert_close(y[:, :channels], torch.nn.functional.avg_pool2d(x, 2))  # band-major: averages first
    torch.testing.assert_close(haar(y, rev=True), x)
    # orthogonal up to the factor 4: energy is kept as sum(y^2) * 4 = sum(x^2)
    torch.testing.assert_close((y ** 2).sum() * 4, (x ** 2).sum())


def test_latent_resampling():
    net = InvDN(**MANIFESTS["small"]["kwargs"]).eval()
    x = torch.rand(1, 3, 8, 12)
    with torch.no_grad():
        (a, lq_a), (b, lq_b) = net(x), net(x)
        noise = torch.randn(1, net.noise_channels, 8, 12)  # full size, as PaddleGAN's model draws it
        c, _ = net(x, noise)
        d, _ = net(x, noise[:, :, :2, :3].clone())
    assert torch.equal(lq_a, lq_b) and not torch.equal(a, b)  # a fresh sample each call
    assert torch.equal(c, d)  # noise is cropped to the latent's size
    assert net.noise_channels == 45 and lq_a.shape == (1, 48, 2, 3)


@pytest.mark.parametrize("kwargs", [dict(scale=3, down_num=2), dict(scale=4, down_num=1), dict(scale=0, down_num=0),
                                    dict(scale=4, down_num=2, block_num=[8])])
def test_bad_constructor_args(kwargs):
    with pytest.raises(ConfigError, match="InvDN"):
        build_generator(dict({"name": "InvDN", "block_num": [1, 1]}, **kwargs))


def test_three_levels():
    net = InvDN(block_num=[1, 1, 1], scale=8, down_num=3)
    x = torch.rand(1, 3, 8, 16)
    with torch.no_grad():
        out, lq = net(x)
        assert out.shape == x.shape and lq.shape == (1, 192, 1, 2)
        assert (net.transform(net.transform(x), rev=True) - x).abs().max() < 1e-5


@pytest.mark.parametrize("hw", [(7, 8), (8, 6), (5, 5)])
def test_size_not_multiple_of_scale_is_refused(hw):
    with pytest.raises(ValueError, match="multiples of 4"):
        InvDN(block_num=[1, 1])(torch.rand(1, 3, *hw))


def test_config_sized_net_loads_strictly_from_a_nested_pdparams_file(tmp_path):
    """PaddleGAN's published InvDN file nests the weights under 'generator'."""
    entry = MANIFESTS["invdn_denoising"]
    state = rule_state(entry["manifest"], true_haar=True)
    net = InvDN(**entry["kwargs"])
    load_paddle_state_dict(net, write_pdparams(tmp_path / "w.pdparams", {"generator": state}), key="generator")
    got = net.state_dict()
    assert all(np.array_equal(got[n].numpy(), v) for n, v in state.items())
    x = torch.rand(1, 3, 8, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (net.transform(net.transform(x), rev=True) - x).abs().max() < 5e-5  # fp32 through 8 coupling blocks

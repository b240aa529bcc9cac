"""MPRNet against PaddleGAN: the `.pdparams` names / shapes / order of PaddleGAN's nets
(tests/fixtures/restoration/mprnet_manifest.json, hand-written from PaddleGAN's code and checked
against PaddleGAN's own nets by make_mpr_invdn_reference.py), a strict load of rule weights
through the converter, outputs equal to PaddleGAN's (mprnet_reference.npz), the shared PReLU
taking the value under its last name, and the maths of the three stages."""
import json
import os

import numpy as np
import pytest
import torch

from parity import rule_tensor, write_pdparams
from ppgan.models.generators import build_generator
from ppgan.models.generators.mpr import MPRNet, PReLU
from ppgan.utils.errors import CheckpointError
from ppgan.weights.pdparams import load_paddle_state_dict

FIX = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                   "fixtures", "restoration")
with open(os.path.join(FIX, "mprnet_manifest.json")) as f:
    MANIFESTS = json.load(f)
REF = np.load(os.path.join(FIX, "mprnet_reference.npz"), allow_pickle=False)
META = json.loads(str(REF["meta_json"]))


def rule_state(manifest):
    return {n: rule_tensor(n, s, d) for n, s, d in manifest}


def prelu_names(manifest):
    return [n for n, _, _ in manifest if n.endswith("._weight")]


@pytest.mark.parametrize("case", sorted(MANIFESTS))
def test_state_dict_names_shapes_and_order_are_paddlegans(case):
    entry = MANIFESTS[case]
    net = MPRNet(**entry["kwargs"])
    got = [[k, list(v.shape)] for k, v in net.state_dict().items()]
    assert got == [[n, s] for n, s, _ in entry["manifest"]]
    # one PReLU module, listed under every CAB's name
    assert len({id(m) for m in net.modules() if isinstance(m, PReLU)}) == 1
    assert len(prelu_names(entry["manifest"])) > 10


@pytest.mark.parametrize("case", sorted(META["cases"]))
def test_strict_load_and_outputs_match_paddlegan(case, tmp_path):
    entry = MANIFESTS[case]
    state = rule_state(entry["manifest"])
    names = prelu_names(entry["manifest"])
    assert len({float(state[n][0]) for n in names}) == len(names)  # a distinct value under each name
    net = MPRNet(**entry["kwargs"])
    report = load_paddle_state_dict(net, write_pdparams(tmp_path / "w.pdparams", state), strict=True)
    assert not report["missing"] and not report["unexpected"] and not report["mismatched"]
    # Paddle keeps the value stored under the last name; so do we
    kept = META["prelu"][case]
    assert kept["kept_from"] == names[-1]
    weight = next(m for m in net.modules() if isinstance(m, PReLU))._weight.detach()
    assert float(weight) == pytest.approx(kept["value"], abs=0) == float(state[names[-1]][0])
    net.eval()
    for i, spec in enumerate(META["cases"][case]):
        x = torch.from_numpy(REF[f"{case}_{i}_in0"])
        with torch.no_grad():
            outs = net(x)
        assert len(outs) == spec["outputs"] == 3
        for j, out in enumerate(outs):
            want = REF[f"{case}_{i}_out{j}"]
            np.testing.assert_allclose(out.numpy(), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize("mutate", ["drop_first_prelu", "drop_last_prelu", "extra_key", "bad_shape"])
def test_strict_load_must_consume_every_key(mutate, tmp_path):
    entry = MANIFESTS["small"]
    state = rule_state(entry["manifest"])
    names = prelu_names(entry["manifest"])
    if mutate == "drop_first_prelu":
        del state[names[0]]
    elif mutate == "drop_last_prelu":
        del state[names[-1]]
    elif mutate == "extra_key":
        state["act._weight"] = np.ones([1], np.float32)  # the shared act is not a net attribute
    else:
        state["tail.weight"] = np.zeros([3, 11, 3, 3], np.float32)
    path = write_pdparams(tmp_path / "w.pdparams", state)
    with pytest.raises(CheckpointError, match="weights do not fit the model") as err:
        load_paddle_state_dict(MPRNet(**entry["kwargs"]), path, strict=True)
    assert "\n" not in str(err.value)


def _rule_net(case="small"):
    entry = MANIFESTS[case]
    net = MPRNet(**entry["kwargs"])
    load_paddle_state_dict(net, rule_state(entry["manifest"]), strict=True)
    return net.eval()


@pytest.mark.parametrize("shape", [(1, 3, 8, 16), (2, 3, 16, 8), (1, 3, 24, 40)])
def test_stage_outputs_shapes_and_patch_independence(shape):
    """Three full-size images; stage 1 works on the two halves separately, so its top half does
    not depend on the bottom half of the input (stages 2 and 3 mix them)."""
    net = _rule_net()
    g = torch.Generator().manual_seed(shape[2])
    x = torch.rand(shape, generator=g)
    y = x.clone()
    h = shape[2] // 2
    y[:, :, h:] = torch.rand(y[:, :, h:].shape, generator=g)
    with torch.no_grad():
        a, b = net(x), net(y)
    assert [tuple(t.shape) for t in a] == [tuple(shape)] * 3
    assert torch.equal(a[2][:, :, :h], b[2][:, :, :h])
    assert not torch.allclose(a[2][:, :, h:], b[2][:, :, h:])
    assert not torch.allclose(a[1][:, :, :h], b[1][:, :, :h])
    assert not torch.allclose(a[0][:, :, :h], b[0][:, :, :h])


def test_stage3_is_residual_on_the_input():
    net = _rule_net("small_bias")
    with torch.no_grad():
        net.tail.weight.zero_()
        net.tail.bias.zero_()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(net(x)[0], x)


@pytest.mark.parametrize("hw", [(7, 16), (16, 12), (9, 9)])
def test_size_not_multiple_of_8_is_refused(hw):
    with pytest.raises(ValueError, match="multiples of 8"):
        MPRNet(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1)(torch.rand(1, 3, *hw))


def test_registered_and_trains_end_to_end():
    net = build_generator({"name": "MPRNet", "n_feat": 8, "scale_unetfeats": 4, "scale_orsnetfeats": 4, "num_cab": 1})
    outs = net(torch.rand(1, 3, 8, 8))
    sum(o.mean() for o in outs).backward()
    shared = next(m for m in net.modules() if isinstance(m, PReLU))._weight
    assert shared.grad is not None and shared.grad.abs() > 0
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("case", ["mprnet_deblurring", "mprnet_deraining"])
def test_config_sized_net_loads_strictly_from_a_pdparams_file(case, tmp_path):
    entry = MANIFESTS[case]
    state = rule_state(entry["manifest"])
    net = MPRNet(**entry["kwargs"])
    load_paddle_state_dict(net, write_pdparams(tmp_path / "w.pdparams", state), strict=True)
    got = net.state_dict()
    assert all(np.array_equal(got[n].numpy(), state[n]) for n in state if not n.endswith("._weight"))
    assert all(float(got[n]) == float(state[prelu_names(entry["manifest"])[-1]][0]) for n in prelu_names(entry["manifest"]))
    with torch.no_grad():
        outs = net.eval()(torch.rand(1, 3, 8, 16))
    assert all(o.shape == (1, 3, 8, 16) and torch.isfinite(o).all() for o in outs)

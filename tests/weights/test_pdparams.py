"""The .pdparams reader/converter: safe unpickling, layout mapping, strict diffs."""
import os
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from ppgan.utils.errors import CheckpointError
from ppgan.weights import (convert_paddle_state_dict, load_paddle_state_dict, read_pdparams,
                           safe_pickle_load)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.inorm = nn.InstanceNorm2d(4, affine=True)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        x = self.inorm(self.bn(self.conv(x)))
        return self.fc(x.mean((2, 3)))


def paddle_state(seed=0):
    r = np.random.RandomState(seed)
    return {
        "conv.weight": r.randn(4, 3, 3, 3).astype(np.float32), "conv.bias": r.randn(4).astype(np.float32),
        "bn.weight": r.randn(4).astype(np.float32), "bn.bias": r.randn(4).astype(np.float32),
        "bn._mean": r.randn(4).astype(np.float32), "bn._variance": r.rand(4).astype(np.float32) + 0.5,
        "inorm.scale": r.randn(4).astype(np.float32), "inorm.bias": r.randn(4).astype(np.float32),
        "fc.weight": r.randn(4, 2).astype(np.float32),  # Paddle Linear: [in, out]
        "fc.bias": r.randn(2).astype(np.float32),
    }


def test_layout_mapping():
    net, pd = Net(), paddle_state()
    report = load_paddle_state_dict(net, pd)
    assert report["transposed"] == ["fc.weight"]
    sd = net.state_dict()
    assert torch.equal(sd["fc.weight"], torch.from_numpy(pd["fc.weight"].T))
    assert torch.equal(sd["bn.running_var"], torch.from_numpy(pd["bn._variance"]))
    assert torch.equal(sd["inorm.weight"], torch.from_numpy(pd["inorm.scale"]))
    # the numbers compute what Paddle would: y = x @ W + b with W [in, out]
    x = torch.randn(2, 4)
    assert torch.allclose(net.fc(x), x @ torch.from_numpy(pd["fc.weight"]) + torch.from_numpy(pd["fc.bias"]))


@pytest.mark.parametrize("channels", [1, 4])
def test_prelu_weight_name(channels):
    """Paddle stores nn.PReLU's parameter as `_weight`; it fills PyTorch's `weight` strictly."""
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.PReLU(channels))
    pd = {"0.weight": np.ones((4, 3, 1, 1), np.float32), "0.bias": np.zeros(4, np.float32),
          "1._weight": np.full(channels, 0.3, np.float32)}
    load_paddle_state_dict(net, pd)
    assert torch.equal(net[1].weight, torch.full((channels,), 0.3))
    with pytest.raises(CheckpointError):
        load_paddle_state_dict(net, {k: v for k, v in pd.items() if k != "1._weight"})


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pdparams_file_round_trip(tmp_path, protocol):
    pd = paddle_state()
    pd["bn._mean"] = ("bn_mean_var_name", pd["bn._mean"])  # Paddle >= 2.1 stores (name, array)
    pd["StructuredToParameterName@@"] = {"conv.weight": "conv2d_0.w_0"}
    path = tmp_path / "m.pdparams"
    with open(path, "wb") as f:
        pickle.dump(pd, f, protocol=protocol)
    net = Net()
    load_paddle_state_dict(net, str(path))
    assert torch.equal(net.state_dict()["bn.running_mean"], torch.from_numpy(pd["bn._mean"][1]))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pdparams"
    with open(path, "wb") as f:
        pickle.dump({"conv.weight": Evil()}, f)
    with pytest.raises(CheckpointError, match="refused to load 'posix.system'|refused to load 'os.system'"):
        load_paddle_state_dict(Net(), str(path))
    assert not marker.exists()
    # other code-running globals are refused as well
    for payload in (pickle.dumps({"a": Evil()}), b"cbuiltins\neval\n(S'1+1'\ntR."):
        with pytest.raises(CheckpointError):
            safe_pickle_load(payload)


def test_strict_diff_is_readable():
    pd = paddle_state()
    pd["fc.weight"] = np.zeros((5, 2), np.float32)
    del pd["conv.bias"]
    pd["extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(CheckpointError) as err:
        load_paddle_state_dict(Net(), pd)
    msg = str(err.value)
    assert "1 missing in file: conv.bias" in msg
    assert "1 not in model: extra.weight" in msg
    assert "fc.weight [5, 2] vs model [2, 4]" in msg
    state, report = convert_paddle_state_dict(Net(), pd, strict=False)
    assert "conv.weight" in state and report["missing"] == ["conv.bias"]


def test_nested_checkpoint_needs_key():
    nested = {"generator": paddle_state(), "discriminator": {"w": np.zeros(1, np.float32)}}
    with pytest.raises(CheckpointError, match="pass key= one of generator, discriminator"):
        load_paddle_state_dict(Net(), nested)
    load_paddle_state_dict(Net(), nested, key="generator")
    with pytest.raises(CheckpointError, match="available: generator, discriminator"):
        read_pdparams(nested, key="netG")


def test_truncated_file(tmp_path):
    path = tmp_path / "t.pdparams"
    path.write_bytes(pickle.dumps(paddle_state())[:100])
    with pytest.raises(CheckpointError, match="truncated"):
        read_pdparams(str(path))
    with pytest.raises(CheckpointError, match="not found"):
        read_pdparams(str(tmp_path / "missing.pdparams"))

"""BasicSR / Real-ESRGAN `.pth` files through `ppgan.weights.load`: `params_ema` / `params`
wrappers and BasicSR's RRDBNet key names mapped to ours, without building a net."""
import pytest
import torch

from ppgan import weights as W
from ppgan.models.generators.rrdb_net import RRDBNet
from ppgan.utils.errors import CheckpointError
from ppgan.weights.basicsr import basicsr_to_ppgan_rrdbnet, unwrap_state_dict


def one_line_error(fn, match):
    with pytest.raises(CheckpointError, match=match) as info:
        fn()
    assert "\n" not in str(info.value)
    return str(info.value)


def load_basicsr_weights(net, state_or_path, key=None):
    """Read the file (or dict) with `ppgan.weights.load` and fill `net` strictly."""
    weights = W.load(state_or_path, key=key)
    return W.load_into(net, weights)


def basicsr_state_dict(net):
    """Our RRDBNet's weights under BasicSR's names (as a Real-ESRGAN .pth holds them)."""
    names = {"trunk_conv": "conv_body", "upconv1": "conv_up1", "upconv2": "conv_up2", "HRconv": "conv_hr"}
    out = {}
    for k, v in net.state_dict().items():
        head, rest = k.split(".", 1)
        if head == "RRDB_trunk":
            i, rdb, conv = rest.split(".", 2)
            k = f"body.{i}.{rdb.lower()}.{conv}"
        else:
            k = f"{names.get(head, head)}.{rest}"
        out[k] = v.clone()
    return out


@pytest.mark.parametrize("scale", [4, 2])
def test_basicsr_rrdbnet_state_dict_maps_strictly(scale):
    torch.manual_seed(0)
    src = RRDBNet(3, 3, nf=8, nb=2, gc=4, scale=scale).eval()
    sd = basicsr_state_dict(src)
    assert "body.1.rdb3.conv5.weight" in sd and "conv_body.bias" in sd and "conv_hr.weight" in sd
    x = torch.rand(1, 3, 8, 12)
    for wrapped in (sd, {"params": sd}, {"params_ema": sd, "params": {k: v * 0 for k, v in sd.items()}}):
        assert W.load(wrapped).format == "basicsr"
        dst = load_basicsr_weights(RRDBNet(3, 3, nf=8, nb=2, gc=4, scale=scale).eval(), wrapped)
        with torch.no_grad():
            assert torch.equal(dst(x), src(x))
    assert list(basicsr_to_ppgan_rrdbnet(sd)) == list(src.state_dict())


def test_basicsr_file_and_errors(tmp_path):
    torch.manual_seed(0)
    src = RRDBNet(3, 3, nf=8, nb=2, gc=4)
    path = tmp_path / "net_g.pth"
    torch.save({"params_ema": basicsr_state_dict(src)}, path)
    weights = W.load(path)
    assert weights.format == "basicsr" and weights.path == str(path) and list(weights.states) == ["net"]
    assert list(weights.state()) == list(src.state_dict())  # our names, in our order
    dst = load_basicsr_weights(RRDBNet(3, 3, nf=8, nb=2, gc=4), path)
    assert all(torch.equal(a, b) for a, b in zip(dst.state_dict().values(), src.state_dict().values()))
    one_line_error(lambda: load_basicsr_weights(RRDBNet(3, 3, nf=8, nb=3, gc=4), path), "missing")
    one_line_error(lambda: load_basicsr_weights(RRDBNet(3, 3, nf=16, nb=2, gc=4), path), "shape")
    one_line_error(lambda: load_basicsr_weights(RRDBNet(3, 3, nf=8, nb=2, gc=4), {"params": {
        **basicsr_state_dict(src), "body.0.rdb1.conv6.weight": torch.zeros(1)}}), "conv6")
    one_line_error(lambda: unwrap_state_dict({"params": 3}), "not a tensor|expected a state dict")
    one_line_error(lambda: load_basicsr_weights(RRDBNet(3, 3, 8, 2, 4), tmp_path / "none.pth"), "not found")
    assert list(unwrap_state_dict({"module.a": torch.zeros(1)})) == ["a"]


def test_params_key_picks_the_non_ema_weights(tmp_path):
    torch.manual_seed(0)
    ema, raw = RRDBNet(3, 3, nf=8, nb=1, gc=4), RRDBNet(3, 3, nf=8, nb=1, gc=4)
    path = tmp_path / "net_g.pth"
    torch.save({"params_ema": basicsr_state_dict(ema), "params": basicsr_state_dict(raw)}, path)
    for key, ref in ((None, ema), ("params_ema", ema), ("params", raw)):
        dst = load_basicsr_weights(RRDBNet(3, 3, nf=8, nb=1, gc=4), path, key=key)
        assert torch.equal(dst.conv_first.weight, ref.conv_first.weight), key


def test_srvgg_names_load_unchanged(tmp_path):
    from ppgan.models.generators.srvgg import SRVGGNetCompact

    torch.manual_seed(0)
    src = SRVGGNetCompact(num_feat=8, num_conv=2)
    torch.save({"params": src.state_dict()}, tmp_path / "v.pth")
    weights = W.load(tmp_path / "v.pth", spec=W.WeightSpec("v", "SRVGGNetCompact", {}, None, None, "v.pth", "pth"))
    assert weights.format == "basicsr" and weights.arch == "SRVGGNetCompact"
    dst = W.load_into(SRVGGNetCompact(num_feat=8, num_conv=2), weights)
    assert all(torch.equal(a, b) for a, b in zip(dst.state_dict().values(), src.state_dict().values()))

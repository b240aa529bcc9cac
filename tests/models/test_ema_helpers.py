"""ppgan.models.ema: the moving-average rule and the helpers that start an average from its net."""
import torch
from torch import nn

from ppgan.models.ema import copy_net, ema_update, fill_averages, state_with_averages


def nets():
    torch.manual_seed(0)
    g = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    return {"netG": g, "netG_ema": nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))}


def test_ema_update_lerps_parameters_and_copies_buffers():
    n = nets()
    g, e = n["netG"], n["netG_ema"]
    g[1].running_mean.fill_(3.0)
    before = [p.detach().clone() for p in e.parameters()]
    ema_update(e, g, 0.25)
    for b, pe, pg in zip(before, e.parameters(), g.parameters()):
        assert torch.allclose(pe, b + 0.25 * (pg - b))
    assert torch.equal(e[1].running_mean, g[1].running_mean)
    copy_net(e, g)
    assert all(torch.equal(a, b) for a, b in zip(e.state_dict().values(), g.state_dict().values()))


def test_fill_averages_only_for_averages_the_file_lacked():
    n = nets()
    assert fill_averages(n, {"netG", "netG_ema"}) == []
    assert not torch.equal(n["netG_ema"][0].weight, n["netG"][0].weight)
    assert fill_averages(n, {"netG"}) == ["netG_ema"]
    assert torch.equal(n["netG_ema"][0].weight, n["netG"][0].weight)
    assert fill_averages({"netG": n["netG"]}, {"netG"}) == []  # a model without an average


def test_state_with_averages_copies_the_net_state_without_touching_the_input():
    n = nets()
    state = {"netG": n["netG"].state_dict()}
    out = state_with_averages(n, state)
    assert out["netG_ema"] is state["netG"] and set(state) == {"netG"}
    kept = {"netG": 1, "netG_ema": 2}
    assert state_with_averages(n, kept) == kept
    assert "netG_ema" not in state_with_averages({"netG": n["netG"]}, state)

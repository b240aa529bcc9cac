"""The host-sync probe the model tests share (tests/host_reads.py) sees what it must."""
import torch

from host_reads import record_host_reads


def test_probe_records_reads_outside_torch_optim(monkeypatch):
    calls = record_host_reads(monkeypatch)
    t = torch.ones(2)
    t.sum().item()
    float(t[0])
    assert [c.split(" in ")[0] for c in calls] == ["item", "__float__"]
    assert all(__file__ in c for c in calls)
    opt = torch.optim.Adam([torch.nn.Parameter(torch.ones(1))])
    opt.zero_grad()
    (opt.param_groups[0]["params"][0] * 2).sum().backward()
    before = len(calls)
    opt.step()  # Adam's step counters are read inside torch.optim: not counted
    assert len(calls) == before
    monkeypatch.undo()
    t.sum().item()
    assert len(calls) == before

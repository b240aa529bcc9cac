"""Data-parallel training with torchrun: 2 CPU processes (gloo)."""
import json
import sys

import torch
from conftest import ROOT, run_cli, write_yaml


def test_two_process_training_stays_in_sync(tiny_cfg, tmp_path):
    tiny_cfg["total_iters"] = 4
    cfg = write_yaml(tmp_path / "c.yaml", tiny_cfg)
    out = tmp_path / "run"
    proc = run_cli(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                    f"{ROOT}/tools/main.py", "-c", cfg, "--output-dir", str(out), "--device", "cpu"],
                   timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    log = (out / "train.log").read_text()
    assert "2 processes, parameters identical on every process" in log
    records = [json.loads(line) for line in open(out / "log.jsonl")]
    assert [r["iter"] for r in records if "D_fake_loss" in r] == [2, 4]
    # 40 samples / (batch 8 x 2 processes) -> 2 iterations per epoch
    assert [r["epoch"] for r in records if "D_fake_loss" in r] == [0, 1]
    w = torch.load(out / "iter_4_weight.pth", weights_only=True)
    assert set(w["netG"]) and all(torch.isfinite(v).all() for v in w["netG"].values() if v.is_floating_point())
    assert sys.executable

"""CUDA paths: AMP (bf16 / fp16 with a gradient scaler), channels-last and torch.compile.
Run only where a GPU is present."""
import json
import math

import pytest
import torch

from ppgan.engine import Trainer

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_training(tiny_cfg, tmp_path, amp):
    tiny_cfg.update(amp=amp, channels_last=True, total_iters=4)
    tr = Trainer(tiny_cfg, device="cuda", run_dir=str(tmp_path), quiet=True)
    assert (tr.scaler is not None) == (amp == "fp16")
    tr.train()
    w = torch.load(tmp_path / "iter_4_weight.pth", weights_only=True)
    assert all(torch.isfinite(v).all() for v in w["netG"].values() if v.is_floating_point())


@pytest.mark.parametrize("mode", ["default", "reduce-overhead", "max-autotune"])
def test_compile_modes_train(tiny_cfg, tmp_path, mode):
    # 6 iterations: logs and checkpoints at 2, 4, 6, a sample grid at 3 (compiled nets in eval
    # mode between CUDA-graph steps); channels_last is dropped under compile
    tiny_cfg.update(compile=mode, channels_last=True, total_iters=6)
    tr = Trainer(tiny_cfg, device="cuda", run_dir=str(tmp_path), quiet=True)
    assert tr.cudagraphs == (mode != "default")
    tr.train()
    w = torch.load(tmp_path / "iter_6_weight.pth", weights_only=True)
    assert "model.0.weight" in w["netG"] and not any("_orig_mod" in k for k in w["netG"])
    assert all(torch.isfinite(v).all() for v in w["netG"].values() if v.is_floating_point())
    records = [json.loads(line) for line in open(tmp_path / "log.jsonl") if "D_fake_loss" in line]
    assert [r["iter"] for r in records] == [2, 4, 6]
    assert (tmp_path / "visual" / "iter_0000003_fixed_samples.png").is_file()


@pytest.mark.parametrize("amp", [None, "bf16", "fp16"])
def test_steady_state_step_never_synchronizes(tiny_cfg, tmp_path, amp):
    """CUDA's own detector: any synchronizing call in the step raises."""
    from ppgan.engine.trainer import DevicePrefetcher

    tiny_cfg.update(amp=amp, log_config={"interval": 100, "visual_interval": 100},
                    snapshot_config={"interval": 100})
    tiny_cfg["optimizer"]["optimizer_G"]["clip_grad_norm"] = 1.0  # unscale + clip in the fp16 path
    tr = Trainer(tiny_cfg, device="cuda", run_dir=str(tmp_path), quiet=True)
    batches = iter(DevicePrefetcher(tr.train_loader, tr.device))
    tr.train_step(next(batches))
    tr.train_step(next(batches))
    torch.cuda.synchronize()
    batch = next(batches)
    torch.cuda.set_sync_debug_mode("error")
    try:
        tr.train_step(batch)
        tr._periodic(None, 0.0, 3)
        tr.train_step(next(batches))
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert tr.meter.first_nonfinite() is None


def test_cuda_matches_cpu_forward(tiny_cfg):
    from ppgan.models import build_model

    model = build_model(tiny_cfg["model"])
    g = model.nets["netG"].eval()
    z = torch.randn(4, 8, 1, 1)
    cpu = g(z)
    gpu = g.cuda()(z.cuda()).cpu()
    assert math.isclose(float((cpu - gpu).abs().max()), 0.0, abs_tol=1e-4)

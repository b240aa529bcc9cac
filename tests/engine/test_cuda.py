"""CUDA paths: AMP (bf16 / fp16 with a gradient scaler), channels-last and torch.compile.
Run only where a GPU is present."""
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


def test_compile_keeps_checkpoint_names(tiny_cfg, tmp_path):
    tiny_cfg.update(compile="default", total_iters=2)
    tr = Trainer(tiny_cfg, device="cuda", run_dir=str(tmp_path), quiet=True)
    tr.train()
    w = torch.load(tmp_path / "iter_2_weight.pth", weights_only=True)
    assert "model.0.weight" in w["netG"] and not any("_orig_mod" in k for k in w["netG"])


def test_cuda_matches_cpu_forward(tiny_cfg):
    from ppgan.models import build_model

    model = build_model(tiny_cfg["model"])
    g = model.nets["netG"].eval()
    z = torch.randn(4, 8, 1, 1)
    cpu = g(z)
    gpu = g.cuda()(z.cuda()).cpu()
    assert math.isclose(float((cpu - gpu).abs().max()), 0.0, abs_tol=1e-4)

"""`compile:` in a config: torch.compile'd nets train like eager ones; a mode that cannot work
is refused before training with one line."""
import copy

import pytest
import torch

from ppgan.engine import Trainer
from ppgan.utils.errors import ConfigError


def _two_steps(cfg, tmp_path, name):
    tr = Trainer(cfg, device="cpu", run_dir=str(tmp_path / name), quiet=True)
    batches = iter(tr.train_loader)
    return tr, [{k: float(v) for k, v in tr.train_step(next(batches)).items()} for _ in range(2)]


def test_compile_default_trains_like_eager_on_cpu(tiny_cfg, tmp_path):
    tiny_cfg["total_iters"] = 2
    _, eager = _two_steps(copy.deepcopy(tiny_cfg), tmp_path, "eager")
    tr, compiled = _two_steps(dict(copy.deepcopy(tiny_cfg), compile="default"), tmp_path, "compiled")
    assert tr.compile_mode == "default" and not tr.cudagraphs
    assert all(hasattr(net, "_compiled_call_impl") and net._compiled_call_impl is not None
               for net in tr.model.nets.values())
    for a, b in zip(eager, compiled):
        assert a.keys() == b.keys()
        for k in a:
            assert b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-6), k
    # checkpoint keys are the plain module's
    assert "model.0.weight" in tr.model.state_dict()["netG"]


@pytest.mark.parametrize("value", ["fast", "max_autotune", 3])
def test_unknown_compile_mode_is_refused_at_start(tiny_cfg, tmp_path, value):
    tiny_cfg["compile"] = value
    with pytest.raises(ConfigError, match="is not a torch.compile mode; use one of default, reduce-overhead"):
        Trainer(tiny_cfg, device="cpu", run_dir=str(tmp_path), quiet=True)


@pytest.mark.parametrize("value", [False, "none", None])
def test_compile_off(tiny_cfg, tmp_path, value):
    tiny_cfg["compile"] = value
    tr = Trainer(tiny_cfg, device="cpu", run_dir=str(tmp_path), quiet=True)
    assert tr.compile_mode is None and not tr.model.compiled_cudagraphs


def test_compile_without_a_cpu_compiler_is_refused_at_start(tiny_cfg, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    tiny_cfg["compile"] = True
    with pytest.raises(ConfigError, match="compile: default on cpu needs a C.. compiler"):
        Trainer(tiny_cfg, device="cpu", run_dir=str(tmp_path), quiet=True)


def test_kept_outputs_are_copies_under_cuda_graphs(tiny_cfg):
    """With CUDA-graph nets the next replay overwrites outputs: what a model keeps is cloned."""
    from ppgan.models import build_model

    model = build_model(tiny_cfg["model"])
    model.setup_input({"img": torch.rand(4, 1, 16, 16)})
    out = model.nets["netG"](model.nets["netG"].random_inputs(4))
    assert model.keep(out).data_ptr() == out.data_ptr()
    model.compiled_cudagraphs = True
    kept = model.keep(out)
    assert kept.data_ptr() != out.data_ptr() and torch.equal(kept, out) and not kept.requires_grad

"""The steady-state training step never waits for the device: losses stay tensors, the
finiteness check accumulates on the device and is read only at check points."""
import contextlib
import math
import os

import pytest
import torch
from conftest import ROOT, run_cli, write_yaml

from ppgan.engine import Trainer
from ppgan.engine.trainer import NO_BAD_ITER, DevicePrefetcher, LossMeter, decode_nonfinite
from ppgan.utils.config import load_config
from ppgan.utils.errors import NonFiniteLossError

SYNC_METHODS = ("item", "__float__", "__bool__", "__int__", "__index__", "tolist", "cpu", "numpy")


@contextlib.contextmanager
def count_host_syncs():
    """Count calls of every Tensor method that copies a value to the host (on a GPU each one
    waits for all queued kernels)."""
    calls = []
    originals = {name: getattr(torch.Tensor, name) for name in SYNC_METHODS}

    def wrap(name, fn):
        def counted(self, *args, **kwargs):
            calls.append(name)
            return fn(self, *args, **kwargs)
        return counted

    for name, fn in originals.items():
        setattr(torch.Tensor, name, wrap(name, fn))
    try:
        yield calls
    finally:
        for name, fn in originals.items():
            setattr(torch.Tensor, name, fn)


def dcgan_cfg():
    """configs/dcgan_digits.yaml (the nets, losses and optimizers of the benchmark) on a small
    slice of the digits."""
    cfg = load_config(os.path.join(ROOT, "configs", "dcgan_digits.yaml"))
    cfg["dataset"]["train"].update(num_samples=64, batch_size=16, cache=False)
    cfg["log_config"] = {"interval": 4, "visual_interval": 100}
    cfg["snapshot_config"] = {"interval": 100}
    cfg["total_iters"] = 8
    return cfg


def test_steady_state_dcgan_step_has_no_host_sync(tmp_path):
    tr = Trainer(dcgan_cfg(), device="cpu", run_dir=str(tmp_path), quiet=True)
    batches = iter(DevicePrefetcher(tr.train_loader, tr.device))
    tr.train_step(next(batches))  # first steps: lazy optimizer state, meter slots
    tr.train_step(next(batches))
    batch = next(batches)
    with count_host_syncs() as calls:
        losses = tr.train_step(batch)
        tr._periodic(None, 0.0, 3)  # iteration 3: no log / visual / validation / snapshot
    assert calls == [], f"host syncs in a steady-state step: {calls}"
    assert set(losses) == {"D_fake_loss", "D_real_loss", "G_adv_loss"}
    assert all(torch.is_tensor(v) and not v.requires_grad for v in losses.values())
    # the counter does see reads: the log iteration reads the meter
    with count_host_syncs() as calls:
        tr.train_step(next(batches))
        assert tr.iter == 4
        with contextlib.redirect_stderr(open(os.devnull, "w")):
            from tqdm import tqdm

            tr._periodic(tqdm(disable=True), 0.0, 4)
    assert calls, "the log iteration should read the losses"
    record = [line for line in open(tmp_path / "log.jsonl") if '"iter": 4' in line]
    assert record and "G_adv_loss" in record[0]


def test_losses_logged_as_window_means(tiny_cfg, tmp_path):
    from ppgan.models.gan_model import GANModel

    real_step = GANModel.train_iter
    seen = []

    def step(self, optimizers=None):
        out = real_step(self, optimizers)
        seen.append(float(out["D_real_loss"]))
        return out

    GANModel.train_iter = step
    try:
        Trainer(tiny_cfg, device="cpu", run_dir=str(tmp_path), quiet=True).train()
    finally:
        GANModel.train_iter = real_step
    import json

    logged = [json.loads(line) for line in open(tmp_path / "log.jsonl") if "D_real_loss" in line]
    assert [r["iter"] for r in logged] == [2, 4, 6]
    for r in logged:  # log interval 2: the mean of the two iterations since the last record
        i = r["iter"]
        assert r["D_real_loss"] == pytest.approx((seen[i - 2] + seen[i - 1]) / 2, rel=1e-5)


def test_loss_meter_subsets_means_and_first_nonfinite():
    m = LossMeter("cpu")
    m.add({"a": torch.tensor(1.0), "b": torch.tensor(2.0)}, 1)
    m.add({"a": torch.tensor(3.0)}, 2)                 # no 'b' this iteration (e.g. disc_iters)
    m.add({"c": 0.5, "a": torch.tensor(5.0)}, 3)       # a new term; plain numbers are accepted
    assert m.first_nonfinite() is None
    assert m.read_means() == {"a": 3.0, "b": 2.0, "c": 0.5}
    assert m.read_means() == {}                         # a new window
    m.add({"a": torch.tensor(1.0), "b": torch.tensor(float("-inf"))}, 4)
    m.add({"a": torch.tensor(float("nan")), "b": torch.tensor(float("nan"))}, 5)
    m.add({"c": torch.tensor(float("inf"))}, 6)
    it, name, value = m.first_nonfinite()
    assert (it, name) == (4, "b") and value == float("-inf")
    fresh = LossMeter("cpu")
    fresh.add({"x": torch.tensor(1.0), "y": torch.tensor(float("nan"))}, 7)
    it, name, value = fresh.first_nonfinite()
    assert (it, name) == (7, "y") and math.isnan(value)


def test_nonfinite_reduction_gives_every_process_the_same_answer():
    """The check-point reduction of data-parallel runs (an all-reduce MIN of the encoded
    first-bad iterations), applied by hand to two processes' meters."""
    ranks = [LossMeter("cpu"), LossMeter("cpu")]
    for it in range(1, 6):
        for r, m in enumerate(ranks):
            bad = (r == 1 and it == 3) or (r == 0 and it == 4)
            m.add({"D": torch.tensor(1.0), "G": torch.tensor(float("inf") if bad else 1.0)}, it)
    assert ranks[0].first_nonfinite()[:2] == (4, "G") and ranks[1].first_nonfinite()[:2] == (3, "G")
    codes = []
    ranks[0].first_nonfinite(reduce=codes.append)
    ranks[1].first_nonfinite(reduce=codes.append)
    reduced = torch.minimum(*codes)
    answers = []
    for _ in ranks:
        def all_reduce_min(t):
            t.copy_(reduced)
        answers.append(ranks[0].first_nonfinite(reduce=all_reduce_min))
    assert answers[0] == answers[1] == (3, "G", float("inf"))
    assert decode_nonfinite([NO_BAD_ITER, NO_BAD_ITER], ["a", "b"]) is None


def test_nonfinite_loss_found_at_the_next_check_point(tiny_cfg, tmp_path):
    """A NaN at iteration 3 is read at iteration 4 (log + snapshot): the message names
    iteration 3 and the term, and no checkpoint is written after it."""
    from ppgan.models.gan_model import GANModel

    real_step = GANModel.train_iter

    def step(self, optimizers=None):
        out = real_step(self, optimizers)
        if self.current_iter == 2:  # the 3rd iteration
            out["D_fake_loss"] = out["D_fake_loss"] * float("nan")
        return out

    tiny_cfg["log_config"] = {"interval": 4, "visual_interval": 100}
    tiny_cfg["snapshot_config"] = {"interval": 4}
    GANModel.train_iter = step
    try:
        tr = Trainer(tiny_cfg, device="cpu", run_dir=str(tmp_path), quiet=True)
        with pytest.raises(NonFiniteLossError) as err:
            tr.train()
    finally:
        GANModel.train_iter = real_step
    msg = str(err.value)
    assert "'D_fake_loss' is nan at iteration 3" in msg and "none written yet" in msg
    assert tr.iter == 4 and not list(tmp_path.glob("iter_*"))


def test_data_parallel_processes_stop_together_on_one_rank_nan(tiny_cfg, tmp_path):
    """Only rank 1 sees an inf; both processes stop at the next check point with the same
    message instead of one stopping and the other waiting in a collective forever."""
    tiny_cfg["total_iters"] = 6
    tiny_cfg["log_config"] = {"interval": 4, "visual_interval": 100}
    tiny_cfg["snapshot_config"] = {"interval": 2}
    cfg = write_yaml(tmp_path / "c.yaml", tiny_cfg)
    driver = tmp_path / "driver.py"
    driver.write_text(f"""import os, sys
sys.path.insert(0, {ROOT!r})
from ppgan.models.gan_model import GANModel
real_step = GANModel.train_iter
def step(self, optimizers=None):
    out = real_step(self, optimizers)
    if self.current_iter == 2 and os.environ["RANK"] == "1":
        out["G_adv_loss"] = out["G_adv_loss"] + float("inf")
    return out
GANModel.train_iter = step
from ppgan.cli import run_train
sys.exit(run_train(sys.argv[1:]))
""")
    out = tmp_path / "run"
    proc = run_cli(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(driver),
                    "-c", cfg, "--output-dir", str(out), "--device", "cpu"], timeout=120)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text[-3000:]
    msg = "loss 'G_adv_loss' is inf at iteration 3; stopped. Last good checkpoint: " + \
        str(out / "iter_2_checkpoint.pth")
    assert text.count(msg) == 2, text[-3000:]
    assert sorted(p.name for p in out.glob("iter_*_checkpoint.pth")) == ["iter_2_checkpoint.pth"]

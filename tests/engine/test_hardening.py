"""Hostile or mismatched inputs to the training engine end in one `error:` line and leave no files
behind: `--resume` / `--load` of another model or size, damaged checkpoints, setup failures (no
empty run folder or train.log), running out of memory (allocator errors, `ulimit -v`), and
kill + resume cycles that must leave every iteration in log.jsonl exactly once."""
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import ROOT, TINY_CYCLEGAN, tiny_gan_cfg, write_yaml

from ppgan.cli import run_train
from ppgan.engine import Trainer
from ppgan.engine import checkpoint as ckpt
from ppgan.utils.errors import PPGANError


_cfg = tiny_gan_cfg


def _one_line_error(capsys, code):
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code != 0, err
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    line = lines[0]
    for advice in ("weights_only", "still be loaded", "trust the source", "safe_globals"):
        assert advice not in line, line  # never repeat torch's advice to turn the safety off
    return line


def _snapshot(folder):
    """{relative path: (size, mtime_ns)} of everything under `folder`."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.stat(p)
            out[os.path.relpath(p, folder)] = (st.st_size if name in filenames else -1, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny GAN run (4 iterations, checkpoints at 2 and 4) and its config file."""
    root = tmp_path_factory.mktemp("trained")
    cfg = _cfg()
    run = root / "run"
    Trainer(cfg, device="cpu", run_dir=str(run), quiet=True).train()
    return {"cfg": cfg, "config": write_yaml(root / "gan.yaml", cfg), "run": run,
            "ckpt": str(run / "iter_4_checkpoint.pth"), "weights": str(run / "iter_4_weight.pth")}


CYCLEGAN = TINY_CYCLEGAN
CYCLE_OPT = {"optimizer_G": {"name": "Adam", "net_names": ["netG_A", "netG_B"]},
             "optimizer_D": {"name": "Adam", "net_names": ["netD_A", "netD_B"]}}
CONDITIONAL_G = {"name": "ConditionalDeepConvGenerator", "latent_dim": 8, "output_nc": 1, "size": 16, "ngf": 4,
                 "n_class": 10}

# (config changes, what the one line must say)
OTHER_MODELS = {
    "cyclegan": ({"model": CYCLEGAN, "optimizer": CYCLE_OPT},
                 r"was written by model GANModel \(generator DCGenerator, discriminator DCDiscriminator\), "
                 r"this config builds CycleGANModel \(generator ResnetGenerator, discriminator NLayerDiscriminator\)"),
    "conditional": ({"model__generator": CONDITIONAL_G},
                    r"written by model GANModel \(generator DCGenerator.*this config builds GANModel "
                    r"\(generator ConditionalDeepConvGenerator"),
    "dcgan-name": ({"model__name": "DCGANModel"}, r"written by model GANModel .*this config builds DCGANModel"),
    "wider-G": ({"model__generator__ngf": 8},
                r"does not fit net 'netG' \(DCGenerator\) of this config: model\.0\.weight is \[8, 8, 4, 4\] in the "
                r"file, \[8, 16, 4, 4\] in the model.*the config differs in model\.generator\.ngf \(4 in the file, "
                r"8 here\)"),
    "wider-D": ({"model__discriminator__ndf": 8}, r"does not fit net 'netD'.*model\.discriminator\.ndf"),
    "bigger-images": ({"model__generator__output_size": 32, "model__discriminator__input_size": 32,
                       "dataset__train__size": 32},
                      r"does not fit net 'netG'.*missing in the file.*model\.generator\.output_size \(16 in the file, "
                      r"32 here\)"),
}


@pytest.mark.parametrize("other", list(OTHER_MODELS))
def test_resume_with_another_model_is_one_line_and_touches_nothing(trained, tmp_path, capsys, other):
    changes, expect = OTHER_MODELS[other]
    config = write_yaml(tmp_path / "other.yaml", _cfg(**changes))
    before = _snapshot(trained["run"])
    line = _one_line_error(capsys, run_train(["-c", config, "--resume-config", "file", "--resume", trained["ckpt"], "--device", "cpu",
                                              "--quiet"]))
    assert re.search(expect, line), line
    assert trained["ckpt"] in line
    assert _snapshot(trained["run"]) == before  # no train.log / config.yaml written into its folder


@pytest.mark.parametrize("other", ["cyclegan", "conditional", "wider-G", "bigger-images"])
def test_load_of_another_model_is_one_line_and_leaves_no_run_folder(trained, tmp_path, capsys, other):
    changes, _ = OTHER_MODELS[other]
    config = write_yaml(tmp_path / "other.yaml", _cfg(**changes))
    out = tmp_path / "new" / "run"
    line = _one_line_error(capsys, run_train(["-c", config, "--load", trained["weights"], "--device", "cpu",
                                              "--quiet", "--output-dir", str(out)]))
    assert trained["weights"] in line
    if other in ("cyclegan", "conditional"):
        assert re.search(r"was written by model GANModel \(generator DCGenerator.*this config builds", line), line
    else:
        assert "the config differs in model.generator" in line, line
    assert not (tmp_path / "new").exists()


def _damaged(trained, tmp_path, kind):
    """A file for --resume that is not a usable checkpoint of this model."""
    state = ckpt.load(trained["ckpt"])
    path = tmp_path / f"{kind}_checkpoint.pth"
    if kind == "weights-file":
        return trained["weights"], "is not a training checkpoint (no 'nets')"
    if kind == "top-level-list":
        torch.save([1, 2, 3], path)
        return str(path), "is not a training checkpoint (it holds a list)"
    if kind == "renamed-nets-no-config":
        state.pop("config")
        state["nets"] = {"netA": state["nets"]["netG"], "netB": state["nets"]["netD"]}
        torch.save(state, path)
        return str(path), "holds nets netA, netB; this config's model GANModel needs netG, netD"
    if kind == "nets-not-a-dict":
        state["nets"] = [1, 2]
        torch.save(state, path)
        return str(path), "'nets' is a list"
    if kind == "swapped-optimizers":
        opt = state["optimizers"]
        opt["optimizer_G"], opt["optimizer_D"] = opt["optimizer_D"], opt["optimizer_G"]
        opt["optimizer_G"]["param_groups"][0]["params"] = [0]
        torch.save(state, path)
        return str(path), "its 'optimizers.optimizer_G' entry does not fit"
    if kind == "missing-optimizer":
        del state["optimizers"]["optimizer_D"]
        torch.save(state, path)
        return str(path), "has no state for optimizer 'optimizer_D' (it has: optimizer_G)"
    if kind == "iter-not-a-number":
        state["iter"] = "four"
        torch.save(state, path)
        return str(path), "its 'iter' entry does not fit"
    if kind == "rng-garbage":
        state["rng"] = {"torch": torch.zeros(3)}
        torch.save(state, path)
        return str(path), "its 'rng' entry does not fit"
    if kind in ("foreign-global-zip", "foreign-global-legacy"):
        import fractions

        state["iter"] = fractions.Fraction(4, 1)  # a class torch's weights-only loader refuses
        torch.save(state, path, _use_new_zipfile_serialization=kind.endswith("zip"))
        return str(path), str(path)
    if kind == "truncated":
        data = open(trained["ckpt"], "rb").read()
        path.write_bytes(data[:len(data) // 2])
        return str(path), str(path)
    if kind == "bit-flipped":
        data = bytearray(open(trained["ckpt"], "rb").read())
        for i in range(0, len(data), 97):
            data[i] ^= 0x5A
        path.write_bytes(bytes(data))
        return str(path), str(path)
    if kind == "empty":
        path.write_bytes(b"")
        return str(path), str(path)
    if kind == "missing":
        return str(tmp_path / "nope_checkpoint.pth"), "not found"
    raise AssertionError(kind)


DAMAGED = ["weights-file", "top-level-list", "renamed-nets-no-config", "nets-not-a-dict", "swapped-optimizers",
           "missing-optimizer", "iter-not-a-number", "rng-garbage", "foreign-global-zip", "foreign-global-legacy",
           "truncated", "bit-flipped", "empty", "missing"]


@pytest.mark.parametrize("kind", DAMAGED)
def test_resume_from_a_damaged_checkpoint_is_one_line(trained, tmp_path, capsys, kind):
    path, expect = _damaged(trained, tmp_path, kind)
    folder = os.path.dirname(path)
    before = _snapshot(folder) if os.path.isdir(folder) else None
    line = _one_line_error(capsys, run_train(["-c", trained["config"], "--resume", path, "--device", "cpu",
                                              "--quiet"]))
    assert expect in line, line
    if before is not None:
        assert _snapshot(folder) == before


@pytest.mark.parametrize("kind", ["top-level-list", "foreign-global-zip", "foreign-global-legacy", "truncated",
                                  "bit-flipped", "empty", "missing"])
def test_load_of_a_damaged_file_is_one_line(trained, tmp_path, capsys, kind):
    path, _ = _damaged(trained, tmp_path, kind)
    out = tmp_path / "out"
    line = _one_line_error(capsys, run_train(["-c", trained["config"], "--load", path, "--device", "cpu",
                                              "--quiet", "--output-dir", str(out)]))
    assert os.path.basename(path) in line, line
    assert not out.exists()


# ---- failed setup leaves no run folder or empty train.log ---------------------------------------------
SETUP_FAILURES = {
    "missing-dataset": ({"dataset__train": {"name": "ImageFolderDataset", "dataroot": "/nonexistent/ppgan-data",
                                            "batch_size": 2}}, [], "nonexistent"),
    "bad-optimizer-net": ({"optimizer__optimizer_G__net_names": ["netX"]}, [], "no net 'netX'"),
    "resume-missing-file": ({}, ["--resume", os.path.join("gone", "iter_2_checkpoint.pth")], "not found"),
    "load-missing-file": ({}, ["--load", "/nonexistent/w.pth"], "not found"),
    "bad-compile-mode": ({"compile": "fastest"}, [], "not a torch.compile mode"),
}


@pytest.mark.parametrize("case", list(SETUP_FAILURES))
@pytest.mark.parametrize("where", ["new-nested", "existing-empty", "default"])
def test_failed_setup_leaves_no_files(tmp_path, capsys, monkeypatch, case, where):
    changes, args, expect = SETUP_FAILURES[case]
    cfg = _cfg(**changes)
    cfg["output_dir"] = str(tmp_path / "output_dir")
    config = write_yaml(tmp_path / "c.yaml", cfg)
    monkeypatch.chdir(tmp_path)
    if where == "new-nested":
        args = args + ["--output-dir", str(tmp_path / "a" / "b" / "run")]
    elif where == "existing-empty":  # made by the user beforehand: it stays, and stays empty
        (tmp_path / "mine").mkdir()
        args = args + ["--output-dir", str(tmp_path / "mine")]
    before = sorted(os.listdir(tmp_path))
    line = _one_line_error(capsys, run_train(["-c", config, "--device", "cpu", "--quiet"] + args))
    assert expect in line, line
    assert sorted(os.listdir(tmp_path)) == before
    if where == "existing-empty":
        assert os.listdir(tmp_path / "mine") == []


def test_resume_beside_someone_elses_files_adds_nothing_when_it_fails(trained, tmp_path, capsys):
    # a copy of the checkpoint in a folder with files of its own, resumed with a config it does not fit
    folder = tmp_path / "theirs"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    data = open(trained["ckpt"], "rb").read()
    (folder / "iter_4_checkpoint.pth").write_bytes(data)
    config = write_yaml(tmp_path / "wide.yaml", _cfg(model__generator__ngf=8))
    _one_line_error(capsys, run_train(["-c", config, "--resume-config", "file", "--resume", str(folder / "iter_4_checkpoint.pth"),
                                       "--device", "cpu", "--quiet"]))
    assert sorted(os.listdir(folder)) == ["iter_4_checkpoint.pth", "notes.txt"]


# ---- log.jsonl after kills and resumes ----------------------------------------------------------------
class Killed(BaseException):
    """Stands for SIGKILL in-process: raised right after an iteration's log record is written."""


def _logged_iters(run):
    iters = []
    with open(run / "log.jsonl", encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)  # every line parses
            if "eval" not in record:
                iters.append(record["iter"])
    return iters


def _latest_checkpoint(run):
    found = [p for p in os.listdir(run) if p.endswith("_checkpoint.pth")]
    return str(run / max(found, key=lambda p: int(p.split("_")[1])))


@pytest.mark.parametrize("kills", [[5], [3, 7], [4], [3, 4, 8], [9]])
def test_log_jsonl_has_each_iteration_once_after_kills_and_resumes(tmp_path, monkeypatch, kills):
    cfg = _cfg(total_iters=10)
    cfg["log_config"] = {"interval": 1, "visual_interval": 0}
    cfg["snapshot_config"] = {"interval": 3, "max_keep": 10}
    run = tmp_path / "run"
    real = Trainer._periodic
    pending = list(kills)

    def periodic(self, *a):
        real(self, *a)
        if pending and self.iter == pending[0]:
            pending.pop(0)
            raise Killed()

    monkeypatch.setattr(Trainer, "_periodic", periodic)
    tr = Trainer(cfg, device="cpu", run_dir=str(run), quiet=True)
    while True:
        try:
            tr.train()
            break
        except Killed:
            tr.logger.close()
            with open(run / "log.jsonl", "a", encoding="utf-8") as f:
                f.write('{"time": 1.0, "iter": 99, "D_fa')  # a record cut short by the kill
            tr = Trainer(cfg, device="cpu", resume=_latest_checkpoint(run), quiet=True)
    tr.logger.close()
    assert _logged_iters(run) == list(range(1, 11))
    log = (run / "train.log").read_text()
    assert log.count("resumed from") == len(kills)


@pytest.mark.slow
def test_sigkill_and_resume_keeps_each_iteration_once(tmp_path):
    """Real SIGKILLs of tools/main.py at moments read off its log, then resumes to the end."""
    cfg = _cfg(total_iters=40)
    cfg["log_config"] = {"interval": 1, "visual_interval": 0}
    cfg["snapshot_config"] = {"interval": 4, "max_keep": 3}
    config = write_yaml(tmp_path / "c.yaml", cfg)
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    base = [sys.executable, os.path.join(ROOT, "tools", "main.py"), "-c", config, "--device", "cpu", "--quiet"]
    args = ["--output-dir", str(run)]
    for kill_after in (9, 23):
        proc = subprocess.Popen(base + args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        try:
            while time.time() < deadline and proc.poll() is None:
                log = run / "log.jsonl"
                if log.exists() and log.read_text().count("\n") >= kill_after:
                    break
                time.sleep(0.01)
            assert proc.poll() is None, proc.stderr.read()
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        args = ["--resume", _latest_checkpoint(run)]
    done = subprocess.run(base + args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _logged_iters(run) == list(range(1, 41))


# ---- running out of memory ---------------------------------------------------------------------------
def _alloc_error():
    return RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
                        "memory: you tried to allocate 2097152 bytes. Error code 12 (Cannot allocate memory)")


def _numpy_error():
    try:
        np.empty((1 << 50,), dtype=np.uint8)  # 1 PiB: numpy's _ArrayMemoryError
    except MemoryError as e:
        return e
    pytest.skip("this machine allocated 1 PiB")


def _cv2_error():
    import cv2

    return cv2.error("OpenCV(4.x) alloc.cpp:73: error: (-4:Insufficient memory) Failed to allocate 65536 bytes")


OOM_KINDS = {
    "cpu-allocator": (_alloc_error, "could not allocate 2.00 MiB"),
    "memory-error": (lambda: MemoryError(), "out of memory"),
    "numpy": (_numpy_error, "could not allocate 1.00 PiB"),
    "cuda": (lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB"),
             "could not allocate 20.0 MiB"),
    "opencv": (_cv2_error, "could not allocate 64.0 KiB"),
    "thread": (lambda: RuntimeError("can't start new thread"), "out of memory"),
}


@pytest.mark.parametrize("kind", list(OOM_KINDS))
def test_out_of_memory_in_training_is_one_line(tmp_path, capsys, monkeypatch, kind):
    from ppgan.models.gan_model import GANModel

    make, expect = OOM_KINDS[kind]
    error = make()
    real = GANModel.train_iter

    def step(self, optimizers=None):
        if self.current_iter == 2:
            raise error
        return real(self, optimizers)

    monkeypatch.setattr(GANModel, "train_iter", step)
    config = write_yaml(tmp_path / "c.yaml", _cfg())
    line = _one_line_error(capsys, run_train(["-c", config, "--device", "cpu", "--quiet", "--output-dir",
                                              str(tmp_path / "run")]))
    assert line.startswith("error: out of memory at iteration 3"), line
    assert expect in line and "lower dataset.train.batch_size (now 8)" in line, line
    assert (tmp_path / "run" / "iter_2_checkpoint.pth").is_file()  # the run so far is kept


@pytest.mark.parametrize("kind", ["cpu-allocator", "memory-error", "thread"])
def test_out_of_memory_during_setup_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch, kind):
    import ppgan.engine.trainer as trainer_mod

    make, expect = OOM_KINDS[kind]

    def build(cfg):
        raise make()

    monkeypatch.setattr(trainer_mod, "build_model", build)
    config = write_yaml(tmp_path / "c.yaml", _cfg())
    line = _one_line_error(capsys, run_train(["-c", config, "--device", "cpu", "--quiet", "--output-dir",
                                              str(tmp_path / "new" / "run")]))
    assert line.startswith("error: out of memory while setting up the run") and expect in line, line
    assert not (tmp_path / "new").exists()


def test_other_runtime_errors_keep_their_traceback(tmp_path, monkeypatch):
    from ppgan.models.gan_model import GANModel

    def step(self, optimizers=None):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")  # a bug, not the user's input

    monkeypatch.setattr(GANModel, "train_iter", step)
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        run_train(["-c", write_yaml(tmp_path / "c.yaml", _cfg()), "--device", "cpu", "--quiet",
                   "--output-dir", str(tmp_path / "run")])


@pytest.mark.parametrize("room_mib, threads_before, threads_after", [(300, 4, 1), (1200, 8, 4), (8000, 4, 4)])
def test_threads_are_capped_under_an_address_space_limit(tmp_path, monkeypatch, room_mib, threads_before,
                                                         threads_after):
    import ppgan.engine.trainer as trainer_mod

    monkeypatch.setattr(trainer_mod, "address_space_room", lambda: room_mib << 20)
    monkeypatch.setattr(trainer_mod, "address_space_limit", lambda: (room_mib + 1000) << 20)
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(threads_before)
        Trainer(_cfg(), device="cpu", run_dir=str(tmp_path / "run"), quiet=True)
        assert torch.get_num_threads() == threads_after
    finally:
        torch.set_num_threads(saved)


@pytest.mark.parametrize("room_mib", [0, 10, 100])
def test_clearly_too_small_address_space_is_refused_at_once(tmp_path, monkeypatch, room_mib):
    import ppgan.engine.trainer as trainer_mod

    monkeypatch.setattr(trainer_mod, "address_space_room", lambda: room_mib << 20)
    monkeypatch.setattr(trainer_mod, "address_space_limit", lambda: (room_mib + 1100) << 20)
    with pytest.raises(PPGANError, match=r"address-space limit \(ulimit -v\) of .* leaves only .*raise it"):
        Trainer(_cfg(), device="cpu", run_dir=str(tmp_path / "new" / "run"), quiet=True)
    assert not (tmp_path / "new").exists()


def _import_footprint():
    """VmPeak (KiB) of a process that has imported what tools/main.py imports before training."""
    code = ("import ppgan.cli, ppgan.engine.trainer, ppgan.utils.config\n"
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmPeak')][0])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ulimit -v and /proc are Linux")
@pytest.mark.parametrize("extra_mib", [24, 96, pytest.param(180, marks=pytest.mark.slow), pytest.param(260, marks=pytest.mark.slow)])
def test_training_under_ulimit_v_ends_in_one_line(tmp_path, extra_mib):
    """Under `ulimit -v` a little above what the libraries need: success, or one `error:` line and
    exit 2; never a traceback, an abort (134) or a crash (139), and no empty run folder."""
    limit_kib = _import_footprint() + extra_mib * 1024
    cfg = _cfg(total_iters=3)
    cfg["dataset"]["train"]["batch_size"] = 8
    config = write_yaml(tmp_path / "c.yaml", cfg)
    run = tmp_path / "run"
    cmd = (f"ulimit -v {limit_kib}; exec \"$0\" tools/main.py -c \"$1\" --device cpu --quiet --output-dir \"$2\"")
    proc = subprocess.run(["bash", "-c", cmd, sys.executable, config, str(run)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1", PPGAN_DEBUG=""))
    assert proc.returncode not in (134, 139, -6, -11), (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
        assert "ulimit -v" in lines[0], lines[0]
        if "leaves only" in lines[0]:
            assert not run.exists()
    if extra_mib <= 96:
        assert proc.returncode == 2 and "leaves only" in proc.stderr, proc.stderr[-2000:]


def _handlers_on(path):
    """Logging handlers, over every logger of the process, still writing to `path`."""
    loggers = [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    return [h for lg in loggers for h in lg.handlers
            if isinstance(h, logging.FileHandler) and os.path.samefile(h.baseFilename, path)]


def test_trainer_close_releases_its_train_log(tmp_path):
    trainer = Trainer(_cfg(total_iters=2), device="cpu", run_dir=str(tmp_path / "run"), quiet=True)
    trainer.train()
    log = tmp_path / "run" / "train.log"
    assert _handlers_on(str(log)) != []
    trainer.close()
    assert log.stat().st_size > 0
    assert _handlers_on(str(log)) == []  # closed by close(), while the trainer is still alive
    trainer.logger.info("after close")  # the console (here quiet) keeps working; the file does not grow
    assert "after close" not in log.read_text()

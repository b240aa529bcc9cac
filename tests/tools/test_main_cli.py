"""tools/main.py and ppgan CLI: bad input gives one clear line and a non-zero exit."""
import os

import pytest
from conftest import run_cli, write_yaml


def _one_line_error(proc):
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_missing_config(tmp_path):
    line = _one_line_error(run_cli(["tools/main.py", "-c", str(tmp_path / "nope.yaml")]))
    assert "config file not found" in line


def test_invalid_yaml(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("model: {name: GANModel\n  oops: [")
    line = _one_line_error(run_cli(["tools/main.py", "-c", str(p)]))
    assert "invalid YAML" in line and "line" in line


@pytest.mark.parametrize("mutate, expect", [
    (lambda c: c.update(totl_iters=5), "unknown config key 'totl_iters'; did you mean total_iters"),
    (lambda c: c["model"]["generator"].update(name="DCGenrator"), "did you mean DCGenerator"),
    pytest.param(lambda c: c["model"]["generator"].update(ngff=3),
                 "unknown key 'ngff' for generator DCGenerator; did you mean ngf", marks=pytest.mark.slow),
    pytest.param(lambda c: c["dataset"]["train"].update(name="digitz"), "did you mean digits", marks=pytest.mark.slow),
    (lambda c: c["model"]["gan_criterion"].update(gan_mode="lsgann"), "gan_mode must be one of"),
    pytest.param(lambda c: c["log_config"].update(visul_interval=3), "did you mean visual_interval",
                 marks=pytest.mark.slow),
    (lambda c: c["optimizer"]["optimizer_G"].update(net_names=["netX"]), "no net 'netX'"),
])
def test_unknown_names_and_keys(tiny_cfg, tmp_path, mutate, expect):
    mutate(tiny_cfg)
    line = _one_line_error(run_cli(["tools/main.py", "-c", write_yaml(tmp_path / "c.yaml", tiny_cfg),
                                    "--output-dir", str(tmp_path / "out")]))
    assert expect in line


@pytest.mark.parametrize("override, expect", [
    ("total_iters=abc", "expects a int"),
    pytest.param("model.generator.ngf=[1,2]", "expects a int", marks=pytest.mark.slow),
    ("model.generatr.ngf=3", "did you mean generator"),
    pytest.param("log_config.intervall=3", "did you mean interval", marks=pytest.mark.slow),
    ("total_iters", "must look like key.sub=value"),
    pytest.param("seed=[1", "cannot parse override value", marks=pytest.mark.slow),
])
def test_bad_overrides(tiny_cfg, tmp_path, override, expect):
    line = _one_line_error(run_cli(["tools/main.py", "-c", write_yaml(tmp_path / "c.yaml", tiny_cfg),
                                    "-o", override, "--output-dir", str(tmp_path / "out")]))
    assert expect in line


def test_missing_dataset_path(tiny_cfg, tmp_path):
    tiny_cfg["dataset"]["train"] = {"name": "ImageFolderDataset", "dataroot": str(tmp_path / "missing"),
                                    "batch_size": 2}
    line = _one_line_error(run_cli(["tools/main.py", "-c", write_yaml(tmp_path / "c.yaml", tiny_cfg)]))
    assert "dataset folder not found" in line


def test_corrupt_image_in_folder_dataset(tiny_cfg, tmp_path):
    import cv2
    import numpy as np

    data = tmp_path / "imgs"
    data.mkdir()
    for i in range(3):
        cv2.imwrite(str(data / f"ok{i}.png"), np.full((16, 16, 3), 40 * i, np.uint8))
    (data / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    tiny_cfg["dataset"]["train"] = {"name": "ImageFolderDataset", "dataroot": str(data), "channels": 1,
                                    "batch_size": 4, "num_workers": 1}
    tiny_cfg["model"]["discriminator"]["input_size"] = 16
    line = _one_line_error(run_cli(["tools/main.py", "-c", write_yaml(tmp_path / "c.yaml", tiny_cfg),
                                    "--output-dir", str(tmp_path / "out")]))
    assert "broken.png" in line


def test_unwritable_output_dir(tiny_cfg, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = _one_line_error(run_cli(["tools/main.py", "-c", write_yaml(tmp_path / "c.yaml", tiny_cfg),
                                    "--output-dir", str(blocker / "sub")]))
    assert "not writable" in line
    assert blocker.read_text() == "x"


def test_existing_output_dir_is_not_overwritten(tiny_cfg, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    line = _one_line_error(run_cli(["tools/main.py", "-c", write_yaml(tmp_path / "c.yaml", tiny_cfg),
                                    "--output-dir", str(out)]))
    assert "not empty" in line and (out / "keep.txt").read_text() == "mine"


def test_device_cuda_without_gpu(tiny_cfg, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    line = _one_line_error(run_cli(["tools/main.py", "-c", write_yaml(tmp_path / "c.yaml", tiny_cfg),
                                    "--device", "cuda", "--output-dir", str(tmp_path / "o")]))
    assert "no CUDA device" in line


def test_train_resume_and_generate_end_to_end(tiny_cfg, tmp_path):
    cfg = write_yaml(tmp_path / "c.yaml", tiny_cfg)
    out = tmp_path / "run"
    proc = run_cli(["tools/main.py", "-c", cfg, "-o", "total_iters=4", "--output-dir", str(out)])
    assert proc.returncode == 0, proc.stderr
    assert "last checkpoint" in proc.stdout
    proc = run_cli(["tools/main.py", "-c", cfg, "-o", "total_iters=6", "--resume", str(out / "iter_4_checkpoint.pth")])
    assert proc.returncode == 0, proc.stderr
    assert (out / "iter_6_weight.pth").is_file()
    proc = run_cli(["applications/tools/gan_generate.py", "--weight_path", str(out / "iter_6_weight.pth"),
                    "--output_path", str(tmp_path / "gen"), "--n", "16"])
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(tmp_path / "gen")) == ["interpolation.png", "samples.png"]
    proc = run_cli(["tools/main.py", "-c", cfg, "--load", str(out / "iter_6_weight.pth"), "--evaluate-only",
                    "--output-dir", str(tmp_path / "ev")])
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(tmp_path / "ev" / "eval")


def test_ppgan_console_command(tiny_cfg, tmp_path):
    import ppgan

    proc = run_cli(["-m", "ppgan.cli", "--version"])
    assert proc.returncode == 0 and ppgan.__version__ in proc.stdout
    proc = run_cli(["-m", "ppgan.cli", "train", "-c", write_yaml(tmp_path / "c.yaml", tiny_cfg), "-o", "total_iters=2",
                    "--output-dir", str(tmp_path / "r"), "--quiet"])
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r" / "iter_2_weight.pth").is_file()


def test_help_ends_with_examples():
    proc = run_cli(["tools/main.py", "--help"])
    assert proc.returncode == 0 and "examples:" in proc.stdout and "--resume" in proc.stdout


@pytest.mark.parametrize("exc, one_line", [
    (MemoryError(), True),
    (ImportError("libtorch_cpu.so: failed to map segment from shared object"), True),
    (SystemError("cannot allocate memory for thread-local data"), True),
    (ImportError("No module named 'somethingelse'"), False),  # a broken install keeps its traceback
])
def test_running_out_of_memory_while_importing_the_trainer_is_one_line(monkeypatch, capsys, exc, one_line):
    import builtins
    import sys as _sys

    from ppgan import cli

    real_import = builtins.__import__

    def failing(name, globals=None, locals=None, fromlist=(), level=0):
        if name.endswith("engine.trainer") or (level and name == "engine.trainer"):
            raise exc
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.delitem(_sys.modules, "ppgan.engine.trainer", raising=False)
    monkeypatch.setattr(builtins, "__import__", failing)
    if one_line:
        assert cli.run_train(["-c", "configs/dcgan_digits.yaml"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: out of memory while loading torch")
    else:
        with pytest.raises(ImportError):
            cli.run_train(["-c", "configs/dcgan_digits.yaml"])

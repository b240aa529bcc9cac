"""tools/eval_restoration.py: the classical baselines (NLM, unsharp mask, Wiener with the true
kernel) do what they claim, the CLI scores model vs degraded input vs baseline and writes the grid
and JSON, and its user errors are one `error:` line."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from ppgan.datasets.restoration_demo import blur, gaussian_kernel, motion_kernel, to_uint8

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "eval_restoration.py")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import eval_restoration as er  # noqa: E402


def psnr(a, b):
    return 10 * np.log10(255.0 ** 2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def photo(seed=0, size=64):
    """A smooth random colour image with edges (blocks + gradient), uint8."""
    rng = np.random.default_rng(seed)
    img = np.kron(rng.integers(30, 220, (4, 4, 3)), np.ones((size // 4, size // 4, 1)))
    ramp = np.linspace(0, 30, size)[None, :, None]
    return np.clip(img + ramp, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("kernel", [motion_kernel(7, 0), motion_kernel(9, 60), gaussian_kernel(1.5)])
def test_wiener_with_true_kernel_undoes_blur(kernel):
    gt = photo(1)
    blurred = to_uint8(blur(gt, kernel))
    out = er.wiener(blurred, kernel, 0.01)
    assert out.shape == gt.shape and out.dtype == np.uint8
    assert psnr(out, gt) > psnr(blurred, gt) + 2


@pytest.mark.parametrize("seed,sigma", [(0, 15), (1, 25), (2, 40)])
def test_nlm_reduces_noise(seed, sigma):
    gt = photo(seed)
    noisy = to_uint8(gt + np.random.default_rng(seed).normal(0, sigma, gt.shape))
    assert psnr(er.nlm(noisy, sigma * 0.8), gt) > psnr(noisy, gt) + 3


@pytest.mark.parametrize("amount", [0.0, 1.0, 2.0])
def test_unsharp_mask(amount):
    gt = photo(3)
    out = er.unsharp(gt, amount)
    if amount == 0:
        np.testing.assert_array_equal(out, gt)
    else:  # sharper: more high-frequency energy
        lap = lambda im: np.abs(np.diff(im.astype(np.float64), axis=1)).sum()  # noqa: E731
        assert lap(out) > lap(gt)


def write_config(tmp_path, task, model=True):
    cfg = {"total_iters": 1, "model": {"name": "NAFNetModel",
                     "generator": {"name": "NAFNet", "width": 4, "enc_blk_nums": [1], "middle_blk_num": 1,
                                   "dec_blk_nums": [1]}},
           "dataset": {"test": {"name": "RestorationPhotoDataset", "task": task, "split": "test", "test_size": 32,
                                "per_photo": 1, "batch_size": 1}},
           "validate": {"metrics": {"psnr": {"name": "PSNR", "crop_border": 0},
                                    "ssim": {"name": "SSIM", "crop_border": 0}}}}
    if not model:
        del cfg["dataset"]["test"]
    path = tmp_path / f"{task}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path), cfg


def run(args, timeout=300):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"))


@pytest.mark.parametrize("task", ["denoise", "deblur"])
def test_cli_scores_model_input_and_baselines(tmp_path, task):
    import torch

    from ppgan.engine import checkpoint as ckpt
    from ppgan.models import build_model

    path, cfg = write_config(tmp_path, task)
    torch.manual_seed(0)
    model = build_model(cfg["model"])
    weights = str(tmp_path / "w.pth")
    ckpt.save(ckpt.weight_file_dict(model, cfg["model"]), weights)
    out_json, grid = str(tmp_path / "r.json"), str(tmp_path / "g.png")
    r = run(["-c", path, "--weights", weights, "--json", out_json, "--grid", grid, "--nlm_h", "10", "20",
             "--usm_amount", "0.5", "--wiener_nsr", "0.01"])
    assert r.returncode == 0, r.stderr
    res = json.load(open(out_json))
    assert res["task"] == task and len(res["images"]) == 2
    rows = res["results"]
    base = [k for k in rows if k.startswith(("OpenCV NLM", "unsharp", "Wiener"))]
    assert "degraded input" in rows and any(k.startswith("model") for k in rows)
    assert len(base) == (1 if task == "denoise" else 2)
    assert all(set(v) == {"psnr", "ssim"} for v in rows.values())
    best = max(rows[k]["psnr"] for k in base)
    assert best > rows["degraded input"]["psnr"]  # the classical baseline does restore
    from ppgan.utils.image import imread

    img = imread(grid)
    n = len(rows)  # a row per image: clean + a tile per method, 4-px white gaps
    assert img.shape[:2] == (2 * (32 + 4), 32 * (1 + n) + 4 * n)


@pytest.mark.parametrize("args,match", [
    (["-c", "missing.yaml"], "missing.yaml"),
    (["-c", "{noconfig}"], "dataset.test"),
    (["-c", "{config}", "--weights", "nowhere.pth"], "nowhere.pth"),
    (["-c", "{config}", "--weights", "{garbage}"], "garbage.pth"),
    (["-c", "{config}", "--nlm_h", "0"], "nlm_h"),
])
def test_cli_user_errors_are_one_line(tmp_path, args, match, capsys, monkeypatch):
    """In-process main() (the end-to-end tests above run the CLI as a subprocess)."""
    config, _ = write_config(tmp_path, "denoise")
    noconfig, _ = write_config(tmp_path / "..", "deblur", model=False)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    args = [a.format(config=config, noconfig=noconfig, garbage=garbage) for a in args]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PPGAN_DEBUG", raising=False)
    assert er.main(args) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and match in lines[0], err
    assert "Traceback" not in err

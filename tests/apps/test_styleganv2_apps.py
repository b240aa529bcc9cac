"""StyleGAN2 apps on a tiny seeded generator saved to a weight file: grids, seeds, truncation,
mixing, fitting (projection), the interpolation video and the three CLIs."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from ppgan.apps.styleganv2_predictor import (StyleGANv2FittingPredictor, StyleGANv2MixingPredictor,
                                             StyleGANv2Predictor, load_latent, make_image)
from ppgan.models.generators import StyleGANv2Generator
from ppgan.utils.errors import CheckpointError, ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, "applications", "tools")
TINY = dict(size=16, style_dim=16, n_mlp=2, channel_multiplier=1, narrow=0.0625)  # n_latent 6


@pytest.fixture(scope="module")
def weight_file(tmp_path_factory):
    """A training-style weight file: the EMA generator plus the model config it was built with."""
    torch.manual_seed(0)
    g = StyleGANv2Generator(**TINY)
    path = tmp_path_factory.mktemp("sg2") / "tiny_weight.pth"
    torch.save({"gen_ema": g.state_dict(),
                "__ppgan__": {"model": {"name": "StyleGAN2Model",
                                        "generator": {"name": "StyleGANv2Generator", **TINY}}}},
               path)
    return str(path)


@pytest.fixture
def pred(weight_file, tmp_path):
    return StyleGANv2Predictor(output_path=str(tmp_path / "out"), weight_path=weight_file, seed=3, device="cpu")


@pytest.mark.parametrize("n_row,n_col", [(1, 1), (2, 3), (3, 2)])
def test_grid_size_and_files(pred, n_row, n_col):
    grid = pred.run(n_row, n_col)
    assert grid.shape == (n_row * 18 + 2, n_col * 18 + 2, 3) and grid.dtype == np.uint8
    for name in ("sample.png", "sample_mixing_0.png", "sample_mixing_1.png"):
        assert os.path.isfile(os.path.join(pred.output_path, name))
    from ppgan.utils.image import imread

    np.testing.assert_array_equal(imread(os.path.join(pred.output_path, "sample.png")), grid)
    mixing = imread(os.path.join(pred.output_path, "sample_mixing_0.png"))
    assert mixing.shape == ((n_row + 1) * 18 + 2, (n_col + 1) * 18 + 2, 3)


def _tiles(grid, n):
    return [grid[2 + 18 * r:18 * (r + 1), 2 + 18 * c:18 * (c + 1)] for r in range(n) for c in range(n)]


def test_determinism_by_seed(pred, weight_file, tmp_path):
    a, b = pred.run(2, 2, seed=11), pred.run(2, 2, seed=11)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, pred.run(2, 2, seed=12))
    # the constructor's seed is the default; another predictor with the same seed agrees
    other = StyleGANv2Predictor(output_path=str(tmp_path / "o2"), weight_path=weight_file, seed=11, device="cpu")
    np.testing.assert_array_equal(other.run(2, 2), a)
    tiles = _tiles(a, 2)
    assert not np.array_equal(tiles[0], tiles[1])


def test_truncation_zero_is_the_mean_image(pred):
    grids = [pred.run(2, 2, seed=s, truncation=0) for s in (0, 1, 99)]
    for g in grids:
        np.testing.assert_array_equal(g, grids[0])
    tiles = _tiles(grids[0], 2)
    for t in tiles[1:]:
        np.testing.assert_array_equal(t, tiles[0])
    mean_img = make_image(pred.synthesize(pred.mean_style().unsqueeze(1).repeat(1, pred.n_latent, 1)))[0]
    np.testing.assert_array_equal(tiles[0], mean_img)
    # truncation pulls towards the mean: 0.3 is closer to it than 1.0
    far = np.abs(pred.run(2, 2, seed=5, truncation=1.0).astype(int) - grids[0]).mean()
    near = np.abs(pred.run(2, 2, seed=5, truncation=0.3).astype(int) - grids[0]).mean()
    assert near < far


def _save_latents(pred, tmp_path):
    paths = []
    for s in (1, 2):
        p = tmp_path / f"lat{s}.npy"
        np.save(p, pred.w_plus(pred.random_z(1, s), 1.0)[0].numpy())
        paths.append(str(p))
    return paths


def _lowpass(img, k=4):
    x = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[None]
    return torch.nn.functional.avg_pool2d(x, k).numpy()


def test_mixing(weight_file, tmp_path):
    mix = StyleGANv2MixingPredictor(output_path=str(tmp_path / "mix"), weight_path=weight_file, device="cpu")
    l1, l2 = _save_latents(mix, tmp_path)
    n = mix.n_latent
    s1, s2, only1 = mix.run(l1, l2, [1.] * n)
    np.testing.assert_array_equal(only1, s1)
    np.testing.assert_array_equal(mix.run(l1, l2, [0.] * n)[2], s2)
    for name in ("src1", "src2", "dst"):
        assert os.path.isfile(tmp_path / "mix" / f"{name}.mixing.png")
    half = mix.run(l1, l2)[2]  # default 0.5 everywhere
    assert not np.array_equal(half, s1) and not np.array_equal(half, s2)
    # coarse levels from one latent, fine from the other: differs from both, and the low
    # frequencies follow the latent that gave the coarse levels
    k = n // 2
    coarse1 = mix.run(l1, l2, [1.] * k + [0.] * (n - k))[2]
    coarse2 = mix.run(l1, l2, [0.] * k + [1.] * (n - k))[2]
    for m in (coarse1, coarse2):
        assert not np.array_equal(m, s1) and not np.array_equal(m, s2)

    def dist(a, b):
        return np.abs(_lowpass(a) - _lowpass(b)).mean()

    assert dist(coarse1, s1) < dist(coarse1, s2)
    assert dist(coarse2, s2) < dist(coarse2, s1)


@pytest.mark.parametrize("bad,match", [
    ("weights", "one value per latent level"), ("shape", "does not fit"), ("junk", "not a .npy"),
    ("missing", "does not exist"), ("nan", "NaN")])
def test_mixing_bad_inputs(weight_file, tmp_path, bad, match):
    mix = StyleGANv2MixingPredictor(output_path=str(tmp_path / "mix"), weight_path=weight_file, device="cpu")
    l1, l2 = _save_latents(mix, tmp_path)
    weights = None
    if bad == "weights":
        weights = [0.5] * (mix.n_latent + 1)
    elif bad == "shape":
        np.save(l2, np.zeros((3, 16), np.float32))
    elif bad == "junk":
        open(l2, "wb").write(b"\x93NUMPY garbage")
    elif bad == "missing":
        l2 = str(tmp_path / "none.npy")
    elif bad == "nan":
        np.save(l2, np.full((mix.n_latent, 16), np.nan, np.float32))
    with pytest.raises((ConfigError, OSError), match=match):
        mix.run(l1, l2, weights)


def test_load_latent_shapes(tmp_path):
    w = np.arange(16, dtype=np.float32)
    for arr in (w, w[None], np.repeat(w[None], 6, 0), np.repeat(w[None], 6, 0)[None]):
        np.save(tmp_path / "l.npy", arr)
        out = load_latent(str(tmp_path / "l.npy"), 6, 16)
        assert out.shape == (1, 6, 16) and torch.equal(out[0, 5], torch.from_numpy(w))


@pytest.fixture
def fitter(weight_file, tmp_path):
    return StyleGANv2FittingPredictor(output_path=str(tmp_path / "fit"), weight_path=weight_file, device="cpu",
                                      lpips_weight_path="deterministic")


@pytest.mark.parametrize("loss,steps", [("mse", 12), ("lpips", 6)])
def test_fitting_reduces_loss(fitter, loss, steps):
    target_latent = fitter.w_plus(fitter.random_z(1, 7), 0.8)
    target = fitter.synthesize(target_latent)
    latent, losses = fitter.fit(target, step=steps, loss=loss)
    assert len(losses) == steps and losses[-1] < 0.6 * losses[0]
    assert latent.shape == (1, fitter.n_latent, 16)
    before = torch.nn.functional.mse_loss(fitter.synthesize(fitter.mean_style().unsqueeze(1).repeat(1, 6, 1)), target)
    after = torch.nn.functional.mse_loss(fitter.synthesize(latent), target)
    assert after < 0.6 * before


def test_fitting_run_writes_files_and_latent(fitter, tmp_path):
    img = make_image(fitter.synthesize(fitter.w_plus(fitter.random_z(1, 4), 0.8)))[0]
    src, dst, lat = fitter.run(img, step=4, loss="mse", latent_level=[0, 1, 2])
    assert src.shape == dst.shape == (16, 16, 3) and lat.shape == (6, 16)
    saved = np.load(tmp_path / "fit" / "dst.fitting.npy")
    np.testing.assert_array_equal(saved, lat)
    # levels outside latent_level keep the start latent (the mean w)
    np.testing.assert_allclose(lat[3:], np.repeat(fitter.mean_style().numpy(), 3, 0), rtol=1e-6)
    assert os.path.isfile(tmp_path / "fit" / "src.fitting.png") and os.path.isfile(tmp_path / "fit" / "dst.fitting.png")
    # starting from the saved latent starts from a lower loss
    _, fresh = fitter.fit(fitter._target(img), step=1, loss="mse")
    _, resumed = fitter.fit(fitter._target(img), load_latent(str(tmp_path / "fit" / "dst.fitting.npy"), 6, 16),
                            step=1, loss="mse")
    assert resumed[0] < fresh[0]


@pytest.mark.parametrize("kwargs,match", [
    (dict(latent_level=[6]), "latent_level"), (dict(latent_level=[-1]), "latent_level"), (dict(loss="l1"), "loss"),
    (dict(step=0), "step"), (dict(start_lr=0), "learning rates"), (dict(need_align=True), "need_align")])
def test_fitting_bad_inputs(fitter, kwargs, match):
    img = np.zeros((20, 24, 3), np.uint8)
    with pytest.raises(ConfigError, match=match):
        fitter.run(img, **kwargs)


@pytest.mark.parametrize("kwargs,match", [
    (dict(), "--weight_path FILE or --model_type"), (dict(model_type="ffhq"), "unknown --model_type"),
    (dict(weight_path="/nonexistent/g.pth"), "not found")])
def test_predictor_bad_construction(kwargs, match, tmp_path):
    with pytest.raises((ConfigError, CheckpointError), match=match):
        StyleGANv2Predictor(output_path=str(tmp_path), device="cpu", **kwargs)


def test_flat_state_needs_matching_flags(weight_file, tmp_path):
    """A PaddleGAN-style flat file carries no config: the flags must describe it; a mismatch is one line."""
    flat = tmp_path / "flat.pth"
    torch.save(torch.load(weight_file, weights_only=True)["gen_ema"], flat)
    with pytest.raises(CheckpointError) as e:
        StyleGANv2Predictor(output_path=str(tmp_path), weight_path=str(flat), size=8, style_dim=16, n_mlp=2,
                            channel_multiplier=1, device="cpu")
    assert "--size" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("call,match", [
    (dict(n_row=0), "n_row"), (dict(n_col=2.5), "n_col"), (dict(truncation=1.5), "truncation"),
    (dict(truncation=-0.1), "truncation"), (dict(seed=-1), "seed")])
def test_run_bad_inputs(pred, call, match):
    args = dict(n_row=1, n_col=1, **{k: v for k, v in call.items() if k not in ("n_row", "n_col")})
    args.update({k: v for k, v in call.items() if k in ("n_row", "n_col")})
    with pytest.raises(ConfigError, match=match):
        pred.run(**args)


def test_interpolation_video(pred, tmp_path):
    from ppgan.video import probe_video
    from ppgan.video.decode import iter_frames

    path = pred.interpolation_video(str(tmp_path / "walk.mp4"), seeds=[0, 1], frames_per_seed=3, fps=6)
    info = probe_video(path)
    assert (info.width, info.height) == (16, 16)
    frames = list(iter_frames(path))
    assert len(frames) == 6
    # the first frame is seed 0's image (truncation 0.7), up to the codec's loss
    first = make_image(pred.synthesize(pred.w_plus(pred.random_z(1, 0), 0.7)))[0]
    assert np.abs(frames[0].astype(int) - first).mean() < 12
    with pytest.raises(ConfigError):
        pred.interpolation_video(str(tmp_path / "bad.mp4"), seeds=[0])


# ---------------------------------------------------------------- CLIs

def _main(tool):
    spec = importlib.util.spec_from_file_location(tool.replace(".", "_"), os.path.join(TOOLS, tool))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def _one_error_line(err):
    lines = err.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err


def test_cli_generate_subprocess(weight_file, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("PPGAN_DEBUG", None)
    cmd = [sys.executable, os.path.join(TOOLS, "styleganv2.py"), "--weight_path", weight_file, "--seed", "1",
           "--n_row", "2", "--n_col", "2", "--output_path", str(tmp_path / "o"), "--cpu"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert os.path.isfile(tmp_path / "o" / "sample.png")
    bad = subprocess.run(cmd[:2] + ["--model_type", "nope"], capture_output=True, text=True, timeout=60, env=env)
    assert bad.returncode == 2 and _one_error_line(bad.stderr), bad.stderr


@pytest.mark.parametrize("argv", [["--n_row", "0"], ["--truncation", "2"], ["--seed", "-3"],
                                  ["--weight_path", "/no/such.pth"], ["--weight_path", "FLAT", "--size", "8"],
                                  ["--model_type", "ffhq"], ["--video_seeds", "1"]])
def test_cli_generate_errors(weight_file, tmp_path, capsys, monkeypatch, argv):
    monkeypatch.delenv("PPGAN_DEBUG", raising=False)
    flat = tmp_path / "flat.pth"
    torch.save(torch.load(weight_file, weights_only=True)["gen_ema"], flat)
    argv = [str(flat) if a == "FLAT" else a for a in argv]  # flat: no config, the flags must fit
    if "--weight_path" not in argv and "--model_type" not in argv:
        argv += ["--weight_path", weight_file]
    if "--video_seeds" in argv:
        argv = ["--weight_path", weight_file, "--video", str(tmp_path / "v.mp4"), "--video_seeds", "1"]
    rc = _main("styleganv2.py")(argv + ["--output_path", str(tmp_path / "o"), "--cpu"])
    assert rc == 2 and _one_error_line(capsys.readouterr().err)


def test_cli_mixing_and_fitting(weight_file, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PPGAN_DEBUG", raising=False)
    pred = StyleGANv2Predictor(output_path=str(tmp_path), weight_path=weight_file, device="cpu")
    l1, l2 = _save_latents(pred, tmp_path)
    common = ["--weight_path", weight_file, "--cpu"]
    assert _main("styleganv2mixing.py")(["--latent1", l1, "--latent2", l2, "--output_path", str(tmp_path / "m"),
                                        "--weights", "1", "1", "1", "0", "0", "0", *common]) == 0
    assert os.path.isfile(tmp_path / "m" / "dst.mixing.png")
    from ppgan.utils.visual import save_image

    save_image(make_image(pred.synthesize(pred.w_plus(pred.random_z(1, 9))))[0], str(tmp_path / "face.png"))
    assert _main("styleganv2fitting.py")(["--input_image", str(tmp_path / "face.png"), "--step", "3", "--loss", "mse",
                                         "--output_path", str(tmp_path / "f"), *common]) == 0
    assert np.load(tmp_path / "f" / "dst.fitting.npy").shape == (6, 16)
    capsys.readouterr()
    bad_runs = [
        ("styleganv2mixing.py", ["--latent1", l1, "--latent2", str(tmp_path / "none.npy")]),
        ("styleganv2mixing.py", ["--latent1", l1, "--latent2", l2, "--weights", "1", "0"]),
        ("styleganv2fitting.py", ["--input_image", str(tmp_path / "none.png")]),
        ("styleganv2fitting.py", ["--input_image", str(tmp_path / "face.png"), "--step", "0"]),
        ("styleganv2fitting.py", ["--input_image", str(tmp_path / "face.png"), "--latent_level", "9"]),
        ("styleganv2fitting.py", ["--input_image", l1, "--loss", "mse"]),  # not an image
    ]
    for tool, argv in bad_runs:
        rc = _main(tool)(argv + ["--output_path", str(tmp_path / "bad"), *common])
        err = capsys.readouterr().err
        assert rc == 2 and _one_error_line(err), (tool, argv, err)

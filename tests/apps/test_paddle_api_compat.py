"""PaddleGAN-style use of the apps: `run()`'s return shapes, `EDVRPredictor(bs=...)`, CLIs that
answer `--help` without loading torch, offline messages naming each tool's own flags, one output
folder convention and progress for the tiles of one image."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from ppgan.apps.base_predictor import ImagePredictor
from ppgan.apps.inputs import BatchResult
from ppgan.utils.errors import ConfigError
from ppgan.utils.image import imread, imwrite

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, "applications", "tools")
APP_CLIS = ["colorize.py", "gan_generate.py", "super_resolution.py", "video-enhance.py"]


class Double(ImagePredictor):
    """x2 nearest upsampling: a fast, exact stand-in for an SR app."""
    name = "Double"
    suffix = "_x2"

    def __init__(self, output):
        super().__init__(output=output, device="cpu", verbose=False)

    def predict_rgb(self, rgb):
        return np.repeat(np.repeat(rgb, 2, axis=0), 2, axis=1)


def photo(shape, dtype=np.uint8):
    rng = np.random.default_rng(sum(shape))
    top = 255 if dtype == np.uint8 else 65535
    return rng.integers(0, top + 1, size=shape).astype(dtype)


# -- item: run() returns PaddleGAN's shapes ----------------------------------------------------------
@pytest.mark.parametrize("shape,dtype,ext", [((20, 30, 3), np.uint8, ".png"), ((16, 16), np.uint8, ".png"),
                                             ((12, 10, 4), np.uint8, ".png"), ((8, 8, 3), np.uint16, ".tif")])
def test_image_run_returns_pred_img_and_out_path(tmp_path, shape, dtype, ext):
    src = str(tmp_path / ("in" + ext))
    img = photo(shape, dtype)
    imwrite(src, img)
    pred = Double(str(tmp_path / "out"))
    pred_img, out_path = pred.run(src, progress=False)  # PaddleGAN: pred_img, out_path = predictor.run(img)
    assert out_path == str(tmp_path / "out" / "Double" / ("in_x2" + ext)) and os.path.isfile(out_path)
    assert isinstance(pred_img, np.ndarray) and pred_img.dtype == dtype
    assert pred_img.shape[:2] == (shape[0] * 2, shape[1] * 2)
    assert np.array_equal(pred_img, imread(out_path, mode="unchanged"))
    assert pred.last_output == out_path and pred.run_files(src, progress=False) == out_path
    again_img, again = pred.run(src, skip_existing=True, progress=False)  # skipped: read back
    assert again == out_path and np.array_equal(again_img, pred_img)


def test_folder_and_glob_runs_still_return_a_batch_result(tmp_path):
    for name in ("a.png", "b.png"):
        imwrite(tmp_path / name, photo((8, 8, 3)))
    pred = Double(str(tmp_path / "out"))
    for spec in (str(tmp_path), str(tmp_path / "*.png")):
        res = pred.run(spec, progress=False)
        assert isinstance(res, BatchResult) and len(res.outputs) == 2 and pred.last_output is res


@pytest.mark.parametrize("keep_frames", [False, True])
def test_video_run_returns_frame_pattern_and_video_path(tmp_path, keep_frames):
    from ppgan.video import iter_frames, probe_video
    from ppgan.video.synthetic import make_test_video

    src = str(tmp_path / "clip.mp4")
    make_test_video(src, seconds=0.3, size=(32, 24), audio=False)
    n = probe_video(src).n_frames
    pred = Double(str(tmp_path / "out"))
    frames, video_path = pred.run(src, progress=False, keep_frames=keep_frames,
                                  video_options={"chunk_seconds": 0.1})
    assert video_path == str(tmp_path / "out" / "Double" / "clip_x2.mp4") and os.path.isfile(video_path)
    frames_dir = tmp_path / "out" / "Double" / "clip_x2_frames"
    if not keep_frames:
        assert frames is None and not frames_dir.exists()
        return
    assert frames == str(frames_dir / "%08d.png")
    assert sorted(os.listdir(frames_dir)) == [f"{i:08d}.png" for i in range(1, n + 1)]
    decoded = list(iter_frames(video_path))
    assert imread(frames % 1).shape == decoded[0].shape == (48, 64, 3)


@pytest.mark.parametrize("bs", [0, -1, 2.5, "4", True])
def test_edvr_bs_is_checked(bs):
    from ppgan.apps import EDVRPredictor

    with pytest.raises(ConfigError, match="bs must be an integer >= 1"):
        EDVRPredictor(bs=bs, device="cpu", verbose=False)


def test_edvr_bs_sets_the_video_batch_size(tmp_path, monkeypatch):
    from ppgan.apps import EDVRPredictor
    from ppgan.apps.pretrained import build_arch
    from ppgan.weights import WeightSpec

    spec = WeightSpec(name="edvr-tiny", arch="EDVRNet", kwargs=dict(nf=8, nframes=5, groups=1, front_RBs=1,
                                                                    back_RBs=1, w_TSA=False),
                      url=None, sha256=None, filename="edvr-tiny.pth", fmt="pth")
    w = str(tmp_path / "edvr-tiny.pth")
    torch.save(build_arch(spec).state_dict(), w)
    seen = {}

    def fake_process_video(src, dst, stages, **kw):
        seen.update(kw)

    monkeypatch.setattr("ppgan.video.process_video", fake_process_video)
    (tmp_path / "v.mp4").write_bytes(b"")  # never decoded: process_video is replaced
    for bs, expected in ((3, 3), (None, None)):
        seen.clear()
        pred = EDVRPredictor(output=str(tmp_path / "o"), model=spec, weight_path=w, device="cpu", verbose=False, bs=bs)
        pred.run_files(str(tmp_path / "v.mp4"), progress=False)
        assert seen.get("batch_size") == expected


# -- item: --help and argument errors answer without importing torch -----------------------------------
def _torch_loaded_after(cli, args):
    """Run `cli args` in a fresh interpreter; whether torch got imported, and the exit code."""
    code = ("import runpy, sys\n"
            f"sys.argv = [{cli!r}] + {list(args)!r}\n"
            "try:\n"
            f"    runpy.run_path({cli!r}, run_name='__main__')\n"
            "except SystemExit as e:\n"
            "    rc = e.code\n"
            "print('torch' in sys.modules, rc, file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    loaded, rc = r.stderr.strip().splitlines()[-1].split()
    return loaded == "True", rc


@pytest.mark.parametrize("cli", APP_CLIS)
@pytest.mark.parametrize("args", [["--help"], ["--no_such_flag"], ["--input", "/no/such/file.png", "--crf", "99"],
                                  ["--input", "/no/such/file.png", "--weight_path", "w.pth", "--n", "0",
                                   "--process_order", "RealSR"]])
def test_cli_help_and_argument_errors_do_not_import_torch(cli, args):
    loaded, rc = _torch_loaded_after(os.path.join(TOOLS, cli), args)
    assert not loaded
    assert rc == ("0" if args == ["--help"] else "2")


# -- item: each tool's messages name its own flags -----------------------------------------------------
def _flags_of(cli):
    r = subprocess.run([sys.executable, os.path.join(TOOLS, cli), "--help"], capture_output=True, text=True,
                       timeout=60)
    return set(re.findall(r"(?<![\w-])--[A-Za-z][\w-]*", r.stdout))


@pytest.mark.parametrize("cli,args", [
    ("colorize.py", []),
    ("super_resolution.py", ["--model", "RealESRGAN_x4plus"]),
    pytest.param("super_resolution.py", ["--model", "edvr-l-w-tsa"], marks=pytest.mark.slow),
    pytest.param("super_resolution.py", ["--weight_path", "/no/such/weights.pth"], marks=pytest.mark.slow),
    ("video-enhance.py", ["--process_order", "DeOldify", "RealSR"]),
    pytest.param("video-enhance.py", ["--process_order", "RealSR", "--RealSR_model", "RealESRGAN_x4plus"],
                 marks=pytest.mark.slow),
    ("video-enhance.py", ["--process_order", "RealSR", "--RealSR_weight", "/no/such/weights.pth"]),
    pytest.param("video-enhance.py", ["--process_order", "EDVR"], marks=pytest.mark.slow),
    pytest.param("video-enhance.py", ["--process_order", "BasicVSR"], marks=pytest.mark.slow),
    ("gan_generate.py", ["--weight_path", "/no/such/weights.pdparams"]),
])
def test_offline_messages_name_the_tools_own_flags(tmp_path, cli, args):
    src = str(tmp_path / "in.png")
    imwrite(src, photo((8, 8, 3)))
    env = dict(os.environ, PPGAN_HOME=str(tmp_path / "empty_home"),  # nothing cached
               HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9",  # never a real download
               https_proxy="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9", NO_PROXY="", no_proxy="")
    env.pop("PPGAN_DEBUG", None)
    argv = args if cli == "gan_generate.py" else ["--input", src, "--quiet"] + args
    r = subprocess.run([sys.executable, os.path.join(TOOLS, cli)] + argv + ["--device", "cpu"], capture_output=True,
                       text=True, timeout=120, env=env, cwd=str(tmp_path))
    errors = [ln for ln in r.stderr.splitlines() if not ln.startswith("[ppgan]")]
    assert r.returncode == 2 and len(errors) == 1 and errors[0].startswith("error:"), r.stderr
    assert "Traceback" not in r.stderr
    named = set(re.findall(r"(?<![\w-])--[A-Za-z][\w-]*", errors[0]))
    assert named <= _flags_of(cli), (named, errors[0])
    if "cannot download" in errors[0]:  # the way out is named: this tool's weight flag
        assert any(f.endswith(("weight_path", "_weight")) for f in named), errors[0]


# -- item: one output folder convention, single files named, overwrites reported ------------------------
@pytest.fixture(scope="module")
def gan_weight(tmp_path_factory):
    import copy

    from conftest import TINY_GAN

    from ppgan.engine import Trainer

    root = tmp_path_factory.mktemp("gan")
    cfg = copy.deepcopy(TINY_GAN)
    cfg["total_iters"] = 1
    Trainer(cfg, device="cpu", run_dir=str(root / "run"), quiet=True).train()
    return str(root / "run" / "iter_1_weight.pth")


def _gan_generate(args, cwd):
    r = subprocess.run([sys.executable, os.path.join(TOOLS, "gan_generate.py")] + args + ["--device", "cpu", "--n", "4",
                                                                                         "--steps", "2"],
                       capture_output=True, text=True, timeout=120, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("extra,where", [([], os.path.join("output", "GANGenerate")),
                                         pytest.param(["--output", "mine"], os.path.join("mine", "GANGenerate"),
                                                      marks=pytest.mark.slow),
                                         (["--output_path", "exact"], "exact")])
def test_gan_generate_writes_under_output_app_like_every_app(tmp_path, gan_weight, extra, where):
    out = _gan_generate(["--weight_path", gan_weight] + extra, str(tmp_path))
    assert sorted(os.listdir(tmp_path / where)) == ["interpolation.png", "samples.png"]
    assert "overwritten" not in out
    again = _gan_generate(["--weight_path", gan_weight] + extra, str(tmp_path))
    assert again.count("(overwritten)") == 2, again


def test_image_overwrite_is_reported(tmp_path, capsys):
    src = str(tmp_path / "a.png")
    imwrite(src, photo((8, 8, 3)))
    pred = Double(str(tmp_path / "out"))
    pred.verbose = True
    _, out = pred.run(src, progress=False)
    assert "overwriting" not in capsys.readouterr().err
    pred.run(src, progress=False)
    assert f"overwriting {out}" in capsys.readouterr().err
    pred.run_files(str(tmp_path / "*.png"), progress=False)  # glob mode too
    assert f"overwriting {out}" in capsys.readouterr().err


@pytest.mark.parametrize("names,expect", [(["a.png"], "output: {out}{sep}Double{sep}a_x2.png"),
                                          (["a.png", "b.png"], "outputs under {out}{sep}Double\n")])
def test_folder_summary_names_a_single_file(tmp_path, capsys, names, expect):
    from ppgan.apps.cli_args import print_result

    folder = tmp_path / "in"
    folder.mkdir()
    for name in names:
        imwrite(folder / name, photo((8, 8, 3)))
    out = str(tmp_path / "out")
    assert print_result(Double(out).run(str(folder), progress=False)) == 0
    printed = capsys.readouterr().out
    assert expect.format(out=out, sep=os.sep) in printed


# -- item: progress of the tiles of one image -----------------------------------------------------------
class TiledDouble(ImagePredictor):
    """x2 nearest upsampling through `forward_image` in 16-pixel tiles."""
    name = "TiledDouble"

    def __init__(self, output, verbose=True):
        super().__init__(output=output, device="cpu", verbose=verbose)
        self.net = torch.nn.Upsample(scale_factor=2, mode="nearest")

    def predict_rgb(self, rgb):
        x = torch.from_numpy(rgb.transpose(2, 0, 1).copy())[None]
        return self.forward_image(self.net, x, tile=16, overlap=0, scale=2)[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("size,tiles", [((40, 40), 9), ((16, 50), 4), ((64, 20), 8)])
def test_single_image_logs_tile_progress_when_not_a_terminal(tmp_path, caplog, monkeypatch, size, tiles):
    import logging

    import ppgan.utils.tiling as tiling

    monkeypatch.setattr(tiling, "LOG_EVERY", 0.0)  # a line per window (default: every 10 s)
    src = str(tmp_path / "a.png")
    imwrite(src, photo(size + (3,)))
    pred = TiledDouble(str(tmp_path / "out"))
    with caplog.at_level(logging.INFO, logger="ppgan"):
        img, _ = pred.run(src)
    lines = [r.getMessage() for r in caplog.records if "tiles" in r.getMessage()]
    h, w = size
    assert len(lines) == tiles and lines[0].startswith(f"TiledDouble {w}x{h}: tiles 1/{tiles}, ")
    assert "tiles/s, ETA" in lines[0] and lines[-1].startswith(f"TiledDouble {w}x{h}: tiles {tiles}/{tiles}")
    assert "done in" in lines[-1] and img.shape == (h * 2, w * 2, 3)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ppgan"):  # silent: progress=False, predict(), --quiet
        pred.run(src, progress=False)
        pred.predict(photo(size + (3,)))
        TiledDouble(str(tmp_path / "q"), verbose=False).run(src)
    assert not [r for r in caplog.records if "tiles" in r.getMessage()]


def test_single_image_shows_a_tile_bar_on_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    src = str(tmp_path / "a.png")
    imwrite(src, photo((48, 48, 3)))
    TiledDouble(str(tmp_path / "out")).run(src)
    err = capsys.readouterr().err
    assert "TiledDouble 48x48:" in err and "/9 [" in err and "tile/s" in err  # tqdm: tiles, tiles/s, ETA

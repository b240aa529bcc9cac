"""Restoration apps (SwinIR, NAFNet, MPRNet, InvDN predictors and their CLIs) on scikit-image
photos, with deterministic weights written as PaddleGAN `.pdparams` files (parameters by the
parity rule, buffers such as SwinIR's index tables and InvDN's Haar filters as the nets make
them; Linear weights transposed to Paddle's [in, out]). The published files cannot be downloaded
here, so these tests show loading, padding, tiling, folders, videos and errors, not quality."""
import importlib.util
import os

import numpy as np
import pytest
import torch
from skimage import data
from torch import nn

from conftest import ROOT, run_cli
from parity import rule_tensor, write_pdparams
from ppgan.apps.pretrained import build_arch
from ppgan.apps.restoration_predictor import (InvDNPredictor, MPRPredictor, NAFNetPredictor, SwinIRPredictor,
                                              invdn_overlap, mpr_task, swinir_overlap)
from ppgan.utils.errors import ConfigError, PPGANError
from ppgan.utils.image import imread, imwrite
from ppgan.weights import WeightSpec, get_spec

TOOLS = os.path.join(ROOT, "applications", "tools")
OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "http_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""}

# tiny variants of each net (PaddleGAN's argument names); nested: the file holds {'generator': ...}
TINY = {
    "swinir": ("SwinIR", dict(upscale=1, img_size=16, window_size=4, depths=[1, 1], embed_dim=12, num_heads=[2, 2],
                              mlp_ratio=2), True),
    "swinir-3conv": ("SwinIR", dict(upscale=1, img_size=8, window_size=4, depths=[2], embed_dim=8, num_heads=[2],
                                    mlp_ratio=2, resi_connection="3conv"), True),
    "nafnet": ("NAFNet", dict(img_channel=3, width=8, enc_blk_nums=[1, 1], middle_blk_num=1, dec_blk_nums=[1, 1]),
               True),
    "mprnet": ("MPRNet", dict(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1), False),
    "invdn": ("InvDN", dict(channel_in=3, channel_out=3, block_num=[1, 1], scale=4, down_num=2), True),
    "invdn-x2": ("InvDN", dict(channel_in=3, channel_out=3, block_num=[1], scale=2, down_num=1), True),
}
PREDICTOR = {"swinir": SwinIRPredictor, "nafnet": NAFNetPredictor, "mprnet": MPRPredictor, "invdn": InvDNPredictor}


def paddle_state(net):
    """net's state dict as PaddleGAN saves it, with rule weights for every parameter."""
    params = dict(net.named_parameters(remove_duplicate=False))
    state = {}
    for k, v in net.state_dict().items():
        a = rule_tensor(k, tuple(v.shape)) if k in params else v.detach().numpy().copy()
        owner = net.get_submodule(k.rpartition(".")[0]) if "." in k else net
        state[k] = a.T.copy() if isinstance(owner, nn.Linear) and k.endswith(".weight") else a
    return state


def write_weights(spec, path, nested):
    torch.manual_seed(0)
    state = paddle_state(build_arch(spec))
    return write_pdparams(path, {"generator": state} if nested else state)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """{case: (WeightSpec, .pdparams path)} of the tiny nets."""
    folder = tmp_path_factory.mktemp("restoration_weights")
    out = {}
    for case, (arch, kwargs, nested) in TINY.items():
        spec = WeightSpec(name=f"{case}-tiny", arch=arch, kwargs=kwargs, url=None, sha256=None,
                          filename=f"{case}-tiny.pdparams", fmt="pdparams", key="generator" if nested else None)
        out[case] = spec, write_weights(spec, folder / spec.filename, nested)
    return out


def make(tiny, case, **kwargs):
    spec, path = tiny[case]
    return PREDICTOR[case.split("-")[0]](model=spec, weight_path=path, device="cpu", verbose=False, **kwargs)


def photo(h, w, y=120, x=180):
    return data.astronaut()[y:y + h, x:x + w].copy()


def as_tensor(img):
    return torch.from_numpy(img.transpose(2, 0, 1).astype(np.float32) / 255)[None]


# ---- catalogue -------------------------------------------------------------------------------------
PADDLE_CFGS = {  # PaddleGAN's predictors' model_cfgs
    "swinir-denoising": ("SwinIR", "SwinIR_Denoising", "generator",
                         dict(upscale=1, img_size=128, window_size=8, depths=[6] * 6, embed_dim=180,
                              num_heads=[6] * 6, mlp_ratio=2)),
    "nafnet-denoising": ("NAFNet", "NAFNet_Denoising", "generator",
                         dict(img_channel=3, width=64, enc_blk_nums=[2, 2, 4, 8], middle_blk_num=12,
                              dec_blk_nums=[2, 2, 2, 2])),
    "mpr-deblurring": ("MPRNet", "MPR_Deblurring", None, dict(n_feat=96, scale_unetfeats=48, scale_orsnetfeats=32)),
    "mpr-denoising": ("MPRNet", "MPR_Denoising", None, dict(n_feat=80, scale_unetfeats=48, scale_orsnetfeats=32)),
    "mpr-deraining": ("MPRNet", "MPR_Deraining", None, dict(n_feat=40, scale_unetfeats=20, scale_orsnetfeats=16)),
    "invdn-denoising": ("InvDN", "InvDN_Denoising", "generator",
                        dict(channel_in=3, channel_out=3, block_num=[8, 8], scale=4, down_num=2)),
}


@pytest.mark.parametrize("name", sorted(PADDLE_CFGS))
def test_catalogue_entries_are_paddlegans(name):
    arch, stem, key, kwargs = PADDLE_CFGS[name]
    spec = get_spec(name)
    assert (spec.arch, spec.key, spec.kwargs, spec.fmt) == (arch, key, kwargs, "pdparams")
    assert spec.url == f"https://paddlegan.bj.bcebos.com/models/{stem}.pdparams"
    assert spec.filename == f"{stem}.pdparams"
    with torch.device("meta"):
        net = build_arch(spec)
    assert type(net).__name__ == arch


def test_predictors_default_to_the_catalogue_entries():
    assert SwinIRPredictor.default_model == "swinir-denoising"
    assert NAFNetPredictor.default_model == "nafnet-denoising"
    assert InvDNPredictor.default_model == "invdn-denoising"
    assert [mpr_task(t) for t in ("deblur", "Denoising", "DERAIN", " deraining ")] == \
        ["Deblurring", "Denoising", "Deraining", "Deraining"]
    for bad in ("dehaze", "", "deblurr"):
        with pytest.raises(ConfigError, match="deblur, denoise or derain"):
            mpr_task(bad)


@pytest.mark.parametrize("make_bad,match", [
    (lambda t: SwinIRPredictor(window_size=0, device="cpu", verbose=False), "window_size must be >= 1"),
    (lambda t: NAFNetPredictor(tile=-2, device="cpu", verbose=False), "tile must be >= 0"),
    (lambda t: InvDNPredictor(tile_overlap=-1, device="cpu", verbose=False), "tile_overlap must be >= 0"),
    (lambda t: MPRPredictor(task="sharpen", device="cpu", verbose=False), "deblur, denoise or derain"),
    (lambda t: SwinIRPredictor(model="nafnet-denoising", device="cpu", verbose=False), "is a NAFNet model"),
    (lambda t: MPRPredictor(model=t["invdn"][0], weight_path=t["invdn"][1], device="cpu", verbose=False),
     "runs MPRNet weights"),
    (lambda t: NAFNetPredictor(model="nafnet-denoisin", device="cpu", verbose=False), "did you mean"),
])
def test_bad_predictor_arguments_fail_before_any_weights(tiny, make_bad, match):
    with pytest.raises(PPGANError, match=match):
        make_bad(tiny)


# ---- padding as PaddleGAN, output size = input size -------------------------------------------------
def reference(case, pred, img):
    """What PaddleGAN's predictor computes (before its uint8 cast), written independently."""
    net = pred.net
    h, w = img.shape[:2]
    x = img.astype(np.float32) / 255
    if case == "swinir":  # mirrored by one whole window past the edge, even on a multiple of 8
        m = pred.runner.size_multiple
        x = np.pad(x, ((0, (h // m + 1) * m - h), (0, (w // m + 1) * m - w), (0, 0)), mode="symmetric")
    elif case == "mprnet":  # reflected to a multiple of 8
        x = np.pad(x, ((0, -h % 8), (0, -w % 8), (0, 0)), mode="reflect")
    with torch.no_grad():
        y = net(torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None])
    y = y[0] if isinstance(y, (list, tuple)) else y
    return y[0, :, :h, :w].clamp(0, 1).permute(1, 2, 0).numpy()


@pytest.mark.parametrize("case", ["swinir", "nafnet", "mprnet"])
@pytest.mark.parametrize("hw", [(29, 37), (16, 24), (5, 3)])
def test_whole_image_matches_paddlegans_padding_and_keeps_size(tiny, case, hw):
    pred = make(tiny, case)
    img = photo(*hw)
    got = pred.predict_tensor(as_tensor(img))[0].permute(1, 2, 0).numpy()
    assert got.shape == img.shape
    np.testing.assert_allclose(got, reference(case, pred, img), atol=2e-5)
    assert np.abs(got - img / 255).max() > 0.01  # the net did something


@pytest.mark.parametrize("case", ["swinir", "nafnet", "mprnet", "invdn"])
def test_layouts_gray_alpha_16bit_keep_shape_and_dtype(tiny, case):
    pred = make(tiny, case, **({"disable_mc": True} if case == "invdn" else {}))
    rgb = photo(21, 18)
    gray = rgb.mean(2).astype(np.uint8)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)])
    deep = rgb.astype(np.uint16) * 257
    for img in (rgb, gray, rgba, deep):
        out = pred.predict(img)
        assert out.shape == img.shape and out.dtype == img.dtype
    assert (pred.predict(rgba)[..., 3] == 200).all()


# ---- tiles ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case,hw,tile,small", [("swinir", (40, 52), 8, 4), ("swinir-3conv", (60, 52), 8, 8),
                                                ("invdn-x2", (90, 100), 16, 8), ("invdn", (232, 248), 64, 16)])
def test_tiles_with_the_default_overlap_equal_the_whole_image(tiny, case, hw, tile, small):
    """SwinIR (window-aligned tiles) and InvDN (tiles aligned to the Haar blocks, noise drawn for
    the whole image): the default overlap is the receptive radius, so tiled == whole to float
    rounding; a smaller overlap shows real seams (the check can fail)."""
    extra = {"disable_mc": True} if case.startswith("invdn") else {}
    pred = make(tiny, case, tile=0, **extra)
    x = as_tensor(photo(*hw))
    whole = pred.predict_tensor(x)
    overlap = pred.tile_overlap
    assert whole.shape == x.shape and overlap % pred.runner.size_multiple == 0
    pred.tile = tile
    tiled = pred.predict_tensor(x)
    assert tile + 2 * overlap < min(pred.pad(x).shape[-2:])  # windows smaller than the image: real tiles
    assert (tiled - whole).abs().max().item() < 1e-5
    pred.tile_overlap = small
    assert (pred.predict_tensor(x) - whole).abs().max().item() > 1e-3


def test_overlap_formulas_on_paddlegans_configs():
    """The receptive radii of PaddleGAN's denoisers: SwinIR 36 blocks x 7 + 9 convs = 261 -> 264
    (window multiple); InvDN 2 x 6 x (8 x 2 + 8 x 4) + 2 x 4 = 584."""
    with torch.device("meta"):
        swinir, invdn = build_arch(get_spec("swinir-denoising")), build_arch(get_spec("invdn-denoising"))
    assert swinir_overlap(swinir, 8) == 264
    assert invdn_overlap(invdn) == 584


@pytest.mark.parametrize("case", ["nafnet", "mprnet"])
def test_unet_tiles_are_approximate_and_said_so(tiny, case, capsys):
    """NAFNet / MPRNet pool globally: the default (an image within the memory budget) is the exact
    whole-image pass; explicit tiles keep the size, stay finite and log once that they approximate."""
    pred = make(tiny, case)
    x = as_tensor(photo(64, 96))
    whole = pred.predict_tensor(x)
    pred.tile = 0
    assert torch.equal(pred.predict_tensor(x), whole)
    pred.verbose, pred.tile, pred.tile_overlap = True, 32, 16
    capsys.readouterr()
    tiled = pred.predict_tensor(x)
    assert tiled.shape == whole.shape and torch.isfinite(tiled).all()
    assert (tiled - whole).abs().max().item() > 1e-3  # not exact: the pooling sees each window alone
    pred.predict_tensor(x)
    assert capsys.readouterr().err.count("tiled output approximates") == 1


# ---- InvDN's noise ----------------------------------------------------------------------------------
def test_invdn_noise_is_seeded_and_the_ensemble_averages_8_passes(tiny):
    img = photo(20, 28)
    a = make(tiny, "invdn", seed=3).predict(img)
    b = make(tiny, "invdn", seed=3).predict(img)
    c = make(tiny, "invdn", seed=4).predict(img)
    single = make(tiny, "invdn", seed=3, disable_mc=True)
    d = single.predict(img)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)
    # the ensemble of 8 noisy passes varies less with the seed than one pass does
    e = make(tiny, "invdn", seed=4, disable_mc=True).predict(img)
    assert np.abs(a.astype(int) - c).mean() < np.abs(d.astype(int) - e).mean()


# ---- files: images, folders, videos ------------------------------------------------------------------
def test_run_image_folder_and_paddlegan_layout(tiny, tmp_path):
    pred = make(tiny, "mprnet", task="derain", output_path=str(tmp_path / "out"))
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    imwrite(src / "a.png", photo(19, 23))
    imwrite(src / "sub" / "b.jpg", photo(32, 16).mean(2).astype(np.uint8))
    img, path = pred.run(str(src / "a.png"))
    assert path == str(tmp_path / "out" / "Deraining" / "a_restoration.png")
    assert img.shape == (19, 23, 3) and np.array_equal(imread(path), img)
    res = pred.run(images_path=str(src))
    assert res.ok and len(res.outputs) == 2
    assert imread(tmp_path / "out" / "Deraining" / "sub" / "b_restoration.jpg", mode="unchanged").shape == (32, 16)
    with pytest.raises(ConfigError, match="images_path"):
        pred.run()


def test_video_keeps_frames_fps_size_and_audio(tiny, tmp_path):
    from fractions import Fraction

    from ppgan.video import probe_video
    from ppgan.video.synthetic import make_test_video

    src = str(tmp_path / "clip.mp4")
    make_test_video(src, seconds=0.5, fps=Fraction(24000, 1001), size=(46, 30), audio=1)
    pred = make(tiny, "swinir", output_path=str(tmp_path / "o"))
    frames, out = pred.run(src, progress=False, video_options={"chunk_seconds": 0.25})
    assert frames is None and out == str(tmp_path / "o" / "Denoising" / "clip_restoration.mp4")
    a, b = probe_video(src), probe_video(out)
    assert (b.width, b.height, b.fps, b.n_frames) == (a.width, a.height, a.fps, a.n_frames) == (46, 30, a.fps, 12)
    assert sorted(s["type"] for s in b.streams) == sorted(s["type"] for s in a.streams)
    assert abs(b.duration - a.duration) <= 1 / float(a.fps)


def test_bf16_on_cpu_is_close_to_fp32(tiny):
    img = photo(24, 24)
    fp32 = make(tiny, "nafnet").predict(img).astype(int)
    bf16 = make(tiny, "nafnet", half="bf16").predict(img).astype(int)
    assert np.abs(fp32 - bf16).mean() < 3


# ---- CLIs --------------------------------------------------------------------------------------------
def load_cli(name):
    spec = importlib.util.spec_from_file_location(f"_cli_{name}", os.path.join(TOOLS, f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def derain_weights(tmp_path_factory):
    """Full-size PaddleGAN MPR_Deraining layout (flat state dict) with rule weights."""
    return write_weights(get_spec("mpr-deraining"), tmp_path_factory.mktemp("mpr") / "MPR_Deraining.pdparams", False)


def test_mprnet_cli_paddlegan_flags(tmp_path, derain_weights):
    src = tmp_path / "rainy photo.png"
    imwrite(src, photo(27, 35))
    r = run_cli([os.path.join(TOOLS, "mprnet.py"), "--input_image", str(src), "--output_path", str(tmp_path / "o"),
                 "--task", "Deraining", "--weight_path", derain_weights, "--cpu", "--quiet"], timeout=300)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "o" / "Deraining" / "rainy photo_restoration.png"
    assert imread(out).shape == (27, 35, 3) and f"output: {out}" in r.stdout


def test_mprnet_cli_video_keeps_frames_and_audio(tmp_path, derain_weights):
    from fractions import Fraction

    from ppgan.video import probe_video
    from ppgan.video.synthetic import make_test_video

    src = str(tmp_path / "rain.mp4")
    make_test_video(src, seconds=0.5, fps=Fraction(25), size=(38, 26), audio=1)
    r = run_cli([os.path.join(TOOLS, "mprnet.py"), "--input", src, "--output_path", str(tmp_path / "o"),
                 "--task", "derain", "--weight_path", derain_weights, "--cpu", "--quiet"], timeout=300)
    assert r.returncode == 0, r.stderr
    a, b = probe_video(src), probe_video(str(tmp_path / "o" / "Deraining" / "rain_restoration.mp4"))
    assert (b.width, b.height, b.fps, b.n_frames) == (a.width, a.height, a.fps, a.n_frames) == (38, 26, 25, 12)
    assert [s["type"] for s in b.streams].count("audio") == 1


def test_front_door_invdn_on_a_folder(tmp_path):
    """image_restoration.py --model invdn with PaddleGAN's full InvDN layout (rule weights)."""
    weights = write_weights(get_spec("invdn-denoising"), tmp_path / "InvDN_Denoising.pdparams", True)
    src = tmp_path / "photos"
    src.mkdir()
    imwrite(src / "a.png", photo(22, 17))
    imwrite(src / "b.png", photo(9, 30))
    r = run_cli([os.path.join(TOOLS, "image_restoration.py"), "--model", "invdn", "--images_path", str(src),
                 "--output", str(tmp_path / "o"), "--weight_path", weights, "--disable_mc", "--seed", "7",
                 "--device", "cpu", "--quiet"], timeout=300)
    assert r.returncode == 0, r.stderr
    assert imread(tmp_path / "o" / "Denoising" / "a_restoration.png").shape == (22, 17, 3)
    assert imread(tmp_path / "o" / "Denoising" / "b_restoration.png").shape == (9, 30, 3)
    assert "2 written" in r.stdout


def one_error_line(capsys_or_proc, rc, match):
    err = capsys_or_proc.stderr if hasattr(capsys_or_proc, "stderr") else capsys_or_proc.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], err
    assert "Traceback" not in err


BAD = [
    (["--model", "swinnir"], "did you mean swinir"),
    ([], "--model is required"),
    (["--model", "mprnet", "--task", "dehaze"], "deblur, denoise or derain"),
    (["--model", "nafnet", "--tile", "-1"], "--tile must be >= 0"),
    (["--model", "invdn", "--tile_overlap", "-5"], "--tile_overlap must be >= 0"),
    (["--model", "swinir", "--cpu", "--device", "cuda"], "contradict"),
    (["--model", "nafnet", "--precision", "bf16", "--half"], "not both"),
]


@pytest.mark.parametrize("args,match", BAD)
def test_front_door_bad_arguments_one_line(tmp_path, capsys, args, match):
    src = tmp_path / "x.png"
    imwrite(src, photo(8, 8))
    rc = load_cli("image_restoration").main(["--input", str(src), "--quiet", *args])
    one_error_line(capsys, rc, match)


def test_bad_inputs_and_weights_one_line(tmp_path, capsys, tiny, derain_weights):
    cli = load_cli("mprnet")
    base = ["--task", "derain", "--weight_path", derain_weights, "--cpu", "--quiet",
            "--output_path", str(tmp_path / "o")]
    one_error_line(capsys, cli.main(["--input", str(tmp_path / "missing.png"), *base]), "not found")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    one_error_line(capsys, cli.main(["--input", str(corrupt), *base]), "not a valid")
    assert not (tmp_path / "o" / "Deraining" / "corrupt_restoration.png").exists()
    src = tmp_path / "ok.png"
    imwrite(src, photo(8, 8))
    one_error_line(capsys, cli.main(["--input", str(src), *base[:2], "--weight_path", str(tmp_path / "nope.pdparams"),
                                     "--cpu", "--quiet"]), "nope.pdparams")
    # weights of another net: the mismatch is named, not a traceback
    one_error_line(capsys, load_cli("invdn_denoising").main(["--input", str(src), "--weight_path", tiny["invdn"][1],
                                                             "--cpu", "--quiet"]), "do not fit")


@pytest.mark.parametrize("tool,filename", [("swinir_denoising", "SwinIR_Denoising.pdparams"),
                                           ("nafnet_denoising", "NAFNet_Denoising.pdparams")])
def test_offline_without_weights_is_one_line(tmp_path, tool, filename):
    src = tmp_path / "x.png"
    imwrite(src, photo(8, 8))
    r = run_cli([os.path.join(TOOLS, f"{tool}.py"), "--images_path", str(src), "--output_path", str(tmp_path / "o"),
                 "--cpu", "--quiet"], env=dict(OFFLINE, PPGAN_HOME=str(tmp_path / "home")), timeout=180)
    one_error_line(r, r.returncode, "--weight_path")
    assert filename in r.stderr and f"`ppgan download {tool.replace('_', '-')}`" in r.stderr
    assert not (tmp_path / "o" / "Denoising").exists()


def test_help_lists_paddlegan_flags_and_examples():
    for tool, flags in [("swinir_denoising", ["--images_path", "--seed"]), ("mprnet", ["--input_image", "--task"]),
                        ("invdn_denoising", ["--disable_mc"]), ("image_restoration", ["--model", "--tile_overlap"])]:
        r = run_cli([os.path.join(TOOLS, f"{tool}.py"), "--help"], timeout=60)
        assert r.returncode == 0 and all(f in r.stdout for f in flags) and "examples:" in r.stdout, r.stdout

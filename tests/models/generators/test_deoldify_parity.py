"""DeOldify generator: PaddleGAN parity (fixtures in tests/fixtures/parity), other sizes, the
normalised convs, and the predictor's pre/post-processing (tests/deoldify_reference.py).

Parity: manifest -> rule weights + spectral-norm u/v after one power iteration (the fixtures'
`extra.weight_overrides`) -> `load_paddle_state_dict(strict=True)` -> eval forward -> PaddleGAN's
recorded outputs. The stable net (resnet101, 218 M parameters) spends ~15 s drawing its rule
weights, so its parity test is marked slow; its state-dict layout is checked in the fast suite.
"""
import os
import sys

import numpy as np
import pytest
import torch
from skimage import data

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
from parity import Fixture  # noqa: E402

import deoldify_reference as du  # noqa: E402  (PaddleGAN's exact pre/post-processing, test-only)
from ppgan.models.generators import GENERATORS, build_generator  # noqa: E402
from ppgan.models.generators.deoldify import (Deoldify, Spectralnorm, WeightNormConv2d,  # noqa: E402
                                              build_model)
from ppgan.utils.errors import PPGANError  # noqa: E402
from ppgan.utils.inference import padded_forward  # noqa: E402
from ppgan.weights import load_paddle_state_dict  # noqa: E402


def _parity_model(name):
    fixture = Fixture(name)
    assert fixture.meta["extra"]["builder"].endswith("deoldify.build_model")
    model = build_model(**fixture.kwargs).eval()
    report = load_paddle_state_dict(model, fixture.paddle_state_dict(), strict=True)
    assert report["transposed"] == []  # no Linear layers: every weight keeps its layout
    return fixture, model


@pytest.fixture(scope="module")
def artistic():
    return _parity_model("deoldify_generator_artistic")


def test_artistic_parity(artistic):
    fixture, model = artistic
    with torch.no_grad():
        fixture.assert_matches(model(*fixture.inputs))


@pytest.mark.slow
def test_stable_parity():
    fixture, model = _parity_model("deoldify_generator")
    with torch.no_grad():
        fixture.assert_matches(model(*fixture.inputs))


def test_stable_state_dict_is_paddlegans():
    # Every name/shape of PaddleGAN's stable checkpoint, without drawing 218 M rule weights.
    manifest = Fixture("deoldify_generator").manifest
    state = build_model("stable").state_dict()
    renamed = {"_mean": "running_mean", "_variance": "running_var"}
    want = {}
    for name, shape, _ in manifest:
        head, _, tail = name.rpartition(".")
        want[head + "." + renamed.get(tail, tail)] = tuple(shape)
    got = {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert got == want
    assert len(manifest) == 635


def test_registry_and_build_model():
    assert GENERATORS.get("Deoldify") is Deoldify
    net = build_generator({"name": "Deoldify", "model_type": "artistic"})
    assert isinstance(net, Deoldify) and net.size_multiple == 32
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in build_model("artistic").parameters())
    with pytest.raises(ValueError, match="model_type"):
        build_model("vivid")
    with pytest.raises(ValueError, match="norm_type"):
        Deoldify(norm_type="Instance")


def test_other_sizes(artistic):
    fixture, model = artistic
    torch.manual_seed(0)
    grey = torch.rand(2, 1, 64, 96).repeat(1, 3, 1, 1)
    x = (grey - torch.tensor(du.IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(du.IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        y = model(x)
        y1 = model(x[1:])
        z = padded_forward(model, x[:1, :, :50, :70])  # padded to 64 x 96 and cropped back
        with pytest.raises(ValueError, match="even"):
            model(x[:, :, :63])
    assert y.shape == (2, 3, 64, 96) and torch.isfinite(y).all()
    assert (y.abs() < 3).all() and y.std() > 1e-2  # SigmoidRange(-3, 3), not a constant image
    torch.testing.assert_close(y1, y[1:], atol=1e-4, rtol=1e-4)  # eval mode: samples independent
    assert z.shape == (1, 3, 50, 70) and torch.isfinite(z).all()


def test_spectralnorm_eval_uses_stored_vectors_and_training_iterates():
    torch.manual_seed(0)
    sn = Spectralnorm(torch.nn.Conv2d(4, 6, 3, padding=1, bias=True))
    u, v = torch.randn(6) * 3, torch.randn(36) * 0.5  # deliberately not unit vectors
    sn.spectral_norm.weight_u.copy_(u)
    sn.spectral_norm.weight_v.copy_(v)
    x = torch.randn(2, 4, 5, 5)
    w = sn.weight_orig.detach()
    mat = w.reshape(6, -1)
    sigma = u @ mat @ v
    want = torch.nn.functional.conv2d(x, w / sigma, sn.layer.bias, padding=1)
    torch.testing.assert_close(sn.eval()(x), want, atol=1e-5 * want.abs().max().item(), rtol=1e-5)
    assert (sn.spectral_norm.weight_u == u).all()  # eval mode leaves the vectors alone
    assert sorted(sn.state_dict()) == ["layer.bias", "spectral_norm.weight_u", "spectral_norm.weight_v", "weight_orig"]
    # Training: one power iteration, then the largest singular value is approached.
    sn.train()
    for _ in range(50):
        y = sn(x)
    sv = torch.linalg.matrix_norm(mat, ord=2)
    torch.testing.assert_close(y, torch.nn.functional.conv2d(x, w / sv, sn.layer.bias, padding=1), atol=1e-4, rtol=1e-4)


def test_weight_norm_conv():
    torch.manual_seed(0)
    conv = WeightNormConv2d(5, 8, 1, bias=True)
    assert conv.weight_g.shape == (8,)  # 1-D, as Paddle stores it
    with torch.no_grad():
        conv.weight_g.mul_(torch.linspace(0.5, 2.0, 8))
    x = torch.randn(1, 5, 4, 4)
    v = conv.weight_v.detach()
    w = conv.weight_g.detach().view(8, 1, 1, 1) * v / v.flatten(1).norm(dim=1).view(8, 1, 1, 1)
    torch.testing.assert_close(conv(x), torch.nn.functional.conv2d(x, w, conv.bias))


# --- deoldify_reference (PaddleGAN's pipeline) --------------------------------------------------------------------

def test_preprocess_matches_paddlegans_norm():
    img = data.astronaut()  # 512 x 512 RGB
    assert du.to_grey_rgb(np.array([[[255, 0, 0], [0, 255, 0]]], np.uint8)).tolist() == [[[76] * 3, [150] * 3]]
    x = du.preprocess(img, render_factor=8)  # 128 x 128
    assert x.shape == (1, 3, 128, 128) and x.dtype == torch.float32
    grey = np.asarray(du.Image.fromarray(du.to_grey_rgb(img)).resize((128, 128), du.Image.BILINEAR))
    want = (grey.transpose(2, 0, 1) / 255.0 - np.array(du.IMAGENET_MEAN).reshape(3, 1, 1)) \
        / np.array(du.IMAGENET_STD).reshape(3, 1, 1)
    np.testing.assert_allclose(x[0].numpy(), want, atol=1e-6)
    assert du.preprocess(img).shape == (1, 3, 512, 512)  # default render_factor 32
    assert du.preprocess(img[:40, :50], render_factor=None).shape == (1, 3, 40, 50)
    with pytest.raises(PPGANError, match="uint8"):
        du.preprocess(img.astype(np.float32))
    with pytest.raises(PPGANError, match="shape"):
        du.preprocess(img[..., :2])


def test_postprocess_round_trip_keeps_luminance():
    img = data.chelsea()  # 300 x 451 RGB
    grey = du.to_grey_rgb(img)
    x = du.preprocess(img, render_factor=16)  # 256 x 256
    # A "model" returning its grey input: the result is the grey original (chroma 128).
    out = du.postprocess(x, original=img)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - grey.astype(int)).max() <= 2
    assert du.postprocess(x).shape == (256, 256, 3)
    # A coloured prediction: luminance (cv2's YUV on RGB-as-BGR) is the original's, chroma the model's.
    tint = x.clone()
    tint[:, 0] += 0.6  # redder
    tint[:, 2] -= 0.6  # less blue
    out = du.postprocess(tint, original=img)
    f = out.astype(float)
    y_swapped = 0.114 * f[..., 0] + 0.587 * f[..., 1] + 0.299 * f[..., 2]
    mid = (grey[..., 0] > 60) & (grey[..., 0] < 190)  # away from clipping
    assert np.abs(y_swapped - grey[..., 0])[mid].mean() < 1.0
    assert (f[..., 0] - f[..., 2])[mid].mean() > 40
    with pytest.raises(PPGANError, match="batch"):
        du.postprocess(torch.zeros(2, 3, 8, 8))

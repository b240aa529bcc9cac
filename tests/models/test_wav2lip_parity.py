"""Wav2Lip nets: PaddleGAN parity (fixtures in tests/fixtures/parity) and other sizes / forms.

Parity: manifest -> rule weights -> .pdparams file / dict -> `load_paddle_state_dict(strict=True)`
-> eval forward -> PaddleGAN's recorded outputs.
"""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from parity import Fixture, write_pdparams  # noqa: E402

from ppgan.models.discriminators import (DISCRIMINATORS, SyncNetColor, Wav2LipDiscQual,  # noqa: E402
                                         build_discriminator)
from ppgan.models.generators import GENERATORS, Wav2Lip, build_generator  # noqa: E402
from ppgan.utils.errors import CheckpointError  # noqa: E402
from ppgan.weights import load_paddle_state_dict  # noqa: E402


def _load(name, cls, tmp_path=None):
    fixture = Fixture(name)
    model = cls().eval()
    state = fixture.paddle_state_dict()
    src = write_pdparams(tmp_path / f"{name}.pdparams", state) if tmp_path is not None else state
    load_paddle_state_dict(model, src, strict=True)
    return fixture, model


# --- parity -------------------------------------------------------------------------------------

def test_parity_wav2lip_generator_from_pdparams_file(tmp_path):
    fixture, model = _load("wav2lip_generator", Wav2Lip, tmp_path)
    with torch.no_grad():
        pred = model(*fixture.inputs)
    assert pred.shape == (2, 3, 96, 96)
    fixture.assert_matches(pred)


def test_fused_conv_bn_gives_the_same_faces():
    fixture, model = _load("wav2lip_generator", Wav2Lip)
    with torch.no_grad():
        fused = Wav2Lip().eval()
        fused.load_state_dict(model.state_dict())
        fused.fuse_conv_bn_()
        fixture.assert_matches(fused(*fixture.inputs))
    assert not any("running_mean" in k for k in fused.state_dict())
    with pytest.raises(RuntimeError, match="eval mode"):
        Wav2Lip().fuse_conv_bn_()


def test_parity_syncnet_color():
    fixture, model = _load("syncnet_color", SyncNetColor)
    with torch.no_grad():
        audio_emb, face_emb = model(*fixture.inputs)
    fixture.assert_matches((audio_emb, face_emb))
    torch.testing.assert_close(audio_emb.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(face_emb.norm(dim=1), torch.ones(2))


def test_parity_wav2lip_disc_qual():
    fixture, model = _load("wav2lip_disc_qual", Wav2LipDiscQual)
    faces = fixture.inputs[0]
    with torch.no_grad():
        pred = model(faces)
        x = model.get_lower_half(model.to_2d(faces))
        feats = []
        for block in model.face_encoder_blocks:
            x = block(x)
            feats.append(x)
        logit = model.binary_pred[0](x).reshape(len(x), -1)
    fixture.assert_matches((pred, logit, feats[3], feats[6]))


def test_disc_qual_perceptual_forward_is_bce_against_real():
    fixture, model = _load("wav2lip_disc_qual", Wav2LipDiscQual)
    faces = fixture.inputs[0]
    with torch.no_grad():
        loss = model.perceptual_forward(faces)
        want = -torch.log(model(faces)).mean()
    assert loss.ndim == 0
    torch.testing.assert_close(loss, want)


def test_loading_the_wrong_checkpoint_names_the_keys():
    fixture = Fixture("syncnet_color")
    with pytest.raises(CheckpointError, match="audio_encoder|face_encoder"):
        load_paddle_state_dict(Wav2Lip(), fixture.paddle_state_dict(), strict=True)


# --- other sizes and forms ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def wav2lip():
    torch.manual_seed(0)
    return Wav2Lip().eval()


@pytest.mark.parametrize("batch", [1, 3])
def test_wav2lip_batch_sizes_match_one_by_one(wav2lip, batch):
    torch.manual_seed(batch)
    audio, faces = torch.randn(batch, 1, 80, 16), torch.rand(batch, 6, 96, 96)
    with torch.no_grad():
        out = wav2lip(audio, faces)
        singles = torch.cat([wav2lip(audio[i:i + 1], faces[i:i + 1]) for i in range(batch)])
    assert out.shape == (batch, 3, 96, 96)
    assert out.min() >= 0 and out.max() <= 1
    torch.testing.assert_close(out, singles, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("batch, steps", [(2, 3), (1, 5)])
def test_wav2lip_sequence_form_is_the_slices(wav2lip, batch, steps):
    torch.manual_seed(steps)
    audio = torch.randn(batch, steps, 1, 80, 16)
    faces = torch.rand(batch, 6, steps, 96, 96)
    with torch.no_grad():
        out = wav2lip(audio, faces)
        per_t = [wav2lip(audio[:, t], faces[:, :, t]) for t in range(steps)]
    assert out.shape == (batch, 3, steps, 96, 96)
    for t in range(steps):
        torch.testing.assert_close(out[:, :, t], per_t[t], atol=1e-5, rtol=1e-5)


def test_wav2lip_output_depends_on_audio(wav2lip):
    torch.manual_seed(1)
    faces = torch.rand(1, 6, 96, 96)
    with torch.no_grad():
        a = wav2lip(torch.full((1, 1, 80, 16), -4.0), faces)
        b = wav2lip(torch.randn(1, 1, 80, 16) * 2, faces)
    assert (a - b).abs().max() > 1e-4


@pytest.mark.parametrize("audio_shape, face_shape", [
    ((2, 1, 80, 16), (2, 3, 96, 96)),  # reference missing
    ((2, 1, 80, 16), (2, 6, 64, 64)),  # wrong face size
    ((2, 1, 80, 12), (2, 6, 96, 96)),  # wrong mel window
    ((2, 1, 80, 16), (3, 6, 96, 96)),  # batch mismatch
    ((2, 3, 1, 80, 16), (2, 6, 2, 96, 96)),  # T mismatch
    ((2, 1, 80, 16), (2, 6, 2, 96, 96)),  # 4-D audio beside 5-D faces
])
def test_wav2lip_rejects_bad_shapes(wav2lip, audio_shape, face_shape):
    with pytest.raises(ValueError, match="Wav2Lip"):
        wav2lip(torch.zeros(audio_shape), torch.zeros(face_shape))


@pytest.mark.parametrize("batch", [1, 3])
def test_syncnet_batch_and_embedding(batch):
    torch.manual_seed(0)
    model = SyncNetColor().eval()
    audio, faces = torch.randn(batch, 1, 80, 16), torch.rand(batch, 15, 48, 96)
    with torch.no_grad():
        a, v = model(audio, faces)
        a1, v1 = model(audio[-1:], faces[-1:])
    assert a.shape == v.shape == (batch, 512)
    torch.testing.assert_close(a.norm(dim=1), torch.ones(batch))
    torch.testing.assert_close(a[-1:], a1, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(v[-1:], v1, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("audio_shape, face_shape", [((2, 1, 80, 16), (2, 3, 48, 96)), ((2, 80, 16), (2, 15, 48, 96)),
                                                     ((1, 1, 80, 16), (2, 15, 48, 96))])
def test_syncnet_rejects_bad_shapes(audio_shape, face_shape):
    with pytest.raises(ValueError, match="SyncNetColor"):
        SyncNetColor()(torch.zeros(audio_shape), torch.zeros(face_shape))


@pytest.mark.parametrize("shape, rows", [((3, 3, 5, 96, 96), 15), ((1, 3, 2, 96, 96), 2), ((4, 3, 96, 96), 4)])
def test_disc_qual_forms(shape, rows):
    torch.manual_seed(0)
    model = Wav2LipDiscQual().eval()
    faces = torch.rand(shape)
    with torch.no_grad():
        pred = model(faces)
        if len(shape) == 5:  # row t*B + b is frame t of sample b
            b, t = shape[0] - 1, shape[2] - 1
            one = model(faces[b:b + 1, :, t])
            torch.testing.assert_close(pred[t * shape[0] + b], one[0], atol=1e-6, rtol=1e-5)
    assert pred.shape == (rows, 1) and (pred > 0).all() and (pred < 1).all()


def test_disc_qual_sees_only_the_lower_half():
    torch.manual_seed(0)
    model = Wav2LipDiscQual().eval()
    faces = torch.rand(2, 3, 96, 96)
    changed = faces.clone()
    changed[:, :, :48] = torch.rand(2, 3, 48, 96)
    with torch.no_grad():
        torch.testing.assert_close(model(faces), model(changed))
    with pytest.raises(ValueError, match="Wav2LipDiscQual"):
        model(torch.zeros(3, 96, 96))


@pytest.mark.parametrize("cls, inputs", [
    (Wav2Lip, lambda: (torch.randn(2, 2, 1, 80, 16), torch.rand(2, 6, 2, 96, 96))),
    (SyncNetColor, lambda: (torch.randn(2, 1, 80, 16), torch.rand(2, 15, 48, 96))),
    (Wav2LipDiscQual, lambda: (torch.rand(2, 3, 2, 96, 96),)),
])
def test_backward_reaches_every_parameter(cls, inputs):
    torch.manual_seed(0)
    model = cls().train()
    out = model(*inputs())
    outs = out if isinstance(out, tuple) else (out,)
    sum(o.square().mean() for o in outs).backward()
    params = list(model.named_parameters())
    assert params
    for n, p in params:
        assert p.grad is not None, n
        assert torch.isfinite(p.grad).all(), n
    assert sum(bool(p.grad.abs().sum() > 0) for _, p in params) > 0.9 * len(params)


@pytest.mark.parametrize("registry, build, name", [(GENERATORS, build_generator, "Wav2Lip"),
                                                   (DISCRIMINATORS, build_discriminator, "SyncNetColor"),
                                                   (DISCRIMINATORS, build_discriminator, "Wav2LipDiscQual")])
def test_registered(registry, build, name):
    assert name in registry
    assert type(build({"name": name})).__name__ == name

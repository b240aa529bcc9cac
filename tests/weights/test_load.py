"""`ppgan.weights.load`: every supported format by content, the metadata it returns, the strict
loads into nets, refused malicious pickles, `file_sha256`, and that no other loader is left."""
import importlib.util
import json
import os
import pickle
import re
import struct

import numpy as np
import pytest
import torch
from torch import nn

from ppgan import weights as W
from ppgan.utils.errors import CheckpointError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Tiny(nn.Module):
    """A conv, a BatchNorm and a Linear: the three layouts the Paddle conversion cares about."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)


def tiny(seed):
    torch.manual_seed(seed)
    net = Tiny()
    with torch.no_grad():
        net.bn.running_mean.normal_()
        net.bn.running_var.uniform_(0.5, 2)
    return net


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def one_line(fn, match):
    with pytest.raises(CheckpointError, match=match) as info:
        fn()
    assert "\n" not in str(info.value)
    return str(info.value)


def paddle_arrays(net):
    """`net`'s weights as PaddleGAN stores them: numpy, Linear [in, out], BN _mean / _variance."""
    out = {}
    for k, v in net.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        a = v.numpy()
        k = k.replace("running_mean", "_mean").replace("running_var", "_variance")
        out[k] = a.T.copy() if k == "fc.weight" else a
    return out


def safetensors_bytes(flat):
    """A .safetensors file written by hand (format: u64 header length, JSON header, raw data)."""
    header, chunks, offset = {}, [], 0
    for k, v in flat.items():
        raw = v.contiguous().numpy().tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    head = json.dumps(header).encode()
    return struct.pack("<Q", len(head)) + head + b"".join(chunks)


# ---------------------------------------------------------------- every format

def test_our_weight_file_and_checkpoint(tmp_path):
    g, d = tiny(0), tiny(1)
    cfg = {"name": "Whatever", "generator": {"name": "X"}}
    path = tmp_path / "iter_1_weight.pth"
    torch.save({"netG": g.state_dict(), "netD": d.state_dict(), "__ppgan__": {"model": cfg, "version": "x"}}, path)
    w = W.load(path)
    assert (w.format, w.path, w.files, w.config) == ("ppgan", str(path), (str(path),), cfg)
    assert set(w.states) == {"netG", "netD"}
    assert same(W.load_into(tiny(5), w), g)  # the generator by default
    assert same(W.load_into(tiny(5), w, name="netD"), d)
    nets = {"netG": tiny(5), "netD": tiny(6), "netE": tiny(7)}
    assert W.load_nets(nets, w) == ["netG", "netD"]
    assert same(nets["netG"], g) and same(nets["netD"], d)
    one_line(lambda: W.load_into(tiny(5), w, name="netX"), "has no 'netX' weights")

    ckpt = tmp_path / "iter_1_checkpoint.pth"
    torch.save({"nets": {"netG": g.state_dict()}, "optimizers": {}, "config": {"model": cfg}, "iter": 1}, ckpt)
    w = W.load(ckpt)
    assert (w.format, list(w.states), w.config) == ("ppgan", ["netG"], cfg)
    assert same(W.load_into(tiny(5), w), g)


def test_bare_state_dict_torchvision_wrapper_and_module_prefix(tmp_path):
    g = tiny(0)
    for obj in (g.state_dict(), {"state_dict": g.state_dict()}, {f"module.{k}": v for k, v in g.state_dict().items()}):
        torch.save(obj, tmp_path / "w.pth")
        w = W.load(tmp_path / "w.pth")
        assert w.format == "torch" and list(w.states) == ["net"]
        assert same(W.load_into(tiny(3), w), g)
    assert same(W.load_into(tiny(3), g.state_dict()), g)  # an in-memory dict takes the same path


def test_legacy_non_zip_torch_file(tmp_path):
    g = tiny(0)
    torch.save(g.state_dict(), tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    w = W.load(tmp_path / "old.pth")
    assert w.format == "torch" and same(W.load_into(tiny(3), w), g)


def test_pdparams_flat_and_nested(tmp_path):
    g, d = tiny(0), tiny(1)
    flat = tmp_path / "g.pdparams"
    flat.write_bytes(pickle.dumps(paddle_arrays(g), protocol=2))
    w = W.load(flat)
    assert w.format == "pdparams" and list(w.states) == ["net"]
    assert isinstance(w.state()["fc.weight"], np.ndarray) and w.state()["fc.weight"].shape == (4, 2)  # Paddle layout
    assert same(W.load_into(tiny(3), w), g)  # converted for the net: Linear transposed, BN renamed

    nested = tmp_path / "gd.pdparams"  # a PaddleGAN training export; Paddle >= 2.1 (name, array) tuples
    arrays_d = {k: (f"t_{i}", v) for i, (k, v) in enumerate(paddle_arrays(d).items())}
    nested.write_bytes(pickle.dumps({"generator": paddle_arrays(g), "discriminator": arrays_d,
                                     "StructuredToParameterName@@": {}}, protocol=4))
    w = W.load(nested)
    assert w.format == "pdparams" and set(w.states) == {"generator", "discriminator"}
    assert same(W.load_into(tiny(3), w), g)  # 'generator' is the default
    assert same(W.load_into(tiny(3), w, name="discriminator"), d)
    nets = {"generator": tiny(4), "discriminator": tiny(5)}
    assert W.load_nets(nets, w) == ["generator", "discriminator"] and same(nets["discriminator"], d)
    bad = paddle_arrays(g)
    bad["fc.weight"] = np.zeros((3, 3), np.float32)
    flat.write_bytes(pickle.dumps(bad, protocol=2))
    one_line(lambda: W.load_into(tiny(3), flat), "shape mismatch")


def test_safetensors(tmp_path):
    g = tiny(0)
    path = tmp_path / "w.safetensors"
    path.write_bytes(safetensors_bytes({f"netG.{k}": v.float() for k, v in g.state_dict().items()
                                        if v.dtype == torch.float32}))
    if importlib.util.find_spec("safetensors") is None:  # an optional package: one line naming it
        msg = one_line(lambda: W.load(path), "needs the 'safetensors' package")
        assert "pip install safetensors" in msg and str(path) in msg
        return
    w = W.load(path)
    assert w.format == "safetensors"
    ref = tiny(5)
    ref.bn.num_batches_tracked.zero_()
    net = W.load_into(tiny(5), w, strict=False)
    assert torch.equal(net.fc.weight, g.fc.weight)
    nets = {"netG": tiny(6)}
    assert W.load_nets(nets, w, strict=False) == ["netG"] and torch.equal(nets["netG"].conv.weight, g.conv.weight)


def test_unknown_missing_and_html(tmp_path):
    one_line(lambda: W.load(tmp_path / "none.pth"), "weight file not found")
    (tmp_path / "page.pth").write_bytes(b"<!DOCTYPE html><html></html>")
    one_line(lambda: W.load(tmp_path / "page.pth"), "HTML page, not a checkpoint")
    (tmp_path / "junk.bin").write_bytes(b"\x00\x01junk")
    one_line(lambda: W.load(tmp_path / "junk.bin"), "not a checkpoint this tool can read")
    one_line(lambda: W.load({"a": 3}), "holds no state dicts")


# ---------------------------------------------------------------- malicious pickles

class Evil:
    """Unpickling this runs `touch <marker>` through os.system (a GLOBAL + REDUCE)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _evil_files(tmp_path, marker):
    evil = {"conv.weight": Evil(marker)}
    files = {}
    files["pdparams"] = tmp_path / "evil.pdparams"
    files["pdparams"].write_bytes(pickle.dumps(evil, protocol=2))
    files["pdparams-proto0"] = tmp_path / "evil0.pdparams"  # protocol 0: no 0x80 header at all
    files["pdparams-proto0"].write_bytes(pickle.dumps(evil, protocol=0))
    files["legacy-pth"] = tmp_path / "evil_legacy.pth"
    torch.save(evil, files["legacy-pth"], _use_new_zipfile_serialization=False)
    files["zip-pth"] = tmp_path / "evil_zip.pth"
    torch.save(evil, files["zip-pth"])
    return files


def test_malicious_pickles_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    files = _evil_files(tmp_path, marker)
    # the payload is real: a plain unpickler runs it
    with open(files["pdparams"], "rb") as f:
        pickle.load(f)
    assert marker.exists()
    marker.unlink()
    with open(files["zip-pth"], "rb") as f:
        assert b"system" in f.read()  # the zip's data.pkl names os.system

    for kind, path in files.items():
        msg = one_line(lambda: W.load(path), "refused|unsafe|Unsupported|not a checkpoint|cannot load")
        assert not marker.exists(), kind
        # and through the loaders built on it: the trainer's --load, a strict load into a net
        one_line(lambda: W.load_nets({"netG": tiny(0)}, path), ".")
        one_line(lambda: W.load_into(tiny(0), path), ".")
        assert not marker.exists(), (kind, msg)
    from ppgan.models.criterions import PerceptualLoss

    with pytest.raises(CheckpointError):
        PerceptualLoss({"0": 1.0}, weight_path=str(files["zip-pth"]))
    with pytest.raises(CheckpointError):
        W.safe_pickle_load(str(files["pdparams"]))
    assert not marker.exists()


# ---------------------------------------------------------------- file_sha256

def test_file_sha256_is_cached_per_file_version(tmp_path, monkeypatch):
    import hashlib

    from ppgan.weights import hashing

    path = tmp_path / "w.bin"
    path.write_bytes(b"a" * 1000)
    assert W.file_sha256(path) == hashlib.sha256(b"a" * 1000).hexdigest()
    link = tmp_path / "link.bin"
    link.symlink_to(path)
    calls = []
    real = hashing.sha256sum
    monkeypatch.setattr(hashing, "sha256sum", lambda p: calls.append(p) or real(p))
    assert W.file_sha256(link) == W.file_sha256(str(path))  # same real path, same version: no re-read
    assert calls == []
    path.write_bytes(b"b" * 1001)  # rewritten: new size / mtime
    assert W.file_sha256(path) == hashlib.sha256(b"b" * 1001).hexdigest() and len(calls) == 1


# ---------------------------------------------------------------- one loader

ALLOWED_STATE_LOADS = {  # resume of our own checkpoints and the model's own API, not weight files
    "ppgan/engine/trainer.py", "ppgan/models/base_model.py", "ppgan/models/cycle_gan_model.py",
    "ppgan/models/wav2lip_model.py",  # restores its sync-loss weight beside the nets on resume
    "ppgan/models/styleganv2_model.py",  # ...and StyleGAN2 its regularisation counters
    "ppgan/models/starganv2_model.py",  # fills missing averages when loading a state
    "ppgan/models/ema.py",  # moving-average nets started from the trained nets (no file)
    "ppgan/models/gan_model.py", "ppgan/models/biggan_model.py",  # ...filled when a state lacks them
}


def test_no_loader_outside_ppgan_weights():
    """`torch.load`, pickle loading and `load_state_dict(` on a net appear only in ppgan/weights
    (the CIFAR dataset reader uses the weights package's restricted unpickler; the trainer's
    resume restores optimizers, schedulers and the model from our checkpoint)."""
    found = []
    for folder, _, files in os.walk(os.path.join(ROOT, "ppgan")):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, ROOT).replace(os.sep, "/")
            if rel.startswith("ppgan/weights/"):
                continue
            with open(path, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    code = line.split("#")[0]
                    if re.search(r"torch\.load\(|pickle\.loads?\(|Unpickler\(|SafeUnpickler", code):
                        found.append(f"{rel}:{lineno}: {line.strip()}")
                    if "load_state_dict(" in code and "def load_state_dict(" not in code \
                            and rel not in ALLOWED_STATE_LOADS:
                        found.append(f"{rel}:{lineno}: {line.strip()}")
                    if "safe_pickle_load(" in code and rel != "ppgan/datasets/common_vision_dataset.py":
                        found.append(f"{rel}:{lineno}: {line.strip()}")
    assert found == []

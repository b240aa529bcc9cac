"""StarGANPredictor / StarGANv2Predictor and applications/tools/stargan.py on tiny models saved as the
engine saves them (`iter_<N>_weight.pth`: every net + the model config)."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from conftest import TINY_CYCLEGAN, within
from ppgan.apps.stargan_predictor import StarGANPredictor, StarGANv2Predictor
from ppgan.engine import checkpoint as ckpt
from ppgan.models import build_model
from ppgan.utils.errors import CheckpointError, ConfigError, PPGANError
from ppgan.utils.image import imread, imwrite

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "applications", "tools", "stargan.py")

V1 = {"name": "StarGANModel", "selected_attrs": ["warm", "bright", "grey"],
      "generator": {"name": "StarGANGenerator", "conv_dim": 4, "repeat_num": 1},
      "discriminator": {"name": "StarGANDiscriminator", "image_size": 16, "conv_dim": 4, "repeat_num": 2}}
# two datasets through the mask vector: CelebA-like attributes + RaFD-like expressions
V1_MULTI = {"name": "StarGANModel",
            "label_groups": [{"name": "celeba", "size": 4, "type": "multi"},
                             {"name": "rafd", "size": 3, "type": "exclusive"}],
            "selected_attrs": ["Black_Hair", "Blond_Hair", "Male", "Young", "happy", "sad", "angry"],
            "generator": {"name": "StarGANGenerator", "conv_dim": 4, "repeat_num": 1},
            "discriminator": {"name": "StarGANDiscriminator", "image_size": 16, "conv_dim": 4, "repeat_num": 2}}
V2 = {"name": "StarGANv2Model", "latent_dim": 4,
      "generator": {"name": "StarGANv2Generator", "img_size": 64, "style_dim": 8, "max_conv_dim": 16, "w_hpf": 0,
                    "dim_in": 8},
      "style": {"name": "StarGANv2Style", "img_size": 64, "style_dim": 8, "num_domains": 3, "max_conv_dim": 16,
                "dim_in": 8},
      "mapping": {"name": "StarGANv2Mapping", "latent_dim": 4, "style_dim": 8, "num_domains": 3, "hidden_dim": 16},
      "discriminator": {"name": "StarGANv2Discriminator", "img_size": 64, "num_domains": 3, "max_conv_dim": 16,
                        "dim_in": 8}}


def _save(cfg, path, seed=0, checkpoint=False):
    """A model of `cfg` saved as the trainer saves it (weight file, or the full checkpoint's nets + config)."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    if checkpoint:
        ckpt.save({"nets": model.state_dict(), "config": {"model": cfg}, "iter": 1}, str(path))
    else:
        ckpt.save(ckpt.weight_file_dict(model, cfg), str(path))
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("stargan")
    rng = np.random.default_rng(0)
    face = (rng.random((21, 30, 3)) * 255).astype(np.uint8)
    face[:, :15] //= 2  # some structure: halves of different brightness
    imwrite(str(d / "face.png"), face)
    (d / "notes.png").write_text("not an image\n")
    return {"v1": _save(V1, d / "v1_weight.pth"), "multi": _save(V1_MULTI, d / "multi_weight.pth"),
            "v1_ckpt": _save(V1, d / "iter_1_checkpoint.pth", checkpoint=True),
            "v2": _save(V2, d / "v2_weight.pth"), "face": str(d / "face.png"), "text": str(d / "notes.png"),
            "dir": d}


@pytest.fixture(scope="module")
def v1(files):
    return StarGANPredictor(files["v1"], device="cpu", verbose=False)


@pytest.fixture(scope="module")
def multi(files):
    return StarGANPredictor(files["multi"], device="cpu", verbose=False)


@pytest.fixture(scope="module")
def v2(files):
    return StarGANv2Predictor(files["v2"], device="cpu", verbose=False)


def _image(shape, seed=1, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    top = 255 if dtype == np.uint8 else 65535
    return (rng.random(shape) * top).astype(dtype)


# ---------------------------------------------------------------- StarGAN (v1)

@pytest.mark.parametrize("shape", [(21, 30, 3), (64, 48, 3), (16, 16, 3), (7, 5, 3), (20, 26), (18, 22, 4)])
@pytest.mark.parametrize("image_size", [None, 0])
def test_run_keeps_input_size(v1, shape, image_size):
    v1.image_size = v1.train_size if image_size is None else image_size
    try:
        img = _image(shape)
        out = v1.run(img, ["warm", "grey=0"])
    finally:
        v1.image_size = v1.train_size
    assert out.dtype == np.uint8 and out.shape[:2] == shape[:2]
    assert out.ndim == 3 and out.shape[2] == (4 if len(shape) == 3 and shape[2] == 4 else 3)  # gray gets colour
    if len(shape) == 3 and shape[2] == 4:
        assert np.array_equal(out[..., 3], img[..., 3])  # alpha untouched


def test_run_from_file_is_deterministic_and_targets_matter(v1, files):
    a = v1.run(files["face"], ["warm"])
    b = v1.run(imread(files["face"]), "warm")
    assert np.array_equal(a, b)
    c = v1.run(files["face"], {"warm": 0, "bright": 1})
    assert not np.array_equal(a, c)


def test_checkpoint_file_and_uint16(files):
    pred = StarGANPredictor(files["v1_ckpt"], device="cpu", verbose=False)
    out = pred.run(_image((12, 17, 3), dtype=np.uint16), ["bright"])
    assert out.dtype == np.uint16 and out.shape == (12, 17, 3)


def test_several_targets_and_grid(v1, files, tmp_path):
    sets = [["warm"], ["bright", "grey"], []]
    outs = v1.run(files["face"], sets, output=str(tmp_path / "o.png"))
    assert len(outs) == 3 and all(o.shape == (21, 30, 3) for o in outs)
    assert v1.last_output == [str(tmp_path / f"o_{k}.png") for k in (1, 2, 3)]
    assert np.array_equal(imread(v1.last_output[1]), outs[1])
    grid = v1.run(files["face"], sets, output=str(tmp_path / "g.png"), grid=True)
    # one row: the input and the 3 results, 2 px padding around and between
    assert grid.shape == (21 + 4, 4 * (30 + 2) + 2, 3)
    assert np.array_equal(imread(str(tmp_path / "g.png")), grid)
    assert np.array_equal(grid[2:23, 2:32], imread(files["face"]))
    # written atomically: no temp file left beside the outputs
    assert sorted(os.listdir(tmp_path)) == ["g.png", "o_1.png", "o_2.png", "o_3.png"]


def test_failed_write_leaves_nothing(v1, files, tmp_path, monkeypatch):
    with pytest.raises(PPGANError, match="no extension"):
        v1.run(files["face"], ["warm"], output=str(tmp_path / "out"))
    old = np.full((2, 2, 3), 7, np.uint8)
    imwrite(str(tmp_path / "keep.png"), old)
    import ppgan.utils.io as io

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io.os, "replace", fail)  # the write fails at its commit point
    with pytest.raises(PPGANError, match="cannot write image .*keep.png: No space left"):
        v1.run(files["face"], ["warm"], output=str(tmp_path / "keep.png"))
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["keep.png"]  # the temp file is gone, the old output whole
    assert np.array_equal(imread(str(tmp_path / "keep.png")), old)


@pytest.mark.parametrize("target, base, expected", [
    (["Blond_Hair"], [1, 0, 1, 1, 0, 0, 0], [0, 1, 1, 1, 0, 0, 0, 1, 0]),     # hair colours exclude each other
    (["Male=0"], [1, 0, 1, 1, 0, 0, 0], [1, 0, 0, 1, 0, 0, 0, 1, 0]),         # others kept from the input
    (["young"], [0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0, 1, 0]),          # case-insensitive
    (["sad"], [0, 0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1, 0, 0, 1]),            # exclusive group, mask on rafd
    ({"angry": 1}, [1, 1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0, 1, 0, 1]),       # other group zeroed
    ([], [1, 0, 1, 0, 0, 0, 0], [1, 0, 1, 0, 0, 0, 0, 1, 0]),                  # no change: the first group
])
def test_label_semantics(multi, target, base, expected):
    (parsed,) = multi.parse_targets(target) if target else multi.parse_targets([[]])
    assert multi.label(parsed, np.array(base, np.float32)).tolist() == expected


def test_base_detect_uses_the_classifier(multi):
    assert multi.base == "detect" and multi.netD is not None
    det = multi.detect(_image((20, 24, 3)) / 255.0)
    assert det.shape == (7,) and set(det.tolist()) <= {0.0, 1.0}
    assert det[4:].sum() == 1  # exclusive group: exactly one
    zero = StarGANPredictor(multi.weight_path, device="cpu", base="zero", verbose=False)
    assert zero.detect(_image((20, 24, 3)) / 255.0).sum() == 0


@pytest.mark.parametrize("target, match", [
    (["Blonde"], r"unknown attribute 'Blonde': did you mean Blond_Hair\?.*Black_Hair, Blond_Hair, Male, Young, happy"),
    (["Male", "happy"], "different label groups.*celeba \\(Male\\) and rafd \\(happy\\)"),
    (["happy", "sad"], "happy and sad are alternatives"),
    (["Black_Hair", "Blond_Hair"], "alternatives \\(hair colours\\)"),
    (["Male=2"], "value must be 0 or 1"),
    ({"Male": "yes"}, "value must be 0 or 1"),
    ([["Young"], ["Old"]], "unknown attribute 'Old'"),
])
def test_bad_targets(multi, target, match):
    with pytest.raises(ConfigError, match=match):
        multi.run(_image((16, 16, 3)), target)


def test_label_count_must_match_the_checkpoint(files, tmp_path):
    four = dict(V1, selected_attrs=["warm", "bright", "grey", "sharp"])
    with pytest.raises(CheckpointError, match=r"takes 3 label channels.*given has 4 labels \(warm, .*, sharp\)"):
        StarGANPredictor(files["v1"], config={"model": four}, device="cpu", verbose=False)
    with pytest.raises(CheckpointError, match=r"takes 9 label channels.*given has 3 labels"):
        StarGANPredictor(files["multi"], config=V1, device="cpu", verbose=False)


def test_bad_weight_files(files, tmp_path):
    other = _save(TINY_CYCLEGAN, tmp_path / "cyclegan_weight.pth")
    with pytest.raises(CheckpointError, match="builds CycleGANModel .*not a StarGANModel"):
        StarGANPredictor(other, device="cpu", verbose=False)
    with pytest.raises(CheckpointError, match="use StarGANv2Predictor"):
        StarGANPredictor(files["v2"], device="cpu", verbose=False)
    with pytest.raises(CheckpointError, match="use StarGANPredictor"):
        StarGANv2Predictor(files["v1"], device="cpu", verbose=False)
    bare = tmp_path / "bare.pth"
    torch.save(build_model(V1).nets["generator"].state_dict(), bare)
    with pytest.raises(CheckpointError, match="carries no model config"):
        StarGANPredictor(str(bare), device="cpu", verbose=False)
    with pytest.raises(CheckpointError, match="not found"):
        StarGANPredictor(str(tmp_path / "none.pth"), device="cpu", verbose=False)
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        StarGANPredictor(files["text"], device="cpu", verbose=False)


@pytest.mark.parametrize("bad", ["text", "missing", "array"])
def test_bad_inputs(v1, files, bad):
    image = {"text": files["text"], "missing": str(files["dir"] / "none.png"), "array": np.zeros((4, 4, 5), np.uint8)}
    with pytest.raises(PPGANError, match={"text": "cannot read image", "missing": "file not found",
                                          "array": "unsupported image shape"}[bad]):
        v1.run(image[bad], ["warm"])


# ---------------------------------------------------------------- StarGAN v2

def test_v2_latent_and_reference(v2, files, tmp_path):
    face = imread(files["face"])
    a = v2.run(face, target_domain=1, seed=3)
    assert a.shape == face.shape and a.dtype == np.uint8
    assert np.array_equal(a, v2.run(files["face"], target_domain=1, seed=3))
    assert not np.array_equal(a, v2.run(face, target_domain=1, seed=4))
    ref = _image((40, 33, 3), seed=5)
    r = v2.run(face, reference=ref, target_domain=2, output=str(tmp_path / "r.png"))
    assert r.shape == face.shape and np.array_equal(imread(str(tmp_path / "r.png")), r)
    # the reference's style matters
    assert not np.array_equal(r, v2.run(face, reference=_image((40, 33, 3), seed=6), target_domain=2))
    grid = v2.run(face, target_domain=[0, 1, 2], output=str(tmp_path / "g.png"), grid=True)
    assert grid.shape == (21 + 4, 4 * 32 + 2, 3)
    outs = v2.run(face, reference=[ref, face], target_domain=[0, 2])
    assert len(outs) == 2 and outs[0].shape == face.shape
    assert sorted(os.listdir(tmp_path)) == ["g.png", "r.png"]


@pytest.mark.parametrize("kwargs, match", [
    ({"target_domain": 3}, r"integer in 0..2 \(this model has 3 domains\), got 3"),
    ({"target_domain": -1}, "integer in 0..2"),
    ({"target_domain": "x"}, "integer in 0..2"),
    ({"target_domain": True}, "integer in 0..2"),
    ({}, "a target domain is needed"),
    ({"target_domain": [0, 1, 2], "reference": ["REF", "REF"]}, "2 references and 3 target domains"),
    ({"target_domain": 0, "reference": "TEXT"}, "cannot read image"),
])
def test_v2_bad_arguments(v2, files, kwargs, match):
    if "reference" in kwargs:
        ref = kwargs["reference"]
        kwargs["reference"] = files["text"] if ref == "TEXT" else [files["face"]] * len(ref)
    with pytest.raises(PPGANError, match=match):
        v2.run(files["face"], **kwargs)


# ---------------------------------------------------------------- CLI

def _main():
    spec = importlib.util.spec_from_file_location("stargan_tool", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def _one_error_line(err):
    lines = err.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err


def _cli(args, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("PPGAN_DEBUG", None)
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, timeout=180, env=env,
                          cwd=str(tmp_path))


def test_cli_v1_attrs(files, tmp_path):
    r = _cli(["--weight_path", files["v1"], "--input", files["face"], "--attrs", "warm,grey=0",
              "--output", "out.png", "--device", "cpu"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "output: out.png"
    pred = StarGANPredictor(files["v1"], device="cpu", verbose=False)
    assert np.array_equal(imread(str(tmp_path / "out.png")), pred.run(files["face"], ["warm", "grey=0"]))


def test_cli_v1_grid(v1, files, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _main()(["--weight_path", files["v1"], "--input", files["face"], "--grid", "warm;bright,grey;grey=0",
                    "--device", "cpu", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.strip() == "output: " + os.path.join("output", "StarGAN", "face_grid.png")
    grid = imread(str(tmp_path / "output" / "StarGAN" / "face_grid.png"))
    assert grid.shape == (25, 4 * 32 + 2, 3)
    # the same as the predictor's grid
    assert np.array_equal(grid, v1.run(files["face"], [["warm"], ["bright", "grey"], ["grey=0"]], grid=True))


def test_cli_v2_reference(files, tmp_path):
    r = _cli(["--weight_path", files["v2"], "--input", files["face"], "--reference", files["face"],
              "--target_domain", "1", "--output", "ref.png", "--device", "cpu"], tmp_path)
    assert r.returncode == 0, r.stderr
    out = imread(str(tmp_path / "ref.png"))
    pred = StarGANv2Predictor(files["v2"], device="cpu", verbose=False)
    assert np.array_equal(out, pred.run(files["face"], reference=files["face"], target_domain=1))


def test_cli_error_in_subprocess(files, tmp_path):
    r = _cli(["--weight_path", files["v1"], "--input", files["face"], "--attrs", "Blond_Hair", "--device", "cpu"],
             tmp_path)
    assert r.returncode == 2 and _one_error_line(r.stderr), r.stderr
    assert "unknown attribute 'Blond_Hair'" in r.stderr and "warm, bright, grey" in r.stderr
    assert not (tmp_path / "output").exists()


@pytest.mark.parametrize("argv, match", [
    (["--attrs", "sharp"], "unknown attribute 'sharp'.*warm, bright, grey"),
    (["--attrs", "warm", "--config", "CONFIG4"], "takes 3 label channels, the model config given has 4 labels"),
    (["--attrs", "warm", "--input", "MISSING"], "input not found"),
    (["--attrs", "warm", "--weight_path", "MISSING"], "--weight_path not found"),
    (["--attrs", "warm", "--input", "TEXT"], "cannot read image .*notes.png: not a valid or supported image"),
    (["--attrs", "warm", "--input", "DIR"], "is a folder"),
    (["--attrs", "warm", "--weight_path", "TEXT"], "not a checkpoint"),
    (["--attrs", "warm", "--output", "out.txt"], "use an image file name"),
    (["--attrs", "warm", "--grid", "bright"], "not both"),
    ([], "give --attrs .* or --grid .*neither"),
    (["--grid", ";"], "--grid needs attribute sets"),
    (["--grid"], "--grid needs attribute sets"),
    (["--attrs", "warm=5"], "value must be 0 or 1"),
    (["--target_domain", "1"], "holds a StarGAN \\(v1\\) model"),
    (["--weight_path", "V2", "--attrs", "warm"], "holds a StarGAN v2 model"),
    (["--weight_path", "V2"], "needs --target_domain"),
    (["--weight_path", "V2", "--target_domain", "7"], "integer in 0..2"),
    (["--weight_path", "V2", "--target_domain", "0", "--reference", "MISSING"], "--reference not found"),
    (["--weight_path", "V2", "--target_domain", "0", "--reference", "TEXT"], "cannot read image"),
    (["--attrs", "warm", "--image_size", "-1"], "--image_size must be >= 0"),
    (["--attrs", "warm", "--input", "FIFO"], "fifo.png is a FIFO"),
    (["--attrs", "warm", "--weight_path", "FIFO"], "fifo.png is a FIFO"),
    (["--weight_path", "V2", "--target_domain", "0", "--reference", "FIFO"], "fifo.png.*FIFO"),
])
def test_cli_errors(files, tmp_path, capsys, monkeypatch, argv, match):
    import re

    monkeypatch.delenv("PPGAN_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)
    config4 = tmp_path / "four.yaml"
    four = dict(V1, selected_attrs=["warm", "bright", "grey", "sharp"])
    config4.write_text(yaml.safe_dump({"total_iters": 10, "model": four}))
    names = {"CONFIG4": str(config4), "MISSING": str(tmp_path / "none.png"), "TEXT": files["text"],
             "DIR": str(tmp_path), "V2": files["v2"], "FIFO": str(tmp_path / "fifo.png")}
    argv = [names.get(a, a) for a in argv]
    if "--weight_path" not in argv:
        argv += ["--weight_path", files["v1"]]
    if "--input" not in argv:
        argv += ["--input", files["face"]]
    os.mkfifo(tmp_path / "fifo.png")
    with within(60):  # a FIFO is never opened (it would block)
        rc = _main()(argv + ["--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and _one_error_line(err), err
    assert re.search(match, err), err
    assert sorted(os.listdir(tmp_path)) == ["fifo.png", "four.yaml"]  # nothing written


def test_v2_high_pass_fan_from_the_weight_file(files, tmp_path, caplog):
    """w_hpf > 0: the FAN's weights are read from the weight file, not from the wing.pdparams path the
    training config names (absent here); a file without them is refused."""
    cfg = dict(V2, generator=dict(V2["generator"], w_hpf=1), fan={"name": "FAN", "fname_pretrained": None})
    torch.manual_seed(0)
    model = build_model(cfg)
    saved = dict(cfg, fan={"name": "FAN", "fname_pretrained": "/training/machine/wing.pdparams"})
    path = str(tmp_path / "hpf_weight.pth")
    ckpt.save(ckpt.weight_file_dict(model, saved), path)
    caplog.clear()  # (building the model above warned: its FAN is random)
    with caplog.at_level("WARNING", logger="ppgan"):
        pred = StarGANv2Predictor(path, device="cpu", verbose=False)
    assert not [r for r in caplog.records if "fname_pretrained" in r.getMessage()]
    assert torch.equal(pred.model.nets["fan"].conv1.conv.weight, model.nets["fan"].conv1.conv.weight)
    out = pred.run(files["face"], target_domain=0)
    assert out.shape == (21, 30, 3)
    # without them: the config's file is read (missing here), and a random FAN is refused
    state = torch.load(path, weights_only=True)
    del state["fan"]
    torch.save(state, tmp_path / "no_fan.pth")
    with pytest.raises(CheckpointError, match="not found: /training/machine/wing.pdparams"):
        StarGANv2Predictor(str(tmp_path / "no_fan.pth"), device="cpu", verbose=False)
    state["__ppgan__"]["model"] = cfg
    torch.save(state, tmp_path / "no_fan.pth")
    with pytest.raises(CheckpointError, match="has no 'fan' weights"):
        StarGANv2Predictor(str(tmp_path / "no_fan.pth"), device="cpu", verbose=False)


@pytest.mark.slow
def test_weight_file_written_by_the_trainer(tmp_path):
    """End to end: two iterations of configs/stargan_demo.yaml (made tiny) through the Trainer, then
    the predictor and the CLI on the weight file it wrote."""
    from ppgan.engine import Trainer

    with open(os.path.join(ROOT, "configs", "stargan_demo.yaml")) as f:
        cfg = yaml.safe_load(f)
    cfg["total_iters"] = 2
    cfg["model"]["generator"].update(conv_dim=4, repeat_num=1)
    cfg["model"]["discriminator"].update(conv_dim=4)
    cfg["dataset"]["train"].update(num_samples=8, batch_size=4)
    cfg.pop("validate", None)
    cfg["dataset"].pop("test", None)
    cfg["snapshot_config"] = {"interval": 2}
    Trainer(cfg, device="cpu", run_dir=str(tmp_path / "run"), quiet=True).train()
    weight = str(tmp_path / "run" / "iter_2_weight.pth")
    pred = StarGANPredictor(weight, device="cpu", verbose=False)
    assert pred.attrs == ["warm", "bright", "grey"] and pred.train_size == 32 and pred.base == "detect"
    face = _image((40, 50, 3))
    out = pred.run(face, ["warm", "grey=0"], output=str(tmp_path / "out.png"))
    assert out.shape == face.shape
    imwrite(str(tmp_path / "face.png"), face)
    r = _cli(["--weight_path", weight, "--input", str(tmp_path / "face.png"), "--attrs", "warm,grey=0",
              "--output", "cli.png", "--device", "cpu"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert np.array_equal(imread(str(tmp_path / "cli.png")), out)

"""GANPredictor: grids from trained weights, conditional classes, the 2-D latent plane."""
import cv2
import pytest
import torch

from conftest import TINY_CYCLEGAN
from ppgan.apps import GANPredictor
from ppgan.engine import Trainer
from ppgan.utils.errors import PPGANError


def _train(cfg, tmp_path, name):
    tr = Trainer(cfg, device="cpu", run_dir=str(tmp_path / name), quiet=True)
    tr.train()
    return str(tmp_path / name / f"iter_{cfg['total_iters']}_weight.pth")


def test_unconditional_grid_and_interpolation(tiny_cfg, tmp_path):
    tiny_cfg["total_iters"] = 2
    w = _train(tiny_cfg, tmp_path, "a")
    pred = GANPredictor(weight_path=w, device="cpu")
    paths = pred.run(n=16, seed=3, output=str(tmp_path / "out"), steps=5)
    assert set(paths) == {"samples", "interpolation"}
    grid = cv2.imread(paths["samples"], cv2.IMREAD_UNCHANGED)
    assert grid.shape == (2 + 4 * 18, 2 + 4 * 18)       # 16 samples of 16 px, 4 per row, padding 2
    strip = cv2.imread(paths["interpolation"], cv2.IMREAD_UNCHANGED)
    assert strip.shape == (2 + 4 * 18, 2 + 5 * 18)
    a, _ = pred.generate(4, seed=3)
    b, _ = pred.generate(4, seed=3)
    assert torch.equal(a, b)
    # interpolation endpoints are the two latents: first and last columns differ, steps are smooth
    s = pred.interpolate(rows=1, steps=5, seed=0)
    d = [(s[i + 1] - s[i]).abs().mean().item() for i in range(4)]
    assert max(d) < (s[4] - s[0]).abs().mean().item() + 1e-6
    with pytest.raises(PPGANError, match="not class-conditional"):
        pred.run(n=4, class_id=3, output=str(tmp_path / "x"))


def test_conditional_and_latent_plane(tiny_cfg, tmp_path):
    cond = dict(tiny_cfg, total_iters=2)
    cond["model"] = dict(tiny_cfg["model"], generator={
        "name": "ConditionalDeepConvGenerator", "latent_dim": 8, "output_nc": 1, "size": 16, "ngf": 4, "n_class": 10},
        discriminator={"name": "NLayerDiscriminatorWithClassification", "input_nc": 1, "n_class": 10, "ndf": 4,
                       "n_layers": 2, "norm_type": "batch"})
    pred = GANPredictor(weight_path=_train(cond, tmp_path, "c"), device="cpu")
    imgs, classes = pred.generate(20)
    assert classes.tolist() == [0] * 10 + [1] * 10
    _, only7 = pred.generate(5, class_id=7)
    assert only7.tolist() == [7] * 5
    with pytest.raises(PPGANError, match="class_id must be in 0..9"):
        pred.generate(2, class_id=10)

    mlp = dict(tiny_cfg, total_iters=2)
    mlp["model"] = dict(tiny_cfg["model"], generator={"name": "MLPGenerator", "latent_dim": 2, "size": 16,
                                                       "hidden_dims": [16]},
                        discriminator={"name": "MLPDiscriminator", "size": 16, "hidden_dims": [16]})
    pred = GANPredictor(weight_path=_train(mlp, tmp_path, "m"), device="cpu")
    paths = pred.run(n=4, output=str(tmp_path / "plane"), plane=6)
    plane = cv2.imread(paths["latent_plane"], cv2.IMREAD_UNCHANGED)
    assert plane.shape == (6 * 16, 6 * 16)


def test_bad_weight_file(tmp_path):
    bad = tmp_path / "x_weight.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(PPGANError, match="not a checkpoint"):
        GANPredictor(weight_path=str(bad), device="cpu")
    with pytest.raises(PPGANError, match="not found"):
        GANPredictor(weight_path=str(tmp_path / "missing.pth"), device="cpu")


CYCLEGAN = TINY_CYCLEGAN


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    """A tiny GAN's weight file and an (untrained) CycleGAN's, as training writes them."""
    import copy

    from conftest import TINY_GAN

    from ppgan.engine import checkpoint as ckpt
    from ppgan.models import build_model

    root = tmp_path_factory.mktemp("weights")
    cfg = copy.deepcopy(TINY_GAN)
    cfg["total_iters"] = 2
    gan = _train(cfg, root, "gan")
    cycle = str(root / "cycle_weight.pth")
    ckpt.save(ckpt.weight_file_dict(build_model(copy.deepcopy(CYCLEGAN)), CYCLEGAN), cycle)
    return {"gan": gan, "cycle": cycle, "cfg": cfg}


def _config(tmp_path, cfg, model):
    from conftest import write_yaml

    return write_yaml(tmp_path / "c.yaml", dict(cfg, model=model))


@pytest.mark.parametrize("case", ["image-to-image", "other-generator", "conditional-config", "wider-config",
                                  "no-generator"])
def test_weights_of_another_model_are_one_line(tmp_path, capsys, weight_files, case):
    import copy
    import os
    import sys

    from conftest import ROOT

    gan_model = weight_files["cfg"]["model"]
    weights, config, expect = {
        "image-to-image": (weight_files["cycle"], None,
                           "generator ResnetGenerator of model CycleGANModel turns images into images"),
        "other-generator": (weight_files["cycle"], gan_model,
                            "was written by model CycleGANModel (generator ResnetGenerator), the config builds "
                            "GANModel (generator DCGenerator)"),
        "conditional-config": (weight_files["gan"], dict(gan_model, generator={
            "name": "ConditionalDeepConvGenerator", "latent_dim": 8, "output_nc": 1, "size": 16, "ngf": 4}),
            "the config builds GANModel (generator ConditionalDeepConvGenerator)"),
        "wider-config": (weight_files["gan"], dict(gan_model, generator=dict(gan_model["generator"], ngf=8)),
                         "do not fit DCGenerator: 11 shape mismatches (e.g. model.0.weight [8, 8, 4, 4] vs model "
                         "[8, 16, 4, 4]); the config differs in generator.ngf (4 in the file, 8 here)"),
        "no-generator": (weight_files["gan"], {"name": "GANModel", "discriminator": gan_model["discriminator"]},
                         "the config builds GANModel; drop --config"),
    }[case]
    args = ["--weight_path", weights, "--output", str(tmp_path / "o"), "--device", "cpu"]
    if config is not None:
        args += ["--config", _config(tmp_path, weight_files["cfg"], copy.deepcopy(config))]
    sys.path.insert(0, os.path.join(ROOT, "applications", "tools"))
    try:
        import gan_generate
    finally:
        sys.path.pop(0)
    code = gan_generate.main(args)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and not ln.startswith("[ppgan]")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    assert expect in lines[0], lines[0]
    assert not (tmp_path / "o").exists()

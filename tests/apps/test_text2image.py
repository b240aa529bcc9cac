"""applications/tools/text2image.py and TextToImagePredictor on a tiny 2-iteration StackGAN."""
import copy
import os
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "applications", "tools"))
import text2image  # noqa: E402

# A 16 px stage I + 32 px stage II StackGAN, tiny widths: 2 iterations on the captioned digits.
TINY_STACKGAN = {
    "total_iters": 2, "output_dir": "output_dir", "seed": 0,
    "model": {
        "name": "StackGANModel", "stage": 2, "vocabulary": "digits",
        "text_encoder": {"embed_dim": 4, "hidden_dim": 4},
        "generator": {"name": "StackGANStageI", "c_dim": 4, "z_dim": 4, "ngf": 4, "output_size": 16},
        "discriminator": {"name": "StackGANDiscriminator", "c_dim": 4, "ndf": 4, "input_size": 16},
        "generator2": {"name": "StackGANStageII", "c_dim": 4, "ngf": 4, "n_res": 1, "input_size": 16,
                       "output_size": 32},
        "discriminator2": {"name": "StackGANDiscriminator", "c_dim": 4, "ndf": 4, "input_size": 32, "uncond": True},
        "params": {"stage1_iters": 1, "ema_decay": 0.9, "n_samples": 4, "samples_every_row": 2},
    },
    "dataset": {"train": {"name": "captioned_digits", "num_samples": 8, "size": 32, "batch_size": 4},
                "test": {"name": "captioned_digits", "num_samples": 4, "size": 32, "split": "test",
                         "batch_size": 4}},
    "lr_scheduler": {"name": "MultiStepDecay", "learning_rate": 0.0002, "milestones": [1000]},
    "optimizer": {
        "optimizer_G": {"name": "Adam", "net_names": ["netG"], "beta1": 0.5},
        "optimizer_D": {"name": "Adam", "net_names": ["netD", "netT"], "beta1": 0.5},
        "optimizer_G2": {"name": "Adam", "net_names": ["netG2"], "beta1": 0.5},
        "optimizer_D2": {"name": "Adam", "net_names": ["netD2"], "beta1": 0.5},
    },
    "log_config": {"interval": 2, "visual_interval": 0},
    "snapshot_config": {"interval": 2},
}


@pytest.fixture(scope="module")
def tiny_stackgan(tmp_path_factory):
    from ppgan.engine import Trainer

    run = tmp_path_factory.mktemp("stackgan") / "run"
    Trainer(copy.deepcopy(TINY_STACKGAN), device="cpu", quiet=True, run_dir=str(run)).train()
    return str(run / "iter_2_weight.pth")


def test_predictor_images_are_reproducible_and_follow_the_caption(tiny_stackgan, tmp_path):
    from ppgan.apps.text2image_predictor import TextToImagePredictor

    pred = TextToImagePredictor(tiny_stackgan, device="cpu", verbose=False)
    assert pred.image_size == 32 and pred.stage == 2 and pred.vocab.name == "digits"
    a = pred.generate("a thin red seven", n=3, seed=5)
    assert a.shape == (3, 3, 32, 32) and torch.isfinite(a).all() and a.abs().max() <= 1
    assert torch.equal(a, pred.generate("a thin red seven", n=3, seed=5))
    assert not torch.equal(a[0], a[1])  # different noise per sample
    assert not torch.equal(a, pred.generate("a thick blue two", n=3, seed=5))  # the text matters
    # stage 1 of the same file: 16 px
    assert TextToImagePredictor(tiny_stackgan, device="cpu", stage=1, verbose=False).generate("a red one", 2).shape \
        == (2, 3, 16, 16)

    res = pred.run(["a thin red seven", "a blue 2"], n=2, output=str(tmp_path / "out"), seed=1)
    assert res["images"].shape == (4, 32, 32, 3) and res["images"].dtype == np.uint8
    assert [os.path.basename(f) for f in res["files"]] == [
        "00_a_thin_red_seven_000.png", "00_a_thin_red_seven_001.png", "01_a_blue_2_000.png", "01_a_blue_2_001.png"]
    assert os.path.isfile(res["grid"]) and all(os.path.isfile(f) for f in res["files"])
    from ppgan.utils.image import imread

    assert np.array_equal(imread(res["files"][2]), res["images"][2])


def test_unknown_words_are_read_as_unknown_with_a_warning(tiny_stackgan, capsys):
    from ppgan.apps.text2image_predictor import TextToImagePredictor

    pred = TextToImagePredictor(tiny_stackgan, device="cpu", verbose=True)
    tokens, lengths, unknown = pred.encode("a sparkly red seven")
    assert unknown == ["sparkly"] and tokens[0, 1] == 1 and lengths.tolist() == [4]
    img = pred.generate("a sparkly red seven", n=2)
    assert torch.isfinite(img).all()
    assert "read as unknown: sparkly" in capsys.readouterr().err


def test_cli_writes_grid_and_images(tiny_stackgan, tmp_path, capsys):
    out = tmp_path / "cli"
    code = text2image.main(["--weight_path", tiny_stackgan, "--text", "a thick green two, zorbly", "--n", "3",
                            "--output", str(out), "--device", "cpu", "--seed", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "read as unknown: zorbly" in captured.err
    assert sorted(os.listdir(out)) == ["00_a_thick_green_two_zorbly_000.png", "00_a_thick_green_two_zorbly_001.png",
                                       "00_a_thick_green_two_zorbly_002.png", "grid.png"]


@pytest.mark.parametrize("argv, message", [
    (["--text", "", "--n", "2"], "error: empty caption ''"),
    (["--text", " ?! ", "--n", "2"], "error: empty caption"),
    (["--text", "a red one", "--n", "0"], "error: --n must be in 1..1024"),
    (["--text", "a red one", "--stage", "1", "--config", "/nonexistent.yaml"], "error:"),
])
def test_cli_bad_input_is_one_error_line(tiny_stackgan, argv, message, capsys, tmp_path):
    code = text2image.main(["--weight_path", tiny_stackgan, "--output", str(tmp_path / "o"), "--device", "cpu"]
                           + argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(message), err
    assert not (tmp_path / "o").exists()


def test_cli_wrong_weight_files(tmp_path, capsys):
    from conftest import TINY_GAN
    from ppgan.engine import Trainer

    cfg = copy.deepcopy(TINY_GAN)
    cfg.update(total_iters=1, snapshot_config={"interval": 1})
    cfg["log_config"] = {"interval": 1, "visual_interval": 0}
    Trainer(cfg, device="cpu", quiet=True, run_dir=str(tmp_path / "gan")).train()
    code = text2image.main(["--weight_path", str(tmp_path / "gan" / "iter_1_weight.pth"), "--text", "a red one",
                            "--device", "cpu", "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not a StackGANModel" in err[0]
    code = text2image.main(["--weight_path", str(tmp_path / "missing.pth"), "--text", "a red one",
                            "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:")

"""PaddleGAN's command lines and configs run unchanged: several settings after one -o, its
tools/main.py flags, its misspelt keys and the keys its configs carry for other tools; and the
rough edges a new user hit (wrong types / sizes in overrides, zero intervals and lengths)."""
import os

import cv2
import numpy as np
import pytest
from conftest import ROOT, run_cli, write_yaml

from ppgan.cli import train_parser
from ppgan.utils.config import load_config
from ppgan.utils.errors import ConfigError, PPGANError

STYLEGAN = os.path.join(ROOT, "tests", "fixtures", "paddlegan_configs", "stylegan_v2_256_ffhq.yaml")


def _one_line_error(proc):
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.fixture
def facades(tmp_path):
    """A tiny facades-style folder: A|B side by side in one file (PaddleGAN's layout)."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 2), ("test", 1)):
        folder = tmp_path / "facades" / split
        folder.mkdir(parents=True)
        for i in range(count):
            pair = rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)
            cv2.imwrite(str(folder / f"{i + 1}.jpg"), pair)
    return tmp_path / "facades"


# --- a) several settings after one -o, and -o repeated ------------------------------------

@pytest.mark.parametrize("argv, expect", [
    (["-o", "a=1", "b=2"], ["a=1", "b=2"]),
    (["-o", "a=1", "-o", "b=2"], ["a=1", "b=2"]),
    (["-o", "a=1", "b=2", "--seed", "3", "-o", "c=[1, 2]"], ["a=1", "b=2", "c=[1, 2]"]),
    (["--opt", "x.y=-1"], ["x.y=-1"]),
])
def test_opt_takes_several_values(argv, expect):
    args = train_parser().parse_args(["-c", "x.yaml"] + argv)
    assert args.opt == expect


def test_paddlegan_tipc_train_line_pix2pix(facades, tmp_path):
    """PaddleGAN's test_tipc train line for pix2pix_facades (its lite_train_lite_infer settings,
    the amp variant), with the data paths and a narrow net so it runs on a CPU in seconds."""
    out = tmp_path / "output"
    proc = run_cli(["tools/main.py", "-c", "configs/pix2pix_facades.yaml", "--seed", "123",
                    "-o", "log_config.interval=1", f"output_dir={out}", "epochs=1", "dataset.train.batch_size=1",
                    f"dataset.train.dataroot={facades / 'train'}", f"dataset.test.dataroot={facades / 'test'}",
                    "dataset.train.num_workers=0", "dataset.test.num_workers=0",
                    "model.generator.ngf=4", "model.discriminator.ndf=4",
                    "--amp", "--amp_level=O2", "--val-interval", "1", "--no-cuda",
                    "-p", "batch_range=[10,20];state=GPU", "--model_path", "m.pdparams"], timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = os.listdir(out)
    assert len(runs) == 1 and runs[0].startswith("pix2pix_facades-")
    log = (out / runs[0] / "train.log").read_text()
    assert "iter 1/2" in log and "iter 2/2" in log
    notes = [ln for ln in log.splitlines() if "note:" in ln]
    assert len(notes) == 3, notes  # O2 runs as O1; -p/--model_path ignored; export_model ignored
    assert "--profiler_options, --model_path" in log and "export_model" in log and "O2" in log
    saved = load_config(str(out / runs[0] / "config.yaml"))
    assert saved["validate"]["interval"] == 1 and saved["amp"] == "fp16" and saved["epochs"] == 1


# --- b) PaddleGAN's flags -----------------------------------------------------------------

def _flags(argv, cfg=None):
    from ppgan.cli import _paddle_flags

    args = train_parser().parse_args(["-c", "x.yaml"] + argv)
    cfg = {"amp": None, "validate": {"interval": 10}} if cfg is None else cfg
    notes = _paddle_flags(args, cfg)
    return args, cfg, notes


@pytest.mark.parametrize("argv, check", [
    (["--no-cuda"], lambda a, c, n: a.device == "cpu" and not n),
    (["--val-interval", "3"], lambda a, c, n: c["validate"]["interval"] == 3),
    (["--val-interval", "0"], lambda a, c, n: c["validate"]["interval"] == 0),
    ([], lambda a, c, n: c["validate"]["interval"] == 10 and c["amp"] is None and not n),
    (["--amp"], lambda a, c, n: c["amp"] == "fp16" and not n),
    (["--amp", "--amp_level", "O1"], lambda a, c, n: c["amp"] == "fp16" and not n),
    (["--amp", "--amp_level=O2"], lambda a, c, n: c["amp"] == "fp16" and len(n) == 1 and "O2" in n[0]),
    (["--amp_level", "O2"], lambda a, c, n: c["amp"] is None and "without --amp" in n[0]),
    (["-p", "state=GPU"], lambda a, c, n: len(n) == 1 and "--profiler_options" in n[0]),
    (["--source_path", "a.png", "--reference_dir", "refs"],
     lambda a, c, n: len(n) == 1 and "--source_path, --reference_dir" in n[0]),
    (["--resume", "c.pth", "--evaluate-only", "--load", "w.pth"],
     lambda a, c, n: a.resume == "c.pth" and a.load == "w.pth" and a.evaluate_only),
])
def test_paddlegan_flags(argv, check):
    assert check(*_flags(argv))


def test_amp_keeps_the_configs_mode():
    _, cfg, _ = _flags(["--amp"], {"amp": "bf16"})
    assert cfg["amp"] == "bf16"


@pytest.mark.parametrize("argv, expect", [
    (["--no-cuda", "--device", "cuda"], "contradict"),
    (["--val-interval", "-2"], "--val-interval must be >= 0"),
])
def test_paddlegan_flag_errors(argv, expect):
    with pytest.raises(PPGANError, match=expect):
        _flags(argv)


@pytest.mark.parametrize("argv", [["--amp_level", "O3"], ["--val-interval", "x"]])
def test_paddlegan_flag_parse_errors(argv):
    with pytest.raises(SystemExit):
        train_parser().parse_args(["-c", "x.yaml"] + argv)


def test_help_documents_paddlegan_flags():
    text = " ".join(train_parser().format_help().split())
    for flag in ("--no-cuda", "--val-interval", "--amp", "--amp_level", "--profiler_options", "--model_path",
                 "--source_path", "--reference_dir", "--resume", "--load", "--evaluate-only", "--seed"):
        assert flag in text
    assert text.count("accepted and ignored here") == 4


# --- c) PaddleGAN's misspelt keys and keys for other tools ---------------------------------

def test_stylegan_v2_config_loads():
    cfg = load_config(STYLEGAN)
    assert cfg["validate"]["save_img"] is False and "save_imig" not in cfg["validate"]
    assert cfg["model"]["name"] == "StyleGAN2Model" and cfg["export_model"][0]["name"] == "gen"


@pytest.mark.parametrize("override, value", [("validate.save_imig=true", True), ("validate.save_img=true", True)])
def test_misspelt_key_override(override, value):
    cfg = load_config(STYLEGAN, [override])
    assert cfg["validate"]["save_img"] is value and "save_imig" not in cfg["validate"]


def test_misspelt_and_right_spelling_disagree(tmp_path):
    cfg = {"total_iters": 1, "model": {"name": "X"}, "validate": {"save_img": True, "save_imig": False}}
    with pytest.raises(ConfigError, match="save_imig"):
        load_config(write_yaml(tmp_path / "c.yaml", cfg))


@pytest.mark.parametrize("key", ["predict", "reconstruction_params", "animate_params", "visualizer_params"])
def test_keys_for_other_tools_load(tmp_path, key):
    from ppgan.utils.config import ignored_keys

    cfg = load_config(write_yaml(tmp_path / "c.yaml", {"total_iters": 1, "model": {"name": "X"}, key: {"a": 1}}))
    assert ignored_keys(cfg) == [key]


# --- d) types and sizes of constructor arguments -------------------------------------------

@pytest.mark.parametrize("section, key, value, expect", [
    ("generator", "ngf", 16.5, "generator UnetGenerator: ngf must be >= 1 (a whole number), got 16.5"),
    ("generator", "ngf", 0, "must be >= 1 (a whole number), got 0"),
    ("generator", "ngf", -3, "must be >= 1 (a whole number), got -3"),
    ("generator", "ngf", True, "must be >= 1 (a whole number), got True"),
    ("generator", "use_dropout", "yes", "generator UnetGenerator: use_dropout must be true or false"),
    ("generator", "norm_type", 3, "norm_type must be one of batch, instance, none; got 3"),
    ("discriminator", "n_layers", 0, "discriminator NLayerDiscriminator: n_layers must be >= 1 (a whole number)"),
    ("discriminator", "ndf", 2.0, "must be >= 1 (a whole number), got 2.0"),
])
def test_net_arguments_are_checked(section, key, value, expect):
    from ppgan.models.builder import build_model

    cfg = load_config(os.path.join(ROOT, "configs", "pix2pix_facades.yaml"))
    cfg["model"][section][key] = value
    with pytest.raises(ConfigError) as e:
        build_model(cfg["model"])
    assert expect in str(e.value)


@pytest.mark.parametrize("override, expect", [
    ("model.generator.ngf=16.5", "generator UnetGenerator: ngf must be >= 1 (a whole number), got 16.5"),
    ("model.generator.ngf=0", "generator UnetGenerator: ngf must be >= 1 (a whole number), got 0"),
    ("model.discriminator.ndf=-1", "discriminator NLayerDiscriminator: ndf must be >= 1 (a whole number)"),
])
def test_bad_net_override_is_one_line(facades, tmp_path, override, expect):
    line = _one_line_error(run_cli(
        ["tools/main.py", "-c", "configs/pix2pix_facades.yaml", "-o", override,
         f"dataset.train.dataroot={facades / 'train'}", f"dataset.test.dataroot={facades / 'test'}",
         "dataset.train.num_workers=0", "dataset.test.num_workers=0", "--output-dir", str(tmp_path / "out")],
        timeout=120))
    assert expect in line


def test_float_and_int_values_still_fit():
    from ppgan.models.criterions.builder import CRITERIONS
    from ppgan.models.generators.builder import GENERATORS

    GENERATORS.build({"name": "UnetGenerator", "input_nc": 3, "output_nc": 3, "num_downs": 5, "ngf": 4})
    CRITERIONS.build({"name": "L1Loss", "loss_weight": 100})  # an int where a float is declared
    CRITERIONS.build({"name": "L1Loss", "loss_weight": 0.5})


# --- e) zero intervals and lengths ---------------------------------------------------------

@pytest.mark.parametrize("override, expect", [
    ("total_iters=0", "config key 'total_iters' must be an integer >= 1, got 0"),
    pytest.param("total_iters=-5", "config key 'total_iters' must be an integer >= 1, got -5", marks=pytest.mark.slow),
    pytest.param("epochs=0", "config key 'epochs' must be an integer >= 1, got 0", marks=pytest.mark.slow),
    ("log_config.interval=0", "config key 'log_config.interval' must be an integer >= 1, got 0"),
    pytest.param("log_config.interval=2.5", "config key 'log_config.interval' must be an integer >= 1, got 2.5",
                 marks=pytest.mark.slow),
])
def test_zero_lengths_and_intervals(tiny_cfg, tmp_path, override, expect):
    line = _one_line_error(run_cli(["tools/main.py", "-c", write_yaml(tmp_path / "c.yaml", tiny_cfg),
                                    "-o", override, "--output-dir", str(tmp_path / "out")], timeout=120))
    assert expect in line
    assert not os.path.exists(tmp_path / "out")


def test_bad_net_setting_fails_before_the_dataset_is_built(tmp_path, monkeypatch, capsys):
    """The typed check of `-o model.generator.ngf=16.5` runs before any data is loaded or drawn."""
    from ppgan import cli
    from ppgan.engine import trainer as trainer_mod

    built = []
    monkeypatch.setattr(trainer_mod, "build_dataloader", lambda *a, **k: built.append(1) or (None, None, None))
    rc = cli.run_train(["-c", "configs/dcgan_digits.yaml", "-o", "model.generator.ngf=16.5",
                        "--output-dir", str(tmp_path / "run"), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and built == []
    assert len(err) == 1 and "ngf" in err[0] and "16.5" in err[0]
    assert not (tmp_path / "run").exists()

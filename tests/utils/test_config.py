"""Config loading and overrides."""
import pytest
import yaml

from ppgan.utils.config import apply_overrides, load_config
from ppgan.utils.errors import ConfigError


def test_every_shipped_config_loads_and_builds(tmp_path, monkeypatch):
    import glob
    import os

    from ppgan.models import build_model
    from ppgan.utils.errors import CheckpointError, PPGANError

    # no VGG weights in the (empty) caches: configs with a perceptual loss must say where to put them
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    paths = sorted(glob.glob(os.path.join(root, "configs", "*.yaml")))
    assert len(paths) >= 9
    built = set()
    for path in paths:
        cfg = load_config(path)
        if "perceptual_criterion" in cfg["model"]:
            with pytest.raises(CheckpointError, match=r"\.cache/ppgan/weights/vgg19\.pdparams"):
                build_model(cfg["model"])
            cfg["model"]["perceptual_criterion"]["weight_path"] = "deterministic"
        if cfg["model"]["name"].startswith("FirstOrderModel"):  # the perceptual loss's VGG19
            with pytest.raises(CheckpointError, match=r"\.cache/ppgan/weights/vgg19\.pdparams.*vgg_weight_path"):
                build_model(cfg["model"])
            cfg["model"]["vgg_weight_path"] = "deterministic"
        if cfg["model"]["name"] == "FirstOrderModelMobile":  # mode generator: the fixed full-size detector's weights
            with pytest.raises((ConfigError, CheckpointError), match="kp_weight_path"):
                build_model(cfg["model"])
            continue
        if cfg["model"]["name"] in ("Wav2LipModel", "Wav2LipModelHq"):
            # the frozen lip-sync expert: never downloaded while building, the error names it
            with pytest.raises(PPGANError, match="syncnet"):
                build_model(cfg["model"])
            cfg["model"]["syncnet_weight_path"] = "deterministic"
        model = build_model(cfg["model"])
        # every model has a generator, except SyncNet pre-training (the expert alone)
        assert any(n.startswith(("netG", "gen")) for n in model.nets) or cfg["model"]["name"] == "SyncNetModel", path
        built.add(cfg["model"]["name"])
    assert {"FirstOrderModel", "Wav2LipModel", "Wav2LipModelHq", "SyncNetModel"} <= built


def test_override_types_and_paths(tiny_cfg):
    cfg = apply_overrides(tiny_cfg, ["total_iters=12", "lr_scheduler.learning_rate=1e-3",
                                     "model.generator.ngf=8", "amp=bf16", "dataset.train.batch_size=4",
                                     "model.gan_criterion.label_smoothing=0.1"])
    assert cfg["total_iters"] == 12 and cfg["lr_scheduler"]["learning_rate"] == 1e-3
    assert cfg["model"]["generator"]["ngf"] == 8 and cfg["amp"] == "bf16"
    assert cfg["dataset"]["train"]["batch_size"] == 4 and cfg["model"]["gan_criterion"]["label_smoothing"] == 0.1
    with pytest.raises(ConfigError, match="'model.params' is not in the config"):
        apply_overrides(tiny_cfg, ["model.params.disc_iters=2"])
    with pytest.raises(ConfigError, match="expects a int"):
        apply_overrides(tiny_cfg, ["model.generator.ngf=wide"])
    with pytest.raises(ConfigError, match="did you mean total_iters"):
        apply_overrides(tiny_cfg, ["total_iter=3"])


def test_yaml_is_loaded_safely(tmp_path):
    p = tmp_path / "evil.yaml"
    p.write_text("total_iters: !!python/object/apply:os.system ['echo hi']\nmodel: {name: GANModel}\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(str(p))


def test_validation_messages(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"model": {"name": "GANModel"}}))
    with pytest.raises(ConfigError, match="total_iters' or 'epochs"):
        load_config(str(p))
    p.write_text(yaml.safe_dump({"total_iters": 1, "model": {"name": "GANModel"}, "amp": "fp8"}))
    with pytest.raises(ConfigError, match="amp"):
        load_config(str(p))
    p.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(str(p))


# --- PaddleGAN's spellings, keys for its other tools, typed constructor arguments (issue 19) ---

def test_paddlegan_alias_and_ignored_keys(tmp_path):
    from ppgan.utils.config import ignored_keys

    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"epochs": 2, "model": {"name": "GANModel"}, "validate": {"save_imig": True},
                                 "export_model": [{"name": "netG", "inputs_num": 1}], "predict": {"a": 1}}))
    cfg = load_config(str(p))
    assert cfg["validate"] == {"save_img": True}
    assert ignored_keys(cfg) == ["export_model", "predict"]
    assert load_config(str(p), ["validate.save_imig=false"])["validate"] == {"save_img": False}


@pytest.mark.parametrize("key, value", [("total_iters", 0), ("epochs", 0), ("total_iters", -1), ("epochs", 1.5),
                                        ("total_iters", True)])
def test_lengths_must_be_positive(tmp_path, key, value):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({key: value, "model": {"name": "GANModel"}}))
    with pytest.raises(ConfigError, match=f"'{key}' must be an integer >= 1, got {value!r}"):
        load_config(str(p))


@pytest.mark.parametrize("kwargs, positive, expect", [
    ({"a": 2.5}, False, "thing T: a must be an integer, got 2.5"),
    ({"a": 0}, True, "must be >= 1 \\(a whole number\\), got 0"),
    ({"b": "x"}, False, "thing T: b must be a number"),
    ({"c": 1}, False, "thing T: c must be true or false"),
    ({"g": 1}, False, "thing T: g must be a string"),  # an annotated str (a str default alone allows lists)
    ({"e": 1.5}, False, "thing T: e must be an integer"),  # the annotation, not the default, decides
])
def test_check_values_rejects(kwargs, positive, expect):
    from ppgan.utils.config import check_values

    class T:
        def __init__(self, a=4, b=0.5, c=False, d="x", e: int = None, f=None, g: str = "x"):
            pass

    with pytest.raises(ConfigError, match=expect):
        check_values(T, kwargs, "thing T", positive_sizes=positive)


@pytest.mark.parametrize("kwargs, positive", [
    ({"a": 0}, False), ({"a": False}, False), ({"b": 3}, True), ({"f": [1, "x"]}, True), ({"a": None}, True),
    ({"e": 7}, True), ({"a": 1, "b": 1e-3, "c": True, "d": "y"}, True), ({"d": ["002", "005"]}, True),
])
def test_check_values_accepts(kwargs, positive):
    from ppgan.utils.config import check_values

    class T:
        def __init__(self, a=4, b=0.5, c=False, d="x", e: int = None, f=None):
            pass

    check_values(T, kwargs, "thing T", positive_sizes=positive)

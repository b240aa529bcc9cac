"""StarGANv2Model: one training step (losses, R1, EMA, the lambda_ds schedule), with and without
the FAN high-pass path, save / load (EMA nets included), the inference methods the app uses,
bad settings, and PaddleGAN's configs through the engine."""
import copy
import os
import sys

import pytest
import torch

from ppgan.models import build_model
from ppgan.models.starganv2_model import StarGANv2Model, he_init, soft_update
from ppgan.utils.errors import ConfigError, PPGANError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAINED = ("generator", "style_encoder", "mapping_network", "discriminator")
EMA = ("generator_ema", "style_encoder_ema", "mapping_network_ema")
LOSS_KEYS = {f"D/{p}_{k}" for p in ("latent", "ref") for k in ("real", "fake", "reg")} | \
    {f"G/{p}_{k}" for p in ("latent", "ref") for k in ("adv", "sty", "ds", "cyc")} | {"G/lambda_ds"}


def model_cfg(img=32, w_hpf=0, dim=16, domains=2, style_dim=8, latent=4, **kw):
    cfg = {"name": "StarGANv2Model", "latent_dim": latent,
           "generator": {"name": "StarGANv2Generator", "img_size": img, "style_dim": style_dim,
                         "max_conv_dim": dim, "dim_in": dim, "w_hpf": w_hpf},
           "style": {"name": "StarGANv2Style", "img_size": img, "style_dim": style_dim, "num_domains": domains,
                     "max_conv_dim": dim, "dim_in": dim},
           "mapping": {"name": "StarGANv2Mapping", "latent_dim": latent, "style_dim": style_dim,
                       "num_domains": domains, "hidden_dim": 16},
           "discriminator": {"name": "StarGANv2Discriminator", "img_size": img, "num_domains": domains,
                             "max_conv_dim": dim, "dim_in": dim}}
    if w_hpf:
        cfg["fan"] = {"name": "FAN", "fname_pretrained": "None"}  # PaddleGAN's spelling: random weights
    cfg.update(kw)
    return cfg


def batch(n=2, img=32, domains=2, train=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {"src": torch.rand(n, 3, img, img, generator=g) * 2 - 1,
           "src_cls": torch.arange(n) % domains,
           "ref": torch.rand(n, 3, img, img, generator=g) * 2 - 1,
           "ref_cls": (torch.arange(n) + 1) % domains}
    if train:
        out["ref2"] = torch.rand(n, 3, img, img, generator=g) * 2 - 1
    return out


def optimizers_for(model, lr=1e-3):
    out = {}
    for name in TRAINED:
        opt = torch.optim.Adam(model.nets[name].parameters(), lr=lr, betas=(0.0, 0.99), weight_decay=1e-4)
        opt.ppgan_net_names = (name,)
        out[name] = opt
    return out


def flat(net):
    return torch.cat([p.detach().reshape(-1).clone() for p in net.parameters()])


# ---- training step ------------------------------------------------------------------------------

@pytest.mark.parametrize("w_hpf,n,domains,beta", [(0, 2, 2, 0.999), (0, 3, 3, 0.5),
                                                  pytest.param(1, 1, 2, 0.9, marks=pytest.mark.slow)])
def test_one_iteration(w_hpf, n, domains, beta):
    torch.manual_seed(0)
    model = build_model(model_cfg(w_hpf=w_hpf, domains=domains, ema_beta=beta))
    assert set(model.nets) == set(TRAINED) | set(EMA) | ({"fan"} if w_hpf else set())
    opts = optimizers_for(model)
    before = {k: flat(v) for k, v in model.nets.items()}
    for name in EMA:  # the averages start as copies of the initial nets
        assert torch.equal(before[name], before[name[:-4]])
    model.set_total_iter(10)
    model.current_iter = 0
    model.setup_input(batch(n, domains=domains))
    model.train()
    losses = model.train_iter(opts)

    assert set(losses) == LOSS_KEYS
    for k, v in losses.items():
        assert torch.isfinite(torch.as_tensor(v)), k
    assert float(losses["D/latent_reg"]) > 0 and float(losses["D/ref_reg"]) > 0   # R1 on the reals
    assert float(losses["G/latent_ds"]) > 0 and losses["G/lambda_ds"] == 1.0
    after = {k: flat(v) for k, v in model.nets.items()}
    for name in TRAINED:
        assert not torch.equal(before[name], after[name]), f"{name} did not change"
    if w_hpf:
        assert torch.equal(before["fan"], after["fan"]) and not model.nets["fan"].training
    # every average moved from its old value towards the new net by exactly (1 - beta) of the gap
    for name in EMA:
        old, new, net = before[name], after[name], after[name[:-4]]
        torch.testing.assert_close(new, old + (1 - beta) * (net - old), rtol=0, atol=1e-6)
        assert (new - net).norm() < (old - net).norm()
        assert not model.nets[name].training
        assert not any(p.requires_grad for p in model.nets[name].parameters())


def test_update_order():
    """D steps twice (latent- then reference-guided fakes); G, M and S step after the
    latent-guided G pass, G alone after the reference-guided one (the reference code's order)."""
    torch.manual_seed(1)
    model = build_model(model_cfg())
    opts = optimizers_for(model)
    steps = []
    for name, opt in opts.items():
        opt.step = (lambda fn, n: lambda *a, **k: (steps.append(n), fn(*a, **k))[1])(opt.step, name)
    model.setup_input(batch())
    model.train_iter(opts)
    assert steps == ["discriminator", "discriminator", "generator", "mapping_network", "style_encoder", "generator"]


def test_r1_and_adv_losses_by_hand():
    """D/latent_real is BCE(D(x), 1), D/latent_reg is 0.5 E||grad_x D(x)||^2 of the nets before the step."""
    torch.manual_seed(2)
    model = build_model(model_cfg())
    b = batch()
    disc = copy.deepcopy(model.nets["discriminator"])
    x = b["src"].clone().requires_grad_(True)
    out = disc(x, b["src_cls"])
    (grad,) = torch.autograd.grad(out.sum(), x)
    reg = 0.5 * grad.pow(2).flatten(1).sum(1).mean()
    real = torch.nn.functional.softplus(-out).mean()  # BCE with target 1
    model.setup_input(b)
    losses = model.train_iter(optimizers_for(model))
    torch.testing.assert_close(losses["D/latent_reg"], reg.detach(), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(losses["D/latent_real"], real.detach(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("ds_iter,total,it,expected", [(None, None, 50, 2.0), (None, 100, 0, 2.0),
                                                       (None, 100, 25, 1.5), (10, 100, 5, 1.0), (10, None, 30, 0.0)])
def test_lambda_ds_decays_linearly(ds_iter, total, it, expected):
    model = build_model(model_cfg(lambda_ds=2, ds_iter=ds_iter))
    if total:
        model.set_total_iter(total)
    model.current_iter = it
    assert model.lambda_ds() == pytest.approx(expected)


def test_lambda_ds_is_reported_and_used():
    torch.manual_seed(3)
    model = build_model(model_cfg(lambda_ds=4, ds_iter=4))
    model.current_iter = 3
    model.setup_input(batch())
    losses = model.train_iter(optimizers_for(model))
    assert losses["G/lambda_ds"] == pytest.approx(1.0)


def test_train_step_calls_no_item(monkeypatch):
    """Nothing in the model's step copies a value to the host (no .item(), float(), ...)."""
    torch.manual_seed(4)
    model = build_model(model_cfg())
    opts = optimizers_for(model)
    model.setup_input(batch())
    calls = []
    here = os.path.join("ppgan", "models", "starganv2_model.py")
    for name in ("item", "__float__", "__bool__", "__int__", "tolist", "numpy"):
        fn = getattr(torch.Tensor, name)

        def counted(self, *a, _name=name, _fn=fn, **k):
            if sys._getframe(1).f_code.co_filename.endswith(here):
                calls.append(_name)
            return _fn(self, *a, **k)
        monkeypatch.setattr(torch.Tensor, name, counted)
    model.train_iter(opts)
    assert calls == []


# ---- inference ----------------------------------------------------------------------------------

@pytest.mark.parametrize("w_hpf", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_synthesis_uses_the_averaged_nets(w_hpf):
    torch.manual_seed(5)
    model = build_model(model_cfg(w_hpf=w_hpf, domains=3, ema_beta=0.5))
    model.eval()
    b = batch(2, domains=3, train=False)
    z = torch.randn(2, 4)
    lat = model.latent_synthesis(b["src"], b["ref_cls"], z)
    ref = model.reference_synthesis(b["src"], b["ref"], b["ref_cls"])
    assert lat.shape == ref.shape == (2, 3, 32, 32) and torch.isfinite(lat).all() and torch.isfinite(ref).all()
    torch.testing.assert_close(model.latent_synthesis(b["src"], b["ref_cls"], z), lat)  # deterministic
    assert not torch.allclose(model.latent_synthesis(b["src"], b["ref_cls"], torch.randn(2, 4)), lat)
    assert model.latent_synthesis(b["src"], 2).shape == (2, 3, 32, 32)          # one domain for all, random z
    # one reference styles every source; one source takes every reference's style
    one_ref = model.reference_synthesis(b["src"], b["ref"][:1], b["ref_cls"][:1])
    torch.testing.assert_close(one_ref[0], ref[0])
    assert model.reference_synthesis(b["src"][:1], b["ref"], b["ref_cls"]).shape == (2, 3, 32, 32)
    with pytest.raises(ValueError):
        model.reference_synthesis(torch.cat([b["src"]] * 2)[:3], b["ref"], b["ref_cls"])
    # the trained nets do not matter, the averages do
    with torch.no_grad():
        for p in model.nets["generator"].parameters():
            p.add_(1.0)
    torch.testing.assert_close(model.reference_synthesis(b["src"], b["ref"], b["ref_cls"]), ref)
    with torch.no_grad():
        for p in model.nets["generator_ema"].parameters():
            p.mul_(1.5)
    assert not torch.allclose(model.reference_synthesis(b["src"], b["ref"], b["ref_cls"]), ref)


def test_test_iter_fills_visuals_and_metrics():
    torch.manual_seed(6)
    model = build_model(model_cfg())
    seen = []

    class Metric:
        def update(self, fake, real):
            seen.append((fake.shape, real.shape))

    class ClassMetric(Metric):
        needs_class_id = True

    model.setup_input(batch(3, train=False))
    model.eval()
    model.test_iter({"m": Metric(), "c": ClassMetric()})
    assert set(model.visual_items) == {"src", "ref", "fake_ref", "fake_latent"}
    assert all(v.shape == (3, 3, 32, 32) and v.abs().max() <= 1 for v in model.visual_items.values())
    assert seen == [((3, 3, 32, 32), (3, 3, 32, 32))]
    assert set(model.visuals()) == {"src", "ref", "fake_ref", "fake_latent"}
    assert build_model(model_cfg()).visuals() == {}


# ---- checkpoints --------------------------------------------------------------------------------

@pytest.mark.parametrize("w_hpf", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_state_dict_round_trip(w_hpf):
    torch.manual_seed(7)
    model = build_model(model_cfg(w_hpf=w_hpf, ema_beta=0.5))
    model.setup_input(batch())
    model.train_iter(optimizers_for(model))
    state = copy.deepcopy(model.state_dict())
    assert set(state) == set(model.nets)
    assert {"generator_ema", "style_encoder_ema", "mapping_network_ema"} <= set(state)
    other = build_model(model_cfg(w_hpf=w_hpf, ema_beta=0.5))
    other.load_state_dict(state)
    for name in model.nets:
        assert torch.equal(flat(model.nets[name]), flat(other.nets[name])), name
    b, z = batch(2, train=False), torch.randn(2, 4)
    model.eval(), other.eval()
    torch.testing.assert_close(other.latent_synthesis(b["src"], b["ref_cls"], z),
                               model.latent_synthesis(b["src"], b["ref_cls"], z), rtol=0, atol=0)


def test_loading_a_file_without_averages_fills_them():
    """PaddleGAN saves no averaged nets: the plain nets' weights stand in for them."""
    torch.manual_seed(8)
    src = build_model(model_cfg())
    state = {k: v.state_dict() for k, v in src.nets.items() if k in TRAINED}
    model = build_model(model_cfg())
    model.load_state_dict(state)
    for name in EMA:
        assert torch.equal(flat(model.nets[name]), flat(src.nets[name[:-4]])), name
    fresh = build_model(model_cfg())
    for name in ("generator", "style_encoder"):
        fresh.nets[name].load_state_dict(state[name])
    assert fresh.fill_missing_ema(["generator", "style_encoder", "generator_ema"]) == ["style_encoder_ema"]
    assert torch.equal(flat(fresh.nets["style_encoder_ema"]), flat(src.nets["style_encoder"]))
    assert not torch.equal(flat(fresh.nets["generator_ema"]), flat(src.nets["generator"]))


def test_helpers():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    a0, b0 = flat(a), flat(b)
    soft_update(a, b, beta=0.75)
    torch.testing.assert_close(flat(b), 0.75 * b0 + 0.25 * a0)
    conv = torch.nn.Conv2d(64, 64, 3)
    conv.apply(he_init)
    assert torch.count_nonzero(conv.bias) == 0
    assert conv.weight.std().item() == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.1)


# ---- bad settings -------------------------------------------------------------------------------

@pytest.mark.parametrize("change,match", [
    ({"style": None}, "model.style"),
    ({"mapping": None}, "model.mapping"),
    ({"latent_dim": 8}, "latent_dim"),
    ({"lambda_ds": -1}, "lambda_ds"),
    ({"lambda_sty": "1"}, "lambda_sty"),
    ({"ds_iter": 0}, "ds_iter"),
    ({"ema_beta": 1.5}, "ema_beta"),
])
def test_bad_model_settings(change, match):
    with pytest.raises(ConfigError, match=match):
        build_model(model_cfg(**change))


@pytest.mark.parametrize("section,key,value", [("style", "style_dim", 16), ("mapping", "style_dim", 4),
                                               ("mapping", "num_domains", 3), ("discriminator", "num_domains", 3),
                                               ("style", "img_size", 64), ("discriminator", "img_size", 64)])
def test_nets_that_do_not_fit_together(section, key, value):
    cfg = model_cfg()
    cfg[section][key] = value
    with pytest.raises(ConfigError, match=f"{key}"):
        build_model(cfg)


@pytest.mark.slow
def test_fan_weights_from_a_file(tmp_path, caplog):
    """w_hpf > 0 with given FAN weights: the model's FAN holds them (and no warning); with none
    it is random and the log says so."""
    from ppgan.models.generators.generator_starganv2 import FAN

    torch.manual_seed(9)
    fan = FAN()
    with torch.no_grad():
        for p in fan.parameters():
            p.add_(0.01)
    path = tmp_path / "wing.pth"
    torch.save({"state_dict": fan.state_dict()}, path)
    caplog.set_level("WARNING", logger="ppgan")
    model = build_model(dict(model_cfg(w_hpf=1), fan={"name": "FAN", "fname_pretrained": str(path)}))
    assert torch.equal(flat(model.nets["fan"]), flat(fan))
    assert "randomly initialised" not in caplog.text
    build_model(model_cfg(w_hpf=1))
    assert "randomly initialised" in caplog.text
    model.setup_input(batch(1))
    losses = model.train_iter(optimizers_for(model))
    assert all(torch.isfinite(torch.as_tensor(v)) for v in losses.values())
    assert torch.equal(flat(model.nets["fan"]), flat(fan))


def test_high_pass_needs_a_fan():
    cfg = model_cfg(w_hpf=1)
    del cfg["fan"]
    with pytest.raises(ConfigError, match="model.fan"):
        build_model(cfg)


def test_bad_runtime_use():
    model = build_model(model_cfg())
    with pytest.raises(PPGANError, match="ref_cls"):
        model.setup_input({"src": torch.zeros(1, 3, 32, 32), "src_cls": torch.zeros(1, dtype=torch.long)})
    model.setup_input(batch(train=False))
    with pytest.raises(PPGANError, match="ref2"):
        model.train_iter(optimizers_for(model))
    with pytest.raises(ConfigError, match="bf16"):
        model.setup_runtime("cpu", scaler=object())
    no_d = build_model(model_cfg(discriminator=None))
    assert "discriminator" not in no_d.nets
    no_d.setup_input(batch())
    with pytest.raises(ConfigError, match="discriminator"):
        no_d.train_iter({})
    for bad in ({"g": {"name": "Adam", "net_names": ["generator_ema"]}},
                {"name": "Adam", "net_names": ["generator", "fan"]}):
        with pytest.raises(ConfigError, match="not trained"):
            model.optimizer_config(bad, None)


# ---- configs and the engine ---------------------------------------------------------------------

@pytest.mark.parametrize("name,w_hpf,domains", [("starganv2_celeba_hq.yaml", 1, 2), ("starganv2_afhq.yaml", 0, 3)])
def test_paddlegan_configs_load_and_build(name, w_hpf, domains):
    from ppgan.models.builder import check_model_config
    from ppgan.utils.config import load_config

    cfg = load_config(os.path.join(ROOT, "configs", name))
    check_model_config(cfg["model"])
    assert set(cfg["optimizer"]) == set(TRAINED)
    assert all(o["net_names"] == [k] for k, o in cfg["optimizer"].items())
    model = build_model(cfg["model"])
    assert isinstance(model, StarGANv2Model) and model.w_hpf == w_hpf
    assert set(model.nets) == set(TRAINED) | set(EMA) | ({"fan"} if w_hpf else set())
    assert model.nets["discriminator"].num_domains == domains
    assert model.initial_lambda_ds == cfg["model"]["lambda_ds"]


def test_demo_config_builds_and_steps():
    from ppgan.datasets import build_dataloader
    from ppgan.utils.config import load_config

    cfg = load_config(os.path.join(ROOT, "configs", "starganv2_demo.yaml"))
    torch.manual_seed(10)
    model = build_model(cfg["model"])
    assert model.w_hpf == 0 and "fan" not in model.nets
    data = dict(cfg["dataset"]["train"], num_workers=0, batch_size=2)
    dataset, loader, _ = build_dataloader(data, is_train=True, seed=0)
    assert dataset.num_domains == cfg["model"]["style"]["num_domains"]
    model.setup_input(next(iter(loader)))
    losses = model.train_iter(optimizers_for(model))
    assert set(losses) == LOSS_KEYS and all(torch.isfinite(torch.as_tensor(v)) for v in losses.values())


def tiny_train_cfg(root, total_iters=2):
    data = {"name": "EmbeddedDomainDataset", "domains": ["warm", "cool"], "size": 32}
    return {
        "total_iters": total_iters, "output_dir": str(root / "out"), "seed": 0,
        "model": model_cfg(),
        "dataset": {"train": dict(data, split="train", num_samples=8, batch_size=2, num_workers=0),
                    "test": dict(data, split="test", per_photo=1, batch_size=2, num_workers=0)},
        "lr_scheduler": {"name": "LinearDecay", "learning_rate": 0.0001, "start_epoch": 1, "decay_epochs": 1,
                         "iters_per_epoch": 365},
        "optimizer": {k: {"name": "Adam", "net_names": [k], "beta1": 0.0, "beta2": 0.99, "weight_decay": 0.0001}
                      for k in TRAINED},
        "log_config": {"interval": 1, "visiual_interval": 1},
        "snapshot_config": {"interval": 1},
    }


def test_train_then_evaluate_through_the_trainer(tmp_path):
    from ppgan.engine import Trainer
    from ppgan.engine import checkpoint as ckpt

    cfg = tiny_train_cfg(tmp_path)
    tr = Trainer(cfg, device="cpu", run_dir=str(tmp_path / "train"), quiet=True)
    assert tr.model.total_iter == tr.total_iters == 2  # the trainer tells the model the run's length (lambda_ds decay)
    assert tr.model.lambda_ds(1) == pytest.approx(0.5 * tr.model.initial_lambda_ds)
    assert set(tr.optimizers) == set(TRAINED)
    for name, opt in tr.optimizers.items():  # one optimizer per net, holding exactly its parameters
        held = {id(p) for g in opt.param_groups for p in g["params"]}
        assert held == {id(p) for p in tr.model.nets[name].parameters()}
    tr.train()
    run = tmp_path / "train"
    weights = ckpt.load(str(run / "iter_2_weight.pth"))
    assert set(weights) - {ckpt.META_KEY} == set(tr.model.nets)
    assert (run / "visual" / "iter_0000001_fake_ref.png").exists()

    ev = Trainer(cfg, device="cpu", load=str(run / "iter_2_weight.pth"), evaluate_only=True,
                 run_dir=str(tmp_path / "eval"), quiet=True)
    for name, net in tr.model.nets.items():
        trained, loaded = net.state_dict(), ev.model.nets[name].state_dict()
        assert all(torch.equal(trained[k], loaded[k]) for k in trained), name
    ev.evaluate()
    files = set(os.listdir(tmp_path / "eval" / "eval"))
    assert {"00000_fake_ref.png", "00000_fake_latent.png", "samples_fake_ref.png"} <= files

    # a file without the moving averages (PaddleGAN's): --load fills them from the trained nets
    plain = {k: v for k, v in weights.items() if not k.endswith("_ema")}
    ckpt.save(plain, str(tmp_path / "plain.pth"))
    ev2 = Trainer(cfg, device="cpu", load=str(tmp_path / "plain.pth"), evaluate_only=True,
                  run_dir=str(tmp_path / "eval2"), quiet=True)
    averaged = [k[: -len("_ema")] for k in weights if k.endswith("_ema")]
    assert sorted(averaged) == ["generator", "mapping_network", "style_encoder"]
    for name in averaged:
        ema, net = ev2.model.nets[name + "_ema"].state_dict(), ev2.model.nets[name].state_dict()
        assert all(torch.equal(ema[k], net[k]) for k in net), name

"""BigGANModel: one training step (hinge, D steps on batch chunks, orthogonal regularisation,
EMA), save/load round trip, --evaluate-only, resume equal to an uninterrupted run, the configs,
bad settings, and the photo-classes dataset."""
import copy
import os

import pytest
import torch

from ppgan.engine import Trainer
from ppgan.engine import checkpoint as ckpt
from ppgan.models import build_model
from ppgan.models.biggan_model import BigGANModel
from ppgan.utils.errors import ConfigError

from host_reads import record_host_reads
from resume_check import assert_resume_matches

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def model_cfg(**params):
    return {"name": "BigGANModel",
            "generator": {"name": "BigGANGenerator", "n_class": 10, "size": 32, "output_nc": 1, "ch": 2,
                          "latent_dim": 16, "shared_dim": 4, "attention": 16},
            "discriminator": {"name": "BigGANDiscriminator", "n_class": 10, "size": 32, "input_nc": 1, "ch": 2,
                              "attention": 16},
            "gan_criterion": {"name": "GANLoss", "gan_mode": "hinge"},
            "params": {"num_D_steps": 2, "ema_decay": 0.9, "n_samples": 20, **params}}


def optimizers_for(model, lr=0.01):
    out = {}
    for name, net in (("optimizer_G", "netG"), ("optimizer_D", "netD")):
        opt = torch.optim.Adam(model.nets[net].parameters(), lr=lr, betas=(0.0, 0.999))
        opt.ppgan_net_names = (net,)
        out[name] = opt
    return out


def flat(net, params_only=True):
    tensors = net.parameters() if params_only else net.state_dict().values()
    return torch.cat([p.detach().float().reshape(-1) for p in tensors])


def batch(n=4):
    return {"img": torch.rand(n, 1, 32, 32) * 2 - 1, "class_id": torch.arange(n) % 10}


@pytest.mark.parametrize("ortho", [1e-4, 0.0])
def test_one_iteration(ortho):
    torch.manual_seed(0)
    model = build_model(model_cfg(ortho_reg=ortho))
    opts = optimizers_for(model)
    g0, d0, e0 = flat(model.nets["netG"]), flat(model.nets["netD"]), flat(model.nets["netG_ema"])
    assert torch.equal(g0, e0)
    u0 = model.nets["netD"].blocks[0].conv1.sn_u.clone()
    model.setup_input(batch())
    model.current_iter = 0
    losses = model.train_iter(opts)
    assert set(losses) == {"D_real_loss", "D_fake_loss", "G_adv_loss"} | ({"G_ortho_loss"} if ortho else set())
    assert all(v.ndim == 0 and torch.isfinite(v) and not v.requires_grad for v in losses.values())
    g1, d1, e1 = flat(model.nets["netG"]), flat(model.nets["netD"]), flat(model.nets["netG_ema"])
    assert not torch.equal(g0, g1) and not torch.equal(d0, d1)
    torch.testing.assert_close(e1, g0 + 0.1 * (g1 - g0))   # EMA decay 0.9: one lerp step of 0.1
    assert not torch.equal(u0, model.nets["netD"].blocks[0].conv1.sn_u)  # power iteration advanced
    # the EMA net's buffers (BN statistics, SN vectors) follow netG's
    for (k, b), b_ema in zip(model.nets["netG"].named_buffers(), model.nets["netG_ema"].buffers()):
        assert torch.equal(b, b_ema), k
    if ortho:
        expected = ortho * sum(((p.reshape(p.shape[0], -1) @ p.reshape(p.shape[0], -1).t()).fill_diagonal_(0) ** 2)
                               .sum() for p in model.g_ortho_params() if p.ndim >= 2)
        assert losses["G_ortho_loss"].item() > 0
        assert all(p is not model.nets["netG"].shared.weight for p in model.g_ortho_params())
        assert expected.item() > 0
    vis = model.visuals()
    assert set(vis) == {"fixed_samples", "fixed_samples_ema"} and vis["fixed_samples_ema"].shape == (20, 1, 32, 32)


def test_d_steps_use_batch_chunks_and_ema_start(monkeypatch):
    torch.manual_seed(1)
    model = build_model(model_cfg(num_D_steps=2, ema_start_iters=5))
    opts = optimizers_for(model)
    seen = []
    d = model.nets["netD"]
    orig = d.forward
    monkeypatch.setattr(d, "forward", lambda x, y: (seen.append(x.shape[0]), orig(x, y))[1])
    model.setup_input(batch(6))
    model.current_iter = 2  # before ema_start_iters: the EMA is a copy of G
    model.train_iter(opts)
    assert seen == [3, 3, 3, 3, 3]  # 2 D steps x (real, fake) on chunks of 3, then the G step
    torch.testing.assert_close(flat(model.nets["netG_ema"]), flat(model.nets["netG"]))
    model.setup_input(batch(5))
    with pytest.raises(ConfigError, match="not divisible"):
        model.train_iter(opts)


def test_save_load_round_trip():
    torch.manual_seed(2)
    a = build_model(model_cfg())
    a.setup_input(batch())
    a.train_iter(optimizers_for(a))
    torch.manual_seed(3)
    b = build_model(model_cfg())
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    x, y = torch.randn(3, 16), torch.tensor([1, 5, 9])
    img = torch.rand(3, 1, 32, 32)
    for m in (a, b):
        m.eval()
    for name in ("netG", "netG_ema"):
        assert torch.equal(a.nets[name](x, y), b.nets[name](x, y)), name
    assert torch.equal(a.nets["netD"](img, y), b.nets["netD"](img, y))
    # a state without the average (ema_decay 0 when saved) fills netG_ema from netG
    c = build_model(model_cfg())
    c.load_state_dict({k: v for k, v in a.state_dict().items() if k != "netG_ema"})
    c.eval()
    assert torch.equal(c.nets["netG_ema"](x, y), a.nets["netG"](x, y))


def tiny_train_cfg(total_iters, **params):
    return {
        "total_iters": total_iters, "output_dir": "unused", "seed": 3,
        "model": model_cfg(**params),
        "dataset": {"train": {"name": "digits", "num_samples": 16, "size": 32, "seed": 0, "batch_size": 4,
                              "num_workers": 0},
                    "test": {"name": "digits", "num_samples": 4, "size": 32, "seed": 1, "batch_size": 4,
                             "num_workers": 0}},
        "lr_scheduler": {"name": "MultiStepDecay", "learning_rate": 0.001, "milestones": [100]},
        "optimizer": {"optimizer_G": {"name": "Adam", "net_names": ["netG"], "beta1": 0.0, "beta2": 0.999},
                      "optimizer_D": {"name": "Adam", "net_names": ["netD"], "beta1": 0.0, "beta2": 0.999}},
        "log_config": {"interval": 2, "visual_interval": 100},
        "snapshot_config": {"interval": 2},
    }


def test_resume_equals_uninterrupted_and_evaluate_only(tmp_path):
    a, _ = assert_resume_matches(tiny_train_cfg, tmp_path, ("netG", "netD", "netG_ema"))
    assert not torch.equal(a["nets"]["netG_ema"]["linear.weight"], a["nets"]["netG"]["linear.weight"])

    # --evaluate-only with the weight file: netG_ema makes the samples
    ev = Trainer(tiny_train_cfg(4), device="cpu", load=str(tmp_path / "a" / "iter_4_weight.pth"), evaluate_only=True,
                 run_dir=str(tmp_path / "eval"), quiet=True)
    assert torch.equal(ev.model.nets["netG_ema"].linear.weight, a["nets"]["netG_ema"]["linear.weight"])
    ev.evaluate()
    files = set(os.listdir(tmp_path / "eval" / "eval"))
    assert {"samples_fixed_samples.png", "samples_fixed_samples_ema.png"} <= files
    assert any(f.endswith("_fake.png") for f in files)

    # a file without netG_ema: --load starts the average from netG
    plain = {k: v for k, v in ckpt.load(str(tmp_path / "a" / "iter_4_weight.pth")).items() if k != "netG_ema"}
    ckpt.save(plain, str(tmp_path / "plain.pth"))
    ev2 = Trainer(tiny_train_cfg(4), device="cpu", load=str(tmp_path / "plain.pth"), evaluate_only=True,
                  run_dir=str(tmp_path / "eval2"), quiet=True)
    g, e = ev2.model.nets["netG"].state_dict(), ev2.model.nets["netG_ema"].state_dict()
    assert all(torch.equal(g[k], e[k]) for k in g)


@pytest.mark.parametrize("name", ["biggan_digits.yaml", "biggan_photos.yaml"])
def test_configs_build(name):
    from ppgan.datasets.builder import build_dataset
    from ppgan.models.builder import check_model_config
    from ppgan.utils.config import load_config

    cfg = load_config(os.path.join(ROOT, "configs", name))
    check_model_config(cfg["model"])
    model = build_model(cfg["model"])
    assert isinstance(model, BigGANModel) and set(model.nets) == {"netG", "netD", "netG_ema"}
    g = model.nets["netG"]
    assert g.n_class == cfg["model"]["discriminator"]["n_class"]
    data_cfg = dict(cfg["dataset"]["train"], num_samples=g.n_class)
    data_cfg.pop("batch_size", None)
    data_cfg.pop("cache", None)
    ds = build_dataset(data_cfg)
    sample = ds[(0, 0)]
    assert sample["img"].shape == (g.output_nc, g.size, g.size)
    assert cfg["dataset"]["train"]["batch_size"] % model.num_D_steps == 0
    assert getattr(ds, "num_classes", 10) == g.n_class


@pytest.mark.parametrize("section,change,match", [
    ("params", {"num_D_steps": 0}, "num_D_steps"),
    ("params", {"ema_decay": 1.0}, "ema_decay"),
    ("params", {"ortho_reg": -1}, "ortho_reg"),
    ("params", {"ortho": 1e-4}, "unknown key"),
    ("generator", {"size": 48}, "size must be one of"),
    ("generator", {"latent_dim": 15}, "divisible by 4"),
    ("generator", {"attention": 12}, "attention"),
    ("discriminator", {"n_class": 5}, "n_class"),
    ("discriminator", {"attention": 32}, "attention"),
])
def test_bad_settings(section, change, match):
    cfg = model_cfg()
    cfg[section] = dict(cfg[section], **change)
    with pytest.raises(ConfigError, match=match):
        build_model(cfg)


def test_unconditional_input_or_generator_is_an_error():
    model = build_model(model_cfg())
    with pytest.raises(ConfigError, match="class_id"):
        model.setup_input({"img": torch.zeros(2, 1, 32, 32)})
    cfg = model_cfg()
    cfg["generator"] = {"name": "DCGenerator", "input_nz": 8, "input_nc": 1, "output_nc": 1, "ngf": 4,
                        "output_size": 16}
    with pytest.raises(ConfigError, match="class-conditional"):
        build_model(cfg)


def test_photo_classes_dataset():
    from ppgan.datasets.photo_classes import PhotoClassesDataset

    ds = PhotoClassesDataset(photos=["astronaut", "coffee"], size=16, num_samples=6)
    assert ds.num_classes == 2 and len(ds) == 6
    a, b = ds[(3, 7)], ds[(3, 7)]
    assert torch.equal(a["img"], b["img"]) and a["img_path"] == b["img_path"]  # the key fixes the crop
    assert a["img"].shape == (3, 16, 16) and -1 <= a["img"].min() and a["img"].max() <= 1
    assert [int(ds[(i, 0)]["class_id"]) for i in range(4)] == [0, 1, 0, 1]
    assert a["img_path"].startswith("skimage:coffee@")
    with pytest.raises(ConfigError, match="photo_side"):
        PhotoClassesDataset(size=64, photo_side=32)
    with pytest.raises(ConfigError, match="distinct"):
        PhotoClassesDataset(photos=["coffee", "coffee"])


def test_train_step_reads_nothing_back(monkeypatch):
    calls = record_host_reads(monkeypatch)
    model = build_model(model_cfg())
    opts = optimizers_for(model)
    model.setup_input(batch())
    model.train_iter(opts)
    assert calls == []

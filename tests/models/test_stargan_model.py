"""StarGAN (v1): nets, one training step (exact loss keys, finite, every net moves), n_critic,
the gradient penalty against a closed form, the mask vector, save/load, inference visuals,
config / batch errors, and `tools/main.py --evaluate-only` on the demo config."""
import copy
import os

import pytest
import torch
import yaml

from ppgan.engine import checkpoint as ckpt
from ppgan.models import build_model
from ppgan.models.discriminators import StarGANDiscriminator
from ppgan.models.generators import StarGANGenerator
from ppgan.solver import build_optimizer
from ppgan.utils.errors import ConfigError, DatasetError

from conftest import ROOT, run_cli

SIZE = 16
D_KEYS = {"D_adv_real", "D_adv_fake", "D_cls", "D_gp"}
G_KEYS = {"G_adv", "G_cls", "G_rec"}

GROUPS = {
    "multi": [{"name": "celeba", "size": 3, "type": "multi"}],
    "exclusive": [{"name": "rafd", "size": 4, "type": "exclusive"}],
    "two_groups": [{"name": "celeba", "size": 3, "type": "multi"}, {"name": "rafd", "size": 4, "type": "exclusive"}],
}


def model_cfg(groups="multi", n_critic=1, **extra):
    cfg = {"name": "StarGANModel",
           "generator": {"name": "StarGANGenerator", "conv_dim": 4, "repeat_num": 1},
           "discriminator": {"name": "StarGANDiscriminator", "image_size": SIZE, "conv_dim": 4, "repeat_num": 3},
           "label_groups": copy.deepcopy(GROUPS[groups]), "n_critic": n_critic}
    cfg.update(extra)
    return cfg


def build(cfg, seed=0):
    torch.manual_seed(seed)
    return build_model(copy.deepcopy(cfg))


def make_optimizers(model, lr=1e-3):
    opts = {}
    for name in ("generator", "discriminator"):
        opt = build_optimizer({"name": "Adam", "beta1": 0.5}, list(model.nets[name].parameters()), lr)
        opt.ppgan_net_names = (name,)
        opts[f"optim_{name}"] = opt
    return opts


def batch(groups="multi", n=6, seed=0):
    """Synthetic batch in the agreed format: every sample belongs to one group (the mask); its
    labels are zeros outside that group, random 0/1 (multi) or one-hot (exclusive) inside."""
    gen = torch.Generator().manual_seed(seed)
    spec = GROUPS[groups]
    total = sum(g["size"] for g in spec)
    label, mask = torch.zeros(n, total), torch.zeros(n, len(spec))
    for i in range(n):
        k = i % len(spec)
        start = sum(g["size"] for g in spec[:k])
        g = spec[k]
        if g["type"] == "multi":
            label[i, start:start + g["size"]] = torch.randint(0, 2, (g["size"],), generator=gen).float()
        else:
            label[i, start + int(torch.randint(0, g["size"], (1,), generator=gen))] = 1
        mask[i, k] = 1
    out = {"img": torch.rand(n, 3, SIZE, SIZE, generator=gen) * 2 - 1, "label": label,
           "img_path": [f"img{i}.png" for i in range(n)]}
    if len(spec) > 1:
        out["mask"] = mask
    return out


def params(model):
    return {name: {k: p.detach().clone() for k, p in net.named_parameters()} for name, net in model.nets.items()}


def moved(before, model, name):
    now = dict(model.nets[name].named_parameters())
    return {k for k, p in before[name].items() if not torch.equal(p, now[k])}


# ---- nets ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("conv_dim,c_dim,repeat_num,size", [(4, 5, 1, 16), (8, 3, 2, 32), (4, 13, 0, 8)])
def test_generator_shapes_and_range(conv_dim, c_dim, repeat_num, size):
    torch.manual_seed(0)
    g = StarGANGenerator(conv_dim=conv_dim, c_dim=c_dim, repeat_num=repeat_num)
    x = torch.rand(2, 3, size, size) * 2 - 1
    y = g(x, torch.ones(2, c_dim))
    assert y.shape == x.shape and y.abs().max() <= 1
    assert not torch.allclose(y, g(x, torch.zeros(2, c_dim)))  # the label matters
    with pytest.raises(ConfigError, match=f"label must be \\[N=2, {c_dim}\\]"):
        g(x, torch.ones(2, c_dim + 1))


@pytest.mark.parametrize("image_size,repeat_num,c_dim", [(16, 3, 5), (32, 3, 2), (128, 6, 5)])
def test_discriminator_shapes(image_size, repeat_num, c_dim):
    d = StarGANDiscriminator(image_size=image_size, conv_dim=4, c_dim=c_dim, repeat_num=repeat_num)
    src, cls = d(torch.zeros(2, 3, image_size, image_size))
    side = image_size // 2 ** repeat_num
    assert src.shape == (2, 1, side, side) and cls.shape == (2, c_dim)
    with pytest.raises(ConfigError, match=f"built for {image_size}x{image_size}"):
        d(torch.zeros(1, 3, image_size * 2, image_size * 2))


@pytest.mark.parametrize("image_size,repeat_num", [(24, 4), (100, 3), (16, 5)])
def test_discriminator_rejects_size_not_multiple(image_size, repeat_num):
    with pytest.raises(ConfigError, match="must be a multiple of 2\\*\\*repeat_num"):
        StarGANDiscriminator(image_size=image_size, repeat_num=repeat_num)


# ---- training ----------------------------------------------------------------------------------
@pytest.mark.parametrize("groups", sorted(GROUPS))
def test_train_iter_losses_finite_and_every_net_moves(groups):
    model = build(model_cfg(groups))
    g_in = model.nets["generator"].main[0].in_channels
    spec = GROUPS[groups]
    assert g_in == 3 + sum(g["size"] for g in spec) + (len(spec) if len(spec) > 1 else 0)
    assert model.nets["discriminator"].c_dim == sum(g["size"] for g in spec)
    before = params(model)
    model.setup_input(batch(groups))
    losses = model.train_iter(make_optimizers(model))
    assert set(losses) == D_KEYS | G_KEYS
    for k, v in losses.items():
        assert v.ndim == 0 and torch.isfinite(v) and not v.requires_grad, k
    assert losses["D_gp"] > 0 and losses["G_rec"] > 0 and losses["D_cls"] > 0
    for name in model.nets:
        assert moved(before, model, name) == set(before[name]), f"{name}: some parameters did not move"
    for net in model.nets.values():  # D frozen in the G step is trainable again
        assert all(p.requires_grad for p in net.parameters())
    assert set(model.visuals()) == {"real", "fake", "rec"}


@pytest.mark.parametrize("n_critic", [2, 3, 5])
def test_generator_steps_once_every_n_critic(n_critic):
    model = build(model_cfg(n_critic=n_critic))
    opts = make_optimizers(model)
    for it in range(2 * n_critic):
        model.current_iter = it
        before = params(model)
        model.setup_input(batch(seed=it))
        losses = model.train_iter(opts)
        g_step = (it + 1) % n_critic == 0
        assert set(losses) == (D_KEYS | G_KEYS if g_step else D_KEYS), it
        assert bool(moved(before, model, "generator")) == g_step, it
        assert moved(before, model, "discriminator"), it
        assert ("rec" in model.visuals()) == g_step


# ---- gradient penalty --------------------------------------------------------------------------
class LinearCritic(torch.nn.Module):
    """out_src = <w, x> + b: its gradient is w for every input, so GP = (||w|| - 1)^2 exactly."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x):
        src = (x * self.w).flatten(1).sum(1) + 0.3
        return src[:, None, None, None], torch.zeros(x.shape[0], 3)


class QuadraticCritic(torch.nn.Module):
    """out_src = k * ||x||^2: gradient 2k x, so GP = E[(2k ||x_hat|| - 1)^2], x_hat depends on alpha."""

    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, x):
        return (self.k * x.pow(2).flatten(1).sum(1))[:, None, None, None], torch.zeros(x.shape[0], 3)


@pytest.mark.parametrize("scale", [0.0, 0.05, 0.3, 2.0])
def test_gradient_penalty_equals_closed_form_linear(scale):
    model = build(model_cfg())
    w = torch.randn(3, SIZE, SIZE, generator=torch.Generator().manual_seed(3)) * scale
    model.nets["discriminator"] = LinearCritic(w)
    real, fake = torch.rand(4, 3, SIZE, SIZE), torch.rand(4, 3, SIZE, SIZE)
    gp = model.gradient_penalty(real, fake)
    expected = (w.norm() - 1) ** 2
    assert torch.allclose(gp, expected, rtol=1e-5, atol=1e-6), (float(gp), float(expected))


@pytest.mark.parametrize("k,seed", [(0.01, 0), (0.1, 1), (1.0, 2)])
def test_gradient_penalty_equals_closed_form_on_interpolates(k, seed):
    model = build(model_cfg())
    model.nets["discriminator"] = QuadraticCritic(k)
    real, fake = torch.rand(5, 3, SIZE, SIZE) * 2 - 1, torch.rand(5, 3, SIZE, SIZE) * 2 - 1
    torch.manual_seed(seed)
    gp = model.gradient_penalty(real, fake)
    torch.manual_seed(seed)  # the same interpolation weights, one per sample
    alpha = torch.rand(5, 1, 1, 1)
    x_hat = alpha * real + (1 - alpha) * fake
    expected = ((2 * k * x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert torch.allclose(gp, expected, rtol=1e-5), (float(gp), float(expected))
    # and the penalty trains D: it has a gradient with respect to D's parameters
    lin = LinearCritic(torch.full((3, SIZE, SIZE), 0.1))
    model.nets["discriminator"] = lin
    model.gradient_penalty(real, fake).backward()
    assert lin.w.grad is not None and lin.w.grad.abs().sum() > 0


# ---- classification loss and the mask vector ----------------------------------------------------
def test_mask_vector_zeroes_the_inactive_groups_classification_loss():
    model = build(model_cfg("two_groups"))
    b = batch("two_groups", n=6, seed=4)
    label, mask = b["label"], b["mask"]
    logits = torch.randn(6, 7, generator=torch.Generator().manual_seed(5), requires_grad=True)
    loss = model.classification_loss(logits, label, mask)

    # by hand: BCE summed over celeba's 3 attributes for celeba rows, CE over rafd's 4 classes for rafd rows
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    ce = torch.nn.functional.cross_entropy
    manual = 0
    for i in range(6):
        if mask[i, 0]:
            manual = manual + bce(logits[i, :3], label[i, :3], reduction="sum")
        else:
            manual = manual + ce(logits[i:i + 1, 3:], label[i:i + 1, 3:].argmax(1))
    assert torch.allclose(loss, manual / 6)

    loss.backward()
    inactive = torch.cat([(mask[:, 1:2] > 0).expand(-1, 3), (mask[:, 0:1] > 0).expand(-1, 4)], dim=1)
    assert torch.all(logits.grad[inactive] == 0)
    assert torch.all(logits.grad[~inactive].abs().sum() > 0)

    # whatever the inactive group's logits and labels are, the loss stays the same
    wild_logits, wild_label = logits.detach().clone(), label.clone()
    wild_logits[inactive] = 50.0
    wild_label[inactive] = 1.0
    assert torch.allclose(model.classification_loss(wild_logits, wild_label, mask), loss.detach())
    # a batch of one group only: the other group's loss is exactly zero
    only_celeba = torch.zeros_like(mask)
    only_celeba[:, 0] = 1
    rafd_only_logits = logits.detach().clone()
    rafd_only_logits[:, 3:] = 1e4
    assert torch.allclose(model.classification_loss(rafd_only_logits, label, only_celeba),
                          model.classification_loss(logits.detach(), label, only_celeba))


@pytest.mark.parametrize("groups", sorted(GROUPS))
def test_target_labels_stay_within_each_group(groups):
    model = build(model_cfg(groups))
    b = batch(groups, n=8, seed=2)
    mask = b.get("mask", torch.ones(8, 1))
    torch.manual_seed(0)
    targets = model.target_labels(b["label"], mask)
    rows = {tuple(r) for r in b["label"].tolist()}
    for i in range(8):
        assert tuple(targets[i].tolist()) in rows  # some sample's labels ...
        k = int(mask[i].argmax())
        same_group = [j for j in range(8) if int(mask[j].argmax()) == k]
        assert any(torch.equal(targets[i], b["label"][j]) for j in same_group)  # ... of the same group
    # a permutation: the multiset of labels is kept
    assert sorted(map(tuple, targets.tolist())) == sorted(map(tuple, b["label"].tolist()))


# ---- save / load and inference ----------------------------------------------------------------------
@pytest.mark.parametrize("groups", sorted(GROUPS))
def test_state_dict_round_trip_and_test_iter(groups, tmp_path):
    cfg = model_cfg(groups, selected_attrs=[f"a{i}" for i in range(sum(g["size"] for g in GROUPS[groups]))])
    model = build(cfg, seed=0)
    model.setup_input(batch(groups))
    model.train_iter(make_optimizers(model))
    model.setup_input(batch(groups, seed=1))
    model.test_iter()
    visuals = {k: v.clone() for k, v in model.visuals().items()}
    assert set(visuals) == {"real", "rec"} | {f"fake_{a}" for a in cfg["selected_attrs"]}
    assert all(v.shape == (6, 3, SIZE, SIZE) and not v.requires_grad for v in visuals.values())

    other = build(cfg, seed=1)
    assert not torch.equal(other.nets["generator"].main[0].weight, model.nets["generator"].main[0].weight)
    other.load_state_dict(model.state_dict())
    other.setup_input(batch(groups, seed=1))
    other.test_iter()
    for k, v in visuals.items():
        assert torch.equal(other.visuals()[k], v), k

    path = ckpt.save(ckpt.weight_file_dict(model, cfg), str(tmp_path / "w.pth"))
    third = build(cfg, seed=2)
    assert set(ckpt.load_weights(third, path)) == {"generator", "discriminator"}
    third.setup_input(batch(groups, seed=1))
    third.test_iter()
    for k, v in visuals.items():
        assert torch.equal(third.visuals()[k], v), k
    assert torch.load(path, weights_only=True)[ckpt.META_KEY]["model"]["selected_attrs"] == cfg["selected_attrs"]


def test_test_iter_edits_one_label_and_feeds_reconstruction_to_metrics():
    model = build(model_cfg("two_groups"))
    b = batch("two_groups", seed=3)
    model.setup_input(b)
    edited = model.edit_labels(b["label"], b["mask"], 1)  # celeba attribute 1 flipped, celeba rows only
    celeba = b["mask"][:, 0] > 0
    assert torch.equal(edited[celeba, 1], 1 - b["label"][celeba, 1])
    assert torch.equal(edited[~celeba], b["label"][~celeba])
    edited = model.edit_labels(b["label"], b["mask"], 5)  # rafd class 2 for the rafd rows
    assert torch.equal(edited[~celeba, 3:], torch.tensor([0.0, 0, 1, 0]).expand(int((~celeba).sum()), 4))

    class Recorder:
        def update(self, fake, real):
            self.pair = (fake, real)

    rec = Recorder()
    model.test_iter({"rec": rec})
    assert rec.pair[0] is model.visuals()["rec"] and torch.equal(rec.pair[1], b["img"])


# ---- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize("change,match", [
    ({"c_dim": 4}, "c_dim 4 does not match the label_groups' total size 3"),
    ({"label_groups": [{"name": "x", "size": 3, "type": "onehot"}]}, "type must be one of multi, exclusive"),
    ({"label_groups": [{"name": "x", "size": 0}]}, "size must be an integer >= 1"),
    ({"label_groups": [{"name": "x", "size": 1, "type": "exclusive"}]}, "exclusive group needs >= 2"),
    ({"label_groups": [{"name": "x", "size": 2, "kind": "multi"}]}, "keys size, name, type"),
    ({"label_groups": []}, "non-empty list"),
    ({"selected_attrs": ["a", "b"]}, "selected_attrs names 2 labels, the label groups have 3"),
    ({"n_critic": 0}, "n_critic must be >= 1"),
    ({"lambda_gp": -1.0}, "lambda_gp must be >= 0"),
    ({"generator": {"name": "StarGANGenerator", "conv_dim": 4, "repeat_num": 1, "c_dim": 5}},
     "generator.c_dim is 5, the label groups need 3"),
    ({"discriminator": {"name": "StarGANDiscriminator", "image_size": SIZE, "conv_dim": 4, "repeat_num": 3,
                        "c_dim": 2}}, "discriminator.c_dim is 2, the label groups need 3"),
])
def test_config_errors(change, match):
    with pytest.raises(ConfigError, match=match):
        build_model(model_cfg(**change))


def test_mask_vector_widens_the_generator_input_and_inference_only_model_cannot_train():
    cfg = model_cfg("two_groups")
    cfg["generator"]["c_dim"] = 7
    with pytest.raises(ConfigError, match="generator.c_dim is 7, the label groups need 9 \\(labels \\+ mask vector\\)"):
        build_model(cfg)
    model = build_model(model_cfg(discriminator=None))
    assert set(model.nets) == {"generator"}
    model.setup_input(batch())
    model.test_iter()
    assert {"real", "rec"} < set(model.visuals())
    with pytest.raises(ConfigError, match="without a discriminator"):
        model.train_iter({})


def test_label_count_defaults_from_selected_attrs_or_c_dim():
    cfg = model_cfg()
    del cfg["label_groups"]
    with pytest.raises(ConfigError, match="needs label_groups, c_dim or selected_attrs"):
        build_model(cfg)
    assert build_model(dict(cfg, c_dim=4)).label_dim == 4
    assert build_model(dict(cfg, selected_attrs=["warm", "bright"])).nets["discriminator"].c_dim == 2


@pytest.mark.parametrize("groups,edit,match", [
    ("multi", lambda b: b.update(label=b["label"][:, :2]), "labels have 2 entries, the model expects 3 per image"),
    ("two_groups", lambda b: b.pop("mask"), "needs a 'mask' in every batch"),
    ("two_groups", lambda b: b.update(mask=b["mask"][:, :1]), "expected \\[6, 2\\]"),
    ("multi", lambda b: b.pop("label"), "need a 'label' entry"),
])
def test_batch_errors(groups, edit, match):
    model = build(model_cfg(groups))
    b = batch(groups)
    edit(b)
    with pytest.raises(DatasetError, match=match):
        model.setup_input(b)


# ---- configs and the command line -------------------------------------------------------------
@pytest.mark.parametrize("name", ["stargan_celeba.yaml", "stargan_demo.yaml"])
def test_configs_build(name):
    from ppgan.models.builder import check_model_config
    from ppgan.utils.config import load_config

    cfg = load_config(os.path.join(ROOT, "configs", name))
    check_model_config(cfg["model"])
    model = build_model(cfg["model"])
    assert set(model.nets) == {"generator", "discriminator"}
    assert model.n_critic == (5 if "celeba" in name else 2) and model.lambda_gp == 10 and model.lambda_rec == 10
    assert {o["net_names"][0] for o in cfg["optimizer"].values()} == {"generator", "discriminator"}


def test_evaluate_only_on_the_demo_config(tmp_path):
    out = tmp_path / "ev"
    proc = run_cli(["tools/main.py", "-c", "configs/stargan_demo.yaml", "--evaluate-only", "--device", "cpu",
                    "-o", "dataset.test.per_photo=1", "--output-dir", str(out)], timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "evaluation results" in proc.stdout and "mae" in proc.stdout.lower()
    names = os.listdir(out / "eval")
    assert any(n.endswith("_fake_warm.png") for n in names) and any(n.endswith("_rec.png") for n in names)


@pytest.mark.slow
def test_demo_config_trains_a_few_iterations(tmp_path):
    with open(os.path.join(ROOT, "configs", "stargan_demo.yaml")) as f:
        cfg = yaml.safe_load(f)
    cfg["total_iters"] = 10
    cfg["dataset"]["train"]["num_samples"] = 80
    cfg["dataset"]["test"]["per_photo"] = 1
    cfg["validate"]["interval"] = 10
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = run_cli(["tools/main.py", "-c", str(path), "--device", "cpu", "--output-dir", str(tmp_path / "run")],
                   timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "run" / "iter_10_weight.pth").is_file()


# ---- tools/eval_stargan.py ----------------------------------------------------------------------
def test_eval_stargan_scores_init_and_trained_weights(tmp_path):
    from ppgan.utils.config import load_config

    cfg = load_config(os.path.join(ROOT, "configs", "stargan_demo.yaml"))
    torch.manual_seed(0)
    model = build_model(cfg["model"])
    path = ckpt.save(ckpt.weight_file_dict(model, cfg["model"]), str(tmp_path / "w.pth"))
    out = tmp_path / "r.json"
    proc = run_cli(["tools/eval_stargan.py", "-c", "configs/stargan_demo.yaml", "--weights", "init", path,
                    "--max_batches", "1", "--json", str(out)], timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "judge accuracy on the real test images (all labels): 1.000" in proc.stdout
    res = __import__("json").loads(out.read_text())["results"]
    assert set(res) == {"init", path}
    for r in res.values():
        assert set(r["per_label_accuracy"]) == {"warm", "bright", "grey"}
        assert 0 <= r["target_attribute_accuracy"] <= 1 and r["reconstruction_l1"] > 0
    # the same weights as the seeded init: the same numbers
    assert res["init"]["reconstruction_l1"] == pytest.approx(res[path]["reconstruction_l1"])


def test_eval_stargan_v2_scores_domains(tmp_path):
    from ppgan.utils.config import load_config

    cfg = load_config(os.path.join(ROOT, "configs", "starganv2_demo.yaml"))
    torch.manual_seed(0)
    model = build_model(cfg["model"])
    path = ckpt.save(ckpt.weight_file_dict(model, cfg["model"]), str(tmp_path / "w.pth"))
    out = tmp_path / "r.json"
    proc = run_cli(["tools/eval_stargan.py", "-c", "configs/starganv2_demo.yaml", "--weights", "init", path,
                    "--max_batches", "1", "--json", str(out)], timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "judge accuracy on the real sources: 1.000" in proc.stdout
    res = __import__("json").loads(out.read_text())["results"]
    for r in res.values():
        assert set(r["per_domain_reference_accuracy"]) == {"warm", "cool", "grey"}
        assert 0 <= r["reference_domain_accuracy"] <= 1 and r["cycle_l1"] > 0 and r["diversity_l1"] > 0
    assert res["init"]["cycle_l1"] == pytest.approx(res[path]["cycle_l1"])  # the seeded init, saved


@pytest.mark.parametrize("args,match", [
    (["--weights", "missing.pth"], "error: weight file not found"),
    (["-c", "configs/cyclegan_demo.yaml"], "error: configs/cyclegan_demo.yaml: eval_stargan needs a StarGANModel or StarGANv2Model"),
    (["-c", "no_such.yaml"], "error: config file not found"),
])
def test_eval_stargan_errors_are_one_line(args, match, capsys, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("eval_stargan", os.path.join(ROOT, "tools", "eval_stargan.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("PPGAN_DEBUG", raising=False)
    argv = args if "-c" in args else ["-c", "configs/stargan_demo.yaml"] + args
    assert tool.main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(match) and "Traceback" not in err


# ---- CelebA + RaFD with the mask vector (configs/stargan_celeba_rafd.yaml) ------------------------
def test_celeba_rafd_config_trains_one_step_with_the_mask(tmp_path):
    import numpy as np

    from ppgan.datasets import build_dataloader
    from ppgan.utils.config import load_config
    from ppgan.utils.image import imwrite

    cfg = load_config(os.path.join(ROOT, "configs", "stargan_celeba_rafd.yaml"))
    attrs = ["5_o_Clock_Shadow", "Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
    rng = np.random.default_rng(0)
    images = tmp_path / "celeba" / "images"
    rows = []
    for i in range(4):
        imwrite(str(images / f"{i + 1:06d}.jpg"), rng.integers(0, 255, (218, 178, 3), dtype=np.uint8))
        rows.append(f"{i + 1:06d}.jpg " + " ".join("1" if (i + k) % 2 else "-1" for k in range(len(attrs))))
    (tmp_path / "celeba" / "list_attr_celeba.txt").write_text(f"4\n{' '.join(attrs)}\n" + "\n".join(rows) + "\n")
    expressions = cfg["model"]["selected_attrs"][5:]
    for e in expressions:
        imwrite(str(tmp_path / "rafd" / e / "0.jpg"), rng.integers(0, 255, (256, 256, 3), dtype=np.uint8))
    train = copy.deepcopy(cfg["dataset"]["train"])
    train.update(batch_size=12, num_workers=0)
    train["datasets"][0].update(dataroot=str(images), attr_path=str(tmp_path / "celeba" / "list_attr_celeba.txt"),
                                test_count=0)
    train["datasets"][1].update(dataroot=str(tmp_path / "rafd"))
    dataset, loader, _ = build_dataloader(train, is_train=True, seed=0)
    assert list(dataset.selected_attrs) == cfg["model"]["selected_attrs"]
    batch = next(iter(loader))
    assert batch["label"].shape == (12, 13) and batch["mask"].shape == (12, 2)
    rafd = batch["mask"][:, 1] > 0
    assert rafd.any() and (~rafd).any()
    assert (batch["label"][rafd, :5] == 0).all() and (batch["label"][rafd, 5:].sum(1) == 1).all()
    assert (batch["label"][~rafd, 5:] == 0).all()

    mcfg = copy.deepcopy(cfg["model"])
    mcfg["generator"].update(conv_dim=8, repeat_num=1)
    mcfg["discriminator"].update(conv_dim=8)
    model = build_model(mcfg)
    assert model.nets["generator"].main[0].in_channels == 3 + 13 + 2  # image + labels + mask
    model.setup_input(batch)
    losses = model.train_iter(make_optimizers(model))
    assert set(losses) >= {"D_adv_real", "D_adv_fake", "D_cls", "D_gp"}
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in losses.values())

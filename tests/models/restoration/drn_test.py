"""DRN: PaddleGAN names / shapes (manifests recorded from PaddleGAN's code) of the primal net and the
dual net, strict `.pdparams` loading with parity against PaddleGAN's outputs (the mean-shift layers
loaded, not recomputed), the dual path's shapes on odd sizes, the `scale` forms, the DRN model's
step with its two optimizers (primal + dual losses checked by hand) and PaddleGAN's config trained
one step on a batch made by its own transform pipeline."""
import copy
import math
import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir))
from parity import rule_tensor, write_pdparams  # noqa: E402
from r3_fixtures import R3Fixture, shapes  # noqa: E402

from ppgan.datasets.transforms import Compose  # noqa: E402
from ppgan.models import build_model  # noqa: E402
from ppgan.models.generators import DRNGenerator  # noqa: E402
from ppgan.models.generators.drn import DownBlock, parse_scale  # noqa: E402
from ppgan.solver import build_lr_scheduler, build_optimizer  # noqa: E402
from ppgan.utils.config import load_config  # noqa: E402
from ppgan.utils.errors import CheckpointError, ConfigError, PPGANError  # noqa: E402
from ppgan.weights import load_paddle_state_dict  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FIXTURES = ["drn_x4", "drn_x2_small", "drn_dual"]


def _build(fx):
    kwargs = dict(fx.kwargs)
    return DownBlock(**kwargs) if fx.meta["paddlegan_class"].endswith("DownBlock") else DRNGenerator(**kwargs)


# ---- names, shapes, parity --------------------------------------------------------------------------
@pytest.mark.parametrize("name", FIXTURES)
def test_state_dict_is_paddlegans(name):
    fx = R3Fixture(name)
    ours = shapes(_build(fx))
    theirs = {n: s for n, s in fx.manifest_file["state_dict"]}
    assert list(ours) == list(theirs) and ours == theirs


def test_default_config_manifest_tricky_parts():
    """Hand-checked against PaddleGAN's code: the fixed mean shifts are stored; the second up phase
    starts at 2 * 32 channels (concat) and ends in a 1x1 conv to 16; the dual net is biasless."""
    theirs = {n: s for n, s in R3Fixture("drn_x4").manifest_file["state_dict"]}
    assert theirs["sub_mean.weight"] == [3, 3, 1, 1] and theirs["add_mean.bias"] == [3]
    assert theirs["up_blocks.0.0.body.3.conv_du.0.weight"] == [4, 64, 1, 1]
    assert theirs["up_blocks.0.30.0.weight"] == [256, 64, 3, 3] and theirs["up_blocks.0.31.weight"] == [32, 64, 1, 1]
    assert theirs["up_blocks.1.0.body.0.weight"] == [64, 64, 3, 3] and theirs["up_blocks.1.31.weight"] == [16, 64, 1, 1]
    assert [theirs[f"tail.{i}.weight"][1] for i in range(3)] == [64, 64, 32]
    assert theirs["down.1.dual_module.0.0.weight"] == [32, 32, 3, 3] and "down.1.dual_module.0.0.bias" not in theirs
    assert theirs["down.1.dual_module.1.weight"] == [64, 32, 3, 3]  # the stride-1 conv widens
    assert sorted(n for n, _ in R3Fixture("drn_dual").manifest_file["state_dict"]) == \
        ["dual_module.0.0.weight", "dual_module.1.weight"]


@pytest.mark.parametrize("name", FIXTURES)
def test_pdparams_strict_load_matches_paddlegan(name, tmp_path):
    fx = R3Fixture(name)
    net = _build(fx).eval()
    report = fx.load_into(net, tmp_path)
    assert not report["missing"] and not report["unexpected"] and not report["transposed"]
    with torch.no_grad():
        fx.assert_matches(net(*fx.inputs))


def test_mean_shift_is_loaded_not_recomputed(tmp_path):
    fx = R3Fixture("drn_x2_small")
    net = _build(fx).eval()
    fx.load_into(net, tmp_path)
    for name in ("sub_mean.weight", "sub_mean.bias", "add_mean.weight", "add_mean.bias"):
        shape = dict((n, s) for n, s, _ in fx.manifest)[name]
        assert torch.equal(net.state_dict()[name], torch.from_numpy(rule_tensor(name, shape)))
    assert not any(p.requires_grad for n, p in net.named_parameters() if "_mean." in n)
    # the recomputed (default) mean shift gives another output: the stored values matter
    fresh = _build(fx).eval()
    state = net.state_dict()
    state.update({k: v for k, v in fresh.state_dict().items() if "_mean." in k})
    fresh.load_state_dict(state)
    with torch.no_grad():
        assert not torch.allclose(fresh(*fx.inputs)[-1], net(*fx.inputs)[-1])


@pytest.mark.parametrize("drop", ["sub_mean.weight", "add_mean.bias"])
def test_pdparams_without_the_mean_shift_are_refused(drop, tmp_path):
    fx = R3Fixture("drn_x2_small")
    state = fx.state()
    del state[drop]
    with pytest.raises(CheckpointError, match=drop.replace(".", r"\.")):
        load_paddle_state_dict(_build(fx), write_pdparams(tmp_path / "w.pdparams", state), strict=True)


# ---- shapes, scale, arguments ---------------------------------------------------------------------------
@pytest.mark.parametrize("scale,hw", [((2, 4), (7, 9)), ((2,), (5, 4)), ((2, 4, 8), (3, 5)), ("(2, 4)", (1, 1))])
def test_dual_path_shapes_on_odd_sizes(scale, hw):
    """Outputs at every level (x1 .. xmax), each dual net maps level i + 1 onto level i's size."""
    torch.manual_seed(0)
    net = DRNGenerator(scale, n_blocks=1, n_feats=8).eval()
    phases = len(parse_scale(scale))
    x = torch.rand(2, 3, *hw) * 255
    with torch.no_grad():
        outs = net(x)
    assert [o.shape[-2:] for o in outs] == [(hw[0] * 2 ** i, hw[1] * 2 ** i) for i in range(phases + 1)]
    dual = DownBlock(0.2, 8, 3, 2)
    for i in range(phases):
        assert dual(outs[i + 1]).shape == outs[i].shape
    assert all(torch.isfinite(o).all() for o in outs)


@pytest.mark.parametrize("shape", [(1, 1, 8, 8), (3, 8, 8), (1, 4, 5, 5)])
def test_bad_input_shapes_are_refused(shape):
    with pytest.raises(ValueError, match="DRNGenerator needs"):
        DRNGenerator((2,), n_blocks=1, n_feats=8)(torch.rand(*shape))


@pytest.mark.parametrize("rgb_range", [1, 1.0, 255])
def test_rgb_range_scales_the_mean_shift(rgb_range):
    net = build_model(dict(copy.deepcopy(DRN_CFG), generator=dict(DRN_CFG["generator"], rgb_range=rgb_range)))
    gen = net.nets["generator"]
    torch.testing.assert_close(gen.add_mean.bias, rgb_range * torch.tensor([0.4488, 0.4371, 0.4040]))
    assert net.min_max == (0.0, float(rgb_range))


def test_mean_shifts_cancel_and_the_dual_block_halves():
    net = DRNGenerator((2, 4), n_blocks=1, n_feats=8)
    x = torch.rand(1, 3, 5, 6) * 255
    with torch.no_grad():
        torch.testing.assert_close(net.add_mean(net.sub_mean(x)), x)
        torch.testing.assert_close(net.sub_mean(x), x - 255 * torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1))
    block = DownBlock(0.2, 8, 3, 4)  # x4: two stride-2 convs
    assert block(torch.rand(1, 3, 13, 16)).shape == (1, 3, 4, 4)


@pytest.mark.parametrize("value,expected", [((2, 4), (2, 4)), ([2], (2,)), ("(2, 4)", (2, 4)), ("[2,4,8]", (2, 4, 8)),
                                            (4, (2, 4)), (2, (2,)), ("4", (2, 4))])
def test_scale_forms(value, expected):
    assert parse_scale(value) == expected


@pytest.mark.parametrize("value", ["(2, 3)", (4,), (2, 8), "abc", "", 3, 0, True, (2.0, 4.0), None])
def test_bad_scales_are_refused(value):
    with pytest.raises(ConfigError, match="scale"):
        DRNGenerator(value)


@pytest.mark.parametrize("kwargs,match", [({"n_colors": 1}, "n_colors"), ({"n_feats": 4}, "n_feats"),
                                          ({"n_feats": 0}, "n_feats"), ({"kernel_size": 4}, "kernel_size")])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        DRNGenerator((2, 4), **kwargs)


# ---- model -------------------------------------------------------------------------------------------------
DRN_CFG = {"name": "DRN", "generator": {"name": "DRNGenerator", "scale": "(2, 4)", "n_blocks": 1, "n_feats": 8,
                                        "n_colors": 3, "rgb_range": 255, "negval": 0.2},
           "pixel_criterion": {"name": "L1Loss"}}
GROUPS = {"optimG": ["generator"], "optimD": ["dual_model_0", "dual_model_1"]}


def _opts(model, groups=GROUPS, lr=1e-3):
    out = {}
    for name, nets in groups.items():
        params = [p for n in nets for p in model.nets[n].parameters() if p.requires_grad]
        opt = build_optimizer({"name": "Adam", "beta1": 0.9, "beta2": 0.999}, params, lr)
        opt.ppgan_net_names = tuple(nets)
        out[name] = opt
    return out


def _batch(h=6, w=5, seed=0, lqx2=True):
    g = torch.Generator().manual_seed(seed)
    b = {"lq": torch.rand(2, 3, h, w, generator=g) * 255, "gt": torch.rand(2, 3, 4 * h, 4 * w, generator=g) * 255,
         "lq_path": ["a", "b"]}
    if lqx2:
        b["lqx2"] = torch.rand(2, 3, 2 * h, 2 * w, generator=g) * 255
    return b


def _params(model):
    return {(m, k): p.detach().clone() for m, net in model.nets.items() for k, p in net.named_parameters()}


@pytest.mark.parametrize("weights", [(0.1, 0.1), (0.0, 0.5), (1.0, 0.0)])
def test_model_step_losses_by_hand_and_both_optimizers(weights):
    torch.manual_seed(0)
    lq_w, dual_w = weights
    model = build_model(dict(copy.deepcopy(DRN_CFG), lq_loss_weight=lq_w, dual_loss_weight=dual_w))
    assert list(model.nets) == ["generator", "dual_model_0", "dual_model_1"] and model.min_max == (0.0, 255.0)
    b = _batch()
    model.setup_input(b)
    l1 = torch.nn.functional.l1_loss
    with torch.no_grad():
        sr = model.nets["generator"](b["lq"])
        primal = l1(sr[2], b["gt"]) + lq_w * (l1(sr[0], b["lq"]) + l1(sr[1], b["lqx2"]))
        dual = (l1(model.nets["dual_model_0"](sr[1]), b["lq"])
                + dual_w * l1(model.nets["dual_model_1"](sr[2]), b["lqx2"]))
    before = _params(model)
    losses = model.train_iter(_opts(model))
    assert set(losses) == {"loss_primary", "loss_dual", "loss_total"}
    assert all(v.ndim == 0 and not v.requires_grad and math.isfinite(v) for v in losses.values())
    torch.testing.assert_close(losses["loss_primary"], primal, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(losses["loss_dual"], dual, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(losses["loss_total"], primal + dual)
    after = _params(model)
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    grads = {(m, k) for m, net in model.nets.items() for k, p in net.named_parameters()
             if p.grad is not None and p.grad.any()}
    # both optimizers stepped (a channel-attention unit whose ReLU is dead at init gets no gradient)
    assert moved == grads
    assert {m for m, _ in moved} == {"generator", "dual_model_0"} | ({"dual_model_1"} if dual_w > 0 else set())
    assert not {k for k in before if "_mean." in k[1]} & moved  # the mean shifts stay
    assert {("generator", "head.weight"), ("generator", "tail.2.weight"), ("dual_model_0", "dual_module.1.weight"),
            ("generator", "up_blocks.1.1.0.weight")} <= moved
    assert (("generator", "tail.0.weight") in moved) == (lq_w > 0)  # the x1 output feeds the lq loss only
    assert model.output.shape == (2, 3, 24, 20) and set(model.visual_items) == {"lq", "lqx2", "output", "gt"}


def test_model_init_keeps_the_mean_shift():
    torch.manual_seed(0)
    net = build_model(copy.deepcopy(DRN_CFG)).nets["generator"]
    torch.testing.assert_close(net.sub_mean.weight.flatten(), torch.eye(3).flatten())
    torch.testing.assert_close(net.add_mean.bias, 255 * torch.tensor([0.4488, 0.4371, 0.4040]))
    w = net.up_blocks[0][0].body[0].weight.detach()
    assert abs(float(w.std()) - 0.02) < 0.005 and not net.head.bias.any()  # N(0, 0.02), zero bias


def test_model_x2_needs_no_lqx2_and_one_optimizer_may_hold_all():
    torch.manual_seed(0)
    cfg = copy.deepcopy(DRN_CFG)
    cfg["generator"]["scale"] = [2]
    model = build_model(cfg)
    assert list(model.nets) == ["generator", "dual_model_0"]
    g = torch.Generator().manual_seed(3)
    model.setup_input({"lq": torch.rand(1, 3, 5, 7, generator=g) * 255,
                       "gt": torch.rand(1, 3, 10, 14, generator=g) * 255})
    losses = model.train_iter(_opts(model, {"optim": list(model.nets)}))
    assert set(losses) == {"loss_primary", "loss_dual", "loss_total"}


def test_model_errors():
    model = build_model(copy.deepcopy(DRN_CFG))
    model.setup_input(_batch(lqx2=False))
    with pytest.raises(PPGANError, match="lqx2"):
        model.train_iter(_opts(model))
    model.setup_input(_batch())
    with pytest.raises(ConfigError, match="dual_model_1"):
        model.train_iter(_opts(model, {"optimG": ["generator"], "optimD": ["dual_model_0"]}))
    with pytest.raises(ConfigError, match="discriminator"):
        build_model(dict(copy.deepcopy(DRN_CFG), discriminator={"name": "VGGDiscriminator128"}))
    cfg = copy.deepcopy(DRN_CFG)
    cfg["generator"]["scale"] = "(2, 4, 8)"
    with pytest.raises(ConfigError, match="x2 or x4"):
        build_model(cfg)


def test_model_inference_any_size():
    torch.manual_seed(0)
    model = build_model(copy.deepcopy(DRN_CFG))
    from ppgan.metrics import build_metric

    metrics = {"psnr": build_metric({"name": "PSNR", "crop_border": 4, "test_y_channel": True})}
    g = torch.Generator().manual_seed(1)
    model.setup_input({"lq": torch.rand(1, 3, 9, 11, generator=g) * 255,
                       "gt": torch.rand(1, 3, 36, 44, generator=g) * 255})
    model.test_iter(metrics)
    assert model.output.shape == (1, 3, 36, 44) and len(metrics["psnr"].results) == 1


# ---- PaddleGAN's config -------------------------------------------------------------------------------------
def test_paddlegan_config_builds_with_its_two_optimizers():
    cfg = load_config(os.path.join(ROOT, "configs", "drn_psnr_x4_div2k.yaml"))
    model = build_model(cfg["model"])
    net = model.nets["generator"]
    assert net.scale == (2, 4) and len(net.up_blocks[0]) == 32 and model.min_max == (0.0, 255.0)
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == 4804041  # DRN-S x4
    groups = {k: v["net_names"] for k, v in cfg["optimizer"].items()}
    assert groups == GROUPS and set(model.nets) == {n for v in groups.values() for n in v}


def test_config_trains_one_step_on_its_pipeline():
    """The config's train pipeline (SRPairedRandomCrop with scale_list -> lq, lqx2, gt; flips;
    Transpose; Normalize by 1) makes the batch; its optimizers and scheduler (small generator)."""
    cfg = load_config(os.path.join(ROOT, "configs", "drn_psnr_x4_div2k.yaml"))
    step = [s for s in cfg["dataset"]["train"]["preprocess"] if s["name"] == "Transforms"][0]
    assert step["output_keys"] == ["lq", "lqx2", "gt"]
    pipeline = copy.deepcopy(step["pipeline"])
    pipeline[0]["gt_patch_size"] = 32
    compose = Compose(pipeline)
    rng = np.random.default_rng(0)
    images = []
    for i in range(2):
        gt = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
        lq = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
        images.append(dict(zip(step["output_keys"], compose([lq, gt], rng))))
    batch = {k: torch.from_numpy(np.stack([im[k] for im in images])) for k in step["output_keys"]}
    assert [tuple(batch[k].shape) for k in ("lq", "lqx2", "gt")] == [(2, 3, 8, 8), (2, 3, 16, 16), (2, 3, 32, 32)]
    assert batch["gt"].dtype == torch.float32 and float(batch["gt"].max()) > 200  # [0, 255]

    model_cfg = copy.deepcopy(cfg["model"])
    model_cfg["generator"]["n_blocks"] = 1
    torch.manual_seed(0)
    model = build_model(model_cfg)
    opts = {}
    for name, ocfg in cfg["optimizer"].items():
        params = [p for n in ocfg["net_names"] for p in model.nets[n].parameters() if p.requires_grad]
        opts[name] = build_optimizer(ocfg, params, cfg["lr_scheduler"]["learning_rate"])
        opts[name].ppgan_net_names = tuple(ocfg["net_names"])
        build_lr_scheduler(cfg["lr_scheduler"], opts[name])
    before = _params(model)
    model.setup_input(dict(batch, lq_path=["x", "y"]))
    losses = model.train_iter(opts)
    assert set(losses) == {"loss_primary", "loss_dual", "loss_total"} and all(map(math.isfinite, losses.values()))
    after = _params(model)
    assert {m for (m, k) in before if not torch.equal(before[(m, k)], after[(m, k)])} == set(model.nets)

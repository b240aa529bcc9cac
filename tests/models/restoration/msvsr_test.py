"""PP-MSVSR (MSVSR) and MultiStageVSRModel: PaddleGAN's names / shapes (manifests recorded from
PaddleGAN's own code), strict `.pdparams` loading with parity against PaddleGAN's two outputs,
the modified SPyNet, the stage-3 re-alignment's maths, switches PaddleGAN cannot run, input
checks, the model's losses / flow-net schedule, and PaddleGAN's three configs built and trained
one step on their dataset layouts."""
import copy
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir))
from vsr_fixtures import (ROOT, VSRFixture, config_train_batch, shapes, tiny_config,  # noqa: E402
                          train_one_step, write_pdparams)

from ppgan.models import build_model  # noqa: E402
from ppgan.models.generators import MSVSR  # noqa: E402
from ppgan.models.generators.msvsr import AlignmentModule, ModifiedSPyNet, ReAlignmentModule  # noqa: E402
from ppgan.modules.flow import SPyNet  # noqa: E402
from ppgan.utils.config import load_config  # noqa: E402
from ppgan.utils.errors import CheckpointError, ConfigError  # noqa: E402
from ppgan.weights import load_paddle_state_dict  # noqa: E402

FIXTURES = ["msvsr", "msvsr_small", "msvsr_l"]
TINY = {"mid_channels": 8, "num_init_blocks": 1, "num_blocks": 1, "num_reconstruction_blocks": 1,
        "deform_groups": 2, "stage1_groups": 4}


# ---- names, shapes, parity --------------------------------------------------------------------------
@pytest.mark.parametrize("name", FIXTURES)
def test_state_dict_is_paddlegans(name):
    fx = VSRFixture(name)
    ours = shapes(MSVSR(**fx.kwargs))
    theirs = fx.shapes()
    assert list(ours) == list(theirs) and ours == theirs


def test_default_manifest_tricky_parts():
    """Read off PaddleGAN's code: the tiny flow net's 3 levels of 12 3x3 convs, stage 3's extra
    `mdconv`, widths 3C..6C of the four branches, the auxiliary head's down path and the modules
    PaddleGAN builds whatever the switches (aux_upsample*, hybrid_conv_last)."""
    s = VSRFixture("msvsr").shapes()
    assert len(s) == 248
    assert s["spynet.basic_module.2.basic_module.11.conv.weight"] == [2, 8, 3, 3]
    assert "spynet.basic_module.3.basic_module.0.conv.weight" not in s and s["spynet.std"] == [1, 3, 1, 1]
    assert "deform_align.stage2_forward.mdconv.weight" not in s
    assert s["deform_align.stage3_backward.mdconv.weight"] == [32, 32, 3, 3]
    assert s["deform_align.stage3_forward.conv_offset.0.weight"] == [32, 66, 3, 3]
    assert s["deform_align.stage2_backward.conv_offset.6.weight"] == [108, 32, 3, 3]  # 27 * 4 groups
    assert s["stage1_align.conv_offset.6.bias"] == [216]  # 27 * 8 groups
    assert [s[f"backbone.{b}.covn1.weight"][1] for b in ("stage2_backward", "stage2_forward", "stage3_backward",
                                                          "stage3_forward")] == [96, 128, 160, 192]
    assert s["reconstruction.covn1.weight"] == [32, 192, 3, 3]
    assert s["aux_reconstruction.covn1.weight"] == [32, 128, 3, 3]
    assert s["aux_block_down1.0.weight"] == [32, 35, 3, 3] and s["aux_block_down2.2.weight"] == [32, 32, 3, 3]
    assert "conv_hr.weight" not in s and s["hybrid_conv_last.weight"] == [3, 32, 3, 3]
    big = VSRFixture("msvsr_l").shapes()
    assert big["spynet.basic_module.5.basic_module.14.conv.weight"] == [2, 16, 3, 3]
    assert big["spynet.basic_module.0.basic_module.5.conv.weight"] == [64, 32, 3, 3]
    assert big["conv_hr.weight"] == [64, 64, 3, 3]


@pytest.mark.parametrize("name", ["msvsr", "msvsr_small", pytest.param("msvsr_l", marks=pytest.mark.slow)])
def test_pdparams_strict_load_matches_paddlegan(name, tmp_path):
    fx = VSRFixture(name)
    net = MSVSR(**fx.kwargs).eval()
    report = fx.load_into(net, tmp_path)
    assert not report["missing"] and not report["unexpected"] and not report["transposed"]
    with torch.no_grad():
        fx.assert_matches(net(*fx.inputs))


@pytest.mark.parametrize("drop", ["deform_align.stage3_forward.mdconv.bias", "spynet.mean",
                                  "aux_block_down1.0.weight"])
def test_pdparams_missing_a_tensor_are_refused(drop, tmp_path):
    fx = VSRFixture("msvsr_small")
    state = fx.state()
    del state[drop]
    with pytest.raises(CheckpointError, match=drop.replace(".", r"\.")):
        load_paddle_state_dict(MSVSR(**fx.kwargs), write_pdparams(tmp_path / "w.pdparams", state))


# ---- flow net, alignment maths ----------------------------------------------------------------------------
@pytest.mark.parametrize("levels,tiny", [(3, True), (6, False), (2, True)])
def test_modified_spynet_is_a_spynet(levels, tiny):
    torch.manual_seed(0)
    net = ModifiedSPyNet(num_blocks=levels, use_tiny_block=tiny).eval()
    assert isinstance(net, SPyNet) and len(net.basic_module) == levels
    a = torch.rand(2, 3, 40, 70)
    with torch.no_grad():
        assert net(a, a.clone()).shape == (2, 2, 40, 70)
        # with the last conv of every level zero, the flow is exactly zero at any size
        for block in net.basic_module:
            torch.nn.init.zeros_(block.basic_module[-1].conv.weight)
            torch.nn.init.zeros_(block.basic_module[-1].conv.bias)
        assert not net(a, torch.rand(2, 3, 40, 70)).any()


@pytest.mark.parametrize("levels", [0, 7])
def test_modified_spynet_levels_refused(levels):
    with pytest.raises(ConfigError, match="num_blocks"):
        ModifiedSPyNet(num_blocks=levels)


def test_realignment_reuses_stage2_offsets_and_averages_masks():
    """conv_offset zero: offsets = stage 2's, mask = (0.5 + stage 2's) / 2, so the output is the
    deformable conv under exactly those; without stage 2's it is AlignmentModule's rule."""
    torch.manual_seed(0)
    c, dg = 8, 2
    re = ReAlignmentModule(c, c, 3, padding=1, deformable_groups=dg, impl="torch").eval()
    x, cond, cur = torch.rand(1, c, 9, 10), torch.rand(1, 2 * c, 9, 10), torch.rand(1, c, 9, 10)
    flow = torch.randn(1, 2, 9, 10)
    offset, mask = torch.randn(1, 18 * dg, 9, 10), torch.rand(1, 9 * dg, 9, 10)
    with torch.no_grad():
        got = re(x, cond, flow, cur, offset, mask)
        torch.testing.assert_close(got, re.dcn(x, offset, (0.5 + mask) / 2))
        plain = AlignmentModule(c, c, 3, padding=1, deformable_groups=dg, impl="torch").eval()
        plain.dcn.load_state_dict(re.dcn.state_dict())
        torch.testing.assert_close(re(x, cond, flow, cur), plain(x, cond, flow)[0])
        # AlignmentModule hands back the offsets it used: the flow, (dy, dx) per tap
        _, used, m = plain(x, cond, flow)
        torch.testing.assert_close(used, flow.flip(1).repeat(1, 9 * dg, 1, 1))
        assert torch.all(m == 0.5)


# ---- sizes, switches, inputs ------------------------------------------------------------------------------
@pytest.mark.parametrize("t,hw,kwargs", [
    (1, (64, 64), {}),
    (2, (65, 70), {"use_tiny_spynet": False, "only_last": False}),
    (3, (64, 67), {"auxiliary_loss": False}),
    (2, (66, 64), {"use_refine_align": False, "use_local_connnect": False}),
])
def test_other_sizes_and_switches(t, hw, kwargs):
    torch.manual_seed(0)
    net = MSVSR(**TINY, **kwargs, dcn_impl="torch").eval()
    with torch.no_grad():
        out = net(torch.rand(1, t, 3, *hw))
    outs = out if isinstance(out, tuple) else (out,)
    assert len(outs) == (2 if kwargs.get("auxiliary_loss", True) else 1)
    for o in outs:
        assert o.shape == (1, t, 3, 4 * hw[0], 4 * hw[1]) and torch.isfinite(o).all()


@pytest.mark.parametrize("shape,match", [((1, 3, 64, 64), r"\[N, T, 3, H, W\]"), ((1, 2, 4, 64, 64), r"\[N, T, 3"),
                                         ((1, 2, 3, 64, 50), "at least 64"), ((2, 2, 3, 10, 80), "at least 64")])
def test_bad_inputs_are_refused(shape, match):
    with pytest.raises(ConfigError, match=match):
        MSVSR(**TINY)(torch.rand(*shape))


@pytest.mark.parametrize("kwargs", [{"mid_channels": 12, "deform_groups": 8}, {"stage1_groups": 3},
                                    {"deform_groups": 0}])
def test_bad_groups_are_refused(kwargs):
    with pytest.raises(ConfigError, match="divisible"):
        MSVSR(**dict(TINY, **kwargs))


# ---- model -----------------------------------------------------------------------------------------------------
MODEL = {"name": "MultiStageVSRModel", "fix_iter": 2, "generator": dict(TINY, name="MSVSR"),
         "pixel_criterion": {"name": "CharbonnierLoss", "reduction": "mean"}}


def _batch(t=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"lq": torch.rand(1, t, 3, 64, 64, generator=g), "gt": torch.rand(1, t, 3, 256, 256, generator=g),
            "lq_path": ["x"]}


def _model_step(cfg, current_iter, batch):
    from vsr_fixtures import build_optimizer
    torch.manual_seed(0)
    model = build_model(copy.deepcopy(cfg))
    net = model.nets["generator"]
    opt = build_optimizer({"name": "Adam", "beta1": 0.9, "beta2": 0.99, "epsilon": 1e-12}, list(net.parameters()), 1e-3)
    opt.ppgan_net_names = ("generator",)
    model.setup_input(batch)
    model.current_iter = current_iter
    before = {k: p.detach().clone() for k, p in net.named_parameters()}
    with torch.no_grad():
        aux, out = net(batch["lq"])
        crit = model.pixel_criterion
        want = {"loss_pix_stage2": crit(aux, batch["gt"]), "loss_pix": crit(out, batch["gt"])}
    losses = model.train_iter({"optim": opt})
    steps = {k: (p.detach() - before[k]).abs() for k, p in net.named_parameters()}
    return model, losses, want, steps


@pytest.mark.parametrize("fix_iter,current_iter,frozen", [(2, 0, True), (2, 1, True), (2, 2, False), (0, 0, False),
                                                          (-1, 0, True), (-1, 1, False)])
def test_model_losses_and_flow_net_schedule(fix_iter, current_iter, frozen):
    model, losses, want, steps = _model_step(dict(MODEL, fix_iter=fix_iter), current_iter, _batch())
    assert list(losses) == ["loss_pix_stage2", "loss_pix", "loss"]
    for k, v in want.items():
        torch.testing.assert_close(losses[k], v, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses["loss"], want["loss_pix"] + want["loss_pix_stage2"])
    spynet = [v for k, v in steps.items() if k.startswith("spynet.")]
    others = [v for k, v in steps.items() if not k.startswith("spynet.")]
    assert all(v.any() for v in others)
    if frozen:
        assert not any(v.any() for v in spynet)
    else:  # Adam's first step is lr * sign(grad): 0.25 * lr for the flow net
        flat = torch.cat([v.flatten() for v in spynet])
        assert flat[flat > 0].median() == pytest.approx(0.25e-3, rel=1e-3)
    assert model.output.shape == (1, 2, 3, 256, 256)


def test_model_evaluates_any_size_on_the_final_output():
    from ppgan.metrics import build_metric

    torch.manual_seed(0)
    model = build_model(copy.deepcopy(MODEL))
    psnr = build_metric({"name": "PSNR", "crop_border": 0})
    g = torch.Generator().manual_seed(1)
    model.setup_input({"lq": torch.rand(1, 2, 3, 50, 45, generator=g),
                       "gt": torch.rand(1, 2, 3, 200, 180, generator=g)})
    model.test_iter({"psnr": psnr})  # below the flow net's 64 pixels: padded, cropped back
    assert model.output.shape == (1, 2, 3, 200, 180) and len(psnr.results) == 1
    net = model.nets["generator"].eval()
    with torch.no_grad():  # the final output (not the auxiliary one) of the reflect-padded clip, cropped
        padded = torch.nn.functional.pad(model.lq.reshape(2, 3, 50, 45), (0, 19, 0, 14), mode="reflect")
        aux, final = net(padded.reshape(1, 2, 3, 64, 64))
    torch.testing.assert_close(model.output, final[..., :200, :180])
    assert not torch.allclose(model.output, aux[..., :200, :180])


# ---- configs ------------------------------------------------------------------------------------------------
CONFIGS = {"msvsr_reds": ("msvsr", 2500), "msvsr_l_reds": ("msvsr_l", 2500), "msvsr_vimeo90k_BD": ("msvsr", 1)}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_paddlegan_config_loads_and_builds(name):
    cfg = load_config(os.path.join(ROOT, "configs", name + ".yaml"))
    model = build_model(cfg["model"])
    assert type(model).__name__ == "MultiStageVSRModel" and isinstance(model.nets["generator"], MSVSR)
    fixture, fix_iter = CONFIGS[name]
    assert model.fix_iter == fix_iter and model.lr_mult == 0.25
    assert shapes(model.nets["generator"]) == VSRFixture(fixture).shapes()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_paddlegan_config_trains_one_step(name, tmp_path):
    cfg = tiny_config(name, **TINY)
    batch = config_train_batch(cfg, tmp_path, frames=2)
    t = 4 if "vimeo" in name else 2
    assert batch["lq"].shape == (1, t, 3, 64, 64) and batch["gt"].shape == (1, t, 3, 256, 256)
    model, losses, moved = train_one_step(cfg, batch)
    assert list(losses) == ["loss_pix_stage2", "loss_pix", "loss"]
    names = {k for k, _ in model.nets["generator"].named_parameters()}
    spynet = {k for k in names if k.startswith("spynet.")}
    assert moved == names - spynet  # every config freezes the flow net at the first iteration


@pytest.mark.slow
def test_trainer_trains_validates_and_snapshots_msvsr_config(tmp_path):
    """PaddleGAN's msvsr_reds.yaml (tiny net, tiny REDS folders) through the trainer: two steps,
    validation on a REDS4 clip in test mode (the final output, not the auxiliary one)."""
    from ppgan.engine import Trainer
    from vsr_fixtures import write_reds

    cfg = tiny_config("msvsr_reds", **TINY)
    inner = cfg["dataset"]["train"]["dataset"]
    inner.update(write_reds(str(tmp_path / "train"), frames=2), num_frames=2)
    for step in inner["preprocess"]:
        for t in step.get("pipeline", []):
            if t["name"] == "SRPairedRandomCrop":
                t["gt_patch_size"] = 256
    cfg["dataset"]["train"].update(batch_size=1, num_workers=0)
    cfg["dataset"]["test"].update(write_reds(str(tmp_path / "test"), frames=2, clip="000"), num_frames=None)
    cfg.update(total_iters=2, output_dir=str(tmp_path / "out"))
    cfg["validate"]["interval"] = cfg["snapshot_config"]["interval"] = 2
    cfg["log_config"].update(interval=1, visiual_interval=1)
    tr = Trainer(cfg, device="cpu", run_dir=str(tmp_path / "run"), quiet=True)
    tr.train()
    results = tr.validate()
    assert set(results) == {"psnr", "ssim"} and 5 < results["psnr"] < 60
    assert (tmp_path / "run" / "iter_2_weight.pth").is_file()

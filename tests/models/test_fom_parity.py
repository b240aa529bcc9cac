"""First Order Motion nets: PaddleGAN parity (fixtures in tests/fixtures/parity) and other arguments.

Parity: manifest -> rule weights -> `load_paddle_state_dict(strict=True)` -> eval forward ->
PaddleGAN's recorded outputs (KPDetector, OcclusionAwareGenerator, both mobile forms, normalize_kp).
"""
import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))
from parity import Fixture, rule_tensor  # noqa: E402

from ppgan.models.generators import GENERATORS, OcclusionAwareGenerator, build_generator  # noqa: E402
from ppgan.modules.dense_motion import DenseMotionNetwork  # noqa: E402
from ppgan.modules.first_order import (AntiAliasInterpolation2d, ImagePyramide, detach_kp,  # noqa: E402
                                       kp2gaussian, make_coordinate_grid, movement_scale,
                                       normalize_kp)
from ppgan.modules.keypoint_detector import KPDetector  # noqa: E402
from ppgan.utils.errors import CheckpointError, ConfigError  # noqa: E402
from ppgan.weights import load_paddle_state_dict  # noqa: E402


def _load(name, cls):
    fixture = Fixture(name)
    model = cls(**fixture.kwargs).eval()
    load_paddle_state_dict(model, fixture.paddle_state_dict(), strict=True)
    return fixture, model


def _kp(value, jacobian=None):
    return {"value": value} if jacobian is None else {"value": value, "jacobian": jacobian}


# --- parity -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["fom_kp_detector", "fom_mobile_kp_detector"])
def test_kp_detector_parity(name):
    fixture, model = _load(name, KPDetector)
    # the anti-alias kernel is a checkpoint buffer: it must come from the file, not be recomputed
    want = rule_tensor("down.weight", [3, 1, *model.down.weight.shape[2:]])
    np.testing.assert_array_equal(model.down.weight.numpy(), want)
    with torch.no_grad():
        kp = model(*fixture.inputs)
    fixture.assert_matches([kp["value"], kp["jacobian"]])


@pytest.mark.parametrize("name", ["fom_generator", "fom_mobile_generator"])
def test_generator_parity(name):
    fixture, model = _load(name, OcclusionAwareGenerator)
    source, kp_d_value, kp_d_jac, kp_s_value, kp_s_jac = fixture.inputs
    with torch.no_grad():
        out = model(source, kp_driving=_kp(kp_d_value, kp_d_jac), kp_source=_kp(kp_s_value, kp_s_jac))
    assert fixture.meta["outputs"] == ["prediction", "mask", "occlusion_map", "deformed", "sparse_deformed"]
    fixture.assert_matches([out[k] for k in fixture.meta["outputs"]])
    occ = out["occlusion_map"][0, 0]
    border = torch.cat([occ[:5].flatten(), occ[-5:].flatten(), occ[:, :5].flatten(), occ[:, -5:].flatten()])
    assert bool((border == 1).all()) == (not fixture.kwargs.get("mobile_net", False))  # inference border


def test_normalize_kp_parity():
    fixture = Fixture("fom_normalize_kp")
    s_v, s_j, d_v, d_j, d0_v, d0_j = fixture.inputs
    args = (_kp(s_v, s_j), _kp(d_v, d_j), _kp(d0_v, d0_j))
    rel = normalize_kp(*args, use_relative_movement=True, use_relative_jacobian=True)
    adapt = normalize_kp(*args, use_relative_movement=True, use_relative_jacobian=True, adapt_movement_scale=True)
    scale = torch.tensor(movement_scale(args[0], args[2]), dtype=torch.float64)
    fixture.assert_matches([rel["value"], rel["jacobian"], adapt["value"], adapt["jacobian"], scale])
    assert abs(float(scale) - float(fixture.outputs[4])) < 1e-6
    # the predictor's defaults (relative False) leave the driving keypoints as they are
    plain = normalize_kp(*args, adapt_movement_scale=True)
    assert plain["value"] is d_v and plain["jacobian"] is d_j


# --- checkpoints --------------------------------------------------------------------------------

@pytest.mark.parametrize("name, change", [("fom_kp_detector", dict(mobile_net=True, max_features=256)),
                                          ("fom_kp_detector", dict(estimate_jacobian=False)),
                                          ("fom_mobile_generator", dict(mobile_net=False))])
def test_wrong_architecture_is_refused(name, change):
    fixture = Fixture(name)
    cls = KPDetector if "kp" in name else OcclusionAwareGenerator
    model = cls(**{**fixture.kwargs, **change})
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_paddle_state_dict(model, fixture.paddle_state_dict(), strict=True)


def test_state_dict_names_are_paddlegans():
    fixture = Fixture("fom_mobile_generator")
    names = {n.replace("._mean", ".running_mean").replace("._variance", ".running_var") for n, _, _ in fixture.manifest}
    model = OcclusionAwareGenerator(**fixture.kwargs)
    ours = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    assert ours == names


# --- blocks -------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(2, 2), (5, 7), (64, 96)])
def test_coordinate_grid(size):
    grid = make_coordinate_grid(size)
    h, w = size
    assert grid.shape == (h, w, 2)
    assert grid[0, 0].tolist() == [-1.0, -1.0] and grid[-1, -1].tolist() == [1.0, 1.0]
    assert grid[0, -1].tolist() == [1.0, -1.0]  # x first, then y
    assert make_coordinate_grid(size, type=torch.float64).dtype == torch.float64


@pytest.mark.parametrize("lead", [(1,), (3,), (2, 4)])
def test_kp2gaussian_peaks_at_the_keypoint(lead):
    grid = make_coordinate_grid((9, 11))
    idx = torch.randint(0, 9, lead + (5,)), torch.randint(0, 11, lead + (5,))
    value = grid[idx[0], idx[1]]                                     # keypoints on grid points
    heat = kp2gaussian({"value": value}, (9, 11), 0.01)
    assert heat.shape == lead + (5, 9, 11)
    flat = heat.reshape(-1, 99)
    assert torch.allclose(flat.max(dim=1).values, torch.ones(flat.shape[0]))
    assert torch.equal(flat.argmax(dim=1), (idx[0] * 11 + idx[1]).reshape(-1))


@pytest.mark.parametrize("scale, mobile, size", [(0.25, False, (64, 64)), (0.5, False, (32, 48)),
                                                 (0.25, True, (64, 40)), (1, False, (16, 16))])
def test_anti_alias_interpolation(scale, mobile, size):
    down = AntiAliasInterpolation2d(3, scale, mobile_net=mobile)
    x = torch.full((2, 3, *size), 0.7)
    out = down(x)
    assert out.shape == (2, 3, int(size[0] * scale), int(size[1] * scale))
    if scale != 1:
        assert torch.allclose(down.weight.sum(dim=(1, 2, 3)), torch.ones(3))
        k = down.ka // int(1 / scale) + 1                            # away from the zero padding
        assert torch.allclose(out[..., k:-k, k:-k], torch.full_like(out[..., k:-k, k:-k], 0.7), atol=1e-6)


@pytest.mark.parametrize("scale", [0.3, 0, 2, -0.5])
def test_anti_alias_rejects_bad_scale(scale):
    with pytest.raises(ConfigError, match="1/n"):
        AntiAliasInterpolation2d(3, scale)


def test_image_pyramide():
    pyramid = ImagePyramide([1, 0.5, 0.25, 0.125], 3)
    assert sorted(k.split(".")[1] for k in pyramid.state_dict()) == ["0-125", "0-25", "0-5", "1"]  # PaddleGAN names
    out = pyramid(torch.rand(2, 3, 32, 32))
    assert {k: tuple(v.shape[2:]) for k, v in out.items()} == {
        "prediction_1": (32, 32), "prediction_0.5": (16, 16), "prediction_0.25": (8, 8), "prediction_0.125": (4, 4)}


# --- normalize_kp -------------------------------------------------------------------------------

def _random_kp(b, k, seed):
    g = torch.Generator().manual_seed(seed)
    return _kp(torch.rand(b, k, 2, generator=g) * 1.6 - 0.8, torch.eye(2) + 0.2 * torch.randn(b, k, 2, 2, generator=g))


@pytest.mark.parametrize("b, k", [(1, 10), (4, 5), (3, 3)])
def test_normalize_kp_relative_movement(b, k):
    src, init = _random_kp(1, k, 0), _random_kp(1, k, 1)
    delta = 0.05 * torch.randn(b, k, 2)
    drv = _kp(init["value"] + delta, torch.matmul(_random_kp(b, k, 2)["jacobian"], init["jacobian"]))
    out = normalize_kp(src, drv, init, use_relative_movement=True, use_relative_jacobian=True)
    assert torch.allclose(out["value"], src["value"] + delta, atol=1e-6)
    want_j = torch.matmul(torch.matmul(drv["jacobian"], torch.linalg.inv(init["jacobian"])), src["jacobian"])
    assert torch.allclose(out["jacobian"], want_j, atol=1e-5)
    # without the relative jacobian the driving jacobians pass through
    out = normalize_kp(src, drv, init, use_relative_movement=True)
    assert out["jacobian"] is drv["jacobian"]
    # adapt scale: the source spread twice as wide as the initial driving frame -> movement x2
    wide = _kp(init["value"] * 2 + 0.1, src["jacobian"])
    out = normalize_kp(wide, drv, init, use_relative_movement=True, adapt_movement_scale=True)
    assert torch.allclose(out["value"], wide["value"] + 2 * delta, atol=1e-5)


def test_normalize_kp_without_jacobians():
    src, init = _kp(torch.rand(1, 5, 2)), _kp(torch.rand(1, 5, 2))
    out = normalize_kp(src, _kp(init["value"]), init, use_relative_movement=True, use_relative_jacobian=True)
    assert set(out) == {"value"} and torch.allclose(out["value"], src["value"])


@pytest.mark.parametrize("points", [torch.zeros(1, 5, 2), torch.linspace(-1, 1, 10).reshape(1, 5, 2),
                                    torch.rand(1, 2, 2)])
def test_normalize_kp_degenerate_hull(points):
    good = _kp(torch.rand(1, points.shape[1], 2))
    with pytest.raises(ConfigError, match="adapt_scale"):
        normalize_kp(_kp(points), good, good, use_relative_movement=True, adapt_movement_scale=True)


# --- other arguments and sizes ------------------------------------------------------------------

def _grads_ok(model, *inputs, frozen=()):
    """Every parameter got a finite gradient, and most a non-zero one (those named in `frozen`
    exactly zero); inputs got gradients."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for _, p in named)
    stuck = [n for n, p in named if n.startswith(frozen)]
    assert all(not p.grad.any() for n, p in named if n in stuck)
    live = [p for n, p in named if n not in stuck]
    assert sum(bool(p.grad.abs().sum() > 0) for p in live) >= 0.9 * len(live)
    for x in inputs:
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("kwargs, size, batch", [
    (dict(num_kp=5, estimate_jacobian=True), (128, 128), 3),
    (dict(num_kp=5, estimate_jacobian=False), (64, 96), 2),
    (dict(num_kp=4, estimate_jacobian=True, single_jacobian_map=True, pad=3), (64, 96), 1),
    (dict(num_kp=5, estimate_jacobian=True, scale_factor=0.5), (128, 64), 3),
    (dict(num_kp=6, estimate_jacobian=True, mobile_net=True, scale_factor=0.25, pad=1), (128, 128), 2),
    (dict(num_kp=5, estimate_jacobian=False, mobile_net=True), (64, 96), 3),
])
def test_kp_detector_other_args(kwargs, size, batch):
    torch.manual_seed(0)
    model = KPDetector(block_expansion=8, num_channels=3, max_features=32, num_blocks=3, temperature=0.1, **kwargs)
    x = torch.rand(batch, 3, *size, requires_grad=True)
    kp = model(x)
    k = kwargs["num_kp"]
    assert kp["value"].shape == (batch, k, 2) and kp["value"].abs().max() <= 1
    if kwargs["estimate_jacobian"]:
        assert kp["jacobian"].shape == (batch, k, 2, 2)
        # zero weights and identity bias: a new detector's jacobians are the identity
        assert torch.allclose(kp["jacobian"], torch.eye(2).expand(batch, k, 2, 2), atol=1e-5)
        loss = kp["value"].sum() + (kp["jacobian"] * torch.randn_like(kp["jacobian"])).sum()
    else:
        assert set(kp) == {"value"} and model.jacobian is None
        loss = (kp["value"] * torch.randn_like(kp["value"])).sum()
    loss.backward()
    # PaddleGAN's mobile jacobian head: three convs, all weights zero at init and no nonlinearity, so
    # only the last bias gets a gradient (and the head stays a constant when trained from scratch)
    mobile_jacobian = kwargs.get("mobile_net") and kwargs["estimate_jacobian"]
    _grads_ok(model, x, frozen=("jacobian.0.", "jacobian.1.", "jacobian.2.weight") if mobile_jacobian else ())


def test_kp_detector_size_and_arg_errors():
    model = KPDetector(8, 5, 3, 32, 3, 0.1)
    with pytest.raises(ConfigError, match="divisible by 8"):
        model(torch.rand(1, 3, 60, 64))
    model = KPDetector(8, 5, 3, 32, 5, 0.1, scale_factor=0.25)
    assert model.size_multiple == 128
    with pytest.raises(ConfigError, match="divisible by 32 after the net's scale_factor, got 24x32"):
        model(torch.rand(1, 3, 96, 128))
    with pytest.raises(ConfigError, match="temperature"):
        KPDetector(8, 5, 3, 32, 3, 0)
    with pytest.raises(ConfigError, match="num_kp"):
        KPDetector(8, 0, 3, 32, 3, 0.1)


def _tiny_generator(**kwargs):
    args = dict(num_channels=3, num_kp=5, block_expansion=8, max_features=32, num_down_blocks=2,
                num_bottleneck_blocks=2, estimate_occlusion_map=True,
                dense_motion_params=dict(block_expansion=8, max_features=32, num_blocks=3, scale_factor=0.5))
    args.update(kwargs)
    return OcclusionAwareGenerator(**args)


@pytest.mark.parametrize("kwargs, size, batch, jacobian", [
    (dict(), (64, 64), 3, True),
    (dict(inference=True), (64, 96), 2, True),
    (dict(estimate_occlusion_map=False, num_kp=4), (128, 64), 1, False),
    (dict(mobile_net=True, inference=True), (64, 96), 2, True),
    (dict(mobile_net=True, num_down_blocks=3, num_bottleneck_blocks=1), (64, 64), 3, False),
    (dict(dense_motion_params=dict(block_expansion=8, max_features=32, num_blocks=2, scale_factor=1,
                                   kp_variance=0.05)), (32, 48), 2, True),
])
def test_generator_other_args(kwargs, size, batch, jacobian):
    torch.manual_seed(0)
    model = _tiny_generator(**kwargs)
    k = model.dense_motion_network.num_kp
    src = torch.rand(batch, 3, *size, requires_grad=True)
    kp_values = [(torch.rand(batch, k, 2) * 1.6 - 0.8).requires_grad_() for _ in range(2)]
    jacs = [torch.eye(2) + 0.1 * torch.randn(batch, k, 2, 2) for _ in range(2)] if jacobian else [None, None]
    out = model(src, kp_driving=_kp(kp_values[0], jacs[0]), kp_source=_kp(kp_values[1], jacs[1]))
    scale = model.dense_motion_network.scale_factor
    h, w = int(size[0] * scale), int(size[1] * scale)
    assert out["prediction"].shape == (batch, 3, *size)
    assert out["deformed"].shape == (batch, 3, *size)
    assert out["mask"].shape == (batch, k + 1, h, w)
    assert out["sparse_deformed"].shape == (batch, k + 1, 3, h, w)
    assert ("occlusion_map" in out) == model.estimate_occlusion_map
    assert all(torch.isfinite(v).all() for v in out.values())
    assert 0 <= out["prediction"].min() and out["prediction"].max() <= 1
    assert torch.allclose(out["mask"].sum(dim=1), torch.ones(batch, h, w), atol=1e-5)
    loss = sum((v * torch.randn_like(v)).sum() for v in out.values())
    loss.backward()
    _grads_ok(model, src, *kp_values)


@pytest.mark.parametrize("mobile, inference", [(False, False), (True, False), (False, True)])
def test_generator_same_keypoints_is_identity_warp(mobile, inference):
    """kp_driving == kp_source: every sparse motion is the identity, so is the dense one, and the
    'deformed' source is the source itself (bilinear sampling on the pixel grid)."""
    torch.manual_seed(1)
    dm_params = dict(block_expansion=8, max_features=32, num_blocks=3, scale_factor=1)  # motion not resized
    model = _tiny_generator(mobile_net=mobile, inference=inference, dense_motion_params=dm_params).eval()
    src = torch.rand(2, 3, 64, 64)
    kp = _kp(torch.rand(2, 5, 2) - 0.5, torch.eye(2) + 0.2 * torch.randn(2, 5, 2, 2))
    with torch.no_grad():
        dense = model.dense_motion_network(src, kp, kp)
        out = model(src, kp_driving=kp, kp_source=kp)
    grid = make_coordinate_grid((64, 64)).expand(2, 64, 64, 2)
    assert torch.allclose(dense["deformation"], grid, atol=1e-5)
    assert torch.allclose(out["deformed"], src, atol=1e-4)


def test_dense_motion_translation():
    """All keypoints shifted by d (identity jacobians): every keypoint motion is z - d."""
    torch.manual_seed(2)
    net = DenseMotionNetwork(block_expansion=8, num_blocks=2, max_features=16, num_kp=3, num_channels=3).eval()
    src_v = torch.rand(2, 3, 2) - 0.5
    d = torch.tensor([0.1, -0.2])
    eye = torch.eye(2).expand(2, 3, 2, 2)
    motions = net.create_sparse_motions(torch.zeros(2, 3, 16, 16), _kp(src_v + d, eye), _kp(src_v, eye))
    grid = make_coordinate_grid((16, 16))
    assert torch.allclose(motions[:, 0], grid.expand(2, 16, 16, 2))
    assert torch.allclose(motions[:, 1:], (grid - d).expand(2, 3, 16, 16, 2), atol=1e-6)


@pytest.mark.parametrize("name, multiple", [("fom_generator", 128), ("fom_mobile_generator", 128)])
def test_size_multiple_of_paddlegan_configs(name, multiple):
    kwargs = Fixture(name).kwargs
    assert OcclusionAwareGenerator(**kwargs).size_multiple == multiple
    small = dict(kwargs, dense_motion_params=dict(kwargs["dense_motion_params"], scale_factor=1, num_blocks=1),
                 num_down_blocks=3)
    assert OcclusionAwareGenerator(**small).size_multiple == 8


def test_generator_without_dense_motion_and_registry():
    model = build_generator(dict(name="OcclusionAwareGenerator", num_channels=3, num_kp=5, block_expansion=8,
                                 max_features=16, num_down_blocks=2, num_bottleneck_blocks=1)).eval()
    assert GENERATORS.get("OcclusionAwareGenerator") is OcclusionAwareGenerator and model.size_multiple == 4
    with torch.no_grad():
        out = model(torch.rand(1, 3, 32, 32), None, None)
    assert set(out) == {"prediction"} and out["prediction"].shape == (1, 3, 32, 32)
    with pytest.raises(ConfigError, match="divisible by 4"):
        model(torch.rand(1, 3, 30, 32), None, None)


def test_train_mode_batch_norm_and_detach():
    model = _tiny_generator().train()
    src = torch.rand(2, 3, 32, 32)
    kp = _kp(torch.rand(2, 5, 2) - 0.5, torch.eye(2).expand(2, 5, 2, 2).clone())
    bn = model.first.norm
    before = bn.running_mean.clone()
    model(src, kp_driving=kp, kp_source=detach_kp(kp))
    assert not torch.equal(bn.running_mean, before)  # training updates the running statistics


@pytest.mark.parametrize("mobile", [False, True])
def test_autocast_bf16_and_float64(mobile):
    """Mixed precision (the apps' AMP path; bf16 on CPU) runs and stays near fp32; float64 works."""
    torch.manual_seed(3)
    kp_detector = KPDetector(8, 5, 3, 32, 3, 0.1, estimate_jacobian=True, mobile_net=mobile, pad=3).eval()
    generator = _tiny_generator(mobile_net=mobile, inference=True).eval()
    src, drv = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)

    def animate(dtype=None):
        s, d = (src, drv) if dtype is None else (src.to(dtype), drv.to(dtype))
        kp_s, kp_d = kp_detector(s), kp_detector(d)
        return kp_d, generator(s, kp_driving=kp_d, kp_source=kp_s)["prediction"]

    with torch.no_grad():
        kp_ref, ref = animate()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            kp_amp, amp = animate()
        kp_detector.double()
        generator.double()
        _, dbl = animate(torch.float64)
    assert torch.isfinite(amp.float()).all() and (amp.float() - ref).abs().max() < 0.05
    assert kp_amp["value"].dtype == kp_amp["jacobian"].dtype == torch.float32  # keypoints stay fp32
    assert (kp_amp["value"] - kp_ref["value"]).abs().max() < 0.05
    assert dbl.dtype == torch.float64 and (dbl.float() - ref).abs().max() < 1e-4

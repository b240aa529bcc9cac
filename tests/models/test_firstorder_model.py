"""First Order Motion training: FirstOrderModel / FirstOrderModelMobile (one step on tiny nets:
exact loss keys, finite, which nets moved), the random TPS warp of the equivariance losses, the
PaddleGAN optimizer keys, FirstOrderDataset on frame folders, .mp4 files and image strips, and the
three configs (keys and values equal PaddleGAN's, stored below; they build with tiny overrides)."""
import math
import os

import cv2
import numpy as np
import pytest
import torch

from ppgan.datasets import build_dataset
from ppgan.engine import checkpoint as ckpt
from ppgan.engine.trainer import Trainer
from ppgan.models import build_model
from ppgan.models.firstorder_model import RandomTPS
from ppgan.solver import build_optimizer
from ppgan.utils.config import load_config
from ppgan.utils.errors import CheckpointError, ConfigError, DatasetError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = 64

# ---- PaddleGAN's configs (configs/firstorder_*.yaml, flattened: dotted key -> value) -------------------
PADDLEGAN_VOX = {'epochs': 100,
 'output_dir': 'output_dir',
 'dataset.train.name': 'FirstOrderDataset',
 'dataset.train.batch_size': 8,
 'dataset.train.num_workers': 8,
 'dataset.train.use_shared_memory': False,
 'dataset.train.phase': 'train',
 'dataset.train.dataroot': 'data/first_order/Voxceleb/',
 'dataset.train.frame_shape': [256, 256, 3],
 'dataset.train.id_sampling': True,
 'dataset.train.pairs_list': 'None',
 'dataset.train.time_flip': True,
 'dataset.train.num_repeats': 75,
 'dataset.train.create_frames_folder': False,
 'dataset.train.transforms': [{'name': 'PairedRandomHorizontalFlip', 'prob': 0.5, 'keys': ['image', 'image']},
                              {'name': 'PairedColorJitter',
                               'brightness': 0.1,
                               'contrast': 0.1,
                               'saturation': 0.1,
                               'hue': 0.1,
                               'keys': ['image', 'image']}],
 'dataset.test.name': 'FirstOrderDataset',
 'dataset.test.dataroot': 'data/first_order/Voxceleb/',
 'dataset.test.phase': 'test',
 'dataset.test.batch_size': 1,
 'dataset.test.num_workers': 1,
 'dataset.test.time_flip': False,
 'dataset.test.id_sampling': False,
 'dataset.test.create_frames_folder': False,
 'dataset.test.frame_shape': [256, 256, 3],
 'model.name': 'FirstOrderModel',
 'model.common_params.num_kp': 10,
 'model.common_params.num_channels': 3,
 'model.common_params.estimate_jacobian': True,
 'model.generator.name': 'FirstOrderGenerator',
 'model.generator.kp_detector_cfg.temperature': 0.1,
 'model.generator.kp_detector_cfg.block_expansion': 32,
 'model.generator.kp_detector_cfg.max_features': 1024,
 'model.generator.kp_detector_cfg.scale_factor': 0.25,
 'model.generator.kp_detector_cfg.num_blocks': 5,
 'model.generator.generator_cfg.block_expansion': 64,
 'model.generator.generator_cfg.max_features': 512,
 'model.generator.generator_cfg.num_down_blocks': 2,
 'model.generator.generator_cfg.num_bottleneck_blocks': 6,
 'model.generator.generator_cfg.estimate_occlusion_map': True,
 'model.generator.generator_cfg.dense_motion_params.block_expansion': 64,
 'model.generator.generator_cfg.dense_motion_params.max_features': 1024,
 'model.generator.generator_cfg.dense_motion_params.num_blocks': 5,
 'model.generator.generator_cfg.dense_motion_params.scale_factor': 0.25,
 'model.discriminator.name': 'FirstOrderDiscriminator',
 'model.discriminator.discriminator_cfg.scales': [1],
 'model.discriminator.discriminator_cfg.block_expansion': 32,
 'model.discriminator.discriminator_cfg.max_features': 512,
 'model.discriminator.discriminator_cfg.num_blocks': 4,
 'model.discriminator.discriminator_cfg.sn': True,
 'model.train_params.num_epochs': 100,
 'model.train_params.scales': [1, 0.5, 0.25, 0.125],
 'model.train_params.checkpoint_freq': 50,
 'model.train_params.transform_params.sigma_affine': 0.05,
 'model.train_params.transform_params.sigma_tps': 0.005,
 'model.train_params.transform_params.points_tps': 5,
 'model.train_params.loss_weights.generator_gan': 0,
 'model.train_params.loss_weights.discriminator_gan': 1,
 'model.train_params.loss_weights.feature_matching': [10, 10, 10, 10],
 'model.train_params.loss_weights.perceptual': [10, 10, 10, 10, 10],
 'model.train_params.loss_weights.equivariance_value': 10,
 'model.train_params.loss_weights.equivariance_jacobian': 10,
 'lr_scheduler.name': 'MultiStepDecay',
 'lr_scheduler.epoch_milestones': [237360, 356040],
 'lr_scheduler.lr_generator': 0.0002,
 'lr_scheduler.lr_discriminator': 0.0002,
 'lr_scheduler.lr_kp_detector': 0.0002,
 'reconstruction_params.num_videos': 1000,
 'reconstruction_params.format': '.mp4',
 'animate_params.num_pairs': 50,
 'animate_params.format': '.mp4',
 'animate_params.normalization_params.adapt_movement_scale': False,
 'animate_params.normalization_params.use_relative_movement': True,
 'animate_params.normalization_params.use_relative_jacobian': True,
 'visualizer_params.kp_size': 5,
 'visualizer_params.draw_border': True,
 'visualizer_params.colormap': 'gist_rainbow',
 'log_config.interval': 10,
 'log_config.visiual_interval': 10,
 'validate.interval': 3000,
 'validate.save_img': False,
 'snapshot_config.interval': 10,
 'optimizer.name': 'Adam',
 'export_model': [{}]}
PADDLEGAN_FASHION_REMOVED = ['animate_params.format',
 'animate_params.normalization_params.adapt_movement_scale',
 'animate_params.normalization_params.use_relative_jacobian',
 'animate_params.normalization_params.use_relative_movement',
 'animate_params.num_pairs',
 'dataset.train.pairs_list',
 'dataset.train.use_shared_memory',
 'export_model',
 'lr_scheduler.name',
 'model.train_params.checkpoint_freq',
 'model.train_params.num_epochs',
 'reconstruction_params.format',
 'reconstruction_params.num_videos',
 'validate.save_img',
 'visualizer_params.colormap',
 'visualizer_params.draw_border',
 'visualizer_params.kp_size']
PADDLEGAN_FASHION_CHANGED = {'epochs': 150,
 'model.train_params.loss_weights.generator_gan': 1,
 'lr_scheduler.epoch_milestones': [187500, 281250],
 'dataset.train.dataroot': 'data/first_order/fashion/',
 'dataset.train.num_repeats': 50,
 'dataset.train.id_sampling': False,
 'dataset.train.process_time': False,
 'dataset.train.num_workers': 4,
 'dataset.train.max_dataset_size': 'inf',
 'dataset.train.direction': 'BtoA',
 'dataset.train.input_nc': 3,
 'dataset.train.output_nc': 3,
 'dataset.test.dataroot': 'data/first_order/fashion/',
 'validate.interval': 31250}
PADDLEGAN_MOBILE_REMOVED = []
PADDLEGAN_MOBILE_CHANGED = {'dataset.train.num_workers': 4,
 'model.name': 'FirstOrderModelMobile',
 'model.mode': 'generator',
 'model.kp_weight_path': 'None',
 'model.gen_weight_path': 'None',
 'model.generator.kp_detector_cfg.max_features': 256,
 'model.generator.kp_detector_cfg.mobile_net': True,
 'model.generator.generator_cfg.block_expansion': 32,
 'model.generator.generator_cfg.max_features': 256,
 'model.generator.generator_cfg.dense_motion_params.block_expansion': 32,
 'model.generator.generator_cfg.dense_motion_params.max_features': 256,
 'model.generator.generator_cfg.mobile_net': True,
 'model.generator_ori.name': 'FirstOrderGenerator',
 'model.generator_ori.kp_detector_cfg.temperature': 0.1,
 'model.generator_ori.kp_detector_cfg.block_expansion': 32,
 'model.generator_ori.kp_detector_cfg.max_features': 1024,
 'model.generator_ori.kp_detector_cfg.scale_factor': 0.25,
 'model.generator_ori.kp_detector_cfg.num_blocks': 5,
 'model.generator_ori.generator_cfg.block_expansion': 64,
 'model.generator_ori.generator_cfg.max_features': 512,
 'model.generator_ori.generator_cfg.num_down_blocks': 2,
 'model.generator_ori.generator_cfg.num_bottleneck_blocks': 6,
 'model.generator_ori.generator_cfg.estimate_occlusion_map': True,
 'model.generator_ori.generator_cfg.dense_motion_params.block_expansion': 64,
 'model.generator_ori.generator_cfg.dense_motion_params.max_features': 1024,
 'model.generator_ori.generator_cfg.dense_motion_params.num_blocks': 5,
 'model.generator_ori.generator_cfg.dense_motion_params.scale_factor': 0.25,
 'model.train_params.loss_weights.generator_gan': 1,
 'lr_scheduler.epoch_milestones': [2000000000000],
 'validate.interval': 20000000000,
 'validate.save_img': True,
 'snapshot_config.interval': 5}


def flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def paddlegan_config(name):
    if name == "firstorder_vox_256":
        return dict(PADDLEGAN_VOX)
    removed, changed = {"firstorder_fashion": (PADDLEGAN_FASHION_REMOVED, PADDLEGAN_FASHION_CHANGED),
                        "firstorder_vox_mobile_256": (PADDLEGAN_MOBILE_REMOVED, PADDLEGAN_MOBILE_CHANGED)}[name]
    out = {k: v for k, v in PADDLEGAN_VOX.items() if k not in removed}
    out.update(changed)
    return out


CONFIGS = ("firstorder_vox_256", "firstorder_fashion", "firstorder_vox_mobile_256")


def tiny_overrides(prefixes=("generator",)):
    """-o values that shrink a PaddleGAN FOM config to nets that step in about a second at 64x64."""
    out = ["model.common_params.num_kp=3", "model.train_params.scales=[1, 0.5, 0.25]",
           "model.discriminator.discriminator_cfg.block_expansion=2",
           "model.discriminator.discriminator_cfg.max_features=8", "model.vgg_weight_path=deterministic"]
    for p in prefixes:
        out += [f"model.{p}.kp_detector_cfg.block_expansion=2", f"model.{p}.kp_detector_cfg.max_features=8",
                f"model.{p}.kp_detector_cfg.num_blocks=2", f"model.{p}.generator_cfg.block_expansion=2",
                f"model.{p}.generator_cfg.max_features=8", f"model.{p}.generator_cfg.num_bottleneck_blocks=1",
                f"model.{p}.generator_cfg.dense_motion_params.block_expansion=2",
                f"model.{p}.generator_cfg.dense_motion_params.max_features=8",
                f"model.{p}.generator_cfg.dense_motion_params.num_blocks=2"]
    return out


def tiny_model_cfg(generator_gan=0, equivariance=True, estimate_jacobian=True, perceptual=(10, 10, 10, 10, 10)):
    dense = {"block_expansion": 2, "max_features": 8, "num_blocks": 2, "scale_factor": 0.5}
    return {
        "name": "FirstOrderModel",
        "common_params": {"num_kp": 3, "num_channels": 3, "estimate_jacobian": estimate_jacobian},
        "generator": {"name": "FirstOrderGenerator",
                      "kp_detector_cfg": {"temperature": 0.1, "block_expansion": 2, "max_features": 8,
                                          "scale_factor": 0.5, "num_blocks": 2},
                      "generator_cfg": {"block_expansion": 2, "max_features": 8, "num_down_blocks": 2,
                                        "num_bottleneck_blocks": 1, "estimate_occlusion_map": True,
                                        "dense_motion_params": dense}},
        "discriminator": {"name": "FirstOrderDiscriminator",
                          "discriminator_cfg": {"scales": [1], "block_expansion": 2, "max_features": 8,
                                                "num_blocks": 4, "sn": True}},
        "train_params": {"scales": [1, 0.5, 0.25],
                         "transform_params": {"sigma_affine": 0.05, "sigma_tps": 0.005, "points_tps": 5},
                         "loss_weights": {"generator_gan": generator_gan, "discriminator_gan": 1,
                                          "feature_matching": [10, 10, 10, 10], "perceptual": list(perceptual),
                                          "equivariance_value": 10 if equivariance else 0,
                                          "equivariance_jacobian": 10 if equivariance and estimate_jacobian else 0}},
        "vgg_weight_path": "deterministic",
    }


PADDLEGAN_SCHEDULE = {"name": "MultiStepDecay", "epoch_milestones": [100], "lr_generator": 2e-4,
                      "lr_discriminator": 2e-4, "lr_kp_detector": 2e-4}


def optimizers_for(model, optimizer=None, schedule=None):
    """Optimizers as the trainer builds them from the model's `optimizer_config`."""
    groups, _ = model.optimizer_config(optimizer or {"name": "Adam"}, schedule or PADDLEGAN_SCHEDULE)
    out = {}
    for name, cfg in groups.items():
        params = [p for n in cfg["net_names"] for p in model.nets[n].parameters() if p.requires_grad]
        opt = build_optimizer(cfg, params)
        opt.ppgan_net_names = tuple(cfg["net_names"])
        out[name] = opt
    return out


def snapshot(model):
    return {n: {k: p.detach().clone() for k, p in net.named_parameters()} for n, net in model.nets.items()}


def moved_nets(before, model):
    return {n for n, net in model.nets.items()
            if any(not torch.equal(before[n][k], p.detach()) for k, p in net.named_parameters())}


def astronaut_frames(n=4, size=SIZE):
    """n frames of a moving photo: scikit-image's astronaut, panned and zoomed a little per frame."""
    from skimage import data

    img = data.astronaut()
    frames = []
    for i in range(n):
        s = 1.0 + 0.05 * i
        m = np.array([[s, 0, -20.0 * i], [0, s, -10.0 * i]])
        frames.append(cv2.resize(cv2.warpAffine(img, m, img.shape[1::-1], borderMode=cv2.BORDER_REFLECT), (size, size),
                                 interpolation=cv2.INTER_AREA))
    return frames


def batch_of(frames, pairs=((0, 2), (1, 3))):
    t = [torch.from_numpy(f.transpose(2, 0, 1).astype(np.float32) / 255.0) for f in frames]
    return {"source": torch.stack([t[a] for a, _ in pairs]), "driving": torch.stack([t[b] for _, b in pairs])}


@pytest.fixture(scope="module")
def frames():
    return astronaut_frames()


# ---- one training step -----------------------------------------------------------------------------------
@pytest.mark.parametrize("generator_gan,keys,trained", [
    (0, {"perceptual", "equivariance_value", "equivariance_jacobian"}, {"kp_detector", "generator"}),
    (1, {"perceptual", "gen_gan", "feature_matching", "equivariance_value", "equivariance_jacobian", "disc_gan"},
     {"kp_detector", "generator", "discriminator"}),
])
def test_train_iter_losses_and_updates(frames, generator_gan, keys, trained):
    torch.manual_seed(0)
    model = build_model(tiny_model_cfg(generator_gan=generator_gan))
    opts = optimizers_for(model)
    assert set(opts) == {"optimizer_KP", "optimizer_Gen", "optimizer_Dis"}
    before = snapshot(model)
    model.setup_input(batch_of(frames))
    losses = model.train_iter(opts)
    assert set(losses) == keys
    assert all(v.ndim == 0 and not v.requires_grad and math.isfinite(float(v)) for v in losses.values())
    assert moved_nets(before, model) == trained  # D untouched when generator_gan is 0 (vox)
    assert model.visual_items["prediction"].shape == (2, 3, SIZE, SIZE)
    assert float(model.visual_items["prediction"].min()) >= -1.0


@pytest.mark.parametrize("cfg_change,keys", [
    ({"equivariance": False}, {"perceptual"}),
    ({"estimate_jacobian": False}, {"perceptual", "equivariance_value"}),
    ({"perceptual": (0, 0, 5)}, {"perceptual", "equivariance_value", "equivariance_jacobian"}),
])
def test_loss_terms_follow_weights(frames, cfg_change, keys):
    torch.manual_seed(1)
    model = build_model(tiny_model_cfg(**cfg_change))
    if "perceptual" in cfg_change:  # only the VGG layers read are built (up to relu3_1)
        assert len(model.vgg.vgg_layers.features) == 12
    model.setup_input(batch_of(frames))
    losses = model.train_iter(optimizers_for(model))
    assert set(losses) == keys
    assert all(math.isfinite(float(v)) for v in losses.values())


def test_one_optimizer_for_all_nets(frames):
    """ppgan's own optimizer form (one group over every net, learning_rate in the schedule) also trains."""
    model = build_model(tiny_model_cfg(generator_gan=1))
    groups = {"optim": {"name": "Adam", "net_names": list(model.nets)}}
    schedule = {"name": "MultiStepDecay", "learning_rate": 1e-3, "milestones": [10]}
    assert model.optimizer_config(groups, schedule) == (groups, schedule)
    params = [p for net in model.nets.values() for p in net.parameters()]
    opt = build_optimizer(groups["optim"], params, 1e-3)
    opt.ppgan_net_names = tuple(model.nets)
    before = snapshot(model)
    model.setup_input(batch_of(frames))
    losses = model.train_iter({"optim": opt})
    assert "disc_gan" in losses and moved_nets(before, model) == set(model.nets)


SYNC_METHODS = ("item", "__float__", "__bool__", "__int__", "__index__", "tolist", "cpu", "numpy")


def test_train_iter_never_reads_a_value_back(frames, monkeypatch):
    """No host sync in a step (on a GPU each would wait for the queued kernels)."""
    model = build_model(tiny_model_cfg(generator_gan=1))
    opts = optimizers_for(model)
    model.setup_input(batch_of(frames))
    calls = []
    for name in SYNC_METHODS:
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name,
                            lambda self, *a, _f=original, _n=name, **k: calls.append(_n) or _f(self, *a, **k))
    losses = model.train_iter(opts)
    assert calls == []
    float(losses["disc_gan"])  # the counter works
    monkeypatch.undo()
    assert calls == ["__float__"] and len(losses) == 6


def test_train_iter_under_autocast(frames):
    """Mixed precision (bf16 on the CPU here): the warp maths of the equivariance losses stay float32."""
    torch.manual_seed(6)
    model = build_model(tiny_model_cfg(generator_gan=1))
    opts = optimizers_for(model)
    before = snapshot(model)
    model.setup_input(batch_of(frames))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model.train_iter(opts)
    assert losses["equivariance_jacobian"].dtype == torch.float32
    assert all(math.isfinite(float(v)) for v in losses.values())
    assert moved_nets(before, model) == set(model.nets)


def test_test_iter_reconstructs_every_frame(frames):
    model = build_model(tiny_model_cfg())
    model.test_chunk = 3  # 4 frames: two generator calls

    class Count:
        n = 0

        def update(self, pred, gt):
            assert pred.shape == gt.shape and pred.shape[1:] == (3, SIZE, SIZE)
            Count.n += pred.shape[0]

    video = torch.from_numpy(np.stack(frames).astype(np.float32).transpose(3, 0, 1, 2) / 255.0)[None]
    model.setup_input({"video": video, "name": ["v"]})
    model.test_iter({"count": Count()})
    assert Count.n == 4
    assert len(model.test_loss) == 1 and 0 < float(model.test_loss[0]) < 1
    assert model.nets["generator"].training and model.nets["kp_detector"].training  # modes restored


# ---- the random warp -------------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma_affine,sigma_tps", [(0.05, 0.005), (0.2, 0.05), (0.1, None)])
def test_random_tps_jacobian_matches_finite_differences(sigma_affine, sigma_tps):
    torch.manual_seed(2)
    warp = RandomTPS(2, sigma_affine, sigma_tps, 5 if sigma_tps else None)
    pts = (torch.rand(2, 6, 2, dtype=torch.float64) * 1.6 - 0.8)
    warp.theta, = (warp.theta.double(),)
    if warp.tps:
        warp.control_params = warp.control_params.double()
        warp.control_points = warp.control_points.double()
    jac = warp.jacobian(pts.clone().requires_grad_(True))
    eps = 1e-6
    for axis in range(2):
        d = torch.zeros_like(pts)
        d[..., axis] = eps
        num = (warp.warp_coordinates(pts + d) - warp.warp_coordinates(pts - d)) / (2 * eps)
        assert torch.allclose(jac[..., :, axis], num, atol=1e-5)


def test_random_tps_without_noise_is_identity(frames):
    warp = RandomTPS(2, 0.0, 0.0, 5)
    x = batch_of(frames)["driving"]
    assert torch.allclose(warp.transform_frame(x), x, atol=1e-5)
    pts = torch.rand(2, 5, 2) * 2 - 1
    assert torch.allclose(warp.warp_coordinates(pts), pts, atol=1e-6)


# ---- config errors ---------------------------------------------------------------------------------------
def _changed(**kw):
    cfg = tiny_model_cfg()
    for path, value in kw.items():
        node = cfg
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        if value is None:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return cfg


@pytest.mark.parametrize("cfg,match", [
    (_changed(generator__name="OcclusionAwareGenerator"), "model.generator.name must be FirstOrderGenerator"),
    (_changed(generator__kp_detector_cfg=None), "needs a 'kp_detector_cfg'"),
    (_changed(discriminator__name="NLayerDiscriminator"), "FirstOrderDiscriminator"),
    (_changed(train_params__loss_weights__perceptul=[1]), "did you mean perceptual"),
    (_changed(train_params__loss_weights__perceptual=[1] * 6), "5 slices"),
    (_changed(train_params__loss_weights__feature_matching=10), "must be a list"),
    (_changed(common_params__estimate_jacobian=False), "estimate_jacobian: true"),
    (_changed(train_params__transform_params=None), "sigma_affine"),
    (_changed(train_params__loss_weights__generator_gan=1, discriminator=None), "no discriminator"),
    (_changed(train_params__loss_weights__generator_gan=1, discriminator__discriminator_cfg__scales=[0.3]),
     "not in model.train_params.scales"),
    (_changed(train_params__scalez=[1]), "did you mean scales"),
    (_changed(train_params__scales=[1, 2]), "numbers in \\(0, 1\\]"),
])
def test_bad_model_config(cfg, match):
    with pytest.raises(ConfigError, match=match):
        build_model(cfg)


def test_frames_too_small_for_the_pyramid(frames):
    model = build_model(_changed(train_params__scales=[1, 0.125]))
    model.setup_input(batch_of(frames))
    with pytest.raises(ConfigError, match="too small for the perceptual loss at scale 0.125"):
        model.train_iter(optimizers_for(model))


def test_missing_vgg_weights_fail_at_build(tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match="no file.*model.vgg_weight_path"):
        build_model(_changed(vgg_weight_path=str(tmp_path / "vgg19.pdparams")))
    monkeypatch.setenv("HOME", str(tmp_path))  # empty caches: PaddleGAN's default file is not there
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("PPGAN_HOME", raising=False)
    with pytest.raises(CheckpointError, match=r"ppgan download vgg19.*model.vgg_weight_path"):
        build_model(_changed(vgg_weight_path=None))


@pytest.mark.parametrize("optimizer,schedule,match", [
    ({"name": "Adam"}, dict(PADDLEGAN_SCHEDULE, name="CosineAnnealingDecay"), "must be MultiStepDecay"),
    ({"name": "Adam"}, {k: v for k, v in PADDLEGAN_SCHEDULE.items() if k != "lr_kp_detector"}, "lr_kp_detector"),
    ({"name": "Adam"}, dict(PADDLEGAN_SCHEDULE, lr_generatr=1e-4), "unknown key 'lr_scheduler.lr_generatr'"),
    ({"optim": {"name": "Adam"}}, PADDLEGAN_SCHEDULE, "one mapping with a name"),
])
def test_bad_paddlegan_optimizer_keys(optimizer, schedule, match):
    model = build_model(tiny_model_cfg())
    with pytest.raises(ConfigError, match=match):
        model.optimizer_config(optimizer, schedule)


def test_paddlegan_schedule_is_a_per_iteration_multistep():
    model = build_model(tiny_model_cfg())
    groups, schedule = model.optimizer_config({"name": "Adam", "beta1": 0.5},
                                              dict(PADDLEGAN_SCHEDULE, lr_discriminator=1e-4))
    assert groups["optimizer_Dis"] == {"name": "Adam", "beta1": 0.5, "net_names": ["discriminator"],
                                       "learning_rate": 1e-4}
    assert schedule == {"name": "MultiStepDecay", "learning_rate": 2e-4, "milestones": [100], "gamma": 0.1}


# ---- the configs -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CONFIGS)
def test_config_keys_and_values_are_paddlegans(name):
    cfg = load_config(os.path.join(ROOT, "configs", f"{name}.yaml"))
    assert flatten(cfg) == paddlegan_config(name)


@pytest.mark.parametrize("name", CONFIGS[:2])
def test_config_builds_and_trains_one_step(name, frames):
    cfg = load_config(os.path.join(ROOT, "configs", f"{name}.yaml"), tiny_overrides())
    torch.manual_seed(3)
    model = build_model(cfg["model"])
    opts = optimizers_for(model, cfg["optimizer"], cfg["lr_scheduler"])
    before = snapshot(model)
    model.setup_input(batch_of(frames))
    losses = model.train_iter(opts)
    assert all(math.isfinite(float(v)) for v in losses.values())
    assert ("disc_gan" in losses) == (name == "firstorder_fashion")  # vox: generator_gan 0
    assert {"kp_detector", "generator"} <= moved_nets(before, model)


@pytest.fixture(scope="module")
def full_weights(tmp_path_factory):
    """A weight file of the (tiny) full-size vox model, as `vox-cpk.pdparams` holds the real one."""
    cfg = load_config(os.path.join(ROOT, "configs", "firstorder_vox_256.yaml"), tiny_overrides())
    torch.manual_seed(4)
    model = build_model(cfg["model"])
    path = str(tmp_path_factory.mktemp("fom") / "vox_tiny.pth")
    ckpt.save(ckpt.weight_file_dict(model, cfg["model"]), path)
    return path, model


def mobile_cfg(mode, kp=None, gen=None):
    extra = [f"model.mode={mode}"] + ([f"model.kp_weight_path={kp}"] if kp else []) + \
        ([f"model.gen_weight_path={gen}"] if gen else [])
    return load_config(os.path.join(ROOT, "configs", "firstorder_vox_mobile_256.yaml"),
                       tiny_overrides(("generator", "generator_ori")) + extra)


@pytest.mark.parametrize("mode,fixed,trained", [("kp_detector", "generator", "kp_detector"),
                                                ("generator", "kp_detector", "generator")])
def test_mobile_trains_one_net_beside_a_fixed_one(mode, fixed, trained, full_weights, frames):
    path, full = full_weights
    cfg = mobile_cfg(mode, kp=path, gen=path)
    torch.manual_seed(5)
    model = build_model(cfg["model"])
    for k, v in full.nets[fixed].state_dict().items():  # the fixed net is the full-size, loaded one
        assert torch.equal(model.nets[fixed].state_dict()[k], v)
    opts = optimizers_for(model, cfg["optimizer"], cfg["lr_scheduler"])
    assert set(opts) == {"optimizer_KP" if mode == "kp_detector" else "optimizer_Gen", "optimizer_Dis"}
    model.train()
    assert not model.nets[fixed].training and model.nets[trained].training
    before = snapshot(model)
    model.setup_input(batch_of(frames))
    losses = model.train_iter(opts)
    assert all(math.isfinite(float(v)) for v in losses.values())
    assert moved_nets(before, model) == {trained, "discriminator"}
    assert ("equivariance_value" in losses) == (mode == "kp_detector")


def test_mobile_both_starts_from_the_mobile_weights(full_weights, frames, tmp_path):
    paths = {}
    for mode in ("kp_detector", "generator"):
        cfg = mobile_cfg(mode, kp=full_weights[0], gen=full_weights[0])
        model = build_model(cfg["model"])
        paths[mode] = str(tmp_path / f"{mode}.pth")
        ckpt.save(ckpt.weight_file_dict(model, cfg["model"]), paths[mode])
        paths[mode + "_state"] = model.nets[mode].state_dict()
    cfg = mobile_cfg("both", kp=paths["kp_detector"], gen=paths["generator"])
    model = build_model(cfg["model"])
    for name in ("kp_detector", "generator"):
        for k, v in paths[name + "_state"].items():
            assert torch.equal(model.nets[name].state_dict()[k], v)
    opts = optimizers_for(model, cfg["optimizer"], cfg["lr_scheduler"])
    assert set(opts) == {"optimizer_KP", "optimizer_Gen", "optimizer_Dis"}
    before = snapshot(model)
    model.setup_input(batch_of(frames))
    model.train_iter(opts)
    assert moved_nets(before, model) == set(model.nets)


def test_mobile_takes_the_vox_model_from_the_weights_cache(full_weights, tmp_path, monkeypatch):
    """No weight path in mode 'generator': PaddleGAN's vox-cpk.pdparams from the cache, never downloaded."""
    import shutil

    from ppgan.weights import catalog

    spec = catalog.WeightSpec("fom-vox-test", "OcclusionAwareGenerator", {}, "https://example.invalid/vox-cpk.pdparams",
                              None, "vox-cpk.pdparams", "pdparams")
    monkeypatch.setattr(catalog, "spec_by_filename", lambda name: spec if name == "vox-cpk.pdparams" else None)
    monkeypatch.setenv("PPGAN_HOME", str(tmp_path))
    with pytest.raises(CheckpointError, match=r"model.kp_weight_path: .*ppgan download fom-vox-test"):
        build_model(mobile_cfg("generator")["model"])
    os.makedirs(tmp_path / "weights")
    shutil.copy(full_weights[0], tmp_path / "weights" / "vox-cpk.pdparams")
    model = build_model(mobile_cfg("generator")["model"])
    for k, v in full_weights[1].nets["kp_detector"].state_dict().items():
        assert torch.equal(model.nets["kp_detector"].state_dict()[k], v)
    monkeypatch.setattr(catalog, "spec_by_filename", lambda name: None)  # not in the catalogue
    with pytest.raises(ConfigError, match="mode 'generator' needs model.kp_weight_path"):
        build_model(mobile_cfg("generator")["model"])


@pytest.mark.parametrize("mode,kp,gen,error,match", [
    ("both", None, None, ConfigError, "needs model.kp_weight_path"),
    ("both", "FULL", "FULL", CheckpointError, "model.kp_weight_path: .*do not fit"),  # full-size weights
    ("generator", "MISSING", None, CheckpointError, "model.kp_weight_path"),
    ("distill", None, None, ConfigError, "model.mode must be one of"),
])
def test_mobile_bad_weights(mode, kp, gen, error, match, full_weights, tmp_path):
    sub = {"FULL": full_weights[0], "MISSING": str(tmp_path / "none.pth"), None: None}
    with pytest.raises(error, match=match):
        build_model(mobile_cfg(mode, kp=sub[kp], gen=sub[gen])["model"])


# ---- the dataset -----------------------------------------------------------------------------------------
def write_frames(folder, frames, ext=".png"):
    os.makedirs(folder, exist_ok=True)
    for i, f in enumerate(frames):
        cv2.imwrite(os.path.join(folder, f"{i}{ext}"), f[..., ::-1])


@pytest.fixture(scope="module")
def dataroot(tmp_path_factory, frames):
    """train/: a frame folder (ids a), an .mp4 (id b, 96x64: resized), a strip (id a); test/: a frame folder."""
    from ppgan.video.synthetic import make_test_video

    root = tmp_path_factory.mktemp("fomdata")
    write_frames(root / "train" / "a#1", frames)
    info = make_test_video(str(root / "train" / "b#1.mp4"), seconds=1.0, fps=12, size=(96, 64), audio=False)
    assert info["n_frames"] == 12
    cv2.imwrite(str(root / "train" / "a#2.png"), np.concatenate(frames[:3], axis=1)[..., ::-1])
    write_frames(root / "test" / "c", frames[:3])
    return str(root)


def ds_cfg(root, **kw):
    return dict({"name": "FirstOrderDataset", "dataroot": root, "phase": "train", "frame_shape": [SIZE, SIZE, 3],
                 "id_sampling": False, "time_flip": False, "num_repeats": 2}, **kw)


def test_dataset_skips_other_files_and_needs_a_video(tmp_path):
    os.makedirs(tmp_path / "train")
    (tmp_path / "train" / "README.txt").write_text("notes")
    with pytest.raises(DatasetError, match="holds no videos"):
        build_dataset(ds_cfg(str(tmp_path)))
    write_frames(str(tmp_path / "train" / "v"), astronaut_frames(2))
    ds = build_dataset(ds_cfg(str(tmp_path)))
    assert [v.name for v in ds.videos] == ["v"]


def test_dataset_reads_folders_videos_and_strips(dataroot, frames):
    ds = build_dataset(ds_cfg(dataroot))
    assert len(ds) == 6 and [v.kind for v in ds.videos] == ["folder", "strip", "video"]
    seen = set()
    for i in range(len(ds)):
        for seed in range(3):
            s = ds[(i, seed)]
            seen.add(s["name"])
            for key in ("source", "driving"):
                assert s[key].dtype == torch.float32 and s[key].shape == (3, SIZE, SIZE)
                assert 0 <= float(s[key].min()) and float(s[key].max()) <= 1
    assert seen == {"a#1", "a#2.png", "b#1.mp4"}
    # the folder's frames come back exactly, in time order
    want = [torch.from_numpy(f.transpose(2, 0, 1).astype(np.float32) / 255) for f in frames]
    s = ds[(0, 7)]
    i, j = [next(k for k, w in enumerate(want) if torch.equal(w, s[key])) for key in ("source", "driving")]
    assert i <= j


def test_dataset_same_seed_same_sample_and_time_flip(dataroot):
    ds = build_dataset(ds_cfg(dataroot, time_flip=True))
    a, b = ds[(2, 11)], ds[(2, 11)]
    assert torch.equal(a["source"], b["source"]) and torch.equal(a["driving"], b["driving"])
    flipped = sum(1 for seed in range(40) if _flipped(ds, seed))
    assert 5 < flipped < 35


def _flipped(ds, seed):
    """Whether the sample of video 0 (a frame folder) at `seed` came back later frame first."""
    s = ds[(0, seed)]
    vid = ds.videos[0]
    frames = [torch.from_numpy(f.transpose(2, 0, 1).astype(np.float32) / 255) for f in vid.frames(range(len(vid)))]
    i = next(k for k, f in enumerate(frames) if torch.equal(f, s["source"]))
    j = next(k for k, f in enumerate(frames) if torch.equal(f, s["driving"]))
    return i > j


def test_dataset_mp4_decodes_only_up_to_the_later_frame(dataroot, monkeypatch):
    import ppgan.video as video

    ds = build_dataset(ds_cfg(dataroot))
    vid = ds.videos[2]
    pulled = []
    real = video.iter_frames

    def counting(*args, **kwargs):
        for f in real(*args, **kwargs):
            pulled.append(1)
            yield f

    monkeypatch.setattr(video, "iter_frames", counting)
    out = vid.frames([3, 5])
    assert len(out) == 2 and out[0].shape == (SIZE, SIZE, 3) and len(pulled) == 3  # frames 3, 4, 5 only


def test_dataset_id_sampling_and_transforms(dataroot):
    cfg = ds_cfg(dataroot, id_sampling=True, num_repeats=3, transforms=[
        {"name": "PairedRandomHorizontalFlip", "prob": 0.5, "keys": ["image", "image"]},
        {"name": "PairedColorJitter", "brightness": 0.1, "contrast": 0.1, "saturation": 0.1, "hue": 0.1,
         "keys": ["image", "image"]}])
    ds = build_dataset(cfg)
    assert len(ds) == 6  # two identities (a, b) x 3 repeats
    names_a = {ds[(0, seed)]["name"] for seed in range(12)}
    assert names_a == {"a#1", "a#2.png"}
    assert {ds[(1, seed)]["name"] for seed in range(3)} == {"b#1.mp4"}
    plain = build_dataset(ds_cfg(dataroot))
    assert not torch.equal(ds[(0, 1)]["source"], plain[(0, 1)]["source"])  # jitter changed the colours


def test_dataset_augmentation_params_form(dataroot):
    ds = build_dataset(ds_cfg(dataroot, augmentation_params={
        "flip_param": {"horizontal_flip": True, "time_flip": True},
        "jitter_param": {"brightness": 0.1, "contrast": 0.1, "saturation": 0.1, "hue": 0.1}}))
    assert ds.time_flip and [type(t).__name__ for t in ds.transform.transforms] == \
        ["RandomHorizontalFlip", "PairedColorJitter"]


def test_dataset_test_phase_gives_whole_videos(dataroot, frames):
    ds = build_dataset(ds_cfg(dataroot, phase="test"))
    assert len(ds) == 1
    s = ds[0]
    assert s["name"] == "c" and s["video"].shape == (3, 3, SIZE, SIZE)
    assert torch.equal(s["video"][:, 2], torch.from_numpy(frames[2].transpose(2, 0, 1).astype(np.float32) / 255))
    vid = build_dataset(ds_cfg(dataroot)).videos[2]  # the .mp4, whole: 12 frames at 64x64
    assert vid.kind == "video" and len(vid.all_frames()) == 12 and vid.all_frames()[0].shape == (SIZE, SIZE, 3)


@pytest.mark.parametrize("kw,error,match", [
    ({"phase": "val"}, ConfigError, "phase must be one of train, test"),
    ({"dataroot": "/nonexistent/fom"}, DatasetError, "no folder /nonexistent/fom/train"),
    ({"frame_shape": [64]}, ConfigError, "frame_shape"),
    ({"frame_shape": ["64", 64, 3]}, ConfigError, "frame_shape"),
    ({"num_repeats": 0}, ConfigError, "num_repeats"),
    ({"augmentation_params": {"rotate_param": {}}}, ConfigError, "augmentation_params.rotate_param"),
    ({"transforms": [{"name": "PairedColorJitter", "hue": 0.7}]}, ConfigError, "hue must be in"),
])
def test_dataset_bad_config(dataroot, kw, error, match):
    with pytest.raises(error, match=match):
        build_dataset(ds_cfg(dataroot, **kw))


@pytest.mark.parametrize("make,match", [
    (lambda d: cv2.imwrite(os.path.join(d, "train", "s.png"), np.zeros((SIZE, SIZE * 2 + 5, 3), np.uint8)),
     "frames 64 pixels wide"),
    (lambda d: os.makedirs(os.path.join(d, "train", "empty")), "no frames"),
    (lambda d: open(os.path.join(d, "train", "bad.mp4"), "wb").write(b"not a video" * 10), "bad.mp4"),
])
def test_dataset_bad_videos_name_the_file(tmp_path, make, match):
    os.makedirs(tmp_path / "train")
    make(str(tmp_path))
    ds = build_dataset(ds_cfg(str(tmp_path)))
    with pytest.raises(DatasetError, match=match):
        ds[(0, 0)]


# ---- through the trainer ---------------------------------------------------------------------------------
class FOMTrainer(Trainer):
    """The trainer with the model's optimizer translation applied first (idempotent where the
    trainer already does it)."""

    def _build_optimizers(self, opt_cfg, sched_cfg):
        adapt = getattr(self.model, "optimizer_config", None)
        if adapt is not None:
            opt_cfg, sched_cfg = adapt(opt_cfg, sched_cfg)
        super()._build_optimizers(opt_cfg, sched_cfg)


def test_trainer_runs_the_fashion_config_on_the_dataset(dataroot, tmp_path):
    cfg = load_config(os.path.join(ROOT, "configs", "firstorder_fashion.yaml"), tiny_overrides() + [
        f"dataset.train.dataroot={dataroot}", f"dataset.test.dataroot={dataroot}", "dataset.train.batch_size=2",
        "dataset.train.num_workers=0", "dataset.test.num_workers=0", "dataset.train.num_repeats=1",
        "dataset.train.frame_shape=[64, 64, 3]", "dataset.test.frame_shape=[64, 64, 3]", "epochs=1"])
    trainer = FOMTrainer(cfg, device="cpu", run_dir=str(tmp_path / "run"), quiet=True)
    assert set(trainer.optimizers) == {"optimizer_KP", "optimizer_Gen", "optimizer_Dis"}
    path = trainer.train()
    assert trainer.iter == 1 and os.path.isfile(path)
    state = ckpt.load(path)
    assert set(state["nets"]) == {"kp_detector", "generator", "discriminator"}
    trainer.close()

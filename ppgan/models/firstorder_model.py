"""First Order Motion Model training (Siarohin et al., "First Order Motion Model for Image
Animation", NeurIPS 2019, https://arxiv.org/abs/2003.00196).

PaddleGAN `ppgan/models/firstorder_model.py` + `generators/generator_firstorder.py` (from
AliaksandrSiarohin/first-order-model `modules/model.py`): config keys (`common_params`,
`generator: {name: FirstOrderGenerator, kp_detector_cfg, generator_cfg}`, `discriminator:
{name: FirstOrderDiscriminator, discriminator_cfg}`, `train_params: {scales, transform_params,
loss_weights}`), loss names and update order. The nets are held separately as `kp_detector`,
`generator` and `discriminator` (PaddleGAN's checkpoint keys, also those of `vox-cpk.pdparams`);
the losses PaddleGAN computes inside its `FirstOrderGenerator` / `FirstOrderDiscriminator`
wrappers are computed here:

    perceptual            sum over pyramid scales and VGG19 relu1_1..relu5_1 of w_i * L1(features)
    gen_gan               LSGAN generator term per discriminator scale, (1 - D(fake))^2
    feature_matching      L1 between D's feature maps of real and fake, weight per block
    equivariance_value    keypoints of a randomly warped (affine + TPS) frame, warped back, match
    equivariance_jacobian their Jacobians composed with the warp's match (the identity)
    disc_gan              LSGAN discriminator term, (1 - D(real))^2 + D(fake)^2

PaddleGAN's optimizer / schedule keys (`optimizer: {name: Adam}`, `lr_scheduler: {epoch_milestones,
lr_generator, lr_discriminator, lr_kp_detector}`) become one optimizer per net through
`optimizer_config`; configs in ppgan's own form (optimizer groups with `net_names`) pass through.
"""
import copy

import torch
import torch.nn.functional as F

from ..modules.first_order import ImagePyramide, detach_kp, make_coordinate_grid
from ..modules.keypoint_detector import KPDetector
from ..utils.errors import CheckpointError, ConfigError, closest
from .base_model import BaseModel
from .builder import MODELS
from .criterions.perceptual_loss import PADDLEGAN_VGG_URL, PerceptualVGG
from .discriminators.builder import build_discriminator
from .generators.builder import build_generator

# VGG19 `features` indices after relu1_1, relu2_1, relu3_1, relu4_1, relu5_1: the ends of the five
# slices of PaddleGAN's (and the original's) `VGG19` perceptual network.
PERCEPTUAL_LAYERS = ("1", "6", "11", "20", "29")
LOSS_WEIGHTS = {"generator_gan": 0.0, "discriminator_gan": 1.0, "feature_matching": [], "perceptual": [],
                "equivariance_value": 0.0, "equivariance_jacobian": 0.0}
TRAIN_PARAM_KEYS = ("scales", "transform_params", "loss_weights", "num_epochs", "checkpoint_freq", "num_repeats",
                    "epoch_milestones", "lr_generator", "lr_discriminator", "lr_kp_detector", "batch_size")
TRANSFORM_KEYS = ("sigma_affine", "sigma_tps", "points_tps")
NET_NAMES = {"kp_detector": "optimizer_KP", "generator": "optimizer_Gen", "discriminator": "optimizer_Dis"}
LR_KEYS = {"kp_detector": "lr_kp_detector", "generator": "lr_generator", "discriminator": "lr_discriminator"}
# PaddleGAN's trained model, used by FirstOrderModelMobile's 'kp_detector' / 'generator' modes when no
# weight path is given (looked up in the weights catalogue by this file name).
VOX_WEIGHT_FILE = "vox-cpk.pdparams"


class RandomTPS:
    """A random affine + thin-plate-spline warp per sample, for the equivariance losses (Sec. 3.3).

    Args:
        batch_size (int), sigma_affine (float): std of the affine matrix's deviation from identity.
        sigma_tps (float | None), points_tps (int | None): std of the TPS weights on a
            points_tps x points_tps control grid; no TPS part when either is None.
        device: where the parameters live. Draws come from torch's global generator.
    """

    def __init__(self, batch_size, sigma_affine, sigma_tps=None, points_tps=None, device=None):
        self.bs = batch_size
        eye = torch.eye(2, 3, device=device)
        self.theta = torch.randn(batch_size, 2, 3, device=device) * sigma_affine + eye  # [B, 2, 3]
        self.tps = sigma_tps is not None and points_tps is not None
        if self.tps:
            grid = make_coordinate_grid((points_tps, points_tps), device=device)
            self.control_points = grid.reshape(1, 1, -1, 2)                                               # [1,1,P,2]
            self.control_params = torch.randn(batch_size, 1, points_tps ** 2, device=device) * sigma_tps  # [B,1,P]

    def warp_coordinates(self, coordinates):
        """[B or 1, N, 2] points in [-1, 1] -> [B, N, 2] warped points."""
        theta = self.theta.to(coordinates.dtype).unsqueeze(1)                           # [B, 1, 2, 3]
        out = (theta[..., :2] @ coordinates.unsqueeze(-1)).squeeze(-1) + theta[..., 2]  # [B, N, 2]
        if self.tps:
            # L1 distances to the control points, radial basis r^2 log r; the sum shifts x and y alike
            # (as the reference implementation does)
            d = (coordinates.unsqueeze(2) - self.control_points.to(coordinates.dtype)).abs().sum(-1)  # [B,N,P]
            shift = (d * d * torch.log(d + 1e-6) * self.control_params.to(coordinates.dtype)).sum(2)   # [B, N]
            out = out + shift.unsqueeze(-1)
        return out

    def transform_frame(self, frame):
        """[B, C, H, W] -> the frames resampled at the warped grid (reflection padding)."""
        b, _, h, w = frame.shape
        grid = make_coordinate_grid((h, w), dtype=frame.dtype, device=frame.device).reshape(1, h * w, 2)
        grid = self.warp_coordinates(grid).reshape(b, h, w, 2)
        return F.grid_sample(frame, grid.to(frame.dtype), mode="bilinear", padding_mode="reflection",
                             align_corners=True)

    def jacobian(self, coordinates):
        """[B, N, 2] -> [B, N, 2, 2]: d warp / d point at each point (kept in the graph)."""
        if not coordinates.requires_grad:  # keypoints of a frozen detector
            coordinates = coordinates.detach().requires_grad_(True)
        new = self.warp_coordinates(coordinates)
        grad_x = torch.autograd.grad(new[..., 0].sum(), coordinates, create_graph=True)[0]
        grad_y = torch.autograd.grad(new[..., 1].sum(), coordinates, create_graph=True)[0]
        return torch.stack([grad_x, grad_y], dim=-2)


def _none(value):
    """PaddleGAN's YAML writes `None` (the string) for no value."""
    return None if value in (None, "None", "none", "") else value


def _check_keys(cfg, allowed, where):
    for key in cfg:
        if key not in allowed:
            hint = closest(key, allowed)
            more = f"; did you mean {', '.join(hint)}?" if hint else f"; valid: {', '.join(allowed)}"
            raise ConfigError(f"unknown key '{where}.{key}'{more}")


def _section(cfg, key, where, name):
    """cfg[key] as a dict, checking the `name` PaddleGAN gives the section."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"{where} must be a mapping with name: {name}")
    if cfg.get("name", name) != name:
        raise ConfigError(f"{where}.name must be {name}, got {cfg['name']!r}")
    sub = cfg.get(key)
    if not isinstance(sub, dict):
        raise ConfigError(f"{where} needs a '{key}' mapping")
    return dict(sub)


@MODELS.register()
class FirstOrderModel(BaseModel):
    """Args:
        common_params (dict): num_kp, num_channels, estimate_jacobian (every net gets them).
        train_params (dict): scales (pyramid of the perceptual loss), transform_params
            (sigma_affine, sigma_tps, points_tps of the random warp), loss_weights (generator_gan,
            discriminator_gan, feature_matching [per D block], perceptual [per VGG slice, up to 5],
            equivariance_value, equivariance_jacobian; missing ones are 0, discriminator_gan 1).
            num_epochs and checkpoint_freq (and the original repo's num_repeats, epoch_milestones,
            lr_*, batch_size) are accepted and unused: the top-level epochs, snapshot_config,
            lr_scheduler and dataset sections rule.
        generator (dict): {name: FirstOrderGenerator, kp_detector_cfg: KPDetector kwargs,
            generator_cfg: OcclusionAwareGenerator kwargs}.
        discriminator (dict | None): {name: FirstOrderDiscriminator, discriminator_cfg: scales,
            block_expansion, max_features, num_blocks, sn}; trained when generator_gan != 0.
        vgg_weight_path (str | None): the VGG19 weight file of the perceptual loss (PaddleGAN's
            .pdparams or torchvision's .pth), or 'deterministic' (untrained seeded weights, for
            tests); default PaddleGAN's vgg19.pdparams from the weights cache (`ppgan download vgg19`).
    Batches (FirstOrderDataset): train {'source', 'driving': [B, 3, H, W] in [0, 1]}; test
    {'video': [B, 3, T, H, W] in [0, 1]}.
    Losses (train_iter): the keys whose weights are not 0 among perceptual, gen_gan,
    feature_matching, equivariance_value, equivariance_jacobian, disc_gan.
    """

    def __init__(self, common_params, train_params, generator, discriminator=None, vgg_weight_path=None):
        super().__init__()
        self.common_params = dict(common_params or {})
        self._read_train_params(train_params)
        kp_cfg = _section(generator, "kp_detector_cfg", "model.generator", "FirstOrderGenerator")
        gen_cfg = _section(generator, "generator_cfg", "model.generator", "FirstOrderGenerator")
        self._build_losses(vgg_weight_path)
        self._build_nets(kp_cfg, gen_cfg, discriminator)
        self.test_chunk = 16  # driving frames per generator call in test_iter

    # ---- construction --------------------------------------------------------------------
    def _read_train_params(self, train_params):
        tp = dict(train_params or {})
        _check_keys(tp, TRAIN_PARAM_KEYS, "model.train_params")
        self.scales = list(tp.get("scales") or [1])
        bad = [s for s in self.scales if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 < s <= 1]
        if bad:
            raise ConfigError(f"model.train_params.scales must be numbers in (0, 1], got {bad[0]!r}")
        weights = dict(tp.get("loss_weights") or {})
        _check_keys(weights, tuple(LOSS_WEIGHTS), "model.train_params.loss_weights")
        lw = {k: weights.get(k, copy.copy(v)) for k, v in LOSS_WEIGHTS.items()}
        for key in ("feature_matching", "perceptual"):
            if not isinstance(lw[key], (list, tuple)):
                raise ConfigError(f"model.train_params.loss_weights.{key} must be a list of weights, got {lw[key]!r}")
            lw[key] = [float(w) for w in lw[key]]
        if len(lw["perceptual"]) > len(PERCEPTUAL_LAYERS):
            raise ConfigError(f"model.train_params.loss_weights.perceptual has {len(lw['perceptual'])} weights; "
                              f"the VGG19 perceptual loss has {len(PERCEPTUAL_LAYERS)} slices")
        for key in ("generator_gan", "discriminator_gan", "equivariance_value", "equivariance_jacobian"):
            lw[key] = float(lw[key])
        self.loss_weights = lw
        self.transform_params = dict(tp.get("transform_params") or {})
        _check_keys(self.transform_params, TRANSFORM_KEYS, "model.train_params.transform_params")
        if (lw["equivariance_value"] or lw["equivariance_jacobian"]) and "sigma_affine" not in self.transform_params:
            raise ConfigError("the equivariance losses need model.train_params.transform_params.sigma_affine")
        if lw["equivariance_jacobian"] and not self.common_params.get("estimate_jacobian", False):
            raise ConfigError("loss_weights.equivariance_jacobian needs model.common_params.estimate_jacobian: true")

    def _build_losses(self, vgg_weight_path):
        from ..weights import resolve_vgg

        self.pyramid = ImagePyramide(self.scales, self.common_params.get("num_channels", 3))
        self.vgg = None
        n = len(self.loss_weights["perceptual"])
        if n and any(self.loss_weights["perceptual"]):
            # resolved before the nets are built, so a missing weight file fails at once
            try:
                weights = resolve_vgg("vgg19", PADDLEGAN_VGG_URL.format("vgg19"), _none(vgg_weight_path))
            except CheckpointError as e:
                raise CheckpointError(f"{e} (for FirstOrderModel: model.vgg_weight_path)") from None
            self.vgg = PerceptualVGG(list(PERCEPTUAL_LAYERS[:n]), "vgg19", use_input_norm=True, weights=weights)

    def _build_nets(self, kp_cfg, gen_cfg, discriminator):
        self.nets["kp_detector"] = KPDetector(**kp_cfg, **self.common_params)
        self.nets["generator"] = build_generator(dict(gen_cfg, name="OcclusionAwareGenerator", **self.common_params))
        self._build_discriminator(discriminator)

    def _build_discriminator(self, discriminator):
        self.disc_scales = []
        if discriminator:
            cfg = dict(discriminator, common_params=self.common_params)
            cfg.setdefault("name", "FirstOrderDiscriminator")
            if cfg["name"] != "FirstOrderDiscriminator":
                raise ConfigError(f"model.discriminator.name must be FirstOrderDiscriminator, got {cfg['name']!r}")
            wrapper = build_discriminator(cfg)
            self.nets["discriminator"] = wrapper.discriminator  # PaddleGAN's checkpoint key
            self.disc_scales = list(wrapper.scales)
            missing = [s for s in self.disc_scales if str(s) not in {str(t) for t in self.scales}]
            if missing and self.loss_weights["generator_gan"]:
                raise ConfigError(f"discriminator_cfg.scales {missing} are not in model.train_params.scales "
                                  f"{self.scales}; the generator's adversarial loss reads the same pyramid")
            self.disc_pyramid = ImagePyramide(self.disc_scales, self.common_params.get("num_channels", 3))
        elif self.loss_weights["generator_gan"]:
            raise ConfigError("loss_weights.generator_gan is not 0 but the model has no discriminator")

    def setup_runtime(self, device=None, scaler=None, distributed=False):
        super().setup_runtime(device, scaler, distributed)
        for module in (self.pyramid, self.vgg, getattr(self, "disc_pyramid", None)):
            if module is not None:
                module.to(self.device)

    def train(self):
        super().train()
        for name in ("kp_detector", "generator"):  # a fixed (pretrained) net keeps its BatchNorm statistics
            if name not in self.trained_nets():
                self.nets[name].eval()

    @property
    def trains_discriminator(self):
        return "discriminator" in self.nets and self.loss_weights["generator_gan"] != 0

    def trained_nets(self):
        """The nets that get an optimizer: kp_detector and generator unless fixed, and the discriminator."""
        names = [n for n in ("kp_detector", "generator") if any(p.requires_grad for p in self.nets[n].parameters())]
        return names + (["discriminator"] if "discriminator" in self.nets else [])

    def optimizer_config(self, optimizer, lr_scheduler):
        """PaddleGAN's FOM optimizer keys -> ppgan's (optimizer groups, one schedule).

        `optimizer: {name: Adam, ...}` with `lr_scheduler: {name: MultiStepDecay, epoch_milestones,
        lr_generator, lr_discriminator, lr_kp_detector[, gamma]}` becomes optimizer_KP /
        optimizer_Gen / optimizer_Dis (one per trained net, each with its own learning rate) and
        a MultiStepDecay per iteration with gamma 0.1 (PaddleGAN's). A config already in ppgan's
        form (`learning_rate` in the schedule, or optimizer groups) is returned unchanged.
        """
        sched = dict(lr_scheduler or {})
        if not any(k in sched for k in LR_KEYS.values()):
            return optimizer, lr_scheduler
        if not isinstance(optimizer, dict) or "name" not in optimizer:
            raise ConfigError("with lr_scheduler.lr_generator (PaddleGAN's FOM keys) the optimizer must be one "
                              "mapping with a name, e.g. {name: Adam}")
        name = sched.pop("name", "MultiStepDecay")
        if name != "MultiStepDecay":
            raise ConfigError(f"lr_scheduler.name must be MultiStepDecay with lr_generator / lr_kp_detector / "
                              f"lr_discriminator, got {name!r}")
        missing = [LR_KEYS[n] for n in self.trained_nets() if LR_KEYS[n] not in sched]
        if missing:
            raise ConfigError(f"lr_scheduler needs {', '.join(missing)}")
        groups = {NET_NAMES[n]: dict(optimizer, net_names=[n], learning_rate=float(sched[LR_KEYS[n]]))
                  for n in self.trained_nets()}
        schedule = {"name": "MultiStepDecay", "learning_rate": float(sched.get("lr_generator", 1.0)),
                    "milestones": list(sched.pop("epoch_milestones", [])), "gamma": float(sched.pop("gamma", 0.1))}
        unknown = set(sched) - set(LR_KEYS.values())
        if unknown:
            raise ConfigError(f"unknown key 'lr_scheduler.{sorted(unknown)[0]}' for FirstOrderModel "
                              f"(valid: epoch_milestones, gamma, {', '.join(LR_KEYS.values())})")
        return groups, schedule

    # ---- inputs --------------------------------------------------------------------------
    def setup_input(self, input):
        self.source = input["source"].to(self.device, non_blocking=True) if "source" in input else None
        self.driving = input["driving"].to(self.device, non_blocking=True) if "driving" in input else None
        self.video = input["video"].to(self.device, non_blocking=True) if "video" in input else None
        self.names = input.get("name")

    # ---- losses --------------------------------------------------------------------------
    def _perceptual(self, pyr_fake, pyr_real):
        small = min(self.scales) * min(self.driving.shape[-2:])
        if small < 16:  # VGG19 pools 4 times before relu5_1
            raise ConfigError(f"frames of {tuple(self.driving.shape[-2:])} are too small for the perceptual loss at "
                              f"scale {min(self.scales)} (VGG19 needs >= 16 pixels); use larger frames or drop the "
                              "scale from model.train_params.scales")
        total = 0.0
        weights = self.loss_weights["perceptual"]
        for scale in self.scales:
            key = f"prediction_{scale}"
            fake = self.vgg(pyr_fake[key])
            with torch.no_grad():
                real = self.vgg(pyr_real[key])
            for layer, w in zip(PERCEPTUAL_LAYERS, weights):
                if w:
                    total = total + w * (fake[layer].float() - real[layer].float()).abs().mean()
        return total

    def _adversarial(self, pyr_fake, pyr_real, kp_driving, losses):
        disc = self.nets["discriminator"]
        kp = detach_kp(kp_driving)
        maps_fake = disc(pyr_fake, kp=kp)
        with torch.no_grad():
            maps_real = disc(pyr_real, kp=kp)
        gen_gan = 0.0
        for scale in self.disc_scales:
            fake = maps_fake[f"prediction_map_{scale}"]
            gen_gan = gen_gan + self.loss_weights["generator_gan"] * ((1 - fake) ** 2).mean()
        losses["gen_gan"] = gen_gan
        fm_weights = self.loss_weights["feature_matching"]
        if any(fm_weights):
            fm = 0.0
            for scale in self.disc_scales:
                for w, a, b in zip(fm_weights, maps_real[f"feature_maps_{scale}"], maps_fake[f"feature_maps_{scale}"]):
                    if w:
                        fm = fm + w * (a - b).abs().mean()
            losses["feature_matching"] = fm

    def _equivariance(self, kp_driving, losses):
        lw = self.loss_weights
        tp = self.transform_params
        driving = self.driving
        transform = RandomTPS(driving.shape[0], float(tp["sigma_affine"]), _float_or_none(tp.get("sigma_tps")),
                              _int_or_none(tp.get("points_tps")), device=driving.device)
        transformed_frame = transform.transform_frame(driving)
        transformed_kp = self.nets["kp_detector"](transformed_frame)
        # the warp maths (matrix inverse, double backward) in float32, also under autocast
        with torch.autocast(self.device.type, enabled=False):
            value = transformed_kp["value"].float()
            if lw["equivariance_value"]:
                back = transform.warp_coordinates(value)
                value_error = (kp_driving["value"].float() - back).abs().mean()
                losses["equivariance_value"] = lw["equivariance_value"] * value_error
            if lw["equivariance_jacobian"]:
                jac_warp = transform.jacobian(value)                                   # [B, K, 2, 2]
                jac_transformed = jac_warp @ transformed_kp["jacobian"].float()
                composed = torch.linalg.inv(kp_driving["jacobian"].float()) @ jac_transformed
                eye = torch.eye(2, device=composed.device, dtype=composed.dtype)
                losses["equivariance_jacobian"] = lw["equivariance_jacobian"] * (eye - composed).abs().mean()
        return transformed_frame

    def _generator_losses(self):
        """Forward kp_detector and generator on (source, driving); {name: loss}, generated dict."""
        kp_net, gen_net = self.nets["kp_detector"], self.nets["generator"]
        kp_source = kp_net(self.source)
        kp_driving = kp_net(self.driving)
        generated = gen_net(self.source, kp_source=kp_source, kp_driving=kp_driving)
        generated.update(kp_source=kp_source, kp_driving=kp_driving)
        losses = {}
        lw = self.loss_weights
        pyr_real = self.pyramid(self.driving)
        pyr_fake = self.pyramid(generated["prediction"])
        if self.vgg is not None:
            losses["perceptual"] = self._perceptual(pyr_fake, pyr_real)
        if lw["generator_gan"]:
            self._adversarial(pyr_fake, pyr_real, kp_driving, losses)
        # (a fixed detector, FirstOrderModelMobile mode 'generator', has nothing to learn from them)
        if (lw["equivariance_value"] or lw["equivariance_jacobian"]) and "kp_detector" in self.trained_nets():
            generated["transformed_frame"] = self._equivariance(kp_driving, losses)
        return losses, generated

    def _discriminator_loss(self, generated):
        disc = self.nets["discriminator"]
        kp = detach_kp(generated["kp_driving"])
        maps_real = disc(self.disc_pyramid(self.driving), kp=kp)
        maps_fake = disc(self.disc_pyramid(generated["prediction"].detach()), kp=kp)
        total = 0.0
        for scale in self.disc_scales:
            value = (1 - maps_real[f"prediction_map_{scale}"]) ** 2 + maps_fake[f"prediction_map_{scale}"] ** 2
            total = total + self.loss_weights["discriminator_gan"] * value.mean()
        return total

    # ---- training ------------------------------------------------------------------------
    def _optimizers(self, names, optimizers):
        """The distinct optimizers of `names` (one config may hold several nets in one)."""
        out = []
        for n in names:
            opt = self.optimizer_for(n, optimizers)
            if all(opt is not o for o in out):
                out.append(opt)
        return out

    def train_iter(self, optimizers=None):
        if self.source is None or self.driving is None:
            raise ConfigError("FirstOrderModel training needs batches with 'source' and 'driving' "
                              "(FirstOrderDataset with phase: train)")
        g_names = [n for n in ("kp_detector", "generator") if n in self.trained_nets()]
        g_opts = self._optimizers(g_names, optimizers)
        net_d = self.nets.get("discriminator")

        # G step: keypoint detector and generator, D frozen.
        for opt in g_opts:
            opt.zero_grad(set_to_none=True)
        with self.frozen(net_d):
            losses, generated = self._generator_losses()
            if not losses:
                raise ConfigError("FirstOrderModel: every loss weight is 0; nothing to train")
            self.backward(sum(losses.values()))
        for opt in g_opts:
            self.optimizer_step(opt)

        # D step on (real, detached fake), only when the generator has an adversarial term.
        if self.trains_discriminator:
            (opt_d,) = self._optimizers(["discriminator"], optimizers)
            opt_d.zero_grad(set_to_none=True)
            loss_d = self._discriminator_loss(generated)
            self.backward(loss_d)
            self.optimizer_step(opt_d)
            losses["disc_gan"] = loss_d

        self.visual_items.clear()
        self.visual_items.update({"source": self.keep(self.source) * 2 - 1,
                                  "driving": self.keep(self.driving) * 2 - 1,
                                  "prediction": self.keep(generated["prediction"]) * 2 - 1})
        if "transformed_frame" in generated:
            self.visual_items["transformed"] = self.keep(generated["transformed_frame"]) * 2 - 1
        return {k: v.detach() for k, v in losses.items()}

    # ---- evaluation ----------------------------------------------------------------------
    @torch.no_grad()
    def test_iter(self, metrics=None):
        """Reconstruction (PaddleGAN): every frame of each test video is generated from its first
        frame and its own keypoints; metrics get (prediction, frame) in [0, 1]; `self.test_loss`
        collects the per-video mean L1 (as 0-dim device tensors)."""
        if self.video is None:
            raise ConfigError("FirstOrderModel test needs batches with 'video' (FirstOrderDataset with phase: test)")
        kp_net, gen_net = self.nets["kp_detector"], self.nets["generator"]
        modes = kp_net.training, gen_net.training
        kp_net.eval()
        gen_net.eval()
        video = self.video                                   # [B, C, T, H, W]
        b, c, t, h, w = video.shape
        source = video[:, :, 0]
        kp_source = kp_net(source)
        l1_sum = video.new_zeros(())
        last = None
        for start in range(0, t, self.test_chunk):
            n = min(self.test_chunk, t - start)
            driving = video[:, :, start:start + n].permute(0, 2, 1, 3, 4).reshape(b * n, c, h, w)
            rep = {k: v.repeat_interleave(n, dim=0) for k, v in kp_source.items()}
            src = source.repeat_interleave(n, dim=0)
            out = gen_net(src, kp_source=rep, kp_driving=kp_net(driving))
            pred = out["prediction"]
            l1_sum = l1_sum + (pred - driving).abs().float().mean(dim=(1, 2, 3)).sum()
            for metric in (metrics or {}).values():
                metric.update(pred, driving)
            last = (src, driving, pred)
        kp_net.train(modes[0])
        gen_net.train(modes[1])
        self.test_loss = getattr(self, "test_loss", [])
        self.test_loss.append(l1_sum / (b * t))
        src, driving, pred = last
        self.visual_items.clear()
        self.visual_items.update({"source": src * 2 - 1, "driving": driving * 2 - 1, "prediction": pred * 2 - 1})


def _float_or_none(v):
    v = _none(v)
    return None if v is None else float(v)


def _int_or_none(v):
    v = _none(v)
    return None if v is None else int(v)


MOBILE_MODES = ("kp_detector", "generator", "both")


@MODELS.register()
class FirstOrderModelMobile(FirstOrderModel):
    """PaddleGAN's mobile FOM training: the light nets (`mobile_net: True`) trained one at a time
    beside a fixed, trained full-size partner.

    Args (besides FirstOrderModel's):
        generator_ori (dict): the full-size FirstOrderGenerator config (kp_detector_cfg, generator_cfg).
        generator (dict): the mobile FirstOrderGenerator config.
        mode (str): 'kp_detector': train the mobile detector with the full-size generator fixed
            (weights from gen_weight_path); 'generator': train the mobile generator with the
            full-size detector fixed (weights from kp_weight_path); 'both': train both mobile nets,
            starting from kp_weight_path's kp_detector and gen_weight_path's generator.
        kp_weight_path, gen_weight_path (str | None): weight files (ours or PaddleGAN .pdparams,
            nets by name) or catalogue names. In the first two modes a missing path means
            PaddleGAN's trained vox model (`vox-cpk.pdparams`) from the weights cache, when the
            catalogue lists it (`ppgan download <name>` first; nothing is downloaded here).
    """

    def __init__(self, common_params, train_params, generator_ori, generator, mode, kp_weight_path=None,
                 gen_weight_path=None, discriminator=None, vgg_weight_path=None):
        if mode not in MOBILE_MODES:
            raise ConfigError(f"model.mode must be one of {', '.join(MOBILE_MODES)}, got {mode!r}")
        self.mode = mode
        self.kp_weight_path, self.gen_weight_path = _none(kp_weight_path), _none(gen_weight_path)
        self._ori = generator_ori
        super().__init__(common_params, train_params, generator, discriminator, vgg_weight_path)

    def _build_nets(self, kp_cfg, gen_cfg, discriminator):
        ori_kp = _section(self._ori, "kp_detector_cfg", "model.generator_ori", "FirstOrderGenerator")
        ori_gen = _section(self._ori, "generator_cfg", "model.generator_ori", "FirstOrderGenerator")
        if self.mode == "kp_detector":
            gen_cfg = ori_gen
        elif self.mode == "generator":
            kp_cfg = ori_kp
        super()._build_nets(kp_cfg, gen_cfg, discriminator)
        kp_net, gen_net = self.nets["kp_detector"], self.nets["generator"]
        if self.mode == "kp_detector":
            self._load(gen_net, "generator", self.gen_weight_path, "gen_weight_path").requires_grad_(False)
        elif self.mode == "generator":
            self._load(kp_net, "kp_detector", self.kp_weight_path, "kp_weight_path").requires_grad_(False)
        else:
            for net, name, path, key in ((kp_net, "kp_detector", self.kp_weight_path, "kp_weight_path"),
                                         (gen_net, "generator", self.gen_weight_path, "gen_weight_path")):
                if path is None:
                    raise ConfigError(f"model.mode 'both' needs model.{key}: the trained mobile {name}")
                self._load(net, name, path, key)

    def _load(self, net, name, path, key):
        from ..weights import load_into
        from ..weights.catalog import spec_by_filename

        if path is None:
            spec = spec_by_filename(VOX_WEIGHT_FILE)
            if spec is None:
                raise ConfigError(f"model.mode '{self.mode}' needs model.{key}: the trained {name} "
                                  f"(PaddleGAN's {VOX_WEIGHT_FILE}), kept fixed while the other net trains")
            path = spec
        try:  # like the VGG weights, nothing is downloaded here (`ppgan download` fills the cache)
            return load_into(net, path, name=name, download=False)
        except CheckpointError as e:
            raise CheckpointError(f"model.{key}: {e}") from None

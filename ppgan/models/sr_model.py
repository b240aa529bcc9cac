"""Single-image super-resolution trained with a pixel loss: PaddleGAN's `BaseSRModel` (ESRGAN's
PSNR stage, LESRCNN, PAN, ...) and `RCANModel`.

PaddleGAN `ppgan/models/sr_model.py` and `rcan_model.py`: config keys, `self.nets` name
(`generator`), loss name (`loss_pixel`). Inference (`test_iter`) pads inputs of any size to what
the generator needs and crops the result (`ppgan.utils.inference.padded_forward`).
"""
import math

import torch
from torch import nn

from ..utils.errors import ConfigError, PPGANError
from ..utils.inference import padded_forward
from .base_model import BaseModel
from .builder import MODELS
from .criterions.builder import build_criterion
from .generators.builder import build_generator


@torch.no_grad()
def reset_parameters_(module):
    """PaddleGAN's `reset_parameters` (= PyTorch's default conv / linear init): weight and bias
    uniform in +-1/sqrt(fan_in). Applies to a module's own `weight` (>= 2-D) and `bias`."""
    weight = module.weight
    fan_in = weight.shape[1] * math.prod(weight.shape[2:])
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    nn.init.uniform_(weight, -bound, bound)
    if getattr(module, "bias", None) is not None:
        nn.init.uniform_(module.bias, -bound, bound)


def _resettable(m):
    w = getattr(m, "weight", None)
    # conv / linear / deformable-conv weights; norms (1-D weights) and fixed layers keep theirs
    return isinstance(w, nn.Parameter) and w.ndim >= 2 and w.requires_grad


def init_sr_weight(net, skip=()):
    """PaddleGAN's `init_sr_weight`: `reset_parameters_` on every trainable conv / linear of
    `net`, except inside modules of the types in `skip` (which keep their own init)."""
    def visit(m):
        if skip and isinstance(m, skip):
            return
        if _resettable(m):
            reset_parameters_(m)
        for child in m.children():
            visit(child)

    visit(net)
    return net


@MODELS.register()
class BaseSRModel(BaseModel):
    """Super-resolution with one generator and a pixel loss.

    Args:
        generator (dict): generator config (RRDBNet, LESRCNNGenerator, PAN, RCAN, MSRResNet, ...).
        pixel_criterion (dict | None): pixel loss config (L1Loss, MSELoss, CharbonnierLoss);
            needed for training, not for inference.
        use_init_weight (bool): re-initialise the generator's convs with PyTorch's / Paddle's
            `reset_parameters` (PaddleGAN's PAN config; default False).
        to_static, image_shape: PaddleGAN's static-graph switches; accepted and ignored.
    Batches: {'lq': [N, C, h, w], 'gt': [N, C, s*h, s*w] (optional at test time), 'lq_path'},
    values in `min_max` ([0, 1]).
    Losses (train_iter): loss_pixel.
    `visual_items` (lq, output, gt) are mapped to [-1, 1], the range of the trainer's grids.
    """

    min_max = (0.0, 1.0)  # value range of lq / gt / output
    loss_name = "loss_pixel"

    def __init__(self, generator, pixel_criterion=None, use_init_weight=False, to_static=False,
                 image_shape=None):
        super().__init__()
        self.nets["generator"] = build_generator(generator)
        if use_init_weight:
            init_sr_weight(self.nets["generator"])
        self.pixel_criterion = build_criterion(pixel_criterion) if pixel_criterion else None
        self.lq = self.gt = self.output = None
        self.image_paths = None

    # ---- runtime / inputs ------------------------------------------------------------------
    def setup_runtime(self, device=None, scaler=None, distributed=False):
        super().setup_runtime(device, scaler, distributed)
        nets = list(self.nets.values())
        for value in vars(self).values():  # criteria with weights or buffers (e.g. the VGG)
            if isinstance(value, nn.Module) and all(value is not n for n in nets):
                value.to(self.device)

    def setup_input(self, input):
        self.lq = input["lq"].to(self.device, non_blocking=True)
        self.gt = input["gt"].to(self.device, non_blocking=True) if "gt" in input else None
        self.image_paths = input.get("lq_path")
        self.output = None
        self._set_visuals()

    def _need_gt(self):
        if self.gt is None:
            raise PPGANError(f"{type(self).__name__} training needs 'gt' images in every batch")
        return self.gt

    def _need(self, criterion, key):
        if criterion is None:
            raise ConfigError(f"{type(self).__name__} training needs model.{key}")
        return criterion

    # ---- training ----------------------------------------------------------------------------
    def train_iter(self, optimizers=None):
        gt = self._need_gt()
        criterion = self._need(self.pixel_criterion, "pixel_criterion")
        opt = self.optimizer_for("generator", optimizers)
        opt.zero_grad(set_to_none=True)
        output = self.nets["generator"](self.lq)
        loss = criterion(output, gt)
        if getattr(criterion, "higher_is_better", False):  # a similarity (SSIM) is maximised
            loss = -loss
        value = loss.detach()
        if self.accept_step(value):
            self.backward(loss)
            self.optimizer_step(opt)
        self.output = self.keep(output)
        self._set_visuals()
        return {self.loss_name: value}

    def accept_step(self, loss_value):
        """Whether to apply this iteration's update (subclasses may skip exploding batches).
        `loss_value` is a detached 0-dim tensor; reading it (float()) waits for the device, so
        the base class never does."""
        return True

    # ---- evaluation --------------------------------------------------------------------------
    def forward_any_size(self, lq):
        """generator(lq) for any input size (padded to what the net needs, cropped back)."""
        return padded_forward(self.nets["generator"], lq)

    @torch.no_grad()
    def test_iter(self, metrics=None):
        """output = generator(lq) in eval mode; metrics get (output, gt) as tensors in [0, 1]."""
        net = self.nets["generator"]
        was_training = net.training
        net.eval()
        try:
            self.output = self.forward_any_size(self.lq)
        finally:
            net.train(was_training)
        self._set_visuals()
        if self.gt is not None:
            self.score(metrics)

    def score(self, metrics):
        """Update the metrics with the current (output, gt)."""
        self.update_metrics(metrics, self.output, self.gt)

    def to_unit(self, x):
        """Images in `min_max` -> float in [0, 1] (clipped)."""
        low, high = self.min_max
        return ((x.float() - low) / (high - low)).clamp_(0.0, 1.0)

    def update_metrics(self, metrics, output, gt, is_seq=False):
        for metric in (metrics or {}).values():
            if getattr(metric, "needs_class_id", False):  # class-conditional metrics do not apply
                continue
            if is_seq:
                metric.update(self.to_unit(output), self.to_unit(gt), is_seq=True)
            else:
                metric.update(self.to_unit(output), self.to_unit(gt))

    def _visual_images(self):
        """name -> [N, C, H, W] image batch in `min_max` (video models pick frames)."""
        return {"lq": self.lq, "output": self.output, "gt": self.gt}

    def _set_visuals(self):
        self.visual_items.clear()
        for name, t in self._visual_images().items():
            if t is not None:
                self.visual_items[name] = self.to_unit(t.detach()) * 2.0 - 1.0


@MODELS.register()
class RCANModel(BaseSRModel):
    """RCAN training as PaddleGAN's `RCANModel`: images in [0, 255] (`min_max`), and a step is
    skipped when the loss exceeds 1e6 times a reference updated every 1000 iterations (the
    EDSR code base's guard against exploding batches).

    Args:
        generator (dict): generator config (RCAN).
        pixel_criterion (dict | None): pixel loss config (L1Loss in PaddleGAN's config).
        use_init_weight (bool): as `BaseSRModel` (default False).
    Losses (train_iter): loss_pixel.
    """

    min_max = (0.0, 255.0)
    SKIP_THRESHOLD = 1e6

    def __init__(self, generator, pixel_criterion=None, use_init_weight=False):
        super().__init__(generator, pixel_criterion, use_init_weight)
        self.error_last = 1e8
        self.batch = 0

    def accept_step(self, loss_value):
        # the guard is host control flow on the loss: one device read per step, RCAN only
        loss_value = float(loss_value)
        accept = loss_value < self.SKIP_THRESHOLD * self.error_last
        self.batch += 1
        if self.batch % 1000 == 0:
            self.error_last = loss_value / 1000
        return accept

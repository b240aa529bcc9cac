"""BasicVSR training (Chan et al., CVPR 2021, https://arxiv.org/abs/2012.02181).

PaddleGAN `ppgan/models/basicvsr_model.py`: config keys (`fix_iter`, `lr_mult`), `self.nets`
name (`generator`), loss name (`loss_pixel`), sequence metrics (`is_seq`). Used by BasicVSR,
BasicVSR++ and IconVSR (and, through `MultiStageVSRModel`, PP-MSVSR). The optical-flow net
(`spynet`, and IconVSR's EDVR extractor `edvr`) is frozen for the first `fix_iter` iterations;
after that SPyNet learns at `lr_mult` times the generator's learning rate and `edvr` at the full
rate (PaddleGAN sets the multiplier on `spynet` parameters only).

Differences from PaddleGAN:
  * `lr_mult` is applied by scaling the flow net's update after each optimizer step
    (p_old + lr_mult * (p_new - p_old)). Paddle sets a per-parameter learning rate instead;
    for Adam, AdamW and SGD the step is linear in the learning rate, so the two are the same,
    while the optimizer keeps one parameter group (checkpoints and LR schedules unchanged).
    PaddleGAN applies `lr_mult` only when `fix_iter` > 0; here it applies whenever the flow
    net learns.
  * The freeze follows the trainer's iteration counter, so a resumed run is frozen again when
    it restarts inside the first `fix_iter` iterations.
  * Evaluation measures every clip of the batch (PaddleGAN: the first one only).
"""
import torch

from ..modules.flow import SPyNet
from ..modules.sr_blocks import PixelShufflePack, ResidualBlockNoBN
from ..utils.inference import padded_video_forward
from .builder import MODELS
from .generators.iconvsr import EDVRFeatureExtractor
from .sr_model import BaseSRModel, init_sr_weight

FLOW_NET_KEYS = ("spynet", "edvr")  # parameter-name parts of the pretrained alignment nets (frozen first)
LR_MULT_KEYS = ("spynet",)  # those that then learn at lr_mult (PaddleGAN: IconVSR's edvr at the full rate)


def init_basicvsr_weight(net):
    """PaddleGAN's `init_basicvsr_weight`: default init on convs outside residual blocks,
    upsamplers, the flow nets (SPyNet, MSVSR's ModifiedSPyNet) and IconVSR's EDVR extractor."""
    return init_sr_weight(net, skip=(ResidualBlockNoBN, PixelShufflePack, SPyNet, EDVRFeatureExtractor))


@MODELS.register()
class BasicVSRModel(BaseSRModel):
    """Args:
        generator (dict): generator config (BasicVSRNet, BasicVSRPlusPlus, IconVSR; PaddleGAN's
            basicvsr_reds, basicvsr++_*, iconvsr_reds configs).
        fix_iter (int): iterations with the flow net frozen (5000 in PaddleGAN's config;
            default 0).
        lr_mult (float): learning-rate multiplier of the flow net once it learns (0.125 in
            PaddleGAN's config; default 1.0).
        pixel_criterion (dict | None): pixel loss config (CharbonnierLoss).
    Batches: {'lq': [N, T, 3, h, w], 'gt': [N, T, 3, 4h, 4w], 'lq_path'}, values in [0, 1];
    h, w >= 64 for training (inference pads smaller frames).
    Losses (train_iter): loss_pixel.
    """

    def __init__(self, generator, fix_iter=0, lr_mult=1.0, pixel_criterion=None):
        super().__init__(generator, pixel_criterion)
        self.fix_iter = int(fix_iter or 0)
        self.lr_mult = float(lr_mult)
        if self.fix_iter < 0 or self.lr_mult < 0:
            raise ValueError(f"fix_iter and lr_mult must be >= 0, got {fix_iter} and {lr_mult}")
        named = list(self.nets["generator"].named_parameters())
        self.flow_params = [p for name, p in named if any(k in name for k in FLOW_NET_KEYS)]
        self.lr_mult_params = [p for name, p in named if any(k in name for k in LR_MULT_KEYS)]
        self._flow_frozen = None  # phase the parameters are set for (None: not set yet)
        init_basicvsr_weight(self.nets["generator"])

    def set_flow_frozen(self, frozen):
        if frozen == self._flow_frozen:
            return
        for p in self.flow_params:
            p.requires_grad_(not frozen)
        self._flow_frozen = frozen

    def train_iter(self, optimizers=None):
        gt = self._need_gt()
        criterion = self._need(self.pixel_criterion, "pixel_criterion")
        self.set_flow_frozen(self.fix_iter > 0 and self.current_iter < self.fix_iter)
        opt = self.optimizer_for("generator", optimizers)
        opt.zero_grad(set_to_none=True)
        loss, losses, output = self.training_losses(self.nets["generator"](self.lq), gt, criterion)
        self.backward(loss)
        self.step_scaling_flow_net(opt)
        self.output = self.keep(output)
        self._set_visuals()
        return losses

    def training_losses(self, output, gt, criterion):
        """(the loss to minimise, {name: detached value} to log, the restored clip) of the
        generator's output."""
        loss = criterion(output, gt)
        return loss, {self.loss_name: loss.detach()}, output

    def step_scaling_flow_net(self, opt):
        """Optimizer step; SPyNet's update (when it learns) is then scaled by lr_mult."""
        scaled = [p for p in self.lr_mult_params if p.requires_grad] if self.lr_mult != 1.0 else []
        before = [p.detach().clone() for p in scaled]
        self.optimizer_step(opt)
        if scaled:
            with torch.no_grad():
                for p, old in zip(scaled, before):
                    p.copy_(torch.lerp(old, p, self.lr_mult))  # old + lr_mult * (new - old)

    @staticmethod
    def final_output(out):
        """The restored clip of a generator's output: multi-stage nets (MSVSR) return
        (auxiliary, final)."""
        return out[-1] if isinstance(out, (tuple, list)) else out

    def forward_any_size(self, lq):
        net = self.nets["generator"]
        return padded_video_forward(lambda x: self.final_output(net(x)), lq,
                                    multiple=int(getattr(net, "SIZE_MULTIPLE", 1)),
                                    min_size=int(getattr(net, "MIN_SIZE", 1)))

    def score(self, metrics):
        """Every clip's frames give one sequence result per metric."""
        for out_clip, gt_clip in zip(self.output, self.gt):
            self.update_metrics(metrics, out_clip, gt_clip, is_seq=True)

    def _visual_images(self):
        def first(t):
            return t[:, 0] if t is not None else None

        return {"lq": first(self.lq), "output": first(self.output), "gt": first(self.gt)}

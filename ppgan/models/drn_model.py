"""DRN training: the primal SR network plus dual networks that map each output back down
(Guo et al., "Closed-loop Matters: Dual Regression Networks for Single Image Super-Resolution",
CVPR 2020, https://arxiv.org/abs/2003.07018).

PaddleGAN `ppgan/models/drn_model.py`: config keys (`lq_loss_weight`, `dual_loss_weight`), nets
(`generator`, `dual_model_0`, `dual_model_1`, ...; PaddleGAN's config gives the primal and the
dual nets separate optimizers, `optimG` / `optimD`), losses (`loss_primary`, spelt `loss_promary`
in PaddleGAN's logs, `loss_dual`, `loss_total`). Images are in [0, rgb_range] ([0, 255] in
PaddleGAN's config); the batch carries `lqx2`, the x2 image between `lq` and `gt`, for x4.
"""
import torch

from ..modules.init import init_weights
from ..utils.errors import ConfigError, PPGANError
from ..utils.inference import padded_forward
from .builder import MODELS
from .generators.drn import DownBlock, parse_scale
from .sr_model import BaseSRModel


def init_weights_keep_fixed(net):
    """PaddleGAN's `init_weights` (N(0, 0.02) conv weights, zero biases), leaving the fixed
    parameters alone: Paddle's version picks layers by class name, which skips `MeanShift`."""
    fixed = {n: p.detach().clone() for n, p in net.named_parameters() if not p.requires_grad}
    init_weights(net)
    with torch.no_grad():
        for n, p in net.named_parameters():
            if n in fixed:
                p.copy_(fixed[n])
    return net


@MODELS.register()
class DRN(BaseSRModel):
    """Dual regression SR.

    Losses, with sr = generator(lq) = [s_0 (size of lq), s_1 (x2), ..., s_P (xscale)] and
    lr = [lq, lqx2, ...] (one image per phase P = len(scale)):
        primal = L(s_P, gt) + lq_loss_weight * sum_{i<P} L(s_i, lr_i)
        dual   = L(dual_0(s_{1}), lr_0) + dual_loss_weight * sum_{i>0} L(dual_i(s_{i+1}), lr_i)
    and one step of every optimizer on primal + dual.

    Args:
        generator (dict): DRNGenerator config (its `scale`, `n_feats`, `n_colors`, `negval` size the
            dual nets).
        lq_loss_weight (float): weight of the intermediate outputs' losses (default 0.1).
        dual_loss_weight (float): weight of the dual losses above the lowest level (default 0.1).
        pixel_criterion (dict | None): pixel loss config (L1Loss in PaddleGAN's config).
        discriminator, perceptual_criterion, gan_criterion: PaddleGAN builds these but never uses
            them; must be unset.
        params: PaddleGAN's unused extra dict; accepted and ignored.
    Batches: {'lq': [N, C, h, w], 'lqx2': [N, C, 2h, 2w] (needed for x4 training), 'gt':
    [N, C, s*h, s*w], 'lq_path'}, values in [0, rgb_range].
    Losses (train_iter): loss_primary, loss_dual, loss_total.
    """

    def __init__(self, generator, lq_loss_weight=0.1, dual_loss_weight=0.1, discriminator=None,
                 pixel_criterion=None, perceptual_criterion=None, gan_criterion=None, params=None):
        for key, value in (("discriminator", discriminator), ("perceptual_criterion", perceptual_criterion),
                           ("gan_criterion", gan_criterion)):
            if value:
                raise ConfigError(f"DRN does not use model.{key} (PaddleGAN builds it but never trains it); remove it")
        super().__init__(generator, pixel_criterion)
        self.lq_loss_weight = float(lq_loss_weight)
        self.dual_loss_weight = float(dual_loss_weight)
        net = self.nets["generator"]
        init_weights_keep_fixed(net)
        self.scale = parse_scale(net.scale)
        if len(self.scale) > 2:
            raise ConfigError(f"DRN trains x2 or x4 (scale (2,) or (2, 4)); its batches carry no image "
                              f"for the levels of scale {self.scale}")
        for i in range(len(self.scale)):
            self.nets[f"dual_model_{i}"] = init_weights(DownBlock(net.negval, net.n_feats, net.n_colors, 2))
        self.min_max = (0.0, float(net.rgb_range))
        self.lqx2 = None

    def setup_input(self, input):
        self.lqx2 = input["lqx2"].to(self.device, non_blocking=True) if "lqx2" in input else None
        super().setup_input(input)

    def _low_res(self):
        """[lq, lqx2][:phases]: the targets of the outputs below the SR one."""
        lr = [self.lq]
        if len(self.scale) == 2:
            if self.lqx2 is None:
                raise PPGANError("DRN x4 training needs 'lqx2' images in every batch (SRPairedRandomCrop "
                                 "with scale_list: true and output_keys [lq, lqx2, gt])")
            lr.append(self.lqx2)
        return lr

    def _optimizers(self, optimizers):
        """The optimizers of every net, each once (PaddleGAN: optimG for the primal, optimD for the duals)."""
        found = []
        for name in self.nets:
            opt = self.optimizer_for(name, optimizers)
            if all(opt is not o for o in found):
                found.append(opt)
        return found

    def train_iter(self, optimizers=None):
        hr = self._need_gt()
        criterion = self._need(self.pixel_criterion, "pixel_criterion")
        lr = self._low_res()
        opts = self._optimizers(optimizers)
        for opt in opts:
            opt.zero_grad(set_to_none=True)

        sr = self.nets["generator"](self.lq)  # len(scale) + 1 levels, lowest first
        phases = len(self.scale)
        # dual regression: level i + 1 mapped back onto level i
        sr2lr = [self.nets[f"dual_model_{i}"](sr[i + 1]) for i in range(phases)]

        loss_primary = criterion(sr[-1], hr)
        if self.lq_loss_weight > 0:
            for i in range(phases):
                loss_primary = loss_primary + self.lq_loss_weight * criterion(sr[i], lr[i])
        loss_dual = criterion(sr2lr[0], lr[0])
        if self.dual_loss_weight > 0:
            for i in range(1, phases):
                loss_dual = loss_dual + self.dual_loss_weight * criterion(sr2lr[i], lr[i])
        loss_total = loss_primary + loss_dual

        self.backward(loss_total)
        for opt in opts:
            self.optimizer_step(opt)
        self.output = self.keep(sr[-1])
        self._set_visuals()
        return {"loss_primary": loss_primary.detach(), "loss_dual": loss_dual.detach(),
                "loss_total": loss_total.detach()}

    def forward_any_size(self, lq):
        return padded_forward(self.nets["generator"], lq)[-1]

    def _visual_images(self):
        return {"lq": self.lq, "lqx2": self.lqx2, "output": self.output, "gt": self.gt}

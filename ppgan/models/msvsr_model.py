"""PP-MSVSR training: PaddleGAN's `MultiStageVSRModel` (`ppgan/models/msvsr_model.py`).

Jiang et al., "PP-MSVSR: Multi-Stage Video Super-Resolution", 2021, https://arxiv.org/abs/2112.02828.
Config keys (`fix_iter`, `to_static`, `image_shape`), `self.nets` name (`generator`) and loss names
(`loss_pix`, `loss_pix_stage2`, `loss`) are PaddleGAN's. As in `BasicVSRModel`, the flow net
(`spynet`) is frozen for the first `fix_iter` iterations and then learns at 0.25 x the learning
rate (PaddleGAN's fixed multiplier for this model; no `lr_mult` key).

`fix_iter` as PaddleGAN reads it: 0 (or absent) lets the flow net learn from the first iteration;
a negative value (`msvsr_vimeo90k_BD.yaml` says -1) freezes it for the first iteration only (in
PaddleGAN -1 passes its `if fix_iter` test, freezes at iteration 1 and unfreezes from iteration 2).
"""
from .basicvsr_model import BasicVSRModel
from .builder import MODELS


@MODELS.register()
class MultiStageVSRModel(BasicVSRModel):
    """Args:
        generator (dict): generator config (MSVSR).
        fix_iter (int): iterations with the flow net frozen (2500 in PaddleGAN's REDS configs).
        pixel_criterion (dict | None): pixel loss config (CharbonnierLoss), applied to the final
            output and, for nets that return (auxiliary, final), to the auxiliary output too.
        to_static, image_shape: PaddleGAN's static-graph switches; accepted and ignored.
    Batches: {'lq': [N, T, 3, h, w], 'gt': [N, T, 3, 4h, 4w], 'lq_path'}, values in [0, 1].
    Losses (train_iter): loss_pix_stage2 (with an auxiliary output), loss_pix, loss (their sum,
    the one optimised).
    """

    FLOW_LR_MULT = 0.25

    def __init__(self, generator, fix_iter=0, pixel_criterion=None, to_static=False, image_shape=None):
        fix_iter = int(fix_iter or 0)
        super().__init__(generator, fix_iter=1 if fix_iter < 0 else fix_iter, lr_mult=self.FLOW_LR_MULT,
                         pixel_criterion=pixel_criterion)

    def training_losses(self, output, gt, criterion):
        terms = {}
        if isinstance(output, (tuple, list)):
            aux, output = output
            terms["loss_pix_stage2"] = criterion(aux, gt)
        terms["loss_pix"] = criterion(output, gt)
        loss = sum(terms.values())
        logged = {k: v.detach() for k, v in terms.items()}
        logged["loss"] = loss.detach()
        return loss, logged, output

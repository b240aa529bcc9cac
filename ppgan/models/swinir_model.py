"""SwinIR image restoration training (Liang et al., ICCVW 2021, https://arxiv.org/abs/2108.10257).

PaddleGAN `ppgan/models/swinir_model.py`: config keys (`generator`, `char_criterion`), `self.nets`
name (`generator`), loss name (`loss`). Batches are ours ({'lq', 'gt', ...}) or PaddleGAN's
(target, input, filename) sequences.
"""
from .builder import MODELS
from .nafnet_model import paddle_restoration_batch
from .sr_model import BaseSRModel


@MODELS.register()
class SwinIRModel(BaseSRModel):
    """Args:
        generator (dict): generator config (SwinIR).
        char_criterion (dict | None): the loss (CharbonnierLoss in PaddleGAN's config); needed
            for training only.
    Batches: {'lq': [N, C, H, W], 'gt': [N, C, sH, sW] (optional at test time), 'lq_path'},
    values in [0, 1] (the noisy lq may leave that range).
    Losses (train_iter): loss.
    """

    loss_name = "loss"

    def __init__(self, generator, char_criterion=None):
        super().__init__(generator, pixel_criterion=char_criterion)

    def setup_input(self, input):
        super().setup_input(paddle_restoration_batch(input))

    def _need(self, criterion, key):
        return super()._need(criterion, "char_criterion" if key == "pixel_criterion" else key)

"""NAFNet image restoration training (Chen et al., ECCV 2022, https://arxiv.org/abs/2204.04676).

PaddleGAN `ppgan/models/nafnet_model.py`: config keys (`generator`, `psnr_criterion`), `self.nets`
name (`generator`), loss name (`loss`). Batches are ours ({'lq', 'gt', ...}) or PaddleGAN's
(target, input, filename) sequences.
"""
from .builder import MODELS
from .sr_model import BaseSRModel


def paddle_restoration_batch(input):
    """PaddleGAN's restoration batches are sequences (target, input[, filename]): as a dict."""
    if isinstance(input, (list, tuple)):
        batch = {"gt": input[0], "lq": input[1]}
        if len(input) > 2:
            batch["lq_path"] = input[2]
        return batch
    return input


@MODELS.register()
class NAFNetModel(BaseSRModel):
    """Args:
        generator (dict): generator config (NAFNet).
        psnr_criterion (dict | None): the loss (PSNRLoss in PaddleGAN's config); needed for
            training only.
    Batches: {'lq': [N, C, H, W], 'gt': same (optional at test time), 'lq_path'}, values in [0, 1].
    Losses (train_iter): loss.
    """

    loss_name = "loss"

    def __init__(self, generator, psnr_criterion=None):
        super().__init__(generator, pixel_criterion=psnr_criterion)

    def setup_input(self, input):
        super().setup_input(paddle_restoration_batch(input))

    def _need(self, criterion, key):
        return super()._need(criterion, "psnr_criterion" if key == "pixel_criterion" else key)

"""PReNet deraining training (Ren et al., CVPR 2019, https://arxiv.org/abs/1901.09221).

PaddleGAN `ppgan/models/prenet_model.py`: config keys, `self.nets` name (`generator`), loss name
(`loss_pixel`). PaddleGAN's config trains with `pixel_criterion: {name: SSIM}` and minimises
minus the SSIM; that criterion is `ppgan.models.criterions.ssim.SSIM` (PaddleGAN's `criterions/ssim.py`).
"""
from .builder import MODELS
from .criterions.ssim import SSIM, gaussian_window, ssim  # noqa: F401  (PaddleGAN's criterion; re-exported)
from .sr_model import BaseSRModel


@MODELS.register()
class PReNetModel(BaseSRModel):
    """PReNet: rainy `lq` -> clean `gt`, same size.

    Args:
        generator (dict): generator config (PReNet).
        pixel_criterion (dict | None): the training criterion. A similarity (SSIM, as in
            PaddleGAN's config) is maximised: the loss is its negative. A loss (L1Loss, ...) is
            minimised as it is (PaddleGAN negates any criterion, which would maximise an L1).
    Batches: {'lq': [N, 3, H, W], 'gt': [N, 3, H, W], 'lq_path'}, values in [0, 1].
    Losses (train_iter): loss_pixel.
    """


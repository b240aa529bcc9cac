"""ESRGAN (Wang et al., ECCVW 2018, https://arxiv.org/abs/1809.00219): RRDBNet trained with
pixel + perceptual + relativistic-average GAN losses; also RealSR's training (same model).

PaddleGAN `ppgan/models/esrgan_model.py`: config keys, `self.nets` names (`generator`,
`discriminator`), loss names and update order (G step, then D step). The relativistic average
GAN (RaGAN, Jolicoeur-Martineau, https://arxiv.org/abs/1807.00734) is built here from a plain
`GANLoss` (gan_mode 'vanilla' in the configs) on differences of D outputs, as PaddleGAN and
BasicSR do. Without a discriminator the model is the PSNR-oriented stage.
"""
import torch

from ..utils.errors import ConfigError
from .builder import MODELS
from .criterions.builder import build_criterion
from .discriminators.builder import build_discriminator
from .sr_model import BaseSRModel


@MODELS.register()
class ESRGAN(BaseSRModel):
    """Args:
        generator (dict): generator config (RRDBNet).
        discriminator (dict | None): discriminator config (VGGDiscriminator128); None trains
            the generator alone (PSNR-oriented stage).
        pixel_criterion (dict | None): pixel loss (L1Loss, loss_weight 1e-2 in the GAN stage).
        perceptual_criterion (dict | None): PerceptualLoss config (VGG19 layer '34').
        gan_criterion (dict | None): GANLoss config; needed with a discriminator.
    Batches: as `BaseSRModel` ({'lq', 'gt'} in [0, 1]).
    Losses (train_iter): loss_pix (with a pixel criterion), loss_percep / loss_style (with a
    perceptual criterion whose weight is > 0), and with a discriminator: l_g_gan, l_d_real,
    l_d_fake, plus out_d_real / out_d_fake (mean D outputs, for monitoring).
    G minimises the sum of its terms; D minimises l_d_real + l_d_fake.
    """

    def __init__(self, generator, discriminator=None, pixel_criterion=None, perceptual_criterion=None,
                 gan_criterion=None):
        # first, so that a missing VGG weight file fails before the large nets are built
        perceptual = build_criterion(perceptual_criterion) if perceptual_criterion else None
        super().__init__(generator, pixel_criterion)
        if bool(discriminator) != bool(gan_criterion):
            raise ConfigError("ESRGAN needs discriminator and gan_criterion together (or neither, "
                              "for the PSNR-oriented stage)")
        if discriminator:
            self.nets["discriminator"] = build_discriminator(discriminator)
        self.perceptual_criterion = perceptual
        self.gan_criterion = build_criterion(gan_criterion) if gan_criterion else None

    def train_iter(self, optimizers=None):
        gt = self._need_gt()
        net_g, net_d = self.nets["generator"], self.nets.get("discriminator")
        opt_g = self.optimizer_for("generator", optimizers)
        crit = self.gan_criterion
        output = net_g(self.lq)

        # G step: pixel, perceptual and (with D frozen) relativistic adversarial terms.
        opt_g.zero_grad(set_to_none=True)
        losses = {}
        if self.pixel_criterion is not None:
            losses["loss_pix"] = self.pixel_criterion(output, gt)
        if self.perceptual_criterion is not None:
            percep, style = self.perceptual_criterion(output, gt)
            if percep is not None:
                losses["loss_percep"] = percep
            if style is not None:
                losses["loss_style"] = style
        if net_d is not None:
            with self.frozen(net_d):
                with torch.no_grad():
                    real_d_pred = net_d(gt)
                fake_g_pred = net_d(output)
                # RaGAN: real should look less real than the average fake, fake more real than
                # the average real (ESRGAN eq. 2-3).
                l_g_real = crit(real_d_pred - fake_g_pred.mean(), False)
                l_g_fake = crit(fake_g_pred - real_d_pred.mean(), True)
                losses["l_g_gan"] = (l_g_real + l_g_fake) / 2
        if not losses:
            raise ConfigError("ESRGAN training needs a pixel_criterion, a perceptual_criterion or a discriminator")
        self.backward(sum(losses.values()))
        self.optimizer_step(opt_g)

        # D step on (real, detached fake). Both D outputs are taken once, in train mode; each
        # relativistic term uses the other's mean as a constant, as PaddleGAN / BasicSR.
        if net_d is not None:
            opt_d = self.optimizer_for("discriminator", optimizers)
            opt_d.zero_grad(set_to_none=True)
            real_d_pred = net_d(gt)
            fake_d_pred = net_d(output.detach())
            l_d_real = crit(real_d_pred - fake_d_pred.detach().mean(), True, is_disc=True) * 0.5
            l_d_fake = crit(fake_d_pred - real_d_pred.detach().mean(), False, is_disc=True) * 0.5
            self.backward(l_d_real + l_d_fake)
            self.optimizer_step(opt_d)
            losses.update(l_d_real=l_d_real, l_d_fake=l_d_fake, out_d_real=real_d_pred.detach().mean(),
                          out_d_fake=fake_d_pred.detach().mean())

        self.output = self.keep(output)
        self._set_visuals()
        return {k: v.detach() for k, v in losses.items()}

"""pix2pix: paired image-to-image translation with a conditional GAN (Isola et al., 2017,
https://arxiv.org/abs/1611.07004).

PaddleGAN's `Pix2PixModel` (ppgan/models/pix2pix_model.py): config keys, `self.nets` names
(`netG`, `netD`), loss names and update order. One difference: PaddleGAN compares `direction`
with 'AtoB', which no config spells, so every PaddleGAN run translates B -> A. Here 'a2b'
means A -> B and 'b2a' B -> A; PaddleGAN's own configs say 'b2a', so they behave as there.
"""
import torch

from ..modules.init import init_weights
from ..utils.errors import ConfigError
from .builder import MODELS
from .criterions.builder import build_criterion
from .discriminators.builder import build_discriminator
from .generators.builder import build_generator
from ..utils.inference import padded_forward
from .translation_base import TranslationModel


@MODELS.register()
class Pix2PixModel(TranslationModel):
    """G(real_A) ~ real_B, judged by a discriminator that sees the input beside the output.

    Args:
        generator (dict): generator config (e.g. UnetGenerator).
        discriminator (dict | None): discriminator config; its input_nc is input + output
            channels (D reads concat(real_A, B)). None builds an inference-only model.
        pixel_criterion (dict | None): L1 term of the generator loss (PaddleGAN configs:
            L1Loss, loss_weight 100). None: no pixel term.
        gan_criterion (dict | None): GANLoss config; needed with a discriminator.
        direction (str): 'a2b' (default) or 'b2a'.
        to_static, image_shape: PaddleGAN's static-graph switches; accepted and ignored.
    Losses (train_iter): D_fake_loss, D_real_loss, G_adv_loss, and G_L1_loss with a pixel
    criterion. D minimises (D_fake_loss + D_real_loss) / 2, G minimises G_adv_loss + G_L1_loss.
    """

    def __init__(self, generator, discriminator=None, pixel_criterion=None, gan_criterion=None,
                 direction="a2b", to_static=False, image_shape=None):
        super().__init__(direction)
        self.nets["netG"] = init_weights(build_generator(generator))
        if discriminator:
            if not gan_criterion:
                raise ConfigError("Pix2PixModel with a discriminator needs gan_criterion")
            self.nets["netD"] = init_weights(build_discriminator(discriminator))
        self.pixel_criterion = build_criterion(pixel_criterion) if pixel_criterion else None
        self.gan_criterion = build_criterion(gan_criterion) if gan_criterion else None
        self.fake_B = None

    def train_iter(self, optimizers=None):
        real_A, real_B = self._pair()
        net_g, net_d = self.nets["netG"], self.nets["netD"]
        opt_g, opt_d = self.optimizer_for("netG", optimizers), self.optimizer_for("netD", optimizers)
        crit = self.gan_criterion
        fake_B = net_g(real_A)

        # D step: conditional D on (input, output) pairs; G's output is detached.
        opt_d.zero_grad(set_to_none=True)
        loss_d_fake = crit(net_d(torch.cat([real_A, fake_B.detach()], 1)), False, is_disc=True)
        loss_d_real = crit(net_d(torch.cat([real_A, real_B], 1)), True, is_disc=True)
        self.backward((loss_d_fake + loss_d_real) * 0.5)
        self.optimizer_step(opt_d)

        # G step with D frozen: fool D, and stay close to real_B.
        opt_g.zero_grad(set_to_none=True)
        losses = {"D_fake_loss": loss_d_fake, "D_real_loss": loss_d_real}
        with self.frozen(net_d):
            losses["G_adv_loss"] = crit(net_d(torch.cat([real_A, fake_B], 1)), True)
            loss_g = losses["G_adv_loss"]
            if self.pixel_criterion is not None:
                losses["G_L1_loss"] = self.pixel_criterion(fake_B, real_B)
                loss_g = loss_g + losses["G_L1_loss"]
            self.backward(loss_g)
        self.optimizer_step(opt_g)

        self.fake_B = self.keep(fake_B)
        self._set_visuals()
        return {k: v.detach() for k, v in losses.items()}

    def _set_visuals(self):
        self.visual_items.clear()
        for name, t in (("real_A", self.real_A), ("fake_B", self.fake_B), ("real_B", self.real_B)):
            if t is not None:
                self.visual_items[name] = t.detach()

    @torch.no_grad()
    def test_iter(self, metrics=None):
        """fake_B = G(real_A) in eval mode; metrics get (fake_B, real_B) when real_B is given."""
        with self.eval_mode("netG"):
            self.fake_B = padded_forward(self.nets["netG"], self._source())
        self._set_visuals()
        self.update_metrics(metrics, self.fake_B, self.real_B)

"""CycleGAN: unpaired image-to-image translation with cycle consistency (Zhu et al., 2017,
https://arxiv.org/abs/1703.10593).

PaddleGAN's `CycleGANModel` (ppgan/models/cycle_gan_model.py): config keys, `self.nets` names,
loss names and update order (generators first, then discriminators on pooled fakes).
Naming as there (code vs. paper): netG_A = G (A -> B), netG_B = F (B -> A), netD_A = D_Y
(judges domain B), netD_B = D_X (judges domain A).
"""
import torch

from ..modules.init import init_weights
from ..utils.errors import ConfigError, PPGANError
from ..utils.image_pool import ImagePool
from .builder import MODELS
from .criterions.builder import build_criterion
from .discriminators.builder import build_discriminator
from .generators.builder import build_generator
from ..utils.inference import padded_forward
from .translation_base import TranslationModel

G_NAMES = ("netG_A", "netG_B")
D_NAMES = ("netD_A", "netD_B")
POOL_NAMES = ("fake_A_pool", "fake_B_pool")


@MODELS.register()
class CycleGANModel(TranslationModel):
    """Two generators and two discriminators trained with adversarial, cycle and identity losses.

    Args:
        generator (dict): generator config, built twice (netG_A, netG_B).
        discriminator (dict | None): discriminator config, built twice (netD_A, netD_B).
            None builds an inference-only model.
        cycle_criterion (dict | None): ||G_B(G_A(A)) - A|| loss (PaddleGAN: L1Loss); needed
            with a discriminator.
        idt_criterion (dict | None): identity loss ||G_A(B) - B|| (PaddleGAN: L1Loss with
            loss_weight 0.5). None: no identity term.
        gan_criterion (dict | None): GANLoss config (PaddleGAN: lsgan); needed with a discriminator.
        pool_size (int): fakes kept for the discriminators (default 50; 0: no pool).
        direction (str): 'a2b' (default) or 'b2a' (swaps the domains).
        lambda_a, lambda_b (float): weights of the A and B cycle losses (default 10); the
            identity losses are weighted lambda_b (G_A) and lambda_a (G_B), as PaddleGAN.
        to_static, image_shape: PaddleGAN's static-graph switches; accepted and ignored.
    Losses (train_iter): G_idt_A_loss, G_idt_B_loss (with an identity criterion), G_A_adv_loss,
    G_B_adv_loss, G_A_cycle_loss, G_B_cycle_loss (weighted; the generators minimise their sum),
    D_A_loss, D_B_loss ((real + fake) / 2 each).

    The image pools are part of `state_dict()` (keys 'fake_A_pool', 'fake_B_pool' beside the
    nets), so a resumed run continues with the same history.
    """

    def __init__(self, generator, discriminator=None, cycle_criterion=None, idt_criterion=None,
                 gan_criterion=None, pool_size=50, direction="a2b", lambda_a=10.0, lambda_b=10.0,
                 to_static=False, image_shape=None):
        super().__init__(direction)
        self.lambda_a, self.lambda_b = float(lambda_a), float(lambda_b)
        for name in G_NAMES:
            self.nets[name] = init_weights(build_generator(generator))
        if discriminator:
            missing = [k for k, v in (("gan_criterion", gan_criterion), ("cycle_criterion", cycle_criterion))
                       if not v]
            if missing:
                raise ConfigError(f"CycleGANModel with a discriminator needs {' and '.join(missing)}")
            for name in D_NAMES:
                self.nets[name] = init_weights(build_discriminator(discriminator))
        self.fake_A_pool = ImagePool(pool_size)
        self.fake_B_pool = ImagePool(pool_size)
        self.gan_criterion = build_criterion(gan_criterion) if gan_criterion else None
        self.cycle_criterion = build_criterion(cycle_criterion) if cycle_criterion else None
        self.idt_criterion = build_criterion(idt_criterion) if idt_criterion else None
        self.fake_A = self.fake_B = self.rec_A = self.rec_B = None

    # ---- training ------------------------------------------------------------------------
    def _d_loss(self, net_d, real, fake):
        crit = self.gan_criterion
        return (crit(net_d(real), True, is_disc=True) + crit(net_d(fake), False, is_disc=True)) * 0.5

    def train_iter(self, optimizers=None):
        real_A, real_B = self._pair()
        G_A, G_B = (self.nets[n] for n in G_NAMES)
        D_A, D_B = (self.nets[n] for n in D_NAMES)
        opts_g, opts_d = self.optimizers_for(G_NAMES, optimizers), self.optimizers_for(D_NAMES, optimizers)

        # G step with both Ds frozen.
        for opt in opts_g:
            opt.zero_grad(set_to_none=True)
        losses = {}
        with self.frozen(D_A, D_B):
            fake_B = G_A(real_A)
            rec_A = G_B(fake_B)
            fake_A = G_B(real_B)
            rec_B = G_A(fake_A)
            if self.idt_criterion is not None:
                losses["G_idt_A_loss"] = self.idt_criterion(G_A(real_B), real_B) * self.lambda_b
                losses["G_idt_B_loss"] = self.idt_criterion(G_B(real_A), real_A) * self.lambda_a
            losses["G_A_adv_loss"] = self.gan_criterion(D_A(fake_B), True)
            losses["G_B_adv_loss"] = self.gan_criterion(D_B(fake_A), True)
            losses["G_A_cycle_loss"] = self.cycle_criterion(rec_A, real_A) * self.lambda_a
            losses["G_B_cycle_loss"] = self.cycle_criterion(rec_B, real_B) * self.lambda_b
            self.backward(sum(losses.values()))
        for opt in opts_g:
            self.optimizer_step(opt)

        # D step on a history of fakes (the pools), generators detached.
        for opt in opts_d:
            opt.zero_grad(set_to_none=True)
        fake_A, fake_B = self.keep(fake_A), self.keep(fake_B)  # the pools keep them
        losses["D_A_loss"] = self._d_loss(D_A, real_B, self.fake_B_pool.query(fake_B))
        losses["D_B_loss"] = self._d_loss(D_B, real_A, self.fake_A_pool.query(fake_A))
        self.backward(losses["D_A_loss"] + losses["D_B_loss"])
        for opt in opts_d:
            self.optimizer_step(opt)

        self.fake_A, self.fake_B = fake_A, fake_B
        self.rec_A, self.rec_B = self.keep(rec_A), self.keep(rec_B)
        self._set_visuals()
        return {k: v.detach() for k, v in losses.items()}

    def _set_visuals(self):
        self.visual_items.clear()
        for name in ("real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"):
            t = getattr(self, name)
            if t is not None:
                self.visual_items[name] = t.detach()

    # ---- inference -------------------------------------------------------------------------
    @torch.no_grad()
    def test_iter(self, metrics=None):
        """Translate (and reconstruct) whichever of real_A / real_B the batch has; metrics get
        (fake_B, real_B) when both domains are given."""
        if self.real_A is None and self.real_B is None:
            raise PPGANError("CycleGANModel needs 'A' or 'B' images in the batch")
        G_A, G_B = (self.nets[n] for n in G_NAMES)
        self.fake_A = self.fake_B = self.rec_A = self.rec_B = None
        with self.eval_mode(*G_NAMES):
            if self.real_A is not None:
                self.fake_B = padded_forward(G_A, self.real_A)
                self.rec_A = padded_forward(G_B, self.fake_B)
            if self.real_B is not None:
                self.fake_A = padded_forward(G_B, self.real_B)
                self.rec_B = padded_forward(G_A, self.fake_A)
        self._set_visuals()
        self.update_metrics(metrics, self.fake_B, self.real_B)

    # ---- checkpoint state ----------------------------------------------------------------------
    def state_dict(self):
        state = super().state_dict()
        for name in POOL_NAMES:
            state[name] = getattr(self, name).state_dict()
        return state

    def load_state_dict(self, state, strict=True):
        super().load_state_dict({k: v for k, v in state.items() if k not in POOL_NAMES}, strict=strict)
        for name in POOL_NAMES:
            if name in state:  # weight-only files have no pools: they start empty
                getattr(self, name).load_state_dict(state[name], device=self.device)

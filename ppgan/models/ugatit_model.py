"""U-GAT-IT: unpaired translation with attention and adaptive layer-instance norm (Kim et al.,
2020, https://arxiv.org/abs/1907.10830).

PaddleGAN's `UGATITModel` (ppgan/models/ugatit_model.py, after znxlwm/UGATIT-pytorch): config
keys, `self.nets` names (genA2B, genB2A, disGA, disGB, disLA, disLB), loss weights, update order
(discriminators, then generators, then rho clipping) and its two logged losses
(discriminator_loss, generator_loss), plus the generator loss split by term.
"""
import torch

from ..modules.init import init_weights
from .builder import MODELS
from .criterions.builder import build_criterion
from .discriminators.builder import build_discriminator
from .generators.builder import build_generator
from ..utils.inference import padded_forward
from .translation_base import TranslationModel

G_NAMES = ("genA2B", "genB2A")
D_NAMES = ("disGA", "disGB", "disLA", "disLB")
CLIPPED = ("rho", "w_gamma", "w_beta")  # ILN / AdaILN mixing weights, Soft-AdaLIN blend weights


@torch.no_grad()
def clip_rho_(net, low=0.0, high=1.0):
    """Clamp every `rho`, `w_gamma`, `w_beta` parameter under `net` to [low, high] in place
    (PaddleGAN's `RhoClipper`, applied after each generator step)."""
    for module in net.modules():
        for name in CLIPPED:
            p = getattr(module, name, None)
            if isinstance(p, torch.nn.Parameter):
                p.clamp_(low, high)


def _init_keeping_spectral(net):
    """PaddleGAN's `init_weights` on a net with spectral-normed layers: there it writes into a
    copy of those layers' weights (`weight` is `weight_orig * 1.0`), so only their biases and the
    plain layers change. PyTorch's `weight` aliases `weight_orig` until the first forward, so
    the originals are put back."""
    saved = {n: p.detach().clone() for n, p in net.named_parameters() if n.endswith("weight_orig")}
    init_weights(net)
    with torch.no_grad():
        for n, p in net.named_parameters():
            if n in saved:
                p.copy_(saved[n])
    return net


def _to_target(loss_fn, logit, is_real):
    target = torch.ones_like(logit) if is_real else torch.zeros_like(logit)
    return loss_fn(logit, target)


@MODELS.register()
class UGATITModel(TranslationModel):
    """Two generators (A->B, B->A) returning (image, cam_logit, heatmap); per domain a global
    (disG*) and a local (disL*) discriminator returning (logits, cam_logit, heatmap).

    Args:
        generator (dict): generator config (ResnetUGATITGenerator or ResnetUGATITP2CGenerator),
            built twice.
        discriminator_g (dict | None): global discriminator config (UGATITDiscriminator,
            n_layers 7), built for each domain.
        discriminator_l (dict | None): local discriminator config (n_layers 5). Without both,
            an inference-only model is built.
        l1_criterion, mse_criterion, bce_criterion (dict | None): cycle / identity,
            adversarial (least squares) and CAM losses; default L1Loss, MSELoss,
            BCEWithLogitsLoss.
        direction (str): 'a2b' (default) or 'b2a' (swaps the domains).
        adv_weight, cycle_weight, identity_weight, cam_weight (float): loss weights (default
            1, 10, 10, 1000).
    Losses (train_iter): discriminator_loss, generator_loss (what D and G minimise), and the
    weighted terms of generator_loss: G_adv_loss, G_cycle_loss, G_identity_loss, G_cam_loss.
    """

    def __init__(self, generator, discriminator_g=None, discriminator_l=None, l1_criterion=None,
                 mse_criterion=None, bce_criterion=None, direction="a2b", adv_weight=1.0,
                 cycle_weight=10.0, identity_weight=10.0, cam_weight=1000.0):
        super().__init__(direction)
        self.adv_weight, self.cycle_weight = float(adv_weight), float(cycle_weight)
        self.identity_weight, self.cam_weight = float(identity_weight), float(cam_weight)
        for name in G_NAMES:
            self.nets[name] = init_weights(build_generator(generator))
        if discriminator_g and discriminator_l:
            for name in D_NAMES:
                cfg = discriminator_g if name.startswith("disG") else discriminator_l
                self.nets[name] = _init_keeping_spectral(build_discriminator(cfg))
        self.L1_loss = build_criterion(l1_criterion or {"name": "L1Loss"})
        self.MSE_loss = build_criterion(mse_criterion or {"name": "MSELoss"})
        self.BCE_loss = build_criterion(bce_criterion or {"name": "BCEWithLogitsLoss"})
        self.fake_A2B = self.fake_B2A = None

    # ---- training ------------------------------------------------------------------------
    def _d_adv(self, net_d, real, fake):
        """Least-squares D loss on one discriminator: logits and CAM logits, real -> 1, fake -> 0."""
        real_logit, real_cam, _ = net_d(real)
        fake_logit, fake_cam, _ = net_d(fake)
        mse = self.MSE_loss
        return (_to_target(mse, real_logit, True) + _to_target(mse, fake_logit, False)
                + _to_target(mse, real_cam, True) + _to_target(mse, fake_cam, False))

    def _g_adv(self, net_d, fake):
        logit, cam, _ = net_d(fake)
        return _to_target(self.MSE_loss, logit, True) + _to_target(self.MSE_loss, cam, True)

    def train_iter(self, optimizers=None):
        real_A, real_B = self._pair()
        gen_a2b, gen_b2a = (self.nets[n] for n in G_NAMES)
        dis_ga, dis_gb, dis_la, dis_lb = (self.nets[n] for n in D_NAMES)
        opts_g, opts_d = self.optimizers_for(G_NAMES, optimizers), self.optimizers_for(D_NAMES, optimizers)

        # D step on detached translations. (PaddleGAN back-propagates this loss into the
        # generators too, then clears their gradients before the G step: the same update.)
        with torch.no_grad():
            fake_A2B = gen_a2b(real_A)[0]
            fake_B2A = gen_b2a(real_B)[0]
        for opt in opts_d:
            opt.zero_grad(set_to_none=True)
        d_loss_A = self.adv_weight * (self._d_adv(dis_ga, real_A, fake_B2A) + self._d_adv(dis_la, real_A, fake_B2A))
        d_loss_B = self.adv_weight * (self._d_adv(dis_gb, real_B, fake_A2B) + self._d_adv(dis_lb, real_B, fake_A2B))
        d_loss = d_loss_A + d_loss_B
        self.backward(d_loss)
        for opt in opts_d:
            self.optimizer_step(opt)

        # G step with the discriminators frozen.
        for opt in opts_g:
            opt.zero_grad(set_to_none=True)
        with self.frozen(dis_ga, dis_gb, dis_la, dis_lb):
            fake_A2B, fake_A2B_cam, _ = gen_a2b(real_A)
            fake_B2A, fake_B2A_cam, _ = gen_b2a(real_B)
            fake_A2B2A = gen_b2a(fake_A2B)[0]
            fake_B2A2B = gen_a2b(fake_B2A)[0]
            fake_A2A, fake_A2A_cam, _ = gen_b2a(real_A)
            fake_B2B, fake_B2B_cam, _ = gen_a2b(real_B)

            adv = (self._g_adv(dis_ga, fake_B2A) + self._g_adv(dis_la, fake_B2A)
                   + self._g_adv(dis_gb, fake_A2B) + self._g_adv(dis_lb, fake_A2B))
            cycle = self.L1_loss(fake_A2B2A, real_A) + self.L1_loss(fake_B2A2B, real_B)
            identity = self.L1_loss(fake_A2A, real_A) + self.L1_loss(fake_B2B, real_B)
            # CAM: the B->A generator's attention must tell its source domain (B: real) from
            # its target domain (A: fake), and likewise for A->B.
            cam = (_to_target(self.BCE_loss, fake_B2A_cam, True) + _to_target(self.BCE_loss, fake_A2A_cam, False)
                   + _to_target(self.BCE_loss, fake_A2B_cam, True) + _to_target(self.BCE_loss, fake_B2B_cam, False))
            terms = {"G_adv_loss": self.adv_weight * adv, "G_cycle_loss": self.cycle_weight * cycle,
                     "G_identity_loss": self.identity_weight * identity, "G_cam_loss": self.cam_weight * cam}
            g_loss = sum(terms.values())
            self.backward(g_loss)
        for opt in opts_g:
            self.optimizer_step(opt)
        clip_rho_(gen_a2b)
        clip_rho_(gen_b2a)

        self.fake_A2B, self.fake_B2A = self.keep(fake_A2B), self.keep(fake_B2A)
        self._set_visuals()
        losses = {"discriminator_loss": d_loss, "generator_loss": g_loss, **terms}
        return {k: v.detach() for k, v in losses.items()}

    def _set_visuals(self):
        self.visual_items.clear()
        for name in ("real_A", "fake_A2B", "real_B", "fake_B2A"):
            t = getattr(self, name)
            if t is not None:
                self.visual_items[name] = t.detach()

    # ---- inference -------------------------------------------------------------------------
    @torch.no_grad()
    def test_iter(self, metrics=None):
        """Translate whichever of real_A / real_B the batch has; metrics get (fake_A2B, real_B)."""
        if self.real_A is None and self.real_B is None:
            self._source()  # raises, naming the missing input
        self.fake_A2B = self.fake_B2A = None
        with self.eval_mode(*G_NAMES):
            if self.real_A is not None:
                self.fake_A2B = padded_forward(self.nets["genA2B"], self.real_A)[0]
            if self.real_B is not None:
                self.fake_B2A = padded_forward(self.nets["genB2A"], self.real_B)[0]
        self._set_visuals()
        self.update_metrics(metrics, self.fake_A2B, self.real_B)

"""Adversarial losses (PaddleGAN's `GANLoss` interface) and the WGAN-GP gradient penalty."""
import torch
import torch.nn.functional as F
from torch import nn

from ...utils.errors import ConfigError
from .builder import CRITERIONS

GAN_MODES = ("vanilla", "lsgan", "wgan", "wgangp", "hinge", "logistic")


@CRITERIONS.register()
class GANLoss(nn.Module):
    """GAN objectives on raw discriminator outputs.

    Args:
        gan_mode (str): 'vanilla' (BCE with logits), 'lsgan' (MSE), 'wgan' / 'wgangp'
            (critic mean), 'hinge', or 'logistic' (softplus, = vanilla without targets).
        target_real_label (float): target for real samples (default 1.0).
        target_fake_label (float): target for fake samples (default 0.0).
        loss_weight (float): scale of the generator-side loss (default 1.0).
        label_smoothing (float): discriminator step only, vanilla/lsgan: real targets become
            `target_real_label - label_smoothing` (one-sided smoothing; default 0).
        label_noise (float): discriminator step only, vanilla/lsgan: every target moves towards
            the other class by `label_noise * U(0, 1)`, drawn per element (default 0).
    Call: loss(prediction, target_is_real, is_disc=False, is_updating_D=None) -> scalar.
    """

    def __init__(self, gan_mode, target_real_label=1.0, target_fake_label=0.0, loss_weight=1.0,
                 label_smoothing=0.0, label_noise=0.0):
        super().__init__()
        if gan_mode not in GAN_MODES:
            raise ConfigError(f"gan_mode must be one of {', '.join(GAN_MODES)}; got {gan_mode!r}")
        if not 0 <= label_smoothing < 1 or not 0 <= label_noise < 1:
            raise ConfigError("label_smoothing and label_noise must be in [0, 1)")
        self.gan_mode = gan_mode
        self.target_real_label = float(target_real_label)
        self.target_fake_label = float(target_fake_label)
        self.loss_weight = float(loss_weight)
        self.label_smoothing = float(label_smoothing)
        self.label_noise = float(label_noise)

    def get_target_tensor(self, prediction, target_is_real, is_disc=False):
        value = self.target_real_label if target_is_real else self.target_fake_label
        if is_disc and target_is_real:
            value -= self.label_smoothing
        target = torch.full_like(prediction, value)
        if is_disc and self.label_noise > 0:
            direction = -1.0 if target_is_real else 1.0
            target = target + direction * self.label_noise * torch.rand_like(prediction)
        return target

    def forward(self, prediction, target_is_real, is_disc=False, is_updating_D=None):
        mode = self.gan_mode
        if mode in ("vanilla", "lsgan"):
            target = self.get_target_tensor(prediction, target_is_real, is_disc)
            pred = prediction.float()
            loss = (F.binary_cross_entropy_with_logits(pred, target.float()) if mode == "vanilla"
                    else F.mse_loss(pred, target.float()))
        elif mode in ("wgan", "wgangp"):
            loss = -prediction.mean() if target_is_real else prediction.mean()
        elif mode == "hinge":
            updating_d = is_disc if is_updating_D is None else is_updating_D
            if updating_d:
                loss = F.relu(1 - prediction).mean() if target_is_real else F.relu(1 + prediction).mean()
            else:
                loss = -prediction.mean() if target_is_real else prediction.mean()
        else:  # logistic
            loss = F.softplus(-prediction).mean() if target_is_real else F.softplus(prediction).mean()
        return loss if is_disc else loss * self.loss_weight


def gradient_penalty(net_d, real, fake, *cond, weight=10.0):
    """WGAN-GP (Gulrajani et al., 2017): weight * E[(||grad_x D(x_hat)||_2 - 1)^2] on random
    interpolates x_hat of real and fake. Extra `cond` inputs (e.g. class ids) go to D as-is."""
    alpha = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = net_d(x_hat, *cond)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)
    return weight * ((norm - 1) ** 2).mean()


def r1_penalty(real_pred, real_img):
    """R1 (Mescheder et al., 2018): E[||grad_x D(x)||^2] on real images (no weight)."""
    (grad,) = torch.autograd.grad(real_pred.sum(), real_img, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()

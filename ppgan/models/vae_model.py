"""Variational auto-encoder (Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014):
the generator-only baseline beside the GANs.

An encoder gives q(z|x) = N(mu(x), diag(exp(logvar(x)))), a decoder gives p(x|z), the prior is
p(z) = N(0, I). Training maximises the evidence lower bound, one sample of z per image through the
reparameterisation z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) (so the gradient reaches the
encoder through mu and logvar):

    -ELBO(x) = E_q[-log p(x|z)] + KL(q(z|x) || p(z))
    KL = -1/2 * sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))          (closed form, paper app. B)

Reconstruction term, summed over pixels (x in [-1, 1] is read as x01 = (x + 1) / 2 in [0, 1]):
    'bce':      Bernoulli p(x|z) with logits a = decoder.logits(z):  BCE(a, x01)   (the paper's MNIST)
    'gaussian': Gaussian p(x|z) = N(decoder(z), sigma^2 I) on x:  |x - decoder(z)|^2 / (2 sigma^2)
                (the constant log-normaliser left out)
Both terms are summed over pixels / latent dims and averaged over the batch, so `neg_elbo` is
nats per image. `beta` (Higgins et al., 2017, beta-VAE) weights the KL in the training loss only:
loss = recon + beta * KL; beta = 1 is the plain ELBO.

Sampling: z ~ N(0, I) through the decoder, registered as `netG` with `random_inputs`, so the
GAN tools (`gan_generate.py`, `tools/eval_digits.py`) read a VAE weight file as a GAN's.
"""
import torch
import torch.nn.functional as F

from ..utils.errors import ConfigError
from .base_model import BaseModel
from .builder import MODELS
from .generators.builder import build_generator

PARAM_KEYS = ("beta", "recon_loss", "sigma", "samples_every_row", "n_samples", "sample_seed")
RECON_LOSSES = ("bce", "gaussian")


def reparameterize(mu, logvar, eps=None):
    """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) (drawn when not given)."""
    if eps is None:
        eps = torch.randn_like(mu)
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, I)) per row, summed over the latent dims: [N]."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


def recon_nll(kind, logits, x, sigma=1.0):
    """-log p(x|z) per image (summed over pixels, constant dropped for 'gaussian'): [N].

    Args:
        kind (str): 'bce' or 'gaussian'.
        logits (Tensor): decoder pre-activation a [N, C, H, W]; the mean image is tanh(a / 2).
        x (Tensor): target [N, C, H, W] in [-1, 1].
        sigma (float): the Gaussian's standard deviation (in the [-1, 1] image units).
    """
    if kind == "bce":
        nll = F.binary_cross_entropy_with_logits(logits, (x + 1) * 0.5, reduction="none")
    else:
        nll = (x - torch.tanh(0.5 * logits)).pow(2) / (2 * sigma ** 2)
    return nll.flatten(1).sum(1)


@MODELS.register()
class VAEModel(BaseModel):
    """Args:
        encoder (dict): encoder config (`VAEEncoder`): image -> (mu, logvar); net `netE`.
        generator (dict): decoder config (`VAEDecoder`: `logits(z)`, `random_inputs(n)`); net `netG`.
        params (dict): beta (KL weight in the loss, default 1.0), recon_loss ('bce' default, or
            'gaussian'), sigma (the Gaussian's std in [-1, 1] units, default 0.1), n_samples (fixed
            prior samples in the grid, default 64), samples_every_row (grid width, default 8),
            sample_seed (default 0).
    Batches: {'img': [N, C, H, W] in [-1, 1]} (other keys such as 'class_id' are ignored);
        PaddleGAN's single-image 'A' works too.
    Losses (train_iter): recon_loss, kl_loss (per image, batch mean), neg_elbo = recon + KL.
    Metrics (test_iter) get (reconstruction, real): PSNR / MAE of the posterior-mean
        reconstruction of the test images.
    """

    def __init__(self, encoder, generator, params=None):
        super().__init__(params)
        self.check_param_keys(PARAM_KEYS)
        p = self.params
        self.beta = float(p.get("beta", 1.0))
        self.recon_loss = p.get("recon_loss", "bce")
        self.sigma = float(p.get("sigma", 0.1))
        self.samples_every_row = int(p.get("samples_every_row", 8))
        self.n_samples = int(p.get("n_samples", 64))
        self.sample_seed = int(p.get("sample_seed", 0))
        if self.recon_loss not in RECON_LOSSES:
            raise ConfigError(f"model.params.recon_loss must be one of {', '.join(RECON_LOSSES)}, "
                              f"got {self.recon_loss!r}")
        if self.beta < 0 or self.sigma <= 0:
            raise ConfigError(f"model.params.beta must be >= 0 and sigma > 0, got beta {self.beta}, "
                              f"sigma {self.sigma}")
        if self.n_samples < 1 or self.samples_every_row < 1:
            raise ConfigError("model.params.n_samples and samples_every_row must be >= 1")
        self.nets["netE"] = build_generator(encoder)
        self.nets["netG"] = build_generator(generator)
        enc_dim = getattr(self.nets["netE"], "latent_dim", None)
        dec_dim = getattr(self.nets["netG"], "latent_dim", None)
        if enc_dim != dec_dim:
            raise ConfigError(f"encoder latent_dim ({enc_dim}) and generator latent_dim ({dec_dim}) differ")
        if not hasattr(self.nets["netG"], "logits"):
            raise ConfigError(f"VAEModel's generator must offer logits(z) (VAEDecoder); got "
                              f"{type(self.nets['netG']).__name__}")
        self._fixed_z = None

    def setup_input(self, input):
        self.real = self.image_batch(input)

    def _losses(self, x):
        """(loss, {recon_loss, kl_loss, neg_elbo}, reconstruction) for images x: one z per image."""
        mu, logvar = self.nets["netE"](x)
        z = reparameterize(mu, logvar)
        logits = self.nets["netG"].logits(z)
        recon = recon_nll(self.recon_loss, logits, x, self.sigma).mean()
        kl = gaussian_kl(mu, logvar).mean()
        losses = {"recon_loss": recon, "kl_loss": kl, "neg_elbo": recon + kl}
        return recon + self.beta * kl, losses, torch.tanh(0.5 * logits)

    def train_iter(self, optimizers=None):
        # One optimizer may hold both nets (net_names: [netE, netG]) or each its own.
        opts = {id(o): o for o in (self.optimizer_for("netE", optimizers), self.optimizer_for("netG", optimizers))}
        for opt in opts.values():
            opt.zero_grad(set_to_none=True)
        loss, losses, rec = self._losses(self.real)
        self.backward(loss)
        for opt in opts.values():
            self.optimizer_step(opt)
        self.rec = self.keep(rec)
        return {k: v.detach() for k, v in losses.items()}

    # ---- evaluation ----------------------------------------------------------------------
    def _eval_mode(self):
        flags = {name: net.training for name, net in self.nets.items()}
        for net in self.nets.values():
            net.eval()
        return flags

    def _restore_mode(self, flags):
        for name, flag in flags.items():
            self.nets[name].train(flag)

    @torch.no_grad()
    def test_iter(self, metrics=None):
        """Reconstruct the batch from the posterior mean (deterministic) and draw as many prior
        samples; metrics get (reconstruction, real)."""
        flags = self._eval_mode()
        mu, _ = self.nets["netE"](self.real)
        self.rec = self.nets["netG"](mu)
        z = self.nets["netG"].random_inputs(self.real.shape[0], device=self.device)
        self.fake = self.nets["netG"](z)
        self._restore_mode(flags)
        self.visual_items["real"] = self.real
        self.visual_items["rec"] = self.rec
        self.visual_items["fake"] = self.fake
        for metric in (metrics or {}).values():
            if not getattr(metric, "needs_class_id", False):
                metric.update(self.rec, self.real)

    def fixed_inputs(self):
        if self._fixed_z is None:
            gen = torch.Generator().manual_seed(self.sample_seed)
            self._fixed_z = self.nets["netG"].random_inputs(self.n_samples, generator=gen)
        return self._fixed_z.to(self.device)

    @torch.no_grad()
    def visuals(self):
        """fixed_samples (prior draws, the same z every time) and, once a batch was seen,
        reconstruction (rows alternate: real images, then their posterior-mean reconstructions)."""
        flags = self._eval_mode()
        out = {"fixed_samples": self.nets["netG"](self.fixed_inputs())}
        real = getattr(self, "real", None)
        if real is not None:
            real = real[:self.samples_every_row]
            rec = self.nets["netG"](self.nets["netE"](real)[0])
            out["reconstruction"] = torch.cat([real, rec])
        self._restore_mode(flags)
        return out

"""InvDN training (Liu et al., CVPR 2021, https://arxiv.org/abs/2104.10546): real-noise removal
with an invertible network.

PaddleGAN `ppgan/models/invdn_model.py`: config keys, `self.nets` name (`generator`), losses
(forward fit 16 * mean over the batch of the summed squared error between the latent's first
three channels and the clean low-resolution image; backward reconstruction: mean over the batch
of the summed sqrt(err^2 + 1e-3) between the restored and the clean image), a fresh Gaussian
latent at every training and test step. PaddleGAN's `clip_grad_norm` optimizer key is read by
ppgan's optimizer builder, so no `setup_optimizers` of its own is needed.
"""
import torch

from ..utils.errors import PPGANError
from ..utils.inference import padded_forward
from .builder import MODELS
from .mpr_model import batch_dict
from .sr_model import BaseSRModel

FORWARD_FIT_WEIGHT = 16.0  # PaddleGAN's constant (scale ** 2 for its scale 4)
RECON_EPS = 1e-3


@MODELS.register()
class InvDNModel(BaseSRModel):
    """Args:
        generator (dict): generator config (InvDN).
    Batches: {'noisy': [N, 3, H, W], 'gt': [N, 3, H, W], 'lq': clean [N, 3, H/s, W/s] (training
    only), 'noisy_path'} in [0, 1], or PaddleGAN's (noisy, gt, lq) tuples. Training needs H, W
    multiples of the net's scale; evaluation pads.
    Losses (train_iter): loss_forw_fit, loss_back_rec and loss (their sum, the one PaddleGAN logs).
    """

    def __init__(self, generator):
        super().__init__(generator)
        self.noisy = None

    def setup_input(self, input):
        input = batch_dict(input, ("noisy", "gt", "lq"))
        self.noisy = input["noisy"].to(self.device, non_blocking=True)
        self.gt = input["gt"].to(self.device, non_blocking=True) if "gt" in input else None
        self.lq = input["lq"].to(self.device, non_blocking=True) if "lq" in input else None
        self.image_paths = input.get("noisy_path")
        self.output = None
        self._set_visuals()

    def train_iter(self, optimizers=None):
        gt = self._need_gt()
        if self.lq is None:
            raise PPGANError("InvDNModel training needs 'lq' (clean low-resolution) images in every batch")
        opt = self.optimizer_for("generator", optimizers)
        opt.zero_grad(set_to_none=True)
        net = self.nets["generator"]
        c = net.channel_out
        output_hq, output_lq = net(self.noisy)  # a fresh latent sample for the noise channels
        output_hq, output_lq = output_hq[:, :c], output_lq[:, :c]
        forw = FORWARD_FIT_WEIGHT * ((output_lq - self.lq.detach()) ** 2).sum(dim=(1, 2, 3)).mean()
        back = torch.sqrt((gt - output_hq) ** 2 + RECON_EPS).sum(dim=(1, 2, 3)).mean()
        loss = forw + back
        self.backward(loss)
        self.optimizer_step(opt)
        self.output = self.keep(output_hq)
        self._set_visuals()
        return {"loss_forw_fit": forw.detach(), "loss_back_rec": back.detach(), "loss": loss.detach()}

    @torch.no_grad()
    def test_iter(self, metrics=None):
        """output = the restored image (a fresh latent sample) in eval mode; metrics on (output, gt)."""
        net = self.nets["generator"]
        was_training = net.training
        net.eval()
        try:
            self.output = padded_forward(net, self.noisy)[0][:, : net.channel_out]
        finally:
            net.train(was_training)
        self._set_visuals()
        if self.gt is not None:
            self.score(metrics)

    def _visual_images(self):
        return {"noisy": self.noisy, "output": self.output, "gt": self.gt}

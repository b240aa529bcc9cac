"""EDVR video super-resolution training (Wang et al., CVPRW 2019, https://arxiv.org/abs/1905.02716).

PaddleGAN `ppgan/models/edvr_model.py`: config keys (`tsa_iter`), `self.nets` name
(`generator`), loss name (`loss_pixel`), visual names (`lq`, `lq-2` ... `lq+2`, `output`, `gt`).
With `tsa_iter` > 0 only the fusion module (`TSAModule`) learns during the first `tsa_iter`
iterations, then everything does (EDVR-L's schedule).

Two differences. The freeze follows the trainer's iteration counter (`current_iter`), so a
run resumed inside the TSA phase is frozen again. PaddleGAN's `init_edvr_weight` means to skip
residual blocks and DCN packs, but `Layer.apply` visits their convs anyway, so it also resets
the zero-initialised DCN offset convs and the 0.1-scaled residual convs; here they keep their
init (as BasicSR's EDVR), and every other conv is reset as PaddleGAN does.
"""
from ..modules.sr_blocks import ResidualBlockNoBN
from ..utils.inference import padded_video_forward
from .builder import MODELS
from .generators.edvr import DCNPack
from .sr_model import BaseSRModel, init_sr_weight


def init_edvr_weight(net):
    """PyTorch / Paddle default init on every conv of `net` outside residual blocks and DCN packs."""
    return init_sr_weight(net, skip=(ResidualBlockNoBN, DCNPack))


@MODELS.register()
class EDVRModel(BaseSRModel):
    """Args:
        generator (dict): generator config (EDVRNet).
        tsa_iter (int): iterations during which only `TSAModule` learns; 0: none (default 0).
        pixel_criterion (dict | None): pixel loss config (CharbonnierLoss in PaddleGAN's configs).
        to_static, image_shape: PaddleGAN's static-graph switches; accepted and ignored.
    Batches: {'lq': [N, T, C, h, w] (T = the net's nframes), 'gt': [N, C, 4h, 4w] or
    [N, 1, C, 4h, 4w] (the centre frame; h x w for the HR-input deblur nets), 'lq_path'},
    values in [0, 1].
    Losses (train_iter): loss_pixel.
    """

    def __init__(self, generator, tsa_iter=0, pixel_criterion=None, to_static=False, image_shape=None):
        super().__init__(generator, pixel_criterion)
        self.tsa_iter = int(tsa_iter or 0)
        if self.tsa_iter < 0:
            raise ValueError(f"tsa_iter must be >= 0, got {tsa_iter}")
        self._tsa_only = None  # phase the parameters are set for (None: not set yet)
        init_edvr_weight(self.nets["generator"])

    def setup_input(self, input):
        gt = input.get("gt")
        if gt is not None and gt.ndim == 5:
            input = dict(input, gt=gt[:, 0])  # the dataset's one-frame gt sequence
        super().setup_input(input)

    def set_tsa_phase(self, tsa_only):
        """Only `TSAModule` parameters take gradients when `tsa_only`; all of them otherwise."""
        if tsa_only == self._tsa_only:
            return
        for name, p in self.nets["generator"].named_parameters():
            p.requires_grad_(not tsa_only or "TSAModule" in name)
        self._tsa_only = tsa_only

    def train_iter(self, optimizers=None):
        # frozen parameters get no gradient, so the optimizer skips them
        self.set_tsa_phase(self.tsa_iter > 0 and self.current_iter < self.tsa_iter)
        return super().train_iter(optimizers)

    def forward_any_size(self, lq):
        net = self.nets["generator"]
        return padded_video_forward(net, lq, multiple=16 if getattr(net, "HR_in", False) else 4)

    def _visual_images(self):
        items = {}
        if self.lq is not None:
            t = self.lq.shape[1]
            center = getattr(self.nets["generator"], "center", t // 2)
            items["lq"] = self.lq[:, center]
            for i in range(t):
                if i != center:
                    items[f"lq{i - center:+d}"] = self.lq[:, i]
        items.update(output=self.output, gt=self.gt)
        return items


"""MPRNet training (Zamir et al., CVPR 2021, https://arxiv.org/abs/2102.02808): deblurring,
denoising, deraining.

PaddleGAN `ppgan/models/mpr_model.py`: config keys (`char_criterion`, `edge_criterion`),
`self.nets` name (`generator`), generator init (`init_weights`: convs normal(0, 0.02)), the loss
sum over the three stage outputs of Charbonnier + 0.05 * edge, evaluation on the stage-3 output.

PaddleGAN's `CharbonnierLoss` sums over pixels by default (ppgan's averages); its MPRNet configs
name the loss without a reduction, so here a `char_criterion` CharbonnierLoss without
`reduction` sums, as in PaddleGAN (EdgeLoss sums by default in both), which keeps the two terms'
ratio PaddleGAN's.
"""
from ..modules.init import init_weights
from ..utils.inference import pad_to_multiple, size_multiple
from .builder import MODELS
from .criterions.builder import build_criterion
from .sr_model import BaseSRModel

EDGE_WEIGHT = 0.05


def paddle_charbonnier(cfg):
    """`cfg` with PaddleGAN's CharbonnierLoss default (`reduction: sum`) filled in."""
    if cfg and cfg.get("name") == "CharbonnierLoss" and "reduction" not in cfg:
        cfg = dict(cfg, reduction="sum")
    return cfg


def batch_dict(input, keys):
    """A batch as a dict: ours already are; PaddleGAN's datasets give tuples in `keys` order."""
    if isinstance(input, dict):
        return input
    return {k: v for k, v in zip(keys, input) if v is not None}


@MODELS.register()
class MPRModel(BaseSRModel):
    """Args:
        generator (dict): generator config (MPRNet).
        char_criterion (dict | None): Charbonnier loss config (needed for training).
        edge_criterion (dict | None): edge loss config (EdgeLoss; needed for training).
    Batches: {'lq': degraded [N, 3, H, W], 'gt': clean [N, 3, H, W], 'lq_path'} in [0, 1], or
    PaddleGAN's (target, input, name) tuples. H, W multiples of 8 for training (evaluation pads).
    Losses (train_iter): loss_char, loss_edge (each summed over the three stages) and loss =
    loss_char + 0.05 * loss_edge, the one PaddleGAN logs.
    """

    def __init__(self, generator, char_criterion=None, edge_criterion=None):
        super().__init__(generator)
        init_weights(self.nets["generator"])
        self.char_criterion = build_criterion(paddle_charbonnier(char_criterion)) if char_criterion else None
        self.edge_criterion = build_criterion(edge_criterion) if edge_criterion else None

    def setup_input(self, input):
        super().setup_input(batch_dict(input, ("gt", "lq", "lq_path")))

    def train_iter(self, optimizers=None):
        gt = self._need_gt()
        char = self._need(self.char_criterion, "char_criterion")
        edge = self._need(self.edge_criterion, "edge_criterion")
        opt = self.optimizer_for("generator", optimizers)
        opt.zero_grad(set_to_none=True)
        restored = self.nets["generator"](self.lq)
        loss_char = sum(char(out, gt) for out in restored)
        loss_edge = sum(edge(out, gt) for out in restored)
        loss = loss_char + EDGE_WEIGHT * loss_edge
        self.backward(loss)
        self.optimizer_step(opt)
        self.output = self.keep(restored[0])
        self._set_visuals()
        return {"loss_char": loss_char.detach(), "loss_edge": loss_edge.detach(), "loss": loss.detach()}

    def forward_any_size(self, lq):
        """The stage-3 image for any H, W (padded to multiples of 8 by reflection, cropped back)."""
        net = self.nets["generator"]
        x, (h, w) = pad_to_multiple(lq, size_multiple(net))
        return net(x)[0][..., :h, :w]

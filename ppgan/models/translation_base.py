"""What the image-to-image translation models (pix2pix, CycleGAN, U-GAT-IT) share: the
`direction` switch, batch unpacking, optimizer lookup for groups of nets, eval-mode inference."""
import contextlib

from ..utils.errors import ConfigError, PPGANError
from .base_model import BaseModel

# PaddleGAN's spelling first; junyanz's 'AtoB' / 'BtoA' are accepted as the same.
DIRECTIONS = {"a2b": "a2b", "b2a": "b2a", "AtoB": "a2b", "BtoA": "b2a"}


def check_direction(direction, model_name):
    if direction not in DIRECTIONS:
        raise ConfigError(f"{model_name} direction must be 'a2b' or 'b2a'; got {direction!r}")
    return DIRECTIONS[direction]


class TranslationModel(BaseModel):
    """Base of the translation models.

    Batches are dicts {'A': [N, C, H, W], 'B': [N, C, H, W] in [-1, 1], 'A_path', 'B_path'};
    'b2a' swaps the domains, so `real_A` is always the source the A->B generator reads. Either
    image may be missing at test time (e.g. `SingleDataset`); training needs both.

    Args:
        direction (str): 'a2b' (default) or 'b2a' ('AtoB' / 'BtoA' accepted).
    """

    def __init__(self, direction="a2b"):
        super().__init__()
        self.direction = check_direction(direction, type(self).__name__)
        self.real_A = self.real_B = None
        self.image_paths = None

    def setup_input(self, input):
        a, b = ("A", "B") if self.direction == "a2b" else ("B", "A")
        self.real_A = input[a].to(self.device, non_blocking=True) if a in input else None
        self.real_B = input[b].to(self.device, non_blocking=True) if b in input else None
        self.image_paths = input.get(f"{a}_path", input.get(f"{b}_path"))

    def _pair(self):
        if self.real_A is None or self.real_B is None:
            raise PPGANError(f"{type(self).__name__} training needs both 'A' and 'B' images in every batch")
        return self.real_A, self.real_B

    def _source(self):
        if self.real_A is None:
            side = "A" if self.direction == "a2b" else "B"
            raise PPGANError(f"{type(self).__name__} (direction {self.direction}) needs '{side}' images in the batch")
        return self.real_A

    def optimizers_for(self, net_names, optimizers):
        """The distinct optimizers holding `net_names` (one, or one per net if the config splits them)."""
        found = []
        for name in net_names:
            opt = self.optimizer_for(name, optimizers)
            if all(opt is not o for o in found):
                found.append(opt)
        return found

    @contextlib.contextmanager
    def eval_mode(self, *names):
        """Nets `names` in eval mode inside the block, their previous mode restored after."""
        nets = [self.nets[n] for n in names]
        modes = [net.training for net in nets]
        for net in nets:
            net.eval()
        try:
            yield
        finally:
            for net, mode in zip(nets, modes):
                net.train(mode)

    def update_metrics(self, metrics, fake, real):
        """Metrics get (translated image, real image of the target domain) when both exist."""
        if fake is None or real is None:
            return
        for metric in (metrics or {}).values():
            if not getattr(metric, "needs_class_id", False):  # class-conditional metrics do not apply
                metric.update(fake, real)

"""The model interface the trainer drives (PaddleGAN's): `setup_input`, `train_iter`, `test_iter`.

A model owns its nets (`self.nets`, name -> nn.Module; the names are checkpoint keys) and
losses. The trainer owns the loop, optimizers, schedulers, AMP and distribution; it hands
them in through `setup_runtime` so one `train_iter` serves fp32, AMP and multi-process runs.
"""
import contextlib
from collections import OrderedDict

import torch
import torch.distributed as dist

from ..utils.errors import ConfigError


class BaseModel:
    """Base class of every trainable model.

    Subclasses implement:
        setup_input(batch: dict) -- move a batch to the device and keep what the step needs.
        train_iter(optimizers: dict) -> dict[str, Tensor] -- one training step; returns the
            detached 0-dim loss tensors by name, still on the device (the trainer reads them
            only at log intervals, so a step never waits for the GPU).
        test_iter(metrics: dict | None) -- inference on the current input; fills
            `self.visual_items` and updates the metrics.
    and may override `visuals()` for the sample grids the trainer writes.
    """

    def __init__(self, params=None):
        self.params = dict(params or {})
        self.nets = OrderedDict()
        self.visual_items = OrderedDict()
        self.device = torch.device("cpu")
        self.is_train = True
        self.current_iter = 0
        self.scaler = None          # torch.amp.GradScaler for fp16, set by the trainer
        self.distributed = False    # gradients are all-reduced in optimizer_step when True
        self.compiled_cudagraphs = False  # nets compiled as CUDA graphs (set by the trainer)

    def check_param_keys(self, known):
        """ConfigError (with a 'did you mean') for a `model.params` key not in `known`."""
        unknown = sorted(set(self.params) - set(known))
        if unknown:
            from ..utils.errors import closest

            hint = closest(unknown[0], known)
            raise ConfigError(f"unknown key 'model.params.{unknown[0]}'"
                              + (f"; did you mean {', '.join(hint)}?" if hint else ""))

    def image_batch(self, input, image_key=None):
        """The image tensor of an unconditional GAN's batch, on the model's device: `input[image_key]`,
        default 'img' (ours), else 'A' (PaddleGAN's single-image datasets); a bare tensor or a
        (tensor, ...) sequence is taken as the images."""
        if isinstance(input, (list, tuple)):
            input = input[0]
        if not isinstance(input, dict):
            input = {"img": input}
        key = image_key or ("img" if "img" in input else "A")
        if key not in input:
            raise ConfigError(f"{type(self).__name__}: the batch has no '{key}' images (it has "
                              f"{', '.join(map(str, input))}); set model.image_key")
        return input[key].to(self.device, non_blocking=True)

    # ---- runtime -------------------------------------------------------------------------
    def setup_runtime(self, device=None, scaler=None, distributed=False):
        if device is not None:
            self.device = torch.device(device)
            for net in self.nets.values():
                net.to(self.device)
        self.scaler = scaler
        self.distributed = distributed

    def train(self):
        for net in self.nets.values():
            net.train()

    def eval(self):
        for net in self.nets.values():
            net.eval()

    def keep(self, t):
        """`t.detach()` for a net output kept beyond this step (visuals, image pools). When the
        nets run as CUDA graphs the next replay overwrites their outputs, so it is a copy."""
        t = t.detach()
        return t.clone() if self.compiled_cudagraphs else t

    @staticmethod
    def set_requires_grad(nets, requires_grad=False):
        for net in nets if isinstance(nets, (list, tuple)) else [nets]:
            if net is not None:
                for p in net.parameters():
                    p.requires_grad_(requires_grad)

    def backward(self, loss):
        """loss.backward(), scaled when an fp16 GradScaler is active."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def optimizer_step(self, optimizer):
        """All-reduce gradients (multi-process), unscale (fp16), clip (if the optimizer was
        configured with `clip_grad_norm` / `clip_grad_value`), then step."""
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if self.distributed and params:
            _allreduce_mean([p.grad for p in params])
        clip = getattr(optimizer, "ppgan_clip", None)
        if clip and self.scaler is not None:
            self.scaler.unscale_(optimizer)
        if clip:
            kind, value = clip
            if kind == "norm":
                torch.nn.utils.clip_grad_norm_(params, value)
            else:
                torch.nn.utils.clip_grad_value_(params, value)
        if self.scaler is not None:
            self.scaler.step(optimizer)
        else:
            optimizer.step()

    # ---- optimizers ----------------------------------------------------------------------
    def optimizer_for(self, net_name, optimizers):
        """The optimizer whose `net_names` include `net_name` (configs name them freely:
        optimizer_G, optimG, ...)."""
        for opt in optimizers.values():
            if net_name in getattr(opt, "ppgan_net_names", ()):
                return opt
        raise ConfigError(f"no optimizer has '{net_name}' in its net_names")

    # ---- interface -----------------------------------------------------------------------
    def setup_input(self, input):
        raise NotImplementedError

    def train_iter(self, optimizers=None):
        raise NotImplementedError

    def test_iter(self, metrics=None):
        raise NotImplementedError

    def visuals(self):
        """Image batches (name -> tensor [N, C, H, W] in [-1, 1]) for the sample grids."""
        return dict(self.visual_items)

    def state_dict(self):
        return {name: net.state_dict() for name, net in self.nets.items()}

    def load_state_dict(self, state, strict=True):
        for name, net in self.nets.items():
            if name in state:
                net.load_state_dict(state[name], strict=strict)
            elif strict:
                from ..utils.errors import CheckpointError

                raise CheckpointError(f"checkpoint has no weights for '{name}' (has: {', '.join(state)})")

    @contextlib.contextmanager
    def frozen(self, *nets):
        """Context in which `nets` take no gradient (e.g. D during the generator step)."""
        params = [p for net in nets if net is not None for p in net.parameters()]
        flags = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p, flag in zip(params, flags):
                p.requires_grad_(flag)


def _allreduce_mean(tensors):
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[offset:offset + n].view_as(t))
        offset += n

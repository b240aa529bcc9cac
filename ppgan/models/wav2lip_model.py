"""Wav2Lip training (Prajwal et al., ACM MM 2020, https://arxiv.org/abs/2008.10010).

Three models, after PaddleGAN `ppgan/models/wav2lip_model.py`, `wav2lip_hq_model.py` and
Wav2Lip's `color_syncnet_train.py`:

* `SyncNetModel`: pre-trains the lip-sync expert `SyncNetColor` (PaddleGAN has no SyncNet
  training; Wav2Lip's recipe): the cosine similarity of the audio and face embeddings, read as a
  probability, against the in-sync label (BCE).
* `Wav2LipModel`: the generator with the frozen expert. G minimises
  syncnet_wt * sync_loss + (1 - syncnet_wt) * l1_loss, where sync_loss is the expert's BCE
  against "in sync" on the lower halves of the 5 generated frames.
* `Wav2LipModelHq`: adds the visual-quality discriminator `Wav2LipDiscQual` (`netDH`): G
  minimises syncnet_wt * sync + disc_wt * perceptual + (1 - syncnet_wt - disc_wt) * l1, then
  netDH learns real (target) against fake (generated) faces by BCE.

As in PaddleGAN and Wav2Lip, syncnet_wt starts at the config's value (0 in its configs) and is
set to 0.01 once a validation pass of `max_eval_steps` batches averages a sync loss below 0.75
(the generated faces are good enough for the expert's judgement to mean something).

Differences from PaddleGAN, each on purpose:
* The expert's weights come from `syncnet_weight_path` (a file, or the catalogue name 'syncnet':
  PaddleGAN's `syncnet.pdparams`, read from the cache, fetched by `ppgan download syncnet` rather
  than during a build) through `ppgan.weights`, checked strictly.
* The expert stays in eval mode (its BatchNorm uses the statistics it was trained with, and no
  buffer drifts), so "frozen" means bit-for-bit unchanged; PaddleGAN runs it in train mode.
* BCE is computed in float32 with autocast off (PyTorch refuses BCE under fp16 autocast), and the
  cosine similarity is clamped to [0, 1] (both embeddings are ReLU outputs, so it is >= 0; the
  clamp only guards rounding above 1, which BCE rejects).
* Losses are returned as device tensors; the validation averages are read once per
  `max_eval_steps` batches, not per batch. The switched syncnet_wt is saved in checkpoints
  (PaddleGAN's resume restarts from the config's value).
"""
import logging
import os

import torch
import torch.nn.functional as F

from ..modules.init import init_weights
from ..utils.errors import CheckpointError, ConfigError
from ..utils.logger import current_logger
from .base_model import BaseModel
from .builder import MODELS
from .discriminators.builder import build_discriminator
from .generators.builder import build_generator

SYNCNET_T = 5  # frames the expert sees at once
SYNCNET_WEIGHTS = "syncnet"  # catalogue name of PaddleGAN's pretrained expert (syncnet.pdparams)
SYNC_LOSS_THRESHOLD = 0.75  # a validation sync loss below this switches the sync loss on ...
SYNCNET_WT_ON = 0.01  # ... with this weight (PaddleGAN / Wav2Lip)
NO_WEIGHTS = "deterministic"  # syncnet_weight_path value for a seeded, untrained expert (tests)
TRAIN_STATE = "_train_state"  # checkpoint 'nets' entry holding the schedule (not a net)


def bce(prob, target):
    """Binary cross entropy of probabilities, in float32 whatever the autocast state."""
    with torch.autocast(prob.device.type, enabled=False):
        return F.binary_cross_entropy(prob.float(), target.float())


def cosine_loss(a, v, y):
    """BCE between the cosine similarity of audio embeddings `a` [N, D] and face embeddings `v`
    [N, D] (read as the probability of being in sync) and labels `y` [N, 1] in {0, 1}."""
    with torch.autocast(a.device.type, enabled=False):
        d = F.cosine_similarity(a.float(), v.float()).clamp(0., 1.)
        return bce(d.unsqueeze(1), y)


def sync_faces(g):
    """Generated windows [B, 3, T, H, W] -> the expert's input [B, 3T, H/2, W]: lower halves,
    frames stacked on channels (channel 3 * t + c)."""
    g = g[:, :, :, g.shape[3] // 2:]
    return torch.cat(g.unbind(2), 1)


def get_sync_loss(mel, g, net):
    """The expert's loss for `g` [B, 3, T, H, W] being in sync with `mel` [B, 1, 80, 16]."""
    a, v = net(mel, sync_faces(g))
    return cosine_loss(a, v, torch.ones(len(a), 1, device=a.device))


def load_expert(net_cfg, source):
    """Build the expert from `net_cfg` and fill it from `source`, strictly.

    `source`: a weight file (PaddleGAN's `.pdparams`, a SyncNetModel run's weights or checkpoint,
    a Wav2Lip checkpoint: its 'netD' / 'netDS'), a catalogue name looked up in the cache (never
    downloaded during a build: `ppgan download syncnet`), or 'deterministic' for seeded untrained
    weights (tests only: an untrained expert teaches nothing).
    """
    from ..weights import WEIGHTS, cache_path, load, load_into

    if source == NO_WEIGHTS:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return build_discriminator(net_cfg)
    if isinstance(source, str) and source in WEIGHTS and not os.path.isfile(source):
        cached = cache_path(WEIGHTS[source])
        if not os.path.isfile(cached):
            raise CheckpointError(f"the lip-sync expert '{source}' is not in the cache: run `ppgan download {source}` "
                                  f"(or put {os.path.basename(cached)} in {os.path.dirname(cached)}), or set "
                                  "model.syncnet_weight_path to a SyncNetColor weight file")
    net = build_discriminator(net_cfg)
    weights = load(source, download=False)
    name = "netD" if "netD" in weights.states else "netDS" if "netDS" in weights.states else None
    return load_into(net, weights, name=name)


def _log(message):
    """Info line to the running trainer's log (the `ppgan` logger outside a run)."""
    (current_logger() or logging.getLogger("ppgan")).info(message)


def _unit_rgb(x):
    """BGR faces [B, 3, T, H, W] in [0, 1] -> RGB images [B*T, 3, H, W] (for metrics and grids)."""
    return torch.cat(x.float().unbind(2), 0).flip(1)


@MODELS.register()
class SyncNetModel(BaseModel):
    """Lip-sync expert pre-training (Wav2Lip's `color_syncnet_train.py`).

    Args:
        discriminator (dict): the expert's config (`SyncNetColor`); net key 'netD'.
        max_eval_steps (int): validation batches averaged into one logged loss. Default: 1400
            (Wav2Lip's eval_steps).
    Batches (`SyncNetDataset`): {'x': [B, 15, 48, 96], 'mel': [B, 1, 80, 16], 'y': [B, 1]}.
    Losses: sync_loss.
    """

    def __init__(self, discriminator, max_eval_steps=1400):
        super().__init__()
        if int(max_eval_steps) != max_eval_steps or max_eval_steps < 1:
            raise ConfigError(f"model.max_eval_steps must be an integer >= 1, got {max_eval_steps!r}")
        self.max_eval_steps = int(max_eval_steps)
        self.nets["netD"] = build_discriminator(discriminator)
        self.eval_step, self.eval_sum = 0, 0.

    def setup_input(self, input):
        self.x = input["x"].to(self.device, non_blocking=True)
        self.mel = input["mel"].to(self.device, non_blocking=True)
        self.y = input["y"].to(self.device, non_blocking=True).reshape(-1, 1)

    def train_iter(self, optimizers=None):
        opt = self.optimizer_for("netD", optimizers)
        opt.zero_grad(set_to_none=True)
        a, v = self.nets["netD"](self.mel, self.x)
        loss = cosine_loss(a, v, self.y)
        self.backward(loss)
        self.optimizer_step(opt)
        return {"sync_loss": loss.detach()}

    @torch.no_grad()
    def test_iter(self, metrics=None):
        """The expert's loss in eval mode, averaged and logged every `max_eval_steps` batches."""
        net = self.nets["netD"]
        was_training = net.training
        net.eval()
        try:
            a, v = net(self.mel, self.x)
        finally:
            net.train(was_training)
        self.eval_sum = self.eval_sum + cosine_loss(a, v, self.y)
        self.eval_step += 1
        if self.eval_step >= self.max_eval_steps:
            mean = float(self.eval_sum) / self.eval_step
            _log(f"syncnet validation: sync_loss {mean:.4f}")
            self.eval_step, self.eval_sum = 0, 0.
            return mean
        return None


@MODELS.register()
class Wav2LipModel(BaseModel):
    """Wav2Lip generator training with a frozen lip-sync expert (PaddleGAN's `Wav2LipModel`).

    Args:
        generator (dict): `Wav2Lip` config; net key 'netG' (initialised N(0, 0.02) as PaddleGAN).
        discriminator (dict | None): the expert's config (`SyncNetColor`); net key 'netD'.
            Needed when is_train.
        syncnet_wt (float): weight of the sync loss (the L1 term gets 1 - syncnet_wt); 0 until
            validation shows a sync loss below 0.75, then 0.01. Default: 1.0 (configs: 0.0).
        max_eval_steps (int): validation batches per sync-loss decision. Default: 700.
        is_train (bool): build and load the expert. Default: True.
        syncnet_weight_path (str): the pretrained expert, a weight file (`.pdparams`, a
            SyncNetModel run's weights or checkpoint), a catalogue name (looked up in the cache,
            not downloaded) or 'deterministic' (seeded untrained expert, for tests).
            Default: 'syncnet'.
    Batches (`Wav2LipDataset`): {'x': [B, 6, T, S, S], 'indiv_mels': [B, T, 1, 80, 16],
        'mel': [B, 1, 80, 16], 'y': [B, 3, T, S, S]}, faces in [0, 1] (BGR).
    Losses: sync_loss (only while syncnet_wt > 0), l1_loss.
    """

    G_INIT = dict(init_type="normal", init_gain=0.02)
    EXPERT = "netD"  # the expert's net key (PaddleGAN's)
    EXPERT_KEY = "discriminator"  # and its config key

    def __init__(self, generator, discriminator=None, syncnet_wt=1.0, max_eval_steps=700, is_train=True,
                 syncnet_weight_path=SYNCNET_WEIGHTS):
        super().__init__()
        self.syncnet_wt = self._weight(syncnet_wt, "syncnet_wt")
        if int(max_eval_steps) != max_eval_steps or max_eval_steps < 1:
            raise ConfigError(f"model.max_eval_steps must be an integer >= 1, got {max_eval_steps!r}")
        self.max_eval_steps = int(max_eval_steps)
        self.is_train = bool(is_train)
        self.nets["netG"] = init_weights(build_generator(generator), **self.G_INIT)
        if self.is_train:
            if not discriminator:
                raise ConfigError(f"{type(self).__name__} training needs the lip-sync expert: "
                                  f"model.{self.EXPERT_KEY}: {{name: SyncNetColor}}")
            self.nets[self.EXPERT] = load_expert(discriminator, syncnet_weight_path).eval()
        self.eval_step = 0
        self.eval_sums = {}

    @staticmethod
    def _weight(value, key):
        value = float(value)
        if not 0. <= value <= 1.:
            raise ConfigError(f"model.{key} must be in [0, 1], got {value}")
        return value

    # ---- runtime ------------------------------------------------------------------------------
    def train(self):
        super().train()
        if self.EXPERT in self.nets:
            self.nets[self.EXPERT].eval()  # frozen: BatchNorm keeps the statistics it was trained with

    def state_dict(self):
        """The nets, plus the sync-loss weight under TRAIN_STATE: a resumed run keeps the weight
        its validations switched on (PaddleGAN's resume restarts from the config's)."""
        state = super().state_dict()
        state[TRAIN_STATE] = {"syncnet_wt": torch.tensor(self.syncnet_wt, dtype=torch.float64)}
        return state

    def load_state_dict(self, state, strict=True):
        super().load_state_dict(state, strict)
        saved = state.get(TRAIN_STATE) or {}
        if "syncnet_wt" in saved:
            self.syncnet_wt = float(saved["syncnet_wt"])

    def setup_input(self, input):
        self.x = input["x"].to(self.device, non_blocking=True)
        self.indiv_mels = input["indiv_mels"].to(self.device, non_blocking=True)
        self.mel = input["mel"].to(self.device, non_blocking=True)
        self.y = input["y"].to(self.device, non_blocking=True)

    def forward(self):
        self.g = self.nets["netG"](self.indiv_mels, self.x)
        return self.g

    def sync_loss(self, g):
        expert = self.nets[self.EXPERT]
        with self.frozen(expert):  # gradients flow through the expert into g, never into it
            return get_sync_loss(self.mel, g, expert)

    # ---- training -----------------------------------------------------------------------------
    def generator_losses(self, g):
        """{name: loss} of the generator step and their weighted sum."""
        losses = {"l1_loss": F.l1_loss(g.float(), self.y.float())}
        total = (1. - self.syncnet_wt) * losses["l1_loss"]
        if self.syncnet_wt > 0.:
            losses["sync_loss"] = self.sync_loss(g)
            total = total + self.syncnet_wt * losses["sync_loss"]
        return losses, total

    def train_iter(self, optimizers=None):
        opt_g = self.optimizer_for("netG", optimizers)
        g = self.forward()
        opt_g.zero_grad(set_to_none=True)
        losses, total = self.generator_losses(g)
        self.backward(total)
        self.optimizer_step(opt_g)
        self.g = self.keep(g)
        return {k: v.detach() for k, v in losses.items()}

    # ---- evaluation ---------------------------------------------------------------------------
    def eval_losses(self, g):
        """{name: 0-dim tensor} measured on every validation batch."""
        losses = {"l1_loss": F.l1_loss(g.float(), self.y.float())}
        if self.EXPERT in self.nets:
            losses["sync_loss"] = get_sync_loss(self.mel, g, self.nets[self.EXPERT])
        return losses

    @torch.no_grad()
    def test_iter(self, metrics=None):
        """Generate in eval mode; metrics get (generated, target) RGB frames in [0, 1]. Every
        `max_eval_steps` batches the averaged losses are logged and, with a sync loss below 0.75,
        syncnet_wt becomes 0.01 (PaddleGAN)."""
        nets = [n for k, n in self.nets.items() if k != self.EXPERT]
        modes = [n.training for n in nets]
        for n in nets:
            n.eval()
        try:
            g = self.forward()
            losses = self.eval_losses(g)
        finally:
            for n, mode in zip(nets, modes):
                n.train(mode)
        for k, v in losses.items():
            self.eval_sums[k] = self.eval_sums.get(k, 0.) + v.detach().float()
        pred, target = _unit_rgb(g), _unit_rgb(self.y)
        self.visual_items.clear()
        self.visual_items.update(masked=_unit_rgb(self.x[:, :3]) * 2 - 1, output=pred * 2 - 1, target=target * 2 - 1)
        for metric in (metrics or {}).values():
            metric.update(pred, target)
        self.eval_step += 1
        if self.eval_step >= self.max_eval_steps:
            self.finish_eval_round()

    def finish_eval_round(self):
        """Average the recorded validation losses (one host read), adjust syncnet_wt, reset."""
        means = {k: float(v) / self.eval_step for k, v in self.eval_sums.items()}
        if means.get("sync_loss", float("inf")) < SYNC_LOSS_THRESHOLD and self.syncnet_wt < SYNCNET_WT_ON:
            self.syncnet_wt = SYNCNET_WT_ON
        _log("wav2lip validation: " + ", ".join(f"{k} {v:.4f}" for k, v in means.items())
                          + f"; syncnet_wt {self.syncnet_wt}")
        self.eval_step, self.eval_sums = 0, {}
        return means

    def visuals(self):
        if getattr(self, "g", None) is None:
            return dict(self.visual_items)
        return {"output": _unit_rgb(self.g) * 2 - 1, "target": _unit_rgb(self.y) * 2 - 1}


@MODELS.register()
class Wav2LipModelHq(Wav2LipModel):
    """Wav2Lip with the visual-quality discriminator (PaddleGAN's `Wav2LipModelHq`).

    Args:
        generator (dict): `Wav2Lip` config; 'netG' (Kaiming-uniform init as PaddleGAN).
        discriminator_sync (dict | None): the expert (`SyncNetColor`); 'netDS', frozen.
        discriminator_hq (dict | None): `Wav2LipDiscQual`; 'netDH' (Kaiming-uniform init).
        syncnet_wt (float): sync loss weight (0 -> 0.01 as in `Wav2LipModel`). Default: 1.0.
        disc_wt (float): weight of the perceptual (adversarial) loss. Default: 0.07.
        max_eval_steps, is_train, syncnet_weight_path: as `Wav2LipModel`.
    Losses: sync_loss (while syncnet_wt > 0), l1_loss, perceptual_loss (while disc_wt > 0),
        disc_real_loss, disc_fake_loss.
    """

    G_INIT = dict(init_type="kaiming", distribution="uniform")
    EXPERT = "netDS"
    EXPERT_KEY = "discriminator_sync"

    def __init__(self, generator, discriminator_sync=None, discriminator_hq=None, syncnet_wt=1.0, disc_wt=0.07,
                 max_eval_steps=700, is_train=True, syncnet_weight_path=SYNCNET_WEIGHTS):
        self.disc_wt = self._weight(disc_wt, "disc_wt")
        super().__init__(generator, discriminator_sync, syncnet_wt, max_eval_steps, is_train, syncnet_weight_path)
        if self.syncnet_wt + self.disc_wt > 1.:
            raise ConfigError(f"model.syncnet_wt + model.disc_wt must be <= 1, got {self.syncnet_wt} + {self.disc_wt}")
        if self.is_train:
            if not discriminator_hq:
                raise ConfigError("Wav2LipModelHq training needs model.discriminator_hq: {name: Wav2LipDiscQual}")
            self.nets["netDH"] = init_weights(build_discriminator(discriminator_hq), **self.G_INIT)

    def generator_losses(self, g):
        losses = {"l1_loss": F.l1_loss(g.float(), self.y.float())}
        total = (1. - self.syncnet_wt - self.disc_wt) * losses["l1_loss"]
        if self.syncnet_wt > 0.:
            losses["sync_loss"] = self.sync_loss(g)
            total = total + self.syncnet_wt * losses["sync_loss"]
        if self.disc_wt > 0.:
            net_dh = self.nets["netDH"]
            with self.frozen(net_dh):  # G's step: netDH's gradients are not wanted (PaddleGAN clears them)
                pred = net_dh(g)  # = Wav2LipDiscQual.perceptual_forward, with the BCE in float32
                losses["perceptual_loss"] = bce(pred, torch.ones_like(pred))
            total = total + self.disc_wt * losses["perceptual_loss"]
        return losses, total

    def train_iter(self, optimizers=None):
        opt_g = self.optimizer_for("netG", optimizers)
        opt_dh = self.optimizer_for("netDH", optimizers)
        net_dh = self.nets["netDH"]
        g = self.forward()

        # G step: L1 + (frozen expert) sync + (frozen netDH) perceptual terms.
        opt_g.zero_grad(set_to_none=True)
        losses, total = self.generator_losses(g)
        self.backward(total)
        self.optimizer_step(opt_g)

        # netDH step: targets are real, generated faces (detached) fake.
        opt_dh.zero_grad(set_to_none=True)
        pred_real = net_dh(self.y)
        pred_fake = net_dh(g.detach())
        losses["disc_real_loss"] = bce(pred_real, torch.ones_like(pred_real))
        losses["disc_fake_loss"] = bce(pred_fake, torch.zeros_like(pred_fake))
        self.backward(losses["disc_real_loss"] + losses["disc_fake_loss"])
        self.optimizer_step(opt_dh)

        self.g = self.keep(g)
        return {k: v.detach() for k, v in losses.items()}

    def eval_losses(self, g):
        losses = super().eval_losses(g)
        if "netDH" in self.nets:
            net_dh = self.nets["netDH"]
            pred_real, pred_fake = net_dh(self.y), net_dh(g)
            losses["disc_real_loss"] = bce(pred_real, torch.ones_like(pred_real))
            losses["disc_fake_loss"] = bce(pred_fake, torch.zeros_like(pred_fake))
            losses["perceptual_loss"] = bce(pred_fake, torch.ones_like(pred_fake))
        return losses

"""Unconditional and class-conditional GANs (Goodfellow et al., 2014; Mirza & Osindero, 2014).

PaddleGAN's `GANModel` interface and config keys (`generator`, `discriminator`,
`gan_criterion`, `params`). `DCGANModel` is the same model under PaddleGAN's DCGAN name.

Options, each one switch in `params` (all off by default, so PaddleGAN configs train as before):
- `ema_decay`: a moving average of G's weights, `netG_ema` (Karras et al. 2018; Yazici et al.
  2019), updated after every G step, used for the sample grids and `test_iter`, saved beside netG
  and preferred at inference.
- ImprovedGAN (Salimans et al., 2016, https://arxiv.org/abs/1606.03498; facts from
  openai/improved-gan): `feature_matching` (G matches the batch mean of D's last hidden layer on
  real vs fake), `historical_averaging` (penalty ||theta - running mean of theta||^2 on G and D).
  One-sided label smoothing is `gan_criterion.label_smoothing`; minibatch discrimination and
  virtual batch norm are options of the nets (DCDiscriminator `minibatch_kernels`, DCGenerator
  `norm_type: virtual_batch`).
- PacGAN (Lin et al., 2018, https://arxiv.org/abs/1712.04086; facts from fjxmlzn/PacGAN):
  `pack` m > 1: D judges packs of m samples stacked along channels (real with real, fake with
  fake), so its input_nc is m * C. The loader's batch of B images makes B / m real packs and G
  draws B fakes for B / m fake packs: set `dataset.train.batch_size` = packs per step * m.
- InfoGAN (Chen et al., 2016, https://arxiv.org/abs/1606.03657; facts from openai/InfoGAN): a
  generator with a categorical code (DCGenerator `n_categorical` K) gets `netQ`, a small head on
  D's last hidden features that predicts the code of a fake. Its cross-entropy, weighted by
  `info_weight` (lambda, default 1), is the variational lower bound of the mutual information
  I(code; G(z, code)) up to the code's entropy; D and netQ minimise it in the D step
  (D_info_loss), G in the G step (G_info_loss). No labels are used; the code should become a
  factor of variation of its own (on MNIST, the digit). On the embedded digits in 2,500
  iterations it becomes one of style, not of digit (configs/infogan_digits.yaml has the figures).
- Self-conditioned GAN (Liu et al., 2020, https://arxiv.org/abs/2006.10728; facts from
  stevliu/self-conditioned-gan): `self_condition` true makes the GAN conditional on clusters of
  the real images, found without labels by k-means on D's last hidden features. G takes a
  categorical code (DCGenerator `n_categorical` K, the clusters) and D a class (`n_class` K, a
  projection). At each iteration of `recluster_iters` the last `cluster_bank` real images are
  clustered with the current D (frozen as netD_cluster), the new clusters get the old ids they
  overlap most (Hungarian matching) and G's code prior becomes the clusters' sizes; every real
  image is labelled with its nearest centroid under netD_cluster, and its fake partner gets the
  same code. Before the first clustering the codes are drawn at random (no information). A
  continuous latent must bend between the data's disconnected modes (here the ten digits) and
  draws two-digit blends there; a code per cluster lets G jump instead (configs/dcgan_digits.yaml
  has the figures).
"""
import copy
import inspect

import torch
import torch.distributed as dist

from ..modules.clustering import ClusterBank, kmeans, match_clusters
from ..modules.improved_gan import HistoricalAverage, feature_matching_loss, pack
from ..modules.init import init_weights
from ..utils.errors import ConfigError
from .base_model import BaseModel
from .builder import MODELS
from .criterions.builder import build_criterion
from .criterions.gan_loss import gradient_penalty
from .ema import copy_net, ema_update, fill_averages, fixed_grids, state_with_averages
from .discriminators.builder import build_discriminator
from .generators.builder import build_generator

PARAM_KEYS = ("disc_iters", "disc_start_iters", "samples_every_row", "visual_interval", "gp_weight",
              "clip_value", "init_type", "init_gain", "n_samples", "sample_seed",
              "ema_decay", "ema_start_iters", "feature_matching", "historical_averaging", "pack",
              "info_weight", "self_condition", "recluster_iters", "cluster_bank")
EMA = "netG_ema"
KMEANS_ITERS = 30       # Lloyd iterations per clustering (converged on 8,192 digits well before)
CLUSTER_SEED = 5318008  # k-means' own seed (plus the iteration): clustering leaves the global RNG alone


@MODELS.register()
class GANModel(BaseModel):
    """Args:
        generator (dict): generator config; the net must offer `random_inputs(batch_size)`
            returning z or [z, class_id] (conditional).
        discriminator (dict): discriminator config; called as D(img) or D(img, class_id).
        gan_criterion (dict): a `GANLoss` config (gan_mode vanilla | lsgan | wgan | wgangp | hinge).
        params (dict): disc_iters (G steps once every k iterations, default 1),
            disc_start_iters (no G step before, default 0), gp_weight (WGAN-GP, default 10),
            clip_value (WGAN weight clipping, default 0.01), init_type / init_gain
            (default normal / 0.02), samples_every_row (grid width, default 8),
            n_samples (fixed samples in the grid, default 64), sample_seed (default 0);
            ema_decay (netG_ema <- decay * netG_ema + (1 - decay) * netG after each G step;
            0 = no netG_ema, default 0), ema_start_iters (before it netG_ema copies netG,
            default 0); feature_matching (weight of the feature-matching loss added to G's loss,
            default 0; with gan_criterion.loss_weight 0 it is G's only objective, as in the
            paper); historical_averaging (weight of the penalty on G and D, default 0);
            pack (PacGAN's m, default 1; D's input_nc must be m * C); info_weight (InfoGAN's
            lambda for a generator with `n_categorical`, default 1); self_condition (Liu et al.
            2020, default false: the code of a generator with `n_categorical` K is a cluster of
            the real images, D needs `n_class` K), recluster_iters (iterations at which the
            images are clustered again, default [500, 1000, 2000]), cluster_bank (real images
            kept for clustering, default 8192).
    Batches: {'img': [N, C, H, W] in [-1, 1], optional 'class_id': [N] int64}.
    Nets: netG, netD, and with the options netG_ema (no optimizer), netG_hist / netD_hist
    (the historical averages, buffers only), netQ (InfoGAN; list it in optimizer_D's net_names),
    netD_cluster and cluster_bank (self-conditioning: D's copy at the last clustering, the images
    and centroids; no optimizer; in checkpoints, not in weight files).
    Losses: D_fake_loss, D_real_loss (+ D_gp_loss for wgangp, D_hist_loss, D_info_loss), G_adv_loss
    (+ G_fm_loss, G_hist_loss, G_info_loss) on iterations with a G step.
    """

    param_keys = PARAM_KEYS  # subclasses with more params extend it

    @property
    def checkpoint_only_nets(self):
        """Nets only training needs (the clustering's bank of real images and D's frozen copy):
        saved in checkpoints for resume, left out of the weight files; `--load` of a weight file
        starts them afresh, and the run clusters again at its recluster_iters."""
        return ("netD_cluster", "cluster_bank") if self.self_condition else ()

    def __init__(self, generator, discriminator=None, gan_criterion=None, params=None):
        super().__init__(params)
        self.check_param_keys(self.param_keys)
        p = self.params
        self.disc_iters = int(p.get("disc_iters", 1))
        self.disc_start_iters = int(p.get("disc_start_iters", 0))
        self.samples_every_row = int(p.get("samples_every_row", 8))
        self.gp_weight = float(p.get("gp_weight", 10.0))
        self.clip_value = float(p.get("clip_value", 0.01))
        self.n_samples = int(p.get("n_samples", 64))
        self.sample_seed = int(p.get("sample_seed", 0))
        self.ema_decay = float(p.get("ema_decay", 0.0))
        self.ema_start_iters = int(p.get("ema_start_iters", 0))
        self.feature_matching = float(p.get("feature_matching", 0.0))
        self.historical_averaging = float(p.get("historical_averaging", 0.0))
        self.pack = int(p.get("pack", 1))
        self.info_weight = float(p.get("info_weight", 1.0))
        self.self_condition = bool(p.get("self_condition", False))
        self.recluster_iters = self._recluster_schedule(p.get("recluster_iters", [500, 1000, 2000]))
        self.cluster_bank_size = int(p.get("cluster_bank", 8192))
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"model.params.ema_decay must be in [0, 1) (0 = off), got {self.ema_decay}")
        if self.ema_start_iters < 0:
            raise ConfigError(f"model.params.ema_start_iters must be >= 0, got {self.ema_start_iters}")
        if self.feature_matching < 0 or self.historical_averaging < 0:
            raise ConfigError("model.params.feature_matching and historical_averaging must be >= 0")
        if self.pack < 1:
            raise ConfigError(f"model.params.pack must be >= 1, got {self.pack}")
        if self.info_weight < 0:
            raise ConfigError(f"model.params.info_weight must be >= 0, got {self.info_weight}")
        init_type, init_gain = p.get("init_type", "normal"), float(p.get("init_gain", 0.02))

        self.nets["netG"] = init_weights(build_generator(generator), init_type, init_gain)
        self.n_class = int(getattr(self.nets["netG"], "n_class", 0))
        self.n_categorical = int(getattr(self.nets["netG"], "n_categorical", 0))
        if self.self_condition and self.n_categorical < 2:
            raise ConfigError("model.params.self_condition needs a generator with a categorical code: set "
                              "generator.n_categorical to the number of clusters (e.g. 100)")
        if discriminator is not None:
            self.nets["netD"] = init_weights(build_discriminator(discriminator), init_type, init_gain)
            self._check_discriminator(self.nets["netD"])
            if self.n_categorical and not self.self_condition:
                self.nets["netQ"] = init_weights(self._build_q_head(), init_type, init_gain)
            if self.self_condition:
                self._build_clustering()
        if self.ema_decay > 0:
            self.nets[EMA] = copy.deepcopy(self.nets["netG"]).requires_grad_(False).eval()
        if self.historical_averaging > 0 and discriminator is not None:
            self.nets["netG_hist"] = HistoricalAverage(self.nets["netG"])
            self.nets["netD_hist"] = HistoricalAverage(self.nets["netD"])
        self.criterionGAN = build_criterion(gan_criterion) if gan_criterion else None
        self._fixed_inputs = None
        self._real_features = self._z = None

    def _check_discriminator(self, net_d):
        for needs, what in ((self.feature_matching > 0, "model.params.feature_matching"),
                            (self.n_categorical > 0, "generator.n_categorical (InfoGAN, self-conditioning)")):
            if needs and "return_features" not in inspect.signature(net_d.forward).parameters:
                raise ConfigError(f"{what} needs a discriminator with "
                                  f"forward(x, return_features=True); {type(net_d).__name__} has none")
        if self.n_categorical and (self.n_class or self.pack > 1):
            raise ConfigError("generator.n_categorical (InfoGAN, self-conditioning) is for unconditional GANs "
                              "without packing")
        d_classes = int(getattr(net_d, "n_class", 0) or 0)
        if self.self_condition and d_classes != self.n_categorical:
            raise ConfigError(f"model.params.self_condition: discriminator.n_class must equal the generator's "
                              f"n_categorical ({self.n_categorical} clusters), got {d_classes}")
        if d_classes and not (self.n_class or self.self_condition):
            raise ConfigError(f"discriminator.n_class is {d_classes} but the generator draws no classes; "
                              "set model.params.self_condition (clusters as classes) or n_class 0")
        if self.pack > 1:
            if self.n_class:
                raise ConfigError("model.params.pack > 1 (PacGAN) is for unconditional GANs; "
                                  "this generator is class-conditional")
            c_in, c_out = getattr(net_d, "input_nc", None), getattr(self.nets["netG"], "output_nc", None)
            if c_in is not None and c_out is not None and c_in != c_out * self.pack:
                raise ConfigError(f"model.discriminator.input_nc must be generator.output_nc * pack = "
                                  f"{c_out} * {self.pack} = {c_out * self.pack} (PacGAN), got {c_in}")

    @torch.no_grad()
    def _probe(self, cond=(), generator=None):
        """(G's images, D's last hidden features) for two latents, both nets in eval mode for the
        pass and put back; sizes the heads and banks built on top of them."""
        net_g, net_d = self.nets["netG"], self.nets["netD"]
        modes = net_g.training, net_d.training
        net_g.eval(), net_d.eval()
        img = net_g(net_g.random_inputs(2, generator=generator))
        _, feat = net_d(img, *cond, return_features=True)
        net_g.train(modes[0]), net_d.train(modes[1])
        return img, feat

    @torch.no_grad()
    def _build_q_head(self):
        """InfoGAN's Q: D's last hidden features -> K code logits (a hidden layer of 128, as in
        the paper's MNIST net). The feature size comes from one forward pass of G and D."""
        _, feat = self._probe()
        return torch.nn.Sequential(torch.nn.Linear(feat.shape[1], 128), torch.nn.LeakyReLU(0.2),
                                   torch.nn.Linear(128, self.n_categorical))

    # ---- self-conditioning ---------------------------------------------------------------
    @staticmethod
    def _recluster_schedule(value):
        iters = [value] if isinstance(value, int) else list(value or [])
        if not iters or any(not isinstance(i, int) or isinstance(i, bool) or i < 1 for i in iters) \
                or iters != sorted(set(iters)):
            raise ConfigError(f"model.params.recluster_iters must be increasing iterations >= 1, got {value!r}")
        return iters

    @torch.no_grad()
    def _build_clustering(self):
        """netD_cluster (D's copy at the last clustering) and the bank, sized by one forward pass
        of G and D on latents of a local generator (the global RNG is not drawn from)."""
        if self.cluster_bank_size < self.n_categorical:
            raise ConfigError(f"model.params.cluster_bank ({self.cluster_bank_size}) must hold at least as many "
                              f"images as there are clusters ({self.n_categorical})")
        img, feat = self._probe([torch.zeros(2, dtype=torch.long)], torch.Generator().manual_seed(0))
        self.nets["netD_cluster"] = copy.deepcopy(self.nets["netD"]).requires_grad_(False).eval()
        self.nets["cluster_bank"] = ClusterBank(self.cluster_bank_size, tuple(img.shape[1:]), self.n_categorical,
                                                feat[0].numel())

    @torch.no_grad()
    def _cluster_features(self, images, batch=1024):
        net, parts = self.nets["netD_cluster"], []
        for i in range(0, images.shape[0], batch):
            chunk = images[i:i + batch]
            parts.append(net(chunk, torch.zeros(chunk.shape[0], dtype=torch.long, device=chunk.device),
                             return_features=True)[1])
        return torch.cat(parts)

    @torch.no_grad()
    def recluster(self):
        """Cluster the bank's images on D's features (D frozen into netD_cluster), give the new
        clusters the ids of the old ones they overlap most, and set G's code prior to their sizes."""
        bank, k = self.nets["cluster_bank"], self.n_categorical
        images = bank.stored()
        if images.shape[0] < k:
            raise ConfigError(f"self-conditioning: {images.shape[0]} real images seen at iteration "
                              f"{self.current_iter}, fewer than the {k} clusters; start recluster_iters later")
        first = self.current_iter == self.recluster_iters[0]
        old = None if first else bank.assign(self._cluster_features(images))
        copy_net(self.nets["netD_cluster"], self.nets["netD"])
        feats = bank.embed(self._cluster_features(images))
        gen = torch.Generator().manual_seed(CLUSTER_SEED + self.current_iter)
        with torch.autocast(self.device.type, enabled=False):
            assign, centroids = kmeans(feats, k, KMEANS_ITERS, generator=gen)
        if old is not None:
            perm = match_clusters(assign, old, k).to(assign.device)
            assign = perm[assign]
            centroids = torch.empty_like(centroids).index_copy_(0, perm, centroids)
        bank.centroids.copy_(centroids)
        prior = torch.bincount(assign, minlength=k).to(self.nets["netG"].code_prior)
        self.nets["netG"].code_prior.copy_(prior)
        if self.distributed:  # every process takes the first one's clusters
            dist.broadcast(bank.centroids, src=0)
            dist.broadcast(self.nets["netG"].code_prior, src=0)

    def _cluster_labels(self):
        """Codes [B] for this batch: its images' clusters (after the first clustering; drawn from G's
        prior before). The bank keeps the batch while a clustering is still to come."""
        bank = self.nets["cluster_bank"]
        if self.current_iter <= self.recluster_iters[-1]:
            bank.push(self.real)
        if self.current_iter in self.recluster_iters:
            self.recluster()
        if self.current_iter < self.recluster_iters[0]:
            return self.nets["netG"].random_codes(self.real.shape[0], device=self.device)
        return bank.assign(self._cluster_features(self.real))

    def _info_loss(self, features, z):
        """lambda * cross-entropy of netQ's code prediction from D's features of G(z)."""
        codes = self.nets["netG"].code_of(z)
        return self.info_weight * torch.nn.functional.cross_entropy(self.nets["netQ"](features), codes)

    # ---- moving average ------------------------------------------------------------------
    def train(self):
        super().train()
        for frozen in (EMA, "netD_cluster"):  # never trained: stay in eval mode
            if frozen in self.nets:
                self.nets[frozen].eval()

    def optimizer_config(self, optimizer, lr_scheduler):
        """Refuse an optimizer over netG_ema, the historical averages or the clustering's nets
        (they are not trained)."""
        groups = {"optim": optimizer} if isinstance(optimizer, dict) and "name" in optimizer else optimizer
        trained = set()
        for name, ocfg in (groups or {}).items():
            for net in (ocfg.get("net_names") or ()) if isinstance(ocfg, dict) else ():
                if net in (EMA, "netD_cluster", "cluster_bank") or str(net).endswith("_hist"):
                    raise ConfigError(f"optimizer.{name}.net_names: '{net}' is not trained "
                                      "(a moving average, a frozen copy or a bank)")
                trained.add(net)
        if "netQ" in self.nets and groups and "netQ" not in trained:
            raise ConfigError("InfoGAN's netQ has no optimizer: add netQ to optimizer_D's net_names")
        return optimizer, lr_scheduler

    @torch.no_grad()
    def accumulate(self):
        """netG_ema <- decay * netG_ema + (1 - decay) * netG on parameters (a copy before
        `ema_start_iters`); buffers (batch-norm statistics, VBN's reference latents) copied."""
        if EMA not in self.nets:
            return
        ema, gen = self.nets[EMA], self.nets["netG"]
        weight = 1.0 if self.current_iter < self.ema_start_iters else 1.0 - self.ema_decay
        ema_update(ema, gen, weight)

    def fill_missing_ema(self, loaded):
        """After `--load` of the nets in `loaded`: a file with netG but no netG_ema (PaddleGAN's,
        or a run without EMA) starts the average from netG; historical averages restart from the
        loaded parameters. Returns the names filled."""
        filled = fill_averages(self.nets, loaded)
        for name in ("netG", "netD"):
            hist = name + "_hist"
            if hist in self.nets and name in loaded and hist not in loaded:
                self.nets[hist].reset(self.nets[name])
                filled.append(hist)
        return filled

    def load_state_dict(self, state, strict=True):
        """As BaseModel's; a state without netG_ema / the historical averages (a run without
        them, PaddleGAN's files) starts them from the loaded netG / netD."""
        state = state_with_averages(self.nets, state)
        restart = [n for n in ("netG", "netD") if n + "_hist" in self.nets and n in state and n + "_hist" not in state]
        for n in restart:
            state[n + "_hist"] = self.nets[n + "_hist"].state_dict()
        super().load_state_dict(state, strict=strict)
        for n in restart:
            self.nets[n + "_hist"].reset(self.nets[n])

    def sampler(self):
        """The generator that makes samples: netG_ema when the model has one."""
        return self.nets.get(EMA, self.nets["netG"])

    # ---- inputs --------------------------------------------------------------------------
    def setup_input(self, input):
        if isinstance(input, (list, tuple)):
            input = input[0]
        if not isinstance(input, dict):
            input = {"img": input}
        self.real = input["img"].to(self.device, non_blocking=True)
        self.real_class = input["class_id"].to(self.device).long() if "class_id" in input and self.n_class else None
        if self.pack > 1 and self.real.shape[0] % self.pack:
            raise ConfigError(f"PacGAN: a batch of {self.real.shape[0]} images cannot be split into packs of "
                              f"{self.pack}; make dataset batch_size a multiple of model.params.pack")

    def _g_inputs(self, batch_size, codes=None):
        """G's inputs for a batch; `codes`: the categorical codes to use (self-conditioning)."""
        net_g = self.nets["netG"]
        if codes is not None:
            return [net_g.random_inputs(batch_size, device=self.device, codes=codes)]
        inputs = net_g.random_inputs(batch_size, device=self.device)
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if self.n_class and self.real_class is not None:
            inputs[1] = self.real_class  # sample fakes with the batch's labels (GP needs pairs)
        return inputs

    def fixed_inputs(self):
        """The same latents (and, row by row, classes 0..n_class-1) for every sample grid."""
        if self._fixed_inputs is None:
            gen = torch.Generator().manual_seed(self.sample_seed)
            inputs = self.nets["netG"].random_inputs(self.n_samples, generator=gen)
            inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
            if self.n_class:
                rows = torch.arange(self.n_samples) // self.samples_every_row
                inputs[1] = rows % self.n_class
            self._fixed_inputs = inputs
        return [t.to(self.device) for t in self._fixed_inputs]

    # ---- training ------------------------------------------------------------------------
    def _d_loss(self, net_d, fake, cond):
        """D's loss on packed fakes and reals (pack 1: the images), and D's last hidden features
        on the reals (detached) when feature matching needs them."""
        crit = self.criterionGAN
        real = pack(self.real, self.pack)
        if "netQ" in self.nets:
            pred_fake, feat_fake = net_d(fake.detach(), return_features=True)
        else:
            pred_fake = net_d(pack(fake.detach(), self.pack), *cond)
        if self.feature_matching > 0:
            pred_real, feat_real = net_d(real, *cond, return_features=True)
            self._real_features = self.keep(feat_real)  # a copy under CUDA graphs (D runs again before use)
        else:
            pred_real = net_d(real, *cond)
        losses = {"D_fake_loss": crit(pred_fake, False, is_disc=True),
                  "D_real_loss": crit(pred_real, True, is_disc=True)}
        total = losses["D_fake_loss"] + losses["D_real_loss"]
        if crit.gan_mode in ("vanilla", "lsgan"):
            total = total * 0.5
        if crit.gan_mode == "wgangp":
            with torch.autocast(self.device.type, enabled=False):
                losses["D_gp_loss"] = gradient_penalty(net_d, real.float(), pack(fake, self.pack).float(),
                                                       *cond, weight=self.gp_weight)
            total = total + losses["D_gp_loss"]
        if "netD_hist" in self.nets:
            losses["D_hist_loss"] = self.historical_averaging * self.nets["netD_hist"].penalty(net_d)
            total = total + losses["D_hist_loss"]
        if "netQ" in self.nets:
            losses["D_info_loss"] = self._info_loss(feat_fake, self._z)
            total = total + losses["D_info_loss"]
        return total, losses

    def _g_loss(self, net_d, fake, cond):
        losses = {}
        if self.feature_matching > 0 or "netQ" in self.nets:
            pred, feat_fake = net_d(pack(fake, self.pack), *cond, return_features=True)
        else:
            pred = net_d(pack(fake, self.pack), *cond)
        if self.feature_matching > 0:
            # the reals' features come from this iteration's D step (before D's update)
            losses["G_fm_loss"] = self.feature_matching * feature_matching_loss(self._real_features, feat_fake)
        if "netQ" in self.nets:
            losses["G_info_loss"] = self._info_loss(feat_fake, self._z)
        losses["G_adv_loss"] = self.criterionGAN(pred, True)
        if "netG_hist" in self.nets:
            losses["G_hist_loss"] = self.historical_averaging * self.nets["netG_hist"].penalty(self.nets["netG"])
        return sum(losses.values()), losses

    def train_iter(self, optimizers=None):
        net_g, net_d = self.nets["netG"], self.nets["netD"]
        opt_g, opt_d = self.optimizer_for("netG", optimizers), self.optimizer_for("netD", optimizers)
        codes = self._cluster_labels() if self.self_condition else None
        g_inputs = self._g_inputs(self.real.shape[0], codes)
        cond = g_inputs[1:2] if self.n_class else [codes] if codes is not None else []
        self._z = g_inputs[0]
        fake = net_g(*g_inputs)

        # D step: D learns, G's output is detached.
        opt_d.zero_grad(set_to_none=True)
        loss_d, losses = self._d_loss(net_d, fake, cond)
        self.backward(loss_d)
        self.optimizer_step(opt_d)
        if self.criterionGAN.gan_mode == "wgan":
            with torch.no_grad():
                for p in net_d.parameters():
                    p.clamp_(-self.clip_value, self.clip_value)
        if "netD_hist" in self.nets:
            self.nets["netD_hist"].update(net_d)

        # G step every `disc_iters` iterations, with D frozen (its parameters take no gradient).
        if self.current_iter >= self.disc_start_iters and self.current_iter % self.disc_iters == 0:
            opt_g.zero_grad(set_to_none=True)
            with self.frozen(net_d, self.nets.get("netQ")):
                loss_g, g_losses = self._g_loss(net_d, fake, cond)
                self.backward(loss_g)
            self.optimizer_step(opt_g)
            losses.update(g_losses)
            if "netG_hist" in self.nets:
                self.nets["netG_hist"].update(net_g)
            self.accumulate()
        self.fake = self.keep(fake)
        self._real_features = self._z = None
        return {k: v.detach() for k, v in losses.items()}

    # ---- evaluation ----------------------------------------------------------------------
    @torch.no_grad()
    def test_iter(self, metrics=None):
        """Generate a batch like the current real one; metrics get (fake, real), or
        (fake, requested class ids) when they declare `needs_class_id`. Uses netG_ema when present."""
        net_g = self.sampler()
        was_training = net_g.training
        net_g.eval()
        g_inputs = self._g_inputs(self.real.shape[0])
        self.fake = net_g(*g_inputs)
        net_g.train(was_training)
        self.visual_items["fake"] = self.fake
        self.visual_items["real"] = self.real
        for metric in (metrics or {}).values():
            if getattr(metric, "needs_class_id", False):
                if self.n_class:
                    metric.update(self.fake, g_inputs[1])
            else:
                metric.update(self.fake, self.real)

    @torch.no_grad()
    def visuals(self):
        """The fixed grid from netG ('fixed_samples') and, with EMA, from netG_ema ('fixed_samples_ema')."""
        return fixed_grids(self.nets, self.fixed_inputs(), average=EMA)


@MODELS.register()
class DCGANModel(GANModel):
    """PaddleGAN's DCGAN model name (configs/dcgan_mnist.yaml): a `GANModel` without `params`."""

    def __init__(self, generator, discriminator=None, gan_criterion=None, params=None):
        super().__init__(generator, discriminator, gan_criterion, params)

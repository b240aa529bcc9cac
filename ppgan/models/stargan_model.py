"""StarGAN: one generator for translations between many domains (Choi et al., 2018,
https://arxiv.org/abs/1711.09020).

The generator reads the image and a target label; the discriminator is a WGAN-GP critic with an
auxiliary classifier of the domain labels. Training follows the paper and its authors' code:
the discriminator steps every iteration (critic on real and translated images, gradient penalty
on random interpolates, classification of the real images' labels), the generator once every
`n_critic` iterations (fool the critic, be classified as the target label, and translate back
to the input: G(G(x, c_trg), c_org) ~ x). Target labels are the batch's own labels shuffled
(within each label group), as in the authors' code.

Several datasets with different label sets train one model through the mask vector: the label
vector is the concatenation of every group's labels (zeros in the groups a sample has no labels
for) and a one-hot mask says which group is known. The generator reads [labels, mask]; the
classification losses only count each sample's active group.
"""
import re

import torch
import torch.nn.functional as F

from ..utils.errors import ConfigError, DatasetError
from .base_model import BaseModel
from .builder import MODELS
from .criterions.gan_loss import gradient_penalty
from .discriminators.builder import build_discriminator
from .generators.builder import build_generator

GROUP_TYPES = ("multi", "exclusive")


def parse_label_groups(label_groups, c_dim=None, selected_attrs=None):
    """The label groups as a list of {'name', 'size', 'type', 'start'} (start: offset in the label
    vector). Default: one 'multi' group of `c_dim` labels (or one per selected attribute)."""
    if label_groups is None:
        if c_dim is None:
            if not selected_attrs:
                raise ConfigError("StarGANModel needs label_groups, c_dim or selected_attrs")
            c_dim = len(selected_attrs)
        label_groups = [{"name": "attributes", "size": c_dim, "type": "multi"}]
    if not isinstance(label_groups, (list, tuple)) or not label_groups:
        raise ConfigError(f"StarGANModel label_groups must be a non-empty list, got {label_groups!r}")
    groups, start = [], 0
    for i, g in enumerate(label_groups):
        where = f"StarGANModel label_groups[{i}]"
        if not isinstance(g, dict) or set(g) - {"name", "size", "type"} or "size" not in g:
            raise ConfigError(f"{where} must be a mapping with keys size, name, type; got {g!r}")
        size, kind = g["size"], g.get("type", "multi")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ConfigError(f"{where}.size must be an integer >= 1, got {size!r}")
        if kind not in GROUP_TYPES:
            raise ConfigError(f"{where}.type must be one of {', '.join(GROUP_TYPES)}; got {kind!r}")
        if kind == "exclusive" and size < 2:
            raise ConfigError(f"{where}: an exclusive group needs >= 2 labels, got {size}")
        groups.append({"name": str(g.get("name", f"group{i}")), "size": size, "type": kind, "start": start})
        start += size
    if c_dim is not None and c_dim != start:
        raise ConfigError(f"StarGANModel c_dim {c_dim} does not match the label_groups' total size {start}")
    if selected_attrs is not None and len(selected_attrs) != start:
        raise ConfigError(f"StarGANModel selected_attrs names {len(selected_attrs)} labels, the label groups "
                          f"have {start}")
    return groups


@MODELS.register()
class StarGANModel(BaseModel):
    """Args:
        generator (dict): a StarGANGenerator config; its `c_dim` is filled in (label length, plus
            the number of groups when there are several) and must match if given.
        discriminator (dict | None): a StarGANDiscriminator config; `c_dim` filled in (label
            length). None builds an inference-only model.
        label_groups (list[dict] | None): [{name, size, type: multi | exclusive}, ...]: 'multi'
            labels are independent attributes (binary cross-entropy), 'exclusive' ones a one-hot
            class (cross-entropy). Default: one 'multi' group of `c_dim` labels.
        c_dim (int | None): total label length (checked against label_groups).
        selected_attrs (list[str] | None): the labels' names, in label order (kept in the
            checkpoint's config for the editing tool; visuals are named after them).
        lambda_cls, lambda_rec, lambda_gp (float): weights of the classification, reconstruction
            and gradient-penalty losses (paper: 1, 10, 10).
        n_critic (int): the generator steps once every n_critic iterations (paper: 5).
    Batches: {'img': [N, 3, H, W] in [-1, 1], 'label': [N, L] 0/1, with several groups also
    'mask': [N, n_groups] one-hot; optional 'img_path'}.
    Losses (train_iter; unweighted terms, as the authors' code logs them): D_adv_real (-critic on
    real), D_adv_fake (critic on fakes), D_cls, D_gp every iteration; G_adv, G_cls, G_rec on
    generator iterations.
    """

    def __init__(self, generator, discriminator=None, label_groups=None, c_dim=None, selected_attrs=None,
                 lambda_cls=1.0, lambda_rec=10.0, lambda_gp=10.0, n_critic=5):
        super().__init__()
        if selected_attrs is not None and (not isinstance(selected_attrs, (list, tuple))
                                           or not all(isinstance(a, str) for a in selected_attrs)):
            raise ConfigError(f"StarGANModel selected_attrs must be a list of names, got {selected_attrs!r}")
        self.groups = parse_label_groups(label_groups, c_dim, selected_attrs)
        self.label_dim = sum(g["size"] for g in self.groups)
        self.n_groups = len(self.groups)
        self.selected_attrs = list(selected_attrs) if selected_attrs else \
            [f"{g['name']}_{i}" for g in self.groups for i in range(g["size"])]
        if n_critic < 1:
            raise ConfigError(f"StarGANModel n_critic must be >= 1, got {n_critic}")
        for key, value in (("lambda_cls", lambda_cls), ("lambda_rec", lambda_rec), ("lambda_gp", lambda_gp)):
            if value < 0:
                raise ConfigError(f"StarGANModel {key} must be >= 0, got {value}")
        self.lambda_cls, self.lambda_rec, self.lambda_gp = float(lambda_cls), float(lambda_rec), float(lambda_gp)
        self.n_critic = int(n_critic)
        g_dim = self.label_dim + (self.n_groups if self.n_groups > 1 else 0)
        g_note = " (labels + mask vector)" if self.n_groups > 1 else ""
        self.nets["generator"] = build_generator(self._with_c_dim(generator, g_dim, "generator", g_note))
        if discriminator:
            self.nets["discriminator"] = build_discriminator(
                self._with_c_dim(discriminator, self.label_dim, "discriminator"))
        self.real = self.label = self.mask = self.image_paths = None
        self.fake = self.rec = None

    @staticmethod
    def _with_c_dim(cfg, c_dim, key, note=""):
        if not isinstance(cfg, dict):
            raise ConfigError(f"StarGANModel {key} must be a mapping with a 'name', got {cfg!r}")
        if cfg.get("c_dim") is not None and cfg["c_dim"] != c_dim:
            raise ConfigError(f"StarGANModel {key}.c_dim is {cfg['c_dim']}, the label groups need {c_dim}{note}")
        return dict(cfg, c_dim=c_dim)

    # ---- inputs --------------------------------------------------------------------------
    def setup_input(self, input):
        self.real = self.image_batch(input)
        self.image_paths = input.get("img_path") if isinstance(input, dict) else None
        label = input.get("label") if isinstance(input, dict) else None
        if label is None:
            raise DatasetError("StarGANModel batches need a 'label' entry")
        label = label.to(self.device, dtype=self.real.dtype, non_blocking=True)
        if label.ndim != 2 or label.shape[1] != self.label_dim:
            got = f"{label.shape[1]} entries" if label.ndim == 2 else f"shape {list(label.shape)}"
            raise DatasetError(f"StarGANModel: the batch's labels have {got}, the model expects {self.label_dim} "
                               f"per image (label_groups: "
                               + ", ".join(f"{g['name']} {g['size']}" for g in self.groups) + ")")
        mask = input.get("mask")
        if mask is None:
            if self.n_groups > 1:
                raise DatasetError(f"StarGANModel with {self.n_groups} label groups needs a 'mask' in every batch")
            mask = torch.ones(label.shape[0], 1)
        mask = mask.to(self.device, dtype=self.real.dtype, non_blocking=True)
        if mask.shape != (label.shape[0], self.n_groups):
            raise DatasetError(f"StarGANModel: the batch's mask is {list(mask.shape)}, expected "
                               f"[{label.shape[0]}, {self.n_groups}] (one entry per label group)")
        self.label, self.mask = label, mask

    def g_label(self, label, mask):
        """What the generator reads: the labels, followed by the mask with several groups."""
        return torch.cat([label, mask], dim=1) if self.n_groups > 1 else label

    # ---- losses --------------------------------------------------------------------------
    def classification_loss(self, logits, label, mask):
        """Domain classification loss summed over each sample's active groups (mask) and averaged
        over the batch: binary cross-entropy summed over a 'multi' group's attributes (as the
        authors' code), cross-entropy over an 'exclusive' group's classes. Groups a sample's mask
        marks inactive contribute exactly zero (no loss, no gradient)."""
        total = logits.new_zeros((), dtype=torch.float32)
        for gi, g in enumerate(self.groups):
            lg, lb = logits[:, g["start"]:g["start"] + g["size"]].float(), label[:, g["start"]:g["start"] + g["size"]]
            if g["type"] == "multi":
                per_sample = F.binary_cross_entropy_with_logits(lg, lb.float(), reduction="none").sum(1)
            else:
                per_sample = F.cross_entropy(lg, lb.argmax(1), reduction="none")
            total = total + torch.where(mask[:, gi] > 0, per_sample, torch.zeros_like(per_sample)).sum()
        return total / logits.shape[0]

    def gradient_penalty(self, real, fake):
        """E[(||grad_x D_src(x_hat)||_2 - 1)^2] on random interpolates x_hat (unweighted)."""
        net_d = self.nets["discriminator"]
        return gradient_penalty(lambda x: net_d(x)[0], real, fake, weight=1.0)

    def target_labels(self, label, mask):
        """Target labels: each sample gets the labels of a random sample of the same group (a
        random permutation within each group; computed on the device, no host sync)."""
        group = mask.argmax(1).to(label.dtype)
        order_a = torch.argsort(group + 0.5 * torch.rand_like(group))  # groups in blocks, random order inside
        order_b = torch.argsort(group + 0.5 * torch.rand_like(group))
        source = torch.empty_like(order_a)
        source[order_a] = order_b
        return label[source]

    # ---- training ------------------------------------------------------------------------
    def train_iter(self, optimizers=None):
        if "discriminator" not in self.nets:
            raise ConfigError("StarGANModel was built without a discriminator: it cannot train")
        G, D = self.nets["generator"], self.nets["discriminator"]
        opt_g, opt_d = self.optimizer_for("generator", optimizers), self.optimizer_for("discriminator", optimizers)
        x, c_org, mask = self.real, self.label, self.mask
        c_trg = self.target_labels(c_org, mask)
        g_org, g_trg = self.g_label(c_org, mask), self.g_label(c_trg, mask)

        # discriminator: critic real vs fake, classify real, gradient penalty
        opt_d.zero_grad(set_to_none=True)
        out_src, out_cls = D(x)
        with torch.no_grad():
            fake = G(x, g_trg)
        losses = {"D_adv_real": -out_src.float().mean(), "D_adv_fake": D(fake)[0].float().mean(),
                  "D_cls": self.classification_loss(out_cls, c_org, mask)}
        losses["D_gp"] = self.gradient_penalty(x, fake)
        self.backward(losses["D_adv_real"] + losses["D_adv_fake"] + self.lambda_cls * losses["D_cls"]
                      + self.lambda_gp * losses["D_gp"])
        self.optimizer_step(opt_d)
        self.fake = self.keep(fake)

        # generator, once every n_critic iterations
        if (self.current_iter + 1) % self.n_critic == 0:
            opt_g.zero_grad(set_to_none=True)
            with self.frozen(D):
                fake = G(x, g_trg)
                out_src, out_cls = D(fake)
                losses["G_adv"] = -out_src.float().mean()
                losses["G_cls"] = self.classification_loss(out_cls, c_trg, mask)
                rec = G(fake, g_org)
                losses["G_rec"] = (x - rec).abs().float().mean()
                self.backward(losses["G_adv"] + self.lambda_cls * losses["G_cls"]
                              + self.lambda_rec * losses["G_rec"])
            self.optimizer_step(opt_g)
            self.fake, rec = self.keep(fake), self.keep(rec)
        else:
            rec = None
        self.visual_items.clear()
        self.visual_items["real"] = self.real.detach()
        self.visual_items["fake"] = self.fake
        if rec is not None:  # generator iterations only
            self.visual_items["rec"] = rec
        return {k: v.detach() for k, v in losses.items()}

    # ---- inference -----------------------------------------------------------------------
    def edit_labels(self, label, mask, index):
        """Labels with label `index` changed: flipped in a 'multi' group, set as the class of an
        'exclusive' group. Samples whose active group is another one keep their labels."""
        g = next(g for g in self.groups if g["start"] <= index < g["start"] + g["size"])
        gi = self.groups.index(g)
        out = label.clone()
        rows = mask[:, gi] > 0
        if g["type"] == "multi":
            out[rows, index] = 1 - label[rows, index]
        else:
            s, e = g["start"], g["start"] + g["size"]
            onehot = torch.zeros_like(label[:, s:e])
            onehot[:, index - s] = 1
            out[rows, s:e] = onehot[rows]
        return out

    @torch.no_grad()
    def test_iter(self, metrics=None):
        """Visuals: the inputs, one translation per label (`fake_<label name>`: that label changed,
        see `edit_labels`), and `rec`: the reconstruction G(G(x, c_trg), c_org) with c_trg the
        labels rolled by one sample within each group. Metrics get (rec, real): MAE is the
        reconstruction L1."""
        G = self.nets["generator"]
        x, c_org, mask = self.real, self.label, self.mask
        mode = G.training
        G.eval()
        try:
            self.visual_items.clear()
            self.visual_items["real"] = x
            for j, name in enumerate(self.selected_attrs):
                c = self.edit_labels(c_org, mask, j)
                self.visual_items[f"fake_{_file_safe(name)}"] = G(x, self.g_label(c, mask))
            c_trg = c_org.clone()
            for gi, g in enumerate(self.groups):
                idx = torch.nonzero(mask[:, gi] > 0).flatten()
                s, e = g["start"], g["start"] + g["size"]
                c_trg[idx, s:e] = c_org[idx.roll(1), s:e]
            self.fake = G(x, self.g_label(c_trg, mask))
            self.rec = G(self.fake, self.g_label(c_org, mask))
            self.visual_items["rec"] = self.rec
        finally:
            G.train(mode)
        for metric in (metrics or {}).values():
            if not getattr(metric, "needs_class_id", False):
                metric.update(self.rec, x)


def _file_safe(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name))

"""Edit the attributes of a face (StarGAN) or restyle an image into another domain (StarGAN v2)
with a model trained by this project's engine.

    from ppgan.apps import StarGANPredictor, StarGANv2Predictor
    pred = StarGANPredictor("output_dir/stargan_celeba-.../iter_200000_weight.pth")
    out = pred.run("face.png", ["Blond_Hair", "Male=0"], output="out.png")       # HxWx3 uint8
    grid = pred.run("face.png", [["Blond_Hair"], ["Young=0"]], output="grid.png", grid=True)
    v2 = StarGANv2Predictor("output_dir/starganv2_afhq-.../iter_100000_weight.pth")
    out = v2.run("cat.png", reference="dog.png", target_domain=1, output="cat_as_dog.png")

Both read an engine weight file (`iter_<N>_weight.pth`: every net's state and, under
`__ppgan__`, the model config it was trained with), build the model that config names
(`StarGANModel` / `StarGANv2Model`) and load its nets strictly; `config=` (a training config or its
`model` section) replaces the stored config, e.g. for a file without one.

StarGAN target labels. The attribute names are the model config's `selected_attrs` (for
`label_groups`, all groups' names one after the other), or `<group>_<i>` (`attributes_0`, ...) when
it has none. A target is a list of names: a name sets that attribute to 1, `Name=0` sets it to 0
(matched case-insensitively when unambiguous; an unknown name lists the valid ones). Every other
attribute of the label group keeps the value the discriminator's classifier finds in the input
(`base='detect'`, the default when the file holds the discriminator; otherwise, or with
`base='zero'`, it is 0: the paper's generator has no classifier of its own). Naming an attribute of
an `exclusive` group sets the rest of that group to 0, and so does naming one of CelebA's hair
colours (Black_Hair, Blond_Hair, Brown_Hair, Gray_Hair) among the others, as the paper's code does.
With several label groups (the mask vector), the attributes named must come from one group: the
mask selects it and the other groups' labels are 0.

Sizes. The image is resized so that its shorter side is the model's training size (the
discriminator's `image_size`; StarGAN v2: the generator's `img_size`, as a square) and each side a
multiple of 4, translated, and resized back: the output has the input's size (and its alpha
channel, untouched). `image_size=0` (StarGAN v1) translates at the input's own resolution.
"""
import contextlib
import logging
import os

import cv2
import numpy as np
import torch
from torch import nn

from ..models import build_model
from ..models.builder import describe_model
from ..utils.config import load_config
from ..utils.errors import CheckpointError, ConfigError, PPGANError, closest
from ..utils.image import imread, imwrite
from ..utils.visual import make_grid
from ..weights import load
from ..weights.load import Weights, load_nets
from .base_predictor import BasePredictor, merge_image, split_image

# CelebA's hair colours: setting one clears the others (yunjey/stargan `create_labels`)
HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
GRID_PADDING = 2
BASES = ("auto", "detect", "zero")


def _read_model_config(weight_path, config, kind):
    """(Weights, model config, source of the config) for a predictor of model `kind`."""
    weights = weight_path if isinstance(weight_path, Weights) else load(_check_path(weight_path))
    where = weights.path or "the weights"
    model_cfg, source = None, "stored in the file"
    if config is not None:
        cfg = load_config(config) if isinstance(config, (str, os.PathLike)) else config
        if not isinstance(cfg, dict):
            raise ConfigError(f"config {config} is not a mapping")
        model_cfg, source = (cfg["model"] if isinstance(cfg.get("model"), dict) else cfg), "given"
    elif isinstance(weights.config, dict):
        model_cfg = weights.config
    if model_cfg is None:
        raise CheckpointError(f"{where} carries no model config (not written by this project's training?): "
                              "pass --config with the training config")
    name = model_cfg.get("name")
    if name != kind:
        other = {"StarGANModel": "StarGANPredictor", "StarGANv2Model": "StarGANv2Predictor"}.get(name)
        hint = f" (use {other})" if other else ""
        raise CheckpointError(f"{where}: the model config {source} builds {describe_model(model_cfg)}, not a "
                              f"{kind}{hint}")
    return weights, dict(model_cfg), source


def _check_path(path):
    if path is None or path == "":
        raise CheckpointError("no weight file given: pass --weight_path FILE (an iter_<N>_weight.pth of training)")
    return path


def _first_conv_in(state):
    """Input channels of the first 4-D weight of a state dict (the generator's first conv)."""
    for k, v in state.items():
        if k.endswith("weight") and getattr(v, "ndim", 0) == 4:
            return int(v.shape[1])
    return None


def _load_nets(model, weights, need):
    """Load the nets the file holds into `model`; CheckpointError unless all of `need` are among them."""
    loaded = load_nets(model.nets, weights, strict=True)
    missing = [n for n in need if n in model.nets and n not in loaded]
    if missing:
        raise CheckpointError(f"{weights.path or 'the weights'} has no '{missing[0]}' weights (it has: "
                              f"{', '.join(map(str, weights.states))})")
    return loaded


def _read_image(image, what="input"):
    """(rgb float32 HxWx3 in [0, 1], alpha or None, layout) of a path or an array."""
    if isinstance(image, (str, os.PathLike)):
        image = imread(image, mode="unchanged")
    elif not isinstance(image, np.ndarray):
        raise PPGANError(f"{what} must be an image file or an HxWx3 uint8 array, got {type(image).__name__}")
    return split_image(image)


def _resize(rgb, hw):
    h, w = rgb.shape[:2]
    if (h, w) == tuple(hw):
        return rgb
    interp = cv2.INTER_AREA if hw[0] * hw[1] < h * w else cv2.INTER_CUBIC
    return np.clip(cv2.resize(rgb, (hw[1], hw[0]), interpolation=interp), 0.0, 1.0)


def _to_tensor(rgb):
    """HxWx3 float in [0, 1] -> [1, 3, H, W] in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)) * 2.0 - 1.0)[None].float()


def _to_rgb(t):
    """[1, 3, H, W] in [-1, 1] -> HxWx3 float32 in [0, 1]."""
    return ((t[0].float().cpu().clamp(-1, 1) + 1.0) / 2.0).permute(1, 2, 0).numpy()


def _grid(rgbs):
    """One row of HxWx3 float images (all of one size), white padding -> HxWx3 uint8."""
    t = torch.stack([torch.from_numpy(np.ascontiguousarray(r.transpose(2, 0, 1))) for r in rgbs])
    g = make_grid(t, nrow=len(rgbs), padding=GRID_PADDING, pad_value=1.0)
    return (g.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)


def _write(path, img):
    """Write `img` atomically (`imwrite`: a temp file beside `path`, then renamed)."""
    imwrite(path, img)
    return os.fspath(path)


def _finish(pred, rgb, outs, alpha, layout, output, grid, several):
    """What `run` returns and writes: the grid (input + results in a row), or the results in the
    input's layout (a list when `several`); sets `pred.last_output` to the path(s) written."""
    pred.last_output = None
    if grid:
        img = _grid([rgb] + outs)
        if output:
            pred.last_output = _write(output, img)
        return img
    imgs = [merge_image(o, alpha, layout, keep_gray=False) for o in outs]
    if output:
        if len(imgs) == 1:
            pred.last_output = _write(output, imgs[0])
        else:
            stem, ext = os.path.splitext(os.fspath(output))
            pred.last_output = [_write(f"{stem}_{k}{ext}", im) for k, im in enumerate(imgs, 1)]
    return imgs if several else imgs[0]


def _target_sets(target_attrs):
    """(list of targets, several?) of `run`'s `target_attrs`: one target ('A,B', [names], {name: v})
    or a list of them."""
    if isinstance(target_attrs, (str, dict)):
        return [target_attrs], False
    target_attrs = list(target_attrs)
    if target_attrs and all(isinstance(t, (list, tuple, dict)) for t in target_attrs):
        return target_attrs, True
    return [target_attrs], False


class _Conditioned(nn.Module):
    """`net(x, c)` as a one-input net for `BasePredictor.forward_image` (instance norm sees the
    whole image: never tiled)."""

    tileable = False

    def __init__(self, net, c):
        super().__init__()
        self.net, self.c = net, c

    def forward(self, x):
        return self.net(x, self.c.to(x.device))


class StarGANPredictor(BasePredictor):
    """Args:
        weight_path (str | Weights): an engine weight file (`iter_<N>_weight.pth`) or checkpoint of a
            `StarGANModel`.
        config (str | dict | None): the training config (path or dict) or its `model` section;
            default: the config stored in the file.
        device (str): 'auto', 'cpu' or 'cuda'.
        image_size (int | None): shorter side the image is translated at; None: the training
            size (discriminator `image_size`); 0: the input's own size.
        base (str): where unnamed attributes come from: 'detect' (the discriminator's classifier
            on the input), 'zero', or 'auto' (detect when the file holds the discriminator).
        half, verbose: as every predictor.
    """

    name = "StarGAN"

    def __init__(self, weight_path, config=None, device="auto", image_size=None, base="auto", half=None,
                 verbose=True):
        if base not in BASES:
            raise ConfigError(f"base must be one of {', '.join(BASES)}, got {base!r}")
        weights, model_cfg, source = _read_model_config(weight_path, config, "StarGANModel")
        self.weight_path = weights.path
        self.model_cfg = model_cfg
        self.model = build_model(model_cfg)  # its label groups and names (ConfigError if inconsistent)
        self.groups = [dict(g, attrs=list(self.model.selected_attrs[g["start"]:g["start"] + g["size"]]))
                       for g in self.model.groups]
        self.attrs = list(self.model.selected_attrs)
        self.n_labels = len(self.attrs)
        self.label_dim = self.n_labels + (len(self.groups) if len(self.groups) > 1 else 0)
        file_in = _first_conv_in(weights.state("generator"))
        if file_in is not None and file_in - 3 != self.label_dim:
            mask = f" + {len(self.groups)} mask" if len(self.groups) > 1 else ""
            raise CheckpointError(
                f"{weights.path}: its generator takes {file_in - 3} label channels, the model config {source} "
                f"has {self.n_labels} labels{mask} ({_names(self.attrs)}): pass the config it was trained with")
        super().__init__(device=device, half=half, verbose=verbose)
        loaded = _load_nets(self.model, weights, ["generator"])
        self.weight_files = list(weights.files)
        self.netG = self.model.nets["generator"].to(self.device).eval()
        self.netD = self.model.nets["discriminator"].to(self.device).eval() \
            if "discriminator" in loaded else None
        disc = model_cfg.get("discriminator") if isinstance(model_cfg.get("discriminator"), dict) else {}
        self.train_size = int(getattr(self.model.nets.get("discriminator"), "image_size", 0)
                              or disc.get("image_size", 128))
        self.image_size = self.train_size if image_size is None else int(image_size)
        if self.image_size < 0:
            raise ConfigError(f"image_size must be >= 0 (0: the input's size), got {image_size}")
        if base == "detect" and self.netD is None:
            raise CheckpointError(f"{weights.path} holds no discriminator: base='detect' needs one (use 'zero')")
        self.base = base if base != "auto" else ("detect" if self.netD is not None else "zero")

    # -- targets ------------------------------------------------------------------------------
    def resolve(self, name):
        """The attribute index of `name` (exact, else case-insensitive); ConfigError listing the
        valid names otherwise."""
        if name in self.attrs:
            return self.attrs.index(name)
        low = [a.lower() for a in self.attrs]
        if low.count(name.lower()) == 1:
            return low.index(name.lower())
        hint = closest(name, self.attrs)
        mean = f"did you mean {', '.join(hint)}? " if hint else ""
        raise ConfigError(f"unknown attribute '{name}': {mean}this model's attributes are {_names(self.attrs)}")

    def parse_target(self, target):
        """{attribute index: 0/1} of one target: 'A,B=0', ['A', 'B=0'] or {'A': 1, 'B': 0}."""
        if isinstance(target, str):
            target = [t for t in target.split(",") if t.strip()]
        items = list(target.items()) if isinstance(target, dict) else [_split_value(t) for t in target]
        out = {}
        for name, value in items:
            name = str(name).strip()
            if value not in (0, 1, True, False):
                raise ConfigError(f"attribute {name}: value must be 0 or 1, got {value!r}")
            out[self.resolve(name)] = int(value)
        return out

    def parse_targets(self, target_attrs):
        """[{index: value}, ...] of one target (list of names / 'A,B' / dict) or several (a list of
        those); also checks them (`label` of each)."""
        parsed = [self.parse_target(t) for t in _target_sets(target_attrs)[0]]
        for p in parsed:
            self.label(p, np.zeros(self.n_labels, np.float32))
        return parsed

    def _group_of(self, index):
        start = 0
        for gi, g in enumerate(self.groups):
            if index < start + len(g["attrs"]):
                return gi, start
            start += len(g["attrs"])
        raise IndexError(index)

    def label(self, target, base):
        """The generator's label vector [label_dim] for `target` ({index: value}) over `base`
        ([n_labels] 0/1 values the input is thought to have)."""
        used = sorted({self._group_of(i)[0] for i in target})
        if len(used) > 1:
            names = [f"{self.groups[g]['name']} "
                     f"({', '.join(self.attrs[i] for i in target if self._group_of(i)[0] == g)})" for g in used]
            raise ConfigError(f"attributes of different label groups cannot be set together: {' and '.join(names)}; "
                              "the mask vector selects one group")
        gi = used[0] if used else 0
        group = self.groups[gi]
        start = sum(len(g["attrs"]) for g in self.groups[:gi])
        size = len(group["attrs"])
        vec = np.zeros(self.n_labels, np.float32)
        vec[start:start + size] = base[start:start + size]
        ones = [i for i, v in target.items() if v == 1]
        exclusive = group.get("type") == "exclusive"
        hair = [i for i in ones if self.attrs[i] in HAIR_COLOURS]
        alternatives, what = (ones, f"label group '{group['name']}' is exclusive") if exclusive \
            else (hair, "hair colours")
        if len(alternatives) > 1:
            raise ConfigError(f"{' and '.join(self.attrs[i] for i in alternatives)} are alternatives ({what}): "
                              "set only one of them to 1")
        if exclusive and ones:
            vec[start:start + size] = 0
        elif hair:
            for i in range(start, start + size):
                if self.attrs[i] in HAIR_COLOURS:
                    vec[i] = 0
        for i, v in target.items():
            vec[i] = v
        if len(self.groups) > 1:
            mask = np.zeros(len(self.groups), np.float32)
            mask[gi] = 1
            vec = np.concatenate([vec, mask])
        return vec

    @torch.no_grad()
    def detect(self, rgb):
        """[n_labels] 0/1 values of the input by the discriminator's classifier (on a centre square
        at the training size); zeros with base 'zero' or a classifier of another size."""
        base = np.zeros(self.n_labels, np.float32)
        if self.base != "detect":
            return base
        h, w = rgb.shape[:2]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        x = _to_tensor(_resize(rgb[top:top + s, left:left + s], (self.train_size, self.train_size)))
        out = self.netD(x.to(self.device))
        logits = (out[1] if isinstance(out, (tuple, list)) else out).float().reshape(-1).cpu().numpy()
        if logits.shape[0] != self.n_labels:
            self._log(f"[ppgan] the discriminator classifies {logits.shape[0]} labels, not {self.n_labels}: "
                      "unnamed attributes are set to 0")
            return base
        start = 0
        for g in self.groups:
            n = len(g["attrs"])
            part = logits[start:start + n]
            if g.get("type") == "exclusive":
                base[start + int(np.argmax(part))] = 1
            else:
                base[start:start + n] = (part > 0).astype(np.float32)
            start += n
        return base

    # -- translation --------------------------------------------------------------------------
    def _work_size(self, h, w):
        """(H, W) the generator runs at: shorter side `image_size` (0: as is), multiples of 4."""
        if self.image_size:
            s = self.image_size / min(h, w)
            h, w = max(1, round(h * s)), max(1, round(w * s))
        return max(4, -(-h // 4) * 4), max(4, -(-w // 4) * 4)

    @torch.no_grad()
    def translate(self, rgb, labels):
        """HxWx3 float [0, 1] image and [K, label_dim] labels -> K images of the input's size."""
        h, w = rgb.shape[:2]
        wh, ww = self._work_size(h, w)
        if self.image_size:
            work = _resize(rgb, (wh, ww))
        else:  # the input's own size, reflect-padded to multiples of 4
            mode = "reflect" if h > 1 and w > 1 else "edge"
            work = np.pad(rgb, ((0, wh - h), (0, ww - w), (0, 0)), mode=mode)
        x = _to_tensor(work)
        outs = []
        for c in labels:
            net = _Conditioned(self.netG, torch.as_tensor(np.asarray(c, np.float32))[None])
            y = _to_rgb(self.forward_image(net, x, tile=0))
            outs.append(_resize(y, (h, w)) if self.image_size else y[:h, :w])
        return outs

    def run(self, image, target_attrs, output=None, grid=False):
        """Translate `image` (a file or an HxWx3 uint8 RGB array) to each target.

        Args:
            target_attrs: one target (['Blond_Hair', 'Male=0'], 'Blond_Hair,Male=0' or a dict) or
                several (a list of those).
            output (str | None): file to write: the image (one target), numbered files
                `<stem>_<k><ext>` (several), or the grid.
            grid (bool): one image: the input, then each target's result, in a row.
        Returns:
            the translated image (one target) or list of them, in the input's layout and depth;
            with `grid`, the grid (HxWx3 uint8). `self.last_output` holds the path(s) written.
        """
        targets = self.parse_targets(target_attrs)
        rgb, alpha, layout = _read_image(image)
        base = self.detect(rgb)
        outs = self.translate(rgb, [self.label(t, base) for t in targets])
        return _finish(self, rgb, outs, alpha, layout, output, grid, several=_target_sets(target_attrs)[1])


def _split_value(item):
    """'Name' -> ('Name', 1); 'Name=0' -> ('Name', 0)."""
    if not isinstance(item, str):
        raise ConfigError(f"an attribute must be a name, got {item!r}")
    name, sep, value = item.partition("=")
    if not sep:
        return name, 1
    value = value.strip()
    if value not in ("0", "1"):
        raise ConfigError(f"attribute {name.strip()}: value must be 0 or 1, got {value!r}")
    return name, int(value)


def _names(attrs, limit=20):
    more = f", ... ({len(attrs)} in all)" if len(attrs) > limit else ""
    return ", ".join(attrs[:limit]) + more


@contextlib.contextmanager
def _quiet_fan_warning():
    """Drop StarGANv2Model's 'randomly initialised FAN' warning while the predictor builds the
    model: the FAN's weights are then loaded from the weight file (or the file is refused)."""
    logger = logging.getLogger("ppgan")

    def keep(record):
        return "model.fan has no fname_pretrained" not in record.getMessage()

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


class StarGANv2Predictor(BasePredictor):
    """Args:
        weight_path (str | Weights): an engine weight file or checkpoint of a `StarGANv2Model` (its
            moving-average nets `*_ema` are used; a file without them, e.g. PaddleGAN's, gives
            the plain nets, as `StarGANv2Model.fill_missing_ema`), or a PaddleGAN `.pdparams`
            with `config`.
        config (str | dict | None): the training config or its `model` section; default: the
            config stored in the file.
        device (str): 'auto', 'cpu' or 'cuda'.
        half, verbose: as every predictor (half precision runs under autocast; a non-finite
            result is computed again in fp32).
    """

    name = "StarGANv2"

    def __init__(self, weight_path, config=None, device="auto", half=None, verbose=True):
        weights, model_cfg, _ = _read_model_config(weight_path, config, "StarGANv2Model")
        self.weight_path = weights.path
        self.model_cfg = model_cfg
        # inference only: no discriminator (the file's is not read)
        build_cfg = dict(model_cfg, discriminator=None)
        fan_in_file = isinstance(model_cfg.get("fan"), dict) and "fan" in weights.states
        if fan_in_file:  # its weights come from this file, not from the training machine's wing.pdparams
            build_cfg["fan"] = dict(model_cfg["fan"], fname_pretrained=None)
        with _quiet_fan_warning():  # a random FAN is either replaced by the file's or refused below
            self.model = build_model(build_cfg)
        super().__init__(device=device, half=half, verbose=verbose)
        loaded = load_nets(self.model.nets, weights, strict=True)
        need = [n for n in ("generator", "style_encoder", "mapping_network", "fan") if n in self.model.nets]
        missing = [n for n in need if n not in loaded and n + "_ema" not in loaded]
        if missing:
            raise CheckpointError(f"{weights.path or 'the weights'} has no '{missing[0]}' weights (it has: "
                                  f"{', '.join(map(str, weights.states))})")
        self.model.fill_missing_ema(loaded)
        self.weight_files = list(weights.files)
        self.model.setup_runtime(self.device)
        self.model.eval()
        gen = model_cfg.get("generator") if isinstance(model_cfg.get("generator"), dict) else {}
        mapping = model_cfg.get("mapping") if isinstance(model_cfg.get("mapping"), dict) else {}
        self.img_size = int(gen.get("img_size", 256))
        self.num_domains = int(mapping.get("num_domains", 2))

    def check_domain(self, domain):
        """`domain` as an int in 0..num_domains-1 (ConfigError otherwise)."""
        d = None
        if isinstance(domain, str) and domain.strip().isdigit():
            d = int(domain)
        elif isinstance(domain, (int, np.integer)) and not isinstance(domain, bool):
            d = int(domain)
        if d is None or not 0 <= d < self.num_domains:
            raise ConfigError(f"target domain must be an integer in 0..{self.num_domains - 1} (this model has "
                              f"{self.num_domains} domains), got {domain!r}")
        return d

    def _square(self, rgb):
        return _to_tensor(_resize(rgb, (self.img_size, self.img_size))).to(self.device)

    def _synthesize(self, fn):
        """`fn()` in this predictor's precision; a non-finite half-precision result is redone in fp32."""
        if self.half:
            with torch.autocast(self.device.type, dtype=self.compute_dtype):
                out = fn()
            if torch.isfinite(out).all():
                return out.float()
            self.stats["fp32_retries"] += 1
        return fn().float()

    @torch.no_grad()
    def run(self, image, reference=None, target_domain=None, output=None, seed=0, grid=False):
        """Translate `image` (a file or an HxWx3 uint8 RGB array) to domain `target_domain`.

        Args:
            reference (str | array | list | None): reference image(s) whose style is used
                (reference-guided); None: a style drawn from the latent code of `seed`
                (latent-guided).
            target_domain (int | list[int]): the target domain (with `reference`: the reference's
                domain); a list gives one result per domain (several references: one domain
                each, or one for all).
            output (str | None): file to write (numbered `<stem>_<k><ext>` for several results,
                or the grid).
            grid (bool): one image: the input, then each result, in a row.
        Returns:
            the translated image (input's size, layout and depth) or a list of them; with `grid`,
            the grid (HxWx3 uint8).
        """
        if target_domain is None:
            raise ConfigError("a target domain is needed (with a reference: the reference's domain), "
                              f"0..{self.num_domains - 1}")
        refs = None if reference is None else \
            (list(reference) if isinstance(reference, (list, tuple)) else [reference])
        domains = list(target_domain) if isinstance(target_domain, (list, tuple)) else [target_domain]
        domains = [self.check_domain(d) for d in domains]
        if refs is not None and len(domains) not in (1, len(refs)):
            raise ConfigError(f"{len(refs)} references and {len(domains)} target domains: give one domain for "
                              "all references or one per reference")
        rgb, alpha, layout = _read_image(image)
        x = self._square(rgb)
        h, w = rgb.shape[:2]
        if refs is not None:
            ref_imgs = [_read_image(r, "reference")[0] for r in refs]
            y = torch.tensor(domains * len(refs) if len(domains) == 1 else domains, device=self.device)
            x_ref = torch.cat([self._square(r) for r in ref_imgs])
            out = self._synthesize(lambda: self.model.reference_synthesis(x, x_ref, y))
        else:
            gen = torch.Generator().manual_seed(int(seed))
            z = torch.randn(1, self.model.latent_dim, generator=gen).expand(len(domains), -1).to(self.device)
            y = torch.tensor(domains, device=self.device)
            out = self._synthesize(lambda: self.model.latent_synthesis(x.expand(len(domains), -1, -1, -1), y, z))
        outs = [_resize(_to_rgb(o[None]), (h, w)) for o in out]
        return _finish(self, rgb, outs, alpha, layout, output, grid, several=len(outs) > 1)

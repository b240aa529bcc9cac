#!/usr/bin/env python
"""Generate images from a trained GAN: a sample grid, an interpolation strip and, for 2-D
latents, the whole latent plane as one grid; or, with --truncation_sweep, one sample grid per
truncation threshold. A weight file with a moving-average generator (netG_ema) is sampled
through it unless --no_ema."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

MAX_GRID_PIXELS = 1 << 23  # as ppgan.apps.gan_predictor (not imported before --help: it loads torch)

EXAMPLES = """Samples are generated in batches, so memory stays bounded whatever --n. A grid file holds at
most --max_grid_pixels pixels: more samples than fit in one go to samples_00000.png,
samples_00001.png, ... (whole rows each; one class per row for conditional models), each written
before the next is generated. An interpolation strip larger than the limit is refused.

examples:
  python applications/tools/gan_generate.py --weight_path output_dir/dcgan_digits-.../iter_2500_weight.pth
  python applications/tools/gan_generate.py --weight_path output_dir/cond_dcgan_digits-.../iter_3000_weight.pth --class_id 7 --n 32
  python applications/tools/gan_generate.py --config configs/dcgan_mnist.yaml --weight_path dcgan_mnist.pdparams
  python applications/tools/gan_generate.py --weight_path output_dir/dcgan_digits-.../iter_2500_weight.pth --n 100000   # 14 grid files
  python applications/tools/gan_generate.py --weight_path output_dir/biggan_digits-.../iter_1500_weight.pth \
      --truncation 0.5
  python applications/tools/gan_generate.py --weight_path output_dir/biggan_digits-.../iter_1500_weight.pth \
      --truncation_sweep 0.2,0.4,0.6,0.8,1.0      # truncation_0.20.png ... truncation_1.00.png

--truncation T draws z from the standard normal truncated to [-T, T] (BigGAN's truncation trick):
smaller T, less variety and cleaner samples. Each sample keeps its normal quantile, so with one
--seed the grids of a sweep show the same samples, more or less truncated.
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weight_path", required=True, help="*_weight.pth / *_checkpoint.pth, or a PaddleGAN .pdparams")
    p.add_argument("--config", default=None, help="training config (required for .pdparams)")
    p.add_argument("--output", default="output",
                   help="output folder; files go to <output>/GANGenerate/, as every app's (default: output)")
    p.add_argument("--output_path", default=None,
                   help="exact folder for the files, instead of <output>/GANGenerate/")
    p.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--class_id", type=int, default=None, help="class to draw (conditional models)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=10, help="interpolation steps (default 10)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--truncation", type=float, default=None, metavar="T",
                   help="truncation threshold T > 0: z from N(0, 1) truncated to [-T, T] (default: untruncated)")
    p.add_argument("--truncation_sweep", default=None, metavar="T1,T2,...",
                   help="write one sample grid per threshold (truncation_0.20.png, ...) instead of samples, "
                        "interpolation and plane")
    p.add_argument("--no_ema", action="store_true",
                   help="sample the trained netG even when the file holds its moving average netG_ema")
    p.add_argument("--max_grid_pixels", type=int, default=MAX_GRID_PIXELS, metavar="PIXELS",
                   help=f"largest grid image, in pixels (default {MAX_GRID_PIXELS}: 8 megapixels); more samples "
                        "go to several numbered grid files")
    args = p.parse_args(argv)
    from ppgan.utils.errors import USER_ERRORS, report

    if args.n < 1 or args.steps < 2 or args.max_grid_pixels < 1:
        print("error: --n must be >= 1, --steps >= 2 and --max_grid_pixels >= 1", file=sys.stderr)
        return 2
    if args.truncation is not None and args.truncation_sweep is not None:
        print("error: give --truncation or --truncation_sweep, not both", file=sys.stderr)
        return 2
    try:
        from ppgan.apps.gan_predictor import GANPredictor, parse_truncations

        sweep = parse_truncations(args.truncation_sweep) if args.truncation_sweep is not None else None
        if args.truncation is not None:
            parse_truncations(args.truncation)  # T > 0 and finite, checked before the weights load
        out_dir = args.output_path or os.path.join(args.output, "GANGenerate")
        existed = set(os.listdir(out_dir)) if os.path.isdir(out_dir) else set()
        pred = GANPredictor(config=args.config, weight_path=args.weight_path, device=args.device,
                            use_ema=not args.no_ema)
        print(f"generator: {pred.net_name} of {args.weight_path}")
        if sweep is not None:
            paths = pred.truncation_sweep(sweep, n=args.n, class_id=args.class_id, seed=args.seed, output=out_dir,
                                          max_grid_pixels=args.max_grid_pixels)
        else:
            paths = pred.run(n=args.n, class_id=args.class_id, seed=args.seed, output=out_dir, steps=args.steps,
                             max_grid_pixels=args.max_grid_pixels, truncation=args.truncation)
        for name, path in paths.items():
            files = path if isinstance(path, list) else [path]
            over = sum(os.path.basename(f) in existed for f in files)
            if isinstance(path, list):
                path = f"{len(path)} grid files, {path[0]} ... {os.path.basename(path[-1])}"
            note = "" if not over else " (overwritten)" if len(files) == 1 else f" ({over} overwritten)"
            print(f"{name}: {path}{note}")
        return 0
    except USER_ERRORS as e:
        return report(e)


if __name__ == "__main__":
    sys.exit(main())

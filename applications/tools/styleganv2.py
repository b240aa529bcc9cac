#!/usr/bin/env python
"""Sample a StyleGAN2 generator: a grid of images and two style-mixing grids (PaddleGAN's flags),
optionally a latent interpolation video."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

EXAMPLES = """Writes <output_path>/sample.png (n_row x n_col), sample_mixing_0.png and sample_mixing_1.png
(coarse styles of the left column with fine styles of the top row). A seed gives the same images
on every device; --truncation 0 gives the average image, 1 no truncation.

examples:
  python applications/tools/styleganv2.py --model_type ffhq-config-f --seed 42 --n_row 3 --n_col 5
  python applications/tools/styleganv2.py --weight_path run_dir/iter_2000_weight.pth --truncation 0.5
  python applications/tools/styleganv2.py --model_type animeface-512 --video walk.mp4 --video_seeds 1 2 3 4
"""


def add_generator_args(p):
    """The generator flags the three StyleGAN2 tools share (PaddleGAN's)."""
    p.add_argument("--output_path", default="output_dir", help="output folder (default output_dir)")
    p.add_argument("--weight_path", default=None,
                   help="generator weights: PaddleGAN .pdparams or a training *_weight.pth / checkpoint")
    p.add_argument("--model_type", default=None, help="pretrained model: ffhq-config-f or animeface-512")
    p.add_argument("--size", type=int, default=1024, help="output resolution (default 1024)")
    p.add_argument("--style_dim", type=int, default=512, help="style size (default 512)")
    p.add_argument("--n_mlp", type=int, default=8, help="mapping layers (default 8)")
    p.add_argument("--channel_multiplier", type=int, default=2, help="channel multiplier (default 2)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--cpu", dest="device", action="store_const", const="cpu", help="same as --device cpu (PaddleGAN)")


def generator_kwargs(args):
    return dict(output_path=args.output_path, weight_path=args.weight_path, model_type=args.model_type,
                size=args.size, style_dim=args.style_dim, n_mlp=args.n_mlp,
                channel_multiplier=args.channel_multiplier, device=args.device)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_generator_args(p)
    p.add_argument("--seed", type=int, default=None, help="sampling seed (default: random)")
    p.add_argument("--truncation", type=float, default=0.7, help="in [0, 1] (default 0.7)")
    p.add_argument("--n_row", type=int, default=3, help="grid rows (default 3)")
    p.add_argument("--n_col", type=int, default=5, help="grid columns (default 5)")
    p.add_argument("--video", default=None, help="also write a latent interpolation video to this file (.mp4, ...)")
    p.add_argument("--video_seeds", type=int, nargs="+", default=[0, 1, 2, 3], help="seeds the video passes through")
    p.add_argument("--frames_per_seed", type=int, default=30, help="frames between two seeds (default 30)")
    p.add_argument("--fps", type=int, default=30, help="video frame rate (default 30)")
    args = p.parse_args(argv)
    from ppgan.apps.cli_args import run_main

    def go():
        from ppgan.utils.errors import ConfigError

        bad_seed = args.seed is not None and args.seed < 0
        if args.n_row < 1 or args.n_col < 1 or not 0 <= args.truncation <= 1 or bad_seed:
            raise ConfigError("--n_row and --n_col must be >= 1, --truncation in [0, 1], --seed >= 0")
        from ppgan.apps.styleganv2_predictor import StyleGANv2Predictor

        pred = StyleGANv2Predictor(seed=args.seed, **generator_kwargs(args))
        pred.run(args.n_row, args.n_col, truncation=args.truncation)
        print(f"output: {os.path.join(args.output_path, 'sample.png')}")
        if args.video:
            pred.interpolation_video(args.video, args.video_seeds, args.frames_per_seed, args.fps, args.truncation)
            print(f"video: {args.video}")
        return 0

    return run_main(go)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Colourise black-and-white photos, folders of photos and films with DeOldify.

The colour comes from the model, the luminance (all the detail) from the original; the aspect
ratio is kept. Videos keep every audio and subtitle stream and their exact frame rate."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

EXAMPLES = """examples:
  python applications/tools/colorize.py --input old_photo.jpg
  python applications/tools/colorize.py --input scans/ --output out --render_factor 40
  python applications/tools/colorize.py --input film.mp4 --temporal_smoothing 0.5
  python applications/tools/colorize.py --input photo.png --weight_path DeOldify_stable.pdparams
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    from ppgan.apps import cli_args

    cli_args.add_input_args(p)
    p.add_argument("--weight_path", default=None, help="DeOldify weights (.pdparams or .pth)")
    p.add_argument("--artistic", action="store_true", help="the artistic model (more colourful, less stable)")
    p.add_argument("--render_factor", type=int, default=32,
                   help="the model sees render_factor*16 pixels on the longer side (default 32)")
    p.add_argument("--temporal_smoothing", type=float, default=0.0,
                   help="videos: blend each frame's colour with the previous one, 0..0.95 (default 0: off)")
    cli_args.add_device_args(p)
    cli_args.add_video_args(p)
    args = p.parse_args(argv)

    def run():
        cli_args.check_args(args)
        from ppgan.apps import DeOldifyPredictor

        pred = DeOldifyPredictor(output=args.output, weight_path=args.weight_path, artistic=args.artistic,
                                 render_factor=args.render_factor, temporal_smoothing=args.temporal_smoothing,
                                 device=args.device, half=args.half, verbose=not args.quiet)
        return cli_args.run_predictor(pred, args)

    return cli_args.run_main(run)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Super-resolve images, folders and videos (Real-ESRGAN, PaddleGAN RealSR/ESRGAN, EDVR, BasicVSR).

Images run in overlapping tiles (any size; alpha kept; gray and 16-bit keep their layout).
Videos stream through decode -> model -> encode with every audio and subtitle stream kept, the
exact frame rate, and resumable chunks."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

EXAMPLES = """examples:
  python applications/tools/super_resolution.py --input photo.jpg                 # Real-ESRGAN x4plus (packaged)
  python applications/tools/super_resolution.py --input photos/ --output out --skip_existing
  python applications/tools/super_resolution.py --input film.mp4 --model realesr-animevideov3-x2
  python applications/tools/super_resolution.py --input clip.mp4 --model edvr-m-wo-tsa --weight_path EDVR_M_wo_tsa_SRx4.pdparams
  python applications/tools/super_resolution.py --input photo.png --weight_path DF2K_JPEG.pdparams   # PaddleGAN RealSR

models: ppgan download --list   (weights: --weight_path, then the cache $PPGAN_HOME, then an
installed package, then a download; `ppgan download NAME` fills the cache for offline use)
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    from ppgan.apps import cli_args

    cli_args.add_input_args(p)
    p.add_argument("--model", default=None,
                   help="model name (default realesrgan-x4plus; edvr-*/basicvsr-* pick the video nets)")
    p.add_argument("--weight_path", default=None, help="weight file (.pdparams, .pth, .safetensors)")
    p.add_argument("--tile", type=int, default=None, help="tile size in input pixels (default: from memory; 0: off)")
    p.add_argument("--tile_overlap", type=int, default=None,
                   help="context pixels around each tile (default: exact for compact nets, 64 for RRDBNet, "
                        "32 for the video nets)")
    p.add_argument("--num_frames", type=int, default=10, help="BasicVSR clip length (default 10)")
    cli_args.add_device_args(p)
    cli_args.add_video_args(p)
    args = p.parse_args(argv)

    def run():
        cli_args.check_args(args)
        from ppgan.apps import BasicVSRPredictor, EDVRPredictor, RealSRPredictor
        from ppgan.apps.realsr_predictor import pick_model
        from ppgan.weights import get_spec

        name = pick_model(args.model, args.weight_path)
        arch = get_spec(name).arch
        common = dict(output=args.output, weight_path=args.weight_path, model=name, device=args.device,
                      half=args.half, verbose=not args.quiet)
        tiles = {"tile": args.tile, "tile_overlap": args.tile_overlap}  # None: each predictor's default
        if arch == "EDVRNet":
            pred = EDVRPredictor(**common, **tiles)
        elif arch == "BasicVSRNet":
            pred = BasicVSRPredictor(num_frames=args.num_frames, **common, **tiles)
        else:
            pred = RealSRPredictor(**common, **tiles)
        return cli_args.run_predictor(pred, args)

    return cli_args.run_main(run)


if __name__ == "__main__":
    sys.exit(main())

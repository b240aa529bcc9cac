#!/usr/bin/env python
"""Restore a video in one pass: colourise (DeOldify) and/or super-resolve (RealSR, EDVR,
BasicVSR, IconVSR, BasicVSR++, PP-MSVSR) in the order given by --process_order.

Frames stream decode -> model 1 -> model 2 -> ... -> encode: no intermediate videos or frame
dumps; every audio and subtitle stream is kept; the frame rate is exact (23.976 stays
24000/1001); a killed job re-run with the same arguments resumes from its last finished chunk.
The recurrent nets (BasicVSR, IconVSR, BasicVSR++, PP-MSVSR) see --num_frames frames at a time,
with --overlap frames of context on each side of the frames each window outputs: memory does
not grow with the video's length.
Also works on images and folders (the models are applied one after the other)."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

# --process_order names, PaddleGAN's spelling ('BasiVSRPlusPlus', sic) first; the recurrent VSR nets
# map to their predictor class (ppgan.apps.edvr_predictor)
RECURRENT = {"BasicVSR": "BasicVSRPredictor", "IconVSR": "IconVSRPredictor",
             "BasiVSRPlusPlus": "BasicVSRPlusPlusPredictor", "PPMSVSR": "PPMSVSRPredictor",
             "PPMSVSRLarge": "PPMSVSRLargePredictor"}
ALIASES = {"BasicVSRPlusPlus": "BasiVSRPlusPlus", "BasicVSR++": "BasiVSRPlusPlus"}
SUPPORTED = ("DeOldify", "RealSR", "EDVR") + tuple(RECURRENT)
NOT_PORTED = ("DAIN", "DeepRemaster")

EXAMPLES = """examples:
  python applications/tools/video-enhance.py --input old_film.mp4 --process_order DeOldify RealSR --output out
  python applications/tools/video-enhance.py --input clip.mp4 --process_order EDVR --EDVR_weight EDVR_M_wo_tsa_SRx4.pdparams
  python applications/tools/video-enhance.py --input clip.mkv --process_order DeOldify --render_factor 24 --crf 16
  python applications/tools/video-enhance.py --input clip.mp4 --process_order PPMSVSR --num_frames 20 \
      --overlap 4
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    from ppgan.apps import cli_args

    cli_args.add_input_args(p, what="video (or image / folder)")
    p.add_argument("--process_order", nargs="+", required=True, metavar="MODEL",
                   help=f"models to apply, in order: {', '.join(SUPPORTED)}")
    p.add_argument("--DeOldify_weight", default=None, help="DeOldify weights (.pdparams / .pth)")
    p.add_argument("--artistic", action="store_true", help="DeOldify: the artistic model")
    p.add_argument("--render_factor", type=int, default=32, help="DeOldify: render size / 16 (default 32)")
    p.add_argument("--temporal_smoothing", type=float, default=0.0, help="DeOldify: colour smoothing 0..0.95")
    p.add_argument("--RealSR_weight", default=None, help="RealSR weights (.pdparams / .pth)")
    p.add_argument("--RealSR_model", default=None, help="RealSR model name (default realesrgan-x4plus)")
    p.add_argument("--tile", type=int, default=None, help="tile size of the SR models (default: from memory; 0: off)")
    p.add_argument("--EDVR_weight", default=None, help="EDVR weights (.pdparams / .pth)")
    p.add_argument("--BasicVSR_weight", default=None, help="BasicVSR weights (.pdparams / .pth)")
    p.add_argument("--IconVSR_weight", default=None, help="IconVSR weights (.pdparams / .pth)")
    p.add_argument("--BasiVSRPlusPlus_weight", "--BasicVSRPlusPlus_weight", dest="BasiVSRPlusPlus_weight",
                   default=None, help="BasicVSR++ weights (.pdparams / .pth)")
    p.add_argument("--PPMSVSR_weight", default=None, help="PP-MSVSR weights (.pdparams / .pth)")
    p.add_argument("--PPMSVSRLarge_weight", default=None, help="PP-MSVSR-L weights (.pdparams / .pth)")
    p.add_argument("--num_frames", type=int, default=10,
                   help="recurrent VSR nets: frames seen at once (default 10; memory grows with it)")
    p.add_argument("--overlap", type=int, default=2,
                   help="recurrent VSR nets: frames of context on each side of a window's output frames "
                        "(default 2; 0: back-to-back clips as PaddleGAN; 2 * overlap < num_frames)")
    p.add_argument("--cpu", action="store_true", help="same as --device cpu (PaddleGAN flag)")
    cli_args.add_device_args(p)
    cli_args.add_video_args(p)
    args = p.parse_args(argv)

    def run():
        from ppgan.utils.errors import PPGANError

        cli_args.check_args(args)
        orders = [ALIASES.get(o, o) for o in args.process_order]
        for order in orders:
            if order in NOT_PORTED:
                raise PPGANError(f"--process_order {order} is not available in ppgan; supported: {', '.join(SUPPORTED)}")
            if order not in SUPPORTED:
                raise PPGANError(f"unknown --process_order {order!r}; supported: {', '.join(SUPPORTED)}")
        from ppgan.apps import DeOldifyPredictor, EDVRPredictor, RealSRPredictor
        from ppgan.apps import edvr_predictor
        from ppgan.apps.enhance_pipeline import EnhancePipeline

        if any(o in RECURRENT for o in orders):
            edvr_predictor.check_window(args.num_frames, args.overlap)  # before any weights are loaded

        common = dict(output=args.output, device="cpu" if args.cpu else args.device, half=args.half,
                      verbose=not args.quiet)
        preds = []
        for order in orders:
            # the library's messages say --weight_path / --model; this tool's flags are per model
            flags = {"weight_path": f"--{order}_weight", **({"model": "--RealSR_model"} if order == "RealSR" else {})}
            with cli_args.own_flags(**flags):
                if order == "DeOldify":
                    preds.append(DeOldifyPredictor(weight_path=args.DeOldify_weight, artistic=args.artistic,
                                                   render_factor=args.render_factor,
                                                   temporal_smoothing=args.temporal_smoothing, **common))
                elif order == "RealSR":
                    preds.append(RealSRPredictor(weight_path=args.RealSR_weight, model=args.RealSR_model,
                                                 tile=args.tile, **common))
                elif order == "EDVR":
                    preds.append(EDVRPredictor(weight_path=args.EDVR_weight, tile=args.tile, **common))
                else:
                    predictor = getattr(edvr_predictor, RECURRENT[order])
                    preds.append(predictor(weight_path=getattr(args, f"{order}_weight"), num_frames=args.num_frames,
                                           overlap=args.overlap, tile=args.tile, **common))
        pipe = EnhancePipeline(preds, output=args.output, verbose=not args.quiet)
        return cli_args.run_predictor(pipe, args)

    return cli_args.run_main(run)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Animate the face in a photo with the motion of a driving video (First Order Motion Model,
PaddleGAN's first-order-demo flags).

The face (every face with --multi_person) is cut out, animated frame by frame in batches, and
pasted back into the whole photo through a feathered mask. The output video has the driving
video's frame rate, frame count and audio. Long videos are streamed (never all in memory) and
written in resumable chunks: re-run the same command after an interruption to continue."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

EXAMPLES = """examples:
  python applications/tools/first-order-demo.py --source_image face.png --driving_video drive.mp4
  python applications/tools/first-order-demo.py --source_image face.png --driving_video drive.mp4 \\
      --relative --adapt_scale --batch_size 8
  python applications/tools/first-order-demo.py --source_image group.jpg --driving_video drive.mp4 \\
      --multi_person --ratio 0.4 --output out --filename group.mp4
  python applications/tools/first-order-demo.py --source_image face.png --driving_video drive.mp4 \\
      --weight_path vox-cpk.pdparams --find_best_frame

weights: PaddleGAN's vox-cpk.pdparams (256), vox-cpk-512.pdparams (--image_size 512) or
vox-mobile.pdparams (--mobile_net), from the catalogue or --weight_path.
"""


def build_parser():
    from ppgan.apps import cli_args

    p = argparse.ArgumentParser(description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source_image", required=True, help="the photo to animate")
    p.add_argument("--driving_video", required=True, help="the video whose motion (and audio) is used")
    p.add_argument("--output", default="output", help="output folder (default: output)")
    p.add_argument("--filename", default="result.mp4", help="output file name in --output (default result.mp4)")
    p.add_argument("--config", default=None, help="PaddleGAN FOM config (YAML) the nets are built from "
                                                  "(default: PaddleGAN's vox nets)")
    p.add_argument("--weight_path", default=None, help="weights holding 'generator' and 'kp_detector' "
                                                       "(.pdparams or .pth)")
    p.add_argument("--relative", action="store_true", help="relative keypoint movement and Jacobians")
    p.add_argument("--adapt_scale", action="store_true", help="adapt the movement scale to the face's keypoints")
    p.add_argument("--find_best_frame", action="store_true",
                   help="animate relative to the driving frame whose face pose is closest to the photo's")
    p.add_argument("--best_frame", type=int, default=None, help="animate relative to this driving frame")
    p.add_argument("--ratio", type=float, default=0.4,
                   help="with --multi_person: paste-disc radius as a fraction of the face crop's height "
                        "(default 0.4)")
    p.add_argument("--face_detector", default="mtcnn", choices=list(cli_args.FACE_DETECTORS),
                   help="face detector (default mtcnn: packaged weights; PaddleGAN's default is sfd)")
    p.add_argument("--multi_person", action="store_true", help="animate every face, not only the largest")
    p.add_argument("--image_size", type=int, default=256, help="face crop size the nets see (256, or 512)")
    p.add_argument("--batch_size", type=int, default=1, help="driving frames per forward pass (default 1)")
    p.add_argument("--mobile_net", action="store_true", help="the mobile nets (vox-mobile weights)")
    p.add_argument("--face_enhancement", action="store_true", help=argparse.SUPPRESS)  # PaddleGAN's; refused
    p.add_argument("--slice_size", type=int, default=0, help=argparse.SUPPRESS)  # PaddleGAN's; not needed
    p.add_argument("--cpu", action="store_true", help="run on the CPU (same as --device cpu)")
    cli_args.add_device_args(p)
    cli_args.add_video_args(p)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)

    def run():
        from ppgan.apps import cli_args
        from ppgan.utils.errors import PPGANError

        cli_args.check_args(args)
        if args.cpu:
            args.device = "cpu"
        for flag in ("source_image", "driving_video"):  # before any model is loaded
            path = getattr(args, flag)
            if not os.path.isfile(path):
                why = "is a folder" if os.path.isdir(path) else "not found"
                raise PPGANError(f"--{flag} {path}: {why}")
        if args.batch_size < 1:
            raise PPGANError(f"--batch_size must be >= 1, got {args.batch_size}")
        if args.ratio <= 0:
            raise PPGANError(f"--ratio must be > 0, got {args.ratio}")
        from ppgan.apps.first_order_predictor import FirstOrderPredictor

        FirstOrderPredictor.read_inputs(args.source_image, args.driving_video)  # bad inputs before the weights
        cli_args.show_library_status(args.quiet)

        pred = FirstOrderPredictor(output=args.output, weight_path=args.weight_path, config=args.config,
                                   relative=args.relative, adapt_scale=args.adapt_scale,
                                   find_best_frame=args.find_best_frame, best_frame=args.best_frame,
                                   ratio=args.ratio, filename=args.filename, face_detector=args.face_detector,
                                   multi_person=args.multi_person, image_size=args.image_size,
                                   face_enhancement=args.face_enhancement, batch_size=args.batch_size,
                                   mobile_net=args.mobile_net, slice_size=args.slice_size, device=args.device,
                                   half=args.half, verbose=not args.quiet)
        out = pred.run(args.source_image, args.driving_video, video_options=cli_args.video_options(args),
                       progress=not args.quiet)
        print(f"output: {out}")
        return 0

    from ppgan.apps import cli_args

    return cli_args.run_main(run)


if __name__ == "__main__":
    sys.exit(main())

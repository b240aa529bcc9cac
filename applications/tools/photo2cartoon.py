#!/usr/bin/env python
"""Turn the faces in portraits into cartoons (U-GAT-IT photo2cartoon, PaddleGAN's model).

Each face is found (MTCNN by default, no download), aligned, cartoonised and pasted back into the
photo through a feathered head mask: everything outside the mask keeps its original pixels.
A photo without a face is an error; in videos such frames pass through unchanged."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

EXAMPLES = """examples:
  python applications/tools/photo2cartoon.py --input portrait.jpg
  python applications/tools/photo2cartoon.py --input group.jpg --multi_person
  python applications/tools/photo2cartoon.py --input photos/ --output out --face_detector mediapipe
  python applications/tools/photo2cartoon.py --input me.png --weight_path photo2cartoon_genA2B_weight.pdparams

weights: ppgan download photo2cartoon   (or --weight_path; the face detector's weights ship with
facenet-pytorch / mediapipe, installed by `make`)
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    from ppgan.apps import cli_args

    cli_args.add_input_args(p)
    p.add_argument("--weight_path", default=None, help="photo2cartoon generator weights (.pdparams or .pth)")
    p.add_argument("--multi_person", action="store_true", help="cartoonise every face, not only the largest")
    p.add_argument("--face_detector", default="mtcnn", choices=list(cli_args.FACE_DETECTORS),
                   help="face detector (default mtcnn: packaged weights)")
    p.add_argument("--save_crops", action="store_true",
                   help="also write the aligned 256x256 photo and cartoon crops (PaddleGAN's p2c_photo / "
                        "p2c_cartoon) beside each output")
    cli_args.add_device_args(p)
    cli_args.add_video_args(p)
    args = p.parse_args(argv)

    def run():
        cli_args.check_args(args)
        from ppgan.apps import Photo2CartoonPredictor

        pred = Photo2CartoonPredictor(output_path=args.output, weight_path=args.weight_path,
                                      multi_person=args.multi_person, face_detector=args.face_detector,
                                      device=args.device, half=args.half, verbose=not args.quiet)
        pred.save_crops = args.save_crops
        return cli_args.run_predictor(pred, args)

    return cli_args.run_main(run)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Video-to-video synthesis: turn an edge-map video (or a photo video, through its Canny edges) into
a photo-like video with a Vid2Vid model trained by this project
(`python tools/main.py -c configs/vid2vid_edges_demo.yaml`).

Each frame is generated from its edge map and the previous frames' edge maps and generated frames,
so the result is temporally coherent. Frames stream through the shared video pipeline: the
output has the input's size, frame rate, frame count and duration, and keeps its audio and
subtitle streams; a killed job re-run with the same arguments resumes from its last finished
chunk (the frame history restarts at each chunk: --chunk_seconds). Also takes an image (generated
as a first frame)."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

EXAMPLES = """source frames (--source): auto (default) takes a grey, black-and-white frame as an edge map and
any other frame as a photo whose Canny edges are computed; edges / map force one of the two.
Frame size: frames are resized to the scale of the model's training frames and the result
resized back to the input's size; --no_resize generates at the input's own size (its sides
must be multiples of the generator's size multiple).

examples:
  python applications/tools/vid2vid.py --weight_path output_dir/vid2vid_edges_demo-.../iter_1500_weight.pth \\
      --input edges.mp4 --output out.mp4
  python applications/tools/vid2vid.py --weight_path W.pth --input clip.mp4 --source edges --output out.mkv
  python applications/tools/vid2vid.py --weight_path W.pth --input edge_map.png --output frame.png
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    from ppgan.apps import cli_args

    p.add_argument("--input", required=True, help="video (edge maps or photos) or image to translate")
    p.add_argument("--output", default=None,
                   help="output file (.mp4, .mkv, ... for a video; .png for an image) or folder "
                        "(default: output/Vid2Vid/<input name>_vid2vid.<ext>)")
    p.add_argument("--weight_path", required=True,
                   help="iter_<N>_weight.pth (or _checkpoint.pth) of a Vid2VidModel training run")
    p.add_argument("--config", default=None, help="training config (default: the one stored in the weight file)")
    p.add_argument("--source", default="auto", choices=["auto", "edges", "map"],
                   help="what the input frames are: auto (default), edges (photos: Canny edges computed), "
                        "map (edge maps)")
    p.add_argument("--no_resize", action="store_true",
                   help="generate at the input's size instead of the training frames' scale")
    p.add_argument("--no_ema", action="store_true", help="use netG even when the file holds netG_ema")
    cli_args.add_device_args(p)
    cli_args.add_video_args(p)
    args = p.parse_args(argv)

    def run():
        from ppgan.utils.errors import PPGANError

        cli_args.check_args(args)
        if not os.path.isfile(args.input):
            raise PPGANError(f"--input {args.input} is not a file: give one video or image")
        if not os.path.exists(args.weight_path):
            raise PPGANError(f"--weight_path not found: {args.weight_path}")
        from ppgan.apps.inputs import is_video_path
        from ppgan.utils.image import is_image_file

        out = args.output
        if out is not None and not os.path.isdir(out):
            ext_ok = is_video_path(out) if is_video_path(args.input) else is_image_file(out)
            if not ext_ok:
                want = "a video file name (.mp4, .mkv, ...)" if is_video_path(args.input) else \
                    "an image file name (.png, .jpg, ...)"
                raise PPGANError(f"--output {out}: use {want} or an existing folder")
        from ppgan.apps.vid2vid_predictor import Vid2VidPredictor

        pred = Vid2VidPredictor(args.weight_path, config=args.config, source=args.source,
                                resize=not args.no_resize, use_ema=not args.no_ema, device=args.device,
                                half=args.half, verbose=not args.quiet)
        cli_args.show_library_status(args.quiet)
        result = pred.run_files(args.input, output_path=out, video_options=cli_args.video_options(args),
                                progress=not args.quiet)
        return cli_args.print_result(result)

    return cli_args.run_main(run)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Lip-sync a face video or photo to speech with Wav2Lip (PaddleGAN's flags).

The output is as long as the audio, at the face video's exact frame rate, with the audio muxed
in. Audio longer than the video: the video is looped forwards and backwards (ping-pong); shorter:
the output stops with the audio. Frames without a face are passed through (logged with their
times); a video with no face at all is an error. Face tracks are cached, so a second audio on the
same video skips detection. A killed job re-run with the same command resumes."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

EXAMPLES = """examples:
  python applications/tools/wav2lip.py --face talk.mp4 --audio speech.wav --outfile out.mp4
  python applications/tools/wav2lip.py --face portrait.jpg --audio speech.m4a --fps 30 --outfile out.mp4
  python applications/tools/wav2lip.py --face meeting.mp4 --audio a.mp3 --face_index 1 --nosmooth
  python applications/tools/wav2lip.py --face talk.mp4 --audio b.wav --checkpoint_path wav2lip_hq.pdparams
  python applications/tools/wav2lip.py --face talk.mp4 --audio b.wav --precision bf16 --detect_every 2  # fast CPU
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    from ppgan.apps import cli_args

    p.add_argument("--checkpoint_path", default=None,
                   help="Wav2Lip weights (.pdparams or ours); default: the catalogue's --model")
    p.add_argument("--model", default="wav2lip-hq", help="catalogue name when no --checkpoint_path "
                                                         "(default wav2lip-hq, PaddleGAN's published weights)")
    p.add_argument("--face", required=True, help="video or image with the face")
    p.add_argument("--audio", required=True, help="audio (or video with audio) in any format ffmpeg reads")
    p.add_argument("--outfile", default="results/result_voice.mp4",
                   help="output video (default: results/result_voice.mp4)")
    p.add_argument("--static", action="store_true", help="use only the first frame of the face video")
    p.add_argument("--fps", type=float, default=25.0, help="output frame rate for a face image (default 25)")
    p.add_argument("--pads", nargs=4, type=int, default=[0, 10, 0, 0], metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
                   help="padding of the face box (default 0 10 0 0: include the chin)")
    p.add_argument("--face_det_batch_size", type=int, default=16, help="frames per face-detector call (default 16)")
    p.add_argument("--wav2lip_batch_size", type=int, default=128,
                   help="faces per Wav2Lip batch, halved on out-of-memory (default 128)")
    p.add_argument("--resize_factor", type=int, default=1, help="shrink the face video by this factor first")
    p.add_argument("--crop", nargs=4, type=int, default=[0, -1, 0, -1], metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
                   help="crop the (resized, rotated) video; -1: to the edge")
    p.add_argument("--box", nargs=4, type=int, default=[-1, -1, -1, -1], metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
                   help="fixed face box instead of detection")
    p.add_argument("--rotate", action="store_true", help="turn the video 90 degrees clockwise first")
    p.add_argument("--nosmooth", action="store_true", help="no temporal smoothing of the face boxes")
    p.add_argument("--face_detector", default="mtcnn",
                   help="mtcnn (default, offline), sfd, blazeface, mediapipe or haar")
    p.add_argument("--face_enhancement", action="store_true",
                   help="PaddleGAN's GPEN pass (not available here: an error)")
    p.add_argument("--cpu", action="store_true", help="same as --device cpu (PaddleGAN's flag)")
    p.add_argument("--face_index", type=int, default=None,
                   help="which face to lip-sync when there are several (track id; default: the most seen)")
    p.add_argument("--detect_every", type=int, default=1,
                   help="detect faces on every n-th frame only, interpolating between (default 1)")
    p.add_argument("--detect_size", type=int, default=None,
                   help="detect faces on frames shrunk to this longer side, e.g. 320 (default: full size)")
    p.add_argument("--mask", choices=["auto", "mesh", "box"], default="auto",
                   help="blend region: face-mesh lower face (auto: when available) or the box's lower half")
    p.add_argument("--no_color_match", action="store_true", help="do not match the mouth's colour to the frame")
    p.add_argument("--chunk_seconds", type=float, default=10.0, help="resumable chunk length (default 10)")
    p.add_argument("--crf", type=int, default=18, help="output quality, lower is better (default 18)")
    p.add_argument("--no_resume", action="store_true", help="start over even if finished chunks exist")
    cli_args.add_device_args(p)
    args = p.parse_args(argv)

    def run():
        import logging

        from ppgan.utils.errors import PPGANError

        cli_args.check_args(args)
        if args.cpu:
            if args.device == "cuda":
                raise PPGANError("give --cpu or --device cuda, not both")
            args.device = "cpu"
        from ppgan.apps.inputs import check_input_exists

        for path in (args.face, args.audio):  # before any model is loaded (or fetched)
            check_input_exists(path)
        lib_log = logging.getLogger("ppgan")
        if not args.quiet and not lib_log.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("[ppgan] %(message)s"))
            lib_log.addHandler(handler)
            lib_log.setLevel(logging.INFO)
        from ppgan.apps.wav2lip_predictor import Wav2LipPredictor

        with cli_args.own_flags(weight_path="--checkpoint_path"):
            pred = Wav2LipPredictor(checkpoint_path=args.checkpoint_path, static=args.static, fps=args.fps,
                                    pads=args.pads, face_det_batch_size=args.face_det_batch_size,
                                    wav2lip_batch_size=args.wav2lip_batch_size, resize_factor=args.resize_factor,
                                    crop=args.crop, box=args.box, rotate=args.rotate, nosmooth=args.nosmooth,
                                    face_detector=args.face_detector, face_enhancement=args.face_enhancement,
                                    face_index=args.face_index, detect_every=args.detect_every,
                                    detect_size=args.detect_size, model=args.model,
                                    mask=args.mask, color_match=not args.no_color_match,
                                    chunk_seconds=args.chunk_seconds, crf=args.crf, resume=not args.no_resume,
                                    device=args.device, half=args.half, verbose=not args.quiet)
        print(f"output: {pred.run(args.face, args.audio, args.outfile)}")
        return 0

    return cli_args.run_main(run)


if __name__ == "__main__":
    sys.exit(main())

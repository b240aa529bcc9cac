"""Flags shared by the app CLIs in `applications/tools/` and the code that runs them: one
`error:` line and a non-zero exit for anything the user can get wrong, never a traceback.

Exit codes: 0 done; 1 an I/O error; 2 bad input or arguments; 3 a folder / glob run where some
files failed (the others were written); 130 interrupted.
"""
import contextlib
import os
import re
import sys


# `ppgan.faceutils.DETECTORS`, spelled out so that a CLI's --help does not import torch
FACE_DETECTORS = ("mtcnn", "sfd", "blazeface", "mediapipe", "haar")


def add_input_args(p, what="image, folder, glob or video"):
    p.add_argument("--input", required=True, help=f"{what} to process")
    p.add_argument("--output", default="output", help="output folder (default: output)")
    p.add_argument("--output_path", default=None,
                   help="exact output file (single input) or folder (folder input), instead of "
                        "<output>/<App>/<name>")
    p.add_argument("--skip_existing", action="store_true", help="skip inputs whose output file exists")


def add_device_args(p):
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto (default): CUDA when present; cuda without a GPU is an error")
    p.add_argument("--half", dest="half", action="store_true", default=None,
                   help="fp16 inference (default on CUDA; non-finite tiles are redone in fp32)")
    p.add_argument("--no_half", dest="half", action="store_false", help="fp32 inference on CUDA")
    p.add_argument("--precision", choices=["fp32", "fp16", "bf16"], default=None,
                   help="inference precision, instead of --half/--no_half (bf16 also runs on CPU; "
                        "non-finite outputs are redone in fp32)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or status lines")


def add_video_args(p):
    g = p.add_argument_group("video output")
    g.add_argument("--crf", type=int, default=18, help="quality (constant rate factor; -q:v for MPEG-2/MPEG-4/Theora), lower is better (default 18)")
    g.add_argument("--codec", default=None,
                   help="video encoder (default: one the output container holds: libx264; VP9 for .webm)")
    g.add_argument("--pix_fmt", default="yuv420p", help="output pixel format (default yuv420p)")
    g.add_argument("--chunk_seconds", type=float, default=10.0,
                   help="resumable chunk length; a killed job re-run with the same arguments continues "
                        "from the last finished chunk (default 10)")
    g.add_argument("--no_resume", action="store_true", help="start over even if finished chunks exist")


def video_options(args):
    return {"crf": args.crf, "codec": args.codec, "pix_fmt": args.pix_fmt, "chunk_seconds": args.chunk_seconds,
            "resume": not args.no_resume}


def check_args(args):
    from ..utils.errors import PPGANError

    if getattr(args, "precision", None) is not None:
        if getattr(args, "half", None) is not None:
            raise PPGANError("give --precision or --half/--no_half, not both")
        args.half = args.precision  # the predictors' `half` takes a precision name too

    if getattr(args, "crf", 0) is not None and not 0 <= getattr(args, "crf", 0) <= 63:
        raise PPGANError(f"--crf must be in 0..63, got {args.crf}")
    if getattr(args, "chunk_seconds", 1) <= 0:
        raise PPGANError(f"--chunk_seconds must be > 0, got {args.chunk_seconds}")
    if getattr(args, "tile", None) is not None and args.tile < 0:
        raise PPGANError(f"--tile must be >= 0 (0 = no tiling), got {args.tile}")
    if getattr(args, "input", None) is not None:
        from .inputs import check_input_exists

        check_input_exists(args.input)  # reported before any model is loaded (or fetched)


def print_result(result):
    """Print what was written; return the exit code (3 when some folder inputs failed)."""
    from .inputs import BatchResult

    if isinstance(result, BatchResult):
        for src, why in result.failed:
            print(f"failed: {src}: {why}", file=sys.stderr)
        if len(result.outputs) == 1:  # one file: named, not a "folder" that is the file
            where = f"; output: {result.outputs[0]}"
        elif result.outputs:
            where = f"; outputs under {os.path.commonpath(result.outputs)}"
        else:
            where = ""
        print(result.summary() + where)
        return 0 if result.ok else 3
    print(f"output: {result}")
    return 0


def show_library_status(quiet=False):
    """Send the library's status lines ('resuming ... at chunk 3 of 5') to stderr as `[ppgan] ...`,
    unless `quiet` or a handler is already installed."""
    import logging

    lib_log = logging.getLogger("ppgan")
    if not quiet and not lib_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[ppgan] %(message)s"))
        lib_log.addHandler(handler)
        lib_log.setLevel(logging.INFO)


def run_predictor(pred, args):
    """`pred.run` on the CLI's input / output flags; prints the result, returns the exit code.
    Status messages of the library (e.g. 'resuming ... at chunk 3 of 5') go to stderr unless
    --quiet."""
    show_library_status(args.quiet)
    result = pred.run_files(args.input, output_path=args.output_path, skip_existing=args.skip_existing,
                      video_options=video_options(args), progress=not args.quiet)
    return print_result(result)


@contextlib.contextmanager
def own_flags(**flags):
    """User errors raised inside name this tool's flags instead of the library's generic ones:
    `with own_flags(weight_path="--DeOldify_weight"): DeOldifyPredictor(...)` turns "... or pass
    --weight_path FILE" into "... or pass --DeOldify_weight FILE"."""
    from ..utils.errors import USER_ERRORS

    try:
        yield
    except USER_ERRORS as e:
        if len(e.args) == 1 and isinstance(e.args[0], str):  # the message is the whole str(e)
            msg = e.args[0]
            for generic, own in flags.items():
                msg = re.sub(rf"--{re.escape(generic)}\b", own, msg)
            e.args = (msg,)
        raise


def run_main(fn):
    """Run `fn()` (which returns an exit code) with errors as one line."""
    from ..utils.errors import USER_ERRORS, report

    try:
        return fn()
    except USER_ERRORS as e:
        return report(e, code=1 if isinstance(e, OSError) and not isinstance(e, FileNotFoundError) else 2)
    except KeyboardInterrupt:
        print("interrupted (finished video chunks are kept: re-run the same command to resume)", file=sys.stderr)
        return 130

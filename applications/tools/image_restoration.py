#!/usr/bin/env python
"""Restore images, folders and videos: denoise (SwinIR, NAFNet, InvDN, MPRNet), deblur and derain
(MPRNet), with PaddleGAN's models and weights.

Results go to <output_path>/<Task>/<name>_restoration.<ext> (PaddleGAN's layout: Denoising,
Deblurring or Deraining) with the input's size; videos keep their frame rate, audio and
subtitles. Large images run in tiles (exact for SwinIR and InvDN; see --tile)."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

MODELS = ("swinir", "nafnet", "mprnet", "invdn")
WEIGHTS = {"swinir": "swinir-denoising", "nafnet": "nafnet-denoising", "invdn": "invdn-denoising",
           "mprnet": "mpr-deblurring, mpr-denoising or mpr-deraining (by --task)"}
TOOLS = {"swinir": "swinir_denoising.py", "nafnet": "nafnet_denoising.py", "mprnet": "mprnet.py",
         "invdn": "invdn_denoising.py"}


def examples(model):
    tool = f"applications/tools/{TOOLS[model] if model else 'image_restoration.py'}"
    pick = "" if model else " --model nafnet"
    first = (f"  python {tool}{pick} --images_path noisy.png   # -> output_dir/Denoising/noisy_restoration.png"
             if model != "mprnet" else
             f"  python {tool} --input_image blurry.png --task deblur   # -> output_dir/Deblurring/blurry_restoration.png")
    lines = [first,
             f"  python {tool}{pick} --input photos/ --output_path out --skip_existing",
             f"  python {tool}{pick} --input clip.mp4 --device cuda"]
    if model in (None, "invdn"):
        lines.append(f"  python {tool}{' --model invdn' if not model else ''} --input noisy.png --disable_mc --seed 1")
    if model is None:
        lines.append(f"  python {tool} --model mprnet --task derain --input rainy.jpg --tile 256")
    names = WEIGHTS[model] if model else ", ".join(WEIGHTS[m] for m in MODELS)
    return ("examples:\n" + "\n".join(lines) + f"\n\nweights: {names}   (`ppgan download NAME` fills the cache for "
            "offline use; or --weight_path FILE.pdparams)\n")


def build_parser(model=None, doc=__doc__):
    p = argparse.ArgumentParser(description=doc, epilog=examples(model),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", "--images_path", "--input_image", dest="input", required=True,
                   help="image, folder, glob or video (PaddleGAN's --images_path / --input_image)")
    p.add_argument("--output_path", "--output", dest="output", default="output_dir",
                   help="output folder; results go to <output_path>/<Task>/ (default output_dir, as PaddleGAN)")
    p.add_argument("--skip_existing", action="store_true", help="skip inputs whose output file exists")
    if model is None:
        p.add_argument("--model", default=None, help=f"one of {', '.join(MODELS)} (required)")
    if model in (None, "mprnet"):
        p.add_argument("--task", default="Deblurring",
                       help="MPRNet task: deblur, denoise or derain (PaddleGAN's Deblurring, Denoising, Deraining; "
                            "default Deblurring)")
    p.add_argument("--weight_path", default=None, help="weight file (.pdparams) instead of the catalogue's")
    p.add_argument("--seed", type=int, default=None, help="seed of InvDN's latent noise (default 0); others ignore it")
    if model in (None, "invdn"):
        p.add_argument("--disable_mc", action="store_true",
                       help="InvDN: one pass instead of the 8-pass Monte Carlo self-ensemble (faster, a little worse)")
    p.add_argument("--tile", type=int, default=None,
                   help="tile size in input pixels (default: whole image when it fits memory; 0: never tile)")
    p.add_argument("--tile_overlap", type=int, default=None,
                   help="context pixels around each tile (default: the receptive radius for SwinIR / InvDN, so "
                        "tiles are exact; 64 for NAFNet / MPRNet, whose tiles are approximate)")
    p.add_argument("--cpu", action="store_true", help="PaddleGAN's flag: same as --device cpu")
    from ppgan.apps import cli_args

    cli_args.add_device_args(p)
    cli_args.add_video_args(p)
    return p


def main(argv=None, model=None, doc=__doc__):
    """Run the front door (`model` None: --model picks) or one model's CLI."""
    from ppgan.apps import cli_args

    args = build_parser(model, doc).parse_args(argv)

    def run():
        from ppgan.utils.errors import ConfigError, closest

        name = model or args.model
        if name is None:
            raise ConfigError(f"--model is required: one of {', '.join(MODELS)}")
        name = {"mpr": "mprnet", "mprnet": "mprnet"}.get(str(name).lower(), str(name).lower())
        if name not in MODELS:
            hint = closest(name, MODELS)
            raise ConfigError(f"unknown --model {args.model!r}: use one of {', '.join(MODELS)}"
                              + (f" (did you mean {hint[0]}?)" if hint else ""))
        if args.tile_overlap is not None and args.tile_overlap < 0:
            raise ConfigError(f"--tile_overlap must be >= 0, got {args.tile_overlap}")
        if args.cpu:
            if args.device == "cuda":
                raise ConfigError("--cpu and --device cuda contradict each other")
            args.device = "cpu"
        task = getattr(args, "task", None)
        if name == "mprnet":
            from ppgan.apps.restoration_predictor import mpr_task

            task = mpr_task(task)  # checked before the input and the weights
        cli_args.check_args(args)
        from ppgan.apps.restoration_predictor import PREDICTORS

        common = dict(output_path=args.output, weight_path=args.weight_path, seed=args.seed, tile=args.tile,
                      tile_overlap=args.tile_overlap, device=args.device, half=args.half, verbose=not args.quiet)
        if name == "mprnet":
            common["task"] = task
        if name == "invdn":
            common["disable_mc"] = args.disable_mc
        pred = PREDICTORS[name](**common)
        args.output_path = None  # PaddleGAN's --output_path is the output folder (args.output)
        return cli_args.run_predictor(pred, args)

    return cli_args.run_main(run)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Project an image into a StyleGAN2 generator's W+ space (PaddleGAN's flags), then regenerate
it: Adam on the latent with an LPIPS + MSE loss (or MSE alone with --loss mse)."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

EXAMPLES = """Writes src.fitting.png (the cropped target), dst.fitting.png (the regenerated image) and
dst.fitting.npy (the latent, [n_latent, style_dim], for styleganv2mixing.py) under --output_path.
The image is resized (shorter side) and centre-cropped to min(256, size). LPIPS needs its weights
in $PPGAN_HOME/weights (`ppgan download lpips-vgg vgg16-torchvision`) or --lpips_weight_path.

examples:
  python applications/tools/styleganv2fitting.py --input_image face.png --model_type ffhq-config-f --step 200
  python applications/tools/styleganv2fitting.py --input_image face.png --model_type ffhq-config-f --loss mse
"""


def main(argv=None):
    from styleganv2 import add_generator_args, generator_kwargs

    p = argparse.ArgumentParser(description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input_image", required=True, help="image to fit")
    p.add_argument("--need_align", action="store_true", help="align the face first (not supported: align beforehand)")
    p.add_argument("--start_lr", type=float, default=0.1, help="learning rate at the start (default 0.1)")
    p.add_argument("--final_lr", type=float, default=0.025, help="learning rate at the end (default 0.025)")
    p.add_argument("--latent_level", type=int, nargs="+", default=None,
                   help="latent levels to optimise (default 0..11, those the generator has)")
    p.add_argument("--step", type=int, default=100, help="optimisation steps (default 100)")
    p.add_argument("--mse_weight", type=float, default=1., help="weight of the MSE loss (default 1)")
    p.add_argument("--pre_latent", default=None, help="start from this latent (.npy) instead of the mean")
    p.add_argument("--loss", choices=["lpips", "mse"], default="lpips", help="lpips (+ mse, default) or mse alone")
    p.add_argument("--lpips_weight_path", default=None, help="LPIPS linear layers (default: the cache)")
    p.add_argument("--lpips_backbone_path", default=None, help="LPIPS VGG16 file (default: the cache)")
    add_generator_args(p)
    args = p.parse_args(argv)
    from ppgan.apps.cli_args import run_main

    def go():
        from ppgan.utils.errors import ConfigError

        if args.step < 1 or args.start_lr <= 0 or args.final_lr <= 0 or args.mse_weight < 0:
            raise ConfigError("--step must be >= 1, --start_lr and --final_lr > 0, --mse_weight >= 0")
        if not os.path.isfile(args.input_image):
            raise FileNotFoundError(f"input image {args.input_image} does not exist")
        from ppgan.apps.styleganv2_predictor import StyleGANv2FittingPredictor

        pred = StyleGANv2FittingPredictor(lpips_weight_path=args.lpips_weight_path,
                                          lpips_backbone_path=args.lpips_backbone_path, **generator_kwargs(args))
        pred.run(args.input_image, need_align=args.need_align, start_lr=args.start_lr, final_lr=args.final_lr,
                 latent_level=args.latent_level, step=args.step, mse_weight=args.mse_weight,
                 pre_latent=args.pre_latent, loss=args.loss)
        print(f"output: {os.path.join(args.output_path, 'dst.fitting.png')}")
        return 0

    return run_main(go)


if __name__ == "__main__":
    sys.exit(main())

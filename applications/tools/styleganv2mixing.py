#!/usr/bin/env python
"""Mix two StyleGAN2 W+ latents level by level (PaddleGAN's flags): level i of the result is
latent1_i * w_i + latent2_i * (1 - w_i)."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

EXAMPLES = """The latents are .npy files of shape [n_latent, style_dim] as styleganv2fitting.py writes
(dst.fitting.npy); n_latent is 18 at 1024 px, 16 at 512, 14 at 256. Writes src1.mixing.png,
src2.mixing.png and dst.mixing.png under --output_path.

examples:
  python applications/tools/styleganv2mixing.py --latent1 a.npy --latent2 b.npy --model_type ffhq-config-f
  # coarse levels (pose, face shape) from a, the rest from b:
  python applications/tools/styleganv2mixing.py --latent1 a.npy --latent2 b.npy --model_type ffhq-config-f \\
      --weights 1 1 1 1 1 1 0 0 0 0 0 0 0 0 0 0 0 0
"""


def main(argv=None):
    from styleganv2 import add_generator_args, generator_kwargs

    p = argparse.ArgumentParser(description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--latent1", required=True, help="first W+ latent (.npy)")
    p.add_argument("--latent2", required=True, help="second W+ latent (.npy)")
    p.add_argument("--weights", type=float, nargs="+", default=None,
                   help="weight of latent1 at each level (default 0.5 at every level)")
    add_generator_args(p)
    args = p.parse_args(argv)
    from ppgan.apps.cli_args import run_main

    def go():
        from ppgan.apps.styleganv2_predictor import StyleGANv2MixingPredictor

        for f in (args.latent1, args.latent2):
            if not os.path.isfile(f):
                raise FileNotFoundError(f"latent file {f} does not exist")
        pred = StyleGANv2MixingPredictor(**generator_kwargs(args))
        pred.run(args.latent1, args.latent2, args.weights)
        print(f"output: {os.path.join(args.output_path, 'dst.mixing.png')}")
        return 0

    return run_main(go)


if __name__ == "__main__":
    sys.exit(main())

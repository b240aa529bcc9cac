#!/usr/bin/env python
"""Text -> image: draw images for a caption with a StackGAN trained by this project
(`python tools/main.py -c configs/stackgan_digits.yaml`). Writes one PNG per image and grid.png
(one row per caption) into --output."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

EXAMPLES = """The caption is read with the vocabulary the model was trained with (named in the weight file's
config): words it does not know are read as the unknown token (a warning names them); a caption
with no word is an error. The digits model knows digits (seven or 7), six colours (red, yellow,
green, cyan, blue, magenta and synonyms), pens (thin, thick), slants (slanted left, upright,
slanted right) and backgrounds (dark, light).

examples:
  python applications/tools/text2image.py --weight_path output_dir/stackgan_digits-.../iter_2800_weight.pth \\
      --text "a thin red seven slanted left on a dark background" --n 8 --output out/
  python applications/tools/text2image.py --weight_path W.pth --text "a blue two" --text "a yellow 5" --n 4
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", action="append", required=True,
                   help="caption (repeat the flag for several captions: one grid row each)")
    p.add_argument("--weight_path", required=True, help="*_weight.pth / *_checkpoint.pth of a StackGANModel run")
    p.add_argument("--config", default=None, help="training config (default: the one stored in the weight file)")
    p.add_argument("--n", type=int, default=8, help="images per caption (default 8)")
    p.add_argument("--output", default=os.path.join("output", "TextToImage"),
                   help="output folder (default: output/TextToImage)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--stage", type=int, default=None, choices=[1, 2],
                   help="which stage's images (default: the model's last stage)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--quiet", action="store_true", help="no device line or warnings")
    args = p.parse_args(argv)
    from ppgan.utils.errors import USER_ERRORS, report

    if not 1 <= args.n <= 1024:
        print(f"error: --n must be in 1..1024, got {args.n}", file=sys.stderr)
        return 2
    try:
        from ppgan.utils.text import tokenize

        for t in args.text:  # before the model loads
            if not tokenize(t):
                print(f"error: empty caption {t!r}: write a few words, e.g. --text \"a thin red seven\"",
                      file=sys.stderr)
                return 2
        from ppgan.apps.text2image_predictor import TextToImagePredictor

        pred = TextToImagePredictor(args.weight_path, config=args.config, device=args.device, stage=args.stage,
                                    verbose=not args.quiet)
        res = pred.run(args.text, n=args.n, output=args.output, seed=args.seed)
        print(f"grid: {res['grid']}")
        print(f"images: {len(res['files'])} files in {args.output} ({pred.image_size}x{pred.image_size})")
        return 0
    except USER_ERRORS as e:
        return report(e)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Discriminator-only generation: start from noise and climb a trained GAN discriminator's score by
gradient ascent (no generator). Writes start.png (the noise) and samples.png (the result) and prints
D's mean score before and after; --eval_digits also reports how many of them a digit classifier
recognises (the measure of tools/eval_digits.py)."""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

EXAMPLES = """Each step moves every pixel by --step_size (RMS, in [-1, 1] units) along D's gradient, then
adds --noise * N(0, 1) and clips to [-1, 1]. Compare the scores with those of real images (printed
with --eval_digits) and open the grids: D's score alone is a poor generator. --init generator starts
from the same file's generator samples instead of noise (D "refining" G's samples).

examples:
  python tools/main.py -c configs/dcgan_digits.yaml          # a digits GAN: its netD is what we climb
  python applications/tools/d_only_sampling.py --weight_path output_dir/dcgan_digits-.../iter_2500_weight.pth
  python applications/tools/d_only_sampling.py --weight_path W.pth --init generator --steps 50 --step_size 0.01
  python applications/tools/d_only_sampling.py --weight_path W.pth --n 256 --steps 500 --step_size 0.01 \\
      --noise 0.005 --eval_digits --json d_only.json
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weight_path", required=True, help="*_weight.pth / *_checkpoint.pth of a GAN run (holds netD)")
    p.add_argument("--config", default=None, help="training config (default: the one stored in the weight file)")
    p.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--steps", type=int, default=200, help="gradient-ascent steps (default 200)")
    p.add_argument("--step_size", type=float, default=0.02, help="RMS pixel change per step (default 0.02)")
    p.add_argument("--noise", type=float, default=0.0, help="std of the noise added each step (default 0)")
    p.add_argument("--init", default="uniform", choices=["uniform", "normal", "generator"],
                   help="start from U(-1, 1) noise (default), N(0, 0.5^2) clipped, or the file's generator samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default="output",
                   help="output folder; files go to <output>/DOnlySampling/, as every app's (default: output)")
    p.add_argument("--output_path", default=None,
                   help="exact folder for the files, instead of <output>/DOnlySampling/")
    p.add_argument("--eval_digits", action="store_true",
                   help="train the digit classifier of tools/eval_digits.py (about half a minute) and report the "
                        "share of samples recognised with confidence >= 0.9, before and after, and real digits' D score")
    p.add_argument("--json", default=None, help="also write the figures as JSON here")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = p.parse_args(argv)
    from ppgan.utils.errors import USER_ERRORS, report

    if args.n < 1 or args.steps < 0 or args.step_size < 0 or args.noise < 0:
        print("error: --n must be >= 1, --steps, --step_size and --noise >= 0", file=sys.stderr)
        return 2
    try:
        from ppgan.apps.d_sampler_predictor import DiscriminatorSampler

        out_dir = args.output_path or os.path.join(args.output, "DOnlySampling")
        sampler = DiscriminatorSampler(args.weight_path, config=args.config, device=args.device)
        res = sampler.run(n=args.n, steps=args.steps, step_size=args.step_size, noise=args.noise, seed=args.seed,
                          init=args.init, output=out_dir)
        figures = {"n": args.n, "steps": args.steps, "step_size": args.step_size, "noise": args.noise,
                   "init": args.init, "score_before": res["score_before"], "score_after": res["score_after"]}
        print(f"start: {res['start']}")
        print(f"samples: {res['samples']}")
        print(f"mean D score (logit): before {res['score_before']:.3f}, after {res['score_after']:.3f}")
        if args.eval_digits:
            figures.update(_eval_digits(sampler, res["images"], args.seed, args.n, args.init))
        if args.json:
            from ppgan.utils.io import atomic_write_text

            atomic_write_text(args.json, json.dumps(figures, indent=2))
        return 0
    except USER_ERRORS as e:
        return report(e)


def _eval_digits(sampler, images, seed, n, init):
    """Recognised share (confidence >= 0.9) of the noise and of the samples, and D's score of real digits."""
    import torch

    from ppgan.datasets.digits import DigitsDataset
    from ppgan.metrics.digit_accuracy import classify_probs, mode_stats, train_digit_classifier

    if sampler.size % 4:
        from ppgan.utils.errors import PPGANError

        raise PPGANError(f"--eval_digits needs an image size divisible by 4, got {sampler.size}")
    clf, acc = train_digit_classifier(size=sampler.size, cache=True, log=lambda m: print(m, file=sys.stderr))
    start = sampler.initial(n, seed, init)  # what `run` started from (same seed)
    before, after = (mode_stats(classify_probs(clf, x[:, :1])) for x in (start, images))
    real = DigitsDataset(num_samples=n, size=sampler.size, channels=sampler.channels, seed=7, return_label=False)
    real_imgs = torch.stack([real[i]["img"] for i in range(n)])
    real_score = float(sampler.scores(real_imgs).mean())
    print(f"classifier accuracy on held-out real digits: {acc:.3f}")
    print(f"mean D score of {n} real digits: {real_score:.3f}")
    print(f"recognised (confidence >= 0.9): noise {before['recognised']:.3f}, after ascent {after['recognised']:.3f}; "
          f"classes present after: {after['classes_present']}/10, KL(recognised || uniform) "
          f"{after['kl_recognised']:.3f}")
    print("recognised per class after: " + " ".join(f"{c}:{k}" for c, k in enumerate(after["counts"])))
    return {"classifier_accuracy_on_real_digits": acc, "score_real": real_score,
            "recognised_before": before["recognised"], "recognised_after": after["recognised"],
            "classes_present_after": after["classes_present"], "counts_after": after["counts"],
            "kl_recognised_after": after["kl_recognised"]}


if __name__ == "__main__":
    sys.exit(main())

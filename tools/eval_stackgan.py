#!/usr/bin/env python
"""Does a text -> image model draw what the caption says? Caption match of a StackGAN trained on
the captioned digits (`configs/stackgan_digits.yaml`), on held-out captions.

For each of --n captions of the held-out split (`CaptionedDigitsDataset(split='test')`, captions
and attribute draws the model never saw) one image is generated and judged:
  * digit: the digit classifier of `ppgan.metrics.digit_accuracy` (trained on the plain embedded
    digits, its held-out accuracy printed first) on the image turned into white-on-black grey
    (distance of each pixel from the background colour, `ink_to_grey`);
  * colour: the hue of the ink (pixels far from the background) nearest to one of the six caption
    colours (`judge_colour`); grey ink matches no colour.
Reported: the share of images whose digit, colour, and both match their caption; the chance
levels (uniform guessing: 1/10, 1/6, 1/60, and the same judged images scored against shuffled
captions, which is what an image that ignores its caption gets); and the judges' own accuracy on
the real held-out images (the ceiling).

  python tools/eval_stackgan.py --weight_path output_dir/stackgan_digits-.../iter_2800_weight.pth
  python tools/eval_stackgan.py --weight_path W.pth --n 2000 --stage 1 --json match.json --grid match.png
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BATCH = 64


def judge(images, clf):
    """(digit predictions int64 [N], colour predictions int64 [N]) of images [N, 3, H, W] in [-1, 1]."""
    import torch

    from ppgan.datasets.captioned import ink_to_grey, judge_colour

    with torch.no_grad():
        grey = ink_to_grey(images, size=32)
        digits = torch.cat([clf(grey[i:i + 256]).argmax(1) for i in range(0, len(grey), 256)])
    return digits.numpy(), judge_colour(images)


def match_figures(pred_digit, pred_colour, digit, colour, rng):
    """Shares matching the captions' digit / colour / both, and the same against shuffled captions."""
    import numpy as np

    d_ok, c_ok = pred_digit == digit, pred_colour == colour
    perm = rng.permutation(len(digit))
    ds_ok, cs_ok = pred_digit == digit[perm], pred_colour == colour[perm]
    return {"digit_match": float(d_ok.mean()), "colour_match": float(c_ok.mean()),
            "both_match": float((d_ok & c_ok).mean()),
            "shuffled_digit_match": float(ds_ok.mean()), "shuffled_colour_match": float(cs_ok.mean()),
            "shuffled_both_match": float((ds_ok & cs_ok).mean()),
            "no_colour": float(np.mean(pred_colour < 0))}


def evaluate(pred, clf, n, seed=0, data_seed=0, grid=None):
    """Caption-match figures of predictor `pred` (a TextToImagePredictor) on `n` held-out captions."""
    import numpy as np
    import torch

    from ppgan.datasets.captioned import COLOURS, CaptionedDigitsDataset
    from ppgan.utils.errors import ConfigError

    if pred.vocab.name != "digits":
        raise ConfigError(f"eval_stackgan judges digits captions; this model uses the '{pred.vocab.name}' "
                          "vocabulary")
    data = CaptionedDigitsDataset(num_samples=n, size=pred.image_size, split="test", seed=data_seed)
    gen = torch.Generator().manual_seed(seed)
    keys = ("digit", "colour")
    fake_d, fake_c, real_d, real_c, truth = [], [], [], [], {k: [] for k in keys}
    shown = []
    for start in range(0, n, BATCH):
        items = [data[i] for i in range(start, min(n, start + BATCH))]
        tokens = torch.stack([s["tokens"] for s in items])
        lengths = torch.stack([s["length"] for s in items])
        real = torch.stack([s["img"] for s in items])
        fake = pred.model.generate(tokens, lengths, generator=gen, stage=pred.stage).float().cpu().clamp(-1, 1)
        for k in keys:
            truth[k].append(torch.stack([s[k] for s in items]).numpy())
        d, c = judge(fake, clf)
        fake_d.append(d)
        fake_c.append(c)
        d, c = judge(real, clf)
        real_d.append(d)
        real_c.append(c)
        if grid and len(shown) < 32:
            shown.extend(zip(real[:32 - len(shown)], fake[:32 - len(shown)]))
    digit, colour = (np.concatenate(truth[k]) for k in keys)
    fake_d, fake_c, real_d, real_c = map(np.concatenate, (fake_d, fake_c, real_d, real_c))
    rng = np.random.default_rng(seed)
    result = {"n": n, "stage": pred.stage, "image_size": pred.image_size,
              "chance_digit": 0.1, "chance_colour": 1 / len(COLOURS), "chance_both": 1 / (10 * len(COLOURS))}
    result.update(match_figures(fake_d, fake_c, digit, colour, rng))
    real = match_figures(real_d, real_c, digit, colour, rng)
    result.update({f"real_{k}": real[k] for k in ("digit_match", "colour_match", "both_match")})
    result["per_digit"] = {int(v): float((fake_d[digit == v] == v).mean()) for v in range(10) if (digit == v).any()}
    result["per_colour"] = {COLOURS[v]: float((fake_c[colour == v] == v).mean())
                            for v in range(len(COLOURS)) if (colour == v).any()}
    if grid:
        from ppgan.utils.visual import save_grid

        pairs = [t for pair in shown for t in pair]  # real, generated, real, generated, ...
        save_grid(torch.stack(pairs), grid, nrow=8)
        result["grid"] = grid
        result["grid_captions"] = [data.draw(i)[1] for i in range(len(shown))]
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weight_path", required=True, help="*_weight.pth / *_checkpoint.pth of a StackGANModel run")
    p.add_argument("--config", default=None, help="training config (default: the one stored in the weight file)")
    p.add_argument("--n", type=int, default=1000, help="held-out captions, one image each (default 1000)")
    p.add_argument("--stage", type=int, default=None, choices=[1, 2], help="stage judged (default: the last)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--data_seed", type=int, default=0, help="seed of the held-out captions (default 0)")
    p.add_argument("--epochs", type=int, default=3, help="digit classifier training epochs (default 3)")
    p.add_argument("--classifier_samples", type=int, default=12000,
                   help="real digits the classifier trains on (default 12000)")
    p.add_argument("--json", default=None, help="also write the figures as JSON here")
    p.add_argument("--grid", default=None,
                   help="write the first 32 held-out captions' real and generated images as a grid (PNG; pairs "
                        "real, generated; the captions go in the JSON)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = p.parse_args(argv)
    from ppgan.utils.errors import USER_ERRORS, PPGANError, report

    try:
        if args.n < 1 or args.epochs < 1 or args.classifier_samples < 128:
            raise PPGANError("--n and --epochs must be >= 1, --classifier_samples >= 128")
        from ppgan.apps.text2image_predictor import TextToImagePredictor
        from ppgan.metrics.digit_accuracy import train_digit_classifier

        pred = TextToImagePredictor(args.weight_path, config=args.config, device=args.device, stage=args.stage,
                                    verbose=False)
        clf, clf_acc = train_digit_classifier(size=32, num_samples=args.classifier_samples, epochs=args.epochs)
        print(f"classifier accuracy on held-out real digits: {clf_acc:.3f}")
        r = evaluate(pred, clf, args.n, seed=args.seed, data_seed=args.data_seed, grid=args.grid)
        r.update(weight_path=args.weight_path, classifier_accuracy_on_real_digits=clf_acc)
        print(f"held-out captions: {r['n']}, stage {r['stage']} ({r['image_size']} px)")
        print(f"{'':18}{'generated':>10}{'shuffled':>10}{'chance':>8}{'real':>8}")
        for k in ("digit", "colour", "both"):
            print(f"{k + ' matches':18}{r[k + '_match']:>10.3f}{r['shuffled_' + k + '_match']:>10.3f}"
                  f"{r['chance_' + k]:>8.3f}{r['real_' + k + '_match']:>8.3f}")
        print("digit match per digit: " + " ".join(f"{d}:{a:.2f}" for d, a in r["per_digit"].items()))
        print("colour match per colour: " + " ".join(f"{c}:{a:.2f}" for c, a in r["per_colour"].items()))
        if r.get("grid"):
            print(f"grid (real, generated pairs): {r['grid']}")
        if args.json:
            from ppgan.utils.io import atomic_write_text

            atomic_write_text(args.json, json.dumps(r, indent=2))
        return 0
    except USER_ERRORS as e:
        return report(e)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Score a GAN trained on the embedded digits with a small digit classifier trained on digits the
GAN never saw (its held-out accuracy is printed first, so the measure can be trusted).

The classifier (`ppgan.metrics.digit_accuracy`) has an 11th class, "not a digit" (noise, blobs,
blank, random strokes), so noise is not a confident "4"; it is printed with the share of held-out
real digits it recognises (the ceiling of a generator's score) and of noise images. It trains once
(about two CPU-minutes) and is kept in $PPGAN_HOME/digit_classifier (--no_cache trains afresh);
--no_reject --classifier_samples 12000 --epochs 3 is the judge used before issue 17.

Class-conditional generators (n_class 10): N samples per class; the share the classifier
recognises as the requested class.

Unconditional generators (automatic when the generator has no classes, or --unconditional):
--n samples (default 1000); the share recognised with confidence >= --threshold (0.9), the
classes present among them (of 10) and the KL divergence of their class histogram from the
uniform one; and the mode coverage of PacGAN (Lin et al., 2018): every sample counts for its most
likely class, a mode is covered when >= 1 sample lands in it (also given: modes holding
>= --min_share of the samples) and the KL of that histogram from uniform.

Samples come from the moving-average generator `netG_ema` when the weight file has one (models
trained with `model.params.ema_decay`), else from `netG`; --no_ema forces `netG`.

Several weight files share one classifier (trained once): the JSON is then a list.

  python tools/eval_digits.py --weight_path output_dir/cond_dcgan_digits-.../iter_3000_weight.pth
  python tools/eval_digits.py --weight_path output_dir/dcgan_digits-.../iter_2500_weight.pth --json q.json
  # mode coverage, DCGAN vs PacGAN (configs/pacgan_digits.yaml: the same run with pack 2):
  python tools/eval_digits.py --n 10000 --weight_path <dcgan_digits run>/iter_2500_weight.pth \
      <pacgan_digits run>/iter_2500_weight.pth
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _conditional(pred, clf, args):
    from ppgan.metrics.digit_accuracy import classify_accuracy

    per_class, total_correct = {}, 0.0
    for c in range(10):
        imgs, classes = pred.generate(args.per_class, class_id=c, seed=args.seed + c)
        acc = classify_accuracy(clf, imgs[:, :1], classes)
        per_class[c] = acc
        total_correct += acc * args.per_class
    result = {"mode": "conditional", "conditional_accuracy": total_correct / (10 * args.per_class),
              "per_class": per_class, "samples_per_class": args.per_class}
    print(f"generated digits recognised as the requested class: {result['conditional_accuracy']:.3f}")
    print("per class: " + " ".join(f"{c}:{a:.2f}" for c, a in per_class.items()))
    return result


def _unconditional(pred, clf, args):
    import torch

    from ppgan.metrics.digit_accuracy import classify_probs, mode_stats

    probs = torch.cat([classify_probs(clf, imgs[:, :1]) for imgs, _ in pred.batches(args.n, seed=args.seed)])
    s = mode_stats(probs, args.threshold, args.min_share)
    print(f"samples: {s['n']}")
    print(f"recognised (confidence >= {args.threshold:g}): {s['recognised']:.3f}")
    print(f"classes present among them: {s['classes_present']}/10, "
          f"KL(recognised classes || uniform): {s['kl_recognised']:.3f}")
    print("recognised per class: " + " ".join(f"{c}:{k}" for c, k in enumerate(s["counts"])))
    print(f"modes covered (>= 1 sample, PacGAN): {s['modes_covered']}/10, with >= {args.min_share:.0%} of the "
          f"samples: {s['modes_min_share']}/10, KL(all classes || uniform): {s['kl_all']:.3f}")
    return dict(mode="unconditional", **s)


def main(argv=None):
    from ppgan.metrics.digit_accuracy import DEFAULT_EPOCHS, DEFAULT_SAMPLES

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weight_path", required=True, nargs="+", help="*_weight.pth file(s) of digits GANs")
    p.add_argument("--config", default=None, help="training config (optional for ppgan weight files)")
    p.add_argument("--no_ema", action="store_true",
                   help="sample through the trained netG even when the file has a moving average netG_ema")
    p.add_argument("--unconditional", action="store_true",
                   help="measure recognised share and mode coverage even for a class-conditional generator "
                        "(its classes cycle through the samples)")
    p.add_argument("--n", type=int, default=1000, help="unconditional: samples (default 1000; 10000 for mode coverage)")
    p.add_argument("--threshold", type=float, default=0.9,
                   help="unconditional: classifier confidence for a recognised digit (default 0.9)")
    p.add_argument("--min_share", type=float, default=0.01,
                   help="unconditional: share of the samples a mode needs in the stricter count (default 0.01)")
    p.add_argument("--per_class", type=int, default=100, help="conditional: samples per class (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                   help=f"classifier training epochs (default {DEFAULT_EPOCHS})")
    p.add_argument("--classifier_samples", type=int, default=DEFAULT_SAMPLES,
                   help=f"real digits the classifier trains on (default {DEFAULT_SAMPLES})")
    p.add_argument("--no_reject", action="store_true",
                   help="the classifier without its 'not a digit' class (the judge before issue 17)")
    p.add_argument("--no_cache", action="store_true",
                   help="train the classifier afresh instead of loading it from $PPGAN_HOME/digit_classifier")
    p.add_argument("--json", default=None, help="also write the result as JSON here (a list for several files)")
    args = p.parse_args(argv)
    from ppgan.utils.errors import USER_ERRORS, PPGANError, report

    try:
        if min(args.n, args.per_class, args.epochs) < 1 or args.classifier_samples < 128:
            raise PPGANError("--n, --per_class and --epochs must be >= 1, --classifier_samples >= 128")
        if not 0.0 < args.threshold <= 1.0 or not 0.0 <= args.min_share <= 1.0:
            raise PPGANError("--threshold must be in (0, 1] and --min_share in [0, 1]")
        from ppgan.apps import GANPredictor
        from ppgan.metrics.digit_accuracy import judge_report, train_digit_classifier

        preds = []
        for path in args.weight_path:  # load all first: a bad file fails before the classifier trains
            pred = GANPredictor(config=args.config, weight_path=path, device="cpu", use_ema=not args.no_ema)
            if pred.n_class not in (0, 10):
                raise PPGANError(f"{path}: eval_digits needs an unconditional or 10-class generator, "
                                 f"this one has {pred.n_class} classes")
            c, h, w = pred.image_shape()
            if h != w or h % 4:
                raise PPGANError(f"{path}: generates {w}x{h} images; eval_digits needs square sides divisible by 4")
            preds.append((path, pred, h))
        classifiers, results = {}, []
        for path, pred, size in preds:
            if size not in classifiers:
                clf, clf_acc = train_digit_classifier(size=size, num_samples=args.classifier_samples,
                                                      epochs=args.epochs, reject=not args.no_reject,
                                                      cache=not args.no_cache,
                                                      log=lambda m: print(m, file=sys.stderr))
                ceiling = judge_report(clf, size, args.threshold)
                classifiers[size] = clf, clf_acc, ceiling
                print(f"classifier accuracy on held-out real digits: {clf_acc:.3f}")
                print(f"held-out real digits recognised (confidence >= {args.threshold:g}): "
                      f"{ceiling['real_recognised']:.3f}; uniform noise recognised: {ceiling['noise_recognised']:.3f}")
            clf, clf_acc, ceiling = classifiers[size]
            if len(preds) > 1:
                print(f"== {path}")
            net = pred.net_name
            print(f"generator: {net}")
            uncond = args.unconditional or pred.n_class == 0
            result = (_unconditional if uncond else _conditional)(pred, clf, args)
            result.update(weight_path=path, generator=net, classifier_accuracy_on_real_digits=clf_acc,
                          real_digits_recognised=ceiling["real_recognised"],
                          noise_recognised=ceiling["noise_recognised"])
            results.append(result)
        if args.json:
            from ppgan.utils.io import atomic_write_text

            atomic_write_text(args.json, json.dumps(results[0] if len(results) == 1 else results, indent=2))
        return 0
    except USER_ERRORS as e:
        return report(e)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Score a class-conditional GAN trained on the embedded digits: train a small classifier on
digits the GAN never saw, generate N samples per class, report how many the classifier
recognises as the requested class.

  python tools/eval_digits.py --weight_path output_dir/cond_dcgan_digits-.../iter_3000_weight.pth
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weight_path", required=True, help="a *_weight.pth of a conditional digits GAN")
    p.add_argument("--config", default=None, help="training config (optional for ppgan weight files)")
    p.add_argument("--per_class", type=int, default=100, help="samples per class (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=3, help="classifier training epochs (default 3)")
    p.add_argument("--json", default=None, help="also write the result as JSON here")
    args = p.parse_args(argv)
    from ppgan.utils.errors import USER_ERRORS, PPGANError, report

    try:
        from ppgan.apps import GANPredictor
        from ppgan.metrics.digit_accuracy import classify_accuracy, train_digit_classifier

        pred = GANPredictor(config=args.config, weight_path=args.weight_path, device="cpu")
        if pred.n_class != 10:
            raise PPGANError("eval_digits needs a 10-class conditional generator")
        size = pred.netG.init_size * 4 if hasattr(pred.netG, "init_size") else 32
        clf, clf_acc = train_digit_classifier(size=size, epochs=args.epochs,
                                              log=lambda m: print(m, file=sys.stderr))
        per_class = {}
        total_correct = 0
        for c in range(10):
            imgs, classes = pred.generate(args.per_class, class_id=c, seed=args.seed + c)
            acc = classify_accuracy(clf, imgs[:, :1], classes)
            per_class[c] = acc
            total_correct += acc * args.per_class
        result = {"classifier_accuracy_on_real_digits": clf_acc,
                  "conditional_accuracy": total_correct / (10 * args.per_class),
                  "per_class": per_class, "samples_per_class": args.per_class}
        print(f"classifier accuracy on held-out real digits: {clf_acc:.3f}")
        print(f"generated digits recognised as the requested class: {result['conditional_accuracy']:.3f}")
        print("per class: " + " ".join(f"{c}:{a:.2f}" for c, a in per_class.items()))
        if args.json:
            from ppgan.utils.io import atomic_write_text

            atomic_write_text(args.json, json.dumps(result, indent=2))
        return 0
    except USER_ERRORS as e:
        return report(e)


if __name__ == "__main__":
    sys.exit(main())

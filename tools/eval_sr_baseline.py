#!/usr/bin/env python
"""PSNR / SSIM of plain bicubic up-sampling on an SR config's test set: the baseline a trained
model must beat. Uses the config's validate metrics (crop_border, test_y_channel).

  python tools/eval_sr_baseline.py -c configs/sr_x4_demo.yaml
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", required=True)
    p.add_argument("--interp", default="matlab", choices=["matlab", "opencv"],
                   help="bicubic flavour: MATLAB-compatible (ppgan.utils.image.imresize) or cv2.INTER_CUBIC")
    args = p.parse_args(argv)
    from ppgan.utils.errors import USER_ERRORS, report

    try:
        import cv2
        import numpy as np

        from ppgan.datasets import build_dataset
        from ppgan.metrics import build_metric
        from ppgan.utils.config import load_config
        from ppgan.utils.image import imresize

        cfg = load_config(args.config)
        ds = build_dataset(cfg["dataset"]["test"])
        metrics = {k: build_metric(v) for k, v in ((cfg.get("validate") or {}).get("metrics") or {}).items()}
        for i in range(len(ds)):
            s = ds[(i, i)]
            lq = s["lq"].numpy().transpose(1, 2, 0)
            gt = (s["gt"].numpy().transpose(1, 2, 0) * 255.0).round().clip(0, 255)
            scale = gt.shape[0] // lq.shape[0]
            if args.interp == "matlab":
                up = imresize(lq, scale)
            else:
                up = cv2.resize(lq, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_CUBIC)
            up = (up * 255.0).round().clip(0, 255)
            for m in metrics.values():
                m.update(up.astype(np.float64), gt.astype(np.float64))
        for name, m in metrics.items():
            print(f"bicubic ({args.interp}) {name}: {m.accumulate():.4f} over {len(ds)} images")
        return 0
    except USER_ERRORS as e:
        return report(e)


if __name__ == "__main__":
    sys.exit(main())

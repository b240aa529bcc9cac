#!/usr/bin/env python
"""FID / KID of a GAN run's generator at its start and at each saved weight file, against
held-out digits (for runs on the embedded digits, e.g. configs/stylegan2_demo.yaml) or a folder.

    python tools/fid_over_training.py output_dir/stylegan2_demo-... [--n 500] [--real_dir DIR]
        [--weight_path FILE | deterministic]

Iteration 0 is the generator as the config builds it under the run's seed (before training).
`--weight_path deterministic` uses seeded random Inception weights (when the real
pt_inception file is not available): only the trend over training is meaningful then.
"""
import argparse
import glob
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--n", type=int, default=500, help="samples per evaluation (default 500)")
    p.add_argument("--real_dir", default=None, help="real images (default: held-out digits, seed 12345)")
    p.add_argument("--weight_path", default=None, help="Inception weights (default: the catalogue's)")
    args = p.parse_args(argv)

    from ppgan.utils.errors import USER_ERRORS, ConfigError, report

    try:
        import numpy as np
        import torch

        from ppgan.datasets.digits import DigitsDataset
        from ppgan.engine.checkpoint import load_weights
        from ppgan.metrics.fid import build_inception, folder_features, frechet_distance_features, \
            inception_features, kid
        from ppgan.models import build_model
        from ppgan.utils.config import load_config

        cfg_path = os.path.join(args.run_dir, "config.yaml")
        if not os.path.isfile(cfg_path):
            raise ConfigError(f"{args.run_dir} has no config.yaml (not a training run folder)")
        cfg = load_config(cfg_path)
        weights = sorted(glob.glob(os.path.join(args.run_dir, "iter_*_weight.pth")),
                         key=lambda f: int(re.search(r"iter_(\d+)_", os.path.basename(f)).group(1)))
        net, ident = build_inception(args.weight_path)
        if args.real_dir:
            real = folder_features(args.real_dir, net, ident)
        else:
            size = int(cfg["dataset"]["train"].get("size", 32))
            held = DigitsDataset(num_samples=args.n, size=size, channels=3, seed=12345, return_label=False)
            imgs = np.stack([held.image(i) for i in range(args.n)])
            real = inception_features(net, torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255)
        for path in [None] + weights:
            torch.manual_seed(int(cfg.get("seed", 0)))
            model = build_model(cfg["model"])
            if path:
                load_weights(model, path, model_cfg=cfg["model"])
            gen = getattr(model, "sample_net", None) or model.nets.get("netG") or next(iter(model.nets.values()))
            gen.eval()
            z_dim = cfg["model"]["generator"].get("style_dim") or cfg["model"]["generator"].get("latent_dim")
            z = torch.randn(args.n, int(z_dim), generator=torch.Generator().manual_seed(7))
            with torch.no_grad():
                fake = torch.cat([model.sample(z[i:i + 100], net=gen) if hasattr(model, "sample")
                                  else gen(z[i:i + 100]) for i in range(0, args.n, 100)])
            feats = inception_features(net, ((fake + 1) / 2).clamp(0, 1))
            it = 0 if path is None else int(re.search(r"iter_(\d+)_", os.path.basename(path)).group(1))
            print(f"iter {it:>7}: FID {frechet_distance_features(real, feats):10.4f}   "
                  f"KID {kid(real, feats, subsets=10, subset_size=min(200, args.n)):.5f}", flush=True)
    except USER_ERRORS as e:
        return report(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())

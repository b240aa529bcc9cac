#!/usr/bin/env python
"""FID (and with --kid, KID) between two folders of images, with pytorch-fid's Inception weights
and preprocessing. The real folder's features are cached under $PPGAN_HOME/fid_stats, keyed by
the files' content and the weights, so a second run against the same data skips them.

examples:
  python tools/fid.py data/ffhq_val output/samples
  python tools/fid.py data/ffhq_val output/samples --kid --batch_size 100 --device cuda
  python tools/fid.py real/ fake/ --weight_path ~/pt_inception-2015-12-05-6726825d.pth

The weights (pt_inception-2015-12-05-6726825d.pth) are looked up in $PPGAN_HOME/weights
(`ppgan download inception-fid`) unless --weight_path names the file. FID needs at least 2
images per folder and is only comparable to published numbers with many (10k-50k) images.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("real_dir", help="folder of real images (features cached)")
    p.add_argument("fake_dir", help="folder of generated images")
    p.add_argument("--kid", action="store_true", help="also print the Kernel Inception Distance")
    p.add_argument("--weight_path", default=None, help="Inception weight file (default: the cache)")
    p.add_argument("--batch_size", type=int, default=50, help="images per forward (default 50)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--subsets", type=int, default=100, help="KID subsets (default 100)")
    p.add_argument("--subset_size", type=int, default=1000, help="KID subset size (default 1000)")
    p.add_argument("--no_cache", action="store_true", help="do not read or write the real features' cache")
    args = p.parse_args(argv)
    from ppgan.utils.errors import USER_ERRORS, report

    if args.batch_size < 1 or args.subsets < 1 or args.subset_size < 2:
        print("error: --batch_size and --subsets must be >= 1, --subset_size >= 2", file=sys.stderr)
        return 2
    try:
        from ppgan.metrics.fid import build_inception, folder_features, frechet_distance_features, kid
        from ppgan.utils.device import resolve_device

        for d in (args.real_dir, args.fake_dir):
            if not os.path.isdir(d):
                raise OSError(f"{d} is not a folder of images")
        net, ident = build_inception(args.weight_path, resolve_device(args.device))
        real, hit = folder_features(args.real_dir, net, ident, args.batch_size, cache=not args.no_cache)
        fake, _ = folder_features(args.fake_dir, net, ident, args.batch_size, cache=False)
        print(f"real: {len(real)} images{' (cached features)' if hit else ''}, fake: {len(fake)} images")
        print(f"FID: {frechet_distance_features(fake, real):.4f}")
        if args.kid:
            print(f"KID: {kid(fake, real, args.subsets, args.subset_size):.6f}")
        return 0
    except USER_ERRORS as e:
        return report(e)


if __name__ == "__main__":
    sys.exit(main())

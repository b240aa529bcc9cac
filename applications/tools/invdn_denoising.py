#!/usr/bin/env python
"""Denoise images, folders and videos with InvDN (PaddleGAN's InvDNPredictor and weights).

An invertible net: the noisy image is mapped to a clean low-resolution image plus noise, the
noise is redrawn (--seed) and the net is run backwards; 8 flipped passes are averaged unless
--disable_mc. Large images run in exact tiles.
Flags as PaddleGAN's applications/tools/invdn_denoising.py (--images_path, --output_path,
--weight_path, --seed, --cpu, --disable_mc)
plus ppgan's (--input, tiles, precision, video output); see image_restoration.py."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from image_restoration import main as _main  # noqa: E402 (the shared CLI beside this file)


def main(argv=None):
    return _main(argv, model="invdn", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Denoise images, folders and videos with NAFNet (PaddleGAN's NAFNetPredictor and weights).

The whole image runs at once when it fits memory; larger images run in tiles, which are
approximate (NAFNet's channel attention pools over what it sees).
Flags as PaddleGAN's applications/tools/nafnet_denoising.py (--images_path, --output_path,
--weight_path, --seed, --cpu)
plus ppgan's (--input, tiles, precision, video output); see image_restoration.py."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from image_restoration import main as _main  # noqa: E402 (the shared CLI beside this file)


def main(argv=None):
    return _main(argv, model="nafnet", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())

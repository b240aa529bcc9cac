#!/usr/bin/env python
"""Denoise images, folders and videos with SwinIR (PaddleGAN's SwinIRPredictor and weights).

Window attention with shifted windows; large images run in exact tiles (window-aligned, the
receptive radius as overlap).
Flags as PaddleGAN's applications/tools/swinir_denoising.py (--images_path, --output_path,
--weight_path, --seed, --cpu)
plus ppgan's (--input, tiles, precision, video output); see image_restoration.py."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from image_restoration import main as _main  # noqa: E402 (the shared CLI beside this file)


def main(argv=None):
    return _main(argv, model="swinir", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())

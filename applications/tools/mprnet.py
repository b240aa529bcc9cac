#!/usr/bin/env python
"""Deblur, denoise or derain images, folders and videos with MPRNet (PaddleGAN's MPRPredictor).

--task deblur | denoise | derain picks the weights (PaddleGAN's Deblurring, Denoising,
Deraining). Unlike PaddleGAN, images are not shrunk to 640 pixels: large ones run in
(approximate) tiles.
Flags as PaddleGAN's applications/tools/mprnet.py (--input_image, --output_path, --weight_path,
--task, --cpu)
plus ppgan's (--input, tiles, precision, video output); see image_restoration.py."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from image_restoration import main as _main  # noqa: E402 (the shared CLI beside this file)


def main(argv=None):
    return _main(argv, model="mprnet", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())

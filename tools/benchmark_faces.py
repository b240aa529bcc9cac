#!/usr/bin/env python
"""Face detection speed: frames/s of `FaceDetector` backends, batched, on CPU and CUDA.

Frames are synthetic: the scikit-image astronaut photo (one face) scaled to 60 % of the frame
height and placed on a blurred, noisy background of the coffee photo, at 640x360 and 1280x720.
Each (detector, device, size, batch) cell runs warm-up calls, then `detect` repeatedly for
--seconds (CUDA synchronised around the timed span); frames/s = frames / wall time, and the
process's CPU time per frame beside it (on a shared machine the wall time depends on the other
jobs; with --threads 1, 1000 / cpu ms is the rate one free core gives). The face count per frame
is printed too, as a check that the detector still finds the face.

  python tools/benchmark_faces.py                                   # mtcnn and haar, CPU (+ CUDA when present)
  python tools/benchmark_faces.py --detectors mtcnn --device cpu --threads 2 --seconds 5
  python tools/benchmark_faces.py --detectors mtcnn,sfd --device cuda --batch_sizes 1,8,32
  python tools/benchmark_faces.py --detectors mtcnn --option min_face_size=40
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SIZES = ((640, 360), (1280, 720))


def make_frame(width, height, seed=0):
    """A WxH RGB uint8 frame with the astronaut's face on a background (deterministic)."""
    import cv2
    import numpy as np
    from skimage import data

    rng = np.random.default_rng(seed)
    bg = cv2.GaussianBlur(cv2.resize(data.coffee(), (width, height)), (0, 0), 3)
    bg = np.clip(bg.astype(np.int16) + rng.integers(-8, 9, bg.shape), 0, 255).astype(np.uint8)
    side = int(height * 0.6)
    photo = cv2.resize(data.astronaut(), (side, side), interpolation=cv2.INTER_AREA)
    x, y = (width - side) // 3, (height - side) // 2
    bg[y:y + side, x:x + side] = photo
    return bg


def _sync(device):
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def time_detector(det, frames, batch, seconds, device, warmup=2):
    """(frames/s, CPU ms per frame, faces per frame, calls) of `det.detect` on batches of
    `batch` frames. The CPU time (this process, all threads) is the figure to trust on a shared
    machine, where wall time depends on the other jobs."""
    batches = [[frames[(k * batch + j) % len(frames)] for j in range(batch)]
               for k in range(max(1, len(frames) // batch))]
    for i in range(warmup):
        out = det.detect(batches[i % len(batches)])
    _sync(device)
    n = calls = 0
    cpu = time.process_time()
    start = time.perf_counter()
    while True:
        out = det.detect(batches[calls % len(batches)])
        n += batch
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and calls >= 2:
            break
    _sync(device)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    return n / elapsed, 1000 * cpu / n, sum(len(f) for f in out) / len(out), calls


def _option(text):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--option wants KEY=VALUE, got {text!r}")
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    return key, value


def _int_list(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--detectors", default="mtcnn,haar", help="comma-separated names (default mtcnn,haar)")
    p.add_argument("--device", default="all", help="cpu, cuda, cuda:N or all (CPU, plus CUDA when present)")
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per cell (default 3)")
    p.add_argument("--batch_sizes", type=_int_list, default=[1, 8], help="comma-separated (default 1,8)")
    p.add_argument("--sizes", default="640x360,1280x720", help="comma-separated WxH (default 640x360,1280x720)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--option", type=_option, action="append", default=[],
                   help="KEY=VALUE passed to every detector (e.g. min_face_size=40); repeatable")
    args = p.parse_args(argv)

    from ppgan.utils.errors import USER_ERRORS, CheckpointError, ConfigError, report

    try:
        import torch

        from ppgan.faceutils.detection import DETECTORS, FaceDetector
        from ppgan.weights.download import DownloadError
        from ppgan.utils.device import resolve_device

        if args.seconds <= 0:
            raise ConfigError(f"--seconds must be > 0, got {args.seconds}")
        sizes = []
        for s in args.sizes.split(","):
            try:
                w, h = (int(v) for v in s.lower().split("x"))
            except ValueError:
                raise ConfigError(f"--sizes wants WxH values like 640x360, got {s!r}") from None
            if w < 16 or h < 16:
                raise ConfigError(f"--sizes: {s} is too small (16x16 at least)")
            sizes.append((w, h))
        names = [n.strip().lower() for n in args.detectors.split(",") if n.strip()]
        unknown = [n for n in names if n not in DETECTORS]
        if unknown or not names:
            raise ConfigError(f"--detectors: unknown {', '.join(unknown) or '(none given)'}; "
                              f"known: {', '.join(DETECTORS)}")
        if args.device == "all":
            devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        else:
            devices = [str(resolve_device(args.device))]
        if args.threads:
            torch.set_num_threads(args.threads)
        options = dict(args.option)

        frames = {size: [make_frame(*size, seed=i) for i in range(8)] for size in sizes}
        gpu = torch.cuda.get_device_name() if any(d.startswith("cuda") for d in devices) else ""
        print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
              f"{', GPU ' + gpu if gpu else ''}; {args.seconds:g} s per cell", flush=True)
        print(f"{'detector':<10} {'device':<7} {'size':>9} {'batch':>5} {'frames/s':>9} {'ms/frame':>9} "
              f"{'cpu ms/frame':>12} {'faces/frame':>11}", flush=True)
        for name in names:
            for device in devices:
                if name == "haar" and device != "cpu":
                    continue  # OpenCV's cascade runs on the CPU whatever the device
                try:
                    det = FaceDetector(name, device=device, **options)
                except (CheckpointError, DownloadError) as e:  # e.g. sfd / blazeface offline: the other rows still run
                    print(f"{name:<10} {device:<7} skipped: {e}", flush=True)
                    continue
                for size in sizes:
                    for batch in args.batch_sizes:
                        fps, cpu_ms, faces, _ = time_detector(det, frames[size], batch, args.seconds, device)
                        print(f"{name:<10} {device:<7} {size[0]:>4}x{size[1]:<4} {batch:>5} {fps:>9.1f} "
                              f"{1000 / fps:>9.1f} {cpu_ms:>12.1f} {faces:>11.2f}", flush=True)
    except USER_ERRORS as e:  # anything else is a bug and keeps its traceback
        return report(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Video app benchmark: frames/s and peak RSS of a video app on generated videos of several
lengths (made from a real photo with pan/zoom and an audio track, 23.976 fps). Each length runs
in a fresh process, so the peak RSS figures are comparable: flat memory means they stay equal
as the video gets longer.

    python tools/benchmark_video.py --minutes 1 5 --size 64x48 --model realesr-animevideov3-x2
    python tools/benchmark_video.py --minutes 1 --app deoldify --render_factor 8
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def peak_rss_mb():
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries that across exec from the
    parent, so a child would report the parent's peak (e.g. while it made the test video)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args):
    """Run one job in this process and print its figures as JSON."""
    import torch

    torch.set_num_threads(args.threads)
    from ppgan.apps import DeOldifyPredictor, RealSRPredictor
    from ppgan.utils.video import probe_video

    t0 = time.time()
    if args.app == "deoldify":
        pred = DeOldifyPredictor(render_factor=args.render_factor, device=args.device, verbose=False,
                                 weight_path=args.weight_path, artistic=True)
    else:
        pred = RealSRPredictor(model=args.model, device=args.device, verbose=False, weight_path=args.weight_path)
    setup = time.time() - t0
    t0 = time.time()
    out = pred.run(args.video, output_path=args.out, progress=False)
    secs = time.time() - t0
    info = probe_video(out)
    print(json.dumps({"frames": info.n_frames, "seconds": round(secs, 1), "setup_s": round(setup, 1),
                      "fps": round(info.n_frames / secs, 2),
                      "peak_rss_mb": round(peak_rss_mb(), 1),
                      "out_size": [info.width, info.height], "device": str(pred.device)}))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, nargs="+", default=[1.0, 5.0], help="video lengths (default 1 5)")
    p.add_argument("--size", default="64x48", help="frame size WxH (default 64x48)")
    p.add_argument("--app", choices=["realsr", "deoldify"], default="realsr")
    p.add_argument("--model", default="realesr-animevideov3-x2", help="RealSR model (default animevideov3-x2)")
    p.add_argument("--weight_path", default=None)
    p.add_argument("--render_factor", type=int, default=8, help="DeOldify render factor (default 8)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--video", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    from fractions import Fraction

    from ppgan.utils.testvideo import make_test_video

    w, h = (int(v) for v in args.size.lower().split("x"))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            src = os.path.join(tmp, f"in_{minutes}.mp4")
            make_test_video(src, seconds=60 * minutes, fps=Fraction(24000, 1001), size=(w, h), audio=True)
            cmd = [sys.executable, os.path.abspath(__file__), "--child", "--video", src, "--out",
                   os.path.join(tmp, f"out_{minutes}.mp4"), "--app", args.app, "--model", args.model,
                   "--render_factor", str(args.render_factor), "--device", args.device, "--threads", str(args.threads)]
            if args.weight_path:
                cmd += ["--weight_path", args.weight_path]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                print(f"error: job failed: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}",
                      file=sys.stderr)
                return 1
            r = json.loads(res.stdout.strip().splitlines()[-1])
            r["minutes"] = minutes
            results.append(r)
            print(json.dumps(r), flush=True)
    if len(results) > 1:
        lo, hi = min(r["peak_rss_mb"] for r in results), max(r["peak_rss_mb"] for r in results)
        print(f"peak RSS {lo:.0f}-{hi:.0f} MB: spread {100 * (hi - lo) / lo:.1f}% over "
              f"{', '.join(str(r['minutes']) for r in results)} min videos")
    return 0


if __name__ == "__main__":
    sys.exit(main())

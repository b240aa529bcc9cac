#!/usr/bin/env python
"""Video app benchmark: where the time goes. For each video length (a generated pan/zoom over a real
photo with an audio track, 23.976 fps) a fresh process reports, in frames/s:

    decode    `iter_frames` over the whole video, nothing else
    infer     the app's stage alone on pre-decoded frames (first --stage_frames, after a warm-up),
              in batches of --batch_size, as the pipeline feeds it
    encode    `VideoWriter` alone on the stage's output frames (the pipeline's encoder settings)
    pipeline  `process_video` end to end (probe, preflight, chunks, join and mux included)
    ratio     pipeline / slowest stage alone (1.0: the three overlap perfectly)

and the peak RSS of the pipeline run (flat memory: it stays equal as the video gets longer).

    python tools/benchmark_video.py                                   # CPU, 160x120 -> 320x240, 10 s
    python tools/benchmark_video.py --device cuda --size 640x360 --seconds 20 --batch_size 8
    python tools/benchmark_video.py --seconds 60 300 --size 64x48     # memory vs length
    python tools/benchmark_video.py --app deoldify --render_factor 8
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


def make_predictor(args):
    from ppgan.apps import DeOldifyPredictor, RealSRPredictor

    if args.app == "deoldify":
        return DeOldifyPredictor(render_factor=args.render_factor, device=args.device, verbose=False,
                                 weight_path=args.weight_path, artistic=True)
    return RealSRPredictor(model=args.model, device=args.device, verbose=False, weight_path=args.weight_path,
                           tile=args.tile)


def run_stages(stages, frames, batch_size):
    """Push `frames` through `stages` in batches and flush them, as the pipeline does for one chunk."""
    from ppgan.video.stages import StageChain

    chain = StageChain(stages)
    chain.reset(0)
    out = []
    for i in range(0, len(frames), batch_size):
        out += chain.push(frames[i:i + batch_size], 0)
    return out + chain.flush(0)


def child(args):
    """Run one video in this process and print its figures as JSON."""
    import itertools

    import torch

    torch.set_num_threads(args.threads)
    from ppgan.video import VideoWriter, iter_frames, probe_video, process_video

    info = probe_video(args.video)
    t0 = time.perf_counter()
    pred = make_predictor(args)
    setup = time.perf_counter() - t0
    stages = pred.video_stages()
    sample = list(itertools.islice(iter_frames(args.video, info), args.stage_frames))
    run_stages(stages, sample[: args.batch_size], args.batch_size)  # warm-up (allocations, kernels)

    summary = process_video(args.video, args.out, stages, batch_size=args.batch_size, progress=False)
    pipeline = summary["frames_per_second"]
    rss = peak_rss_mb()

    t0 = time.perf_counter()
    n = sum(1 for _ in iter_frames(args.video, info))
    decode = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    outs = run_stages(stages, sample, args.batch_size)
    infer = len(sample) / (time.perf_counter() - t0)
    h, w = outs[0].shape[:2]
    t0 = time.perf_counter()
    with VideoWriter(os.path.join(os.path.dirname(args.out), "encode_only.mp4"), w, h, info.fps,
                     color=info.color) as writer:
        for f in outs:
            writer.write(f)
    encode = len(outs) / (time.perf_counter() - t0)
    slowest = min(decode, infer, encode)
    print(json.dumps({"frames": summary["frames"], "in_size": [info.width, info.height], "out_size": [w, h],
                      "device": str(pred.device), "batch_size": args.batch_size, "setup_s": round(setup, 1),
                      "decode_fps": round(decode, 1), "infer_fps": round(infer, 2), "encode_fps": round(encode, 1),
                      "pipeline_fps": round(pipeline, 2), "ratio": round(pipeline / slowest, 3),
                      "pipeline_s": round(summary["seconds"], 1), "peak_rss_mb": round(rss, 1)}))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, nargs="+", default=[10.0], help="video lengths (default 10)")
    p.add_argument("--size", default="160x120", help="input frame size WxH (default 160x120)")
    p.add_argument("--app", choices=["realsr", "deoldify"], default="realsr")
    p.add_argument("--model", default="realesr-animevideov3-x2", help="RealSR model (default animevideov3-x2)")
    p.add_argument("--weight_path", default=None)
    p.add_argument("--tile", type=int, default=0, help="RealSR tile (default 0: whole frames)")
    p.add_argument("--render_factor", type=int, default=8, help="DeOldify render factor (default 8)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--batch_size", type=int, default=4, help="frames per stage call (default 4)")
    p.add_argument("--stage_frames", type=int, default=96, help="frames for the infer/encode-alone runs")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads (default: all)")
    p.add_argument("--video", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    from fractions import Fraction

    from ppgan.video.synthetic import make_test_video

    w, h = (int(v) for v in args.size.lower().split("x"))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in args.seconds:
            src = os.path.join(tmp, f"in_{seconds}.mp4")
            make_test_video(src, seconds=seconds, fps=Fraction(24000, 1001), size=(w, h), audio=True)
            cmd = [sys.executable, os.path.abspath(__file__), "--child", "--video", src, "--out",
                   os.path.join(tmp, f"out_{seconds}.mp4")]
            for key in ("app", "model", "tile", "render_factor", "device", "batch_size", "stage_frames", "threads"):
                cmd += [f"--{key}", str(getattr(args, key))]
            if args.weight_path:
                cmd += ["--weight_path", args.weight_path]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                last = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode
                print(f"error: job failed: {last}", file=sys.stderr)
                return 1
            r = json.loads(res.stdout.strip().splitlines()[-1])
            r["seconds"] = seconds
            results.append(r)
            print(json.dumps(r), flush=True)
    if len(results) > 1:
        lo, hi = min(r["peak_rss_mb"] for r in results), max(r["peak_rss_mb"] for r in results)
        print(f"peak RSS {lo:.0f}-{hi:.0f} MB: spread {100 * (hi - lo) / lo:.1f}% over "
              f"{', '.join(str(r['seconds']) for r in results)} s videos")
    return 0


if __name__ == "__main__":
    sys.exit(main())

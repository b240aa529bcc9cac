#!/usr/bin/env python
"""First Order Motion speed: the nets alone (frames/s at 256x256, batched) and the whole app
(decode, keypoints, render, paste back, encode), with PaddleGAN's vox-256 net sizes and
deterministic weights (torch.manual_seed; the published weights are not needed for timing).

  python tools/benchmark_fom.py                                 # CPU, fp32, batch 4
  python tools/benchmark_fom.py --device cuda --batch-size 32 --iters 20 --amp fp16 bf16
  python tools/benchmark_fom.py --mobile-net --app-frames 100
  python tools/benchmark_fom.py --skip-app --json fom.json

"model" times one step = KPDetector on the driving batch + normalize_kp (relative, as the app with
--relative) + OcclusionAwareGenerator on the batch, after --warmup steps, between two
synchronisations; frames/s = batch * iters / seconds. "app" runs `FirstOrderPredictor.run` on a
driving video warped from scikit-image's astronaut (256x256, with audio) and reports frames/s of
the video job (process_video's own figure: decode .. encode) and the wall time with setup.
"""
import argparse
import contextlib
import json
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build(mobile_net, device, seed=0):
    import torch

    from ppgan.apps.first_order_predictor import build_nets, default_config

    cfg = default_config(mobile_net)
    torch.manual_seed(seed)
    gen, kp = build_nets(cfg)
    return cfg, gen.to(device).eval(), kp.to(device).eval()


def sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_model(gen, kp, device, batch, size, iters, warmup, amp):
    """frames/s of keypoints + normalize_kp + generator on a batch of `size` x `size` frames."""
    import torch

    from ppgan.modules.first_order import normalize_kp

    g = torch.Generator().manual_seed(1)
    source = torch.rand(1, 3, size, size, generator=g).to(device)
    driving = torch.rand(batch, 3, size, size, generator=g).to(device)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(amp)
    ctx = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else contextlib.nullcontext
    with torch.no_grad():
        with ctx():
            kp_source = {k: v.float() for k, v in kp(source).items()}
            kp_initial = {k: v.float() for k, v in kp(driving[:1]).items()}
        src = source.expand(batch, -1, -1, -1)
        kp_src = {k: v.expand(batch, *v.shape[1:]) for k, v in kp_source.items()}

        def step():
            with ctx():
                kp_d = {k: v.float() for k, v in kp(driving).items()}
            kp_n = normalize_kp(kp_source, kp_d, kp_initial, use_relative_movement=True, use_relative_jacobian=True)
            with ctx():
                return gen(src, kp_source=kp_src, kp_driving=kp_n)["prediction"]

        for _ in range(warmup):
            out = step()
        sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        for _ in range(iters):
            out = step()
        sync(device)
        seconds = time.perf_counter() - t0
    finite = bool(torch.isfinite(out.float()).all())
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else None
    return {"precision": amp or "fp32", "batch": batch, "size": size, "iters": iters,
            "frames_per_second": batch * iters / seconds, "ms_per_frame": 1000 * seconds / (batch * iters),
            "finite": finite, "peak_cuda_mb": peak}


def make_driving(path, n_frames, size=256, fps=25):
    import subprocess

    import cv2
    import numpy as np
    from skimage import data

    from ppgan.video import ffmpeg_exe
    from ppgan.video.synthetic import _write_wav

    photo = cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)
    wav = path + ".wav"
    _write_wav(wav, n_frames / fps + 0.05, [], 440)
    args = [ffmpeg_exe(), "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size}x{size}", "-r",
            str(fps), "-i", "-", "-i", wav, "-map", "0:v", "-map", "1:a", "-c:a", "aac", "-shortest", "-c:v",
            "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", path]
    frames = []
    for i in range(n_frames):
        m = cv2.getRotationMatrix2D((size * 0.43, size * 0.23), 8 * np.sin(i / 8.0), 1.0 + 0.04 * np.sin(i / 11.0))
        frames.append(cv2.warpAffine(photo, m, (size, size), borderMode=cv2.BORDER_REFLECT).tobytes())
    subprocess.run(args, input=b"".join(frames), check=True, capture_output=True, timeout=600)
    return photo


def bench_app(args, device, tmp):
    import torch

    from ppgan.apps.first_order_predictor import FirstOrderPredictor
    from ppgan.utils.image import imwrite
    from ppgan.video import process_video

    _, gen, kp = build(args.mobile_net, "cpu")
    weights = os.path.join(tmp, "fom.pth")
    torch.save({"generator": gen.state_dict(), "kp_detector": kp.state_dict()}, weights)
    driving = os.path.join(tmp, "drive.mp4")
    photo = make_driving(driving, args.app_frames)
    source = os.path.join(tmp, "astronaut.png")
    imwrite(source, photo)
    t0 = time.perf_counter()
    pred = FirstOrderPredictor(weight_path=weights, mobile_net=args.mobile_net, batch_size=args.batch_size,
                               relative=True, adapt_scale=True, device=str(device), verbose=False,
                               half=args.app_precision)
    source_img, faces, _ = pred.prepare(source, driving)
    t1 = time.perf_counter()
    stats = process_video(driving, os.path.join(tmp, "out.mp4"), [pred.stage(source_img, faces, "bench")],
                          batch_size=args.batch_size, progress=False)
    total = time.perf_counter() - t0
    return {"frames": stats["frames"], "size": list(stats["size"]), "batch": args.batch_size,
            "precision": pred.precision, "setup_s": t1 - t0, "video_job_frames_per_second": stats["frames_per_second"],
            "wall_s_with_setup": total, "frames_per_second_with_setup": stats["frames"] / total}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--size", type=int, default=256, help="frame side (default 256)")
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--amp", nargs="*", default=[], choices=["fp16", "bf16"],
                   help="also time these autocast precisions (fp16 needs CUDA)")
    p.add_argument("--mobile-net", action="store_true", help="the mobile nets (vox-mobile sizes)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--app-frames", type=int, default=16, help="driving-video frames for the app run (0: skip)")
    p.add_argument("--app-precision", default=None, help="the app's precision (default fp32)")
    p.add_argument("--skip-app", action="store_true")
    p.add_argument("--json", default=None, help="also write the results to this file")
    args = p.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg, gen, kp = build(args.mobile_net, device)
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "threads": torch.get_num_threads(), "nets": "vox-mobile" if args.mobile_net else "vox-256",
              "params_generator_M": sum(q.numel() for q in gen.parameters()) / 1e6,
              "params_kp_detector_M": sum(q.numel() for q in kp.parameters()) / 1e6, "model": []}
    for amp in [None] + list(args.amp):
        r = bench_model(gen, kp, device, args.batch_size, args.size, args.iters, args.warmup, amp)
        result["model"].append(r)
        print(f"model {r['precision']:>4} batch {r['batch']} {r['size']}x{r['size']}: "
              f"{r['frames_per_second']:.2f} frames/s ({r['ms_per_frame']:.1f} ms/frame)"
              + (f", peak {r['peak_cuda_mb']:.0f} MiB" if r["peak_cuda_mb"] else ""), flush=True)
    del gen, kp
    if not args.skip_app and args.app_frames > 0:
        with tempfile.TemporaryDirectory(prefix="ppgan-fom-bench-") as tmp:
            r = bench_app(args, device, tmp)
        result["app"] = r
        print(f"app {r['precision']} batch {r['batch']}: {r['frames']} frames -> {r['size'][0]}x{r['size'][1]}: "
              f"{r['video_job_frames_per_second']:.2f} frames/s in the video job, setup {r['setup_s']:.1f} s, "
              f"{r['frames_per_second_with_setup']:.2f} frames/s with setup", flush=True)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

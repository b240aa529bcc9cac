#!/usr/bin/env python
"""Wav2Lip throughput, one JSON line per measurement:

    model  the Wav2Lip generator alone on batches of 96x96 faces + 80x16 mel windows, frames/s
           (fp32, and AMP fp16 / bf16 on CUDA), after a warm-up
    app    `Wav2LipPredictor.run` end to end on a generated face video (the astronaut's face,
           camera moving and zooming, --size, --seconds, 25 fps) with as long speech-like audio:
           probe, audio decode + mel, face detection and tracking, Wav2Lip, blending, encoding,
           mux; frames/s of output, wall seconds, the detection share, and the process's peak RSS.
           Each app run is a fresh process, so `--seconds 60 300` compares peak RSS by length.

The weights are random (the speed does not depend on them); nothing is downloaded.

    python tools/benchmark_wav2lip.py                                  # CPU: model + 10 s 640x360 app
    python tools/benchmark_wav2lip.py --amp --precision bf16       # + bf16 (AMX CPUs: several times faster)
    python tools/benchmark_wav2lip.py --device cuda --batch_size 128 256 --amp
    python tools/benchmark_wav2lip.py --skip_model --seconds 60 300 --size 320x180 --passthrough_net  # RSS vs length
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import wave

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def peak_rss_mb():
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def make_face_video(path, seconds, size, fps=25):
    """The astronaut's face with the camera moving and zooming (the face stays in view)."""
    import cv2
    from skimage import data

    from ppgan.video import VideoWriter

    img = data.astronaut()
    w, h = size
    n = int(round(seconds * fps))
    with VideoWriter(path, w, h, fps) as out:
        for i in range(n):
            t = i / 48.0
            cx, cy = 205 + 25 * np.sin(2 * np.pi * t), 140 + 10 * np.cos(2 * np.pi * t)
            s = h / (300 - 60 * (0.5 + 0.5 * np.sin(np.pi * t)))
            m = np.array([[s, 0, w / 2 - s * cx], [0, s, h / 2 - s * cy]])
            out.write(cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return path


def make_speech(path, seconds, sr=16000):
    """Speech-like audio: harmonics of a moving pitch under a ~4 Hz syllable envelope."""
    t = np.arange(int(round(seconds * sr))) / sr
    phase = 2 * np.pi * np.cumsum(130 + 40 * np.sin(2 * np.pi * 0.7 * t)) / sr
    env = np.clip(np.sin(2 * np.pi * 4.1 * t), 0, None) ** 1.5
    x = 0.3 * sum(np.sin(k * phase) / k for k in range(1, 13)) * env
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype(np.int16).tobytes())
    return path


def bench_model(device, batch_sizes, amp, seconds):
    import torch

    from ppgan.models.generators.wav2lip import Wav2Lip

    torch.manual_seed(0)
    net = Wav2Lip().to(device).eval()
    cuda = device.startswith("cuda")
    modes = ["fp32"] + ((["fp16", "bf16"] if cuda else ["bf16"]) if amp else [])
    for bs in batch_sizes:
        audio = torch.randn(bs, 1, 80, 16, device=device)
        faces = torch.rand(bs, 6, 96, 96, device=device)
        for mode in modes:
            dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mode)
            # as the app runs them: fp32 as is, half precision under autocast in channels-last
            fmt = torch.contiguous_format if dtype is None else torch.channels_last
            net = net.to(memory_format=fmt)
            x = faces.contiguous(memory_format=fmt)

            def step():
                with torch.no_grad():
                    if dtype is None:
                        return net(audio, x)
                    with torch.autocast("cuda" if cuda else "cpu", dtype=dtype):
                        return net(audio, x)

            step()  # warm-up (cuDNN algorithm choice)
            if cuda:
                torch.cuda.synchronize()
            n, t0 = 0, time.perf_counter()
            while True:
                step()
                n += 1
                if cuda:
                    torch.cuda.synchronize()
                if time.perf_counter() - t0 >= seconds and n >= 2:
                    break
            dt = time.perf_counter() - t0
            print(json.dumps({"what": "model", "device": device, "precision": mode, "batch": bs,
                              "frames_per_s": round(n * bs / dt, 1), "threads": torch.get_num_threads()}),
                  flush=True)


class PassThroughNet:
    """Stands in for Wav2Lip (returns the reference face): the pipeline's own cost and memory."""

    def to(self, *a, **k):
        return self

    def eval(self):
        return self

    def __call__(self, audio, faces):
        return faces[:, 3:]


def bench_app_child(args):
    """One app run (a fresh process: its peak RSS is the run's)."""
    import torch

    from ppgan.apps.wav2lip_predictor import Wav2LipPredictor
    from ppgan.models.generators.wav2lip import Wav2Lip

    # the inputs were made by another process: this one's peak RSS is the app's alone
    d = args.app_dir
    os.environ["PPGAN_HOME"] = os.path.join(d, "home")  # no face-track cache from earlier runs
    video, audio = os.path.join(d, "face.mp4"), os.path.join(d, "speech.wav")
    torch.manual_seed(0)
    net = PassThroughNet() if args.passthrough_net else Wav2Lip()
    pred = Wav2LipPredictor(net=net, device=args.device, face_detector=args.face_detector,
                            mask=args.mask, wav2lip_batch_size=args.app_batch, verbose=False,
                            half=args.precision, detect_every=args.detect_every, detect_size=args.detect_size)
    import ppgan.faceutils.tracking as tracking

    timing = {"detect": 0.0}
    track = tracking.track_faces

    def timed_track(*a, **k):
        t = time.perf_counter()
        try:
            return track(*a, **k)
        finally:
            timing["detect"] += time.perf_counter() - t

    tracking.track_faces = timed_track
    import ppgan.faceutils as fu

    fu.track_faces = timed_track
    t0 = time.perf_counter()
    pred.run(video, audio, os.path.join(d, "out.mp4"))
    wall = time.perf_counter() - t0
    res = pred.last_result
    print(json.dumps({"what": "app", "device": args.device, "size": args.size, "seconds": args.app_seconds,
                      "frames": res["frames"], "wall_s": round(wall, 2),
                      "frames_per_s": round(res["frames"] / wall, 1),
                      "detect_s": round(timing["detect"], 2), "detector": args.face_detector,
                      "detect_every": args.detect_every, "detect_size": args.detect_size or None,
                      "net": "passthrough" if args.passthrough_net else "Wav2Lip",
                      "mask": args.mask, "precision": pred.precision, "missing_frames": res["missing_frames"],
                      "peak_rss_mb": round(peak_rss_mb()),
                      "threads": torch.get_num_threads(), "load_avg": round(os.getloadavg()[0], 1)}), flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--batch_size", type=int, nargs="+", default=None,
                   help="model batch sizes (default: 32 on CPU, 128 256 on CUDA)")
    p.add_argument("--amp", action="store_true", help="also time fp16 / bf16 autocast (CUDA)")
    p.add_argument("--model_seconds", type=float, default=3.0, help="time per model measurement")
    p.add_argument("--skip_model", action="store_true")
    p.add_argument("--skip_app", action="store_true")
    p.add_argument("--seconds", type=float, nargs="+", default=[10.0], help="app video lengths (default 10)")
    p.add_argument("--size", default="640x360", help="app video size WxH (default 640x360)")
    p.add_argument("--face_detector", default="mtcnn", help="app face detector (default mtcnn)")
    p.add_argument("--mask", default="auto", help="app blend mask: auto, mesh, box")
    p.add_argument("--app_batch", type=int, default=128, help="app wav2lip_batch_size")
    p.add_argument("--detect_every", type=int, default=1, help="app: detect faces on every n-th frame")
    p.add_argument("--detect_size", type=int, default=0, help="app: detect on frames of this longer side")
    p.add_argument("--precision", default=None, help="app precision: fp32, fp16, bf16 (default: the app's: "
                                                     "fp16 on CUDA, fp32 on CPU)")
    p.add_argument("--passthrough_net", action="store_true",
                   help="app: a pass-through net instead of Wav2Lip (pipeline cost and memory only)")
    p.add_argument("--app_seconds", type=float, default=None, help=argparse.SUPPRESS)  # the child's length
    p.add_argument("--app_dir", default=None, help=argparse.SUPPRESS)  # the child's inputs
    p.add_argument("--make_inputs", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.make_inputs:
        w, h = (int(v) for v in args.size.split("x"))
        make_face_video(os.path.join(args.app_dir, "face.mp4"), args.app_seconds, (w, h))
        make_speech(os.path.join(args.app_dir, "speech.wav"), args.app_seconds)
        return 0
    if args.app_seconds is not None:
        return bench_app_child(args)
    if not args.skip_model:
        sizes = args.batch_size or ([128, 256] if args.device.startswith("cuda") else [32])
        bench_model(args.device, sizes, args.amp, args.model_seconds)
    if not args.skip_app:
        for s in args.seconds:
            tmp = tempfile.TemporaryDirectory(prefix="w2l-bench-")
            base = [sys.executable, os.path.abspath(__file__), "--app_seconds", str(s), "--app_dir", tmp.name]
            subprocess.run(base + ["--make_inputs", "--size", args.size], check=True)
            cmd = base + ["--device", args.device, "--size", args.size, "--face_detector", args.face_detector,
                          "--mask", args.mask, "--app_batch", str(args.app_batch),
                          "--detect_every", str(args.detect_every), "--detect_size", str(args.detect_size)]
            cmd += ["--passthrough_net"] if args.passthrough_net else []
            cmd += ["--precision", args.precision] if args.precision else []
            r = subprocess.run(cmd, capture_output=True, text=True)
            tmp.cleanup()
            if r.returncode != 0:
                print(json.dumps({"what": "app", "seconds": s, "error": r.stderr.strip().splitlines()[-1:]}))
            else:
                sys.stdout.write(r.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Inference speed of the SR nets in each precision mode, each against fp32 in the same run.

  python tools/benchmark_sr.py --device cuda --compile          # H200: RRDBNet 256², EDVR-M 180x320
  python tools/benchmark_sr.py --device cpu --quick             # small sizes, a smoke run on CPU

Nets (random weights; speed does not depend on them):
  rrdb  RRDBNet x4 (ESRGAN), nf 64, nb 23, input 1x3x256x256: LR-Mpix/s (input megapixels per second)
  edvr  EDVR-M x4 (nf 64, 5 frames, 5 + 10 residual blocks, no TSA), input 1x5x3x180x320: frames/s
  dcn   one deformable conv of EDVR's PCD alignment (64 -> 64, 3x3, 8 groups) on 1x64x180x320,
        offsets of a few pixels: calls/s

Modes:
  fp32            the net as built (convs in TF32 where torch allows it: the flags are printed)
  autocast-bf16   the fp32 net under torch.autocast(dtype=bfloat16)
  autocast-fp16   likewise, float16
  direct-bf16     the net cast with net.to(bfloat16), input too; channels-last on CUDA (--channels-last)
  direct-fp16     likewise, float16 (what `ppgan.apps.base_predictor` runs for nets with half_mode='direct')
  compiled        direct-bf16 under torch.compile(mode='default') (--compile; EDVR only with --compile-edvr)

Each mode: `--warmup` untimed calls, then `--iters` calls between two CUDA synchronisations (time per
call = window / iters). No grad. The ratio column is the mode's speed over fp32's in this run.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

MODES = ("fp32", "autocast-bf16", "autocast-fp16", "direct-bf16", "direct-fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cpu | cuda (default cuda)")
    p.add_argument("--nets", default="rrdb,edvr,dcn", help="comma-separated: rrdb, edvr, dcn")
    p.add_argument("--modes", default=",".join(MODES),
                   help="comma-separated subset of " + ", ".join(MODES) + " (default all; on CPU without fp16)")
    p.add_argument("--compile", action="store_true", help="add the compiled mode (RRDBNet)")
    p.add_argument("--compile-edvr", action="store_true", help="the compiled mode for EDVR too (slow to compile)")
    p.add_argument("--quick", action="store_true",
                   help="small sizes for a CPU smoke run: RRDBNet nb 4 at 32x32, EDVR and DCN at 32x32")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls per mode (default 3; 1 with --quick)")
    p.add_argument("--iters", type=int, default=None, help="timed calls per mode (default 10; 3 with --quick)")
    p.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto",
                   help="channels-last for the direct and compiled modes (auto: on CUDA only)")
    p.add_argument("--dcn-impl", default="auto", choices=("auto", "torch", "torchvision"),
                   help="deformable conv implementation of EDVR and the dcn net")
    p.add_argument("--cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark = True")
    return p.parse_args(argv)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(name, args, device):
    """(net in fp32 eval mode on device, input tensor, units per call, unit name)."""
    from ppgan.models.generators import EDVRNet, RRDBNet
    from ppgan.modules.dcn import ModulatedDeformConv2d

    torch.manual_seed(0)
    if name == "rrdb":
        side, nb = (32, 4) if args.quick else (256, 23)
        net = RRDBNet(3, 3, nf=64, nb=nb, gc=32)
        x = torch.rand(1, 3, side, side)
        return net.eval().to(device), x.to(device), side * side / 1e6, f"LR-Mpix/s (nb {nb}, 1x3x{side}x{side})"
    if name == "edvr":
        h, w = (32, 32) if args.quick else (180, 320)
        net = EDVRNet(nf=64, nframes=5, groups=8, front_RBs=5, back_RBs=10, center=2, w_TSA=False,
                      dcn_impl=args.dcn_impl)
        x = torch.rand(1, 5, 3, h, w)
        return net.eval().to(device), x.to(device), 1.0, f"frames/s (1x5x3x{h}x{w} -> x4)"
    if name == "dcn":
        h, w = (32, 32) if args.quick else (180, 320)

        class DCN(torch.nn.Module):  # offsets and mask as EDVR's DCNPack hands them over
            def __init__(self):
                super().__init__()
                self.dcn = ModulatedDeformConv2d(64, 64, 3, padding=1, deformable_groups=8, impl=args.dcn_impl)

            def forward(self, x):
                return self.dcn(x[:, :64], x[:, 64:64 + 144] * 3, torch.sigmoid(x[:, 64 + 144:]))

        net = DCN()
        x = torch.rand(1, 64 + 144 + 72, h, w) * 2 - 1
        return net.eval().to(device), x.to(device), 1.0, f"calls/s (1x64x{h}x{w}, 8 groups, impl {args.dcn_impl})"
    raise SystemExit(f"unknown net {name!r}: use rrdb, edvr, dcn")


def prepare(mode, net, x, device, channels_last):
    """(callable, input) for `mode`."""
    if mode == "fp32":
        return net, x
    kind, _, prec = mode.partition("-")
    dtype = DTYPES.get(prec, torch.bfloat16)
    if kind == "autocast":
        def run(inp):
            with torch.autocast(device.type, dtype=dtype):
                return net(inp)
        return run, x
    half = net.to(dtype)  # (a cast copy when run after the fp32 modes: see main)
    xh = x.to(dtype)
    if channels_last:
        half = half.to(memory_format=torch.channels_last)
        if xh.ndim == 4:
            xh = xh.contiguous(memory_format=torch.channels_last)
    if kind == "compiled":
        half = torch.compile(half, mode="default")
    return half, xh


def time_mode(fn, x, device, warmup, iters):
    """(seconds per call, seconds of the first call)."""
    with torch.no_grad():
        sync(device)
        t0 = time.perf_counter()
        fn(x)
        sync(device)
        first = time.perf_counter() - t0
        for _ in range(max(0, warmup - 1)):
            fn(x)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(iters):
            out = fn(x)
        sync(device)
        per_call = (time.perf_counter() - t0) / iters
    if not torch.isfinite(out).all():
        print("    (warning: non-finite output)")
    return per_call, first


def main(argv=None):
    import copy

    from ppgan.utils.device import resolve_device

    args = parse_args(argv)
    device = resolve_device(args.device)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    iters = args.iters if args.iters is not None else (3 if args.quick else 10)
    channels_last = args.channels_last == "on" or (args.channels_last == "auto" and device.type == "cuda")
    if args.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__}, {device} ({name}), threads {torch.get_num_threads()}, "
          f"cudnn.benchmark {torch.backends.cudnn.benchmark}, tf32 conv {torch.backends.cudnn.allow_tf32} "
          f"matmul {torch.backends.cuda.matmul.allow_tf32}, channels-last {channels_last}, "
          f"warm-up {warmup}, timed {iters}")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if args.modes == parse_args([]).modes and device.type == "cpu":
        modes = [m for m in modes if not m.endswith("fp16")]  # no fast fp16 kernels on CPU (minutes)
        print("fp16 modes left out on CPU (pass --modes to time them)")
    for m in modes:
        if m not in MODES:
            raise SystemExit(f"unknown mode {m!r}: use {', '.join(MODES)}")
    for net_name in [n.strip() for n in args.nets.split(",") if n.strip()]:
        net, x, units, unit = build(net_name, args, device)
        net_modes = list(modes)
        if args.compile and (net_name == "rrdb" or args.compile_edvr):
            net_modes.append("compiled")
        print(f"\n{net_name}: {unit}")
        base = None
        for mode in net_modes:
            fn, inp = prepare(mode, net if mode == "fp32" or mode.startswith("autocast") else copy.deepcopy(net),
                              x, device, channels_last)
            try:
                per_call, first = time_mode(fn, inp, device, warmup, iters)
            except Exception as e:  # noqa: BLE001 - report the mode and go on with the others
                print(f"  {mode:14s} failed: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
                continue
            finally:
                del fn
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            speed = units / per_call
            base = speed if mode == "fp32" else base
            ratio = f"x{speed / base:.2f}" if base else "-"
            extra = f"  (first call {first:.1f} s)" if mode == "compiled" else ""
            print(f"  {mode:14s} {speed:9.3f}  {per_call * 1e3:9.2f} ms/call  {ratio} vs fp32{extra}")
        del net, x


if __name__ == "__main__":
    main()

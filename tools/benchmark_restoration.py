#!/usr/bin/env python
"""Inference throughput of the restoration and video-SR nets, at the sizes of PaddleGAN's configs
(the generator section of configs/<config>.yaml, built unchanged), each against a baseline net
measured in the same run.

  python tools/benchmark_restoration.py --device cuda                 # 256x256 images, 180x320 -> 720x1280 video
  python tools/benchmark_restoration.py --device cpu --quick          # small sizes, a smoke run on CPU

Image nets (input 1x3xHxW, --size, default 256x256; output the same size): images/s, ratio against
NAFNet (nafnet_denoising.yaml, PaddleGAN's SIDD model):
  nafnet, swinir (swinir_denoising), mprnet_deblur / mprnet_denoise / mprnet_derain, invdn,
  prenet, drn (x4: input (H/4)x(W/4), output HxW), edvr_blur (edvr_l_blur_wo_tsa: 5 HR frames in,
  the centre frame out: output frames/s)
Video SR nets (input 1xTx3xHxW, --vsr-size default 180x320, --frames default 10; x4 output):
frames/s, ratio against BasicVSR (basicvsr_reds.yaml):
  basicvsr, basicvsr++, iconvsr, msvsr, msvsr_l

Each net: --warmup untimed calls, then --iters timed calls (CUDA synchronised), no grad, fp32, or
under torch.autocast with --autocast bf16|fp16. Random weights (speed does not depend on them).
Peak CUDA memory per net is printed on CUDA.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# name: (config, kind); kind 'image' (1x3xHxW), 'lr4' (DRN x4: LR input), 'frames5' (EDVR: 5 HR frames),
# 'video' (VSR: 1xTx3xhxw, x4)
NETS = {
    "nafnet": ("nafnet_denoising", "image"),
    "swinir": ("swinir_denoising", "image"),
    "mprnet_deblur": ("mprnet_deblurring", "image"),
    "mprnet_denoise": ("mprnet_denoising", "image"),
    "mprnet_derain": ("mprnet_deraining", "image"),
    "invdn": ("invdn_denoising", "image"),
    "prenet": ("prenet", "image"),
    "drn": ("drn_psnr_x4_div2k", "lr4"),
    "edvr_blur": ("edvr_l_blur_wo_tsa", "frames5"),
    "basicvsr": ("basicvsr_reds", "video"),
    "basicvsr++": ("basicvsr++_reds", "video"),
    "iconvsr": ("iconvsr_reds", "video"),
    "msvsr": ("msvsr_reds", "video"),
    "msvsr_l": ("msvsr_l_reds", "video"),
}
BASELINES = {"image": "nafnet", "lr4": "nafnet", "frames5": "nafnet", "video": "basicvsr"}
DEFAULT_NETS = "nafnet,swinir,mprnet_deblur,invdn,prenet,drn,edvr_blur,basicvsr,basicvsr++,iconvsr,msvsr,msvsr_l"


def size(text):
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW (e.g. 256x256), got {text!r}") from None
    if h < 16 or w < 16:
        raise argparse.ArgumentTypeError(f"sizes must be at least 16x16, got {text!r}")
    return h, w


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--nets", default=DEFAULT_NETS, help="comma-separated subset of " + ", ".join(NETS))
    p.add_argument("--size", type=size, default=None, help="image nets' HxW (default 256x256; 64x64 with --quick)")
    p.add_argument("--vsr-size", "--vsr_size", dest="vsr_size", type=size, default=None,
                   help="VSR input HxW (default 180x320; 64x64 with --quick)")
    p.add_argument("--frames", type=int, default=None, help="VSR clip length (default 10; 5 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="small sizes (64x64 images; 5 frames of 64x64 for VSR), 1 warmup + 2 timed calls")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls per net (default 2; 1 with --quick)")
    p.add_argument("--iters", type=int, default=None, help="timed calls per net (default 5; 2 with --quick)")
    p.add_argument("--autocast", choices=("off", "bf16", "fp16"), default="off", help="torch.autocast dtype")
    return p.parse_args(argv)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(name, args):
    """(net in eval mode, input tensor, output frames per call, description)."""
    from ppgan.models.generators.builder import build_generator
    from ppgan.utils.config import load_config

    config, kind = NETS[name]
    cfg = load_config(os.path.join(ROOT, "configs", config + ".yaml"))
    torch.manual_seed(0)
    net = build_generator(cfg["model"]["generator"]).eval()
    h, w = args.size
    if kind == "image":
        return net, torch.rand(1, 3, h, w), 1, f"1x3x{h}x{w}"
    if kind == "lr4":
        return net, torch.rand(1, 3, h // 4, w // 4), 1, f"1x3x{h // 4}x{w // 4} -> x4"
    if kind == "frames5":
        return net, torch.rand(1, 5, 3, h, w), 1, f"1x5x3x{h}x{w} -> 1 frame"
    vh, vw = args.vsr_size
    return net, torch.rand(1, args.frames, 3, vh, vw), args.frames, f"1x{args.frames}x3x{vh}x{vw} -> x4"


def first_tensor(out):
    while isinstance(out, (list, tuple)):
        out = out[0]
    return out


def time_net(net, x, device, warmup, iters, autocast):
    """Seconds per call."""
    def call():
        if autocast == "off":
            return net(x)
        with torch.autocast(device.type, dtype=torch.bfloat16 if autocast == "bf16" else torch.float16):
            return net(x)

    with torch.no_grad():
        for _ in range(max(0, warmup)):
            call()
        sync(device)
        t0 = time.perf_counter()
        for _ in range(iters):
            out = call()
        sync(device)
        per_call = (time.perf_counter() - t0) / iters
    out = first_tensor(out)
    if not torch.isfinite(out.float()).all():
        print("    (warning: non-finite output)")
    return per_call


def main(argv=None):
    args = parse_args(argv)
    from ppgan.utils.device import resolve_device
    from ppgan.utils.errors import USER_ERRORS, ConfigError, report

    try:
        names = [n.strip() for n in args.nets.split(",") if n.strip()]
        unknown = [n for n in names if n not in NETS]
        if unknown:
            raise ConfigError(f"unknown net(s) {', '.join(unknown)}; choose from {', '.join(NETS)}")
        args.size = args.size or ((64, 64) if args.quick else (256, 256))
        args.vsr_size = args.vsr_size or ((64, 64) if args.quick else (180, 320))
        args.frames = args.frames or (5 if args.quick else 10)
        if args.frames < 2:
            raise ConfigError(f"--frames must be >= 2, got {args.frames}")
        warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
        iters = args.iters if args.iters is not None else (2 if args.quick else 5)
        if iters < 1:
            raise ConfigError(f"--iters must be >= 1, got {iters}")
        device = resolve_device(args.device)
        for base in {BASELINES[NETS[n][1]] for n in names}:  # each group's baseline, measured first
            if base not in names:
                names.insert(0, base)
        print(f"device {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else
                                    f" ({torch.get_num_threads()} threads)")
              + f", autocast {args.autocast}, warmup {warmup}, iters {iters}")
        speeds = {}
        for name in names:
            net, x, frames, desc = build(name, args)
            net, x = net.to(device), x.to(device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            sec = time_net(net, x, device, warmup, iters, args.autocast)
            speeds[name] = frames / sec
            base = BASELINES[NETS[name][1]]
            ratio = speeds[name] / speeds[base] if base in speeds else float("nan")
            unit = "frames/s" if NETS[name][1] in ("video", "frames5") else "images/s"
            mem = (f", peak {torch.cuda.max_memory_allocated(device) / 2 ** 30:.2f} GiB"
                   if device.type == "cuda" else "")
            params = sum(p.numel() for p in net.parameters()) / 1e6
            print(f"{name:<15} {NETS[name][0] + '.yaml':<26} {desc:<28} {speeds[name]:9.3f} {unit:<8} "
                  f"x{ratio:.3f} vs {base}  ({params:.2f} M params{mem})", flush=True)
            del net, x
        return 0
    except USER_ERRORS as e:
        return report(e)


if __name__ == "__main__":
    sys.exit(main())

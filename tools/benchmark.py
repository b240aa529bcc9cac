#!/usr/bin/env python
"""Training (and inference) speed and peak memory of a config, beside a bare PyTorch loop.

  python tools/benchmark.py -c configs/dcgan_digits.yaml --iters 50
  python tools/benchmark.py -c configs/dcgan_digits.yaml --device cuda --batch-size 64 --amp bf16 --compile reduce-overhead
  python tools/benchmark.py -c configs/esrgan_psnr_x4_div2k.yaml --input-size 128x128 --iters 3   # SR inference
  python tools/benchmark.py -c configs/sr_x4_demo.yaml --input-size 3000x4000 --tile 256 --overlap 32 --iters 1

"engine" is the real trainer loop (sampler, data loader, device prefetch, model.train_iter, LR
schedulers, loss meter and checks, logging every `log_config.interval`) on batches pre-rendered
into memory; "bare" is a hand-written PyTorch GAN loop of the same nets, losses, optimizers and
(pinned) batches (GAN models only). Both are timed the same way: the same warm-up, then one
round = --iters steps between two `torch.cuda.synchronize()` calls (none inside the round);
rounds are interleaved and the medians of per-round ms/iteration are compared.

  # engine overhead, eager and each torch.compile mode, on a GPU:
  python tools/benchmark.py -c configs/dcgan_digits.yaml --device cuda --iters 200 --rounds 5
  python tools/benchmark.py -c configs/dcgan_digits.yaml --device cuda --iters 200 --rounds 5 --compile default
  python tools/benchmark.py -c configs/dcgan_digits.yaml --device cuda --iters 200 --rounds 5 --compile reduce-overhead
  python tools/benchmark.py -c configs/dcgan_digits.yaml --device cuda --iters 200 --rounds 5 --compile max-autotune
"""
import contextlib
import argparse
import copy
import json
import os
import resource
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class MemoryDataset:
    """The first `n` samples of a dataset, rendered once and served from memory."""

    def __init__(self, dataset, n):
        self.items = [dataset[(i % len(dataset), i)] for i in range(n)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, key):
        index = key[0] if isinstance(key, tuple) else key
        return self.items[index]


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build_trainer(cfg, args, run_dir):
    from ppgan.engine import Trainer
    from torch.utils.data import DataLoader

    tr = Trainer(cfg, device=args.device, run_dir=run_dir, quiet=True)
    batch = int(cfg["dataset"]["train"].get("batch_size", 1))
    mem = MemoryDataset(tr.train_set, batch * args.batches)
    tr.train_sampler.length = len(mem)
    tr.train_sampler.num_samples = len(mem)
    tr.train_loader = DataLoader(mem, batch_size=batch, sampler=tr.train_sampler, num_workers=0,
                                 pin_memory=tr.device.type == "cuda")
    tr.iters_per_epoch = tr.train_sampler.batches_per_epoch()
    return tr, mem


def synchronize(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def engine_round(tr, iters):
    """ms/iteration of `tr.train()` running `iters` more iterations (no file writes)."""
    tr.total_iters = tr.iter + iters
    tr.snapshot_interval = tr.visual_interval = 0  # no file writes inside the timed loop
    tr.val_interval = 0
    save = tr.save_checkpoint, tr.save_visuals
    tr.save_checkpoint, tr.save_visuals = (lambda *a, **k: None), (lambda *a, **k: [])
    try:
        synchronize(tr.device)
        t0 = time.perf_counter()
        tr.train()
        synchronize(tr.device)
        t1 = time.perf_counter()
    finally:
        tr.save_checkpoint, tr.save_visuals = save
    return (t1 - t0) / iters * 1000.0


def bare_round(nets, opts, batches, gan_mode, latent_fn, cond, iters, device, cudagraphs=False, code_of=None):
    """ms/iteration of a hand-written GAN step, timed as `engine_round`: D on fake.detach()
    and real, then G through a frozen D; no loss is read back. `code_of`: a self-conditioned
    GAN's G, whose drawn codes D also takes (the engine's steps before the first clustering)."""
    import torch
    import torch.nn.functional as F

    g, d = nets
    opt_g, opt_d = opts

    def loss(pred, real):
        if gan_mode == "vanilla":
            return F.binary_cross_entropy_with_logits(pred, torch.full_like(pred, 1.0 if real else 0.0))
        if gan_mode == "lsgan":
            return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))
        return -pred.mean() if real else pred.mean()

    synchronize(device)
    t0 = time.perf_counter()
    for i in range(iters):
        if cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        b = batches[i % len(batches)]
        real = b["img"].to(device, non_blocking=True)
        inputs = latent_fn(real.shape[0])
        if cond:
            inputs[1] = b["class_id"].to(device)
        c = inputs[1:2] if cond else [code_of(inputs[0])] if code_of is not None else []
        fake = g(*inputs)
        opt_d.zero_grad(set_to_none=True)
        loss_d = (loss(d(fake.detach(), *c), False) + loss(d(real, *c), True)) * 0.5
        loss_d.backward()
        opt_d.step()
        for p in d.parameters():
            p.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        loss_g = loss(d(fake, *c), True)
        loss_g.backward()
        opt_g.step()
        for p in d.parameters():
            p.requires_grad_(True)
    synchronize(device)
    return (time.perf_counter() - t0) / iters * 1000.0


def inference_benchmark(cfg, args, device):
    """Generator inference on a random low-resolution input of --input-size (whole image,
    or tiled with --tile/--overlap): LR megapixels/s (images) or frames/s (video nets)."""
    import torch

    from ppgan.models.generators import build_generator
    from ppgan.utils.inference import padded_forward
    from ppgan.utils.tiling import tiled_forward

    gcfg = cfg["model"].get("generator")
    if gcfg is None:
        raise ValueError("--input-size needs a config with model.generator")
    net = build_generator(gcfg).to(device).eval()
    h, w = (int(v) for v in args.input_size.lower().split("x"))
    video = gcfg["name"] in ("EDVRNet", "BasicVSRNet")
    frames = int(gcfg.get("nframes", 5)) if gcfg["name"] == "EDVRNet" else args.frames
    shape = (1, frames, 3, h, w) if video else (1, 3, h, w)
    x = torch.rand(*shape, device=device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.get("amp") or "")
    if cfg.get("channels_last") and device.type == "cuda" and not video:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if cfg.get("compile"):
        net.compile(mode="default" if cfg["compile"] is True else cfg["compile"])

    def once():
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            if video:
                return net(x)
            if args.tile:
                return tiled_forward(net, x, tile=args.tile, overlap=args.overlap)
            return padded_forward(net, x)

    for _ in range(args.warmup):
        out = once()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(args.iters):
        out = once()
    if device.type == "cuda":
        torch.cuda.synchronize()
    sec = (time.perf_counter() - t0) / args.iters
    out_frames = out.shape[1] if video and out.ndim == 5 else 1
    result = {"config": args.config, "device": str(device), "generator": gcfg["name"], "input": list(shape),
              "output": list(out.shape), "tile": args.tile, "overlap": args.overlap, "amp": cfg.get("amp"),
              "channels_last": bool(cfg.get("channels_last")), "compile": cfg.get("compile"),
              "ms_per_call": sec * 1000, "lr_mpix_per_s": h * w * out_frames / sec / 1e6,
              "frames_per_s": out_frames / sec, "peak_rss_mb": peak_rss_mb()}
    if device.type == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    print(f"{gcfg['name']} inference on {device} ({torch.get_num_threads()} threads), input {list(shape)} -> "
          f"{list(out.shape)}, tile {args.tile or 'none'}, amp {cfg.get('amp')}")
    print(f"  {sec * 1000:.1f} ms per call, {result['lr_mpix_per_s']:.3f} LR-Mpix/s, "
          f"{result['frames_per_s']:.2f} frames/s, peak RSS {result['peak_rss_mb']:.0f} MB"
          + (f", peak CUDA {result['peak_cuda_mb']:.0f} MB" if "peak_cuda_mb" in result else ""))
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", required=True)
    p.add_argument("-o", "--opt", action="append", default=[], help="config override, as in tools/main.py")
    p.add_argument("--iters", type=int, default=50, help="timed iterations per round (default 50)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved engine/bare rounds (default 3)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--batches", type=int, default=8, help="distinct batches kept in memory (default 8)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--amp", default=None, choices=["bf16", "fp16", "none"])
    p.add_argument("--compile", default=None, choices=["default", "reduce-overhead", "max-autotune", "none"],
                   help="torch.compile mode for both loops (default: the config's)")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--no-bare", action="store_true", help="skip the bare PyTorch loop")
    p.add_argument("--json", default=None, help="write the figures here as JSON")
    p.add_argument("--input-size", default=None, metavar="HxW",
                   help="inference only: time model.generator on a random HxW (low-resolution) input")
    p.add_argument("--tile", type=int, default=0, help="inference: tile size (0 = whole image)")
    p.add_argument("--overlap", type=int, default=16, help="inference: tile overlap (default 16)")
    p.add_argument("--frames", type=int, default=10, help="inference: clip length for BasicVSRNet")
    args = p.parse_args(argv)

    from ppgan.utils.errors import USER_ERRORS, report

    try:
        import torch

        from ppgan.utils.device import resolve_device
        from ppgan.models.discriminators import build_discriminator
        from ppgan.models.generators import build_generator
        from ppgan.solver import build_optimizer
        from ppgan.utils.config import load_config

        cfg = load_config(args.config, args.opt)
        if args.batch_size:
            cfg["dataset"]["train"]["batch_size"] = args.batch_size
        if args.amp:
            cfg["amp"] = args.amp
        if args.compile:
            cfg["compile"] = False if args.compile == "none" else args.compile
        if args.channels_last:
            cfg["channels_last"] = True
        cfg["dataset"]["train"]["num_workers"] = 0
        cfg.setdefault("log_config", {})["interval"] = 100
        device = resolve_device(args.device)
        if args.input_size:
            result = inference_benchmark(cfg, args, device)
            if args.json:
                from ppgan.utils.io import atomic_write_text

                atomic_write_text(args.json, json.dumps(result, indent=2))
            return 0
        with tempfile.TemporaryDirectory() as tmp:
            tr, mem = build_trainer(copy.deepcopy(cfg), args, tmp)
            model_cfg = cfg["model"]
            is_gan = model_cfg["name"] in ("GANModel", "DCGANModel")
            bare = None
            if is_gan and not args.no_bare:
                torch.manual_seed(0)
                g = build_generator(model_cfg["generator"]).to(device)
                d = build_discriminator(model_cfg["discriminator"]).to(device)
                g.load_state_dict(tr.model.nets["netG"].state_dict())
                d.load_state_dict(tr.model.nets["netD"].state_dict())
                mode = tr.compile_mode  # as the trainer: channels-last only without compile
                if cfg.get("channels_last") and device.type == "cuda" and not mode:
                    g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
                if mode:
                    g.compile(mode=mode)
                    d.compile(mode=mode)
                ocfg = cfg["optimizer"]
                base_lr = (cfg.get("lr_scheduler") or {}).get("learning_rate")
                og = next(o for o in ocfg.values() if "netG" in o["net_names"])
                od = next(o for o in ocfg.values() if "netD" in o["net_names"])
                opts = (build_optimizer(og, g.parameters(), base_lr), build_optimizer(od, d.parameters(), base_lr))
                batches = [torch.utils.data.default_collate(mem.items[i:i + tr.train_loader.batch_size])
                           for i in range(0, len(mem), tr.train_loader.batch_size)]
                if device.type == "cuda":  # as the engine's loader (pin_memory)
                    batches = [{k: v.pin_memory() if torch.is_tensor(v) else v for k, v in b.items()}
                               for b in batches]
                gen_net = tr.model.nets["netG"]

                def latent_fn(n, _g=gen_net):
                    z = _g.random_inputs(n, device=device)
                    return list(z) if isinstance(z, (list, tuple)) else [z]

                gan_mode = model_cfg["gan_criterion"]["gan_mode"]
                cond = bool(getattr(gen_net, "n_class", 0))
                code_of = gen_net.code_of if getattr(tr.model, "self_condition", False) else None
                amp_dtype = tr.amp_dtype

                def run_bare(n):
                    ctx = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
                    with ctx:
                        return bare_round((g, d), opts, batches, gan_mode, latent_fn, cond, n, device,
                                          cudagraphs=tr.cudagraphs, code_of=code_of)
                bare = run_bare

            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            engine_round(tr, args.warmup)
            if bare:
                bare(args.warmup)
            eng, bar = [], []
            for _ in range(args.rounds):
                eng.append(engine_round(tr, args.iters))
                if bare:
                    bar.append(bare(args.iters))
            result = {"config": args.config, "device": str(device), "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "iters_per_round": args.iters,
                      "batch_size": tr.train_loader.batch_size, "amp": cfg.get("amp"), "compile": cfg.get("compile"),
                      "engine_ms_per_iter": statistics.median(eng), "engine_rounds_ms": eng}
            if bar:
                result["bare_ms_per_iter"] = statistics.median(bar)
                result["bare_rounds_ms"] = bar
                result["engine_over_bare"] = result["engine_ms_per_iter"] / result["bare_ms_per_iter"]
                result["engine_overhead_pct"] = 100.0 * (result["engine_over_bare"] - 1)
            # inference: the generator on one batch (GANs: fresh latents; others: test_iter)
            n = tr.train_loader.batch_size
            batch = torch.utils.data.default_collate(mem.items[:n])
            gen_net = tr.model.nets.get("netG")
            tr.model.eval()
            with torch.no_grad():
                for i in range(args.warmup + args.iters):
                    if i == args.warmup:
                        if device.type == "cuda":
                            torch.cuda.synchronize()
                        t0 = time.perf_counter()
                    if tr.cudagraphs:
                        torch.compiler.cudagraph_mark_step_begin()
                    if gen_net is not None and hasattr(gen_net, "random_inputs"):
                        z = gen_net.random_inputs(n, device=device)
                        gen_net(*(z if isinstance(z, (list, tuple)) else [z]))
                    else:
                        tr.model.setup_input(batch)
                        tr.model.test_iter()
                if device.type == "cuda":
                    torch.cuda.synchronize()
            ms = (time.perf_counter() - t0) / args.iters * 1000.0
            result["inference_ms_per_batch"] = ms
            result["inference_images_per_s"] = n / ms * 1000.0
            result["peak_rss_mb"] = peak_rss_mb()
            if device.type == "cuda":
                result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
        print(f"config {args.config} on {device} ({torch.get_num_threads()} threads, torch {torch.__version__}), "
              f"batch {result['batch_size']}, amp {result['amp']}, compile {result['compile']}")
        print(f"  train, engine : {result['engine_ms_per_iter']:.2f} ms/iter  (rounds: "
              + ", ".join(f"{x:.2f}" for x in eng) + ")")
        if bar:
            print(f"  train, bare   : {result['bare_ms_per_iter']:.2f} ms/iter  (rounds: "
                  + ", ".join(f"{x:.2f}" for x in bar) + ")")
            print(f"  engine overhead: {result['engine_overhead_pct']:+.1f}% (engine/bare {result['engine_over_bare']:.3f})")
        print(f"  inference     : {result['inference_ms_per_batch']:.2f} ms/batch, "
              f"{result['inference_images_per_s']:.0f} images/s")
        print(f"  peak memory   : {result['peak_rss_mb']:.0f} MB RSS"
              + (f", {result['peak_cuda_mb']:.0f} MB CUDA" if "peak_cuda_mb" in result else ""))
        if args.json:
            from ppgan.utils.io import atomic_write_text

            atomic_write_text(args.json, json.dumps(result, indent=2))
        return 0
    except USER_ERRORS as e:
        return report(e)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Held-out reconstruction and temporal consistency of a Vid2Vid model against a per-frame pix2pix
baseline, on the held-out clips of the Vid2Vid data (the `dataset.test` section of --config).

For every held-out clip (source edge maps A, true frames B, true flow), each model generates the
clip from A: Vid2Vid sequentially (each frame from its source and the previous sources and
generated frames, as `Vid2VidPredictor` does), pix2pix frame by frame (each frame alone). Figures, on [0, 1] pixels:

  * l1     mean |output - B|, over all frames, pixels and channels;
  * psnr   mean over frames of 10 log10(1 / MSE(output frame, true frame));
  * warp   temporal warping error: mean over consecutive pairs of |O[t+1] - warp(O[t], flow[t])|,
           with the TRUE flow of the clip (not one estimated from the outputs), over the pixels
           whose flow stays inside the frame. A flickering video scores high even if every frame
           is plausible. The true frames' own warping error (interpolation and resampling only)
           is printed as the floor. Read it beside L1 / PSNR: a blurred or constant video warps
           onto itself well too (a random-init generator's mush scores better than a sharp per-frame
           model); what it shows is flicker that is not explained by the motion.

  python tools/eval_vid2vid.py --vid2vid output_dir/vid2vid_edges_demo-.../iter_1500_weight.pth \\
      --pix2pix output_dir/pix2pix_edges_frames_demo-.../iter_1500_weight.pth \\
      --json eval.json --video side_by_side.mp4 --grid frames.png --n_frames 24

--video writes the first held-out clip side by side (source | truth | pix2pix | Vid2Vid), --grid
its first frames as one PNG row per model. Either model may be left out.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs",
                              "vid2vid_edges_demo.yaml")


# ---- the figures (tensors in [0, 1]) ------------------------------------------------------------

def l1_error(out, ref):
    """Mean absolute difference of two [T, 3, H, W] tensors."""
    return float((out.double() - ref.double()).abs().mean())


def psnr(out, ref):
    """Mean over frames of the PSNR (peak 1) of [T, 3, H, W] tensors; identical frames count 100 dB."""
    import torch

    mse = ((out.double() - ref.double()) ** 2).flatten(1).mean(1)
    return float(torch.where(mse > 0, 10 * torch.log10(1.0 / mse.clamp_min(1e-20)), torch.full_like(mse, 100.0))
                 .mean())


def warp_next(frames, flow, mask=None):
    """(frames[t] warped onto frame t+1, valid mask) for t < T-1, by the true flow.

    Args:
        frames (Tensor): [T, C, H, W].
        flow (Tensor): [T-1, 2, H, W], pixel displacements (x, y) as EmbeddedVideoEdgesDataset's
            'flow': pixel p of frame t+1 shows what frame t shows at p + flow[t](p)
            (`ppgan.modules.flow.flow_warp` convention).
        mask (Tensor | None): [T-1, 1, H, W], 1 where p + flow[t](p) lies inside frame t (the
            dataset's 'flow_mask'); None: computed from the flow.
    Returns:
        (Tensor [T-1, C, H, W], Tensor [T-1, 1, H, W] of 0/1): the warped frames and the mask.
    """
    import torch

    from ppgan.modules.flow import flow_warp

    _, _, h, w = frames.shape
    flow = flow.float().permute(0, 2, 3, 1)                                      # [T-1, H, W, 2]
    warped = flow_warp(frames[:-1].float(), flow, padding_mode="border")
    if mask is None:
        gy, gx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                                indexing="ij")
        px, py = gx + flow[..., 0], gy + flow[..., 1]
        mask = ((px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)).float()[:, None]
    return warped, mask.float()


def warping_error(frames, flow, mask=None):
    """Temporal warping error of [T, C, H, W] frames with the true flow (see `warp_next`): mean of
    |frames[t+1] - warp(frames[t])| over the valid pixels (and channels) of all consecutive pairs."""
    warped, valid = warp_next(frames, flow, mask)
    diff = (frames[1:].float() - warped).abs() * valid
    return float(diff.sum() / (valid.sum() * frames.shape[1]).clamp_min(1))


def figures(out, ref, flow, mask=None):
    """{'l1', 'psnr', 'warp'} of an output clip against the true clip (both [T, 3, H, W] in [0, 1])."""
    return {"l1": l1_error(out, ref), "psnr": psnr(out, ref), "warp": warping_error(out, flow, mask)}


# ---- the models ---------------------------------------------------------------------------------

def load_pix2pix(path, device):
    """The generator of a Pix2PixModel weight file, on `device`, in eval mode."""
    from ppgan.models.builder import describe_model
    from ppgan.models.generators.builder import build_generator
    from ppgan.utils.errors import CheckpointError
    from ppgan.weights import load, load_into

    weights = load(path)
    cfg = weights.config
    if not isinstance(cfg, dict) or cfg.get("name") != "Pix2PixModel":
        what = describe_model(cfg) if isinstance(cfg, dict) else "no model config"
        raise CheckpointError(f"--pix2pix {path}: holds {what}, not a Pix2PixModel "
                              "(train configs/pix2pix_edges_frames_demo.yaml)")
    net = build_generator(cfg["generator"])
    load_into(net, weights, name="netG")
    return net.to(device).eval()


def run_vid2vid(pred, src):
    """Vid2Vid on one clip of source maps [T, C, H, W] in [-1, 1] -> [T, 3, H, W] in [0, 1] (CPU),
    frame by frame through `Vid2VidPredictor.step`, the generator state carried (as the app does)."""
    import torch

    state, out = None, []
    for t in range(src.shape[0]):
        fake, state = pred.step(src[t:t + 1].to(pred.device), state)
        out.append(fake.float().cpu())
    return ((torch.cat(out).clamp(-1, 1) + 1) * 0.5)


def run_pix2pix(net, src, device):
    """pix2pix frame by frame -> [T, 3, H, W] in [0, 1]. Each frame is its own batch: the translation
    generators' batch norm uses batch statistics also at inference (PaddleGAN's), so a batch of the
    clip's frames would share statistics across time; one frame at a time keeps them independent."""
    import torch

    with torch.no_grad():
        out = torch.cat([net(src[t:t + 1].to(device)).float().cpu() for t in range(src.shape[0])])
    return (out.clamp(-1, 1) + 1) * 0.5


def _clip(sample):
    """(A [T, C, H, W] in [-1, 1], B [T, 3, H, W] in [0, 1], flow [T-1, 2, H, W], mask [T-1, 1, H, W]
    or None) of an EmbeddedVideoEdgesDataset sample."""
    return sample["A"], (sample["B"].clamp(-1, 1) + 1) * 0.5, sample["flow"], sample.get("flow_mask")


# ---- outputs ------------------------------------------------------------------------------------

def _as_rgb(t):
    """[T, C, H, W] in [0, 1] (C = 1 or 3) -> [T, 3, H, W]."""
    return t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t


def write_video(path, columns, fps=12):
    """Side-by-side video of [T, 3, H, W] clips in [0, 1] (one column each)."""
    import numpy as np
    import torch

    from ppgan.video.encode import VideoWriter

    frames = torch.cat([_as_rgb(c) for c in columns], dim=3)
    t, _, h, w = frames.shape
    arr = (frames.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
    pad_h, pad_w = h % 2, w % 2  # yuv420p: even sides
    with VideoWriter(path, w + pad_w, h + pad_h, fps) as vw:
        for f in arr:
            vw.write(np.pad(f, ((0, pad_h), (0, pad_w), (0, 0))))
    return t


def write_grid(path, rows, n, scale=1):
    """One PNG row per clip in `rows` (first `n` frames of each), each frame enlarged `scale` times
    (nearest neighbour: the pixels as they are)."""
    import torch
    import torch.nn.functional as F

    from ppgan.utils.visual import save_grid

    tiles = torch.cat([_as_rgb(r[:n]) for r in rows])
    if scale > 1:
        tiles = F.interpolate(tiles, scale_factor=scale, mode="nearest")
    save_grid(tiles, path, nrow=min(n, rows[0].shape[0]), min_max=(0.0, 1.0))


# ---- main ---------------------------------------------------------------------------------------

def evaluate(dataset, pred=None, pix2pix=None, device="cpu", max_clips=None, keep_first=False):
    """Figures over the held-out clips: {'clips', 'frames', 'truth': {'warp'}, 'vid2vid': {...},
    'pix2pix': {...}} (the model entries only for the models given), frame-weighted means. With
    `keep_first`, also '_first': the first clip's (A, B, pix2pix, vid2vid) tensors."""
    n = len(dataset) if max_clips is None else min(len(dataset), int(max_clips))
    sums, frames, first = {}, 0, None
    for i in range(n):
        a, b, flow, mask = _clip(dataset[i])
        t = b.shape[0]
        outs = {"truth": b}
        if pix2pix is not None:
            outs["pix2pix"] = run_pix2pix(pix2pix, a, device)
        if pred is not None:
            outs["vid2vid"] = run_vid2vid(pred, a)
        for name, o in outs.items():
            f = {"warp": warping_error(o, flow, mask)} if name == "truth" else figures(o, b, flow, mask)
            acc = sums.setdefault(name, {})
            for k, v in f.items():
                acc[k] = acc.get(k, 0.0) + v * t
        frames += t
        if keep_first and first is None:
            first = ((a.clamp(-1, 1) + 1) * 0.5, b, outs.get("pix2pix"), outs.get("vid2vid"))
    result = {"clips": n, "frames": frames}
    for name, acc in sums.items():
        result[name] = {k: v / frames for k, v in acc.items()}
    if keep_first:
        result["_first"] = first
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vid2vid", default=None, help="Vid2VidModel weight file (iter_<N>_weight.pth)")
    p.add_argument("--pix2pix", default=None, help="Pix2PixModel weight file of configs/pix2pix_edges_frames_demo.yaml")
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG,
                   help="config whose dataset.test section gives the held-out clips (default: "
                        "configs/vid2vid_edges_demo.yaml)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, as tools/main.py (e.g. -o dataset.test.clips_per_photo=2)")
    p.add_argument("--clips", type=int, default=None, help="evaluate the first N held-out clips (default all)")
    p.add_argument("--photos", default=None,
                   help="comma-separated scikit-image photos to make the clips from instead of the held-out ones "
                        "(e.g. the training photos astronaut,chelsea: new clips of seen photos)")
    p.add_argument("--n_frames", type=int, default=None,
                   help="frames per held-out clip instead of the config's (longer clips show drift)")
    p.add_argument("--json", default=None, help="write the figures here")
    p.add_argument("--video", default=None, help="side-by-side video of the first held-out clip "
                                                 "(source | truth | pix2pix | Vid2Vid)")
    p.add_argument("--grid", default=None, help="PNG of the first held-out clip's frames, one row per model")
    p.add_argument("--grid_frames", type=int, default=6, help="frames per grid row (default 6)")
    p.add_argument("--grid_scale", type=int, default=4, help="grid frames enlarged this many times (default 4)")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    args = p.parse_args(argv)

    def run():
        import torch

        from ppgan.datasets.builder import build_dataset
        from ppgan.utils.config import load_config
        from ppgan.utils.device import resolve_device
        from ppgan.utils.errors import ConfigError, PPGANError

        if args.vid2vid is None and args.pix2pix is None:
            raise ConfigError("give --vid2vid and/or --pix2pix weight files")
        for flag, path in (("--vid2vid", args.vid2vid), ("--pix2pix", args.pix2pix)):
            if path is not None and not os.path.isfile(path):
                raise PPGANError(f"{flag} not found: {path}")
        if args.clips is not None and args.clips < 1:
            raise ConfigError(f"--clips must be >= 1, got {args.clips}")
        if args.n_frames is not None and args.n_frames < 2:
            raise ConfigError(f"--n_frames must be >= 2, got {args.n_frames}")
        if args.grid_frames < 1 or args.grid_scale < 1:
            raise ConfigError(f"--grid_frames and --grid_scale must be >= 1, got {args.grid_frames}, "
                              f"{args.grid_scale}")
        cfg = load_config(args.config, args.override)
        test = (cfg.get("dataset") or {}).get("test")
        if not isinstance(test, dict):
            raise ConfigError(f"{args.config} has no dataset.test section (the held-out clips)")
        if args.n_frames is not None:
            test = {**test, "n_frames": args.n_frames}
        if args.photos is not None:
            photos = [x.strip() for x in args.photos.split(",") if x.strip()]
            if not photos:
                raise ConfigError(f"--photos: no photo names in {args.photos!r}")
            test = {**test, "photos": photos}
        device = resolve_device(args.device)
        torch.manual_seed(0)
        dataset = build_dataset(test)
        pred = pix = None
        if args.vid2vid:
            from ppgan.apps.vid2vid_predictor import Vid2VidPredictor

            pred = Vid2VidPredictor(args.vid2vid, device=str(device), half=False, verbose=False)
        if args.pix2pix:
            pix = load_pix2pix(args.pix2pix, device)
        res = evaluate(dataset, pred, pix, device, args.clips, keep_first=bool(args.video or args.grid))
        a, b, p2p, v2v = res.pop("_first", None) or (None,) * 4
        models = [m for m, o in (("pix2pix", p2p), ("vid2vid", v2v)) if o is not None]
        if args.video:
            n = write_video(args.video, [a, b] + [o for o in (p2p, v2v) if o is not None])
            res["video"] = {"path": args.video, "frames": n, "columns": ["source", "truth"] + models}
        if args.grid:
            write_grid(args.grid, [a, b] + [o for o in (p2p, v2v) if o is not None], args.grid_frames,
                       args.grid_scale)
            res["grid"] = {"path": args.grid, "rows": ["source", "truth"] + models}
        res["photos"], res["n_frames"] = list(getattr(dataset, "photos", [])), getattr(dataset, "n_frames", None)
        what = "held-out" if args.photos is None else "clips of"
        print(f"{what} {', '.join(res['photos'])}: {res['clips']} clips, {res['frames']} frames")
        print(f"  truth     warp {res['truth']['warp']:.4f} (floor: resampling of the true frames)")
        for m in ("pix2pix", "vid2vid"):
            if m in res:
                r = res[m]
                print(f"  {m:<9} L1 {r['l1']:.4f}  PSNR {r['psnr']:.2f} dB  warp {r['warp']:.4f}")
        if args.json:
            from ppgan.utils.io import atomic_write_text

            atomic_write_text(args.json, json.dumps(res, indent=1))
        return 0

    from ppgan.apps.cli_args import run_main

    return run_main(run)


if __name__ == "__main__":
    sys.exit(main())

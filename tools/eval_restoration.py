#!/usr/bin/env python
"""Held-out PSNR / SSIM of a restoration model against the degraded input and a classical
baseline, on a restoration config's test set (the config's validate metrics: crop_border,
test_y_channel).

  * denoising: OpenCV's non-local means (cv2.fastNlMeansDenoisingColored), its filter strength
    `h` picked as the best of --nlm_h on the test images themselves (an oracle-tuned baseline);
  * deblurring: an unsharp mask (blind sharpening; amount picked likewise from --usm_amount) and
    Wiener deconvolution with the TRUE blur kernel of each image (non-blind, so an upper-end
    classical reference; noise-to-signal ratio picked from --wiener_nsr), when the test samples
    carry their 'kernel' (RestorationPhotoDataset does).

  python tools/eval_restoration.py -c configs/nafnet_denoise_demo.yaml --weights run/iter_2000_weight.pth \\
      --grid denoise_grid.png

--grid writes one row per test image: clean | degraded | baseline(s) | model.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

NLM_H = (6.0, 9.0, 12.0, 15.0, 18.0, 21.0, 24.0, 28.0)
USM_AMOUNT = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
WIENER_NSR = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1)


def nlm(img, h):
    """Non-local means of an RGB uint8 image (filter strength h for luma and colour)."""
    import cv2

    return cv2.fastNlMeansDenoisingColored(img, None, h, h, 7, 21)


def unsharp(img, amount, sigma=2.0):
    """Unsharp mask of an RGB uint8 image: img + amount * (img - gaussian(img, sigma))."""
    import cv2
    import numpy as np

    f = img.astype(np.float32)
    return np.clip(np.round(f + amount * (f - cv2.GaussianBlur(f, (0, 0), sigma))), 0, 255).astype(np.uint8)


def wiener(img, kernel, nsr):
    """Wiener deconvolution of an RGB uint8 image by a known `kernel` with a constant
    noise-to-signal ratio `nsr`; the image is symmetric-padded first so the FFT's circular
    boundary does not ring into the result."""
    import numpy as np

    k = np.asarray(kernel, np.float64)
    pad = k.shape[0] * 2
    f = np.pad(img.astype(np.float64), ((pad, pad), (pad, pad), (0, 0)), mode="symmetric")
    h, w = f.shape[:2]
    psf = np.zeros((h, w))
    psf[:k.shape[0], :k.shape[1]] = k
    psf = np.roll(psf, (-(k.shape[0] // 2), -(k.shape[1] // 2)), axis=(0, 1))
    K = np.fft.rfft2(psf)
    G = np.conj(K) / (np.abs(K) ** 2 + nsr)
    out = np.fft.irfft2(np.fft.rfft2(f, axes=(0, 1)) * G[..., None], s=(h, w), axes=(0, 1))
    return np.clip(np.round(out[pad:-pad, pad:-pad]), 0, 255).astype(np.uint8)


def score(metrics, pairs):
    """{metric: value} over (restored, gt) uint8 pairs."""
    import numpy as np

    out = {}
    for name, m in metrics.items():
        m.reset()
        for pred, gt in pairs:
            m.update(pred.astype(np.float64), gt.astype(np.float64))
        out[name] = float(m.accumulate())
    return out


def best_of(metrics, key, name, candidates, fn, samples):
    """(label, scores, outputs) of the candidate parameter giving the best `key` metric."""
    best = None
    for c in candidates:
        outs = [fn(s, c) for s in samples]
        sc = score(metrics, [(o, s["gt"]) for o, s in zip(outs, samples)])
        if best is None or sc[key] > best[1][key]:
            best = (f"{name} {c:g}", sc, outs)
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", required=True, help="the training config (model and dataset.test)")
    p.add_argument("--weights", default=None, help="weight / checkpoint file of the model (none: baselines only)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--task", choices=("denoise", "deblur"), default=None,
                   help="which classical baselines (default: the test dataset's `task`)")
    p.add_argument("--grid", default=None, help="write a before/after PNG grid here")
    p.add_argument("--json", default=None, help="also write the results as JSON here")
    p.add_argument("--nlm_h", type=float, nargs="+", default=list(NLM_H), help="NLM strengths to try")
    p.add_argument("--usm_amount", type=float, nargs="+", default=list(USM_AMOUNT), help="unsharp amounts to try")
    p.add_argument("--usm_sigma", type=float, default=2.0, help="unsharp mask blur sigma (default 2)")
    p.add_argument("--wiener_nsr", type=float, nargs="+", default=list(WIENER_NSR), help="Wiener NSRs to try")
    args = p.parse_args(argv)
    from ppgan.utils.errors import USER_ERRORS, ConfigError, report

    try:
        import numpy as np
        import torch

        from ppgan.datasets import build_dataset
        from ppgan.metrics import build_metric
        from ppgan.utils.config import load_config

        cfg = load_config(args.config)
        dcfg = (cfg.get("dataset") or {}).get("test")
        if not dcfg:
            raise ConfigError(f"{args.config} has no dataset.test")
        mcfg = ((cfg.get("validate") or {}).get("metrics") or {})
        metrics = {k: build_metric(v) for k, v in mcfg.items()}
        if not metrics:
            metrics = {"psnr": build_metric({"name": "PSNR", "crop_border": 0})}
        key = "psnr" if "psnr" in metrics else next(iter(metrics))
        dataset = build_dataset(dcfg)
        task = args.task or getattr(dataset, "task", None)
        if task not in ("denoise", "deblur"):
            raise ConfigError(f"{args.config}: cannot tell the task of dataset {dcfg.get('name')!r}; "
                              "pass --task denoise or --task deblur")
        for flag in ("nlm_h", "usm_amount", "wiener_nsr"):
            if any(not v > 0 for v in getattr(args, flag)):
                raise ConfigError(f"--{flag} values must be > 0, got {getattr(args, flag)}")
        if len(dataset) == 0:
            raise ConfigError(f"{args.config}: the test set is empty")
        to_u8 = lambda t: (t.numpy().transpose(1, 2, 0) * 255.0).round().clip(0, 255).astype(np.uint8)  # noqa: E731
        samples = []
        for i in range(len(dataset)):
            s = dataset[(i, i)]
            if not isinstance(s, dict) or "lq" not in s or "gt" not in s:
                raise ConfigError(f"{args.config}: test samples of {dcfg.get('name')!r} are not dicts with "
                                  "'lq' and 'gt' images")
            samples.append({"lq_t": s["lq"], "lq": to_u8(s["lq"]), "gt": to_u8(s["gt"]), "kernel": s.get("kernel"),
                            "name": s.get("lq_path", str(i))})

        rows = {"degraded input": (score(metrics, [(s["lq"], s["gt"]) for s in samples]), [s["lq"] for s in samples])}
        if task == "denoise":
            label, sc, outs = best_of(metrics, key, "NLM h", args.nlm_h, lambda s, h: nlm(s["lq"], h), samples)
            rows[f"OpenCV NLM ({label})"] = (sc, outs)
        else:
            label, sc, outs = best_of(metrics, key, "unsharp amount", args.usm_amount,
                                      lambda s, a: unsharp(s["lq"], a, args.usm_sigma), samples)
            rows[f"unsharp mask ({label})"] = (sc, outs)
            if all(s["kernel"] is not None for s in samples):
                label, sc, outs = best_of(metrics, key, "Wiener nsr", args.wiener_nsr,
                                          lambda s, r: wiener(s["lq"], s["kernel"], r), samples)
                rows[f"Wiener, true kernel ({label})"] = (sc, outs)
        if args.weights:
            from ppgan.engine import checkpoint as ckpt
            from ppgan.models import build_model
            from ppgan.utils.device import resolve_device

            model = build_model(cfg["model"])
            ckpt.load_weights(model, args.weights, model_cfg=cfg["model"])
            model.setup_runtime(resolve_device(args.device))
            net = model.nets["generator"]
            net.eval()
            outs = []
            with torch.no_grad():
                for s in samples:
                    lq = s["lq_t"][None].to(next(net.parameters()).device)
                    outs.append(to_u8(model.forward_any_size(lq)[0].float().clamp(0, 1).cpu()))
            rows[f"model ({cfg['model']['generator']['name']})"] = (score(metrics, [(o, s["gt"]) for o, s in
                                                                                      zip(outs, samples)]), outs)

        names = list(metrics)
        width = max(len(r) for r in rows)
        print(f"{task}: {len(samples)} held-out images ({', '.join(s['name'] for s in samples)})")
        print(f"{'method':<{width}}  " + "  ".join(f"{n:>8}" for n in names))
        for r, (sc, _) in rows.items():
            print(f"{r:<{width}}  " + "  ".join(f"{sc[n]:8.4f}" for n in names))
        if args.grid:
            from ppgan.utils.visual import save_image

            lines = []
            for i, s in enumerate(samples):
                tiles = [s["gt"]] + [outs[i] for _, outs in rows.values()]
                sep = np.full((s["gt"].shape[0], 4, 3), 255, np.uint8)
                lines.append(np.concatenate([x for t in tiles for x in (t, sep)][:-1], axis=1))
            wmax = max(line.shape[1] for line in lines)
            lines = [np.pad(line, ((0, 4), (0, wmax - line.shape[1]), (0, 0)), constant_values=255) for line in lines]
            save_image(np.concatenate(lines, axis=0), args.grid)
            print(f"grid ({' | '.join(['clean'] + list(rows))}) -> {args.grid}")
        if args.json:
            from ppgan.utils.io import atomic_write_text

            atomic_write_text(args.json, json.dumps({"task": task, "images": [s["name"] for s in samples],
                                                     "results": {r: sc for r, (sc, _) in rows.items()}}, indent=2))
        return 0
    except USER_ERRORS as e:
        return report(e)


if __name__ == "__main__":
    sys.exit(main())

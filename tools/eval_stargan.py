#!/usr/bin/env python
"""Score StarGAN / StarGAN v2 weights on a config's test set.

StarGAN (StarGANModel): translate every test image once per label
(that label changed: flipped for an attribute, set for a domain), then report

  * target-attribute accuracy: how often the changed label is measured on the translated image
    as asked (per label and overall), and how often all labels match the target;
  * reconstruction L1: mean |G(G(x, c_trg), c_org) - x| (images in [-1, 1]) over those edits.

The attributes are measured by an independent judge: on the embedded demo data the exact
measurements of `ppgan.datasets.stargan_dataset.predict_attributes` (colour cast, brightness,
chroma); on other data, the model's own discriminator classifier (biased: the generator was
trained against it; said in the output). Several weight files in one call share the judge;
`init` stands for the untrained model (the config's seed), i.e. the start of training.

StarGAN v2 (StarGANv2Model, on the embedded domains of configs/starganv2_demo.yaml): each held-out
source is translated to its reference's domain, guided by the reference and by a random latent;
reported: domain accuracy of both (measured by `predict_domain`, an exact colour measurement),
diversity (mean |G(x, s(z1)) - G(x, s(z2))|) and cycle L1 (back to the source's own style).

  python tools/eval_stargan.py -c configs/stargan_demo.yaml --weights init output_dir/<run>/iter_2000_weight.pth
  python tools/eval_stargan.py -c configs/starganv2_demo.yaml --weights init output_dir/<run>/iter_1000_weight.pth
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_judge(dataset, model):
    """(name, fn(images [N,3,H,W] in [-1,1]) -> 0/1 [N, L] predictions)."""
    import numpy as np
    import torch

    from ppgan.datasets.stargan_dataset import EmbeddedAttributeDataset, predict_attributes

    if isinstance(dataset, EmbeddedAttributeDataset):
        attrs = list(dataset.selected_attrs)
        return "exact attribute measurements (predict_attributes)", \
            lambda imgs: torch.from_numpy(np.asarray(predict_attributes(imgs, attrs))).float()
    net_d = model.nets.get("discriminator")
    if net_d is None:
        from ppgan.utils.errors import CheckpointError

        raise CheckpointError("these weights have no discriminator and the test data no exact attribute "
                              "measurements: nothing can judge the translations")

    def judge(imgs):
        logits = net_d(imgs.to(model.device))[1].float()
        out = torch.zeros_like(logits)
        for g in model.groups:
            s, e = g["start"], g["start"] + g["size"]
            if g["type"] == "multi":
                out[:, s:e] = (logits[:, s:e] > 0).float()
            else:
                out[:, s:e] = torch.nn.functional.one_hot(logits[:, s:e].argmax(1), g["size"]).float()
        return out.cpu()

    return "the model's own discriminator classifier (biased towards the generator)", judge


def evaluate(model, loader, judge, max_batches=None):
    import torch

    n_labels = model.label_dim
    hit = torch.zeros(n_labels)
    count = torch.zeros(n_labels)
    all_hit = all_count = 0
    real_hit = real_count = 0
    rec_sum, rec_n = 0.0, 0
    G = model.nets["generator"]
    model.eval()
    with torch.no_grad():
        for b, batch in enumerate(loader):
            if max_batches is not None and b >= max_batches:
                break
            model.setup_input(batch)
            x, c_org, mask = model.real, model.label, model.mask
            active = torch.cat([mask[:, gi:gi + 1].expand(-1, g["size"]) for gi, g in enumerate(model.groups)],
                               dim=1).cpu() > 0
            pred = judge(x)
            real_hit += int(((pred == c_org.cpu()) | ~active).all(1).sum())
            real_count += x.shape[0]
            for j in range(n_labels):
                rows = active[:, j]
                if not rows.any():
                    continue
                c_trg = model.edit_labels(c_org, mask, j)
                fake = G(x, model.g_label(c_trg, mask))
                rec = G(fake, model.g_label(c_org, mask))
                pred = judge(fake)
                target = c_trg.cpu()
                hit[j] += float((pred[rows, j] == target[rows, j]).sum())
                count[j] += int(rows.sum())
                ok = ((pred == target) | ~active).all(1)
                all_hit += int(ok[rows].sum())
                all_count += int(rows.sum())
                rec_sum += float((rec - x).abs().flatten(1).mean(1)[rows.to(x.device)].sum())
                rec_n += int(rows.sum())
    per_label = {name: float(hit[j] / count[j]) for j, name in enumerate(model.selected_attrs) if count[j]}
    return {"target_attribute_accuracy": float(hit.sum() / count.sum().clamp(min=1)),
            "all_attributes_accuracy": all_hit / max(all_count, 1),
            "reconstruction_l1": rec_sum / max(rec_n, 1),
            "per_label_accuracy": per_label,
            "judge_accuracy_on_real_images": real_hit / max(real_count, 1),
            "test_images": real_count}


def evaluate_v2(model, loader, domains, seed=0, max_batches=None):
    """Domain accuracy of reference- and latent-guided translations, diversity and cycle L1."""
    import torch

    from ppgan.datasets.starganv2_dataset import predict_domain

    g = torch.Generator().manual_seed(seed + 1)
    hits = {"reference": 0, "latent": 0, "real": 0}
    per_domain = {d: [0, 0] for d in domains}
    div = cyc = 0.0
    n = 0
    model.eval()
    with torch.no_grad():
        for b, batch in enumerate(loader):
            if max_batches is not None and b >= max_batches:
                break
            src, ref = batch["src"].to(model.device), batch["ref"].to(model.device)
            y_src, y_ref = batch["src_cls"].to(model.device), batch["ref_cls"].to(model.device)
            fake_ref = model.reference_synthesis(src, ref, y_ref)
            z1, z2 = (torch.randn(len(src), model.latent_dim, generator=g).to(model.device) for _ in range(2))
            fake_lat, fake_lat2 = model.latent_synthesis(src, y_ref, z1), model.latent_synthesis(src, y_ref, z2)
            rec = model.reference_synthesis(fake_ref, src, y_src)
            target = y_ref.cpu().numpy()
            pred = predict_domain(fake_ref.cpu(), domains)
            hits["reference"] += int((pred == target).sum())
            hits["latent"] += int((predict_domain(fake_lat.cpu(), domains) == target).sum())
            hits["real"] += int((predict_domain(src.cpu(), domains) == y_src.cpu().numpy()).sum())
            for i, d in enumerate(domains):
                rows = target == i
                per_domain[d][0] += int((pred[rows] == i).sum())
                per_domain[d][1] += int(rows.sum())
            div += float((fake_lat - fake_lat2).abs().flatten(1).mean(1).sum())
            cyc += float((rec - src).abs().flatten(1).mean(1).sum())
            n += len(src)
    n = max(n, 1)
    return {"reference_domain_accuracy": hits["reference"] / n, "latent_domain_accuracy": hits["latent"] / n,
            "per_domain_reference_accuracy": {d: h / max(c, 1) for d, (h, c) in per_domain.items()},
            "diversity_l1": div / n, "cycle_l1": cyc / n, "judge_accuracy_on_real_images": hits["real"] / n,
            "test_images": n, "judge": "exact colour measurement (predict_domain)"}


def main_v2(args, cfg, dcfg, device, seed):
    import torch

    from ppgan.datasets.builder import build_dataloader
    from ppgan.datasets.starganv2_dataset import EmbeddedDomainDataset
    from ppgan.engine import checkpoint as ckpt
    from ppgan.models import build_model
    from ppgan.utils.errors import ConfigError

    dataset, loader, _ = build_dataloader(dcfg, is_train=False, seed=seed)
    if not isinstance(dataset, EmbeddedDomainDataset):
        raise ConfigError(f"{args.config}: StarGAN v2 is scored on the embedded domains (EmbeddedDomainDataset) "
                          f"only; dataset.test is {dcfg.get('name')!r}")
    results = {}
    for w in args.weights:
        torch.manual_seed(seed)
        model = build_model(cfg["model"])
        if w != "init":
            names = ckpt.load_weights(model, w, model_cfg=cfg["model"])
            model.fill_missing_ema(names)
        model.setup_runtime(device)
        results[w] = evaluate_v2(model, loader, list(dataset.domains), seed, args.max_batches)
    first = next(iter(results.values()))
    print(f"judge: {first['judge']}; test pairs: {first['test_images']}; judge accuracy on the real sources: "
          f"{first['judge_accuracy_on_real_images']:.3f}")
    domains = list(first["per_domain_reference_accuracy"])
    width = max(len(w) for w in results)
    print(f"{'weights':<{width}}  ref_acc  latent_acc  diversity  cycle_L1   " + "  ".join(domains))
    for w, r in results.items():
        print(f"{w:<{width}}  {r['reference_domain_accuracy']:7.3f}  {r['latent_domain_accuracy']:10.3f}  "
              f"{r['diversity_l1']:9.4f}  {r['cycle_l1']:8.4f}   "
              + "  ".join(f"{r['per_domain_reference_accuracy'][d]:{len(d)}.3f}" for d in domains))
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", required=True, help="the training config (model and dataset.test)")
    p.add_argument("--weights", nargs="+", default=["init"],
                   help="weight / checkpoint files; 'init' = the untrained model (default: init)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--max_batches", type=int, default=None, help="only the first N test batches")
    p.add_argument("--json", default=None, help="also write the results as JSON here")
    args = p.parse_args(argv)
    from ppgan.utils.errors import USER_ERRORS, ConfigError, report

    try:
        import torch

        from ppgan.datasets.builder import build_dataloader
        from ppgan.engine import checkpoint as ckpt
        from ppgan.models import build_model
        from ppgan.utils.config import load_config
        from ppgan.utils.device import resolve_device

        cfg = load_config(args.config)
        model_name = cfg.get("model", {}).get("name")
        if model_name not in ("StarGANModel", "StarGANv2Model"):
            raise ConfigError(f"{args.config}: eval_stargan needs a StarGANModel or StarGANv2Model config, "
                              f"got {model_name!r}")
        dcfg = (cfg.get("dataset") or {}).get("test")
        if not dcfg:
            raise ConfigError(f"{args.config} has no dataset.test")
        device = resolve_device(args.device)
        seed = int(cfg.get("seed", 0))
        if model_name == "StarGANv2Model":
            results = main_v2(args, cfg, dcfg, device, seed)
            if args.json:
                from ppgan.utils.io import atomic_write_text

                atomic_write_text(args.json, json.dumps({"results": results}, indent=2))
            return 0
        dataset, loader, _ = build_dataloader(dcfg, is_train=False, seed=seed)
        data_attrs = getattr(dataset, "selected_attrs", None)
        results, judge_name, judge = {}, None, None
        for w in args.weights:
            torch.manual_seed(seed)
            model = build_model(cfg["model"])
            if w != "init":
                ckpt.load_weights(model, w, model_cfg=cfg["model"])
            model.setup_runtime(device)
            if data_attrs is not None and list(data_attrs) != list(model.selected_attrs):
                raise ConfigError(f"{args.config}: the test data's labels {list(data_attrs)} differ from the "
                                  f"model's selected_attrs {model.selected_attrs}")
            if judge is None or judge_name.startswith("the model's"):
                judge_name, judge = build_judge(dataset, model)
            results[w] = evaluate(model, loader, judge, args.max_batches)
        print(f"judge: {judge_name}")
        first = next(iter(results.values()))
        print(f"test images: {first['test_images']}; judge accuracy on the real test images "
              f"(all labels): {first['judge_accuracy_on_real_images']:.3f}")
        names = list(first["per_label_accuracy"])
        width = max(len(w) for w in results)
        print(f"{'weights':<{width}}  target_acc  all_labels_acc  rec_L1   " + "  ".join(names))
        for w, r in results.items():
            print(f"{w:<{width}}  {r['target_attribute_accuracy']:10.3f}  {r['all_attributes_accuracy']:14.3f}  "
                  f"{r['reconstruction_l1']:.4f}   "
                  + "  ".join(f"{r['per_label_accuracy'][n]:{len(n)}.3f}" for n in names))
        if args.json:
            from ppgan.utils.io import atomic_write_text

            atomic_write_text(args.json, json.dumps({"judge": judge_name, "results": results}, indent=2))
        return 0
    except USER_ERRORS as e:
        return report(e)


if __name__ == "__main__":
    sys.exit(main())

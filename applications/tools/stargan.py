#!/usr/bin/env python
"""Edit face attributes with a StarGAN, or restyle an image into another domain with a StarGAN v2,
trained by this project (`python tools/main.py -c configs/stargan_celeba.yaml`). Which of the two
the weight file holds is read from the model config stored in it."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

EXAMPLES = """StarGAN (v1): --attrs names the target attributes (the model config's selected_attrs): a name
sets it to 1, Name=0 sets it to 0; the others keep what the discriminator's classifier sees in the
input (--base zero: 0). --grid "A,B;C" writes one grid: the input, then one result per set.
StarGAN v2: --target_domain N (latent-guided, style from --seed), or --reference ref.png with
--target_domain the reference's domain; several domains (0,1,2) or references make several
results, or one grid with --grid.

examples:
  python applications/tools/stargan.py --weight_path output_dir/stargan_celeba-.../iter_200000_weight.pth \\
      --input face.png --attrs Blond_Hair,Male --output out.png
  python applications/tools/stargan.py --weight_path W.pth --input face.png \
      --grid "Black_Hair;Blond_Hair;Male=0,Young" --output grid.png
  python applications/tools/stargan.py --weight_path v2_weight.pth --input face.png --reference ref.png \
      --target_domain 1 --output out.png
  python applications/tools/stargan.py --weight_path v2_weight.pth --input cat.png --target_domain 0,1,2 --grid --seed 3
"""


def _split_sets(text):
    """'A,B;C' -> [['A', 'B'], ['C']] (empty sets dropped)."""
    return [[a.strip() for a in part.split(",") if a.strip()] for part in text.split(";") if part.strip()]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    from ppgan.apps import cli_args

    p.add_argument("--input", required=True, help="image to edit")
    p.add_argument("--weight_path", required=True, help="*_weight.pth / *_checkpoint.pth of a StarGANModel or "
                                                        "StarGANv2Model run (or a .pdparams with --config)")
    p.add_argument("--config", default=None, help="training config (default: the one stored in the weight file)")
    p.add_argument("--output", default=None,
                   help="output image file (default: output/StarGAN/<input name>.png, or ..._grid.png)")
    g1 = p.add_argument_group("StarGAN (v1)")
    g1.add_argument("--attrs", default=None, help="target attributes, e.g. Blond_Hair,Male=0")
    g1.add_argument("--grid", nargs="?", const="", default=None, metavar="SETS",
                    help='v1: attribute sets separated by ";" written as one grid, e.g. "Black_Hair;Blond_Hair,Male"; '
                         "v2: no value, one grid of the results")
    g1.add_argument("--image_size", type=int, default=None,
                    help="shorter side the image is translated at (default: the training size; 0: the input's)")
    g1.add_argument("--base", default="auto", choices=["auto", "detect", "zero"],
                    help="unnamed attributes: detect (the discriminator's classifier on the input; auto: when "
                         "the file holds it) or zero")
    g2 = p.add_argument_group("StarGAN v2")
    g2.add_argument("--target_domain", default=None,
                    help="target domain index, or several separated by commas (with --reference: its domain)")
    g2.add_argument("--reference", nargs="+", default=None, help="reference image(s) giving the style")
    g2.add_argument("--seed", type=int, default=0, help="latent code of latent-guided synthesis (default 0)")
    cli_args.add_device_args(p)
    args = p.parse_args(argv)

    def run():
        from ppgan.utils.errors import ConfigError

        cli_args.check_args(args)
        _check_files(args)
        from ppgan.apps.base_predictor import log
        from ppgan.apps.stargan_predictor import StarGANPredictor, StarGANv2Predictor
        from ppgan.utils.image import imread
        from ppgan.weights import load

        img = imread(args.input, mode="unchanged")  # a file that is no image: one line, before the model
        weights = load(args.weight_path)
        kind = _model_kind(weights, args.config)
        if kind == "StarGANv2Model":
            if args.attrs is not None or args.grid:
                raise ConfigError(f"{args.weight_path} holds a StarGAN v2 model: it takes --target_domain "
                                  "[--reference], not attribute names")
            if args.target_domain is None:
                raise ConfigError("a StarGAN v2 model needs --target_domain (with --reference: the reference's domain)")
            refs = [imread(r, mode="unchanged") for r in args.reference or []] or None
            pred = StarGANv2Predictor(weights, config=args.config, device=args.device, half=args.half, verbose=False)
            domains = [pred.check_domain(d.strip()) for d in args.target_domain.split(",") if d.strip()]
            if not domains:
                raise ConfigError(f"--target_domain: no domain in {args.target_domain!r}")
            out = _output_path(args, grid=args.grid is not None)
            if not args.quiet:
                log(f"[ppgan] device: {pred.device}, precision: {pred.precision}")
            pred.run(img, reference=refs, target_domain=domains if len(domains) > 1 else domains[0], output=out,
                     seed=args.seed, grid=args.grid is not None)
        else:
            if args.reference is not None or args.target_domain is not None:
                raise ConfigError(f"{args.weight_path} holds a StarGAN (v1) model: it takes --attrs or --grid, not "
                                  "--reference / --target_domain (StarGAN v2)")
            if (args.attrs is None) == (args.grid is None):
                raise ConfigError("give --attrs (one target) or --grid \"A,B;C\" (several, one grid), not "
                                  + ("both" if args.attrs is not None else "neither"))
            sets = _split_sets(args.grid) if args.grid is not None else \
                [[a.strip() for a in args.attrs.split(",") if a.strip()]]
            if args.grid is not None and not sets:
                raise ConfigError('--grid needs attribute sets separated by ";", e.g. "Black_Hair;Blond_Hair,Male"')
            pred = StarGANPredictor(weights, config=args.config, device=args.device, image_size=args.image_size,
                                    base=args.base, half=args.half, verbose=False)
            pred.parse_targets(sets)  # unknown names: one line, before anything runs
            out = _output_path(args, grid=args.grid is not None)
            if not args.quiet:
                log(f"[ppgan] device: {pred.device}, precision: {pred.precision}")
            pred.run(img, sets if args.grid is not None else sets[0], output=out, grid=args.grid is not None)
        written = pred.last_output
        for path in written if isinstance(written, list) else [written]:
            print(f"output: {path}")
        return 0

    return cli_args.run_main(run)


def _check_files(args):
    """Input, references and weights must exist (one line, before torch is loaded)."""
    from ppgan.utils.errors import ConfigError, PPGANError
    from ppgan.utils.image import is_image_file

    for flag, path in [("--input", args.input)] + [("--reference", r) for r in args.reference or []]:
        if not os.path.exists(path):
            raise PPGANError(f"{flag} not found: {path}")
        if os.path.isdir(path):
            raise PPGANError(f"{flag} {path} is a folder: give one image file")
    if not os.path.exists(args.weight_path):
        raise PPGANError(f"--weight_path not found: {args.weight_path}")
    if args.output is not None and not is_image_file(args.output):
        raise ConfigError(f"--output {args.output}: use an image file name (.png, .jpg, ...)")
    if args.image_size is not None and args.image_size < 0:
        raise ConfigError(f"--image_size must be >= 0 (0: the input's size), got {args.image_size}")


def _model_kind(weights, config):
    """'StarGANModel' or 'StarGANv2Model': the model the config (given or stored) builds."""
    from ppgan.utils.config import load_config
    from ppgan.utils.errors import CheckpointError

    cfg = load_config(config) if config else weights.config
    if isinstance(cfg, dict) and isinstance(cfg.get("model"), dict):
        cfg = cfg["model"]
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{weights.path} carries no model config (not written by this project's training?): "
                              "pass --config with the training config")
    name = cfg.get("name")
    if name not in ("StarGANModel", "StarGANv2Model"):
        raise CheckpointError(f"{weights.path}: its model is {name}, not a StarGANModel or StarGANv2Model")
    return name


def _output_path(args, grid):
    if args.output:
        return args.output
    stem = os.path.splitext(os.path.basename(args.input))[0]
    return os.path.join("output", "StarGAN", f"{stem}_grid.png" if grid else f"{stem}.png")


if __name__ == "__main__":
    sys.exit(main())

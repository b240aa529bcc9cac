#!/usr/bin/env python
"""Convert a PaddleGAN `.pdparams` checkpoint into a PyTorch `.pth` state dict.

With --config the model is built from the config and every net is converted exactly
(Linear layers found by module type, names and shapes checked strictly). Without it, the
file is converted by name alone: BatchNorm buffers renamed, 2-D `*.weight` (Linear) transposed.
The .pdparams file is read with a restricted unpickler: only arrays, never code.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

EXAMPLES = """examples:
  python tools/convert_paddle.py dcgan_mnist.pdparams dcgan_mnist.pth -c configs/dcgan_mnist.yaml
  python tools/convert_paddle.py generator.pdparams generator.pth
  python tools/convert_paddle.py checkpoint.pdparams netG.pth --key netG
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="PaddleGAN .pdparams file")
    p.add_argument("output", help="output .pth file (written atomically)")
    p.add_argument("-c", "--config", default=None, help="ppgan/PaddleGAN config of the model (exact conversion)")
    p.add_argument("--key", default=None, help="convert only this sub-dict of a nested checkpoint (e.g. netG)")
    args = p.parse_args(argv)
    from ppgan.utils.errors import USER_ERRORS, PPGANError, report

    try:
        from ppgan.engine import checkpoint as ckpt
        from ppgan.weights import convert_paddle_state_dict, guess_torch_state_dict, load

        if os.path.abspath(args.input) == os.path.abspath(args.output):
            raise PPGANError("output must differ from input")
        if not os.path.isfile(args.input):
            raise PPGANError(f"input not found: {args.input}")
        weights = load(args.input)
        if weights.format != "pdparams":
            raise PPGANError(f"{args.input} is a {weights.format} file, not a PaddleGAN .pdparams")
        flat = list(weights.states) == ["net"]
        if args.key is not None:
            if flat or args.key not in weights.states:
                raise PPGANError(f"key '{args.key}' not in {args.input}; available: "
                                 f"{', '.join(weights.states) if not flat else 'none (a flat state dict)'}")
            groups = {args.key: weights.states[args.key]}
        else:
            groups = {None: weights.states["net"]} if flat else dict(weights.states)
        out = {}
        if args.config:
            from ppgan.models import build_model
            from ppgan.utils.config import load_config

            model = build_model(load_config(args.config)["model"])
            for name, state in groups.items():
                net_name = name if name in model.nets else (next(iter(model.nets)) if name is None else None)
                if net_name is None:
                    raise PPGANError(f"the config's model has no net '{name}' (nets: {', '.join(model.nets)})")
                out[net_name], _ = convert_paddle_state_dict(model.nets[net_name], state, strict=True)
                print(f"{net_name}: {len(out[net_name])} tensors converted and checked")
            out[ckpt.META_KEY] = {"model": load_config(args.config)["model"], "source": os.path.basename(args.input)}
        else:
            for name, state in groups.items():
                converted, transposed = guess_torch_state_dict(state)
                print(f"{name or 'state dict'}: {len(converted)} tensors; transposed as Linear: "
                      f"{', '.join(transposed) or 'none'} (pass -c CONFIG for an exact, checked conversion)")
                out[name] = converted
            if list(out) == [None]:
                out = out[None]
        ckpt.save(out, args.output)
        print(f"wrote {args.output}")
        return 0
    except USER_ERRORS as e:
        return report(e)


if __name__ == "__main__":
    sys.exit(main())

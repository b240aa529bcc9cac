#!/usr/bin/env python
"""Train or evaluate any model from a config: python tools/main.py -c configs/<x>.yaml [...]

PaddleGAN's tools/main.py command lines run unchanged: several settings after one -o, and its
flags (--no-cuda, --val-interval, --amp, --amp_level, -p, --model_path, ...); see --help."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ppgan.cli import run_train  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_train())

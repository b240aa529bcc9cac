"""Shared test helpers: tiny configs that train in a second on a CPU."""
import contextlib
import copy
import os
import signal
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

torch.set_num_threads(1)  # tiny nets: threading costs more than it gives, and CI has 2 cores

TINY_GAN = {
    "total_iters": 6,
    "output_dir": "output_dir",
    "seed": 0,
    "model": {
        "name": "GANModel",
        "generator": {"name": "DCGenerator", "norm_type": "batch", "input_nz": 8, "input_nc": 1,
                      "output_nc": 1, "ngf": 4, "output_size": 16},
        "discriminator": {"name": "DCDiscriminator", "norm_type": "batch", "ndf": 4, "input_nc": 1,
                          "input_size": 16},
        "gan_criterion": {"name": "GANLoss", "gan_mode": "vanilla"},
    },
    "dataset": {
        "train": {"name": "digits", "num_samples": 40, "size": 16, "batch_size": 8},
        "test": {"name": "digits", "num_samples": 16, "size": 16, "seed": 1, "batch_size": 8},
    },
    "lr_scheduler": {"name": "LinearDecay", "learning_rate": 0.0002, "start_epoch": 1, "decay_epochs": 2,
                     "iters_per_epoch": 1},
    "optimizer": {
        "optimizer_G": {"name": "Adam", "net_names": ["netG"], "beta1": 0.5},
        "optimizer_D": {"name": "Adam", "net_names": ["netD"], "beta1": 0.5},
    },
    "log_config": {"interval": 2, "visual_interval": 3},
    "snapshot_config": {"interval": 2, "max_keep": 10},
}


@pytest.fixture
def tiny_cfg():
    return copy.deepcopy(TINY_GAN)


def write_yaml(path, cfg):
    import yaml

    with open(path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    return str(path)


def run_cli(args, cwd=None, env=None, timeout=300):
    """Run a project script with the test interpreter; returns CompletedProcess (text)."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    full_env.update(env or {})
    return subprocess.run([sys.executable] + list(args), cwd=cwd or ROOT, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="session")
def deoldify_weights(tmp_path_factory):
    """Random-init artistic DeOldify weights saved as a .pth: the real ones cannot be downloaded
    here, so the apps' tests exercise building, loading and the pipeline, not colour quality."""
    from ppgan.models.generators.deoldify import build_model

    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp("deoldify") / "deoldify_art.pth")
    torch.save(build_model("artistic").eval().state_dict(), path)
    return path


@contextlib.contextmanager
def within(seconds):
    """TimeoutError instead of a hang: SIGALRM interrupts a blocking call (the open of a FIFO)."""
    def fire(signum, frame):
        raise TimeoutError(f"still blocked after {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def tiny_gan_cfg(**changes):
    """TINY_GAN for 4 iterations with `changes` ('model__generator__ngf'=8: nested keys by '__')."""
    cfg = copy.deepcopy(TINY_GAN)
    cfg["total_iters"] = 4
    for path, value in changes.items():
        node = cfg
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return cfg


# A tiny CycleGAN model config (1 channel, 4 filters): "a model of another kind" in tests.
TINY_CYCLEGAN = {"name": "CycleGANModel",
                 "generator": {"name": "ResnetGenerator", "input_nc": 1, "output_nc": 1, "ngf": 4, "n_blocks": 1,
                               "norm_type": "instance"},
                 "discriminator": {"name": "NLayerDiscriminator", "ndf": 4, "n_layers": 2, "norm_type": "instance",
                                   "input_nc": 1},
                 "cycle_criterion": {"name": "L1Loss"}, "gan_criterion": {"name": "GANLoss", "gan_mode": "lsgan"}}

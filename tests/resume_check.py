"""A check the model tests share: a run resumed from its midway checkpoint ends equal to an
uninterrupted one (CPU; the engine's resume is bit-exact there)."""
import torch

from ppgan.engine import Trainer
from ppgan.engine import checkpoint as ckpt


def assert_resume_matches(make_cfg, tmp_path, nets=None, total=4, half=2):
    """Train `make_cfg(total)` in one go (run "a") and `make_cfg(half)` resumed to `total` (run
    "b"); assert that every tensor of the `nets` named (default: all of run a's) is equal at
    iteration `total`. Returns the two final checkpoints (a, b) for further checks."""
    Trainer(make_cfg(total), device="cpu", run_dir=str(tmp_path / "a"), quiet=True).train()
    ck = Trainer(make_cfg(half), device="cpu", run_dir=str(tmp_path / "b"), quiet=True).train()
    Trainer(make_cfg(total), device="cpu", resume=ck, quiet=True).train()
    a = ckpt.load(str(tmp_path / "a" / f"iter_{total}_checkpoint.pth"))
    b = ckpt.load(str(tmp_path / "b" / f"iter_{total}_checkpoint.pth"))
    for net in nets or a["nets"]:
        for k in a["nets"][net]:
            assert torch.equal(a["nets"][net][k], b["nets"][net][k]), f"{net}.{k} differs after resume"
    return a, b

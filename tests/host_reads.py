"""A probe for host syncs in training steps: on a GPU every read of a tensor's value on the host
waits for all queued kernels, so a steady-state `train_iter` must make none."""
import os
import sys

import torch

SYNC_METHODS = ("item", "__float__", "__bool__", "__int__", "__index__", "tolist", "cpu", "numpy")
_OPTIM = os.sep + os.path.join("torch", "optim") + os.sep


def record_host_reads(monkeypatch):
    """Patch every Tensor method that copies a value to the host; return the list each call made
    outside torch.optim appends "<method> in <file>:<line>" to (Adam reads its step counters,
    which live on the CPU even when training on a GPU). `monkeypatch` undoes the patches."""
    calls = []

    def wrap(name, fn):
        def counted(self, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if _OPTIM not in caller:
                calls.append(f"{name} in {caller}:{sys._getframe(1).f_lineno}")
            return fn(self, *args, **kwargs)
        return counted

    for name in SYNC_METHODS:
        monkeypatch.setattr(torch.Tensor, name, wrap(name, getattr(torch.Tensor, name)))
    return calls

"""Fixture helpers for the PReNet / DRN / EDVR-deblur tests (tests/fixtures/restoration/<name>.npz,
made by running PaddleGAN's own code: tests/fixtures/restoration/make_r3_fixtures.py)."""
import json
import os

import numpy as np
import torch
from parity import rule_tensor, write_pdparams

from ppgan.weights import load_paddle_state_dict

FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "fixtures", "restoration")


class R3Fixture:
    """meta, manifest (PaddleGAN's state_dict names / shapes / dtypes), inputs and PaddleGAN's outputs."""

    def __init__(self, name):
        data = np.load(os.path.join(FIX, name + ".npz"), allow_pickle=False)
        self.meta = json.loads(str(data["meta_json"]))
        self.manifest = json.loads(str(data["manifest_json"]))
        self.kwargs = self.meta["kwargs"]
        self.inputs = [torch.from_numpy(data["in_" + n]) for n in self.meta["inputs"]]
        self.outputs = [data["out_" + n] for n in self.meta["outputs"]]
        with open(os.path.join(FIX, name + "_manifest.json")) as f:
            self.manifest_file = json.load(f)

    def state(self):
        return {n: rule_tensor(n, s, d) for n, s, d in self.manifest}

    def load_into(self, model, tmp_path):
        """Rule weights -> a .pdparams file -> our converter -> strict load; returns the report."""
        path = write_pdparams(tmp_path / "weights.pdparams", self.state())
        return load_paddle_state_dict(model, path, strict=True)

    def assert_matches(self, results):
        results = results if isinstance(results, (list, tuple)) else [results]
        assert len(results) == len(self.outputs)
        atol, rtol = 10 * self.meta["atol"], 10 * self.meta["rtol"]
        for got, want, name in zip(results, self.outputs, self.meta["outputs"]):
            got = got.detach().cpu().numpy()
            assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
            err = np.abs(got - want)
            assert (err <= atol + rtol * np.abs(want)).all(), f"{name}: max abs err {err.max():.3g} (atol {atol:.3g})"


def shapes(module):
    """{name: shape} of a module's state dict (parameters and buffers)."""
    return {k: list(v.shape) for k, v in module.state_dict().items()}

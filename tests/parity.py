"""Helpers for PaddleGAN parity tests (fixtures in tests/fixtures/parity, made by PaddleGAN).

The fixture weights are not stored; they follow this rule, from the name and shape alone:
    seed = crc32(name) ; z = RandomState(seed).standard_normal(numel) (float64)
    ndim >= 2 -> z / sqrt(prod(shape[1:]))
    1-D '..._variance' / '...running_var' -> 0.5 + 0.5|z| ; 1-D '...weight|gamma|scale' -> 1 + 0.1 z
    otherwise -> 0.1 z ; then float32. Integer buffers are zeros.
"""
import json
import os
import zlib

import numpy as np

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "parity")


def rule_tensor(name, shape, dtype="float32"):
    shape = tuple(int(s) for s in shape)
    if np.dtype(dtype).kind in "iub":
        return np.zeros(shape, dtype=dtype)
    numel = int(np.prod(shape)) if shape else 1
    z = np.random.RandomState(zlib.crc32(name.encode()) & 0xFFFFFFFF).standard_normal(numel)
    if len(shape) >= 2:
        v = z / np.sqrt(float(np.prod(shape[1:])))
    elif len(shape) == 1 and name.endswith(("_variance", "running_var")):
        v = 0.5 + 0.5 * np.abs(z)
    elif len(shape) == 1 and name.endswith(("weight", "gamma", "scale")):
        v = 1.0 + 0.1 * z
    else:
        v = 0.1 * z
    return v.astype(np.float32).reshape(shape)


def spectral_norm_overrides(manifest):
    """u / v of every spectral-normed weight after one power iteration (DeOldify fixtures, whose
    meta `extra.weight_overrides` is "spectral_norm_one_power_iteration"). For each prefix P with
    P+'weight_orig' and P+'spectral_norm.weight_u|v': W = rule(P+'weight_orig') as float64
    reshaped [out, -1], u0 = rule(weight_u); v = W^T u0 / ||.||; u = W v / ||.|| (no eps).
    Raw rule vectors would give sigma = u . (W v) ~ 1e-2 of random sign in eval mode."""
    shapes = {n: s for n, s, _ in manifest}
    tail_u, tail_v = "spectral_norm.weight_u", "spectral_norm.weight_v"
    out = {}
    for name in shapes:
        if not name.endswith(tail_u):
            continue
        p = name[: -len(tail_u)]
        if p + "weight_orig" not in shapes or p + tail_v not in shapes:
            continue
        w = rule_tensor(p + "weight_orig", shapes[p + "weight_orig"]).astype(np.float64)
        w = w.reshape(w.shape[0], -1)
        v = w.T @ rule_tensor(name, shapes[name]).astype(np.float64)
        v /= np.linalg.norm(v)
        u = w @ v
        u /= np.linalg.norm(u)
        out[name] = u.astype(np.float32)
        out[p + tail_v] = v.astype(np.float32)
    return out


class Fixture:
    def __init__(self, name):
        data = np.load(os.path.join(FIXTURES, name + ".npz"), allow_pickle=False)
        self.meta = json.loads(str(data["meta_json"]))
        self.manifest = json.loads(str(data["manifest_json"]))
        import torch  # lazily: the fixture makers import rule_tensor in a Paddle venv without torch

        self.inputs = [torch.from_numpy(data["in_" + n]) for n in self.meta["inputs"]]
        self.outputs = [data["out_" + n] for n in self.meta["outputs"]]
        self.kwargs = self.meta["kwargs"]

    def paddle_state_dict(self):
        state = {n: rule_tensor(n, s, d) for n, s, d in self.manifest}
        if self.meta.get("extra", {}).get("weight_overrides") == "spectral_norm_one_power_iteration":
            state.update(spectral_norm_overrides(self.manifest))
        return state

    def assert_matches(self, result):
        results = result if isinstance(result, (tuple, list)) else [result]
        assert len(results) >= len(self.outputs)
        atol, rtol = 10 * self.meta["atol"], 10 * self.meta["rtol"]
        for got, want, name in zip(results, self.outputs, self.meta["outputs"]):
            got = got.detach().cpu().numpy()
            assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
            err = np.abs(got - want)
            bound = atol + rtol * np.abs(want)
            assert (err <= bound).all(), f"{name}: max abs err {err.max():.3g} (tol {atol:.3g})"


def paddle_state_of(net_class, seed=0):
    """The weights of `net_class()` built under `seed`, as a PaddleGAN .pdparams file holds them:
    {name: ndarray} plus Paddle's name table (nets whose names are PaddleGAN's: S3FD, BlazeFace)."""
    import torch

    torch.manual_seed(seed)
    net = net_class()
    state = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    state["StructuredToParameterName@@"] = {k: f"p_{i}" for i, k in enumerate(state)}
    return state


def write_pdparams(path, state):
    """Pickle `state` (protocol 2, as paddle.save) to `path`; returns the path as str."""
    import pickle

    with open(path, "wb") as f:
        pickle.dump(state, f, protocol=2)
    return str(path)

"""FID / KID maths on known Gaussians and samples, the Inception metrics with seeded weights
(identical sets ~0, a shifted set more, the real-feature cache), tools/fid.py, and LPIPS."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from ppgan.metrics import build_metric, frechet_distance, kid
from ppgan.metrics.fid import (INCEPTION_FILENAME, build_inception, feature_stats, folder_features,
                               frechet_distance_features, inception_features, polynomial_kernel)
from ppgan.utils.errors import CheckpointError, ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FID_TOOL = os.path.join(ROOT, "tools", "fid.py")


# ---------------------------------------------------------------- Frechet distance

def _rotation(d, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


@pytest.mark.parametrize("d,seed", [(1, 0), (4, 1), (16, 2), (40, 3)])
@pytest.mark.parametrize("commuting", [False, True])
def test_frechet_distance_closed_form(d, seed, commuting):
    """Diagonal (or commuting: a shared eigenbasis) covariances: the matrix square root is the
    elementwise one, so FD = |mu1 - mu2|^2 + sum(a + b - 2 sqrt(a b))."""
    rng = np.random.default_rng(seed)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d) * 2
    a, b = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    expect = np.sum((mu1 - mu2) ** 2) + np.sum(a + b - 2 * np.sqrt(a * b))
    s1, s2 = np.diag(a), np.diag(b)
    if commuting:
        q = _rotation(d, seed + 10)
        s1, s2 = q @ s1 @ q.T, q @ s2 @ q.T
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expect, rel=1e-7, abs=1e-8)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0, abs=1e-7)


@pytest.mark.parametrize("n1,n2,d", [(30, 25, 8), (10, 12, 32), (200, 150, 16), (5, 5, 64)])
def test_features_path_equals_sqrtm(n1, n2, d):
    """The sqrtm-free path the metrics use gives scipy-sqrtm's value, with more and with fewer
    samples than dimensions (singular covariances)."""
    rng = np.random.default_rng(n1 + d)
    f1 = rng.normal(size=(n1, d))
    f2 = rng.normal(size=(n2, d)) @ rng.normal(size=(d, d)) * 0.5 + 0.3
    ref = frechet_distance(*feature_stats(f1), *feature_stats(f2))
    assert frechet_distance_features(f1, f2) == pytest.approx(ref, rel=1e-5, abs=1e-6)
    assert frechet_distance_features(f1, f1) == pytest.approx(0, abs=1e-8)


def test_frechet_distance_near_singular_and_bad_shapes():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(3, 10))  # rank-2 covariance in 10-D
    mu, s = feature_stats(f)
    assert np.isfinite(frechet_distance(mu, s, mu + 1, s))
    assert frechet_distance(mu, s, mu + 1, s) == pytest.approx(10, abs=1e-2)
    for bad in [(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4)),
                (np.zeros(3), np.eye(3), np.zeros(3), np.eye(2)),
                (np.zeros(3), np.eye(4), np.zeros(3), np.eye(4))]:
        with pytest.raises(ConfigError):
            frechet_distance(*bad)
    with pytest.raises(ConfigError, match="at least 2"):
        frechet_distance_features(f[:1], f)


# ---------------------------------------------------------------- KID

def _mmd2_direct(x, y):
    """Unbiased MMD^2 with k(a, b) = (a.b/d + 1)^3, written out as sums over pairs."""
    m, d = len(x), x.shape[1]

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


@pytest.mark.parametrize("n,d,shift", [(6, 3, 0.0), (9, 5, 0.5), (12, 2, 2.0)])
def test_kid_matches_direct_computation(n, d, shift):
    rng = np.random.default_rng(n)
    x, y = rng.normal(size=(n, d)), rng.normal(size=(n, d)) + shift
    # one subset holding every sample: the full-set estimator (it does not depend on the order)
    assert kid(x, y, subsets=1, subset_size=n) == pytest.approx(_mmd2_direct(x, y), rel=1e-10, abs=1e-12)
    # several smaller subsets: the mean of the direct estimates on the same draws
    m, subsets, seed = n // 2, 4, 7
    draw = np.random.default_rng(seed)
    expect = np.mean([_mmd2_direct(x[draw.choice(n, m, replace=False)], y[draw.choice(n, m, replace=False)])
                      for _ in range(subsets)])
    assert kid(x, y, subsets=subsets, subset_size=m, seed=seed) == pytest.approx(expect, rel=1e-10, abs=1e-12)


def test_kid_same_distribution_near_zero_shifted_larger():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    same = kid(x, y, subsets=20, subset_size=200)
    assert abs(same) < 0.02
    assert kid(x, y + 0.5, subsets=20, subset_size=200) > 10 * max(abs(same), 1e-3)
    assert kid(x, y + 1.0, subsets=20, subset_size=200) > kid(x, y + 0.5, subsets=20, subset_size=200)
    np.testing.assert_allclose(polynomial_kernel(x[:3], y[:2]), (x[:3] @ y[:2].T / 8 + 1) ** 3)


@pytest.mark.parametrize("args", [dict(subsets=0), dict(subset_size=1), dict(y=np.zeros((5, 3)))])
def test_kid_rejects_bad_arguments(args):
    x = np.zeros((5, 4))
    y = args.pop("y", x)
    with pytest.raises(ConfigError):
        kid(x, y, **{"subsets": 2, "subset_size": 4, **args})


# ---------------------------------------------------------------- the Inception metrics

def _photo_batch(n, size=32, shift=0.0):
    """n crops of skimage's astronaut in [-1, 1], [n, 3, size, size], brightness-shifted by `shift`."""
    img = data.astronaut().astype(np.float32) / 127.5 - 1
    crops = [cv2.resize(img[40 * i:40 * i + 200, 30 * i:30 * i + 200], (size, size), interpolation=cv2.INTER_AREA)
             for i in range(n)]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).add(shift).clamp(-1, 1)


@pytest.fixture(scope="module")
def net():
    return build_inception("deterministic")[0]


def test_inception_shapes_and_weight_file(tmp_path, net):
    x = (_photo_batch(2) + 1) / 2
    f = inception_features(net, x)
    assert f.shape == (2, 2048) and np.isfinite(f).all() and f.std() > 0
    # the same weights through a file (torchvision / pytorch-fid key names) give the same features
    path = tmp_path / INCEPTION_FILENAME
    state = dict(net.state_dict(), **{"fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)})
    torch.save(state, path)  # pytorch-fid's file also holds the 1008-class classifier (not used)
    assert "Mixed_7c.branch_pool.bn.running_var" in state
    loaded, ident = build_inception(str(path))
    assert ident.startswith("sha256:")
    np.testing.assert_allclose(inception_features(loaded, x), f, rtol=1e-5, atol=1e-6)
    # PaddleGAN's InceptionV3.pdparams: the same names, Paddle's BatchNorm buffers
    import pickle

    paddle_state = {k.replace("running_mean", "_mean").replace("running_var", "_variance"): v.numpy()
                    for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    pd = tmp_path / "InceptionV3.pdparams"
    pd.write_bytes(pickle.dumps(paddle_state, protocol=2))
    np.testing.assert_allclose(inception_features(build_inception(str(pd))[0], x), f, rtol=1e-5, atol=1e-6)
    # gray input is repeated over RGB
    gray = x[:, :1]
    np.testing.assert_allclose(inception_features(net, gray), inception_features(net, gray.expand(-1, 3, -1, -1)))


def test_inception_weight_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("PPGAN_HOME", str(tmp_path / "home"))
    with pytest.raises(CheckpointError) as e:
        build_inception(None)
    msg = str(e.value)
    assert INCEPTION_FILENAME in msg and "--weight_path" in msg and "ppgan download" in msg and "\n" not in msg
    with pytest.raises(CheckpointError, match="no file"):
        build_inception(str(tmp_path / "nope.pth"))
    bad = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointError, match="FIDInceptionV3"):
        build_inception(str(bad))


@pytest.mark.parametrize("name", ["FID", "KID"])
def test_metric_identical_zero_shifted_more(name):
    extra = {"subsets": 3, "subset_size": 4} if name == "KID" else {}
    metric = build_metric({"name": name, "weight_path": "deterministic", "device": "cpu", "batch_size": 4, **extra})
    real = _photo_batch(5)
    metric.update(real, real)
    same = metric.accumulate()
    metric.reset()
    metric.update(_photo_batch(5, shift=0.4), real)
    shifted = metric.accumulate()
    metric.reset()
    metric.update(_photo_batch(5, shift=0.8), real)
    more = metric.accumulate()
    # FID of a set with itself is 0 up to round-off; KID draws the two sides' subsets
    # independently, so it is only near 0 (an unbiased estimate)
    assert abs(same) < (1e-6 * max(1, shifted) if name == "FID" else 0.1 * shifted)
    assert shifted > 0 and more > shifted
    assert metric.name() == name


def test_metric_rejects_bad_input_and_config():
    with pytest.raises(ConfigError, match="dims"):
        build_metric({"name": "FID", "weight_path": "deterministic", "dims": 768})
    with pytest.raises(ConfigError, match="subsets"):
        build_metric({"name": "KID", "weight_path": "deterministic", "subsets": 0})
    metric = build_metric({"name": "FID", "weight_path": "deterministic", "device": "cpu"})
    for bad in [torch.zeros(2, 4, 8, 8), torch.zeros(8, 8), np.zeros((2, 3, 8, 8))]:
        with pytest.raises(ConfigError, match="expects image tensors"):
            metric.update(bad)
    metric.update(_photo_batch(1), _photo_batch(1))
    with pytest.raises(ConfigError, match="at least 2"):
        metric.accumulate()


def _write_folder(folder, batch):
    os.makedirs(folder, exist_ok=True)
    for i, img in enumerate(batch):
        rgb = ((img.permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
        cv2.imwrite(os.path.join(folder, f"{i:03d}.png"), rgb[..., ::-1])


def test_real_dir_features_cached(tmp_path, monkeypatch, net):
    monkeypatch.setenv("PPGAN_HOME", str(tmp_path / "home"))
    real = tmp_path / "real"
    _write_folder(real, _photo_batch(4))
    f1, hit1 = folder_features(str(real), net, "deterministic-v1", batch_size=3)
    f2, hit2 = folder_features(str(real), net, "deterministic-v1", batch_size=3)
    assert (hit1, hit2) == (False, True)
    np.testing.assert_array_equal(f1, f2)
    assert len(os.listdir(tmp_path / "home" / "fid_stats")) == 1
    # other weights, or a changed file, miss the cache
    assert folder_features(str(real), net, "sha256:other", batch_size=3)[1] is False
    _write_folder(real, _photo_batch(4, shift=0.1)[:1])
    f3, hit3 = folder_features(str(real), net, "deterministic-v1", batch_size=3)
    assert hit3 is False and not np.allclose(f3[0], f1[0]) and np.allclose(f3[1:], f1[1:])
    # the engine metric with real_dir uses the cached real features
    metric = build_metric({"name": "FID", "weight_path": "deterministic", "device": "cpu",
                           "real_dir": str(real), "min_max": [-1, 1]})
    batch = torch.from_numpy(np.stack([cv2.imread(os.path.join(real, f))[..., ::-1] for f in sorted(os.listdir(real))]))
    metric.update(batch.permute(0, 3, 1, 2).float() / 127.5 - 1)
    assert metric.accumulate() == pytest.approx(0, abs=1e-6)


def test_real_dir_errors(tmp_path):
    with pytest.raises(Exception, match="does not exist"):
        build_metric({"name": "FID", "weight_path": "deterministic", "real_dir": str(tmp_path / "none")})
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="no image files"):
        build_metric({"name": "FID", "weight_path": "deterministic", "real_dir": str(tmp_path / "empty")})



def test_fid_kid_in_training_validation(tiny_cfg, tmp_path, monkeypatch):
    """validate.metrics FID and KID in a training run (seeded Inception): finite values logged at
    every validation; the real test batches' features are computed once and reused."""
    import json

    from ppgan.engine import Trainer
    from ppgan.metrics import fid as fid_module

    calls = []
    real_features = fid_module.inception_features
    monkeypatch.setattr(fid_module, "inception_features",
                        lambda net, x, bs=50: calls.append(len(x)) or real_features(net, x, bs))
    tiny_cfg["total_iters"] = 4
    tiny_cfg["dataset"]["test"].update(num_samples=4, batch_size=4)
    tiny_cfg["validate"] = {"interval": 2, "metrics": {
        "fid": {"name": "FID", "weight_path": "deterministic", "device": "cpu"},
        "kid": {"name": "KID", "weight_path": "deterministic", "device": "cpu", "subsets": 2, "subset_size": 4}}}
    tr = Trainer(tiny_cfg, device="cpu", run_dir=str(tmp_path), quiet=True)
    assert tr.metrics["fid"].net is tr.metrics["kid"].net  # one Inception for both
    tr.train()
    evals = [json.loads(line) for line in open(tmp_path / "log.jsonl") if '"eval"' in line]
    assert [e["iter"] for e in evals] == [2, 4]
    assert all(np.isfinite(e["eval"]["fid"]) and e["eval"]["fid"] > 0 and np.isfinite(e["eval"]["kid"])
               for e in evals)
    # 2 validations x 2 metrics x fake batch, plus the real batch once per metric
    assert calls == [4] * 6

# ---------------------------------------------------------------- tools/fid.py

def _run_tool(args, home, timeout=120):
    env = dict(os.environ, PPGAN_HOME=str(home), OMP_NUM_THREADS="1")
    env.pop("PPGAN_DEBUG", None)
    return subprocess.run([sys.executable, FID_TOOL, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


@pytest.mark.slow
def test_fid_tool(tmp_path):
    real, fake = tmp_path / "real", tmp_path / "fake"
    _write_folder(real, _photo_batch(2))
    _write_folder(fake, _photo_batch(2, shift=0.5))
    args = [str(real), str(fake), "--weight_path", "deterministic", "--kid", "--subsets", "2", "--batch_size", "2"]
    first = _run_tool(args, tmp_path / "home")
    assert first.returncode == 0, first.stderr
    second = _run_tool(args, tmp_path / "home")
    assert second.returncode == 0, second.stderr
    assert "(cached features)" not in first.stdout and "(cached features)" in second.stdout
    fid = [ln for ln in first.stdout.splitlines() if ln.startswith("FID:")]
    assert fid and float(fid[0].split()[1]) > 0
    assert [ln for ln in second.stdout.splitlines() if ln.startswith(("FID:", "KID:"))] == \
        [ln for ln in first.stdout.splitlines() if ln.startswith(("FID:", "KID:"))]


def _tool_main():
    import importlib.util

    spec = importlib.util.spec_from_file_location("fid_tool", FID_TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


@pytest.mark.parametrize("case", ["missing_dir", "empty_dir", "no_weights", "bad_batch", "corrupt_image",
                                  "bad_device", "one_image"])
def test_fid_tool_errors(tmp_path, monkeypatch, capsys, case):
    """Bad inputs: exit 2 with one `error:` line (in-process; the subprocess case is below)."""
    monkeypatch.setenv("PPGAN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PPGAN_DEBUG", raising=False)
    real, fake = tmp_path / "real", tmp_path / "fake"
    _write_folder(real, _photo_batch(2))
    _write_folder(fake, _photo_batch(2))
    extra = ["--weight_path", "deterministic", "--no_cache"]
    if case == "missing_dir":
        fake = tmp_path / "nope"
    elif case == "empty_dir":
        fake = tmp_path / "empty"
        fake.mkdir()
    elif case == "no_weights":
        extra = []
    elif case == "bad_batch":
        extra += ["--batch_size", "0"]
    elif case == "corrupt_image":
        (fake / "zz.png").write_bytes(b"not a png at all")
    elif case == "bad_device":
        extra += ["--device", "tpu"]
    elif case == "one_image":
        os.remove(fake / "001.png")
    rc = _tool_main()([str(real), str(fake), *extra])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error:"), lines
    if case == "no_weights":
        assert INCEPTION_FILENAME in lines[0] and "--weight_path" in lines[0]


def test_fid_tool_error_subprocess(tmp_path):
    (tmp_path / "real").mkdir()
    r = _run_tool([str(tmp_path / "real"), str(tmp_path / "fake")], tmp_path / "home", timeout=60)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert "Traceback" not in r.stderr


# ---------------------------------------------------------------- LPIPS

from ppgan.metrics import LPIPS  # noqa: E402


@pytest.fixture(scope="module", params=["vgg", "alex"])
def lpips_net(request):
    return LPIPS(request.param, weight_path="deterministic")


def test_lpips_identical_zero_symmetric_grows(lpips_net):
    x = _photo_batch(2, size=48)
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(x.shape, generator=gen)
    assert torch.equal(lpips_net(x, x), torch.zeros(2, 1, 1, 1))
    y = (x + 0.2 * noise).clamp(-1, 1)
    torch.testing.assert_close(lpips_net(x, y), lpips_net(y, x))
    d = [lpips_net(x, (x + s * noise).clamp(-1, 1)).flatten() for s in (0.05, 0.15, 0.4)]
    assert bool((d[0] > 0).all() and (d[1] > d[0]).all() and (d[2] > d[1]).all())
    blur = [torch.from_numpy(np.stack([cv2.GaussianBlur(im, (0, 0), s) for im in x.permute(0, 2, 3, 1).numpy()]))
            .permute(0, 3, 1, 2) for s in (0.7, 2.0)]
    assert bool((lpips_net(x, blur[1]) > lpips_net(x, blur[0])).all())
    # [0, 1] input with normalize=True is the same distance
    torch.testing.assert_close(lpips_net((x + 1) / 2, (y + 1) / 2, normalize=True), lpips_net(x, y))
    # gradients reach the input (fitting uses it as a loss)
    z = y.clone().requires_grad_(True)
    lpips_net(x, z).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    with pytest.raises(ConfigError):
        lpips_net(x, x[:, :, :16])


@pytest.mark.parametrize("layout", ["lpips", "paddle"])
def test_lpips_weight_files(tmp_path, layout):
    ref = LPIPS("alex", weight_path="deterministic")
    backbone = {f"features.{k}": v for k, v in ref.net.features.state_dict().items()}
    backbone["classifier.1.weight"] = torch.zeros(4, 4)  # a full torchvision file: the extra entries are skipped
    torch.save(backbone, tmp_path / "alexnet.pth")
    lins = {k: v for k, v in ref.state_dict().items() if k.startswith("lin")}
    if layout == "paddle":  # PaddleGAN's lins list: '<k>.model.1.weight'
        lins = {k[3:]: v for k, v in lins.items()}
    torch.save(lins, tmp_path / "lins.pth")
    loaded = LPIPS("alex", weight_path=str(tmp_path / "lins.pth"), backbone_path=str(tmp_path / "alexnet.pth"))
    x = _photo_batch(2, size=40)
    y = x.flip(-1)
    torch.testing.assert_close(loaded(x, y), ref(x, y))


def test_lpips_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("PPGAN_HOME", str(tmp_path / "home"))
    with pytest.raises(CheckpointError) as e:
        LPIPS("vgg")
    assert "vgg16-397923af.pth" in str(e.value) and "--weight_path" in str(e.value)
    for bad in [dict(net="squeeze"), dict(version="0.0")]:
        with pytest.raises(ConfigError):
            LPIPS(weight_path="deterministic", **bad)
    ref = LPIPS("alex", weight_path="deterministic")
    torch.save({f"features.{k}": v for k, v in ref.net.features.state_dict().items()}, tmp_path / "bb.pth")
    torch.save({"lin0.model.1.weight": torch.zeros(1, 3, 1, 1)}, tmp_path / "lins.pth")
    with pytest.raises(CheckpointError, match="does not fit"):
        LPIPS("alex", weight_path=str(tmp_path / "lins.pth"), backbone_path=str(tmp_path / "bb.pth"))
    torch.save({"something.else": torch.zeros(1)}, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match="unexpected entry"):
        LPIPS("alex", weight_path=str(tmp_path / "odd.pth"), backbone_path=str(tmp_path / "bb.pth"))


def test_lpips_metric_numpy_and_tensor_input():
    metric = build_metric({"name": "LPIPSMetric", "net": "alex", "weight_path": "deterministic", "device": "cpu"})
    x = _photo_batch(2, size=40)
    imgs = [((im.permute(1, 2, 0).numpy() + 1) * 127.5) for im in x]
    metric.update(imgs, imgs)
    assert metric.accumulate() == pytest.approx(0, abs=1e-7)
    metric.reset()
    metric.update(x, x.flip(-1))
    from_tensor = metric.accumulate()
    metric.reset()
    metric.update(imgs, [im[:, ::-1] for im in imgs])
    assert metric.accumulate() == pytest.approx(from_tensor, rel=1e-4)
    assert metric.name() == "LPIPS"
    with pytest.raises(ConfigError):
        metric.update([np.zeros((8, 8))], [np.zeros((8, 8))])

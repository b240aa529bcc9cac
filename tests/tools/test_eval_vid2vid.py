"""tools/eval_vid2vid.py: the warping error, L1 and PSNR against hand computations and the true
clips' flow, the CLI's figures/video/grid on tiny random-init models, its user errors as one
`error:` line, and the per-frame pix2pix baseline config (configs/pix2pix_edges_frames_demo.yaml)
building and training one step on the same frames."""
import json
import os
import sys

import numpy as np
import pytest
import torch

from ppgan.datasets.vid2vid_dataset import EmbeddedVideoEdgesDataset
from ppgan.video import probe_video
from ppgan.weights.load import META_KEY

from conftest import ROOT, write_yaml

sys.path.insert(0, os.path.join(ROOT, "tools"))
import eval_vid2vid as ev  # noqa: E402

BASELINE = os.path.join(ROOT, "configs", "pix2pix_edges_frames_demo.yaml")
V2V_GEN = {"name": "Vid2VidGenerator", "ngf": 4, "n_blocks": 2, "n_downsampling": 2}
P2P_GEN = {"name": "UnetGenerator", "input_nc": 1, "output_nc": 3, "num_downs": 5, "ngf": 4}


def test_warping_error_by_hand():
    rng = np.random.default_rng(0)
    t, h, w = 3, 5, 6
    base = rng.random((1, h, w + t)).astype(np.float32)
    # frame t+1 at x shows frame t at x + 1: flow (+1, 0); the last column has no source
    frames = torch.from_numpy(np.stack([base[:, :, k:k + w] for k in range(t)]))
    flow = torch.zeros(t - 1, 2, h, w)
    flow[:, 0] = 1.0
    assert ev.warping_error(frames, flow) < 1e-6
    noise = rng.random((t, 1, h, w)).astype(np.float32) * 0.2
    noisy = frames + torch.from_numpy(noise)
    want = np.mean([np.abs(noise[k + 1, 0, :, :w - 1] - noise[k, 0, :, 1:]).mean() for k in range(t - 1)])
    assert ev.warping_error(noisy, flow) == pytest.approx(want, rel=1e-5)
    # the dataset's mask gives the same as the in-frame test
    _, mask = ev.warp_next(noisy, flow)
    assert mask[:, :, :, : w - 1].min() == 1 and mask[:, :, :, w - 1].max() == 0
    assert ev.warping_error(noisy, flow, mask) == pytest.approx(want, rel=1e-5)


def test_l1_and_psnr_by_hand():
    a = torch.zeros(2, 3, 4, 4)
    b = a.clone()
    b[0] += 0.1
    b[1] += 0.2
    assert ev.l1_error(b, a) == pytest.approx(0.15)
    assert ev.psnr(b, a) == pytest.approx((20 + 10 * np.log10(1 / 0.04)) / 2)


def test_true_clips_are_consistent_and_shuffled_ones_are_not():
    ds = EmbeddedVideoEdgesDataset(split="test", size=32, n_frames=4, clips_per_photo=1)
    s = ds[0]
    b = (s["B"] + 1) / 2
    floor = ev.warping_error(b, s["flow"], s["flow_mask"])
    shuffled = ev.warping_error(b[[0, 2, 1, 3]], s["flow"], s["flow_mask"])
    assert floor < 0.03 and shuffled > 2 * floor


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from ppgan.models.generators.builder import build_generator

    d = tmp_path_factory.mktemp("eval")
    torch.manual_seed(0)
    out = {}
    for name, model, gen in (("v2v", "Vid2VidModel", V2V_GEN), ("p2p", "Pix2PixModel", P2P_GEN)):
        out[name] = str(d / f"{name}.pth")
        torch.save({"netG": build_generator(gen).state_dict(), META_KEY: {"model": {"name": model, "generator": gen}}},
                   out[name])
    cfg = {"total_iters": 1, "model": {"name": "Vid2VidModel", "generator": V2V_GEN},
           "dataset": {"test": {"name": "EmbeddedVideoEdgesDataset", "split": "test", "size": 32, "n_frames": 3,
                                "clips_per_photo": 1}}}
    out["cfg"] = write_yaml(d / "cfg.yaml", cfg)
    out["dir"] = d
    return out


def test_cli_scores_both_models_and_writes_video_and_grid(files, capsys):
    d = files["dir"]
    assert ev.main(["--vid2vid", files["v2v"], "--pix2pix", files["p2p"], "-c", files["cfg"], "--n_frames", "4",
                    "--json", str(d / "e.json"), "--video", str(d / "e.mp4"), "--grid", str(d / "e.png")]) == 0
    res = json.loads((d / "e.json").read_text())
    assert res["clips"] == 2 and res["frames"] == 8
    for m in ("vid2vid", "pix2pix"):
        assert set(res[m]) == {"l1", "psnr", "warp"} and all(np.isfinite(v) for v in res[m].values())
        assert res[m]["warp"] > res["truth"]["warp"]  # random nets flicker more than the true frames
    assert probe_video(str(d / "e.mp4")).n_frames == 4 and os.path.getsize(d / "e.png") > 0
    assert "vid2vid" in capsys.readouterr().out


def test_cli_user_errors_are_one_line(files, capsys):
    cases = [([], "--vid2vid and/or --pix2pix"),
             (["--vid2vid", str(files["dir"] / "missing.pth")], "not found"),
             (["--pix2pix", files["v2v"]], "not a Pix2PixModel"),
             (["--vid2vid", files["v2v"], "--clips", "0"], "--clips")]
    for argv, msg in cases:
        assert ev.main(argv + ["-c", files["cfg"]]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and msg in err[0]


def test_baseline_config_builds_and_trains_on_the_same_frames():
    from ppgan.datasets.builder import build_dataset
    from ppgan.models import build_model
    from ppgan.solver import build_optimizer
    from ppgan.utils.config import load_config

    cfg = load_config(BASELINE)
    test = build_dataset({**cfg["dataset"]["test"], "size": 32, "clips_per_photo": 1})
    clips = EmbeddedVideoEdgesDataset(split="test", size=32, n_frames=cfg["dataset"]["test"]["n_frames"],
                                      clips_per_photo=1)
    assert len(test) == len(clips) * clips.n_frames
    assert torch.equal(test[clips.n_frames + 2]["B"], clips[1]["B"][2])  # frame 2 of held-out clip 1
    assert set(build_model(cfg["model"]).nets) == {"netG", "netD"}  # the config as written builds
    cfg["model"]["generator"]["ngf"] = cfg["model"]["discriminator"]["ndf"] = 4  # its nets, narrower, train
    torch.manual_seed(0)
    model = build_model(cfg["model"])
    train = build_dataset({**cfg["dataset"]["train"], "num_samples": 2, "photos": ["astronaut"]})
    batch = {k: torch.stack([train[i][k] for i in range(2)]) for k in ("A", "B")}
    opts = {}
    for name, o in cfg["optimizer"].items():
        opts[name] = build_optimizer(o, [p for n in o["net_names"] for p in model.nets[n].parameters()], 2e-4)
        opts[name].ppgan_net_names = tuple(o["net_names"])
    before = [p.detach().clone() for p in model.nets["netG"].parameters()]
    model.setup_input(batch)
    losses = model.train_iter(opts)
    assert set(losses) == {"D_fake_loss", "D_real_loss", "G_adv_loss", "G_L1_loss"}
    assert all(torch.isfinite(v) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.nets["netG"].parameters()))

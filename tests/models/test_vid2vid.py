"""vid2vid: the sequential generator's maths (blend of warped and hallucinated frames, streaming ==
whole clip), the discriminator's features, one training step, save/load, --evaluate-only, resume
through the Trainer, the demo config and bad configs."""
import os

import pytest
import torch

from ppgan.engine import Trainer
from ppgan.models import build_model
from ppgan.models.discriminators.discriminator_vid2vid import Vid2VidDiscriminator
from ppgan.models.generators.vid2vid import Vid2VidGenerator
from ppgan.models.vid2vid_model import LOSS_KEYS, Vid2VidModel, masked_l1, windows
from ppgan.modules.flow import flow_warp
from ppgan.utils.errors import ConfigError

from host_reads import record_host_reads
from resume_check import assert_resume_matches

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def model_cfg(n_frames_D=2, **params):
    return {"name": "Vid2VidModel",
            "generator": {"name": "Vid2VidGenerator", "source_nc": 1, "ngf": 4, "n_downsampling": 1, "n_blocks": 1},
            "discriminator": {"name": "Vid2VidDiscriminator", "input_nc": 4, "ndf": 4, "n_layers": 2, "num_D": 2},
            "temporal_discriminator": {"name": "Vid2VidDiscriminator", "ndf": 4, "n_layers": 2, "num_D": 1,
                                       "input_nc": 3 * n_frames_D + 2 * (n_frames_D - 1)},
            "gan_criterion": {"name": "GANLoss", "gan_mode": "lsgan"},
            "params": {"n_frames_D": n_frames_D, **params}}


def optimizers_for(model, lr=0.01):
    out = {}
    for name, nets in (("optimG", ["netG"]), ("optimD", ["netD", "netD_T"])):
        opt = torch.optim.Adam([p for n in nets for p in model.nets[n].parameters()], lr=lr, betas=(0.5, 0.999))
        opt.ppgan_net_names = tuple(nets)
        out[name] = opt
    return out


def clip_batch(n=2, t=3, size=8, flow=True):
    g = torch.Generator().manual_seed(0)
    batch = {"A": torch.rand(n, t, 1, size, size, generator=g) * 2 - 1,
             "B": torch.rand(n, t, 3, size, size, generator=g) * 2 - 1}
    if flow:
        batch["flow"] = torch.randn(n, t - 1, 2, size, size, generator=g)
        batch["flow_mask"] = (torch.rand(n, t - 1, 1, size, size, generator=g) > 0.2).float()
    return batch


def flat(net):
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


# ---- nets -------------------------------------------------------------------------------------------
def test_generator_blends_the_warped_previous_frame_and_the_hallucinated_one():
    torch.manual_seed(0)
    g = Vid2VidGenerator(ngf=4, n_downsampling=1, n_blocks=1, n_frames_G=3).eval()
    src = torch.rand(2, 3, 1, 8, 8) * 2 - 1
    prev = torch.rand(2, 2, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        g.model_final_flow[1].bias.copy_(torch.tensor([1.5, -0.5]))  # a flow far from zero
        frame, raw, flow, mask = g(src, prev)
    assert flow.shape == (2, 2, 8, 8) and mask.shape == (2, 1, 8, 8) and raw.shape == frame.shape == (2, 3, 8, 8)
    assert 0 < float(mask.min()) and float(mask.max()) < 1
    warped = flow_warp(prev[:, -1], flow.permute(0, 2, 3, 1), padding_mode="border")  # the LAST previous frame
    torch.testing.assert_close(frame, mask * warped + (1 - mask) * raw)
    assert (frame - raw).abs().max() > 1e-3  # the warped part counts

    # first frame: no previous frames -> the hallucinated frame alone, no flow or mask
    first, raw0, flow0, mask0 = g(src)
    assert flow0 is None and mask0 is None and torch.equal(first, raw0)


def test_streaming_steps_equal_the_whole_clip():
    torch.manual_seed(1)
    g = Vid2VidGenerator(ngf=4, n_downsampling=1, n_blocks=2, n_frames_G=3).eval()
    clip = torch.rand(2, 5, 1, 8, 8) * 2 - 1
    with torch.no_grad():
        out = g.generate(clip)
        state, frames = None, []
        for t in range(5):
            frame, state = g.step(clip[:, t], state)
            frames.append(frame)
    assert out["frames"].shape == (2, 5, 3, 8, 8) and out["flows"].shape == (2, 4, 2, 8, 8)
    assert out["masks"].shape == (2, 4, 1, 8, 8)
    torch.testing.assert_close(torch.stack(frames, 1), out["frames"])
    assert state["sources"].shape == (2, 3, 1, 8, 8) and state["frames"].shape == (2, 2, 3, 8, 8)
    torch.testing.assert_close(state["frames"][:, -1], out["frames"][:, -1])
    # history at the start repeats the oldest entry: frame 1 sees sources (s0, s0, s1) and frames (x0, x0)
    with torch.no_grad():
        f1, *_ = g(torch.stack([clip[:, 0], clip[:, 0], clip[:, 1]], 1), out["frames"][:, :1].repeat(1, 2, 1, 1, 1))
    torch.testing.assert_close(f1, out["frames"][:, 1])


def test_discriminator_returns_features_per_scale():
    d = Vid2VidDiscriminator(5, ndf=4, n_layers=2, num_D=2)
    out = d(torch.rand(3, 5, 16, 16))
    assert len(out) == 2 and all(len(s) == 4 for s in out)  # 2 stride-2 blocks, 1 stride-1, the logits
    assert out[0][-1].shape[:2] == (3, 1) and out[1][-1].shape[-1] < out[0][-1].shape[-1]
    with pytest.raises(ConfigError):
        d(torch.rand(3, 4, 16, 16))


def test_windows_and_masked_l1_by_hand():
    x = torch.arange(2 * 4 * 1 * 1 * 1, dtype=torch.float32).reshape(2, 4, 1, 1, 1)
    w = windows(x, 3)  # clips [0,1,2,3], [4,5,6,7] -> windows (0,1,2), (1,2,3), (4,5,6), (5,6,7)
    assert w.shape == (4, 3, 1, 1)
    assert w.flatten(1).tolist() == [[0, 1, 2], [1, 2, 3], [4, 5, 6], [5, 6, 7]]
    a, b = torch.tensor([[[[1.0, 2.0]]]]), torch.tensor([[[[0.0, 0.0]]]])
    assert float(masked_l1(a, b, torch.tensor([[[[1.0, 0.0]]]]))) == pytest.approx(0.5)


# ---- model ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("with_flow", [True, False])
def test_one_train_iter(with_flow):
    torch.manual_seed(0)
    model = build_model(model_cfg())
    assert isinstance(model, Vid2VidModel) and set(model.nets) == {"netG", "netD", "netD_T"}
    opts = optimizers_for(model)
    before = {k: flat(n) for k, n in model.nets.items()}
    model.setup_input(clip_batch(flow=with_flow))
    losses = model.train_iter(opts)
    assert set(losses) == set(LOSS_KEYS)
    assert all(v.ndim == 0 and torch.isfinite(v) and not v.requires_grad for v in losses.values())
    for k, net in model.nets.items():
        assert not torch.equal(before[k], flat(net)), f"{k} did not move"
    assert model.fake_B.shape == (2, 3, 3, 8, 8)
    vis = model.visuals()
    assert set(vis) == {"real_A", "fake_B", "real_B", "mask"} and all(v.shape == (6, 3, 8, 8) for v in vis.values())
    assert model.samples_every_row == 3


def test_flow_loss_is_zero_for_the_true_flow_and_positive_otherwise():
    # the flow term of G_flow_loss compares with the batch's flow: shifting the batch's flow raises it
    torch.manual_seed(0)
    model = build_model(model_cfg(lambda_warp=0.0))  # G_flow_loss = lambda_flow * |w~ - w| only
    batch = clip_batch()
    model.setup_input(batch)
    with torch.no_grad():
        flows = model.nets["netG"].generate(model.real_A)["flows"]
    batch["flow"], batch["flow_mask"] = flows.clone(), torch.ones_like(batch["flow_mask"])
    model.setup_input(batch)
    zero = model.train_iter(optimizers_for(model, lr=0.0))["G_flow_loss"]
    batch["flow"] = flows + 1.0
    model.setup_input(batch)
    one = model.train_iter(optimizers_for(model, lr=0.0))["G_flow_loss"]
    assert float(zero) == pytest.approx(0.0, abs=1e-6)
    assert float(one) == pytest.approx(10.0 * 1.0, rel=1e-5)  # lambda_flow * mean |1|


def test_save_load_round_trip():
    torch.manual_seed(0)
    model = build_model(model_cfg())
    model.setup_input(clip_batch())
    model.train_iter(optimizers_for(model))
    other = build_model(model_cfg())
    other.load_state_dict(model.state_dict())
    batch = clip_batch(t=4)
    for m in (model, other):
        m.setup_input(batch)
        m.test_iter()
    assert torch.equal(model.fake_B, other.fake_B)
    # inference-only model (no discriminators) loads the generator of a training checkpoint
    g_only = build_model({"name": "Vid2VidModel", "generator": model_cfg()["generator"]})
    g_only.load_state_dict({"netG": model.state_dict()["netG"]})
    g_only.setup_input({"A": batch["A"]})
    g_only.test_iter()
    assert torch.equal(g_only.fake_B, model.fake_B)


def tiny_train_cfg(total_iters):
    data = {"name": "EmbeddedVideoEdgesDataset", "size": 16, "n_frames": 3}
    return {
        "total_iters": total_iters, "output_dir": "unused", "seed": 3,
        "model": model_cfg(),
        "dataset": {"train": {**data, "split": "train", "num_samples": 8, "batch_size": 2},
                    "test": {**data, "split": "test", "clips_per_photo": 1, "batch_size": 2}},
        "lr_scheduler": {"name": "MultiStepDecay", "learning_rate": 0.002, "milestones": [100]},
        "optimizer": {"optimG": {"name": "Adam", "net_names": ["netG"], "beta1": 0.5},
                      "optimD": {"name": "Adam", "net_names": ["netD", "netD_T"], "beta1": 0.5}},
        "validate": {"interval": 100, "metrics": {"mae": {"name": "MAE", "min_max": [-1, 1]}}},
        "log_config": {"interval": 2, "visual_interval": 100},
        "snapshot_config": {"interval": 2},
    }


def test_resume_equals_an_uninterrupted_run_and_evaluate_only(tmp_path):
    a, _ = assert_resume_matches(tiny_train_cfg, tmp_path, ("netG", "netD", "netD_T"))

    ev = Trainer(tiny_train_cfg(4), device="cpu", load=str(tmp_path / "a" / "iter_4_weight.pth"),
                 evaluate_only=True, run_dir=str(tmp_path / "ev"), quiet=True)
    assert torch.equal(ev.model.nets["netG"].state_dict()["model_final_w.1.weight"],
                       a["nets"]["netG"]["model_final_w.1.weight"])
    ev.evaluate()
    assert 0 < ev.eval_results["mae"] < 255
    files = set(os.listdir(tmp_path / "ev" / "eval"))
    assert {"00000_fake_B.png", "00000_real_A.png", "samples_fake_B.png"} <= files


def test_demo_config_builds_and_matches_its_data():
    from ppgan.datasets import build_dataset
    from ppgan.models.builder import check_model_config
    from ppgan.utils.config import load_config

    cfg = load_config(os.path.join(ROOT, "configs", "vid2vid_edges_demo.yaml"))
    check_model_config(cfg["model"])
    model = build_model(cfg["model"])
    assert model.frame_size == (cfg["dataset"]["test"]["size"],) * 2  # what the app resizes to
    ds = build_dataset({**cfg["dataset"]["test"], "clips_per_photo": 1})
    sample = ds[0]
    model.setup_input({k: v[None] for k, v in sample.items() if torch.is_tensor(v)})
    model.test_iter()
    assert model.fake_B.shape == sample["B"][None].shape
    assert cfg["dataset"]["train"]["n_frames"] >= cfg["model"]["params"]["n_frames_D"]


@pytest.mark.parametrize("change", [
    {"generator": {"name": "Vid2VidGenerator", "n_frames_G": 1}},
    {"discriminator": {"name": "Vid2VidDiscriminator", "input_nc": 6}},
    {"temporal_discriminator": {"name": "Vid2VidDiscriminator", "input_nc": 9}},
    {"temporal_discriminator": None},
    {"params": {"n_frames_D": 1}},
    {"frame_size": [32]},
    {"frame_size": 0},
    {"params": {"lambda_flw": 1.0}},
    {"params": {"lambda_L1": -1.0}},
    {"discriminator": {"name": "Vid2VidDiscriminator", "input_nc": 4, "norm_type": "spectral"}},
])
def test_bad_config(change):
    with pytest.raises(ConfigError):
        build_model({**model_cfg(), **change})


def test_bad_frame_size_is_one_clear_error():
    g = Vid2VidGenerator(n_downsampling=2, ngf=4, n_blocks=0)
    with pytest.raises(ConfigError, match="multiple of 4"):
        g.generate(torch.zeros(1, 2, 1, 10, 10))


def test_training_starts_from_the_identity_warp():
    model = build_model(model_cfg())
    with torch.no_grad():
        out = model.nets["netG"].generate(clip_batch()["A"])
    assert torch.equal(out["flows"], torch.zeros_like(out["flows"]))  # zeroed flow head, after init_weights


def test_train_step_reads_nothing_back(monkeypatch):
    calls = record_host_reads(monkeypatch)
    model = build_model(model_cfg())
    opts = optimizers_for(model)
    model.setup_input(clip_batch())
    model.train_iter(opts)
    assert calls == []

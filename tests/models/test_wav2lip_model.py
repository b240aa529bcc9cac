"""Wav2Lip training: the LRS2-style datasets (Wav2LipDataset, SyncNetDataset) on a tiny dataset of
jittered astronaut face crops with synthetic speech-like audio; one training step of SyncNetModel,
Wav2LipModel and Wav2LipModelHq (finite losses, exact keys, which weights move, the expert frozen);
the sync-loss schedule; the configs load and build."""
import copy
import os
import wave

import cv2
import numpy as np
import pytest
import torch

from ppgan.datasets import SyncNetDataset, Wav2LipDataset, build_dataloader
from ppgan.models import build_model
from ppgan.models import wav2lip_model as w2l
from ppgan.models.discriminators import SyncNetColor
from ppgan.solver import build_optimizer
from ppgan.utils.audio import melspectrogram
from ppgan.utils.config import load_config
from ppgan.utils.errors import CheckpointError, ConfigError, DatasetError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FPS, SR = 25, 16000
N_FRAMES = 24


# ---- a tiny LRS2-style dataset ----------------------------------------------------------------------
def speech_like(seconds, seed):
    """Amplitude-modulated harmonic tones (a voice-like f0 glide, ~4 syllables/s), int16 at 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6)), 0, None) ** 2
    wav = 0.3 * voice * envelope + 0.01 * rng.standard_normal(t.size)
    return (np.clip(wav, -1, 1) * 32767).astype(np.int16)


def write_wav(path, samples):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(samples.tobytes())


def make_video(folder, seed, n_frames=N_FRAMES, seconds=1.2):
    """`n_frames` jittered face crops of skimage's astronaut (<n>.jpg) + audio.wav."""
    from skimage import data

    face = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for n in range(n_frames):
        dy, dx = rng.integers(-4, 5, size=2)
        crop = face[30 + dy:230 + dy, 150 + dx:350 + dx]  # the face, 200x200
        cv2.imwrite(os.path.join(folder, f"{n}.jpg"), cv2.resize(crop, (80, 80), interpolation=cv2.INTER_AREA))
    write_wav(os.path.join(folder, "audio.wav"), speech_like(seconds, seed))


@pytest.fixture(scope="module")
def lrs2(tmp_path_factory):
    """dataroot/main/<video>/ x 3 videos, filelists/{train,val}.txt."""
    root = tmp_path_factory.mktemp("lrs2")
    videos = ["main/0001/00001", "main/0001/00002", "main/0002/00001"]
    for i, v in enumerate(videos):
        make_video(root / "data" / v, seed=i)
    lists = root / "filelists"
    lists.mkdir()
    (lists / "train.txt").write_text("\n".join(f"{v} NF" for v in videos[:2]) + "\n")
    (lists / "val.txt").write_text(videos[2] + "\n")
    return root


def ds_cfg(root, name="Wav2LipDataset", split="train", **kw):
    return dict(name=name, dataroot=str(root / "data"), filelists_path=str(root), img_size=96, split=split, **kw)


# ---- datasets ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("img_size", [96, 48])
def test_wav2lip_dataset_item(lrs2, img_size):
    ds = Wav2LipDataset(str(lrs2 / "data"), img_size, str(lrs2), "train")
    assert len(ds) == 2
    item = ds[(0, 123)]
    s, T = img_size, 5
    assert set(item) == {"x", "indiv_mels", "mel", "y"}
    shapes = {"x": (6, T, s, s), "indiv_mels": (T, 1, 80, 16), "mel": (1, 80, 16), "y": (3, T, s, s)}
    for k, shape in shapes.items():
        assert tuple(item[k].shape) == shape, k
        assert item[k].dtype == torch.float32, k
    x, y = item["x"], item["y"]
    assert 0 <= float(y.min()) and float(y.max()) <= 1 and float(y.std()) > 0.05
    assert float(x[:3, :, s // 2:].abs().max()) == 0.  # the mouth half is hidden ...
    assert torch.equal(x[:3, :, :s // 2], y[:, :, :s // 2])  # ... the upper half is the target's
    assert not torch.equal(x[3:], y)  # the reference window is another stretch of the video
    # indiv_mels are the windows of frames k-1 .. k+3 (Wav2Lip's offset): entry 1 is frame k's, = mel
    assert torch.equal(item["indiv_mels"][1], item["mel"])
    assert not torch.equal(item["indiv_mels"][0], item["mel"])
    # values: mel is a window of this video's melspectrogram, at a frame's place
    video = ds.all_videos[0]
    with wave.open(os.path.join(video, "audio.wav")) as w:
        wav = np.frombuffer(w.readframes(w.getnframes()), np.int16) / 32768.
    spec = melspectrogram(wav).T.astype(np.float32)
    starts = [int(80. * k / FPS) for k in range(N_FRAMES)]
    assert any(np.allclose(spec[a:a + 16].T, item["mel"][0].numpy(), atol=1e-3) for a in starts)
    # reproducible from (index, seed); another seed draws another window
    assert all(torch.equal(item[k], ds[(0, 123)][k]) for k in item)
    assert any(not torch.equal(item["y"], ds[(0, seed)]["y"]) for seed in (1, 2, 3))


def test_syncnet_dataset_items(lrs2):
    ds = SyncNetDataset(str(lrs2 / "data"), 96, str(lrs2), "val")
    labels = []
    for seed in range(8):
        item = ds[(0, seed)]
        assert set(item) == {"x", "mel", "y"}
        assert tuple(item["x"].shape) == (15, 48, 96) and tuple(item["mel"].shape) == (1, 80, 16)
        assert tuple(item["y"].shape) == (1,)
        assert 0 <= float(item["x"].min()) and float(item["x"].max()) <= 1 and float(item["x"].std()) > 0.05
        labels.append(float(item["y"]))
    assert set(labels) == {0., 1.}  # in-sync and off-sync pairs at even odds


def test_scan_without_filelists_and_loader(lrs2):
    ds = Wav2LipDataset(str(lrs2 / "data"), 96, None, "train")
    assert len(ds) == 3  # every folder holding an audio.wav (LRS2: three levels down)
    _, loader, _ = build_dataloader(dict(ds_cfg(lrs2), batch_size=2), is_train=True, seed=0)
    batch = next(iter(loader))
    assert tuple(batch["x"].shape) == (2, 6, 5, 96, 96) and tuple(batch["indiv_mels"].shape) == (2, 5, 1, 80, 16)


@pytest.mark.parametrize("case", ["no_dataroot", "no_filelist", "missing_video", "empty_list", "odd_size"])
def test_dataset_setup_errors(lrs2, tmp_path, case):
    root, lists = str(lrs2 / "data"), str(lrs2)
    split, size = "train", 96
    if case == "no_dataroot":
        root = str(tmp_path / "nope")
    elif case == "no_filelist":
        split = "test"
    elif case == "missing_video":
        (tmp_path / "train.txt").write_text("main/0001/00001\nmain/9999/00001\n")
        lists = str(tmp_path)
    elif case == "empty_list":
        (tmp_path / "train.txt").write_text("\n# nothing\n")
        lists = str(tmp_path)
    else:
        size = 95
    with pytest.raises(DatasetError) as e:
        Wav2LipDataset(root, size, lists, split)
    assert "\n" not in str(e.value)
    if case == "missing_video":
        assert "train.txt:2" in str(e.value) and "9999" in str(e.value)


@pytest.mark.parametrize("case", ["short_video", "bad_audio", "short_audio"])
def test_dataset_unusable_videos(tmp_path, case):
    """A video without a usable window: other videos are tried, then one DatasetError names it."""
    make_video(tmp_path / "v", seed=0, n_frames=10 if case == "short_video" else N_FRAMES,
               seconds=0.1 if case == "short_audio" else 1.2)
    if case == "bad_audio":
        (tmp_path / "v" / "audio.wav").write_bytes(b"RIFF not really a wave file")
    ds = Wav2LipDataset(str(tmp_path), 96, None, "train", max_tries=5)
    with pytest.raises(DatasetError) as e:
        ds[(0, 0)]
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "v") in msg


# ---- losses -----------------------------------------------------------------------------------------
def test_cosine_loss_and_sync_faces():
    a = torch.tensor([[1., 0.], [1., 0.], [1., 1.]])
    v = torch.tensor([[1., 0.], [0., 1.], [1., 0.]])
    y = torch.tensor([[1.], [0.], [1.]])
    d = torch.tensor([1., 0., 2 ** -0.5])
    want = -(y[:, 0] * torch.log(d).clamp(min=-100) + (1 - y[:, 0]) * torch.log(1 - d).clamp(min=-100)).mean()
    assert torch.allclose(w2l.cosine_loss(a, v, y), want)
    g = torch.arange(2 * 3 * 5 * 4 * 2, dtype=torch.float32).reshape(2, 3, 5, 4, 2)
    faces = w2l.sync_faces(g)
    assert tuple(faces.shape) == (2, 15, 2, 2)
    for t in range(5):
        for c in range(3):
            assert torch.equal(faces[:, 3 * t + c], g[:, c, t, 2:])


@pytest.mark.parametrize("batch", [1, 2])
def test_perceptual_loss_is_disc_quals(batch):
    """Wav2LipModelHq's perceptual term (BCE of netDH's scores against 1, in float32) is
    Wav2LipDiscQual.perceptual_forward."""
    from ppgan.models.discriminators import Wav2LipDiscQual

    torch.manual_seed(batch)
    net = Wav2LipDiscQual().eval()
    g = torch.rand(batch, 3, 5, 96, 96)
    with torch.no_grad():
        pred = net(g)
        assert tuple(pred.shape) == (batch * 5, 1)
        assert torch.allclose(w2l.bce(pred, torch.ones_like(pred)), net.perceptual_forward(g), atol=1e-6)


# ---- models -----------------------------------------------------------------------------------------
def optimizers_for(model, lr=1e-3):
    opts = {}
    for name, net in model.nets.items():
        opt = build_optimizer({"name": "Adam", "beta1": 0.5}, list(net.parameters()), lr)
        opt.ppgan_net_names = (name,)
        opts[f"opt_{name}"] = opt
    return opts


def snapshot(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def changed(before, net):
    return [k for k, v in net.state_dict().items() if k.endswith("weight") and not torch.equal(before[k], v)]


@pytest.fixture(scope="module")
def expert_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("expert") / "syncnet.pth"
    torch.save(SyncNetColor().state_dict(), path)
    return str(path)


def batch_from(ds, n=1, seed=0):
    items = [ds[(i % len(ds), seed + i)] for i in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def test_syncnet_model_step(lrs2):
    torch.manual_seed(0)
    model = build_model({"name": "SyncNetModel", "discriminator": {"name": "SyncNetColor"}, "max_eval_steps": 2})
    opts = optimizers_for(model)
    ds = SyncNetDataset(str(lrs2 / "data"), 96, None, "train")
    model.setup_input(batch_from(ds, 2, seed=3))
    model.train()
    before = snapshot(model.nets["netD"])
    losses = model.train_iter(opts)
    assert set(losses) == {"sync_loss"} and losses["sync_loss"].ndim == 0
    assert torch.isfinite(losses["sync_loss"]) and float(losses["sync_loss"]) > 0
    moved = changed(before, model.nets["netD"])
    assert any(k.startswith("face_encoder") for k in moved) and any(k.startswith("audio_encoder") for k in moved)
    assert model.test_iter() is None and model.test_iter() > 0  # the mean over max_eval_steps batches


@pytest.mark.parametrize("syncnet_wt", [0.0, 0.5])
def test_wav2lip_model_step(lrs2, expert_file, syncnet_wt):
    torch.manual_seed(0)
    model = build_model({"name": "Wav2LipModel", "generator": {"name": "Wav2Lip"}, "syncnet_wt": syncnet_wt,
                         "discriminator": {"name": "SyncNetColor"}, "syncnet_weight_path": expert_file})
    expert = model.nets["netD"]
    saved = torch.load(expert_file, weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in expert.state_dict().items())  # the expert's weights
    opts = optimizers_for(model)
    model.setup_input(batch_from(Wav2LipDataset(str(lrs2 / "data"), 96, str(lrs2), "train")))
    model.train()
    assert not expert.training  # frozen: eval mode even while training
    g_before, d_before = snapshot(model.nets["netG"]), snapshot(expert)
    losses = model.train_iter(opts)
    want = {"l1_loss", "sync_loss"} if syncnet_wt else {"l1_loss"}
    assert set(losses) == want
    assert all(torch.isfinite(v) and v.ndim == 0 and not v.requires_grad for v in losses.values())
    assert len(changed(g_before, model.nets["netG"])) > 10
    assert all(torch.equal(d_before[k], v) for k, v in expert.state_dict().items())  # bit-for-bit frozen
    assert all(p.grad is None for p in expert.parameters())
    assert all(p.requires_grad for p in expert.parameters())  # frozen only inside the step
    assert tuple(model.g.shape) == (1, 3, 5, 96, 96)
    vis = model.visuals()
    assert tuple(vis["output"].shape) == (5, 3, 96, 96) and float(vis["output"].min()) >= -1


def test_wav2lip_hq_model_step(lrs2, expert_file):
    torch.manual_seed(0)
    model = build_model({"name": "Wav2LipModelHq", "generator": {"name": "Wav2Lip"}, "syncnet_wt": 0.03,
                         "disc_wt": 0.07, "discriminator_sync": {"name": "SyncNetColor"},
                         "discriminator_hq": {"name": "Wav2LipDiscQual"}, "syncnet_weight_path": expert_file})
    assert set(model.nets) == {"netG", "netDS", "netDH"}
    opts = optimizers_for(model)
    model.setup_input(batch_from(Wav2LipDataset(str(lrs2 / "data"), 96, str(lrs2), "train"), seed=5))
    model.train()
    before = {k: snapshot(n) for k, n in model.nets.items()}
    losses = model.train_iter(opts)
    assert set(losses) == {"l1_loss", "sync_loss", "perceptual_loss", "disc_real_loss", "disc_fake_loss"}
    assert all(torch.isfinite(v) and v.ndim == 0 for v in losses.values())
    assert len(changed(before["netG"], model.nets["netG"])) > 10
    assert len(changed(before["netDH"], model.nets["netDH"])) > 5
    assert all(torch.equal(before["netDS"][k], v) for k, v in model.nets["netDS"].state_dict().items())


def test_sync_loss_switches_on_after_validation(lrs2, expert_file, monkeypatch):
    """PaddleGAN: a validation round (max_eval_steps batches) averaging a sync loss below 0.75 sets
    syncnet_wt from 0 to 0.01; metrics get RGB frames in [0, 1]."""
    torch.manual_seed(0)
    model = build_model({"name": "Wav2LipModel", "generator": {"name": "Wav2Lip"}, "syncnet_wt": 0.0,
                         "max_eval_steps": 2, "discriminator": {"name": "SyncNetColor"},
                         "syncnet_weight_path": expert_file})
    ds = Wav2LipDataset(str(lrs2 / "data"), 96, str(lrs2), "val")

    class Recorder:
        def __init__(self):
            self.shapes = []

        def update(self, pred, gt):
            self.shapes.append((tuple(pred.shape), float(pred.min()), float(pred.max())))

    metric = Recorder()
    monkeypatch.setattr(w2l, "SYNC_LOSS_THRESHOLD", 0.0)  # not yet: a random expert is far from 0
    model.setup_input(batch_from(ds))
    model.test_iter({"m": metric})
    model.test_iter({"m": metric})
    assert model.syncnet_wt == 0.0 and model.eval_step == 0
    monkeypatch.setattr(w2l, "SYNC_LOSS_THRESHOLD", 100.0)
    model.test_iter({"m": metric})
    assert model.syncnet_wt == 0.0  # one batch of two
    model.test_iter({"m": metric})
    assert model.syncnet_wt == w2l.SYNCNET_WT_ON == 0.01
    assert metric.shapes[0][0] == (5, 3, 96, 96) and metric.shapes[0][1] >= 0 and metric.shapes[0][2] <= 1
    assert model.nets["netG"].training  # test_iter restores train mode


@pytest.mark.parametrize("bad", [
    {"syncnet_wt": 1.5}, {"syncnet_wt": -0.1}, {"max_eval_steps": 0}, {"discriminator": None},
    {"syncnet_weight_path": "missing.pdparams"}])
def test_wav2lip_model_config_errors(expert_file, bad):
    cfg = {"name": "Wav2LipModel", "generator": {"name": "Wav2Lip"}, "discriminator": {"name": "SyncNetColor"},
           "syncnet_weight_path": expert_file}
    cfg.update(bad)
    with pytest.raises((ConfigError, CheckpointError)) as e:
        build_model(cfg)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name,extra", [("Wav2LipModel", {}), ("Wav2LipModelHq", {"disc_wt": 0.0})])
def test_inference_build_has_no_expert(lrs2, name, extra):
    """is_train=False: the generator alone (no expert file needed); test_iter measures L1 only."""
    model = build_model({"name": name, "generator": {"name": "Wav2Lip"}, "is_train": False,
                         "syncnet_weight_path": "no-such-file.pth", "max_eval_steps": 1, **extra})
    assert set(model.nets) == {"netG"}
    model.setup_input(batch_from(Wav2LipDataset(str(lrs2 / "data"), 96, str(lrs2), "val")))
    assert set(model.finish_eval_round()) == set()  # nothing recorded yet
    model.max_eval_steps = 2
    model.test_iter()
    assert set(model.eval_sums) == {"l1_loss"} and model.eval_step == 1


def test_hq_weights_must_sum_to_at_most_one(expert_file):
    with pytest.raises(ConfigError, match="syncnet_wt \\+ model.disc_wt"):
        build_model({"name": "Wav2LipModelHq", "generator": {"name": "Wav2Lip"}, "syncnet_wt": 0.95, "disc_wt": 0.07,
                     "discriminator_sync": {"name": "SyncNetColor"}, "discriminator_hq": {"name": "Wav2LipDiscQual"},
                     "syncnet_weight_path": expert_file})


def test_expert_from_a_syncnet_run_weight_file(tmp_path):
    """The expert loads from our weight files (`{'netD': state, '__ppgan__': ...}`) and rejects a
    file of another architecture with one line."""
    torch.manual_seed(1)
    net = SyncNetColor()
    path = tmp_path / "iter_10_weight.pth"
    torch.save({"netD": net.state_dict(), "__ppgan__": {"model": {"name": "SyncNetModel"}}}, path)
    loaded = w2l.load_expert({"name": "SyncNetColor"}, str(path))
    assert all(torch.equal(net.state_dict()[k], v) for k, v in loaded.state_dict().items())
    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError) as e:
        w2l.load_expert({"name": "SyncNetColor"}, str(tmp_path / "other.pth"))
    assert "\n" not in str(e.value)


def test_expert_by_catalogue_name_is_never_downloaded(tmp_path, monkeypatch, expert_file):
    """The default 'syncnet' is read from the cache only; missing, one line says how to get it."""
    import shutil

    from ppgan.weights import catalog

    monkeypatch.setenv("PPGAN_HOME", str(tmp_path / "home"))
    spec = catalog.WeightSpec("syncnet", "SyncNetColor", {}, "https://example.invalid/syncnet.pdparams", None,
                              "syncnet.pdparams", "pdparams")
    monkeypatch.setitem(catalog.WEIGHTS, "syncnet", spec)
    with pytest.raises(CheckpointError) as e:
        w2l.load_expert({"name": "SyncNetColor"}, "syncnet")
    msg = str(e.value)
    assert "\n" not in msg and "ppgan download syncnet" in msg and "model.syncnet_weight_path" in msg
    os.makedirs(tmp_path / "home" / "weights")
    shutil.copy(expert_file, tmp_path / "home" / "weights" / "syncnet.pdparams")  # read by content
    net = w2l.load_expert({"name": "SyncNetColor"}, "syncnet")
    saved = torch.load(expert_file, weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in net.state_dict().items())


def test_deterministic_expert_is_seeded():
    a = w2l.load_expert({"name": "SyncNetColor"}, "deterministic")
    b = w2l.load_expert({"name": "SyncNetColor"}, "deterministic")
    c = SyncNetColor()
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert not all(torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())


# ---- configs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,model,datasets,nets", [
    ("wav2lip.yaml", "Wav2LipModel", "Wav2LipDataset", {"netG", "netD"}),
    ("wav2lip_hq.yaml", "Wav2LipModelHq", "Wav2LipDataset", {"netG", "netDS", "netDH"}),
    ("syncnet.yaml", "SyncNetModel", "SyncNetDataset", {"netD"}),
])
def test_configs_load_and_build(lrs2, expert_file, name, model, datasets, nets):
    cfg = load_config(os.path.join(ROOT, "configs", name))
    assert cfg["model"]["name"] == model
    mcfg = copy.deepcopy(cfg["model"])
    if model != "SyncNetModel":
        mcfg["syncnet_weight_path"] = expert_file
    built = build_model(mcfg)
    assert set(built.nets) == nets
    for split in ("train", "test"):
        dcfg = cfg["dataset"][split]
        assert dcfg["name"] == datasets and dcfg["img_size"] == 96
        dcfg = dict(dcfg, dataroot=str(lrs2 / "data"), filelists_path=str(lrs2), num_workers=0)
        ds, _, _ = build_dataloader(dcfg, is_train=split == "train")
        assert len(ds) == (2 if split == "train" else 1)
    for opt in cfg["optimizer"].values():
        assert set(opt["net_names"]) <= nets


@pytest.mark.slow
def test_wav2lip_trainer_runs_and_resumes(lrs2, expert_file, tmp_path, monkeypatch):
    """configs/wav2lip.yaml through the engine: a validation switches the sync loss on (threshold
    patched: the expert is random), the checkpoint keeps syncnet_wt, a resumed run has it."""
    from ppgan.engine.trainer import Trainer

    cfg = load_config(os.path.join(ROOT, "configs", "wav2lip.yaml"))
    cfg["total_iters"] = 3
    cfg["model"].update(syncnet_weight_path=expert_file, max_eval_steps=1)
    for split in ("train", "test"):
        cfg["dataset"][split].update(dataroot=str(lrs2 / "data"), filelists_path=str(lrs2), num_workers=0,
                                     batch_size=1)
    cfg["validate"]["interval"] = 1
    cfg["log_config"] = {"interval": 1, "visual_interval": 2}
    cfg["snapshot_config"] = {"interval": 2}
    monkeypatch.setattr(w2l, "SYNC_LOSS_THRESHOLD", 100.0)
    run = tmp_path / "run"
    tr = Trainer(copy.deepcopy(cfg), device="cpu", run_dir=str(run), quiet=True)
    tr.train()
    assert tr.iter == 3 and tr.model.syncnet_wt == 0.01
    losses = [line for line in (run / "log.jsonl").read_text().splitlines() if '"sync_loss"' in line]
    assert losses  # the sync term is on after the first validation
    ckpt_path = run / "iter_2_checkpoint.pth"
    assert ckpt_path.is_file()
    resumed = Trainer(copy.deepcopy(cfg), device="cpu", resume=str(ckpt_path), quiet=True)
    assert resumed.iter == 2 and resumed.model.syncnet_wt == 0.01
    resumed.close()

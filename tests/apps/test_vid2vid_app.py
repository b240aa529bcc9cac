"""Vid2VidPredictor and applications/tools/vid2vid.py on a tiny random-init Vid2VidGenerator: the
video keeps its timing and audio, the frames are the sequential generation (history carried, reset
at each pipeline chunk), photo and edge-map sources agree, other frame sizes are resized or refused
with one line, and bad inputs are one `error:` line."""
import os
from fractions import Fraction

import cv2
import numpy as np
import pytest
import torch

from ppgan.apps.vid2vid_predictor import Vid2VidPredictor, is_edge_map, work_size
from ppgan.datasets.vid2vid_dataset import edge_map
from ppgan.utils.errors import CheckpointError, PPGANError
from ppgan.video import iter_frames, probe_video
from ppgan.video.encode import VideoWriter
from ppgan.video.synthetic import decode_audio, find_clicks, make_test_video
from ppgan.weights.load import META_KEY

from conftest import ROOT, run_cli

CLI = os.path.join(ROOT, "applications", "tools", "vid2vid.py")
GEN = {"name": "Vid2VidGenerator", "ngf": 4, "n_blocks": 2, "n_downsampling": 2}
FPS = Fraction(24000, 1001)


def _save(path, model_cfg, nets):
    torch.save({**{k: v.state_dict() for k, v in nets.items()}, META_KEY: {"model": model_cfg}}, path)
    return str(path)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from ppgan.models.generators.builder import build_generator

    torch.manual_seed(0)
    g = build_generator(GEN)
    with torch.no_grad():  # a strong mask bias so the warped previous frame visibly counts
        g.model_final_w[-2].bias.fill_(1.0)
    return _save(tmp_path_factory.mktemp("w") / "vid2vid_weight.pth", {"name": "Vid2VidModel", "generator": GEN},
                 {"netG": g})


@pytest.fixture(scope="module")
def pred(weights):
    return Vid2VidPredictor(weights, device="cpu", verbose=False)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """A photo video (96x64, 0.5 s at 23.976 fps, audio with clicks) and its Canny edge-map video
    (same timing, the photo video's audio)."""
    d = tmp_path_factory.mktemp("v")
    photo = str(d / "photo.mp4")
    make_test_video(photo, seconds=0.5, fps=FPS, size=(96, 64), audio=True, click_every=4)
    frames = list(iter_frames(photo))
    edges = str(d / "edges.mp4")
    with VideoWriter(edges, 96, 64, FPS, audio_from=photo) as w:
        for f in frames:
            w.write(np.repeat(edge_map(f)[..., None], 3, axis=2))
    return photo, edges, frames


def _mad(a, b):
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def test_edge_video_keeps_timing_audio_and_is_the_sequential_generation(tmp_path, pred, videos):
    _, edges, _ = videos
    # near-lossless output (crf 0, no chroma subsampling): a random net's output is all high frequencies
    _, out = pred.run(edges, str(tmp_path / "out.mp4"), progress=False,
                      video_options={"crf": 0, "pix_fmt": "yuv444p"})
    a, b = probe_video(edges), probe_video(out)
    assert (b.width, b.height) == (96, 64) and b.fps == a.fps == FPS
    assert b.n_frames == a.n_frames == 12 and abs(b.duration - a.duration) < 1e-3
    assert [s["type"] for s in b.streams].count("audio") == 1
    ca, cb = find_clicks(decode_audio(edges)), find_clicks(decode_audio(out))
    assert len(ca) == len(cb) == 3 and max(abs(x - y) for x, y in zip(ca, cb)) < 1 / float(FPS)
    src = list(iter_frames(edges))
    assert all(is_edge_map(f) for f in src)  # 'auto' takes the decoded edge video as maps
    got = list(iter_frames(out))
    seq = pred.predict_sequence(src)
    alone = [pred.predict(f) for f in src]  # every frame as a first frame: no history
    assert max(_mad(g, s) for g, s in zip(got, seq)) < 2.0  # RGB <-> YUV rounding only
    assert np.array_equal(seq[0], alone[0])
    assert min(_mad(s, o) for s, o in zip(seq[1:], alone[1:])) > 3 * max(_mad(g, s) for g, s in zip(got, seq))


def test_history_restarts_at_each_chunk_so_resumed_runs_match(pred, videos):
    _, _, frames = videos
    stage = pred.frame_stage()
    stage.reset(0)
    first = stage.push(frames[:6])
    stage.reset(6)  # the pipeline's next chunk
    second = stage.push(frames[6:])
    resumed = pred.frame_stage()
    resumed.reset(6)  # a resumed run starts at chunk 2
    assert all(np.array_equal(x, y) for x, y in zip(resumed.push(frames[6:]), second))
    assert np.array_equal(second[0], pred.predict(frames[6]))  # a chunk's first frame has no history
    assert all(np.array_equal(x, y) for x, y in zip(first, pred.predict_sequence(frames[:6])))


def test_photo_source_uses_the_training_edges(weights, videos):
    _, _, frames = videos
    assert not any(is_edge_map(f) for f in frames)
    by_photo = Vid2VidPredictor(weights, source="edges", device="cpu", verbose=False).predict_sequence(frames[:3])
    maps = [np.repeat(edge_map(f)[..., None], 3, axis=2) for f in frames[:3]]
    by_map = Vid2VidPredictor(weights, source="map", device="cpu", verbose=False).predict_sequence(maps)
    assert all(np.array_equal(x, y) for x, y in zip(by_photo, by_map))
    auto = Vid2VidPredictor(weights, device="cpu", verbose=False)
    assert all(np.array_equal(x, y) for x, y in zip(auto.predict_sequence(frames[:3]), by_photo))


def test_other_frame_sizes_are_resized_or_refused(weights, pred, tmp_path):
    assert work_size((96, 64), None, 4, True) == (96, 64)
    assert work_size((90, 62), None, 4, True) == (88, 64)        # nearest multiples of 4
    assert work_size((96, 64), (32, 32), 4, True) == (48, 32)    # the training frames' scale
    with pytest.raises(PPGANError, match="multiples of 4"):
        work_size((90, 62), None, 4, False)
    img = np.zeros((62, 90, 3), np.uint8)
    cv2.circle(img, (45, 31), 20, (255, 255, 255), 1)
    assert pred.predict(img).shape == (62, 90, 3)
    with pytest.raises(PPGANError, match="multiples of 4"):
        Vid2VidPredictor(weights, resize=False, device="cpu", verbose=False).predict(img)
    # a model config with the training frame size: generated at that scale, resized back
    path = _save(tmp_path / "sized.pth", {"name": "Vid2VidModel", "generator": GEN, "frame_size": 32},
                 {"netG": pred.netG})
    sized = Vid2VidPredictor(path, device="cpu", verbose=False)
    assert sized.frame_size == (32, 32) and sized.predict(img).shape == (62, 90, 3)


def test_weight_file_of_another_model_is_one_clear_error(tmp_path):
    from ppgan.models.generators.builder import build_generator

    cfg = {"name": "UnetGenerator", "input_nc": 1, "output_nc": 3, "num_downs": 5, "ngf": 4}
    path = _save(tmp_path / "p2p.pth", {"name": "Pix2PixModel", "generator": cfg}, {"netG": build_generator(cfg)})
    with pytest.raises(CheckpointError, match="not a Vid2VidModel"):
        Vid2VidPredictor(path, device="cpu", verbose=False)
    bare = tmp_path / "bare.pth"
    torch.save({"netG": build_generator(GEN).state_dict()}, bare)
    with pytest.raises(CheckpointError, match="no model config"):
        Vid2VidPredictor(str(bare), device="cpu", verbose=False)


def test_cli_writes_the_video_and_bad_input_is_one_line(tmp_path, weights, videos, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("vid2vid_cli", CLI)
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    _, edges, _ = videos
    out = tmp_path / "o.mkv"
    assert cli.main(["--weight_path", weights, "--input", edges, "--output", str(out), "--quiet",
                     "--device", "cpu"]) == 0
    assert probe_video(str(out)).n_frames == 12
    capsys.readouterr()
    bad = [(["--input", str(tmp_path / "missing.mp4")], "input not found"),
           (["--input", edges, "--output", str(tmp_path / "x.png")], "use a video file name"),
           (["--input", edges, "--no_resize", "--output", str(tmp_path / "y.mp4")], None)]
    for extra, msg in bad[:2]:
        assert cli.main(["--weight_path", weights, "--quiet", "--device", "cpu"] + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and msg in err[0]
    # an odd-sized video with --no_resize, through a real process: one line, exit 2, no output left
    odd = str(tmp_path / "odd.mp4")
    make_test_video(odd, seconds=0.2, fps=FPS, size=(90, 62), audio=False)
    r = run_cli([CLI, "--weight_path", weights, "--input", odd, "--no_resize", "--output",
                 str(tmp_path / "odd_out.mp4"), "--quiet", "--device", "cpu"])
    assert r.returncode == 2 and "Traceback" not in r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "multiples of 4" in err[0]
    assert not os.path.exists(tmp_path / "odd_out.mp4") and not os.path.exists(tmp_path / "odd_out.mp4.ppgan-parts")

"""Photo2cartoon end to end on scikit-image's astronaut (a real face) with deterministic generator
weights in PaddleGAN's .pdparams format (the published file cannot be downloaded here)."""
import json
import os
import pickle

import cv2
import numpy as np
import pytest
from skimage import data

from conftest import run_cli
from parity import FIXTURES, rule_tensor
from ppgan.utils.image import imread, imwrite

TOOL = "applications/tools/photo2cartoon.py"


@pytest.fixture(scope="module")
def p2c_weights(tmp_path_factory):
    """PaddleGAN's photo2cartoon state dict (names and shapes of the parity fixture) with the
    parity rule's weights, pickled as a .pdparams file."""
    with np.load(os.path.join(FIXTURES, "ugatit_p2c_generator.npz"), allow_pickle=False) as z:
        manifest = json.loads(str(z["manifest_json"]))
        kwargs = json.loads(str(z["meta_json"]))["kwargs"]
    assert kwargs.get("ngf", 32) == 32 and kwargs.get("n_blocks", 4) == 4 or kwargs == {}, kwargs
    path = tmp_path_factory.mktemp("p2c") / "photo2cartoon_genA2B_weight.pdparams"
    with open(path, "wb") as f:
        pickle.dump({name: rule_tensor(name, shape, dtype) for name, shape, dtype in manifest}, f, protocol=2)
    return str(path)


@pytest.fixture(scope="module")
def predictor(p2c_weights):
    from ppgan.apps import Photo2CartoonPredictor

    return Photo2CartoonPredictor(weight_path=p2c_weights, device="cpu", verbose=False)


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    imwrite(str(path), data.astronaut())
    return str(path)


def _region(shape, matrix, mask):
    """The crop mask warped back into the photo (float, 0 outside the crop)."""
    inv = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    return cv2.warpAffine(mask.astype(np.float32), inv, (shape[1], shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def test_astronaut_face_becomes_a_cartoon_and_the_background_is_untouched(predictor, astronaut_png, tmp_path):
    photo = data.astronaut()
    pred_img, out_path = predictor.run(astronaut_png, output_path=str(tmp_path / "out.png"))
    assert out_path == str(tmp_path / "out.png") and os.path.isfile(out_path)
    assert pred_img.shape == photo.shape and pred_img.dtype == np.uint8
    np.testing.assert_array_equal(imread(out_path), pred_img)
    assert len(predictor.last_crops) == 1 and len(predictor.last_regions) == 1
    crop, cartoon = predictor.last_crops[0]
    assert crop.shape == cartoon.shape == (256, 256, 3)
    matrix, mask = predictor.last_regions[0]
    region = _region(photo.shape, matrix, mask)

    changed = np.any(pred_img != photo, axis=2)
    # the face changed: most pixels of the face box (hand box of the astronaut's face) differ
    face_box = (slice(40, 160), slice(160, 260))  # rows, cols
    assert changed[face_box].mean() > 0.5
    assert np.abs(pred_img[face_box].astype(int) - photo[face_box].astype(int)).mean() > 10
    # ...and nothing outside the (feathered) head mask did
    outside = region <= 0
    assert outside.mean() > 0.5
    assert not changed[outside].any(), f"{changed[outside].sum()} background pixels changed"
    # the cartoon crop has a white background where the mask is 0 (PaddleGAN's p2c_cartoon)
    assert (cartoon[mask == 0] == 255).all()


def test_every_face_with_multi_person(p2c_weights, tmp_path):
    from ppgan.apps import Photo2CartoonPredictor

    photo = data.astronaut()
    two = np.concatenate([photo, photo[:, ::-1]], axis=1)  # two astronauts side by side
    pred = Photo2CartoonPredictor(weight_path=p2c_weights, device="cpu", verbose=False, multi_person=True)
    out = pred.predict(two)
    assert out.shape == two.shape and len(pred.last_crops) == 2
    changed = np.any(out != two, axis=2)
    assert changed[:, :512].any() and changed[:, 512:].any()
    one = Photo2CartoonPredictor(weight_path=p2c_weights, device="cpu", verbose=False).predict(two)
    assert np.any(one != two, axis=2)[:, :512].any() != np.any(one != two, axis=2)[:, 512:].any()


def test_cli_writes_output_and_crops(p2c_weights, astronaut_png, tmp_path):
    out = tmp_path / "res"
    proc = run_cli([TOOL, "--input", astronaut_png, "--output", str(out), "--weight_path", p2c_weights,
                    "--device", "cpu", "--save_crops", "--quiet"], timeout=300)
    assert proc.returncode == 0, proc.stderr
    folder = out / "Photo2Cartoon"
    names = sorted(os.listdir(folder))
    assert names == ["astronaut_cartoon.png", "astronaut_cartoon_p2c_cartoon.png", "astronaut_cartoon_p2c_photo.png"]
    assert imread(str(folder / "astronaut_cartoon.png")).shape == (512, 512, 3)
    assert imread(str(folder / "astronaut_cartoon_p2c_cartoon.png")).shape == (256, 256, 3)


@pytest.mark.parametrize("photo", ["coffee", pytest.param("rocket", marks=pytest.mark.slow)])
def test_no_face_is_one_error_line_and_no_output(p2c_weights, tmp_path, photo):
    src = tmp_path / f"{photo}.png"
    imwrite(str(src), getattr(data, photo)())
    out = tmp_path / "res"
    proc = run_cli([TOOL, "--input", str(src), "--output", str(out), "--weight_path", p2c_weights,
                    "--device", "cpu", "--quiet"], timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no face found in ") and str(src) in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (out / "Photo2Cartoon" / f"{photo}_cartoon.png").exists()


def test_missing_weights_offline_is_one_line(tmp_path, astronaut_png):
    proc = run_cli([TOOL, "--input", astronaut_png, "--output", str(tmp_path / "o"), "--device", "cpu", "--quiet"],
                   env={"PPGAN_HOME": str(tmp_path / "home"),  # never a real download:
                        "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
                        "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9",
                        "NO_PROXY": "", "no_proxy": ""}, timeout=300)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--weight_path" in lines[0]
    assert "photo2cartoon_genA2B_weight.pdparams" in lines[0]
    assert not (tmp_path / "o" / "Photo2Cartoon").exists()
    assert "Traceback" not in proc.stderr

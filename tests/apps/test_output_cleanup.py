"""A failed app run leaves no empty output folders behind (folders that existed stay, and so does
any folder that holds an output or a parts folder kept for resuming)."""
import os

import numpy as np
import pytest

from ppgan.apps.base_predictor import ImagePredictor
from ppgan.apps.inputs import run_inputs
from ppgan.utils.errors import PPGANError
from ppgan.utils.image import imwrite
from ppgan.utils.io import missing_dirs, remove_empty_dirs


class Fails(ImagePredictor):
    name = "Fails"
    suffix = "_x"

    def __init__(self, output, fail=True):
        super().__init__(output=output, device="cpu", verbose=False)
        self.fail = fail

    def predict_rgb(self, rgb):
        if self.fail:
            raise PPGANError("model refused this image")
        return rgb


@pytest.fixture
def photo(tmp_path):
    p = tmp_path / "in" / "a.png"
    p.parent.mkdir()
    imwrite(p, np.full((8, 8, 3), 90, np.uint8))
    return p


@pytest.mark.parametrize("out", ["new/deeper/out.png", "new/out.png", "out.png"])
def test_single_input_failure_removes_the_folders_it_made(tmp_path, photo, out):
    pred = Fails(output=str(tmp_path / "runs"))
    with pytest.raises(PPGANError, match="refused"):
        run_inputs(pred, str(photo), output_path=str(tmp_path / out))
    assert not (tmp_path / "new").exists()
    assert sorted(os.listdir(tmp_path)) == ["in"]


def test_default_output_folder_is_removed_after_a_failure(tmp_path, photo):
    pred = Fails(output=str(tmp_path / "runs"))
    with pytest.raises(PPGANError):
        run_inputs(pred, str(photo))
    assert not (tmp_path / "runs").exists()


def test_existing_folders_are_kept(tmp_path, photo):
    (tmp_path / "keep" / "empty").mkdir(parents=True)
    with pytest.raises(PPGANError):
        run_inputs(Fails(output=str(tmp_path / "runs")), str(photo),
                   output_path=str(tmp_path / "keep" / "empty" / "o.png"))
    assert (tmp_path / "keep" / "empty").is_dir()


def test_folder_run_where_everything_fails_leaves_no_folders(tmp_path, photo):
    sub = photo.parent / "sub"
    sub.mkdir()
    imwrite(sub / "b.png", np.zeros((8, 8, 3), np.uint8))
    result = run_inputs(Fails(output=str(tmp_path / "runs")), str(photo.parent),
                        output_path=str(tmp_path / "out" / "x"), progress=False)
    assert len(result.failed) == 2 and not result.outputs
    assert not (tmp_path / "out").exists()


def test_successful_runs_keep_their_outputs(tmp_path, photo):
    dst = run_inputs(Fails(output=str(tmp_path / "runs"), fail=False), str(photo),
                     output_path=str(tmp_path / "new" / "o.png"))
    assert os.path.isfile(dst)
    result = run_inputs(Fails(output=str(tmp_path / "runs"), fail=False), str(photo.parent),
                        output_path=str(tmp_path / "out2" / "deep"), progress=False)
    assert len(result.outputs) == 1 and os.path.isfile(result.outputs[0])


def test_missing_dirs_and_remove_empty_dirs(tmp_path):
    target = tmp_path / "a" / "b" / "c"
    made = missing_dirs(target)
    assert made == [str(target), str(tmp_path / "a" / "b"), str(tmp_path / "a")]
    os.makedirs(target)
    (tmp_path / "a" / "b" / "file").write_text("x")
    remove_empty_dirs(made)
    assert not target.exists() and (tmp_path / "a" / "b" / "file").exists()
    assert missing_dirs(tmp_path) == []

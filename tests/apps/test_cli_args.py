"""Shared app flags: --precision maps onto the predictors' precision argument."""
import argparse

import pytest

from ppgan.apps import cli_args
from ppgan.utils.errors import PPGANError


def _parse(*argv):
    p = argparse.ArgumentParser()
    cli_args.add_device_args(p)
    args = p.parse_args(list(argv))
    cli_args.check_args(args)
    return args


def test_precision_flag_sets_half():
    assert _parse("--precision", "bf16").half == "bf16"
    assert _parse("--precision", "fp32").half == "fp32"
    assert _parse("--half").half is True
    assert _parse().half is None


def test_precision_and_half_together_is_one_error():
    with pytest.raises(PPGANError, match="not both"):
        _parse("--precision", "bf16", "--no_half")


def test_bf16_precision_runs_a_predictor_on_cpu():
    from ppgan.apps.base_predictor import BasePredictor

    pred = BasePredictor(device="cpu", half=_parse("--precision", "bf16").half, verbose=False)
    assert pred.precision == "bf16"


def test_cli_face_detector_names_are_the_toolkits():
    from ppgan.apps.cli_args import FACE_DETECTORS
    from ppgan.faceutils import DETECTORS

    assert tuple(FACE_DETECTORS) == tuple(DETECTORS)

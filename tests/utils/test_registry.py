"""Registry lookups and the line between the user's errors (one line) and bugs (traceback)."""
import subprocess
import sys
import textwrap

import pytest

from ppgan.utils.device import resolve_device
from ppgan.utils.errors import USER_ERRORS, ConfigError, DatasetError, PPGANError, closest, report
from ppgan.utils.registry import Registry


def _registry():
    reg = Registry("generator")

    @reg.register("AliasNet")
    class TinyNet:
        def __init__(self, width=4, depth=2):
            if width < 1:
                raise ConfigError(f"width must be >= 1, got {width}")
            self.width, self.depth = width, depth

    @reg.register()
    class BuggyNet:
        def __init__(self):
            {}["missing"]  # a programming error inside a constructor

    return reg, TinyNet


def test_unknown_name_is_a_config_error_naming_the_closest():
    reg, _ = _registry()
    with pytest.raises(ConfigError, match="unknown generator name 'TinyNte'; did you mean TinyNet"):
        reg.get("TinyNte")
    with pytest.raises(ConfigError, match="known: AliasNet, BuggyNet, TinyNet"):
        reg.get("Zzz")
    with pytest.raises(ConfigError, match="needs a 'name' key"):
        reg.build({"width": 3})


def test_build_checks_keys_and_leaves_the_config_alone():
    reg, tiny = _registry()
    cfg = {"name": "AliasNet", "width": 3}
    net = reg.build(cfg)
    assert isinstance(net, tiny) and net.width == 3 and cfg == {"name": "AliasNet", "width": 3}
    with pytest.raises(ConfigError, match="unknown key 'widht'.*did you mean width"):
        reg.build({"name": "TinyNet", "widht": 3})
    with pytest.raises(ConfigError, match="width must be >= 1"):
        reg.build({"name": "TinyNet", "width": 0})


def test_a_bug_inside_a_constructor_is_not_turned_into_a_user_error():
    reg, _ = _registry()
    with pytest.raises(KeyError) as info:
        reg.build({"name": "BuggyNet"})
    assert not isinstance(info.value, USER_ERRORS)


def test_registering_a_name_twice_is_a_programming_error():
    reg, _ = _registry()
    with pytest.raises(KeyError, match="registered twice"):
        @reg.register("TinyNet")
        class Other:
            pass


def test_user_errors_are_ppgan_errors_and_os_errors_only():
    assert set(USER_ERRORS) == {PPGANError, OSError}
    for cls in (KeyError, ValueError, TypeError, AttributeError, IndexError, RuntimeError):
        assert not issubclass(cls, USER_ERRORS)
    # ConfigError / DatasetError stay ValueErrors, so `except ValueError` callers keep working
    assert issubclass(ConfigError, ValueError) and issubclass(DatasetError, ValueError)


def test_report_prints_one_line(capsys, monkeypatch):
    monkeypatch.delenv("PPGAN_DEBUG", raising=False)
    assert report(ConfigError("bad\nthing")) == 2
    assert capsys.readouterr().err == "error: bad thing\n"


def test_closest():
    assert closest("PSNRR", ["PSNR", "SSIM", "MAE"]) == ["PSNR"]
    assert closest("psnr", ["PSNR", "SSIM"]) == ["PSNR"]
    assert closest("xyz", ["PSNR"]) == []


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(PPGANError, match="--device must be auto, cpu or cuda"):
        resolve_device("tpu")
    with pytest.raises(PPGANError, match="cuda:x"):
        resolve_device("cuda:x")


def test_cli_shows_a_traceback_for_a_bug_and_one_line_for_bad_input(tmp_path):
    """A tool built on `run_main` (the app CLIs' wrapper): a KeyError bug keeps its traceback,
    a ConfigError is one line; both exit non-zero."""
    script = tmp_path / "tool.py"
    script.write_text(textwrap.dedent("""
        import sys
        from ppgan.apps.cli_args import run_main
        from ppgan.utils.errors import ConfigError

        def main():
            if sys.argv[1] == "bug":
                return {}["oops"]
            raise ConfigError("--scale must be 2 or 4, got 3")

        sys.exit(run_main(main))
    """))
    bug = subprocess.run([sys.executable, str(script), "bug"], capture_output=True, text=True)
    user = subprocess.run([sys.executable, str(script), "user"], capture_output=True, text=True)
    assert bug.returncode != 0 and "Traceback" in bug.stderr and "KeyError: 'oops'" in bug.stderr
    assert user.returncode == 2 and user.stderr == "error: --scale must be 2 or 4, got 3\n"

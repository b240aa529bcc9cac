"""Errors a user can cause. The CLIs print these as one line and exit non-zero.

Only `PPGANError` (and its subclasses) and `OSError` (a file the user named cannot be read or
written) count as the user's; any other exception is a bug and keeps its traceback.
"""
import difflib


def closest(name, candidates, n=3):
    """The up to `n` candidates closest to `name`, for 'did you mean' messages."""
    found = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=n, cutoff=0.5)
    if not found:
        low = str(name).lower()
        found = [c for c in candidates if low in str(c).lower() or str(c).lower() in low][:n]
    return found


class PPGANError(Exception):
    """Base class of every error that is the user's input, not a bug."""


class ConfigError(PPGANError, ValueError):
    """A config file, key, value or override is missing or wrong, or an argument is out of
    range (a ValueError too, so `except ValueError` code keeps working)."""


class DatasetError(PPGANError, ValueError):
    """A dataset path is missing, a file in it cannot be read, or its data do not fit the
    pipeline (a crop larger than the image, LQ/GT sizes that do not match the scale)."""


class CheckpointError(PPGANError):
    """A checkpoint or weight file is missing, unsafe or does not fit the model."""


class NonFiniteLossError(PPGANError):
    """Training produced a NaN or Inf loss."""


def one_line(exc):
    """The message of `exc` as a single line.

    Exceptions raised inside DataLoader workers come back wrapped with the worker's
    traceback appended; the original message is on the last line, prefixed by its type.
    """
    text = str(exc).strip()
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        text = exc.args[0]
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    if len(lines) > 1 and "Traceback" in text:
        last = lines[-1]
        head, sep, tail = last.partition(": ")
        return tail if sep and head.split(".")[-1].endswith("Error") else last
    return " ".join(ln.strip() for ln in lines)


# What a command-line tool reports as one line (its input was wrong), not as a traceback.
USER_ERRORS = (PPGANError, OSError)


def report(exc, code=2):
    """Print `exc` as one `error:` line on stderr and return the exit code. With PPGAN_DEBUG=1
    in the environment, re-raise instead (full traceback). A closed output pipe is not an error:
    exit 0 quietly."""
    import os
    import sys

    if os.environ.get("PPGAN_DEBUG"):
        raise exc
    if isinstance(exc, BrokenPipeError):  # `ppgan doctor | head`: the reader left, nothing went wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    print(f"error: {one_line(exc)}", file=sys.stderr)
    return code

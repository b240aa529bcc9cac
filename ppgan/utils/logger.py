"""Run logger: console lines (through tqdm, so progress bars stay intact), a text log file and
a JSON-lines metrics log in the run folder. Only rank 0 writes files.

The files are opened by `open_files` once the run is set up (the trainer calls it last), so a
run that fails to start leaves no empty `train.log` behind; what was logged before goes into
`train.log` then. On resume, `open_files(run_dir, resume_iter=N)` first drops the `log.jsonl`
records of iterations after N (written after the checkpoint the run resumes from), so every
iteration is in the log once, whatever the number of kills and resumes.

`progress` reports a long step of building a run (rendering a dataset) through the run logger
made last: a bar on a terminal, and a line when it starts and one when it ends in the log.
"""
import itertools
import json
import logging
import os
import sys
import time
import weakref

from tqdm import tqdm

from .io import atomic_write_text


class _TqdmHandler(logging.StreamHandler):
    def emit(self, record):
        try:
            tqdm.write(self.format(record), file=sys.stdout)
        except Exception:  # pragma: no cover - never let logging kill a run
            self.handleError(record)


class _KeepHandler(logging.Handler):
    """Keeps the records logged before the log file is opened."""

    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


def drop_jsonl_after(path, last_iter):
    """Rewrite the JSON-lines log `path` without the records of iterations after `last_iter` and
    without lines that do not parse (one cut short by a kill); returns how many lines were dropped."""
    if not os.path.isfile(path):
        return 0
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    keep = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("iter"), int) and record["iter"] <= last_iter:
            keep.append(line)
    if len(keep) != len(lines):
        atomic_write_text(path, "".join(line + "\n" for line in keep))
    return len(lines) - len(keep)


_current = None  # weak reference to the RunLogger made last (the run being set up or running)


def current_logger():
    """The RunLogger made last, while it is alive; None outside a run."""
    return _current() if _current is not None else None


def progress(iterable, total, what, unit="it"):
    """Iterate `iterable` (`total` items) reporting progress through the current run's logger:
    '<what>...' first, then '<what>: done in N.N s'; in between a tqdm bar on a terminal (rank 0,
    not quiet). Outside a run the two lines go to the `ppgan` Python logger (silent unless
    configured)."""
    log = current_logger()
    say = log.info if log is not None else logging.getLogger("ppgan").info
    show = log is not None and log.console
    say(f"{what}...")
    start = time.time()
    bar = tqdm(iterable, total=total, desc=what, unit=unit, disable=None if show else True, leave=False,
               dynamic_ncols=True, file=sys.stderr)
    try:
        yield from bar
    finally:
        bar.close()
    say(f"{what}: done in {time.time() - start:.1f} s")


_RUN_IDS = itertools.count()


def _release(logger):
    """Close a dropped run's handlers (its train.log) and forget its logger."""
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    logging.Logger.manager.loggerDict.pop(logger.name, None)


class RunLogger:
    def __init__(self, run_dir=None, rank=0, quiet=False):
        global _current
        _current = weakref.ref(self)
        self.run_dir = None
        self.rank = rank
        self.console = rank == 0 and not quiet
        # A name no other run logger of this process had: logging keeps every named logger (and its
        # handlers) for the process, and id(self) comes back once an old RunLogger is freed, so an
        # id-named logger could still hold a finished run's train.log handler and write this run's
        # lines into that folder.
        self.logger = logging.getLogger(f"ppgan.run.{next(_RUN_IDS)}")
        weakref.finalize(self, _release, self.logger)
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        self._fmt = logging.Formatter("[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
        if rank == 0 and not quiet:
            h = _TqdmHandler()
            h.setFormatter(self._fmt)
            self.logger.addHandler(h)
        self._jsonl = None
        self._file = None
        self._keep = None
        if rank == 0:
            self._keep = _KeepHandler()
            self.logger.addHandler(self._keep)
        if run_dir:
            self.open_files(run_dir)

    def open_files(self, run_dir, resume_iter=None):
        """Start writing `train.log` (with the lines logged so far) and `log.jsonl` in `run_dir`;
        `resume_iter`: drop the log.jsonl records after that iteration first. Rank 0 only."""
        self.run_dir = run_dir
        if self.rank != 0 or self._file is not None:
            return
        os.makedirs(run_dir, exist_ok=True)
        self._jsonl = os.path.join(run_dir, "log.jsonl")
        if resume_iter is not None:
            drop_jsonl_after(self._jsonl, resume_iter)
        fh = logging.FileHandler(os.path.join(run_dir, "train.log"), encoding="utf-8")
        fh.setFormatter(self._fmt)
        for record in self._keep.records:
            fh.handle(record)
        self.logger.removeHandler(self._keep)
        self._keep = None
        self.logger.addHandler(fh)
        self._file = fh

    def close(self):
        """Close the log file (the console keeps working)."""
        if self._file is not None:
            self.logger.removeHandler(self._file)
            self._file.close()
            self._file = None

    def info(self, msg):
        self.logger.info(msg)

    def warning(self, msg):
        self.logger.warning(f"warning: {msg}")

    def jsonl(self, record):
        if self._jsonl:
            with open(self._jsonl, "a", encoding="utf-8") as f:
                f.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")


def get_logger(run_dir=None, rank=0, quiet=False):
    return RunLogger(run_dir, rank, quiet)

"""Run logger: console lines (through tqdm, so progress bars stay intact), a text log file and
a JSON-lines metrics log in the run folder. Only rank 0 writes files."""
import json
import logging
import os
import sys
import time

from tqdm import tqdm


class _TqdmHandler(logging.StreamHandler):
    def emit(self, record):
        try:
            tqdm.write(self.format(record), file=sys.stdout)
        except Exception:  # pragma: no cover - never let logging kill a run
            self.handleError(record)


class RunLogger:
    def __init__(self, run_dir=None, rank=0, quiet=False):
        self.run_dir = run_dir
        self.logger = logging.getLogger(f"ppgan.run.{id(self)}")
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        fmt = logging.Formatter("[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
        if rank == 0 and not quiet:
            h = _TqdmHandler()
            h.setFormatter(fmt)
            self.logger.addHandler(h)
        self._jsonl = None
        if run_dir and rank == 0:
            os.makedirs(run_dir, exist_ok=True)
            fh = logging.FileHandler(os.path.join(run_dir, "train.log"), encoding="utf-8")
            fh.setFormatter(fmt)
            self.logger.addHandler(fh)
            self._jsonl = os.path.join(run_dir, "log.jsonl")

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

"""RunLogger: each run's lines go to its own folder only."""
import gc
import logging

from ppgan.utils.logger import RunLogger


def test_a_new_run_never_writes_into_a_dropped_runs_train_log(tmp_path):
    # Runs one after another in one process (tests, notebooks), each dropped without close() (a crash path):
    # a freed RunLogger's address comes back for the next one, and the old run's file must not hear the new run.
    names = set()
    for i in range(12):
        run = RunLogger(str(tmp_path / f"run{i}"), quiet=True)
        names.add(run.logger.name)
        run.info(f"line of run {i}")
        del run
        gc.collect()
    assert len(names) == 12
    assert not names & set(logging.Logger.manager.loggerDict)  # dropped runs' loggers (and files) are released
    for i in range(12):
        lines = (tmp_path / f"run{i}" / "train.log").read_text().splitlines()
        assert len(lines) == 1 and lines[0].endswith(f"line of run {i}"), (i, lines)


def test_each_run_writes_its_own_train_log(tmp_path):
    a = RunLogger(str(tmp_path / "a"), quiet=True)
    b = RunLogger(str(tmp_path / "b"), quiet=True)
    a.info("line for a")
    b.info("line for b")
    a.close()
    b.close()
    text_a = (tmp_path / "a" / "train.log").read_text()
    text_b = (tmp_path / "b" / "train.log").read_text()
    assert "line for a" in text_a and "line for b" not in text_a
    assert "line for b" in text_b and "line for a" not in text_b

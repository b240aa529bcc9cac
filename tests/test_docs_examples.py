"""The README's and the tools' examples name checkpoints the configs they use really write
(`iter_3000_weight.pth` for a config that stops at 2500 sent users looking for a missing file)."""
import os
import re

import pytest

from ppgan.utils.config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", "applications/tools/gan_generate.py", "tools/eval_digits.py", "applications/tools/vid2vid.py",
        "tools/eval_vid2vid.py", "applications/tools/text2image.py", "tools/eval_stackgan.py",
        "applications/tools/d_only_sampling.py"]
CONFIG_NAMES = sorted((f[:-5] for f in os.listdir(os.path.join(ROOT, "configs")) if f.endswith(".yaml")),
                      key=len, reverse=True)


def _checkpoints_written(name):
    cfg = load_config(os.path.join(ROOT, "configs", name + ".yaml"))
    total = int(cfg["total_iters"])
    every = int(cfg.get("snapshot_config", {}).get("interval", total))
    return set(range(every, total + 1, every)) | {total}


def _examples():
    for doc in DOCS:
        for n, line in enumerate(open(os.path.join(ROOT, doc), encoding="utf-8"), 1):
            for it in re.findall(r"iter_(\d+)_(?:weight|checkpoint)\.pth", line):
                name = next((c for c in CONFIG_NAMES if re.search(rf"(?<![\w]){re.escape(c)}(?![\w])", line)), None)
                yield doc, n, line.strip(), name, int(it)


EXAMPLES = list(_examples())


def test_every_example_names_its_config():
    assert EXAMPLES, "no checkpoint examples found"
    unnamed = [(doc, n, line) for doc, n, line, name, _ in EXAMPLES if name is None]
    assert not unnamed, f"say which config's run the example uses: {unnamed}"


@pytest.mark.parametrize("doc, n, line, name, it", EXAMPLES, ids=[f"{e[0]}:{e[1]}" for e in EXAMPLES])
def test_example_checkpoint_is_one_the_config_writes(doc, n, line, name, it):
    assert it in _checkpoints_written(name), f"{doc}:{n}: {name} writes {sorted(_checkpoints_written(name))}"

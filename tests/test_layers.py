"""The package's layers import only downward, and no modules import each other.

    utils  <  weights, video, modules  <  models, datasets, metrics, solver  <  engine, apps, faceutils  <  cli

A module may import its own package and any package of a lower layer, never one of its own layer
or above (so `apps` does not reach into `engine`, `weights` never into `models`). One ordered pair
inside a layer: the face apps (photo2cartoon, First Order Motion, Wav2Lip) stand on the face
toolkit, so `apps` may import `faceutils`; never the reverse. Every import
counts, module-level or inside a function. Separately, the import graph between modules has no
cycle (config <-> registry was one).
"""
import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ppgan")

LAYERS = {
    "utils": 0,
    "weights": 1, "video": 1, "modules": 1,
    "models": 2, "datasets": 2, "metrics": 2, "solver": 2,
    "engine": 3, "apps": 3, "faceutils": 3,
    "cli": 4,
}
SAME_LAYER_ALLOWED = {("apps", "faceutils")}  # (importer, imported)


def _modules(root, pkg):
    """{dotted module name: file path} for every .py file under `root` (package `pkg`)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".py"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), root)[:-3].split(os.sep)
            if rel[-1] == "__init__":
                rel = rel[:-1]
            out[".".join([pkg] + rel)] = os.path.join(dirpath, f)
    return out


def _imports(name, path, known):
    """Modules of `known` that the file imports (every import statement, at any depth)."""
    is_pkg = os.path.basename(path) == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(parent + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = []
            for a in node.names:
                sub = f"{mod}.{a.name}"
                targets.append(sub if sub in known else mod)
        else:
            continue
        for t in targets:
            while t and t not in known:  # `import ppgan.models.x.Y` -> the longest known prefix
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def import_graph(root, pkg="ppgan"):
    known = _modules(root, pkg)
    return {name: _imports(name, path, known) for name, path in known.items()}


def _layer(module, pkg):
    parts = module.split(".")
    if len(parts) < 2:
        return None, None
    top = parts[1]
    return top, LAYERS.get(top)


def layer_violations(graph, pkg="ppgan"):
    bad = []
    for src, targets in graph.items():
        s_top, s_rank = _layer(src, pkg)
        if s_rank is None:
            continue
        for dst in targets:
            d_top, d_rank = _layer(dst, pkg)
            if d_rank is None or d_top == s_top:
                continue
            if d_rank >= s_rank and (s_top, d_top) not in SAME_LAYER_ALLOWED:
                bad.append(f"{src} (layer {s_rank}) imports {dst} (layer {d_rank})")
    return sorted(bad)


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan), ignoring the edges
    from a package's __init__ to its own submodules (re-exports)."""
    def edges(v):
        for w in graph.get(v, ()):
            if w.startswith(v + "."):  # a package importing its own submodule
                continue
            yield w

    index, low, on_stack, stack, out = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


@pytest.fixture(scope="module")
def graph():
    return import_graph(ROOT)


def test_every_top_level_package_has_a_layer(graph):
    tops = {m.split(".")[1] for m in graph if m.count(".") >= 1}
    assert tops - set(LAYERS) == set(), "add the new package to LAYERS (and to the README's layer list)"


def test_imports_run_down_the_layers(graph):
    assert layer_violations(graph) == []


def test_no_import_cycles(graph):
    assert cycles(graph) == []


def _write(root, rel, text):
    path = os.path.join(root, *rel.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_the_checks_catch_an_upward_import_and_a_cycle(tmp_path):
    root = str(tmp_path / "ppgan")
    for pkg in ("utils", "weights", "models", "engine", "apps", "faceutils"):
        _write(root, f"{pkg}/__init__.py", "")
    _write(root, "__init__.py", "")
    _write(root, "utils/a.py", "def f():\n    from ..models import net  # upward, inside a function\n")
    _write(root, "models/net.py", "from ..utils import a\n")
    _write(root, "weights/load.py", "from ppgan.models.net import X\n")
    _write(root, "apps/p.py", "from ..engine.trainer import resolve_device\n")
    _write(root, "engine/trainer.py", "")
    _write(root, "apps/face_app.py", "from ..faceutils import detection\n")  # allowed: apps on faceutils
    _write(root, "faceutils/detection.py", "from ..apps import p\n")  # not the reverse
    _write(root, "utils/config.py", "from .registry import closest\n")
    _write(root, "utils/registry.py", "def build():\n    from .config import check\n")
    g = import_graph(root)
    bad = layer_violations(g)
    assert any(b.startswith("ppgan.utils.a ") and "ppgan.models.net" in b for b in bad)
    assert any(b.startswith("ppgan.weights.load ") for b in bad)
    assert any(b.startswith("ppgan.apps.p ") and "ppgan.engine.trainer" in b for b in bad)
    assert not any(b.startswith("ppgan.models.net ") for b in bad)  # downward is fine
    assert not any(b.startswith("ppgan.apps.face_app ") for b in bad)
    assert any(b.startswith("ppgan.faceutils.detection ") and "ppgan.apps" in b for b in bad)
    found = cycles(g)
    assert ["ppgan.utils.config", "ppgan.utils.registry"] in found
    assert ["ppgan.models.net", "ppgan.utils.a"] in found

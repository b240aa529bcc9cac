"""YAML that explodes or is broken: the config reader refuses it quickly, with one line naming the
file (and the line), never a MemoryError, RecursionError or a long wait. Both loaders are tried:
libyaml's parser (the default) and the pure-Python one (where libyaml is missing)."""
import os
import resource
import time

import pytest

from ppgan.utils import yaml_safe
from ppgan.utils.config import apply_overrides, load_config
from ppgan.utils.errors import ConfigError


def laughs(levels, fan):
    """The classic bomb: level k is a list of `fan` aliases of level k-1 (fan**levels leaves)."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * fan) + "]"]
    for k in range(1, levels + 1):
        lines.append(f"l{k}: &l{k} [" + ", ".join([f"*l{k - 1}"] * fan) + "]")
    return "\n".join(lines) + "\n"


def laughs_mappings(levels):
    lines = ["m0: &m0 {a: 1, b: 2, c: 3, d: 4}"]
    for k in range(1, levels + 1):
        lines.append(f"m{k}: &m{k} {{a: *m{k - 1}, b: *m{k - 1}, c: *m{k - 1}, d: *m{k - 1}}}")
    return "\n".join(lines) + "\n"


def merge_bomb(levels):
    lines = ["k0: &k0 {x: [1, 2, 3, 4, 5, 6, 7, 8]}"]
    for k in range(1, levels + 1):
        lines.append(f"k{k}: &k{k} {{<<: [*k{k - 1}, *k{k - 1}], y{k}: [*k{k - 1}, *k{k - 1}, *k{k - 1}]}}")
    return "\n".join(lines) + "\n"


BOMBS = {
    # (text, words the one line must contain)
    "billion laughs (9^9)": (laughs(9, 9), "nodes once its aliases are expanded"),
    "wide laughs (40^5)": (laughs(5, 40), "nodes once its aliases are expanded"),
    "mapping laughs (4^12)": (laughs_mappings(12), "nodes once its aliases are expanded"),
    "merge-key bomb": (merge_bomb(14), "nodes once its aliases are expanded"),
    "list nested 100,000 deep": ("a: " + "[" * 100_000 + "]" * 100_000 + "\n", "nest"),
    "mapping nested 20,000 deep": ("a: " + "{a: " * 20_000 + "1" + "}" * 20_000 + "\n", "nest"),
    "block nesting 300 deep": ("".join("  " * i + f"k{i}:\n" for i in range(300)) + "  " * 300 + "v\n",
                               "nested deeper than 100"),
    "nesting through an alias": ("x: &x " + "[" * 60 + "]" * 60 + "\ny: " + "[" * 50 + "*x" + "]" * 50 + "\n",
                                 "nested deeper than 100"),
    "recursive list": ("a: &a [1, *a]\n", "recursive"),
    "recursive mapping": ("a: &a {b: {c: *a}}\n", "recursive"),
    "200,001 scalars": ("a: [" + "1," * 200_000 + "1]\n", "more than 100000 nodes"),
    "tab indentation": ("model:\n\tname: GANModel\n", "tab"),
    "unclosed bracket": ("model: {name: GANModel\n  oops: [", "line 2"),
    "undefined alias": ("total_iters: *nope\n", "undefined alias"),
    "python tag": ("total_iters: !!python/object/apply:os.system ['echo hi']\n", "constructor"),
    "two documents": ("a: 1\n---\nb: 2\n", "line 2"),
    "impossible date": ("seed: 2001-13-45\n", "2001-13-45"),
    "5000-digit integer": ("seed: " + "7" * 5000 + "\n", "cannot read the value"),
    "control character": ("model: {name: GAN\x07Model}\n", "characters are not allowed"),
}


@pytest.fixture(params=["libyaml", "python"])
def loader(request, monkeypatch):
    if request.param == "python":
        monkeypatch.setattr(yaml_safe, "_LOADER", yaml_safe.BoundedSafeLoader)
    elif yaml_safe._LOADER is yaml_safe.BoundedSafeLoader:
        pytest.skip("PyYAML has no libyaml here")
    return request.param


@pytest.mark.parametrize("name", list(BOMBS))
def test_bombs_and_broken_yaml_give_one_line_quickly(tmp_path, loader, name):
    text, expect = BOMBS[name]
    path = tmp_path / "c.yaml"
    path.write_text(text)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    elapsed = time.perf_counter() - start
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and expect in msg, msg
    assert elapsed < 5.0, f"{name} took {elapsed:.1f} s"
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mb < 200, f"{name} grew the peak RSS by {grown_mb:.0f} MB"


def test_bounds_are_tight_but_leave_real_configs_alone(loader, monkeypatch):
    monkeypatch.setattr(yaml_safe, "MAX_NODES", 1000)  # the same counting as 100,000, quicker
    wide = "a: [" + ", ".join(["1"] * 997) + "]\n"  # root, key, list + 997 items
    assert len(yaml_safe.loads(wide, "w.yaml")["a"]) == 997
    with pytest.raises(ConfigError, match="more than 1000 nodes"):
        yaml_safe.loads("a: [" + ", ".join(["1"] * 998) + "]\n", "w.yaml")
    shared = "a: &a [" + ", ".join(["1"] * 97) + "]\nb: [" + ", ".join(["*a"] * 9) + "]\n"  # 4 + 98 + 9 * 98
    assert len(yaml_safe.loads(shared, "s.yaml")["b"]) == 9
    with pytest.raises(ConfigError, match="more than 1000 nodes"):
        yaml_safe.loads(shared.replace("b: [", "b: [*a, "), "s.yaml")
    monkeypatch.setattr(yaml_safe, "MAX_NODES", 100_000)
    depth = yaml_safe.MAX_DEPTH - 1  # the root mapping is level 1
    assert yaml_safe.loads("a: " + "[" * depth + "]" * depth, "d.yaml") is not None
    with pytest.raises(ConfigError, match="nested deeper than 100 levels"):
        yaml_safe.loads("a: " + "[" * (depth + 1) + "]" * (depth + 1), "d.yaml")
    # aliases are fine while they stay small: a shared block, merge keys
    cfg = yaml_safe.loads("base: &b {lr: 1.0e-4, betas: [0.5, 0.999]}\ng: *b\nd: {<<: *b, lr: 2.0e-4}\n", "a.yaml")
    assert cfg["g"] == {"lr": 1e-4, "betas": [0.5, 0.999]} and cfg["d"]["lr"] == 2e-4
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for name in sorted(os.listdir(os.path.join(root, "configs"))):
        if name.endswith(".yaml"):
            assert isinstance(load_config(os.path.join(root, "configs", name)), dict)


@pytest.mark.parametrize("content, expect", [
    (b"model: {name: GANModel}\nnote: caf\xe9\n", "not UTF-8 text: byte 0xe9 at line 2, column 10"),
    (b"\xff\xfe\x00\x00garbage", "not UTF-8 text: byte 0xff at line 1, column 1"),
    (b"", "empty"),
    (b"# only a comment\n", "empty"),
    (b"[1, 2]\n", "must be a YAML mapping (key: value lines) at the top level, not a list"),
    (b"just text\n", "not a string"),
    (b"42\n", "not a number"),
])
def test_encoding_and_top_level(tmp_path, content, expect):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert expect in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


def test_bom_is_accepted(tmp_path, tiny_cfg):
    import yaml

    path = tmp_path / "c.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + yaml.safe_dump(tiny_cfg).encode())
    assert load_config(str(path))["total_iters"] == tiny_cfg["total_iters"]


def test_oversized_and_special_files(tmp_path):
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:
        f.write(b"a: 1\n")
        f.seek(yaml_safe.MAX_BYTES)
        f.write(b"\n")
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"cannot read config .*big\.yaml: \d+ bytes, more than the 4194304 allowed"):
        load_config(str(big))
    assert time.perf_counter() - start < 1.0
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"fifo\.yaml: is a FIFO \(named pipe\), not a regular file"):
        load_config(str(fifo))  # would block forever if it were opened
    with pytest.raises(ConfigError, match=r"cannot read config .*: is a folder"):
        load_config(str(tmp_path))
    os.symlink(tmp_path / "gone.yaml", tmp_path / "dangling.yaml")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(str(tmp_path / "dangling.yaml"))


@pytest.mark.parametrize("value, expect", [
    ("[&a [1,1,1,1,1,1,1,1,1,1], [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]]", None),  # small: accepted
    ("&a [[*a]]", "recursive"),
    ("[&a [1,1,1,1,1,1,1,1,1,1], " + ", ".join(f"&{n} [" + ", ".join([f"*{p}"] * 10) + "]"
                                              for p, n in zip("abcde", "bcdef")) + "]", "nodes"),
    ("[" * 200 + "]" * 200, "nest"),
    ("[1", "cannot parse override value"),
])
def test_override_values_are_bounded_too(tiny_cfg, value, expect):
    if expect is None:
        apply_overrides(tiny_cfg, [f"model.generator.extra={value}"])
        assert len(tiny_cfg["model"]["generator"]["extra"][1]) == 10
        return
    with pytest.raises(ConfigError) as info:
        apply_overrides(tiny_cfg, [f"model.generator.extra={value}"])
    assert expect in str(info.value) and "cannot parse override value" in str(info.value)


def test_cli_prints_one_line_for_a_bomb(tmp_path):
    from conftest import run_cli

    path = tmp_path / "lol.yaml"
    path.write_text(laughs(9, 9))
    start = time.perf_counter()
    proc = run_cli(["tools/main.py", "-c", str(path)], timeout=60)
    assert time.perf_counter() - start < 60
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "lol.yaml" in lines[0], proc.stderr

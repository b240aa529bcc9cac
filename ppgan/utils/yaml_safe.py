"""The one YAML reader for files a user gives (configs): safe tags only, and bounded.

`yaml.safe_load` runs no code, but a 500-byte file of nested aliases ("billion laughs") expands
to billions of nodes in any code that walks the result, and a list nested 100,000 deep ends in a
RecursionError. This reader refuses, while it composes the document and before anything is
built:

- files over `MAX_BYTES` (4 MiB; configs are a few KiB);
- documents of more than `MAX_NODES` nodes (100,000) once every alias is expanded, so the
  result can be walked, copied and dumped in bounded time and memory;
- nesting deeper than `MAX_DEPTH` levels (100), aliases included;
- an alias to a node that contains it (a recursive structure);

each with one `ConfigError` line naming the file and the line. So do non-UTF-8 bytes, syntax
errors (tabs as indentation, unclosed brackets), unknown tags and values that cannot be built
(a date like 2001-13-45, an integer of 5,000 digits).
"""
import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent
from yaml.resolver import Resolver

from .errors import ConfigError
from .io import read_regular

MAX_BYTES = 4 << 20
MAX_NODES = 100_000
MAX_DEPTH = 100


class _Bounded:
    """Mixin for a loader: counts nodes (aliases expanded) and depth while composing."""

    def _init_bounds(self):
        self._nodes = 0  # nodes so far, every alias counted as the nodes it stands for
        self._depth = 0  # of the node being composed (the root is 1)
        self._deepest = 0  # the deepest level reached (aliases expanded) inside the open nodes
        self._anchored = {}  # anchor -> (nodes, height) of its node, once composed
        self._open = set()  # anchors of nodes being composed: an alias to one is a cycle

    def _grow(self, count, depth, mark):
        self._nodes += count
        if self._nodes > MAX_NODES:
            raise ComposerError(None, None, f"the document has more than {MAX_NODES} nodes once its aliases are "
                                            f"expanded (refused: an alias bomb?)", mark)
        if depth > MAX_DEPTH:
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
        self._deepest = max(self._deepest, depth)

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            if event.anchor in self._open:
                raise ComposerError(None, None, f"alias *{event.anchor} refers to a node that contains it "
                                                "(recursive structures are not allowed)", event.start_mark)
            if event.anchor in self._anchored:
                nodes, height = self._anchored[event.anchor]
                self._grow(nodes, self._depth + height, event.start_mark)
            return super().compose_node(parent, index)
        anchor = event.anchor
        self._depth += 1
        outer_deepest, self._deepest = self._deepest, self._depth
        before = self._nodes
        self._grow(1, self._depth, event.start_mark)
        if anchor is not None:
            self._open.add(anchor)
        node = super().compose_node(parent, index)
        if anchor is not None:
            self._open.discard(anchor)
            self._anchored[anchor] = (self._nodes - before, self._deepest - self._depth + 1)
        self._depth -= 1
        self._deepest = max(outer_deepest, self._deepest)
        return node

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as e:  # a date like 2001-13-45, an int of 5,000 digits
            value = node.value if isinstance(node.value, str) else ""
            shown = value if len(value) <= 40 else value[:37] + "..."
            raise ConstructorError(None, None, f"cannot read the value {shown!r} ({e})", node.start_mark) from None


class BoundedSafeLoader(_Bounded, yaml.SafeLoader):
    """`yaml.SafeLoader` with the bounds above (pure Python)."""

    def __init__(self, stream):
        super().__init__(stream)
        self._init_bounds()


try:  # the same with libyaml's parser (about 4x faster); composing stays in Python, bounded
    from yaml.cyaml import CParser

    class _FastBoundedLoader(_Bounded, Composer, CParser, SafeConstructor, Resolver):
        def __init__(self, stream):
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._init_bounds()

    _LOADER = _FastBoundedLoader
except ImportError:  # pragma: no cover - PyYAML without libyaml
    _LOADER = BoundedSafeLoader


def _line_col(text, index):
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def loads(text, name):
    """Parse YAML `text` (read from `name`, for messages) with the bounds above.

    Raises:
        ConfigError: "invalid YAML in <name> at line L, column C: <why>".
    """
    loader = None
    try:
        loader = _LOADER(text)  # the pure-Python reader checks the characters here
        node = loader.get_single_node()
        return None if node is None else loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = f"{e.problem} ({e.context})" if e.problem and e.context else e.problem or e.context
        if mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t":
            problem = f"{problem}: a tab (indent with spaces)"
        raise ConfigError(f"invalid YAML in {name}{where}: {problem}") from None
    except yaml.reader.ReaderError as e:  # a control character
        char = chr(e.character) if isinstance(e.character, int) else e.character
        index = text.find(char) if isinstance(char, str) else -1
        where = " at line {}, column {}".format(*_line_col(text, index)) if index >= 0 else ""
        raise ConfigError(f"invalid YAML in {name}{where}: {e.reason} ({char!r})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"invalid YAML in {name}: {' '.join(str(e).split()) or type(e).__name__}") from None
    finally:
        if loader is not None:
            loader.dispose()


def read_text(path, what="config"):
    """The text of file `path` (a regular file of at most MAX_BYTES of UTF-8; a BOM is dropped).

    Raises:
        ConfigError: naming `what` and the file, when it is missing, not a regular file, too
            large, unreadable or not UTF-8 (with the line of the first bad byte).
    """
    try:
        data = read_regular(path, max_bytes=MAX_BYTES)
    except FileNotFoundError:
        raise ConfigError(f"{what} file not found: {path}") from None
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror or e}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ConfigError(f"{what} {path} is not UTF-8 text: byte 0x{data[e.start]:02x} at line {line}, "
                          f"column {column}") from None


def read_yaml(path, what="config", mapping=True):
    """Read YAML file `path` with `loads` (see the module docstring). With `mapping`, the top level
    must be a mapping (an empty file is an error too)."""
    data = loads(read_text(path, what), path)
    if mapping and data is None:
        raise ConfigError(f"{what} file is empty: {path}")
    if mapping and not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must be a YAML mapping (key: value lines) at the top level, "
                          f"not a {_kind(data)}")
    return data


def _kind(data):
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(data),
                                                                                              type(data).__name__)

"""Check a pickle's opcodes before an unpickler runs them.

CPython's C unpickler allocates what an opcode declares before it reads the data: a 30-byte
file whose BINBYTES8 / BYTEARRAY8 / FRAME declares 16 TiB, or whose LONG_BINPUT names memo
slot 2**31 (the memo table grows to it), ends in MemoryError, or in an allocation the size of
the machine. `scan_pickle` walks the opcode stream without building anything and refuses such
declarations, so the unpickler that runs next (`ppgan.weights.pdparams.SafeUnpickler` for
`.pdparams`, torch's weights-only one for `.pth`) only allocates what the file holds.

It also reports which globals the pickle names and which of them it calls (REDUCE, NEWOBJ,
OBJ, INST), by following the stack with just what that needs (short strings for
STACK_GLOBAL, globals, marks), as the C unpickler does: marks apart from the objects, and no
pop below the topmost mark.
"""
import dataclasses
import io
import pickle
import pickletools
import struct

# Far beyond any weight file (about 25 opcodes per array): bounds the scan's time and what a
# stream of one-byte opcodes (an empty list each) could build.
MAX_OPCODES = 4_000_000
_NAME_MAX = 256  # strings read to resolve STACK_GLOBAL names; longer ones are skipped unread

_LENGTH_PREFIX = {  # argument sizes given by a length prefix: (prefix bytes, struct format)
    pickletools.TAKEN_FROM_ARGUMENT1: (1, "<B"),
    pickletools.TAKEN_FROM_ARGUMENT4: (4, "<i"),
    pickletools.TAKEN_FROM_ARGUMENT4U: (4, "<I"),
    pickletools.TAKEN_FROM_ARGUMENT8U: (8, "<Q"),
}
_TEXT_OPS = {"SHORT_BINUNICODE": "utf-8", "BINUNICODE": "utf-8", "BINUNICODE8": "utf-8",
             "SHORT_BINSTRING": "latin-1", "BINSTRING": "latin-1"}
_GET_OPS = ("GET", "BINGET", "LONG_BINGET")
_PUT_OPS = ("PUT", "BINPUT", "LONG_BINPUT")
_CALL_OPS = ("REDUCE", "NEWOBJ", "NEWOBJ_EX")


class PickleScanError(pickle.UnpicklingError):
    """The pickle is malformed, truncated, or declares more than it holds."""


@dataclasses.dataclass
class PickleScan:
    """What `scan_pickle` saw: `ops` (opcode count), `globals` and `calls` (sets of
    (module, name); ('?', '?') for a name the scan could not resolve)."""

    ops: int = 0
    globals: set = dataclasses.field(default_factory=set)
    calls: set = dataclasses.field(default_factory=set)


class _Global:
    __slots__ = ("ref",)

    def __init__(self, ref):
        self.ref = ref


def _read_exact(f, n, op):
    data = f.read(n)
    if len(data) < n:
        raise PickleScanError(f"truncated in the argument of {op.name}")
    return data


def _argument(f, op, end):
    """The argument of `op` (a value when short and useful, else None), checking declared
    lengths against the bytes left before `end`."""
    arg = op.arg
    if arg is None:
        return None
    if arg.n >= 0:
        return arg.reader(io.BytesIO(_read_exact(f, arg.n, op)))
    if arg.n == pickletools.UP_TO_NEWLINE:
        try:
            return arg.reader(f)
        except ValueError as e:
            raise PickleScanError(f"bad argument of {op.name}: {e}") from None
    size, fmt = _LENGTH_PREFIX[arg.n]
    (length,) = struct.unpack(fmt, _read_exact(f, size, op))
    left = end - f.tell()
    if length < 0 or length > left:
        raise PickleScanError(f"{op.name} at byte {f.tell() - size - 1} declares {length} bytes, "
                              f"only {left} are left in the file")
    if op.name in _TEXT_OPS and length <= _NAME_MAX:
        try:
            return _read_exact(f, length, op).decode(_TEXT_OPS[op.name])
        except UnicodeDecodeError:
            return None
    f.seek(length, 1)
    return None


def scan_pickle(f, max_ops=None):
    """Walk one pickle from `f`'s position (a seekable binary file) to its STOP; `f` is left
    just after it. Returns a `PickleScan`; raises PickleScanError for an unknown opcode, a
    stream that ends before STOP, an argument longer than the rest of the file, a memo index
    beyond what the stream could have stored, more than `max_ops` (default MAX_OPCODES)
    opcodes, or a stack misuse."""
    max_ops = MAX_OPCODES if max_ops is None else max_ops
    start = f.tell()
    end = f.seek(0, io.SEEK_END)
    f.seek(start)
    out = PickleScan()
    stack, marks, memo = [], [], {}

    def pop(n):
        fence = marks[-1] if marks else 0
        if len(stack) - n < fence:
            raise PickleScanError(f"{op.name} at byte {pos} pops more than the stack holds")
        items = stack[len(stack) - n:]
        del stack[len(stack) - n:]
        return items

    def pop_to_mark():
        if not marks:
            raise PickleScanError(f"{op.name} at byte {pos} has no MARK")
        i = marks.pop()
        items = stack[i:]
        del stack[i:]
        return items

    while True:
        pos = f.tell()
        code = f.read(1)
        if not code:
            raise PickleScanError(f"truncated: the stream ends at byte {pos} without a STOP")
        op = pickletools.code2op.get(code.decode("latin-1"))
        if op is None:
            raise PickleScanError(f"unknown opcode {code!r} at byte {pos}")
        out.ops += 1
        if out.ops > max_ops:
            raise PickleScanError(f"more than {max_ops} opcodes (not a weight file)")
        value = _argument(f, op, end)
        name = op.name
        if name == "FRAME" and value > end - f.tell():
            raise PickleScanError(f"FRAME at byte {pos} declares {value} bytes, only {end - f.tell()} are left")
        if name == "MARK":
            marks.append(len(stack))
        elif name == "POP":
            if marks and len(stack) == marks[-1]:
                marks.pop()
            else:
                pop(1)
        elif name in _PUT_OPS or name == "MEMOIZE":
            index = len(memo) if name == "MEMOIZE" else value
            if not isinstance(index, int) or index < 0 or index > out.ops:
                raise PickleScanError(f"{name} at byte {pos} uses memo index {index}: a stream of "
                                      f"{out.ops} opcodes stores fewer objects")
            memo[index] = pop(1)[0]
            stack.append(memo[index])
        elif name in _GET_OPS:
            stack.append(memo.get(value))
        elif name == "DUP":
            stack.extend(pop(1) * 2)
        elif name in _TEXT_OPS or name in ("STRING", "UNICODE"):
            stack.append(value)
        elif name in ("GLOBAL", "INST"):
            module, _, attr = (value or "").partition(" ")
            out.globals.add((module, attr))
            if name == "INST":
                pop_to_mark()
                out.calls.add((module, attr))
            stack.append(_Global((module, attr)) if name == "GLOBAL" else None)
        elif name == "STACK_GLOBAL":
            module, attr = pop(2)
            ref = (module, attr) if isinstance(module, str) and isinstance(attr, str) else ("?", "?")
            out.globals.add(ref)
            stack.append(_Global(ref))
        elif name in _CALL_OPS or name == "OBJ":
            if name == "OBJ":
                items = pop_to_mark()
                func = items[0] if items else None
            else:
                func = pop(3 if name == "NEWOBJ_EX" else 2)[0]
            out.calls.add(func.ref if isinstance(func, _Global) else ("?", "?"))
            stack.append(None)
        elif name == "STOP":
            pop(1)
            return out
        else:  # the generic stack effect from pickletools' description of the opcode
            before = op.stack_before
            if pickletools.markobject in before:
                pop_to_mark()
                pop(before.index(pickletools.markobject))
            else:
                pop(len(before))
            stack.extend([None] * len(op.stack_after))

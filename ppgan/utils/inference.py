"""Run a generator on any image size: pad to the size the network needs, crop the result back.

Generators declare `size_multiple` (H and W must be multiples of it: the product of their
strides), optionally `min_input_size`, and, when they only take one size, `fixed_input_size` (H, W). `padded_forward`
pads bottom/right by reflection (edge replication for tiny images) and crops every output
that has the padded spatial size (times the network's scale); fixed-size nets get the input
resized to their size and the output resized back.
"""
import torch
import torch.nn.functional as F


def size_multiple(net):
    return int(getattr(net, "size_multiple", 1) or 1)


def pad_to_multiple(x, multiple, min_size=1):
    """Pad [N, C, H, W] bottom/right up to multiples of `multiple` (and at least `min_size`);
    return (x, (h, w))."""
    h, w = x.shape[-2:]
    ph = max((-h) % multiple, min_size - h) if h < min_size else (-h) % multiple
    pw = max((-w) % multiple, min_size - w) if w < min_size else (-w) % multiple
    ph, pw = ph + (-(h + ph)) % multiple, pw + (-(w + pw)) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def _crop(out, padded_hw, hw):
    if not torch.is_tensor(out) or out.ndim != 4:
        return out
    ph, pw = padded_hw
    sh, sw = out.shape[-2] / ph, out.shape[-1] / pw
    if sh != sw or sh <= 0 or (out.shape[-2] % ph and ph % out.shape[-2]):
        return out  # not an image-shaped output (e.g. a CAM logit)
    return out[..., : round(hw[0] * sh), : round(hw[1] * sw)]


def padded_forward(net, x, *args, **kwargs):
    """net(x) for any H, W: see the module docstring. Extra args are passed through."""
    fixed = getattr(net, "fixed_input_size", None)
    if fixed is not None and tuple(x.shape[-2:]) != tuple(fixed):
        h, w = x.shape[-2:]
        out = net(F.interpolate(x, size=tuple(fixed), mode="bilinear", align_corners=False), *args, **kwargs)

        def back(o):
            if torch.is_tensor(o) and o.ndim == 4 and tuple(o.shape[-2:]) == tuple(fixed):
                return F.interpolate(o, size=(h, w), mode="bilinear", align_corners=False)
            return o

        return tuple(back(o) for o in out) if isinstance(out, tuple) else back(out)
    xp, hw = pad_to_multiple(x, size_multiple(net), int(getattr(net, "min_input_size", 1) or 1))
    out = net(xp, *args, **kwargs)
    padded = tuple(xp.shape[-2:])
    if isinstance(out, tuple):
        return tuple(_crop(o, padded, hw) for o in out)
    return _crop(out, padded, hw)


def padded_video_forward(net, x, multiple=1, min_size=1):
    """net(x) for a clip x [N, T, C, H, W] of any H, W: every frame is padded bottom/right as
    `pad_to_multiple(frame, multiple, min_size)`, and the output ([N, C, sH, sW] or
    [N, T, C, sH, sW]) is cropped back to s*H x s*W."""
    n, t, c, h, w = x.shape
    frames, _ = pad_to_multiple(x.reshape(n * t, c, h, w), multiple, min_size)
    hp, wp = frames.shape[-2:]
    out = net(frames.reshape(n, t, c, hp, wp))
    if (hp, wp) == (h, w):
        return out
    scale = out.shape[-1] / wp
    return out[..., : round(h * scale), : round(w * scale)]


# ---------------------------------------------------------------- running out of memory
# Words by which native code reports an allocation it could not make: torch's CPU allocator
# ("DefaultCPUAllocator: can't allocate memory"), CUDA ("out of memory"), OpenCV ("Insufficient
# memory"), a thread whose stack could not be mapped ("can't start new thread").
_OOM_WORDS = ("can't allocate memory", "cannot allocate memory", "out of memory", "insufficient memory",
              "failed to allocate", "std::bad_alloc", "can't start new thread")
# oneDNN's "could not create a primitive" is usually a failed allocation, but not always: it
# counts only while an address-space limit is set.
_OOM_WORDS_UNDER_LIMIT = ("could not create a primitive",)


def is_out_of_memory(exc):
    """True when `exc` means memory ran out: MemoryError (numpy's `_ArrayMemoryError` too), torch's
    OutOfMemoryError (CUDA), or a RuntimeError / cv2.error whose text says an allocation failed."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    if not isinstance(exc, RuntimeError) and type(exc).__module__.partition(".")[0] != "cv2":
        return False
    text = str(exc).lower()
    words = _OOM_WORDS + (_OOM_WORDS_UNDER_LIMIT if address_space_limit() else ())
    return any(w in text for w in words)


def failed_allocation(exc):
    """Bytes of the allocation `exc` reports as failed ("tried to allocate 2097152 bytes",
    "Tried to allocate 1.50 GiB"), or None."""
    import re

    text = str(exc)
    m = re.search(r"allocate (\d+) bytes", text)
    if m:
        return int(m.group(1))
    m = re.search(r"allocate ([\d.]+) ([KMGTP]i?B)", text)
    if m:
        return int(float(m.group(1)) * 1024 ** ("KMGTP".index(m.group(2)[0]) + 1))
    return None


def format_bytes(n):
    """'512 KiB', '19.5 MiB', '1.34 GiB': three significant digits."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            break
        n /= 1024
    return f"{n:.0f} {unit}" if n >= 100 or unit == "B" else f"{n:.{1 if n >= 10 else 2}f} {unit}"


def address_space_limit():
    """The soft address-space limit of this process in bytes (`ulimit -v`), or None if unlimited."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, OSError, ValueError, AttributeError):  # not on Linux / macOS
        return None
    return None if soft in (resource.RLIM_INFINITY, -1) else int(soft)


def address_space_used():
    """Virtual memory this process has mapped (VmSize, what `ulimit -v` limits), in bytes, or None."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def memory_situation():
    """' (the process uses 1.1 GiB of its 1.2 GiB address-space limit, ulimit -v)' when a limit is
    set, else '': the tail of an out-of-memory message."""
    limit, used = address_space_limit(), address_space_used()
    if not limit:
        return ""
    if used is None:
        return f" (address-space limit {format_bytes(limit)}, ulimit -v)"
    return f" (the process uses {format_bytes(used)} of its {format_bytes(limit)} address-space limit, ulimit -v)"


def address_space_room():
    """Bytes this process may still map under its address-space limit, or None without a limit."""
    limit, used = address_space_limit(), address_space_used()
    return None if not limit or used is None else max(0, limit - used)


def checked_cpu_kernels(device):
    """Under an address-space limit on the CPU, turn torch's oneDNN (mkldnn) kernels off and return
    True: when an allocation fails inside them the process can crash (SIGSEGV in a convolution's
    backward) instead of raising, and they map more memory than the native kernels. Process-wide;
    nothing changes without a limit or on CUDA."""
    if torch.device(device).type != "cpu" or not address_space_limit() or not torch.backends.mkldnn.enabled:
        return False
    torch.backends.mkldnn.enabled = False
    return True

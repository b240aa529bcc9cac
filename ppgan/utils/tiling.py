"""Tiled inference: run an image-to-image net on an image of any size with memory bounded by a tile.

Why tiles and overlap (the receptive-field argument)
-----------------------------------------------------
Each output pixel of a fully convolutional net depends only on the input pixels within its
receptive-field radius R (in input pixels) of its own position. Cutting the input into windows
changes what the convolutions see only near a window edge: past it they read zeros (or the
reflection added by `padded_forward`) instead of the neighbouring image content. That error
can reach at most R input pixels into the window. So every window is a *core* of `tile` x `tile`
input pixels plus `overlap` pixels of context on each side, and only the output of the core is
kept. When `overlap >= R` the kept output equals whole-image inference up to float rounding;
at the image border the window edge is the image edge, where whole-image inference pads in
the same way. A smaller overlap gives a small seam error that grows as it shrinks.

R of a stack of stride-1 k x k convs is the number of convs times (k - 1) / 2 along the longest
path; an upsampling tail adds a little (in input pixels). For example RRDBNet (ESRGAN) with nb
RRDB blocks: conv_first (1) + 15 per RRDB (3 dense blocks, whose longest path is 5 convs) +
trunk_conv (1) at input resolution, then upconv1 at x2 and upconv2, HRconv, conv_last at x4,
which reach 2 more input pixels: R = 15 * nb + 4 (19 for nb=1, 349 for the 23-block ESRGAN,
so tiling a deep ESRGAN is exact only with a large overlap; its influence decays fast, though: measured on Real-ESRGAN x4plus (64-pixel cores), the largest
difference to whole-image inference is 1.6e-1 at overlap 24, 5.8e-2 at 40, 6.7e-4 at 64,
4.5e-5 at 96 and 1e-6 at 128 (outputs in [0, 1]), so 64 is invisible and 96 is within 1e-4).

Two more conditions make the result exact: windows start at multiples of the net's
`size_multiple` (so strided / pixel-unshuffled grids line up with whole-image inference; the
whole input is padded once to that multiple, as `padded_forward` would), and the net has no
image-global operation (global pooling, instance norm, batch norm in train mode, attention
over the whole image), which no tiling can reproduce.

Progress: with `progress='label'` an image of more than one window shows a bar (tiles, tiles/s,
ETA) on a terminal, and otherwise logs a line (`ppgan` logger, INFO) every `LOG_EVERY` seconds and
at the end, so a long single image (a 512x512 photo through an x4 RRDBNet on a small CPU takes
minutes) is never silent.
"""
import logging
import math
import sys
import time

import torch

from .errors import ConfigError
from .inference import pad_to_multiple, padded_forward, size_multiple


def _round_up(v, m):
    return int(math.ceil(v / m) * m)


def _windows(length, tile, overlap):
    """[(core_start, core_end, window_start, window_end)] along one axis. Every window has the
    same length min(tile + 2 * overlap, length); windows at the borders are shifted inwards."""
    win = min(tile + 2 * overlap, length)
    out = []
    for c0 in range(0, length, tile):
        c1 = min(c0 + tile, length)
        w0 = min(max(c0 - overlap, 0), length - win)
        out.append((c0, c1, w0, w0 + win))
    return out


LOG_EVERY = 10.0  # seconds between progress lines when stderr is not a terminal


def _duration(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class TileProgress:
    """Progress of the windows of one image: a tqdm bar on a TTY, else a log line every
    `LOG_EVERY` seconds and one at the end (`label: tiles 12/48, 0.40 tiles/s, ETA 1m30s`)."""

    def __init__(self, label, total):
        self.label, self.total, self.done = label, total, 0
        self.start = self.last = time.monotonic()
        self.bar = None
        if sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=label, unit="tile", leave=False, file=sys.stderr)
            except ImportError:  # pragma: no cover
                pass
        self.log = logging.getLogger("ppgan")

    def update(self, k):
        self.done += k
        if self.bar is not None:
            self.bar.update(k)
            return
        now = time.monotonic()
        if self.done >= self.total or now - self.last >= LOG_EVERY:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            if self.done >= self.total:
                tail = f"done in {_duration(now - self.start)}"
            else:
                tail = f"ETA {_duration((self.total - self.done) / rate)}"
            self.log.info(f"{self.label}: tiles {self.done}/{self.total}, {rate:.2f} tiles/s, {tail}")

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _net_device(net, x):
    for p in net.parameters():
        return p.device
    return x.device


def tiled_forward(net, x, scale=None, tile=256, overlap=16, batch=1, out_device=None, device=None, progress=None):
    """`net(x)` computed window by window, pasting only each window's core into the output.

    Args:
        net (nn.Module): an image-to-image net (in eval mode) whose output is [N, C', s*H, s*W]
            for an [N, C, H, W] input, with an optional `size_multiple` / `min_input_size`
            (see `ppgan.utils.inference`).
        x (Tensor): [N, C, H, W] input of any size, on any device (windows are moved to
            `device` one batch at a time).
        scale (int | None): the net's spatial up-scaling factor s (1 for restoration / translation
            nets). None: infer it from the first window's output.
        tile (int): core size in input pixels (default 256); rounded up to a multiple of the
            net's `size_multiple`.
        overlap (int): context on each side of the core in input pixels (default 16), rounded
            up likewise. Exact (to float rounding) when >= the net's receptive-field radius
            (module docstring).
        batch (int): windows per forward pass (default 1); all windows have the same size.
        out_device (torch.device | str | None): where the output is assembled (default: x's
            device). Use 'cpu' to keep a large output off the GPU.
        device (torch.device | str | None): where windows run (default: the net's device).
        progress (str | None): a label: show the progress of the windows (`TileProgress`) when
            there is more than one. None (default): silent.

    Returns:
        Tensor: [N, C', s*H, s*W] on `out_device`, in the net's output dtype.

    Peak memory is one batch of windows of (tile + 2 * overlap)^2 input pixels through the net,
    plus the input and the output tensors themselves.
    """
    if x.ndim != 4:
        raise ValueError(f"tiled_forward expects an [N, C, H, W] tensor, got shape {tuple(x.shape)}")
    if getattr(net, "fixed_input_size", None) is not None:
        raise ConfigError(f"{type(net).__name__} takes one fixed input size; it cannot be tiled")
    if int(tile) < 1 or int(overlap) < 0 or int(batch) < 1:
        raise ConfigError(f"tiled_forward needs tile >= 1, overlap >= 0, batch >= 1; got {tile}, {overlap}, {batch}")
    m = size_multiple(net)
    tile, overlap = _round_up(int(tile), m), _round_up(int(overlap), m)
    device = torch.device(device) if device is not None else _net_device(net, x)
    out_device = torch.device(out_device) if out_device is not None else x.device

    xp, (h, w) = pad_to_multiple(x, m, int(getattr(net, "min_input_size", 1) or 1))  # as padded_forward
    hp, wp = xp.shape[-2:]
    jobs = [(ry, rx) for ry in _windows(hp, tile, overlap) for rx in _windows(wp, tile, overlap)
            if ry[0] < h and rx[0] < w]  # cores lying wholly in the padding add nothing
    n = x.shape[0]
    out = None
    bar = TileProgress(progress, len(jobs)) if progress and len(jobs) > 1 else None
    try:
        out = _run_windows(net, xp, jobs, batch, device, out_device, scale, n, h, w, bar)
    finally:
        if bar is not None:
            bar.close()
    return out


def _run_windows(net, xp, jobs, batch, device, out_device, scale, n, h, w, bar):
    """The loop of `tiled_forward`: each batch of windows through the net, cores pasted."""
    out = None
    with torch.no_grad():
        for start in range(0, len(jobs), batch):
            group = jobs[start:start + batch]
            inp = torch.cat([xp[..., y0:y1, x0:x1] for (_, _, y0, y1), (_, _, x0, x1) in group]).to(device)
            res = padded_forward(net, inp)
            if not torch.is_tensor(res) or res.ndim != 4:
                raise ValueError(f"tiled_forward needs a net returning one [N, C, H, W] tensor, "
                                 f"got {type(res).__name__}")
            win_h, win_w = inp.shape[-2:]
            if scale is None:
                if res.shape[-2] % win_h or res.shape[-2] // win_h != res.shape[-1] // win_w:
                    raise ValueError(f"cannot infer an integer scale from {tuple(inp.shape[-2:])} -> "
                                     f"{tuple(res.shape[-2:])}")
                scale = res.shape[-2] // win_h
            s = int(scale)
            if tuple(res.shape[-2:]) != (win_h * s, win_w * s):
                raise ValueError(f"net output {tuple(res.shape[-2:])} for a {win_h}x{win_w} window is not "
                                 f"x{s}; pass the net's scale")
            if out is None:
                out = torch.empty((n, res.shape[1], h * s, w * s), dtype=res.dtype, device=out_device)
            for i, ((c0y, c1y, y0, _), (c0x, c1x, x0, _)) in enumerate(group):
                c1y, c1x = min(c1y, h), min(c1x, w)  # the padded rows / columns are not kept
                piece = res[i * n:(i + 1) * n, :, (c0y - y0) * s:(c1y - y0) * s, (c0x - x0) * s:(c1x - x0) * s]
                out[..., c0y * s:c1y * s, c0x * s:c1x * s] = piece.to(out_device)
            if bar is not None:
                bar.update(len(group))
    return out

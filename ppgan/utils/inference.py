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

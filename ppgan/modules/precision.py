"""The dtype a layer computes in, for code that allocates its own buffers or picks dtypes itself.

Under `torch.autocast` a convolution or matmul runs in the autocast dtype whatever its input's
dtype; without autocast it runs in its input's dtype (a net cast with `net.to(torch.bfloat16)`).
Buffers written by such layers (RRDBNet's dense-block buffer) and the operands of hand-written ops
(the deformable conv's sampled columns) should be in that dtype, or every write is a cast.
"""
import torch


def compute_dtype(x):
    """The dtype convs/matmuls on floating tensor `x` compute in: the autocast dtype when autocast
    is enabled for x's device type, else x.dtype."""
    if x.is_floating_point():
        device_type = x.device.type
        if torch.is_autocast_enabled(device_type):
            return torch.get_autocast_dtype(device_type)
    return x.dtype


def coordinate_dtype(dtype):
    """The dtype for sampling coordinates and index maths next to data of `dtype`: at least
    float32 (fp16 has a 0.25-pixel spacing at 256..512, bf16 a 2-pixel one)."""
    return torch.promote_types(dtype, torch.float32)

"""ppgan.modules.sr_blocks: shared super-resolution blocks."""
import math

import pytest
import torch
from torch import nn

from ppgan.modules.sr_blocks import (PixelShufflePack, ResidualBlockNoBN, Upsampler, make_layer,
                                     paddle_default_init_)


def test_make_layer_names_and_kwargs():
    seq = make_layer(nn.Conv2d, 3, in_channels=2, out_channels=2, kernel_size=1)
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2"]
    named = make_layer(ResidualBlockNoBN, 2, name_fmt="block{}", nf=4)
    assert "block1.conv2.weight" in named.state_dict()
    assert len(make_layer(nn.Identity, 0)) == 0
    with pytest.raises(ValueError):
        make_layer(nn.Identity, -1)


@pytest.mark.parametrize("scale,n_convs", [(2, 1), (3, 1), (4, 2), (8, 3)])
def test_upsampler(scale, n_convs):
    up = Upsampler(scale, 4)
    convs = [m for m in up if isinstance(m, nn.Conv2d)]
    assert len(convs) == n_convs and isinstance(up[1], nn.PixelShuffle)
    assert up(torch.rand(1, 4, 3, 5)).shape == (1, 4, 3 * scale, 5 * scale)


@pytest.mark.parametrize("scale", [0, 1, 5, 6])
def test_upsampler_rejects_scale(scale):
    with pytest.raises(ValueError, match="power of two"):
        Upsampler(scale, 4)


def test_pixel_shuffle_pack_and_residual_block():
    psp = PixelShufflePack(4, 3, 2, 3)
    assert psp(torch.rand(1, 4, 5, 6)).shape == (1, 3, 10, 12)
    blk = ResidualBlockNoBN(nf=4, res_scale=0.5)
    with torch.no_grad():
        blk.conv2.weight.zero_()
        blk.conv2.bias.fill_(1.0)
        x = torch.rand(1, 4, 5, 5)
        torch.testing.assert_close(blk(x), x + 0.5)


def test_paddle_default_init():
    torch.manual_seed(0)
    conv = paddle_default_init_(nn.Conv2d(64, 64, 3))
    assert torch.all(conv.bias == 0)
    assert abs(conv.weight.std().item() - math.sqrt(2 / (64 * 9))) < 0.002

"""PReNet: progressive recurrent network for single-image deraining (the LSTM variant), PaddleGAN layout.

Paper: Ren et al., "Progressive Image Deraining Networks: A Better and Simpler Baseline", CVPR 2019,
https://arxiv.org/abs/1901.09221.
Reference: https://github.com/csdwren/PReNet (`PReNet` in `networks.py`) as ported by PaddleGAN
`ppgan/models/generators/prenet.py`.

Attribute names are PaddleGAN's (`conv0.0`, `res_conv1.0`, `res_conv1.2`, `conv_i.0`, ..., `conv.0`),
so `.pdparams` load by name. PaddleGAN initialises every conv with KaimingUniform(fan_in=6 * fan_in)
weights and U(+-1/sqrt(fan_in)) biases, which is PyTorch's default conv init, kept here.
"""
import torch
from torch import nn

from ...utils.errors import ConfigError
from .builder import GENERATORS

__all__ = ["PReNet"]

FEATS = 32  # hidden channels, fixed in PReNet


def _conv(cin, cout):
    return nn.Conv2d(cin, cout, 3, 1, 1)


def _res_block():
    return nn.Sequential(_conv(FEATS, FEATS), nn.ReLU(), _conv(FEATS, FEATS), nn.ReLU())


@GENERATORS.register()
class PReNet(nn.Module):
    """Rainy RGB image [N, 3, H, W] in [0, 1] -> derained image [N, 3, H, W] (any H, W; not clamped).

    Each of `recurrent_iter` stages sees the rainy input beside the previous stage's estimate
    (the input itself at first), updates a convolutional LSTM state (h, c) and predicts the
    estimate as input + a residual from five residual blocks. The weights are shared by all stages.

    Args:
        recurrent_iter (int): number of stages T (default 6).
        use_GPU (bool): PaddleGAN's device switch; accepted and ignored (default True).
    """

    def __init__(self, recurrent_iter=6, use_GPU=True):
        super().__init__()
        if isinstance(recurrent_iter, bool) or not isinstance(recurrent_iter, int) or recurrent_iter < 1:
            raise ConfigError(f"PReNet recurrent_iter must be an integer >= 1, got {recurrent_iter!r}")
        self.iteration = recurrent_iter
        self.conv0 = nn.Sequential(_conv(6, FEATS), nn.ReLU())
        for i in range(1, 6):
            setattr(self, f"res_conv{i}", _res_block())
        self.conv_i = nn.Sequential(_conv(2 * FEATS, FEATS), nn.Sigmoid())
        self.conv_f = nn.Sequential(_conv(2 * FEATS, FEATS), nn.Sigmoid())
        self.conv_g = nn.Sequential(_conv(2 * FEATS, FEATS), nn.Tanh())
        self.conv_o = nn.Sequential(_conv(2 * FEATS, FEATS), nn.Sigmoid())
        self.conv = nn.Sequential(_conv(FEATS, 3))

    def forward(self, input):
        """input: [N, 3, H, W] -> [N, 3, H, W], the last stage's estimate."""
        if input.ndim != 4 or input.shape[1] != 3:
            raise ValueError(f"PReNet needs [N, 3, H, W], got {tuple(input.shape)}")
        n, _, h, w = input.shape
        hidden = input.new_zeros(n, FEATS, h, w)
        cell = input.new_zeros(n, FEATS, h, w)
        x = input
        for _ in range(self.iteration):
            x = self.conv0(torch.cat((input, x), 1))
            # convolutional LSTM step on [features, previous hidden state]
            x = torch.cat((x, hidden), 1)
            i, f, g, o = self.conv_i(x), self.conv_f(x), self.conv_g(x), self.conv_o(x)
            cell = f * cell + i * g
            hidden = o * torch.tanh(cell)
            x = hidden
            for block in (self.res_conv1, self.res_conv2, self.res_conv3, self.res_conv4, self.res_conv5):
                x = torch.relu(block(x) + x)
            x = self.conv(x) + input
        return x

"""Fully-connected GAN discriminator, the partner of `MLPGenerator`."""
from torch import nn

from .builder import DISCRIMINATORS


@DISCRIMINATORS.register()
class MLPDiscriminator(nn.Module):
    """image [N, input_nc, size, size] -> logit [N, 1].

    Args:
        input_nc (int): input channels (default 1).
        size (int): image size (default 32).
        hidden_dims (list[int]): hidden widths (default [512, 256]).
        dropout (float): dropout after each hidden layer (default 0.0).
    """

    def __init__(self, input_nc=1, size=32, hidden_dims=(512, 256), dropout=0.0):
        super().__init__()
        layers, prev = [nn.Flatten()], input_nc * size * size
        for h in hidden_dims:
            layers += [nn.Linear(prev, h), nn.LeakyReLU(0.2)]
            layers += [nn.Dropout(dropout)] if dropout > 0 else []
            prev = h
        layers += [nn.Linear(prev, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)

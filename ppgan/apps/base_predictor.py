"""Base class of the one-shot applications: device choice and weight loading, done once."""
import torch

from ..engine.trainer import resolve_device


class BasePredictor:
    """Args:
        device (str): 'auto' (CUDA when present), 'cpu' or 'cuda' (an error without a GPU).
    """

    def __init__(self, device="auto"):
        self.device = resolve_device(device)

    @torch.no_grad()
    def run(self, *args, **kwargs):
        raise NotImplementedError

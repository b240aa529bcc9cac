"""BatchNorm as PaddleGAN's `build_norm_layer('batch')` builds it."""
import torch.nn.functional as F
from torch import nn


class TrainableStatsBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that normalises with the current batch's statistics in eval mode too.

    PaddleGAN's 'batch' norm is `paddle.nn.BatchNorm(..., trainable_statistics=True)`, which uses
    batch mean and biased variance (over N, H, W) in both modes, as pix2pix does at test time.
    The running buffers exist so `.pdparams` (`_mean` / `_variance`) load, and are updated in
    training mode (PyTorch momentum 0.1 == Paddle momentum 0.9), but never affect the output.
    In eval mode they are left untouched. Needs more than one value per channel (N*H*W > 1).
    """

    def forward(self, x):
        if self.training:
            return super().forward(x)
        self._check_input_dim(x)
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)

"""Dense + upsampling-conv generators (PaddleGAN `DeepConvGenerator`, `ConditionalDeepConvGenerator`).

Reference: PaddleGAN ppgan/models/generators/deep_conv.py (after PyTorch-GAN's DCGAN/CGAN).
"""
import torch
import torch.nn.functional as F
from torch import nn

from ...utils.errors import ConfigError
from ...modules.norm import paddle_bn_momentum
from .builder import GENERATORS


@GENERATORS.register()
class DeepConvGenerator(nn.Module):
    """z [N, latent_dim] -> Linear -> [N, 2*ngf, S/4, S/4] -> 2x (upsample, conv) -> [N, output_nc, S, S].

    Args:
        latent_dim (int): latent size.
        output_nc (int): output channels.
        size (int): output size S, divisible by 4 (default 64).
        ngf (int): channels of the last hidden layer (default 64).
    """

    def __init__(self, latent_dim, output_nc, size=64, ngf=64):
        super().__init__()
        if size % 4:
            raise ConfigError(f"size must be divisible by 4, got {size}")
        self.latent_dim = latent_dim
        self.ngf = ngf
        self.init_size = size // 4
        self.l1 = nn.Sequential(nn.Linear(latent_dim, ngf * 2 * self.init_size ** 2))
        # Paddle's BatchNorm2D(C, 0.2): 0.2 is the momentum (eps stays 1e-5).
        self.conv_blocks = nn.Sequential(
            nn.BatchNorm2d(ngf * 2),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(ngf * 2, ngf * 2, 3, stride=1, padding=1),
            nn.BatchNorm2d(ngf * 2, momentum=paddle_bn_momentum(0.2)),
            nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(ngf * 2, ngf, 3, stride=1, padding=1),
            nn.BatchNorm2d(ngf, momentum=paddle_bn_momentum(0.2)),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ngf, output_nc, 3, stride=1, padding=1),
            nn.Tanh(),
        )

    def random_inputs(self, batch_size, generator=None, device=None):
        return torch.randn(batch_size, self.latent_dim, generator=generator, device=device)

    def forward(self, z):
        out = self.l1(z)
        out = out.view(out.shape[0], self.ngf * 2, self.init_size, self.init_size)
        return self.conv_blocks(out)


@GENERATORS.register()
class ConditionalDeepConvGenerator(DeepConvGenerator):
    """Class-conditional `DeepConvGenerator`: the one-hot class is concatenated after z.

    Args:
        latent_dim (int): latent size (without the one-hot).
        output_nc (int): output channels.
        n_class (int): number of classes (default 10).
        size (int): output size, divisible by 4 (default 64).
        ngf (int): channels of the last hidden layer (default 64).
    forward(x [N, latent_dim], class_id [N] int64) -> [N, output_nc, size, size].
    """

    def __init__(self, latent_dim, output_nc, n_class=10, size=64, ngf=64):
        super().__init__(latent_dim + n_class, output_nc, size=size, ngf=ngf)
        self.n_class = n_class
        self.latent_dim = latent_dim

    def random_inputs(self, batch_size, generator=None, device=None):
        z = torch.randn(batch_size, self.latent_dim, generator=generator, device=device)
        class_id = torch.randint(0, self.n_class, (batch_size,), generator=generator, device=device)
        return [z, class_id]

    def forward(self, x, class_id=None):
        if self.n_class > 0:
            if class_id is None:
                raise ConfigError("ConditionalDeepConvGenerator needs class_id")
            onehot = F.one_hot(class_id.long() % self.n_class, self.n_class).to(x.dtype)
            x = torch.cat([x, onehot.reshape(x.shape[0], -1)], 1)
        return super().forward(x)

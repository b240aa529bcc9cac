"""The maths of ppgan/modules/improved_gan.py against hand computations (numpy loops)."""
import numpy as np
import pytest
import torch
from torch import nn

from ppgan.models.generators.dcgenerator import DCGenerator
from ppgan.modules.improved_gan import (HistoricalAverage, MinibatchDiscrimination, VirtualBatchNorm2d,
                                        feature_matching_loss, pack)
from ppgan.utils.errors import ConfigError


def test_minibatch_discrimination_against_a_loop():
    torch.manual_seed(0)
    n, a, b, c = 5, 7, 4, 3
    layer = MinibatchDiscrimination(a, b, c, init_std=0.3)
    x = torch.randn(n, a, dtype=torch.float64)
    layer.double()
    out = layer(x).detach().numpy()
    xs, t = x.numpy(), layer.T.detach().numpy()
    m = xs @ t  # [n, b*c]
    expected = np.zeros((n, b))
    for i in range(n):
        for k in range(b):
            for j in range(n):
                if j != i:
                    dist = sum(abs(m[i, k * c + d] - m[j, k * c + d]) for d in range(c))
                    expected[i, k] += np.exp(-dist)
    assert out.shape == (n, a + b)
    np.testing.assert_allclose(out[:, :a], xs)
    np.testing.assert_allclose(out[:, a:], expected, rtol=1e-10)


def test_minibatch_discrimination_sees_a_collapsed_batch():
    layer = MinibatchDiscrimination(6, 4, 2)
    same = torch.randn(1, 6).repeat(5, 1)  # five identical samples: every c_b = 1
    out = layer(same)
    torch.testing.assert_close(out[:, 6:], torch.full((5, 4), 4.0))
    spread = layer(torch.randn(5, 6) * 10)
    assert spread[:, 6:].max() < 4.0
    assert layer(torch.randn(1, 6))[:, 6:].abs().max() == 0  # a batch of one has no neighbours
    with pytest.raises(ConfigError):
        MinibatchDiscrimination(6, 0, 2)


def test_virtual_batch_norm_by_hand():
    torch.manual_seed(1)
    r, n, ch = 4, 3, 2
    layer = VirtualBatchNorm2d(ch, r)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([2.0, 0.5]))
        layer.bias.copy_(torch.tensor([0.1, -1.0]))
    x = torch.randn(r + n, ch, 3, 3, dtype=torch.float64) * 3 + 1
    out = layer(x).detach().numpy()
    xs = x.numpy()
    ref = xs[:r]
    for ci in range(ch):
        ref_mean, ref_sq = ref[:, ci].mean(), (ref[:, ci] ** 2).mean()
        for i in range(r + n):
            if i < r:
                mean, sq = ref_mean, ref_sq
            else:  # statistics of the reference batch plus this example: (r * ref + own) / (r + 1)
                values = np.concatenate([ref[:, ci].ravel(), xs[i, ci].ravel()])
                mean, sq = values.mean(), (values ** 2).mean()
            expect = (xs[i, ci] - mean) / np.sqrt(sq - mean ** 2 + 1e-5) * [2.0, 0.5][ci] + [0.1, -1.0][ci]
            np.testing.assert_allclose(out[i, ci], expect, rtol=1e-6, atol=1e-9)


def test_virtual_batch_norm_makes_each_sample_independent_of_the_batch():
    gen = DCGenerator(input_nz=6, input_nc=1, output_nc=1, ngf=4, norm_type="virtual_batch", output_size=8,
                      vbn_ref_size=5)
    assert "vbn_ref_z" in gen.state_dict() and gen.vbn_ref_z.shape == (5, 6, 1, 1)
    z = torch.randn(4, 6)
    alone = gen(z[:1])
    together = gen(z)
    assert together.shape == (4, 1, 8, 8)
    torch.testing.assert_close(together[:1], alone)  # unlike batch norm, the batch does not matter
    gen.eval()
    torch.testing.assert_close(gen(z), together)     # no running statistics: eval mode is the same
    gen.vbn_ref_z.normal_()                          # the reference batch sets the statistics
    assert not torch.allclose(gen(z), together)
    same = DCGenerator(input_nz=6, input_nc=1, output_nc=1, ngf=4, norm_type="virtual_batch", output_size=8,
                       vbn_ref_size=5)
    again = DCGenerator(6, 1, 1, 4, "virtual_batch", output_size=8, vbn_ref_size=5)
    assert torch.equal(same.vbn_ref_z, again.vbn_ref_z)  # fixed by vbn_seed
    # ... and not the first latents of a seed-0 sample grid (those samples came out as noise)
    grid_z = torch.randn(5, 6, 1, 1, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(same.vbn_ref_z, grid_z)
    bn = DCGenerator(input_nz=6, input_nc=1, output_nc=1, ngf=4, output_size=8)
    assert not any("vbn" in k for k in bn.state_dict())  # PaddleGAN's keys unchanged without it


def test_historical_average_penalty_by_hand():
    net = nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, 2.0]]))
        net.bias.fill_(0.0)
    hist = HistoricalAverage(net)
    assert float(hist.penalty(net).detach()) == 0.0
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[3.0, 2.0]]))
        net.bias.fill_(4.0)
    # mean of {theta_0} = ([1, 2], 0): penalty (3-1)^2 + 0 + 4^2 = 20
    assert float(hist.penalty(net).detach()) == pytest.approx(20.0)
    hist.update(net)  # mean of {theta_0, theta_1} = ([2, 2], 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[5.0, 2.0]]))
        net.bias.fill_(-1.0)
    assert float(hist.penalty(net).detach()) == pytest.approx((5 - 2) ** 2 + 0 + (-1 - 2) ** 2)
    hist.update(net)  # mean of three: ([3, 2], 1)
    torch.testing.assert_close(hist.means()[0], torch.tensor([[3.0, 2.0]]))
    torch.testing.assert_close(hist.means()[1], torch.tensor([1.0]))
    assert float(hist.count) == 3
    penalty = hist.penalty(net)
    penalty.backward()  # gradient 2 (theta - mean)
    torch.testing.assert_close(net.weight.grad, torch.tensor([[4.0, 0.0]]))
    hist.reset(net)
    assert float(hist.penalty(net).detach()) == 0.0 and float(hist.count) == 1


def test_pack_stacks_consecutive_samples_along_channels():
    x = torch.arange(6 * 2 * 2 * 2, dtype=torch.float32).view(6, 2, 2, 2)
    packed = pack(x, 3)
    assert packed.shape == (2, 6, 2, 2)
    assert torch.equal(packed[0], torch.cat([x[0], x[1], x[2]]))
    assert torch.equal(packed[1], torch.cat([x[3], x[4], x[5]]))
    assert pack(x, 1) is x
    with pytest.raises(ValueError):
        pack(x, 4)


def test_feature_matching_loss_by_hand():
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])   # mean (2, 3)
    fake = torch.tensor([[0.0, 0.0], [0.0, 2.0], [0.0, 1.0]])  # mean (0, 1)
    assert float(feature_matching_loss(real, fake)) == pytest.approx((4 + 4) / 2)


def test_dc_discriminator_features_and_bad_options():
    from ppgan.models.discriminators.dcdiscriminator import DCDiscriminator

    x = torch.rand(3, 1, 16, 16)
    plain = DCDiscriminator(1, ndf=4, norm_type="batch", input_size=16).eval()
    out, feat = plain(x, return_features=True)
    assert torch.equal(out, plain(x)) and out.shape == (3, 1, 1, 1) and feat.shape == (3, 8 * 4 * 4)
    md = DCDiscriminator(1, ndf=4, norm_type="batch", input_size=16, minibatch_kernels=5, minibatch_kernel_dim=2).eval()
    out, feat = md(x, return_features=True)
    assert out.shape == (3, 1, 1, 1) and feat.shape == (3, 8 * 4 * 4) and md.head.in_features == 8 * 4 * 4 + 5
    with pytest.raises(ConfigError):
        DCDiscriminator(1, ndf=4, input_size=16, minibatch_kernels=-1)
    with pytest.raises(ConfigError):
        DCGenerator(6, 1, 1, ngf=4, norm_type="virtual_batch", output_size=8, vbn_ref_size=0)

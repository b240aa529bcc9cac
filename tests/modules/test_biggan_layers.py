"""BigGAN layers against hand computations: spectral norm, orthogonal regularisation,
class-conditional batch norm (fed by the shared embedding and a z chunk), self-attention and the
projection discriminator's class term."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ppgan.models.discriminators.discriminator_biggan import BigGANDiscriminator
from ppgan.models.generators.biggan import BigGANGenerator
from ppgan.modules.biggan_layers import (ClassConditionalBatchNorm2d, SelfAttention, SNConv2d, SNEmbedding, SNLinear,
                                         orthogonal_regularization)


@pytest.mark.parametrize("make", [lambda: SNLinear(12, 7), lambda: SNConv2d(3, 6, 3), lambda: SNEmbedding(5, 9)])
def test_spectral_norm_sigma_is_one_after_power_iterations(make):
    torch.manual_seed(0)
    layer = make()
    with torch.no_grad():
        layer.weight.mul_(5.0)  # far from norm 1 before normalisation
    w = layer.weight.reshape(layer.weight.shape[0], -1)
    true_sigma = torch.linalg.matrix_norm(w, 2)
    assert true_sigma > 2
    layer.train()
    for _ in range(50):  # one power iteration per training forward
        layer.sn_weight()
    w_sn = layer.sn_weight().reshape(w.shape)
    assert torch.linalg.matrix_norm(w_sn, 2).item() == pytest.approx(1.0, abs=1e-3)
    assert layer.sn_sigma().item() == pytest.approx(true_sigma.item(), rel=1e-3)
    # eval mode: no state change
    layer.eval()
    u = layer.sn_u.clone()
    layer.sn_weight()
    assert torch.equal(u, layer.sn_u)


def test_spectral_norm_forward_uses_normalised_weight():
    torch.manual_seed(1)
    lin = SNLinear(4, 3).eval()
    x = torch.randn(2, 4)
    expected = x @ (lin.weight / lin.sn_sigma()).t() + lin.bias
    torch.testing.assert_close(lin(x), expected)


def test_orthogonal_regularization_against_hand_formula():
    rng = np.random.default_rng(0)
    conv = rng.normal(size=(4, 2, 3, 3)).astype(np.float32)
    lin = rng.normal(size=(5, 3)).astype(np.float32)
    bias = rng.normal(size=(4,)).astype(np.float32)  # 1-D: skipped
    expected = 0.0
    for w in (conv.reshape(4, -1), lin):
        for i in range(w.shape[0]):
            for j in range(w.shape[0]):
                if i != j:
                    expected += float(np.dot(w[i], w[j])) ** 2
    got = orthogonal_regularization([torch.from_numpy(conv), torch.from_numpy(lin), torch.from_numpy(bias)])
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # orthogonal rows of any lengths cost nothing (the diagonal is not penalised)
    q = torch.linalg.qr(torch.randn(6, 4))[0].t()            # [4, 6], orthonormal rows
    scaled = q * torch.tensor([[0.5], [2.0], [3.0], [1.0]])
    assert orthogonal_regularization([scaled]).item() == pytest.approx(0.0, abs=1e-9)
    assert orthogonal_regularization([torch.ones(3)]).item() == 0.0


def test_conditional_batch_norm_by_hand():
    torch.manual_seed(2)
    bn = ClassConditionalBatchNorm2d(3, 5, sn=False).train()
    x, cond = torch.randn(4, 3, 2, 2), torch.randn(4, 5)
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    gain = 1 + cond @ bn.gain.weight.t()
    bias = cond @ bn.bias.weight.t()
    expected = (x - mean) / torch.sqrt(var + 1e-5) * gain[:, :, None, None] + bias[:, :, None, None]
    torch.testing.assert_close(bn(x, cond), expected, rtol=1e-5, atol=1e-5)


def test_generator_batch_norms_get_shared_embedding_and_their_z_chunk():
    torch.manual_seed(3)
    g = BigGANGenerator(n_class=4, size=32, output_nc=1, ch=2, latent_dim=16, shared_dim=6, attention=16)
    assert g.z_chunk == 4 and g.n_slots == 4
    seen = {}
    for i, block in enumerate(g.blocks):
        for name in ("bn1", "bn2"):
            getattr(block, name).register_forward_hook(
                lambda m, args, out, key=(i, name): seen.__setitem__(key, args[1].detach().clone()))
    z, y = torch.randn(3, 16), torch.tensor([0, 3, 1])
    g(z, y)
    shared = g.shared(y)
    for i in range(3):
        expected = torch.cat([shared, z[:, 4 * (i + 1):4 * (i + 2)]], 1)  # chunk 0 feeds the first linear
        torch.testing.assert_close(seen[(i, "bn1")], expected)
        torch.testing.assert_close(seen[(i, "bn2")], expected)
    # the first linear sees only chunk 0: changing the later chunks changes nothing there
    captured = []
    g.linear.register_forward_hook(lambda m, args, out: captured.append(args[0]))
    g(z, y)
    torch.testing.assert_close(captured[-1], z[:, :4])


def test_self_attention_by_hand():
    torch.manual_seed(4)
    att = SelfAttention(8, sn=False)
    x = torch.randn(2, 8, 4, 4)
    torch.testing.assert_close(att(x), x)  # gamma starts at 0: identity
    with torch.no_grad():
        att.gamma.fill_(0.7)
    out = att(x)
    for n in range(2):
        theta = F.conv2d(x[n:n + 1], att.theta.weight)[0].reshape(1, 16)            # [C/8, HW]
        phi = F.max_pool2d(F.conv2d(x[n:n + 1], att.phi.weight), 2)[0].reshape(1, 4)
        g = F.max_pool2d(F.conv2d(x[n:n + 1], att.g.weight), 2)[0].reshape(4, 4)     # [C/2, HW/4]
        o = torch.zeros(4, 16)
        for i in range(16):  # every position attends over the 4 pooled positions
            logits = torch.stack([theta[:, i] @ phi[:, j] for j in range(4)])
            w = torch.softmax(logits, 0)
            o[:, i] = (g * w).sum(1)
        expected = x[n] + 0.7 * F.conv2d(o.reshape(1, 4, 4, 4), att.o.weight)[0]
        torch.testing.assert_close(out[n], expected, rtol=1e-5, atol=1e-5)


def test_projection_discriminator_class_term():
    torch.manual_seed(5)
    d = BigGANDiscriminator(n_class=3, size=32, input_nc=1, ch=2).eval()
    x = torch.randn(2, 1, 32, 32)
    h = d.features(x)
    assert h.shape == (2, d.feat_dim) and (h >= 0).all()
    embed = d.embed.weight / d.embed.sn_sigma()
    w = d.linear.weight / d.linear.sn_sigma()
    for y in ([0, 2], [1, 1]):
        y = torch.tensor(y)
        expected = (h @ w.t()).squeeze(1) + d.linear.bias + (embed[y] * h).sum(1)
        torch.testing.assert_close(d(x, y), expected, rtol=1e-5, atol=1e-5)
    # only the projection depends on the class: D(x, a) - D(x, b) = <e_a - e_b, h>
    diff = d(x, torch.tensor([0, 0])) - d(x, torch.tensor([2, 2]))
    torch.testing.assert_close(diff, h @ (embed[0] - embed[2]), rtol=1e-5, atol=1e-5)

"""The clustering pieces of self-conditioned GANs: k-means, Hungarian matching of clusters, and
the bank of real images with its centroids."""
import pytest
import torch

from ppgan.modules.clustering import ClusterBank, kmeans, match_clusters


def blobs(centres, per, spread, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.as_tensor(centres, dtype=torch.float32)
    x = torch.cat([c + spread * torch.randn(per, centres.shape[1], generator=g) for c in centres])
    return x, torch.arange(len(centres)).repeat_interleave(per)


def test_kmeans_finds_separated_blobs_and_their_means():
    x, truth = blobs([[0, 0], [10, 0], [0, 10], [10, 10]], per=50, spread=0.5)
    assign, centroids = kmeans(x, 4, iters=20, generator=torch.Generator().manual_seed(1))
    assert assign.shape == (200,) and centroids.shape == (4, 2)
    # every true blob is exactly one cluster, and each centroid is its blob's mean
    for b in range(4):
        ids = assign[truth == b].unique()
        assert ids.numel() == 1
        torch.testing.assert_close(centroids[ids[0]], x[truth == b].mean(0))
    assert assign.unique().numel() == 4
    # the assignments are to the nearest final centroid
    assert torch.equal(assign, torch.cdist(x, centroids).argmin(1))


def test_kmeans_is_deterministic_per_generator_and_keeps_an_emptied_centroid():
    x, _ = blobs([[0, 0], [5, 5]], per=30, spread=1.0)
    a1, c1 = kmeans(x, 3, generator=torch.Generator().manual_seed(7))
    a2, c2 = kmeans(x, 3, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a1, a2) and torch.equal(c1, c2)
    # two identical points and k = 3: one centroid starts on a duplicate and loses every point;
    # it keeps its place instead of becoming 0 / 0
    dup = torch.tensor([[1.0, 1.0], [1.0, 1.0], [9.0, 9.0]])
    assign, cents = kmeans(dup, 3, iters=5, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(cents).all()
    assert torch.equal(cents.sort(0).values[:, 0].unique(), torch.tensor([1.0, 9.0]))
    with pytest.raises(ValueError, match="at least k"):
        kmeans(dup, 4)


def test_match_clusters_undoes_a_relabelling_and_maximises_overlap():
    old = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    perm_true = torch.tensor([2, 0, 1])  # new id j was old id perm_true[j]
    new = torch.argsort(perm_true)[old]
    perm = match_clusters(new, old, 3)
    assert torch.equal(perm, perm_true) and torch.equal(perm[new], old)
    # with disagreement the matching is the one with most points kept (by hand: 2 + 2 + 1 = 5)
    old = torch.tensor([0, 0, 0, 1, 1, 2])
    new = torch.tensor([1, 1, 2, 2, 0, 0])
    perm = match_clusters(new, old, 3)
    assert int((perm[new] == old).sum()) == 4
    assert sorted(perm.tolist()) == [0, 1, 2]


def test_bank_is_a_ring_of_the_latest_images_kept_exactly_for_8_bit_input():
    bank = ClusterBank(5, (1, 2, 2), k=2, n_features=3)
    assert bank.stored().shape == (0, 1, 2, 2)
    levels = torch.arange(256, dtype=torch.float32) / 127.5 - 1  # the values an 8-bit loader gives
    batches = [levels[i * 12:(i + 1) * 12].view(3, 1, 2, 2) for i in range(3)]
    bank.push(batches[0])
    torch.testing.assert_close(bank.stored(), batches[0], atol=1e-6, rtol=0)
    bank.push(batches[1])
    bank.push(batches[2])  # 9 pushed into 5 slots: slots hold images 5..8 and 4 (ring order)
    assert int(bank.seen) == 9
    imgs = torch.cat(batches)
    held = bank.stored()
    assert held.shape == (5, 1, 2, 2)
    torch.testing.assert_close(held, imgs[[5, 6, 7, 8, 4]], atol=1e-6, rtol=0)
    bank.push(torch.full((7, 1, 2, 2), 2.0))  # more than the bank: the last 5, clamped to [-1, 1]
    assert torch.equal(bank.stored(), torch.ones(5, 1, 2, 2))


def test_bank_assigns_the_nearest_centroid_after_unit_scaling():
    bank = ClusterBank(4, (1, 1, 1), k=2, n_features=2)
    bank.centroids.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.5]]))
    # [0.3, 0] is nearer [0, 0.5] as it is, but its direction is [1, 0]'s
    feats = torch.tensor([[0.3, 1e-4], [0.1, 3.0], [5.0, 4.0]])
    assert bank.assign(feats).tolist() == [0, 1, 0]
    assert torch.cdist(feats, bank.centroids).argmin(1).tolist() == [1, 1, 0]
    # features of any shape are flattened
    assert bank.assign(feats.view(3, 2, 1, 1)).tolist() == [0, 1, 0]
    state = bank.state_dict()
    assert set(state) == {"images", "seen", "centroids"} and state["images"].dtype == torch.uint8

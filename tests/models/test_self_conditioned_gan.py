"""Self-conditioned GAN (Liu et al., 2020) as a GANModel option: the code prior of DCGenerator,
DCDiscriminator's projection on a class, clustering of the bank of real images with D's
features, relabelling after a new clustering, and training through the Trainer (save/load,
--evaluate-only, resume across a clustering)."""
import os

import pytest
import torch

from ppgan.engine import Trainer
from ppgan.engine import checkpoint as ckpt
from ppgan.models import build_model
from ppgan.models.discriminators.dcdiscriminator import DCDiscriminator
from ppgan.models.generators.dcgenerator import DCGenerator
from ppgan.utils.errors import CheckpointError, ConfigError
from ppgan.weights import load_state_strict

from host_reads import record_host_reads
from resume_check import assert_resume_matches

from test_improved_gan import flat, model_cfg, optimizers_for, tiny_train_cfg

K = 3
SC_GEN, SC_DISC = {"n_categorical": K}, {"n_class": K}


def sc_model_cfg(**params):
    return model_cfg(gen=SC_GEN, disc=SC_DISC, **{"self_condition": True, "recluster_iters": [2, 4],
                                                  "cluster_bank": 16, **params})


def sc_train_cfg(total_iters, **params):
    cfg = tiny_train_cfg(total_iters)
    cfg["model"] = sc_model_cfg(**params)
    return cfg


def step_at(model, opts, it, batch):
    """One train_iter at iteration `it` on `batch` (a dict, or the images); returns the losses."""
    model.current_iter = it
    model.setup_input(batch if isinstance(batch, dict) else {"img": batch})
    return model.train_iter(opts)


def test_generator_draws_codes_from_its_prior():
    g = DCGenerator(input_nz=5, input_nc=1, output_nc=1, ngf=4, output_size=8, n_categorical=4)
    assert torch.equal(g.code_prior, torch.ones(4))
    g.code_prior.copy_(torch.tensor([0.0, 3.0, 1.0, 0.0]))
    codes = g.code_of(g.random_inputs(4000, generator=torch.Generator().manual_seed(0)))
    counts = torch.bincount(codes, minlength=4).float() / 4000
    assert counts[0] == 0 and counts[3] == 0
    assert abs(float(counts[1]) - 0.75) < 0.03
    # a file saved before the prior existed (an older InfoGAN run) loads with the uniform prior
    old = {k: v for k, v in g.state_dict().items() if k != "code_prior"}
    fresh = DCGenerator(input_nz=5, input_nc=1, output_nc=1, ngf=4, output_size=8, n_categorical=4)
    fresh.code_prior.fill_(7.0)
    load_state_strict(fresh, old, "old.pth")
    assert torch.equal(fresh.code_prior, torch.ones(4))
    # only that key may be absent
    with pytest.raises(CheckpointError, match="missing"):
        load_state_strict(fresh, {k: v for k, v in old.items() if k != "model.0.weight"}, "bad.pth")


def test_projection_discriminator_adds_the_class_embedding_inner_product():
    torch.manual_seed(0)
    d = DCDiscriminator(input_nc=1, ndf=4, norm_type="batch", input_size=16, n_class=5).eval()
    plain = DCDiscriminator(input_nc=1, ndf=4, norm_type="batch", input_size=16).eval()
    plain.load_state_dict({k: v for k, v in d.state_dict().items() if not k.startswith("embed")})
    x, y = torch.randn(6, 1, 16, 16), torch.tensor([0, 1, 2, 3, 4, 4])
    out, h = d(x, y, return_features=True)
    base, h0 = plain(x, return_features=True)
    assert out.shape == (6, 1, 1, 1) and torch.equal(h, h0)
    by_hand = base.flatten() + (d.embed.weight[y] * h).sum(1)
    torch.testing.assert_close(out.flatten(), by_hand)
    torch.testing.assert_close(d(x, y), out)  # without features, the same logits
    with pytest.raises(ValueError, match="class_id"):
        d(x)
    with pytest.raises(ConfigError, match="n_class"):
        DCDiscriminator(input_nc=1, n_class=-1)


def test_train_iter_before_and_after_the_first_clustering():
    model = build_model(sc_model_cfg(recluster_iters=[2], cluster_bank=12))
    assert set(model.nets) == {"netG", "netD", "netD_cluster", "cluster_bank"}
    opts = optimizers_for(model)
    bank, g = model.nets["cluster_bank"], model.nets["netG"]
    torch.manual_seed(0)
    batches = [torch.rand(4, 1, 8, 8) * 2 - 1 for _ in range(3)]
    before = {n: flat(model.nets[n]) for n in ("netG", "netD")}
    for it in range(2):  # before the clustering: random codes, the bank fills
        losses = step_at(model, opts, it, batches[it])
        assert set(losses) == {"D_fake_loss", "D_real_loss", "G_adv_loss"}
        assert all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    for n, b in before.items():
        assert not torch.equal(b, flat(model.nets[n])), f"{n} did not move"
    assert int(bank.seen) == 8 and torch.equal(g.code_prior, torch.ones(K))
    d_at_clustering = {k: v.clone() for k, v in model.nets["netD"].state_dict().items()}
    step_at(model, opts, 2, batches[2])
    assert int(bank.seen) == 12
    # netD_cluster is D as it was when the clustering ran, frozen
    snap = model.nets["netD_cluster"]
    assert all(torch.equal(snap.state_dict()[k], v) for k, v in d_at_clustering.items())
    assert not snap.training and not any(p.requires_grad for p in snap.parameters())
    # G's prior counts the bank's images per cluster; the centroids are their features' means
    with torch.no_grad():
        feats = bank.embed(snap(bank.stored(), torch.zeros(12, dtype=torch.long), return_features=True)[1])
    assign = bank.assign(feats)
    assert torch.equal(g.code_prior, torch.bincount(assign, minlength=K).float())
    assert float(g.code_prior.sum()) == 12
    for c in assign.unique():
        torch.testing.assert_close(bank.centroids[c], feats[assign == c].mean(0), atol=1e-5, rtol=1e-4)


def test_fakes_get_the_clusters_of_their_batch_and_d_sees_them(monkeypatch):
    model = build_model(sc_model_cfg(recluster_iters=[1], cluster_bank=8))
    opts = optimizers_for(model)
    torch.manual_seed(0)
    for it in range(2):
        step_at(model, opts, it, torch.rand(4, 1, 8, 8) * 2 - 1)
    real = torch.rand(4, 1, 8, 8) * 2 - 1
    bank, snap = model.nets["cluster_bank"], model.nets["netD_cluster"]
    with torch.no_grad():
        expected = bank.assign(snap(real, torch.zeros(4, dtype=torch.long), return_features=True)[1])
    seen = {"g": [], "d": []}
    g_forward, d_forward = model.nets["netG"].forward, model.nets["netD"].forward
    monkeypatch.setattr(model.nets["netG"], "forward", lambda z: seen["g"].append(z) or g_forward(z))
    monkeypatch.setattr(model.nets["netD"], "forward",
                        lambda x, y=None, **kw: seen["d"].append(y) or d_forward(x, y, **kw))
    step_at(model, opts, 2, real)
    assert torch.equal(model.nets["netG"].code_of(seen["g"][0]), expected)
    assert len(seen["d"]) == 3 and all(torch.equal(y, expected) for y in seen["d"])


def test_a_new_clustering_keeps_the_ids_of_the_clusters_it_overlaps(monkeypatch):
    from ppgan.models import gan_model
    from ppgan.modules.clustering import kmeans

    model = build_model(sc_model_cfg(recluster_iters=[1, 1000], cluster_bank=24))
    bank = model.nets["cluster_bank"]
    # three kinds of image (a bright band in rows 0-1, 3-4 or 6-7) and, as D's features, the
    # pixels themselves: every clustering finds the three kinds, in an order its seed decides
    torch.manual_seed(0)
    kinds = []
    for rows in ((0, 2), (3, 5), (6, 8)):
        img = -torch.ones(1, 8, 8)
        img[:, rows[0]:rows[1]] = 1.0
        kinds.append(img)
    imgs = torch.stack([kinds[i % 3] + 0.02 * torch.randn(1, 8, 8) for i in range(24)]).clamp(-1, 1)
    bank.push(imgs)
    monkeypatch.setattr(model, "_cluster_features", lambda images: images.flatten(1))
    model.current_iter = 1
    model.recluster()
    first = bank.assign(bank.stored())
    assert first.unique().numel() == 3 and all(first[i] == first[i % 3] for i in range(24))
    # a later iteration whose own k-means numbers the clusters differently
    feats = bank.embed(bank.stored())
    later = next(i for i in range(2, 200) if not torch.equal(
        kmeans(feats, K, gan_model.KMEANS_ITERS, torch.Generator().manual_seed(gan_model.CLUSTER_SEED + i))[0],
        first))
    model.current_iter = later
    model.recluster()
    assert torch.equal(bank.assign(bank.stored()), first)
    assert torch.equal(model.nets["netG"].code_prior, torch.full((K,), 8.0))


def test_no_host_reads_between_clusterings(monkeypatch):
    model = build_model(sc_model_cfg(recluster_iters=[1, 5], cluster_bank=8))
    opts = optimizers_for(model)
    for it in range(2):
        step_at(model, opts, it, torch.rand(4, 1, 8, 8) * 2 - 1)
    calls = record_host_reads(monkeypatch)
    step_at(model, opts, 2, torch.rand(4, 1, 8, 8) * 2 - 1)
    assert calls == []


def test_config_errors():
    with pytest.raises(ConfigError, match="n_categorical"):
        build_model(model_cfg(disc=SC_DISC, self_condition=True))
    with pytest.raises(ConfigError, match="n_class must equal"):
        build_model(model_cfg(gen=SC_GEN, self_condition=True))
    with pytest.raises(ConfigError, match="draws no classes"):
        build_model(model_cfg(disc=SC_DISC))
    with pytest.raises(ConfigError, match="recluster_iters"):
        build_model(sc_model_cfg(recluster_iters=[5, 3]))
    with pytest.raises(ConfigError, match="recluster_iters"):
        build_model(sc_model_cfg(recluster_iters=[0]))
    with pytest.raises(ConfigError, match="cluster_bank"):
        build_model(sc_model_cfg(cluster_bank=2))
    with pytest.raises(ConfigError, match="not trained"):
        cfg = sc_train_cfg(1)
        cfg["optimizer"]["optimizer_D"]["net_names"] = ["netD", "netD_cluster"]
        Trainer(cfg, device="cpu", quiet=True)
    model = build_model(sc_model_cfg(recluster_iters=[1], cluster_bank=16))
    model.setup_input({"img": torch.rand(2, 1, 8, 8) * 2 - 1})
    model.current_iter = 1
    with pytest.raises(ConfigError, match="fewer than"):  # 2 images seen, 3 clusters
        model.train_iter(optimizers_for(model))


def test_save_load_evaluate_only_and_resume_across_a_clustering(tmp_path):
    # clusterings at iterations 2 and 4 of 6; the resumed run restarts at 3, between them
    a, _ = assert_resume_matches(lambda n: sc_train_cfg(n, ema_decay=0.9), tmp_path, total=6, half=3)
    nets = a["nets"]
    assert set(nets) == {"netG", "netD", "netG_ema", "netD_cluster", "cluster_bank"}
    assert float(nets["netG"]["code_prior"].sum()) == 16  # the bank's 16 images, counted per cluster
    assert torch.equal(nets["netG_ema"]["code_prior"], nets["netG"]["code_prior"])
    weights = str(tmp_path / "a" / "iter_6_weight.pth")
    saved = ckpt.load(weights)
    # the weight file holds what sampling and --load need; the bank and D's frozen copy stay in the checkpoint
    assert {"netG", "netD", "netG_ema"} <= set(saved) and not {"netD_cluster", "cluster_bank"} & set(saved)
    ev = Trainer(sc_train_cfg(6, ema_decay=0.9), device="cpu", load=weights, evaluate_only=True,
                 run_dir=str(tmp_path / "e"), quiet=True)
    for name in ("netG_ema", "netD"):
        assert all(torch.equal(saved[name][k], v) for k, v in ev.model.nets[name].state_dict().items())
    ev.evaluate()
    assert "samples_fixed_samples_ema.png" in os.listdir(tmp_path / "e" / "eval")
    # fine-tuning from the weight file: the clustering starts afresh and runs at its iterations
    Trainer(sc_train_cfg(3), device="cpu", load=weights, run_dir=str(tmp_path / "f"), quiet=True).train()
    tuned = ckpt.load(str(tmp_path / "f" / "iter_3_checkpoint.pth"))["nets"]
    assert int(tuned["cluster_bank"]["seen"]) == 12 and float(tuned["netG"]["code_prior"].sum()) == 12


def test_the_batchs_labels_are_never_used():
    """Self-conditioning is unsupervised: a batch's class_id (the digits dataset gives one) changes nothing."""
    imgs = [torch.rand(4, 1, 8, 8) * 2 - 1 for _ in range(4)]
    finals = []
    for labels in (None, torch.tensor([1, 2, 0, 1]), torch.tensor([0, 0, 0, 0])):
        torch.manual_seed(5)
        model = build_model(sc_model_cfg(recluster_iters=[2], cluster_bank=8))
        opts = optimizers_for(model)
        for it, x in enumerate(imgs):
            step_at(model, opts, it, {"img": x} if labels is None else {"img": x, "class_id": labels})
        finals.append(torch.cat([flat(model.nets["netG"]), flat(model.nets["netG"], buffers=True),
                                 flat(model.nets["netD"])]))
    assert torch.equal(finals[0], finals[1]) and torch.equal(finals[0], finals[2])

"""StackGAN: conditioning augmentation and its KL, the text encoder, the matching-aware
discriminator loss, one step per stage, save/load, --evaluate-only, resume, and the demo config."""
import copy
import functools
import math
import os

import pytest
import torch

from ppgan.engine import Trainer
from ppgan.engine import checkpoint as ckpt
from ppgan.models import build_model
from ppgan.models.discriminators.discriminator_stackgan import StackGANDiscriminator
from ppgan.models.generators.stackgan import CANet, CaptionImageEncoder, TextEncoder, caption_match_loss, kl_divergence
from ppgan.models.stackgan_model import StackGANModel, digit_token_tables, swap_digit_words
from ppgan.utils.errors import ConfigError
from ppgan.utils.text import get_vocabulary

from host_reads import record_host_reads

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOSS_KEYS = {"D_real_loss", "D_fake_loss", "D_wrong_loss", "G_adv_loss", "G_kl_loss"}


def model_cfg(stage=2, **params):
    cfg = {"name": "StackGANModel", "stage": stage, "vocabulary": "digits",
           "text_encoder": {"embed_dim": 8, "hidden_dim": 8},
           "generator": {"name": "StackGANStageI", "c_dim": 4, "z_dim": 4, "ngf": 2, "output_size": 16},
           "discriminator": {"name": "StackGANDiscriminator", "c_dim": 4, "ndf": 2, "input_size": 16},
           "params": {"n_samples": 4, "samples_every_row": 2, **params}}
    if stage == 2:
        cfg["generator2"] = {"name": "StackGANStageII", "c_dim": 4, "ngf": 2, "n_res": 1,
                             "input_size": 16, "output_size": 32}
        cfg["discriminator2"] = {"name": "StackGANDiscriminator", "c_dim": 4, "ndf": 2, "input_size": 32,
                                 "uncond": True}
    return cfg


def batch(n=4, size=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    vocab = get_vocabulary("digits")
    captions = ["a thin red seven slanted left on a dark background", "a bold blue two",
                "the number 3 in green strokes", "a pale yellow nine over a black background"][:n]
    tokens, lengths = vocab.encode_batch(captions, max_length=12)
    return {"img": torch.rand(n, 3, size, size, generator=gen) * 2 - 1, "tokens": tokens, "length": lengths,
            "caption": captions}


def optimizers_for(model):
    groups = {"optimizer_G": ["netG"], "optimizer_D": ["netD", "netT"], "optimizer_G2": ["netG2"],
              "optimizer_D2": ["netD2"], "optimizer_T": ["netI"]}
    out = {}
    for name, nets in groups.items():
        if all(n in model.nets for n in nets):
            opt = torch.optim.Adam([p for n in nets for p in model.nets[n].parameters()], lr=0.01, betas=(0.5, 0.999))
            opt.ppgan_net_names = tuple(nets)
            out[name] = opt
    return out


def flat(net):
    return torch.cat([t.detach().reshape(-1).float() for t in net.state_dict().values()])


# ---- maths -----------------------------------------------------------------------------------

def test_ca_kl_matches_closed_form():
    gen = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 7, generator=gen), torch.randn(5, 7, generator=gen)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(q, p).mean()
    torch.testing.assert_close(kl_divergence(mu, logvar), expected)
    # by hand for one element: mu 1, sigma^2 e -> 0.5 * (1 + e - 1 - 1) = 0.5 * (e - 1)
    one = kl_divergence(torch.ones(1, 1), torch.ones(1, 1))
    torch.testing.assert_close(one, torch.tensor(0.5 * (torch.e - 1)))
    assert kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4)) == 0


def test_ca_reparameterisation():
    torch.manual_seed(0)
    ca = CANet(text_dim=6, c_dim=3)
    text, eps = torch.randn(4, 6), torch.randn(4, 3)
    c, mu, logvar = ca(text, eps)
    h = ca.fc(text)                            # GLU: first half * sigmoid(second half)
    x = h[:, :6] * torch.sigmoid(h[:, 6:])
    torch.testing.assert_close(mu, x[:, :3])
    torch.testing.assert_close(logvar, x[:, 3:])
    torch.testing.assert_close(c, mu + torch.exp(0.5 * logvar) * eps)
    c2, _, _ = ca(text)                        # eps drawn: a different sample, same mean
    assert not torch.allclose(c, c2)


def test_text_encoder_ignores_padding_and_reads_unknown_words():
    torch.manual_seed(0)
    vocab = get_vocabulary("digits")
    enc = TextEncoder(len(vocab), embed_dim=4, hidden_dim=5).eval()
    tokens, lengths = vocab.encode_batch(["a thin red seven", "a blue two on a dark background"])
    assert tokens.shape == (2, 7) and lengths.tolist() == [4, 7]
    out = enc(tokens, lengths)
    assert out.shape == (2, 10)
    padded = torch.cat([tokens, torch.zeros(2, 5, dtype=torch.long)], dim=1)
    torch.testing.assert_close(enc(padded, lengths), out)          # more padding: same embedding
    alone = enc(tokens[:1, :4], lengths[:1])                        # and the same on its own
    torch.testing.assert_close(alone, out[:1])
    rev = TextEncoder.reverse_within_length(tokens, lengths)
    assert rev[0, :4].tolist() == tokens[0, :4].flip(0).tolist() and rev[0, 4:].tolist() == [0, 0, 0]
    assert rev[1].tolist() == tokens[1].flip(0).tolist()
    # a word the vocabulary never saw becomes <unk> (id 1): a valid input, another embedding
    unk_tokens, unk_len = vocab.encode_batch(["a thin zorblax seven"])
    assert unk_tokens[0, 2] == 1
    assert not torch.allclose(enc(unk_tokens, unk_len), out[:1])


def test_matching_aware_discriminator_loss_by_hand():
    torch.manual_seed(0)
    model = build_model(model_cfg(stage=1))
    net_d = model.nets["netD"].eval()  # eval: batch norm does not depend on the batch split
    real, fake, text = torch.rand(3, 3, 16, 16) * 2 - 1, torch.rand(3, 3, 16, 16) * 2 - 1, torch.randn(3, 16)
    total, parts = model._d_loss(net_d, real, fake, text)

    def bce(logits, target):
        p = torch.sigmoid(logits)
        return -(target * p.log() + (1 - target) * (1 - p).log()).mean()

    with torch.no_grad():
        lr = [net_d.cond_logits(net_d(real[i:i + 1]), text[i:i + 1]) for i in range(3)]
        lw = [net_d.cond_logits(net_d(real[i:i + 1]), text[(i - 1) % 3:(i - 1) % 3 + 1]) for i in range(3)]
        lf = [net_d.cond_logits(net_d(fake[i:i + 1]), text[i:i + 1]) for i in range(3)]
    real_l, wrong_l, fake_l = bce(torch.cat(lr), 1.0), bce(torch.cat(lw), 0.0), bce(torch.cat(lf), 0.0)
    torch.testing.assert_close(parts["D_real_loss"], real_l)
    torch.testing.assert_close(parts["D_wrong_loss"], wrong_l)  # image i with caption i - 1
    torch.testing.assert_close(parts["D_fake_loss"], fake_l)
    torch.testing.assert_close(total, real_l + (fake_l + wrong_l) / 2)


# ---- hard negatives: the image's own caption with another digit ----------------------------

DIGIT_WORDS = ("zero one two three four five six seven eight nine".split(), list("0123456789"))


def test_digit_swap_changes_only_the_digit_word_to_another_digit():
    vocab = get_vocabulary("digits")
    tables = digit_token_tables(vocab)
    ids = {vocab.encode(w)[0]: (d, s) for s, words in enumerate(DIGIT_WORDS) for d, w in enumerate(words)}
    assert len(ids) == 20 and sorted(d for d, _ in ids.values()) == sorted(list(range(10)) * 2)
    captions = [f"a thin red {DIGIT_WORDS[i % 2][i % 10]} on a dark background" for i in range(20)]
    captions += ["a bold blue stroke"]  # no digit word: unchanged, not usable as a hard negative
    tokens, _ = vocab.encode_batch(captions, max_length=12)
    for offset in range(1, 10):
        swapped, has_digit = swap_digit_words(tokens, tables, torch.full((len(captions),), offset))
        assert has_digit.tolist() == [True] * 20 + [False]
        changed = swapped != tokens
        assert changed.sum(1).tolist() == [1] * 20 + [0]   # exactly the digit word, nothing else
        for row, col in changed.nonzero().tolist():
            (d0, s0), (d1, s1) = ids[tokens[row, col].item()], ids[swapped[row, col].item()]
            assert s1 == s0 and d1 == (d0 + offset) % 10 != d0  # same spelling, a different digit
    # several digit words in one caption all move; random offsets never give the same digit back
    tokens, _ = vocab.encode_batch(["seven 7 and one"] * 50)
    swapped, _ = swap_digit_words(tokens, tables, torch.randint(1, 10, (50,)))
    assert ((swapped != tokens).sum(1) == 3).all()


def fake_encoder(tokens, lengths):
    return tokens, lengths  # lets the test see the captions _wrong_text encodes


@pytest.mark.parametrize("share, n_swapped", [(0.5, 4), (0.25, 2), (1.0, 8)])
def test_wrong_captions_mix_digit_swaps_and_rolled_captions(share, n_swapped):
    torch.manual_seed(0)
    model = build_model(model_cfg(stage=1, digit_swap_negatives=share))
    vocab = model.vocabulary
    captions = [f"a {c} {w} on a dark background" for c, w in zip(
        ["red", "bold blue", "thin green", "pale cyan", "navy", "pink", "heavy golden", "magenta"],
        ["seven", "2", "zero", "9", "four", "1", "eight", "three"])]
    b = batch()
    b["tokens"], b["length"] = vocab.encode_batch(captions, max_length=12)
    model.setup_input(b)
    seen = set()
    for _ in range(20):
        wrong, wrong_len = model._wrong_text(fake_encoder, None)
        pick = model.wrong_pick
        assert int(pick.sum()) == n_swapped
        seen.add(tuple(pick.tolist()))
        tok, ln = b["tokens"], b["length"]
        rolled, rolled_len = tok.roll(1, dims=0), ln.roll(1, dims=0)
        for i in range(8):
            if pick[i]:  # the image's own caption, one word (its digit) different
                assert wrong_len[i] == ln[i] and (wrong[i] != tok[i]).sum() == 1
                assert vocab.decode(wrong[i].tolist()) != vocab.decode(tok[i].tolist())
            else:        # the paper's mismatch: the previous image's caption
                assert torch.equal(wrong[i], rolled[i]) and wrong_len[i] == rolled_len[i]
    assert len(seen) > 1 or share == 1.0  # the swapped rows are drawn anew each step
    # share 0 is the paper's rolled captions exactly
    plain = build_model(model_cfg(stage=1))
    plain.setup_input(b)
    text = torch.randn(8, 16)
    assert torch.equal(plain._wrong_text(fake_encoder, text), text.roll(1, dims=0))


def test_caption_match_loss_by_hand():
    gen = torch.Generator().manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(3, 5, generator=gen), dim=1)
    txt = torch.nn.functional.normalize(torch.randn(3, 5, generator=gen), dim=1)
    neg = torch.nn.functional.normalize(torch.randn(3, 5, generator=gen), dim=1)
    valid = torch.tensor([True, False, True])
    s, sn = (img @ txt.t() / 0.5).tolist(), (img @ neg.t() / 0.5).tolist()
    i2t = t2i = 0.0
    for i in range(3):
        row = [math.exp(v) for v in s[i]] + [math.exp(sn[i][j]) for j in range(3) if valid[j]]
        i2t -= math.log(math.exp(s[i][i]) / sum(row)) / 3
        col = [math.exp(s[j][i]) for j in range(3)]
        t2i -= math.log(math.exp(s[i][i]) / sum(col)) / 3
    got = caption_match_loss(img, txt, neg, valid, temperature=0.5)
    assert abs(got.item() - (i2t + t2i) / 2) < 1e-5
    assert abs(caption_match_loss(img, txt, temperature=0.5).item() - caption_match_loss(
        img, txt, neg, torch.zeros(3, dtype=torch.bool), temperature=0.5).item()) < 1e-6


def test_projection_discriminator_logit_by_hand():
    torch.manual_seed(0)
    d = StackGANDiscriminator(text_dim=6, c_dim=4, ndf=2, input_size=16, cond_mode="projection").eval()
    img, text = torch.randn(3, 3, 16, 16), torch.randn(3, 6)
    h = d(img)
    v = d.text_code(text)
    want = d.cond_out(h).flatten() + torch.stack([(v[i] * h[i].sum(dim=(1, 2))).sum() for i in range(3)])
    torch.testing.assert_close(d.cond_logits(h, text), want)
    # concat stays the default, with the same weights as before (old files load)
    concat = StackGANDiscriminator(text_dim=6, c_dim=4, ndf=2, input_size=16)
    assert concat.cond_mode == "concat" and {"joint.0.weight", "text_code.0.weight"} <= set(concat.state_dict())
    with pytest.raises(ConfigError):
        StackGANDiscriminator(text_dim=6, cond_mode="dot")


# ---- training steps ------------------------------------------------------------------------

@pytest.mark.parametrize("match_weight", [0.0, 2.0])
def test_text_pretraining_then_frozen_text_encoder(match_weight):
    torch.manual_seed(0)
    cfg = model_cfg(stage=1, text_pretrain_iters=1, match_weight=match_weight)
    cfg["discriminator"]["cond_mode"] = "projection"
    model = build_model(cfg)
    assert set(model.nets) == {"netT", "netG", "netD", "netI"}
    assert isinstance(model.nets["netI"], CaptionImageEncoder) and model.nets["netI"].input_size == 32
    opts = optimizers_for(model)
    model.setup_input(batch(size=32))
    model.current_iter = 0  # pre-training: only the text encoder and the image encoder learn
    assert model.phase() == 0
    snap = {k: flat(v) for k, v in model.nets.items()}
    losses = model.train_iter(opts)
    assert set(losses) == {"T_match_loss"} and torch.isfinite(losses["T_match_loss"])
    assert not losses["T_match_loss"].requires_grad
    assert {k for k, v in model.nets.items() if not torch.equal(snap[k], flat(v))} == {"netT", "netI"}
    model.current_iter = 1  # GAN training against the now fixed text encoder (and image encoder)
    model.nets["netI"].zero_grad(set_to_none=True)
    snap = {k: flat(v) for k, v in model.nets.items()}
    losses = model.train_iter(opts)
    assert set(losses) == LOSS_KEYS | ({"G_match_loss"} if match_weight else set())
    assert all(torch.isfinite(v) for v in losses.values())
    assert {k for k, v in model.nets.items() if not torch.equal(snap[k], flat(v))} == {"netG", "netD"}
    assert all(p.grad is None for p in model.nets["netI"].parameters())
    if match_weight:  # G's match term is the pair's loss on its images, weighted
        with torch.no_grad():
            text = model.nets["netT"](model.tokens, model.lengths)
        torch.manual_seed(7)
        want = model._g_match(model.fake, text)
        torch.manual_seed(7)
        assert torch.isclose(want, model._g_match(model.fake, text)) and want > 0


def test_text_pretraining_phases():
    assert [build_model(model_cfg(stage=1, text_pretrain_iters=2)).phase(i) for i in range(4)] == [0, 0, 1, 1]
    two = build_model(model_cfg(stage=2, stage1_iters=3, text_pretrain_iters=2))
    assert [two.phase(i) for i in range(5)] == [0, 0, 1, 2, 2]
    # stage II on a loaded stage-I file (stage1_iters 0): no pre-training, netT / netI come from the file
    loaded = build_model(model_cfg(stage=2, stage1_iters=0, text_pretrain_iters=2, match_weight=1.0))
    assert "netI" in loaded.nets and [loaded.phase(i) for i in range(3)] == [2, 2, 2]


def test_text_pretraining_separates_digit_words():
    # a few steps on two images: each must come to prefer its own caption over the digit-swapped one
    torch.manual_seed(0)
    model = build_model(model_cfg(stage=1, text_pretrain_iters=100))
    opts = optimizers_for(model)
    b = batch(n=2, size=32)
    model.setup_input(b)
    net_t, net_i = model.nets["netT"], model.nets["netI"]
    swapped, _ = swap_digit_words(b["tokens"], model._digit_tables, torch.tensor([5, 5]))

    def margin():
        with torch.no_grad():
            img = net_i.encode_image(b["img"])
            own = (img * net_i.encode_text(net_t(b["tokens"], b["length"]))).sum(1)
            other = (img * net_i.encode_text(net_t(swapped, b["length"]))).sum(1)
        return (own - other).min().item()

    assert margin() < 0.5
    for _ in range(15):
        model.train_iter(opts)
    assert margin() > 0.5



def test_stage1_step():
    torch.manual_seed(0)
    model = build_model(model_cfg(stage=1, ema_decay=0.5))
    assert set(model.nets) == {"netT", "netG", "netD", "netG_ema"}
    opts = optimizers_for(model)
    before = {k: flat(v) for k, v in model.nets.items()}
    model.setup_input(batch(size=16))
    losses = model.train_iter(opts)
    assert set(losses) == LOSS_KEYS
    assert all(v.ndim == 0 and torch.isfinite(v) and not v.requires_grad for v in losses.values())
    after = {k: flat(v) for k, v in model.nets.items()}
    for name in ("netT", "netG", "netD"):  # the text encoder learns with the discriminator
        assert not torch.equal(before[name], after[name]), name
    assert model.fake.shape == (4, 3, 16, 16)
    vis = model.visuals()
    assert set(vis) == {"fixed_samples_stage1"} and vis["fixed_samples_stage1"].shape == (4, 3, 16, 16)


def test_ema_is_the_average_of_before_and_after():
    torch.manual_seed(1)
    model = build_model(model_cfg(stage=1, ema_decay=0.5))
    opts = optimizers_for(model)
    g0 = [p.detach().clone() for p in model.nets["netG"].parameters()]
    model.setup_input(batch(size=16))
    model.train_iter(opts)
    for p0, p1, pe in zip(g0, model.nets["netG"].parameters(), model.nets["netG_ema"].parameters()):
        torch.testing.assert_close(pe, 0.5 * (p0 + p1.detach()))


def test_stage2_phases():
    torch.manual_seed(0)
    model = build_model(model_cfg(stage=2, stage1_iters=1))
    opts = optimizers_for(model)
    b = batch()
    model.setup_input(b)
    model.current_iter = 0
    snap = {k: flat(v) for k, v in model.nets.items()}
    assert set(model.train_iter(opts)) == LOSS_KEYS
    moved = {k for k, v in model.nets.items() if not torch.equal(snap[k], flat(v))}
    assert moved == {"netT", "netG", "netD"}
    model.current_iter = 1  # stage II: the text encoder and stage I stay as they are
    snap = {k: flat(v) for k, v in model.nets.items()}
    losses = model.train_iter(opts)
    assert set(losses) == LOSS_KEYS and all(torch.isfinite(v) for v in losses.values())
    moved = {k for k, v in model.nets.items() if not torch.equal(snap[k], flat(v))}
    assert moved == {"netG2", "netD2"}
    assert model.fake.shape == (4, 3, 32, 32)
    vis = model.visuals()
    assert vis["fixed_samples_stage1"].shape == (4, 3, 16, 16) and vis["fixed_samples_stage2"].shape == (4, 3, 32, 32)
    torch.testing.assert_close(vis["fixed_samples_stage2"][::2], b["img"][:2])  # each row starts with its real image


def test_generate_is_reproducible_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = build_model(model_cfg(stage=2, stage1_iters=1, ema_decay=0.9))
    opts = optimizers_for(model)
    model.setup_input(batch())
    for it in range(2):
        model.current_iter = it
        model.train_iter(opts)
    b = batch()
    out = model.generate(b["tokens"], b["length"], generator=torch.Generator().manual_seed(3))
    assert out.shape == (4, 3, 32, 32) and out.abs().max() <= 1
    again = model.generate(b["tokens"], b["length"], generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out, again)
    stage1 = model.generate(b["tokens"], b["length"], generator=torch.Generator().manual_seed(3), stage=1)
    assert stage1.shape == (4, 3, 16, 16)
    path = str(tmp_path / "w.pth")
    ckpt.save(ckpt.weight_file_dict(model, model_cfg(stage=2, stage1_iters=1, ema_decay=0.9)), path)
    torch.manual_seed(5)
    fresh = build_model(model_cfg(stage=2, stage1_iters=1, ema_decay=0.9))
    other = fresh.generate(b["tokens"], b["length"], generator=torch.Generator().manual_seed(3))
    assert not torch.allclose(other, out)
    names = ckpt.load_weights(fresh, path)
    assert set(names) == set(model.nets)
    torch.testing.assert_close(fresh.generate(b["tokens"], b["length"], generator=torch.Generator().manual_seed(3)),
                               out)


@pytest.mark.parametrize("change", [
    {"stage": 3},
    {"params": {"stage1_itrs": 3}},
    {"params": {"ema_decay": 1.5}},
    {"text_encoder": {"hidden": 8}},
    {"generator": {"name": "StackGANStageI", "text_dim": 99}},
    {"generator": {"name": "StackGANStageI", "output_size": 24}},
    {"discriminator": {"name": "StackGANDiscriminator", "input_size": 32}},
    {"generator2": None},
    {"vocabulary": "digitz"},
    {"params": {"digit_swap_negatives": 1.5}},
    {"params": {"digit_swap_negatives": "half"}},
    {"params": {"digit_swap_negatives": 0.5}, "vocabulary": ["red", "blue", "a"]},  # no digit words
    {"params": {"text_pretrain_iters": -1}},
    {"params": {"text_pretrain_iters": 5, "stage1_iters": 5}},  # counts within stage I
    {"params": {"text_pretrain_iters": 1, "stage1_iters": 5}, "image_encoder": {"width": 4}},
    {"image_encoder": {"ndf": 4}},  # without text pre-training
    {"params": {"match_weight": 1.0}},  # needs the pre-trained pair
    {"params": {"match_weight": -1.0, "text_pretrain_iters": 1, "stage1_iters": 5}},
    {"discriminator": {"name": "StackGANDiscriminator", "cond_mode": "dot"}},
])
def test_bad_config(change):
    cfg = model_cfg(stage=2)
    cfg.update(change)
    with pytest.raises(ConfigError):
        build_model(cfg)
    with pytest.raises(ConfigError):  # stage1_iters means nothing to a stage-1 model
        build_model(model_cfg(stage=1, stage1_iters=5))


# ---- through the trainer -------------------------------------------------------------------

def train_cfg(total_iters, stage1_iters=2, text_pretrain_iters=0):
    opt = {"name": "Adam", "beta1": 0.5}
    model = model_cfg(stage=2, stage1_iters=stage1_iters, ema_decay=0.5, digit_swap_negatives=0.5,
                      text_pretrain_iters=text_pretrain_iters, match_weight=1.0 if text_pretrain_iters else 0.0)
    extra = {}
    if text_pretrain_iters:
        model["image_encoder"] = {"embed_dim": 8, "ndf": 2, "input_size": 16}
        model["discriminator"]["cond_mode"] = "projection"
        extra = {"optimizer_T": {**opt, "net_names": ["netT", "netI"], "learning_rate": 0.01}}
    return {
        "total_iters": total_iters, "output_dir": "unused", "seed": 3,
        "model": model,
        "dataset": {"train": {"name": "captioned_digits", "num_samples": 8, "size": 32, "split": "train",
                              "max_length": 12, "batch_size": 4, "num_workers": 0},
                    "test": {"name": "captioned_digits", "num_samples": 4, "size": 32, "split": "test",
                             "max_length": 12, "batch_size": 4}},
        "lr_scheduler": {"name": "MultiStepDecay", "learning_rate": 0.001, "milestones": [100]},
        "optimizer": {"optimizer_G": {**opt, "net_names": ["netG"]},
                      "optimizer_D": {**opt, "net_names": ["netD"] if text_pretrain_iters else ["netD", "netT"]},
                      "optimizer_G2": {**opt, "net_names": ["netG2"]},
                      "optimizer_D2": {**opt, "net_names": ["netD2"]}, **extra},
        "log_config": {"interval": 2, "visual_interval": 100},
        "snapshot_config": {"interval": 2},
    }


def test_resume_equals_uninterrupted_run_across_the_stage_switch(tmp_path):
    # 4 iterations straight == 2 (stage I), resume, 2 more (stage II)
    Trainer(train_cfg(4), device="cpu", run_dir=str(tmp_path / "a"), quiet=True).train()
    ck = Trainer(train_cfg(2), device="cpu", run_dir=str(tmp_path / "b"), quiet=True).train()
    resumed = Trainer(train_cfg(4), device="cpu", resume=ck, quiet=True)
    assert resumed.model.phase(resumed.iter) == 2
    resumed.train()
    a = ckpt.load(str(tmp_path / "a" / "iter_4_checkpoint.pth"))
    b = ckpt.load(str(tmp_path / "b" / "iter_4_checkpoint.pth"))
    assert set(a["nets"]) == {"netT", "netG", "netD", "netG2", "netD2", "netG_ema", "netG2_ema"}
    for net in a["nets"]:
        for k in a["nets"][net]:
            assert torch.equal(a["nets"][net][k], b["nets"][net][k]), f"{net}.{k} differs after resume"


def test_resume_equals_uninterrupted_run_across_text_pretraining(tmp_path):
    # 4 iterations straight == 1 (text pre-training), resume, 3 more (stage I, then stage II)
    cfg = functools.partial(train_cfg, stage1_iters=3, text_pretrain_iters=1)
    Trainer(cfg(4), device="cpu", run_dir=str(tmp_path / "a"), quiet=True).train()
    c = cfg(1)
    c["snapshot_config"] = {"interval": 1}
    ck = Trainer(c, device="cpu", run_dir=str(tmp_path / "b"), quiet=True).train()
    resumed = Trainer(cfg(4), device="cpu", resume=ck, quiet=True)
    assert resumed.model.phase(0) == 0 and resumed.model.phase(resumed.iter) == 1
    resumed.train()
    a = ckpt.load(str(tmp_path / "a" / "iter_4_checkpoint.pth"))
    b = ckpt.load(str(tmp_path / "b" / "iter_4_checkpoint.pth"))
    assert set(a["nets"]) == {"netT", "netI", "netG", "netD", "netG2", "netD2", "netG_ema", "netG2_ema"}
    for net in a["nets"]:
        for k in a["nets"][net]:
            assert torch.equal(a["nets"][net][k], b["nets"][net][k]), f"{net}.{k} differs after resume"


def test_evaluate_only_and_load_of_a_stage1_file(tmp_path):
    tr = Trainer(train_cfg(2, stage1_iters=2), device="cpu", run_dir=str(tmp_path / "train"), quiet=True)
    tr.train()
    weights = str(tmp_path / "train" / "iter_2_weight.pth")
    ev = Trainer(train_cfg(2), device="cpu", load=weights, evaluate_only=True, run_dir=str(tmp_path / "ev"),
                 quiet=True)
    for name, net in tr.model.nets.items():
        trained, loaded = net.state_dict(), ev.model.nets[name].state_dict()
        assert all(torch.equal(trained[k], loaded[k]) for k in trained), name
    ev.evaluate()
    files = set(os.listdir(tmp_path / "ev" / "eval"))
    assert {"00000_fake.png", "00000_real.png", "00000_fake_stage1.png", "samples_fixed_samples_stage1.png",
            "samples_fixed_samples_stage2.png"} <= files
    assert ev.model.visual_items["fake"].shape == (4, 3, 32, 32)  # the final stage, though the iteration is 0

    # stage II from a stage-I file: a stage-1 model's weights fill netT / netG / netD only
    stage1 = copy.deepcopy(train_cfg(2))
    stage1["model"] = model_cfg(stage=1)
    one = build_model(stage1["model"])
    path = str(tmp_path / "stage1.pth")
    ckpt.save(ckpt.weight_file_dict(one, stage1["model"]), path)
    two = build_model(model_cfg(stage=2, ema_decay=0.5))
    assert sorted(ckpt.load_weights(two, path)) == ["netD", "netG", "netT"]
    assert two.fill_missing_ema(["netD", "netG", "netT"]) == ["netG_ema"]
    assert torch.equal(flat(two.nets["netG_ema"]), flat(one.nets["netG"]))


def test_demo_config_builds():
    from ppgan.models.builder import check_model_config
    from ppgan.utils.config import load_config

    cfg = load_config(os.path.join(ROOT, "configs", "stackgan_digits.yaml"))
    check_model_config(cfg["model"])
    model = build_model(cfg["model"])
    assert isinstance(model, StackGANModel) and model.stage == 2
    assert {"netT", "netG", "netD", "netG2", "netD2"} <= set(model.nets)
    assert 0 < model.stage1_iters < cfg["total_iters"]  # both stages train in the demo
    assert 0 < model.digit_swap <= 1 and model._digit_tables[0].max() == 9  # hard negatives on
    assert cfg["dataset"]["train"]["size"] == model.final_size == 128
    named = {n for o in cfg["optimizer"].values() for n in o["net_names"]}
    assert named == {"netT", "netI", "netG", "netD", "netG2", "netD2"}
    assert 0 < model.text_pretrain_iters < model.stage1_iters and model.match_weight > 0
    assert model.nets["netD"].cond_mode == model.nets["netD2"].cond_mode == "projection"
    # stage II has its own, lower learning rate: at stage I's it collapses (the config's figures)
    stage1_lr = cfg["lr_scheduler"]["learning_rate"]
    for name in ("optimizer_G2", "optimizer_D2"):
        assert 0 < cfg["optimizer"][name]["learning_rate"] < stage1_lr


@pytest.mark.parametrize("it, pretrain", [(0, 0), (1, 0), (0, 1), (1, 1), (2, 1)])
def test_train_step_reads_nothing_back(it, pretrain, monkeypatch):
    cfg = model_cfg(stage=2, stage1_iters=1 + pretrain, ema_decay=0.5, digit_swap_negatives=0.5,
                    text_pretrain_iters=pretrain, match_weight=float(pretrain))
    if pretrain:
        cfg["discriminator"]["cond_mode"] = cfg["discriminator2"]["cond_mode"] = "projection"
    model = build_model(cfg)
    opts = optimizers_for(model)
    model.current_iter = it
    model.setup_input(batch())
    calls = record_host_reads(monkeypatch)
    model.train_iter(opts)
    assert calls == []

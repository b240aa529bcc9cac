"""StackGAN: text to image in two stages (Zhang et al., ICCV 2017, https://arxiv.org/abs/1612.03242).

Reference code read for facts: hanzhanggit/StackGAN-Pytorch (`code/trainer.py`,
`code/miscc/utils.py`). One iteration of a stage:

    text  = netT(tokens, lengths)                      sentence embedding
    fake, mu, logvar = G(text, z)                      (stage II: G2(stage-I image, text))
    D:  real image + its caption        -> "real"      D_real_loss
        fake image + its caption        -> "fake"      D_fake_loss
        real image + another caption    -> "fake"      D_wrong_loss  (matching-aware: captions
                                                        rolled by one within the batch; with
                                                        params.digit_swap_negatives, that share of
                                                        rows gets its own caption with another digit)
        loss = D_real + (D_fake + D_wrong) / 2         (reference `compute_discriminator_loss`;
        with the unconditional logit: (D_real + U_real) / 2 + (D_fake + D_wrong + U_fake) / 3)
    G:  fake image + its caption        -> "real"      G_adv_loss (+ unconditional term)
        + kl_weight * KL(N(mu, sigma^2) || N(0, I))     G_kl_loss (conditioning augmentation)
        [+ match_weight * caption matching of fake]    G_match_loss (params.match_weight, below)

The reference trains on fixed, pre-trained sentence embeddings. Here the text encoder `netT`
is either pre-trained at the start of the run and then frozen (`params.text_pretrain_iters`,
below; the demo config) or, by default, trained from scratch by the discriminator's loss (it is
in the D optimizer: telling a matching caption from a mismatched one is what makes it encode
digit and colour); the generator sees its output detached either way.

Hard negatives (`params.digit_swap_negatives`, not in the paper): a caption of another image
almost always differs in colour or background too, so D can reject it without looking at the
digit, and G then gets no pull towards the caption's digit. For that share of the batch the
mismatched caption is the image's own one with the digit word swapped for another digit
(`swap_digit_words`, a lookup on the token ids: no host sync).

Text pre-training (`params.text_pretrain_iters` > 0; closer to the paper, which conditions on
fixed *pre-trained* embeddings, Reed et al. 2016): the first `text_pretrain_iters` iterations
train only netT and a small image encoder `netI` (`CaptionImageEncoder`, on 32 px copies of the
images) with a symmetric contrastive matching loss (`caption_match_loss`, key `T_match_loss`):
every image must pick its own caption among the batch's captions and those captions with the
digit word swapped (so the digit cannot be ignored), and every caption its image. From then on
netT is frozen: G and D train against a fixed embedding instead of a moving target. The phase
is a function of the iteration, so a resumed run continues exactly; netI stays in the weight
file. These iterations count within `stage1_iters`. With `params.match_weight` > 0 the frozen
pair also scores G's images (G_match_loss, both stages): the caption-matching loss of the
generated image against its caption and the digit-swapped ones, as AttnGAN's DAMSM loss (Xu et
al., CVPR 2018) gives its generator a direct pull towards the text.

Discriminator conditioning: `StackGANDiscriminator(cond_mode='projection')` (Miyato & Koyama
2018) instead of the paper's concatenation; measured on the digits (stage I, 2000 GAN iterations
after text pre-training, held-out captions): colour match 0.71 vs 0.31 with concatenation.

Stages (`stage`): 1 trains stage I (64 px) only. 2 adds stage II (128 px): the first
`params.stage1_iters` iterations train stage I, the rest train stage II with netT and stage I
frozen (eval mode, no gradient) -- the paper's two training phases in one resumable run (the
phase is a function of the iteration). With `stage1_iters: 0`, stage I comes from `--load` of a
stage-1 weight file (a file without netG2/netD2 fills netT, netG, netD, and netI when it has one).
"""
import copy

import torch
import torch.nn.functional as F

from ..modules.init import init_weights
from ..utils.errors import ConfigError
from ..utils.text import get_vocabulary
from .base_model import BaseModel
from .builder import MODELS
from .criterions.builder import build_criterion
from .ema import copy_net, ema_update
from .discriminators.builder import DISCRIMINATORS
from .generators.builder import GENERATORS
from .generators.stackgan import (CaptionImageEncoder, TextEncoder, caption_match_loss, kl_divergence,
                                  stackgan_generate)

PARAM_KEYS = ("stage1_iters", "kl_weight", "ema_decay", "init_type", "init_gain", "n_samples",
              "samples_every_row", "sample_seed", "digit_swap_negatives", "text_pretrain_iters",
              "match_weight")
# The digit words of a vocabulary, two spellings per digit (a spelled-out word and a numeral).
DIGIT_SPELLINGS = (("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
                   tuple("0123456789"))
TEXT_ENCODER_KEYS = ("embed_dim", "hidden_dim")
IMAGE_ENCODER_KEYS = ("embed_dim", "ndf", "input_size")


def _resize(img, size):
    """Box-downsample (or bilinear-resize when not an integer factor) a [-1, 1] batch to `size`."""
    if img.shape[-1] == size:
        return img
    if img.shape[-1] > size and img.shape[-1] % size == 0:
        return F.avg_pool2d(img, img.shape[-1] // size)
    return F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False)


def digit_token_tables(vocab):
    """Lookup tables for swapping digit words in token ids.

    Returns:
        (digit_of, spelling_of, token_of): digit_of int64 [V] (the digit 0-9 a token id names, -1 for
        other words), spelling_of int64 [V] (row of `DIGIT_SPELLINGS`: 0 word, 1 numeral; 0 for
        other words) and token_of int64 [2, 10] (the id of each digit in each spelling; a spelling
        the vocabulary lacks falls back to the other one; a digit neither spelling has is `UNK`,
        so with a partial custom vocabulary a swapped caption may read "<unk>" there instead).
    """
    n = len(vocab)
    digit_of = torch.full((n,), -1, dtype=torch.long)
    spelling_of = torch.zeros(n, dtype=torch.long)
    token_of = torch.full((len(DIGIT_SPELLINGS), 10), vocab.UNK, dtype=torch.long)
    for s, words in enumerate(DIGIT_SPELLINGS):
        for d, word in enumerate(words):
            ids = vocab.encode(word)
            if len(ids) == 1 and ids[0] != vocab.UNK:
                digit_of[ids[0]], spelling_of[ids[0]], token_of[s, d] = d, s, ids[0]
    for s in range(len(DIGIT_SPELLINGS)):  # a missing spelling uses the other one
        other = token_of[1 - s] if len(DIGIT_SPELLINGS) == 2 else token_of[0]
        token_of[s] = torch.where(token_of[s] == vocab.UNK, other, token_of[s])
    return digit_of, spelling_of, token_of


def swap_digit_words(tokens, tables, offset):
    """Captions with every digit word replaced by another digit, spelled the same way.

    Args:
        tokens (Tensor): int64 [N, L] caption ids. tables: `digit_token_tables(vocab)` (on tokens' device).
        offset (Tensor): int64 [N] in 1..9: digit d becomes (d + offset) % 10 (never itself).
    Returns:
        (swapped int64 [N, L], has_digit bool [N]): rows without a digit word come back unchanged.
    """
    digit_of, spelling_of, token_of = tables
    digit = digit_of[tokens]                                              # [N, L], -1: not a digit
    is_digit = digit >= 0
    new = token_of[spelling_of[tokens], (digit + offset[:, None]) % 10]
    return torch.where(is_digit, new, tokens), is_digit.any(dim=1)


@MODELS.register()
class StackGANModel(BaseModel):
    """Args:
        generator (dict): a StackGANStageI config (`text_dim` is filled in from the text encoder).
        discriminator (dict | None): a StackGANDiscriminator config for stage I (None: inference only).
        generator2 (dict | None): a StackGANStageII config (stage 2).
        discriminator2 (dict | None): a StackGANDiscriminator config for stage II (usually uncond: true).
        text_encoder (dict | None): TextEncoder sizes {embed_dim (32), hidden_dim (64)}; its
            vocab_size is the vocabulary's size.
        vocabulary (str | list[str]): 'digits', 'photos' or a word list (`ppgan.utils.text`);
            kept in the weight file's config so an app rebuilds the tokenizer. Default: 'digits'.
        stage (int): 1 or 2. Default: 1.
        gan_criterion (dict | None): GANLoss config; default vanilla (the reference's BCE).
        params (dict): stage1_iters (stage 2: iterations of stage-I training first, default 0),
            kl_weight (default 2.0, the reference's TRAIN.COEFF.KL), ema_decay (moving averages
            netG_ema / netG2_ema used for sampling, default 0 = off), init_type / init_gain
            (default normal / 0.02, the reference's weights_init), n_samples / samples_every_row /
            sample_seed (the fixed grid: one caption per row, its real image first; default 64 / 8 / 0),
            digit_swap_negatives (share of the batch, 0-1, whose mismatched caption for the D_wrong
            term is the image's own caption with its digit word swapped for another digit, instead
            of the paper's caption of another image (which differs in colour or background most of
            the time, so D could ignore the digit); default 0 = the paper's),
            text_pretrain_iters (iterations at the start that pre-train netT with netI by caption
            matching, after which netT is frozen; counted within stage1_iters (none when a stage-2
            run has stage1_iters 0: netT and netI then come from --load); default 0 = netT learns
            with D throughout, as before),
            match_weight (weight of G_match_loss: the generated images scored by the frozen
            pre-trained netI / netT with `caption_match_loss`, the digit-swapped captions as extra
            negatives -- AttnGAN's DAMSM loss (Xu et al., CVPR 2018) in this small form; needs
            text_pretrain_iters; default 0 = off).
        image_encoder (dict | None): CaptionImageEncoder sizes {embed_dim (64), ndf (16),
            input_size (32)} of netI (built only when text_pretrain_iters > 0).
    Batches: {'img': [N, 3, S, S] in [-1, 1] at the final stage's size, 'tokens': int64 [N, L]
        (pad 0, unknown 1), 'length': int64 [N]}; other keys are ignored.
    Nets: netT, netG, netD (stage I); netG2, netD2 (stage 2); netG_ema / netG2_ema (ema_decay > 0);
        netI (text_pretrain_iters > 0).
    Optimizers: netT belongs with netD (e.g. optimizer_D: net_names [netD, netT]); with text
        pre-training netI too (or netT and netI get their own, e.g. optimizer_T); stage 2 adds
        one for netG2 and one for netD2.
    """

    def __init__(self, generator, discriminator=None, generator2=None, discriminator2=None, text_encoder=None,
                 vocabulary="digits", stage=1, gan_criterion=None, params=None, image_encoder=None):
        super().__init__(params)
        self.check_param_keys(PARAM_KEYS)
        p = self.params
        if stage not in (1, 2):
            raise ConfigError(f"model.stage must be 1 or 2, got {stage!r}")
        self.stage = int(stage)
        self.stage1_iters = int(p.get("stage1_iters", 0))
        self.kl_weight = float(p.get("kl_weight", 2.0))
        self.ema_decay = float(p.get("ema_decay", 0.0))
        self.n_samples = int(p.get("n_samples", 64))
        self.samples_every_row = int(p.get("samples_every_row", 8))
        self.sample_seed = int(p.get("sample_seed", 0))
        self.text_pretrain_iters = int(p.get("text_pretrain_iters", 0))
        if self.stage1_iters < 0 or self.kl_weight < 0 or self.text_pretrain_iters < 0:
            raise ConfigError("model.params.stage1_iters, kl_weight and text_pretrain_iters must be >= 0")
        if stage == 2 and self.stage1_iters and self.text_pretrain_iters >= self.stage1_iters:
            raise ConfigError("model.params.text_pretrain_iters counts within stage1_iters: it must be smaller "
                              f"({self.text_pretrain_iters} >= {self.stage1_iters})")
        self.match_weight = float(p.get("match_weight", 0.0))
        if self.match_weight < 0 or (self.match_weight and not self.text_pretrain_iters):
            raise ConfigError("model.params.match_weight must be >= 0 and needs text_pretrain_iters > 0 "
                              "(it scores the generated images with the pre-trained netI / netT)")
        if image_encoder and not self.text_pretrain_iters:
            raise ConfigError("model.image_encoder is only used with model.params.text_pretrain_iters > 0")
        if self.stage == 1 and self.stage1_iters:
            raise ConfigError("model.params.stage1_iters is for stage 2 (stage 1 trains stage I throughout); "
                              "set it to 0 with model.stage=1")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"model.params.ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.samples_every_row < 2 or self.n_samples < self.samples_every_row:
            raise ConfigError("model.params.samples_every_row must be >= 2 and n_samples >= samples_every_row")
        if self.stage == 2 and not generator2:
            raise ConfigError("model.stage 2 needs model.generator2 (a StackGANStageII config)")
        init_type, init_gain = p.get("init_type", "normal"), float(p.get("init_gain", 0.02))

        self.vocabulary = get_vocabulary(vocabulary)
        self.digit_swap = p.get("digit_swap_negatives", 0.0)
        if isinstance(self.digit_swap, bool) or not isinstance(self.digit_swap, (int, float)) \
                or not 0.0 <= self.digit_swap <= 1.0:
            raise ConfigError(f"model.params.digit_swap_negatives must be in [0, 1], got {self.digit_swap}")
        self.digit_swap = float(self.digit_swap)
        self._digit_tables = digit_token_tables(self.vocabulary) \
            if self.digit_swap > 0 or self.text_pretrain_iters else None
        if self.digit_swap > 0 and self._digit_tables[0].max() < 0:
            raise ConfigError("model.params.digit_swap_negatives needs digit words (zero..nine or 0..9) in the "
                              f"vocabulary {self.vocabulary.name or '(custom)'}")
        te = dict(text_encoder or {})
        unknown = sorted(set(te) - set(TEXT_ENCODER_KEYS))
        if unknown:
            raise ConfigError(f"unknown key 'model.text_encoder.{unknown[0]}' (known: {', '.join(TEXT_ENCODER_KEYS)})")
        self.nets["netT"] = TextEncoder(len(self.vocabulary), **te)
        text_dim = self.nets["netT"].out_dim
        if self.text_pretrain_iters:
            ie = dict(image_encoder or {})
            unknown = sorted(set(ie) - set(IMAGE_ENCODER_KEYS))
            if unknown:
                raise ConfigError(f"unknown key 'model.image_encoder.{unknown[0]}' "
                                  f"(known: {', '.join(IMAGE_ENCODER_KEYS)})")
            self.nets["netI"] = CaptionImageEncoder(text_dim, **ie)

        def build(registry, cfg, key):
            if "text_dim" in cfg and int(cfg["text_dim"]) != text_dim:
                raise ConfigError(f"model.{key}.text_dim is {cfg['text_dim']} but the text encoder gives "
                                  f"{text_dim} (2 * text_encoder.hidden_dim); leave it out")
            return init_weights(registry.build({**cfg, "text_dim": text_dim}), init_type, init_gain)

        self.nets["netG"] = build(GENERATORS, generator, "generator")
        size1 = self.nets["netG"].output_size
        self.size1 = size1
        if discriminator:
            self.nets["netD"] = build(DISCRIMINATORS, discriminator, "discriminator")
            if self.nets["netD"].input_size != size1:
                raise ConfigError(f"model.discriminator.input_size must be stage I's output_size ({size1})")
        if self.stage == 2:
            self.nets["netG2"] = build(GENERATORS, generator2, "generator2")
            if self.nets["netG2"].input_size != size1:
                raise ConfigError(f"model.generator2.input_size must be stage I's output_size ({size1})")
            if discriminator2:
                self.nets["netD2"] = build(DISCRIMINATORS, discriminator2, "discriminator2")
                if self.nets["netD2"].input_size != self.nets["netG2"].output_size:
                    raise ConfigError("model.discriminator2.input_size must be model.generator2.output_size")
        self.final_size = self.nets["netG2"].output_size if self.stage == 2 else size1
        if self.ema_decay > 0:
            for name in ("netG", "netG2"):
                if name in self.nets:
                    self.nets[f"{name}_ema"] = copy.deepcopy(self.nets[name]).requires_grad_(False).eval()
        self.criterionGAN = build_criterion(gan_criterion or {"name": "GANLoss", "gan_mode": "vanilla"})
        self.z_dim = self.nets["netG"].z_dim
        self._fixed = None
        self.real = None

    # ---- phases ---------------------------------------------------------------------------
    def phase(self, it=None):
        """What iteration `it` (default: the current one) trains: 0 text pre-training, 1 stage I, 2 stage II."""
        it = self.current_iter if it is None else it
        if it < self.text_pretrain_iters and (self.stage == 1 or it < self.stage1_iters):
            return 0
        return 1 if self.stage == 1 or it < self.stage1_iters else 2

    def train(self):
        super().train()
        for name in ("netG_ema", "netG2_ema"):
            if name in self.nets:
                self.nets[name].eval()

    # ---- inputs ---------------------------------------------------------------------------
    def setup_input(self, input):
        self.real = self.image_batch(input)
        self.tokens = input["tokens"].to(self.device, non_blocking=True).long()
        self.lengths = input["length"].to(self.device, non_blocking=True).long()
        if self._fixed is None:  # the sample grid's captions: the first batch seen
            rows = self.n_samples // self.samples_every_row
            self._fixed = (input["tokens"][:rows].cpu(), input["length"][:rows].cpu(),
                           self.image_batch(input)[:rows].detach().cpu())

    # ---- training -------------------------------------------------------------------------
    def _pretrain_text_iter(self, optimizers):
        """One step of text pre-training: netT and netI by caption matching (hard negatives: each
        caption with its digit word swapped, when the vocabulary has digit words)."""
        net_t, net_i = self.nets["netT"], self.nets["netI"]
        opts = list({id(o): o for o in (self.optimizer_for("netT", optimizers),
                                        self.optimizer_for("netI", optimizers))}.values())
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        img = net_i.encode_image(_resize(self.real, net_i.input_size))
        text = net_i.encode_text(net_t(self.tokens, self.lengths))
        swapped, valid = self._swapped_captions()
        neg = net_i.encode_text(net_t(swapped, self.lengths))
        loss = caption_match_loss(img, text, neg, valid)
        self.backward(loss)
        for opt in opts:
            self.optimizer_step(opt)
        return {"T_match_loss": loss.detach()}

    def _g_match(self, fake, text):
        """Caption-matching loss of the generated images under the frozen pre-trained pair
        (netI, netT), with the digit-swapped captions as extra negatives (AttnGAN's DAMSM idea).
        `text`: this batch's sentence embeddings, already made by the frozen netT."""
        net_t, net_i = self.nets["netT"], self.nets["netI"]
        with torch.no_grad():
            swapped, valid = self._swapped_captions()
            neg = net_i.encode_text(net_t(swapped, self.lengths))
            text = net_i.encode_text(text)
        return caption_match_loss(net_i.encode_image(_resize(fake, net_i.input_size)), text, neg, valid)

    def _swapped_captions(self):
        """This batch's captions with their digit word swapped for another digit (a random one per
        row) and which rows had a digit word: `swap_digit_words` on the device, no host sync."""
        n, dev = self.tokens.shape[0], self.tokens.device
        if self._digit_tables[0].device != dev:
            self._digit_tables = tuple(t.to(dev) for t in self._digit_tables)
        return swap_digit_words(self.tokens, self._digit_tables, torch.randint(1, 10, (n,), device=dev))

    def _wrong_text(self, net_t, text):
        """Mismatched sentence embeddings for the D_wrong term: the captions rolled by one in the
        batch, except a `digit_swap_negatives` share of rows (chosen at random; rows with a digit
        word) that get their own caption with the digit swapped. On-device, no host sync."""
        if self.digit_swap == 0:
            return text.roll(1, dims=0)
        tokens, lengths = self.tokens, self.lengths
        n, dev = tokens.shape[0], tokens.device
        swapped, has_digit = self._swapped_captions()
        pick = torch.zeros(n, dtype=torch.bool, device=dev)
        pick[torch.randperm(n, device=dev)[:round(self.digit_swap * n)]] = True
        pick = pick & has_digit
        wrong_tokens = torch.where(pick[:, None], swapped, tokens.roll(1, dims=0))
        wrong_lengths = torch.where(pick, lengths, lengths.roll(1, dims=0))
        self.wrong_pick = pick
        return net_t(wrong_tokens, wrong_lengths)

    def _d_loss(self, net_d, real, fake, text, wrong_text=None):
        """The matching-aware discriminator loss and its parts (see the module docstring)."""
        crit = self.criterionGAN
        h_real, h_fake = net_d(real), net_d(fake)
        real_l = crit(net_d.cond_logits(h_real, text), True, is_disc=True)
        wrong_text = text.roll(1, dims=0) if wrong_text is None else wrong_text
        wrong_l = crit(net_d.cond_logits(h_real, wrong_text), False, is_disc=True)
        fake_l = crit(net_d.cond_logits(h_fake, text), False, is_disc=True)
        if net_d.uncond:
            u_real = crit(net_d.uncond_logits(h_real), True, is_disc=True)
            u_fake = crit(net_d.uncond_logits(h_fake), False, is_disc=True)
            total = (real_l + u_real) / 2 + (fake_l + wrong_l + u_fake) / 3
            real_l, fake_l = (real_l + u_real) / 2, (fake_l + u_fake) / 2
        else:
            total = real_l + (fake_l + wrong_l) / 2
        return total, {"D_real_loss": real_l, "D_fake_loss": fake_l, "D_wrong_loss": wrong_l}

    def _g_adv(self, net_d, fake, text):
        h = net_d(fake)
        loss = self.criterionGAN(net_d.cond_logits(h, text), True)
        if net_d.uncond:
            loss = loss + self.criterionGAN(net_d.uncond_logits(h), True)
        return loss

    def train_iter(self, optimizers=None):
        phase = self.phase()
        if phase == 0:
            return self._pretrain_text_iter(optimizers)
        n = self.real.shape[0]
        z = torch.randn(n, self.z_dim, device=self.device)
        net_t, net_g1 = self.nets["netT"], self.nets["netG"]
        if phase == 1:
            net_g, net_d = net_g1, self.nets["netD"]
            opt_g, opt_d = self.optimizer_for("netG", optimizers), self.optimizer_for("netD", optimizers)
            real = _resize(self.real, self.size1)
            # pre-trained netT is fixed from now on; otherwise it learns with D (keeps its graph)
            with torch.set_grad_enabled(not self.text_pretrain_iters):
                text = net_t(self.tokens, self.lengths)
                wrong = self._wrong_text(net_t, text)
            fake, mu, logvar = net_g(text.detach(), z)
        else:
            net_g, net_d = self.nets["netG2"], self.nets["netD2"]
            opt_g, opt_d = self.optimizer_for("netG2", optimizers), self.optimizer_for("netD2", optimizers)
            real = self.real
            net_t.eval()
            net_g1.eval()
            with torch.no_grad():                        # stage I and the text encoder are fixed now
                text = net_t(self.tokens, self.lengths)
                wrong = self._wrong_text(net_t, text)
                img1, _, _ = net_g1(text, z)
            fake, mu, logvar = net_g(img1, text)

        # D step (stage I: the text encoder learns with D); G's output detached.
        opt_d.zero_grad(set_to_none=True)
        loss_d, losses = self._d_loss(net_d, real, fake.detach(), text, wrong)
        self.backward(loss_d)
        self.optimizer_step(opt_d)

        # G step with D frozen: fool the matching-aware D, plus the conditioning-augmentation KL.
        opt_g.zero_grad(set_to_none=True)
        with self.frozen(net_d, self.nets.get("netI")):
            loss_adv = self._g_adv(net_d, fake, text.detach())
            loss_kl = kl_divergence(mu, logvar) * self.kl_weight
            loss_g = loss_adv + loss_kl
            if self.match_weight:
                loss_match = self._g_match(fake, text.detach()) * self.match_weight
                loss_g = loss_g + loss_match
            self.backward(loss_g)
        self.optimizer_step(opt_g)
        losses["G_adv_loss"], losses["G_kl_loss"] = loss_adv, loss_kl
        if self.match_weight:
            losses["G_match_loss"] = loss_match
        self.accumulate("netG" if phase == 1 else "netG2")
        self.fake = self.keep(fake)
        return {k: v.detach() for k, v in losses.items()}

    @torch.no_grad()
    def accumulate(self, name, decay=None):
        """`name`_ema <- decay * `name`_ema + (1 - decay) * `name` (parameters; buffers copied)."""
        ema = self.nets.get(f"{name}_ema")
        if ema is None:
            return
        decay = self.ema_decay if decay is None else decay
        net = self.nets[name]
        ema_update(ema, net, 1.0 - decay)

    def fill_missing_ema(self, loaded):
        """After `--load` of a file without moving averages: start them from the loaded nets."""
        filled = []
        for name in ("netG", "netG2"):
            if f"{name}_ema" in self.nets and f"{name}_ema" not in loaded and name in loaded:
                copy_net(self.nets[f"{name}_ema"], self.nets[name])
                filled.append(f"{name}_ema")
        return filled

    # ---- sampling / evaluation ------------------------------------------------------------
    def _sampler(self, name):
        return self.nets.get(f"{name}_ema", self.nets[name])

    @torch.no_grad()
    def generate(self, tokens, lengths, z=None, generator=None, stage=None):
        """Images for captions.

        Args:
            tokens (Tensor): int64 [N, L] caption ids (pad 0, unknown 1). lengths (Tensor): int64 [N].
            z (Tensor | None): [N, z_dim] noise; None draws it (from `generator` when given, which
                then also draws the conditioning-augmentation noise: reproducible samples).
            generator (torch.Generator | None): a CPU generator.
            stage (int | None): 1 or 2; None: the config's final stage.
        Returns:
            Tensor: [N, 3, S, S] in [-1, 1] (S = 64 at stage 1, stage II's size at stage 2),
            from netG_ema / netG2_ema when present.
        """
        stage = self.stage if stage is None else int(stage)
        if stage not in (1, self.stage):
            raise ConfigError(f"this model has no stage {stage} (stage: {self.stage})")
        nets = [self.nets["netT"], self._sampler("netG")] + ([self._sampler("netG2")] if stage == 2 else [])
        modes = [net.training for net in nets]
        for net in nets:
            net.eval()
        try:
            return stackgan_generate(nets[0], nets[1], tokens, lengths, z=z,
                                     netG2=nets[2] if stage == 2 else None, generator=generator)
        finally:
            for net, mode in zip(nets, modes):
                net.train(mode)

    @torch.no_grad()
    def visuals(self):
        """One caption per row: its real image, then samples with the fixed noise: stage I's grid,
        and for a stage-2 model stage II's too (the same noise; untrained until stage II starts)."""
        if self._fixed is None:
            return {}
        tokens, lengths, real = self._fixed
        k = self.samples_every_row - 1
        rows = tokens.shape[0]
        gen = torch.Generator().manual_seed(self.sample_seed)
        rep_t, rep_l = tokens.repeat_interleave(k, 0), lengths.repeat_interleave(k, 0)
        z = torch.randn(rows * k, self.z_dim, generator=gen)
        out = {}
        for stage in range(1, self.stage + 1):
            fake = self.generate(rep_t, rep_l, z=z, generator=torch.Generator().manual_seed(self.sample_seed + 1),
                                 stage=stage).cpu()
            size = fake.shape[-1]
            grid = torch.cat([_resize(real, size)[:, None], fake.view(rows, k, *fake.shape[1:])], dim=1)
            out[f"fixed_samples_stage{stage}"] = grid.flatten(0, 1).clamp(-1, 1)
        return out

    @torch.no_grad()
    def test_iter(self, metrics=None):
        """Samples for the current batch's captions at the final stage ('fake', beside 'real'),
        and for a stage-2 model stage I's too ('fake_stage1', 'real_stage1'); metrics get
        (fake, real) of the final stage (whatever the iteration: `--evaluate-only` of a finished run)."""
        gen = torch.Generator().manual_seed(self.sample_seed)
        fake = self.generate(self.tokens, self.lengths, generator=gen).clamp(-1, 1)
        self.visual_items["fake"] = fake
        self.visual_items["real"] = _resize(self.real, fake.shape[-1])
        if self.stage == 2:
            gen = torch.Generator().manual_seed(self.sample_seed)  # the same noise: stage II refines these
            fake1 = self.generate(self.tokens, self.lengths, generator=gen, stage=1).clamp(-1, 1)
            self.visual_items["fake_stage1"] = fake1
            self.visual_items["real_stage1"] = _resize(self.real, fake1.shape[-1])
        for metric in (metrics or {}).values():
            metric.update(fake, self.visual_items["real"])

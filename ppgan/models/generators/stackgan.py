"""StackGAN text -> image generators (Zhang et al., ICCV 2017, https://arxiv.org/abs/1612.03242).

Facts from the paper and the reference code hanzhanggit/StackGAN-Pytorch (`code/model.py`):
- Conditioning augmentation (`CA_NET`): a linear layer and a GLU turn the sentence embedding
  into (mu, log sigma^2); the generator is conditioned on c = mu + sigma * eps, eps ~ N(0, I),
  and pays KL(N(mu, sigma^2) || N(0, I)), averaged over the elements (`KL_loss`), weighted 2.0
  (`TRAIN.COEFF.KL`).
- Stage I (`STAGE1_G`): [c, z] -> linear to 4x4 -> four "upBlocks" (nearest 2x upsampling,
  3x3 conv, batch norm, ReLU) -> 3x3 conv -> tanh, 64x64.
- Stage II (`STAGE2_G`): the (detached) stage-I image is encoded down to 16x16 (3x3 conv,
  then two 4x4 stride-2 convs), joined with c (its own CA) tiled over the grid, refined by
  residual blocks, then upBlocks to 4x (256 in the paper; 128 here by default) and a 3x3 conv.
The reference uses pre-trained char-CNN-RNN sentence embeddings; here `TextEncoder` is a
small trainable word embedding + bidirectional GRU (no downloads), trained by the
matching-aware discriminator loss, or pre-trained against `CaptionImageEncoder` with
`caption_match_loss` (Reed et al. 2016's joint embedding, in CLIP's symmetric contrastive form)
and then frozen (see `StackGANModel`).
"""
import math

import torch
from torch import nn

from ...utils.errors import ConfigError
from .builder import GENERATORS


class TextEncoder(nn.Module):
    """Caption ids -> sentence embedding: word embedding, then a forward and a backward GRU
    whose states after the caption's last word are concatenated.

    Padding after a caption never reaches the summary: the forward GRU is read at position
    `length - 1`, and the backward GRU runs over the caption reversed within its length (so no
    `pack_padded_sequence`, which would need the lengths on the host).

    Args:
        vocab_size (int): number of ids (pad 0 and unknown 1 included).
        embed_dim (int): word-vector size. Default: 32.
        hidden_dim (int): GRU state size per direction. Default: 64.
    Call: forward(tokens int64 [N, L], lengths int64 [N]) -> float [N, 2 * hidden_dim].
    Attributes: out_dim (int) = 2 * hidden_dim.
    """

    def __init__(self, vocab_size, embed_dim=32, hidden_dim=64):
        super().__init__()
        if int(vocab_size) < 3:
            raise ConfigError(f"TextEncoder vocab_size must be >= 3 (pad, unknown, a word), got {vocab_size}")
        self.vocab_size = int(vocab_size)
        self.embedding = nn.Embedding(self.vocab_size, embed_dim, padding_idx=0)
        self.gru_fwd = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.gru_bwd = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.out_dim = 2 * hidden_dim

    @staticmethod
    def reverse_within_length(tokens, lengths):
        """tokens[n, lengths[n] - 1 - t] for t < lengths[n], padding (0) after."""
        pos = torch.arange(tokens.shape[1], device=tokens.device)[None]  # [1, L]
        src = lengths[:, None] - 1 - pos                                  # [N, L]
        valid = src >= 0
        return tokens.gather(1, src.clamp(min=0)) * valid

    def forward(self, tokens, lengths):
        tokens = tokens.long()
        lengths = lengths.to(tokens.device).long().clamp(1, tokens.shape[1])
        last = (lengths - 1)[:, None, None]                               # [N, 1, 1]
        out_f, _ = self.gru_fwd(self.embedding(tokens))                   # [N, L, H]
        out_b, _ = self.gru_bwd(self.embedding(self.reverse_within_length(tokens, lengths)))
        h_f = out_f.gather(1, last.expand(-1, 1, out_f.shape[2])).squeeze(1)
        h_b = out_b.gather(1, last.expand(-1, 1, out_b.shape[2])).squeeze(1)
        return torch.cat([h_f, h_b], dim=1)


class CaptionImageEncoder(nn.Module):
    """Joint image-caption embedding used to pre-train the text encoder (`netI`).

    StackGAN conditions on *pre-trained* sentence embeddings (Reed et al., CVPR 2016, "Learning
    deep representations of fine-grained visual descriptions": an image encoder and a text
    encoder trained so that matching pairs score higher than mismatched ones). This is the
    image side of that pairing, small enough for a CPU: three 4x4 stride-2 convs (LeakyReLU 0.2)
    from `input_size` down to input_size / 8, a linear layer to `embed_dim`; plus the text head, a
    linear layer from the sentence embedding to the same space. Both outputs are L2-normalised;
    the loss is `caption_match_loss`.

    Args:
        text_dim (int): sentence-embedding size (the model sets it from its TextEncoder). Default: 128.
        embed_dim (int): joint-space size. Default: 64.
        ndf (int): width of the first conv, doubled per conv. Default: 16.
        input_size (int): image side it reads (the model resizes), a power of two >= 16. Default: 32.
    Calls: encode_image(img [N, 3, S, S] in [-1, 1]) -> [N, embed_dim] (unit norm);
        encode_text(text [N, text_dim]) -> [N, embed_dim] (unit norm).
    """

    def __init__(self, text_dim=128, embed_dim=64, ndf=16, input_size=32):
        super().__init__()
        _check_size("CaptionImageEncoder input_size", int(input_size), 16)
        self.input_size = int(input_size)
        layers, ch = [], 3
        for i in range(3):
            layers += [nn.Conv2d(ch, ndf * 2 ** i, 4, 2, 1), nn.LeakyReLU(0.2, True)]
            ch = ndf * 2 ** i
        self.convs = nn.Sequential(*layers)
        self.image_head = nn.Linear(ch * (self.input_size // 8) ** 2, embed_dim)
        self.text_head = nn.Linear(text_dim, embed_dim)

    def encode_image(self, img):
        if img.shape[-1] != self.input_size or img.shape[-2] != self.input_size:
            raise ValueError(f"CaptionImageEncoder expects {self.input_size}px images, got {tuple(img.shape)}")
        return nn.functional.normalize(self.image_head(self.convs(img).flatten(1)), dim=1)

    def encode_text(self, text):
        return nn.functional.normalize(self.text_head(text), dim=1)


def caption_match_loss(img_emb, text_emb, neg_text_emb=None, neg_valid=None, temperature=0.1):
    """Symmetric contrastive loss of a batch of (image, caption) pairs (CLIP's form of the
    matching objective): each image must pick its own caption among the batch's captions (and
    the extra negatives), and each caption its own image among the batch's images.

    Args:
        img_emb, text_emb (Tensor): [N, E] unit-norm embeddings; row i of each is a matching pair.
        neg_text_emb (Tensor | None): [N, E] extra captions that match no image (e.g. the image's
            own caption with another digit), offered to every image.
        neg_valid (Tensor | None): bool [N], which extra captions to use (others are masked out).
        temperature (float): softmax temperature. Default: 0.1.
    Returns:
        0-dim tensor: (CE(image -> caption) + CE(caption -> image)) / 2.
    """
    n = img_emb.shape[0]
    target = torch.arange(n, device=img_emb.device)
    logits = img_emb @ text_emb.t() / temperature                          # [N images, N captions]
    i2t = logits
    if neg_text_emb is not None:
        neg = img_emb @ neg_text_emb.t() / temperature                      # [N, N extra captions]
        if neg_valid is not None:
            neg = neg.masked_fill(~neg_valid[None, :], float("-inf"))
        i2t = torch.cat([logits, neg], dim=1)
    ce = nn.functional.cross_entropy
    return (ce(i2t, target) + ce(logits.t(), target)) / 2


def kl_divergence(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, I)) per element, averaged over all elements (the
    reference's `KL_loss`): -0.5 * mean(1 + logvar - mu^2 - exp(logvar))."""
    return -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())


class CANet(nn.Module):
    """Conditioning augmentation: text embedding -> (c, mu, logvar), c = mu + exp(logvar / 2) * eps.

    Args:
        text_dim (int): sentence-embedding size. c_dim (int): condition size (the paper's N_g, 128).
    Call: forward(text [N, text_dim], eps [N, c_dim] | None) -> (c, mu, logvar), each [N, c_dim];
        eps None draws N(0, I) (also in eval mode, as the reference samples at test time).
    """

    def __init__(self, text_dim, c_dim):
        super().__init__()
        self.c_dim = int(c_dim)
        self.fc = nn.Linear(text_dim, self.c_dim * 4)
        self.glu = nn.GLU(dim=1)

    def forward(self, text, eps=None):
        x = self.glu(self.fc(text))                                       # [N, 2c]
        mu, logvar = x[:, :self.c_dim], x[:, self.c_dim:]
        if eps is None:
            eps = torch.randn_like(mu)
        return mu + torch.exp(0.5 * logvar) * eps, mu, logvar


def up_block(in_ch, out_ch):
    """The reference's `upBlock`: nearest 2x upsampling, 3x3 conv, batch norm, ReLU."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                         nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU(True))


class ResBlock(nn.Module):
    """The reference's stage-II `ResBlock`: relu(x + BN(conv(relu(BN(conv(x))))))."""

    def __init__(self, ch):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True),
                                   nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch))
        self.relu = nn.ReLU(True)

    def forward(self, x):
        return self.relu(x + self.block(x))


def _check_size(name, value, minimum):
    if value < minimum or value & (value - 1):
        raise ConfigError(f"{name} must be a power of two >= {minimum}, got {value}")


@GENERATORS.register()
class StackGANStageI(nn.Module):
    """Stage-I generator: sentence embedding + noise -> low-resolution image.

    Args:
        text_dim (int): sentence-embedding size (the model sets it from its TextEncoder). Default: 128.
        c_dim (int): conditioning-augmentation size. Default: 32 (paper: 128).
        z_dim (int): noise size. Default: 32 (paper: 100).
        ngf (int): width; the 4x4 seed has ngf * 8 channels, halved by every upBlock
            (the reference's `GF_DIM`). Default: 16.
        output_size (int): image side, a power of two >= 16. Default: 64 (the paper's).
    Call: forward(text [N, text_dim], z [N, z_dim], eps [N, c_dim] | None)
        -> (img [N, 3, S, S] in [-1, 1], mu [N, c_dim], logvar [N, c_dim]).
    """

    def __init__(self, text_dim=128, c_dim=32, z_dim=32, ngf=16, output_size=64):
        super().__init__()
        _check_size("StackGANStageI output_size", output_size, 16)
        self.text_dim, self.c_dim, self.z_dim = int(text_dim), int(c_dim), int(z_dim)
        self.output_size = int(output_size)
        self.ca = CANet(text_dim, c_dim)
        ch = ngf * 8
        self.fc = nn.Sequential(nn.Linear(c_dim + z_dim, ch * 4 * 4, bias=False),
                                nn.BatchNorm1d(ch * 4 * 4), nn.ReLU(True))
        ups = []
        for _ in range(int(math.log2(output_size // 4))):
            ups.append(up_block(ch, max(ch // 2, 4)))
            ch = max(ch // 2, 4)
        self.ups = nn.Sequential(*ups)
        self.to_img = nn.Sequential(nn.Conv2d(ch, 3, 3, 1, 1, bias=False), nn.Tanh())
        self.seed_ch = ngf * 8

    def forward(self, text, z, eps=None):
        c, mu, logvar = self.ca(text, eps)
        h = self.fc(torch.cat([c, z], dim=1)).view(-1, self.seed_ch, 4, 4)
        return self.to_img(self.ups(h)), mu, logvar


@GENERATORS.register()
class StackGANStageII(nn.Module):
    """Stage-II generator: stage-I image + sentence embedding -> higher-resolution image.

    Args:
        text_dim (int): sentence-embedding size (set by the model). Default: 128.
        c_dim (int): its own conditioning-augmentation size. Default: 32.
        ngf (int): width; the 16x16 joint features have ngf * 4 channels. Default: 16.
        n_res (int): residual blocks (reference: 4 (`R_NUM`); default 2).
        input_size (int): stage-I image side (power of two >= 16). Default: 64.
        output_size (int): image side, a power of two > input_size. Default: 128 (paper: 256).
    Call: forward(img1 [N, 3, input_size, input_size] in [-1, 1], text [N, text_dim], eps | None)
        -> (img [N, 3, S, S] in [-1, 1], mu, logvar).
    """

    def __init__(self, text_dim=128, c_dim=32, ngf=16, n_res=2, input_size=64, output_size=128):
        super().__init__()
        _check_size("StackGANStageII input_size", input_size, 16)
        _check_size("StackGANStageII output_size", output_size, 32)
        if output_size <= input_size:
            raise ConfigError(f"StackGANStageII output_size ({output_size}) must exceed input_size ({input_size})")
        if int(n_res) < 0:
            raise ConfigError(f"StackGANStageII n_res must be >= 0, got {n_res}")
        self.text_dim, self.c_dim = int(text_dim), int(c_dim)
        self.input_size, self.output_size = int(input_size), int(output_size)
        self.ca = CANet(text_dim, c_dim)
        self.encoder = nn.Sequential(                                     # input_size -> input_size / 4
            nn.Conv2d(3, ngf, 3, 1, 1, bias=False), nn.ReLU(True),
            nn.Conv2d(ngf, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.Conv2d(ngf * 2, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True))
        self.joint = nn.Sequential(nn.Conv2d(ngf * 4 + c_dim, ngf * 4, 3, 1, 1, bias=False),
                                   nn.BatchNorm2d(ngf * 4), nn.ReLU(True))
        self.residual = nn.Sequential(*[ResBlock(ngf * 4) for _ in range(int(n_res))])
        ch, ups = ngf * 4, []
        for _ in range(int(math.log2(output_size // (input_size // 4)))):
            ups.append(up_block(ch, max(ch // 2, 4)))
            ch = max(ch // 2, 4)
        self.ups = nn.Sequential(*ups)
        self.to_img = nn.Sequential(nn.Conv2d(ch, 3, 3, 1, 1, bias=False), nn.Tanh())

    def forward(self, img1, text, eps=None):
        if img1.shape[-1] != self.input_size or img1.shape[-2] != self.input_size:
            raise ValueError(f"StackGANStageII expects {self.input_size}px stage-I images, got {tuple(img1.shape)}")
        c, mu, logvar = self.ca(text, eps)
        h = self.encoder(img1)                                            # [N, 4ngf, s/4, s/4]
        c_map = c[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        h = self.residual(self.joint(torch.cat([h, c_map], dim=1)))
        return self.to_img(self.ups(h)), mu, logvar


@torch.no_grad()
def stackgan_generate(netT, netG, tokens, lengths, z=None, netG2=None, eps1=None, eps2=None, generator=None):
    """Images for captions from built nets (eval mode is the caller's business).

    Args:
        netT (TextEncoder), netG (StackGANStageI), netG2 (StackGANStageII | None): the nets.
        tokens (Tensor): int64 [N, L] caption ids (pad 0). lengths (Tensor): int64 [N].
        z (Tensor | None): [N, netG.z_dim] noise; None draws it (from `generator` when given).
        eps1, eps2 (Tensor | None): [N, c_dim] conditioning-augmentation noise of each stage.
        generator (torch.Generator | None): CPU generator for whatever noise is drawn here.
    Returns:
        Tensor: [N, 3, S, S] in [-1, 1]; S is stage II's size when `netG2` is given, else stage I's.
    """
    device = next(netG.parameters()).device
    tokens, lengths = tokens.to(device), lengths.to(device)
    n = tokens.shape[0]

    def draw(dim):
        return torch.randn(n, dim, generator=generator).to(device)

    z = draw(netG.z_dim) if z is None else z.to(device)
    if generator is not None:  # draw every stage's eps from the generator too: reproducible samples
        eps1 = draw(netG.c_dim) if eps1 is None else eps1
        if netG2 is not None and eps2 is None:
            eps2 = draw(netG2.c_dim)
    text = netT(tokens, lengths)
    img, _, _ = netG(text, z, eps1)
    if netG2 is not None:
        img, _, _ = netG2(img, text, eps2)
    return img

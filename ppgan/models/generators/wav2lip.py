"""Wav2Lip: lip-sync generator (audio window + masked face -> face with the mouth redrawn).

Paper: Prajwal et al., "A Lip Sync Expert Is All You Need for Speech to Lip Generation In the
Wild", ACM MM 2020, https://arxiv.org/abs/2008.10010.
Reference: https://github.com/Rudrabha/Wav2Lip via PaddleGAN `ppgan/models/generators/wav2lip.py`
and `ppgan/modules/conv.py` (the conv blocks, which the SyncNet and quality discriminators share).

Attribute names are PaddleGAN's (`face_encoder_blocks.<i>.<j>.conv_block.0|1`, `audio_encoder.<i>`,
`face_decoder_blocks`, `output_block`), so `wav2lip.pdparams` / `wav2lip_hq.pdparams` load by name.
"""
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ...modules.sr_blocks import paddle_default_init_
from .builder import GENERATORS

FACE_SIZE = 96  # the face crop side every Wav2Lip checkpoint is trained at
MEL_SHAPE = (80, 16)  # mel bins x mel frames of one audio window (0.2 s at 16 kHz, hop 200)


class ConvBNRelu(nn.Module):
    """Conv2d + BatchNorm2d (`conv_block.0|1`), + the input when `residual`, then ReLU.

    Args:
        cin, cout (int): channels in / out (equal when `residual`).
        kernel_size, stride, padding (int|tuple): of the convolution.
        residual (bool): add the block's input before the ReLU. Default: False.
    """

    def __init__(self, cin, cout, kernel_size, stride, padding, residual=False):
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x):
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)


class NonNormConv2d(nn.Module):
    """Conv2d (`conv_block.0`) + LeakyReLU(0.01): the quality discriminator's block."""

    def __init__(self, cin, cout, kernel_size, stride, padding):
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding))
        self.act = nn.LeakyReLU(0.01)

    def forward(self, x):
        return self.act(self.conv_block(x))


class Conv2dTransposeRelu(nn.Module):
    """ConvTranspose2d + BatchNorm2d (`conv_block.0|1`) + ReLU."""

    def __init__(self, cin, cout, kernel_size, stride, padding, output_padding=0):
        super().__init__()
        self.conv_block = nn.Sequential(nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding),
                                        nn.BatchNorm2d(cout))
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.conv_block(x))


def res_blocks(c, n):
    """`n` residual 3x3 ConvBNRelu blocks of `c` channels."""
    return [ConvBNRelu(c, c, 3, 1, 1, residual=True) for _ in range(n)]


def audio_encoder(last_res=1):
    """The mel-window encoder of Wav2Lip (`last_res` 1) and SyncNetColor (2, one more residual
    block at 256 channels): [N, 1, 80, 16] -> [N, 512, 1, 1]."""
    return nn.Sequential(
        ConvBNRelu(1, 32, 3, 1, 1), *res_blocks(32, 2),
        ConvBNRelu(32, 64, 3, (3, 1), 1), *res_blocks(64, 2),
        ConvBNRelu(64, 128, 3, 3, 1), *res_blocks(128, 2),
        ConvBNRelu(128, 256, 3, (3, 2), 1), *res_blocks(256, last_res),
        ConvBNRelu(256, 512, 3, 1, 0),
        ConvBNRelu(512, 512, 1, 1, 0))


def check_mel(audio, what):
    if audio.ndim != 4 or tuple(audio.shape[1:]) != (1,) + MEL_SHAPE:
        raise ValueError(f"{what} needs mel windows [N, 1, 80, 16], got {tuple(audio.shape)}")


@GENERATORS.register()
class Wav2Lip(nn.Module):
    """U-Net face encoder/decoder conditioned on an audio embedding; no arguments (as PaddleGAN).

    forward(audio_sequences, face_sequences):
        audio_sequences: [B, 1, 80, 16] mel windows (values in [-4, 4]).
        face_sequences: [B, 6, 96, 96] in [0, 1]: the target face with its lower half (rows 48:)
            zeroed, then the reference face, channels in the order the weights were trained on
            (BGR for PaddleGAN's checkpoints).
        -> [B, 3, 96, 96] in [0, 1].
    The training form takes audio [B, T, 1, 80, 16] and faces [B, 6, T, 96, 96] and returns
    [B, 3, T, 96, 96]: the T slices run as one batch of T*B (row t*B + b), as in PaddleGAN.
    """

    def __init__(self):
        super().__init__()
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(ConvBNRelu(6, 16, 7, 1, 3)),  # 96
            nn.Sequential(ConvBNRelu(16, 32, 3, 2, 1), *res_blocks(32, 2)),  # 48
            nn.Sequential(ConvBNRelu(32, 64, 3, 2, 1), *res_blocks(64, 3)),  # 24
            nn.Sequential(ConvBNRelu(64, 128, 3, 2, 1), *res_blocks(128, 2)),  # 12
            nn.Sequential(ConvBNRelu(128, 256, 3, 2, 1), *res_blocks(256, 2)),  # 6
            nn.Sequential(ConvBNRelu(256, 512, 3, 2, 1), *res_blocks(512, 1)),  # 3
            nn.Sequential(ConvBNRelu(512, 512, 3, 1, 0), ConvBNRelu(512, 512, 1, 1, 0)),  # 1
        ])
        self.audio_encoder = audio_encoder()
        self.face_decoder_blocks = nn.ModuleList([
            nn.Sequential(ConvBNRelu(512, 512, 1, 1, 0)),  # 1
            nn.Sequential(Conv2dTransposeRelu(1024, 512, 3, 1, 0), *res_blocks(512, 1)),  # 3
            nn.Sequential(Conv2dTransposeRelu(1024, 512, 3, 2, 1, 1), *res_blocks(512, 2)),  # 6
            nn.Sequential(Conv2dTransposeRelu(768, 384, 3, 2, 1, 1), *res_blocks(384, 2)),  # 12
            nn.Sequential(Conv2dTransposeRelu(512, 256, 3, 2, 1, 1), *res_blocks(256, 2)),  # 24
            nn.Sequential(Conv2dTransposeRelu(320, 128, 3, 2, 1, 1), *res_blocks(128, 2)),  # 48
            nn.Sequential(Conv2dTransposeRelu(160, 64, 3, 2, 1, 1), *res_blocks(64, 2)),  # 96
        ])
        self.output_block = nn.Sequential(ConvBNRelu(80, 32, 3, 1, 1), nn.Conv2d(32, 3, 1, 1, 0), nn.Sigmoid())
        paddle_default_init_(self)

    def forward(self, audio_sequences, face_sequences):
        sequence = face_sequences.ndim == 5
        if sequence:
            if audio_sequences.ndim != 5 or audio_sequences.shape[:2] != (face_sequences.shape[0],
                                                                           face_sequences.shape[2]):
                raise ValueError(f"Wav2Lip sequence input needs audio [B, T, 1, 80, 16] and faces [B, 6, T, 96, 96], "
                                 f"got {tuple(audio_sequences.shape)} and {tuple(face_sequences.shape)}")
            batch = audio_sequences.shape[0]
            audio_sequences = torch.cat(audio_sequences.unbind(1), 0)
            face_sequences = torch.cat(face_sequences.unbind(2), 0)
        check_mel(audio_sequences, "Wav2Lip")
        if face_sequences.ndim != 4 or tuple(face_sequences.shape[1:]) != (6, FACE_SIZE, FACE_SIZE) \
                or face_sequences.shape[0] != audio_sequences.shape[0]:
            raise ValueError(f"Wav2Lip needs faces [N, 6, 96, 96] beside audio [N, 1, 80, 16], got "
                             f"{tuple(face_sequences.shape)} and {tuple(audio_sequences.shape)}")

        feats = []
        x = face_sequences
        for block in self.face_encoder_blocks:
            x = block(x)
            feats.append(x)
        x = self.audio_encoder(audio_sequences)
        for block in self.face_decoder_blocks:
            x = torch.cat((block(x), feats.pop()), 1)  # skip connection from the matching encoder level
        x = self.output_block(x)

        if sequence:
            return torch.stack(x.split(batch, 0), 2)
        return x

    @torch.no_grad()
    def fuse_conv_bn_(self):
        """For inference only: fold every BatchNorm into the conv before it (same outputs to float
        rounding, ~10-15 % faster on CPU). The net must be in eval mode with its weights loaded; its
        state dict loses the BatchNorm keys, so load weights before, never after. Returns self."""
        if self.training:
            raise RuntimeError("Wav2Lip.fuse_conv_bn_() needs eval mode (call .eval() first)")
        for m in self.modules():
            if isinstance(m, (ConvBNRelu, Conv2dTransposeRelu)) and len(m.conv_block) == 2:
                conv, bn = m.conv_block
                transpose = isinstance(conv, nn.ConvTranspose2d)
                m.conv_block = nn.Sequential(fuse_conv_bn_eval(conv, bn, transpose=transpose))
        return self

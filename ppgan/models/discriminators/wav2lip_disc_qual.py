"""Wav2LipDiscQual: the visual-quality discriminator of Wav2Lip-HQ (lower half of each face).

Paper: Prajwal et al., "A Lip Sync Expert Is All You Need for Speech to Lip Generation In the
Wild", ACM MM 2020, https://arxiv.org/abs/2008.10010.
Reference: https://github.com/Rudrabha/Wav2Lip via PaddleGAN
`ppgan/models/discriminators/wav2lip_disc_qual.py`. Attribute names (`face_encoder_blocks.<i>.<j>
.conv_block.0`, `binary_pred.0`) are PaddleGAN's, so its `.pdparams` load by name.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ...modules.sr_blocks import paddle_default_init_
from ..generators.wav2lip import NonNormConv2d
from .builder import DISCRIMINATORS


@DISCRIMINATORS.register()
class Wav2LipDiscQual(nn.Module):
    """No arguments (as PaddleGAN).

    forward(face_sequences): [B, 3, T, 96, 96] faces in [0, 1] (T frames, e.g. syncnet_T = 5) ->
        [B*T, 1] probabilities that each face is real (row t*B + b, as PaddleGAN's `to_2d`).
        A 4-D [N, 3, 96, 96] batch of faces is taken as T = 1 -> [N, 1].
    perceptual_forward(false_face_sequences): the generator's loss, BCE of those probabilities
        against 1 (a scalar).
    """

    def __init__(self):
        super().__init__()
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(NonNormConv2d(3, 32, 7, 1, 3)),  # 48x96
            nn.Sequential(NonNormConv2d(32, 64, 5, (1, 2), 2), NonNormConv2d(64, 64, 5, 1, 2)),  # 48x48
            nn.Sequential(NonNormConv2d(64, 128, 5, 2, 2), NonNormConv2d(128, 128, 5, 1, 2)),  # 24
            nn.Sequential(NonNormConv2d(128, 256, 5, 2, 2), NonNormConv2d(256, 256, 5, 1, 2)),  # 12
            nn.Sequential(NonNormConv2d(256, 512, 3, 2, 1), NonNormConv2d(512, 512, 3, 1, 1)),  # 6
            nn.Sequential(NonNormConv2d(512, 512, 3, 2, 1), NonNormConv2d(512, 512, 3, 1, 1)),  # 3
            nn.Sequential(NonNormConv2d(512, 512, 3, 1, 0), NonNormConv2d(512, 512, 1, 1, 0)),  # 1
        ])
        self.binary_pred = nn.Sequential(nn.Conv2d(512, 1, 1, 1, 0), nn.Sigmoid())
        self.label_noise = 0.0
        paddle_default_init_(self)

    @staticmethod
    def get_lower_half(face_sequences):
        return face_sequences[:, :, face_sequences.shape[2] // 2:]

    @staticmethod
    def to_2d(face_sequences):
        """[B, C, T, H, W] -> [T*B, C, H, W] (row t*B + b); a 4-D batch is returned as it is."""
        if face_sequences.ndim == 4:
            return face_sequences
        if face_sequences.ndim != 5:
            raise ValueError(f"Wav2LipDiscQual needs faces [B, 3, T, 96, 96] or [N, 3, 96, 96], got "
                             f"{tuple(face_sequences.shape)}")
        return torch.cat(face_sequences.unbind(2), 0)

    def _predict(self, face_sequences):
        x = self.get_lower_half(self.to_2d(face_sequences))
        for block in self.face_encoder_blocks:
            x = block(x)
        return self.binary_pred(x).reshape(len(x), -1)

    def perceptual_forward(self, false_face_sequences):
        pred = self._predict(false_face_sequences)
        return F.binary_cross_entropy(pred, torch.ones_like(pred))

    def forward(self, face_sequences):
        return self._predict(face_sequences)

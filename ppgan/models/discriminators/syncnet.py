"""SyncNetColor: Wav2Lip's lip-sync expert (audio and lower-face embeddings on the unit sphere).

Paper: Prajwal et al., "A Lip Sync Expert Is All You Need for Speech to Lip Generation In the
Wild", ACM MM 2020, https://arxiv.org/abs/2008.10010.
Reference: https://github.com/Rudrabha/Wav2Lip via PaddleGAN `ppgan/models/discriminators/syncnet.py`.
Attribute names (`face_encoder.<i>.conv_block.0|1`, `audio_encoder.<i>`) are PaddleGAN's, so its
`.pdparams` load by name.
"""
import torch.nn.functional as F
from torch import nn

from ...modules.sr_blocks import paddle_default_init_
from ..generators.wav2lip import ConvBNRelu, audio_encoder, check_mel, res_blocks
from .builder import DISCRIMINATORS


@DISCRIMINATORS.register()
class SyncNetColor(nn.Module):
    """No arguments (as PaddleGAN).

    forward(audio_sequences, face_sequences):
        audio_sequences: [B, 1, 80, 16] one mel window.
        face_sequences: [B, 15, 48, 96]: the lower halves (rows 48:96 of 96x96 faces in [0, 1]) of
            5 consecutive frames stacked on channels (channel 3 * t + c).
        -> (audio_embedding [B, 512], face_embedding [B, 512]), each L2-normalised; training
        scores a pair by their cosine similarity.
    """

    def __init__(self):
        super().__init__()
        self.face_encoder = nn.Sequential(
            ConvBNRelu(15, 32, 7, 1, 3),  # 48x96
            ConvBNRelu(32, 64, 5, (1, 2), 1), *res_blocks(64, 2),  # 46x47
            ConvBNRelu(64, 128, 3, 2, 1), *res_blocks(128, 3),  # 23x24
            ConvBNRelu(128, 256, 3, 2, 1), *res_blocks(256, 2),  # 12x12
            ConvBNRelu(256, 512, 3, 2, 1), *res_blocks(512, 2),  # 6x6
            ConvBNRelu(512, 512, 3, 2, 1),  # 3x3
            ConvBNRelu(512, 512, 3, 1, 0),  # 1x1
            ConvBNRelu(512, 512, 1, 1, 0))
        self.audio_encoder = audio_encoder(last_res=2)
        paddle_default_init_(self)

    def forward(self, audio_sequences, face_sequences):
        check_mel(audio_sequences, "SyncNetColor")
        if face_sequences.ndim != 4 or face_sequences.shape[1] != 15 or face_sequences.shape[0] != \
                audio_sequences.shape[0]:
            raise ValueError(f"SyncNetColor needs faces [N, 15, 48, 96] beside audio [N, 1, 80, 16], got "
                             f"{tuple(face_sequences.shape)} and {tuple(audio_sequences.shape)}")
        face_embedding = self.face_encoder(face_sequences).flatten(1)
        audio_embedding = self.audio_encoder(audio_sequences).flatten(1)
        return F.normalize(audio_embedding, p=2, dim=1), F.normalize(face_embedding, p=2, dim=1)

"""Person / background mask from mediapipe's selfie segmentation model (rebuilt in PyTorch).

`SelfieSegmenter(device='cpu').mask(image)` -> HxW float32 in [0, 1] (1 = person), as
mediapipe's `solutions.selfie_segmentation` (model_selection=0) computes it: the whole image
stretched to 256x256 (no letterbox) in [0, 1], the model's sigmoid output resized back to the
image with bilinear interpolation (half-pixel centres, OpenCV's INTER_LINEAR).
"""
import numpy as np
import torch
import torch.nn.functional as F

from .mediapipe_nets import SelfieSegmentation, images_to_tensor, rect_crop

INPUT_SIZE = 256


class SelfieSegmenter:
    """Args: device (torch device), weight_path (an explicit selfie_segmentation `.tflite`),
    download (kept for symmetry; the model ships in the mediapipe wheel)."""

    def __init__(self, device="cpu", weight_path=None, download=True):
        self.device = torch.device(device)
        self.net = SelfieSegmentation(weight_path=weight_path, download=download).to(self.device).eval()
        self.identity = self.net.identity

    @torch.no_grad()
    def masks(self, images):
        """list of HxWx3 uint8 RGB -> list of HxW float32 masks in [0, 1] (one net call)."""
        tensors = images_to_tensor(images, self.device)
        if not tensors:
            return []
        crops = []
        for t in tensors:
            h, w = t.shape[2:]
            crops.append(rect_crop(t, torch.tensor([[w / 2.0, h / 2.0]], device=self.device),
                                   torch.tensor([[float(w), float(h)]], device=self.device),
                                   torch.zeros(1, device=self.device), INPUT_SIZE, "zero", (0.0, 1.0)))
        probs = self.net(torch.cat(crops))
        out = []
        for p, t in zip(probs, tensors):
            m = F.interpolate(p[None], size=tuple(t.shape[2:]), mode="bilinear", align_corners=False)
            out.append(m[0, 0].clamp(0, 1).cpu().numpy().astype(np.float32))
        return out

    def mask(self, image):
        """HxWx3 uint8 RGB -> HxW float32 person probability in [0, 1]."""
        return self.masks([image])[0]

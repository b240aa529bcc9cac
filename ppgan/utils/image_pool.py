"""History of generated images for the discriminator (Shrivastava et al., 2017), as CycleGAN uses it.

Reference: PaddleGAN ppgan/utils/image_pool.py (after junyanz/pytorch-CycleGAN-and-pix2pix).
Random choices come from torch's global CPU generator, which the trainer seeds and saves in
checkpoints; the stored images are part of the model's checkpoint state (`state_dict`), so a
resumed run continues exactly.
"""
import torch


class ImagePool:
    """Until `pool_size` images are stored, every image is stored and returned. Then each image
    is, with probability 1 - `prob`, swapped with a random stored one (the stored one is
    returned), otherwise returned as is.

    Args:
        pool_size (int): images kept; 0 disables the pool (`query` returns its input).
        prob (float): chance of returning the current image once the pool is full (default 0.5).
    """

    def __init__(self, pool_size, prob=0.5):
        if pool_size < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}")
        self.pool_size = int(pool_size)
        self.prob = float(prob)
        self.images = []

    def __len__(self):
        return len(self.images)

    @torch.no_grad()
    def query(self, images):
        """images [N, C, H, W] (detached) -> [N, C, H, W] mixing them with stored ones."""
        if self.pool_size == 0:
            return images
        out = []
        for image in images:
            image = image.unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image)
                out.append(image)
            elif float(torch.rand(())) > self.prob:
                i = int(torch.randint(0, self.pool_size, ()))
                out.append(self.images[i])
                self.images[i] = image
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self):
        """{'images': [n, C, H, W]} (an empty tensor while the pool is empty)."""
        return {"images": torch.cat(self.images, 0) if self.images else torch.empty(0)}

    def load_state_dict(self, state, device=None):
        images = state["images"]
        if device is not None:
            images = images.to(device)
        self.images = [] if images.numel() == 0 else list(images[: self.pool_size].split(1, 0))

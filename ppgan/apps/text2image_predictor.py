"""Text -> image with a StackGAN trained by this project (`configs/stackgan_digits.yaml`).

The weight file carries its model config, which names the vocabulary (`model.vocabulary`,
e.g. 'digits'); the tokenizer is rebuilt from that name (`ppgan.utils.text`), so a caption is
read exactly as in training. Words the vocabulary never saw become the unknown token (id 1)
and are reported once as a warning; a caption with no word at all is an error.

    pred = TextToImagePredictor(weight_path="output_dir/stackgan_digits-.../iter_6000_weight.pth")
    out = pred.run("a thick blue four slanted right on a light background", n=8, output="out/")
    out["images"]   # uint8 [8, S, S, 3] RGB;  out["grid"], out["files"]: the PNGs written
"""
import os
import re

import numpy as np
import torch

from ..models import build_model
from ..utils.config import load_config
from ..utils.errors import CheckpointError, ConfigError
from ..utils.image import imwrite
from ..utils.text import get_vocabulary
from ..utils.visual import save_grid
from ..weights import Weights, load, load_nets
from .base_predictor import BasePredictor, log

MODEL_NAME = "StackGANModel"
MAX_SAMPLES = 1024   # images per caption in one call
MAX_CAPTIONS = 256   # captions in one call
BATCH = 64           # images per generator call


def _slug(text, limit=40):
    """'a thin red 7!' -> 'a_thin_red_7' (file-name safe, at most `limit` characters)."""
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:limit].strip("_")
    return slug or "caption"


class TextToImagePredictor(BasePredictor):
    """Draw images for captions with a trained StackGAN.

    Args:
        weight_path (str | Weights): a `*_weight.pth` / `*_checkpoint.pth` of a StackGANModel run.
        config (str | dict | None): the training config (path or dict) or its `model` section;
            default: the config stored in the weight file.
        device (str): 'auto', 'cpu' or 'cuda'.
        stage (int | None): 1 (64 px) or 2 (stage II's size); None: the model's final stage.
        verbose (bool): print the device line and unknown-word warnings. Default: True.

    Attributes:
        vocab (Vocabulary): the tokenizer. model (StackGANModel). image_size (int): output side.
    """

    name = "TextToImage"

    def __init__(self, weight_path, config=None, device="auto", stage=None, verbose=True):
        if weight_path is None or weight_path == "":
            raise CheckpointError("no weight file given: pass --weight_path FILE (an iter_<N>_weight.pth of a "
                                  "StackGAN run, e.g. configs/stackgan_digits.yaml)")
        weights = weight_path if isinstance(weight_path, Weights) else load(weight_path)
        where = weights.path or "the weights"
        if config is not None:
            cfg = load_config(config) if isinstance(config, (str, os.PathLike)) else config
            if not isinstance(cfg, dict):
                raise ConfigError(f"config {config} is not a mapping")
            model_cfg = cfg["model"] if isinstance(cfg.get("model"), dict) else cfg
        elif isinstance(weights.config, dict):
            model_cfg = weights.config
        else:
            raise CheckpointError(f"{where} carries no model config: pass --config with the training config")
        if model_cfg.get("name") != MODEL_NAME:
            raise CheckpointError(f"{where} holds a {model_cfg.get('name', 'model of unknown kind')}, not a "
                                  f"{MODEL_NAME}: text2image needs a StackGAN (configs/stackgan_digits.yaml)")
        super().__init__(device=device, half=False, verbose=verbose)  # GRU + tiny nets: fp32 is cheap
        # inference only: the discriminators are not needed (nor their weights)
        model_cfg = {k: v for k, v in model_cfg.items() if k not in ("discriminator", "discriminator2")}
        self.model = build_model(model_cfg)
        self.model_cfg = model_cfg
        loaded = load_nets(self.model.nets, weights, strict=True)
        need = ["netT", "netG"] + (["netG2"] if self.model.stage == 2 else [])
        missing = [n for n in need if n not in loaded]
        if missing:
            raise CheckpointError(f"{where} has no '{missing[0]}' weights (it has: "
                                  f"{', '.join(map(str, weights.states))})")
        self.model.fill_missing_ema(loaded)
        self.model.setup_runtime(device=self.device)
        self.model.eval()
        self.stage = self.model.stage if stage is None else int(stage)
        if self.stage not in (1, self.model.stage):
            raise ConfigError(f"stage must be 1 or {self.model.stage} for this model, got {stage}")
        self.vocab = get_vocabulary(model_cfg.get("vocabulary", "digits"))
        self.weight_files = list(weights.files)
        self.image_size = int(self.model.final_size if self.stage == self.model.stage else self.model.size1)

    def encode(self, text):
        """(tokens int64 [1, L], lengths int64 [1], unknown words) of one caption; ConfigError if empty."""
        if not isinstance(text, str):
            raise ConfigError(f"a caption must be text, got {type(text).__name__}")
        tokens, lengths = self.vocab.encode_batch([text])
        return tokens, lengths, self.vocab.unknown_words(text)

    @torch.no_grad()
    def generate(self, text, n=8, seed=0):
        """`n` images for one caption: float [n, 3, S, S] in [-1, 1] on the CPU.

        The same (caption, n, seed) gives the same images.
        """
        n = int(n)
        if not 1 <= n <= MAX_SAMPLES:
            raise ConfigError(f"n must be in 1..{MAX_SAMPLES}, got {n}")
        tokens, lengths, unknown = self.encode(text)
        if unknown and self.verbose:
            log(f"warning: words the '{self.vocab.name or 'custom'}' vocabulary does not know, read as unknown: "
                f"{', '.join(unknown)}")
        gen = torch.Generator().manual_seed(int(seed))
        z = torch.randn(n, self.model.z_dim, generator=gen)
        eps_gen = torch.Generator().manual_seed(int(seed) + 1)
        out = []
        for i in range(0, n, BATCH):
            b = min(BATCH, n - i)
            out.append(self.model.generate(tokens.expand(b, -1), lengths.expand(b), z=z[i:i + b],
                                           generator=eps_gen, stage=self.stage).float().cpu())
        imgs = torch.cat(out).clamp(-1, 1)
        if not torch.isfinite(imgs).all():
            raise CheckpointError("the generator produced non-finite pixels (a diverged weight file?)")
        return imgs

    def run(self, text, n=8, output=None, seed=0):
        """Images for one caption or several (one grid row each), written under `output` if given.

        Args:
            text (str | Sequence[str]): caption(s).
            n (int): images per caption. Default: 8.
            output (str | None): folder; writes `grid.png` (one row per caption) and
                `<k>_<caption>_<i>.png` per image. None: nothing is written.
            seed (int): noise seed (caption k uses seed + 1000 * k). Default: 0.

        Returns:
            dict: images (uint8 [len(text) * n, S, S, 3] RGB, caption by caption), captions
            (list[str]), unknown_words ({caption: [words]}), grid (path | None), files (list[str]).
        """
        texts = [text] if isinstance(text, str) else list(text)
        if not texts:
            raise ConfigError("no caption given")
        if len(texts) > MAX_CAPTIONS:
            raise ConfigError(f"at most {MAX_CAPTIONS} captions per call, got {len(texts)}")
        for t in texts:  # every caption checked before any image is drawn or written
            self.encode(t)
        batches = [self.generate(t, n=n, seed=int(seed) + 1000 * k) for k, t in enumerate(texts)]
        imgs = torch.cat(batches)
        arr = ((imgs + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        result = {"images": np.ascontiguousarray(arr), "captions": texts,
                  "unknown_words": {t: self.vocab.unknown_words(t) for t in texts}, "grid": None, "files": []}
        if output is not None:
            os.makedirs(output, exist_ok=True)
            for k, t in enumerate(texts):
                for i in range(n):
                    path = os.path.join(output, f"{k:02d}_{_slug(t)}_{i:03d}.png")
                    imwrite(path, arr[k * n + i])
                    result["files"].append(path)
            result["grid"] = os.path.join(output, "grid.png")
            save_grid(imgs, result["grid"], nrow=n)
        return result

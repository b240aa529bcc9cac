"""PaddleGAN's `preprocess:` pipelines: steps over a sample dict, e.g.

    preprocess:
      - {name: LoadImageFromFile, key: pair}               # datas['pair_path'] -> datas['pair']
      - {name: SplitPairedImage, key: pair, paired_keys: [A, B]}
      - name: Transforms                                    # the TRANSFORMS of transforms.py
        input_keys: [A, B]
        pipeline: [{name: Resize, size: [286, 286]}, {name: PairedRandomCrop, size: [256, 256]}, ...]

Each step is `step(datas, rng) -> datas`, every random draw from the sample's `rng`. Inside
`Transforms`, the `Paired*` transforms (and the deterministic ones) treat all input images with
one draw; PaddleGAN's plain `RandomCrop` / `RandomHorizontalFlip` / `RandomVerticalFlip` draw
once per image, as they do there (CycleGAN configs crop A and B independently). A `Transforms`
step returns CHW arrays (a pipeline without `Transpose` is transposed at its end).
"""
import numpy as np

from ..utils.errors import ConfigError, DatasetError
from ..utils.image import imread
from ..utils.registry import Registry
from .base_dataset import to_chw_tensor
from .transforms import Compose

PREPROCESS = Registry("preprocess step")

# PaddleGAN registers paddle.vision's transforms under these names; they draw per image.
PER_IMAGE_RANDOM = ("RandomCrop", "RandomHorizontalFlip", "RandomVerticalFlip")


@PREPROCESS.register()
class LoadImageFromFile:
    """datas['<key>_path'] -> datas['<key>'] (HxWxC uint8).

    Args:
        key (str): sample key (default 'image').
        flag (int | str): -1 / 1 / 'color' / 'unchanged': 3 channels; 0 / 'grayscale': HxWx1.
        to_rgb (bool): RGB order (default True); False keeps OpenCV's BGR, as PaddleGAN.
        save_original_img, backend: accepted for PaddleGAN configs; ignored.
    """

    def __init__(self, key="image", flag=-1, to_rgb=True, save_original_img=False, backend=None):
        self.key = key
        self.gray = flag in (0, "grayscale")
        self.to_rgb = to_rgb

    def writes(self):
        return [self.key]

    def __call__(self, datas, rng):
        path_key = f"{self.key}_path"
        if path_key not in datas:
            raise ConfigError(f"the sample has no '{path_key}' (it has: {', '.join(sorted(datas))})")
        img = imread(datas[path_key], "gray" if self.gray else "rgb")
        if img.ndim == 2:
            img = img[..., None]
        elif not self.to_rgb:
            img = np.ascontiguousarray(img[..., ::-1])
        datas[self.key] = img
        return datas


@PREPROCESS.register()
class SplitPairedImage:
    """Split the side-by-side image datas[key] into its left half (paired_keys[0]) and right
    half (paired_keys[1]); both get datas['<key>_path'] as their path.

    Args:
        key (str): the combined image.
        paired_keys (list[str]): two keys (default ['A', 'B']).
    """

    def __init__(self, key, paired_keys=("A", "B")):
        if len(paired_keys) != 2:
            raise ConfigError(f"SplitPairedImage paired_keys must name two keys, got {paired_keys!r}")
        self.key = key
        self.paired_keys = list(paired_keys)

    def writes(self):
        return list(self.paired_keys)

    def __call__(self, datas, rng):
        img = datas[self.key]
        w2 = img.shape[1] // 2
        a, b = self.paired_keys
        datas[a], datas[b] = img[:, :w2], img[:, w2:]
        for k in self.paired_keys:
            datas[f"{k}_path"] = datas[f"{self.key}_path"]
        return datas


@PREPROCESS.register()
class Transforms:
    """Run a transform pipeline (`ppgan.datasets.transforms` names) over datas[input_keys].

    Args:
        pipeline (list[dict]): transform configs.
        input_keys (list[str]): the images to transform together.
        output_keys (list[str] | None): where to write the results (default: input_keys).
    """

    def __init__(self, pipeline, input_keys, output_keys=None):
        if isinstance(input_keys, str):
            input_keys = [input_keys]
        self.input_keys = list(input_keys)
        # output_keys may outnumber input_keys: a step can add images (SRPairedRandomCrop with
        # scale_list adds DRN's x2 image); the count is checked on each call.
        self.output_keys = list(output_keys) if output_keys is not None else self.input_keys
        self.steps = []
        for cfg in pipeline or []:
            compose = Compose([cfg])  # one Compose per transform: errors name it
            self.steps.append((cfg["name"] in PER_IMAGE_RANDOM, compose))
        self.has_transpose = any(c.has_transpose for _, c in self.steps)

    def writes(self):
        return list(self.output_keys)

    def __call__(self, datas, rng):
        images = [datas[k] for k in self.input_keys]
        for per_image, compose in self.steps:
            images = [compose(im, rng) for im in images] if per_image else compose(images, rng)
        if len(images) != len(self.output_keys):
            raise DatasetError(f"Transforms made {len(images)} images for output_keys {self.output_keys}")
        if not self.has_transpose:
            images = [(im[..., None] if im.ndim == 2 else im).transpose(2, 0, 1) for im in images]
        for k, im in zip(self.output_keys, images):
            datas[k] = im
        return datas


class Preprocess:
    """A built `preprocess:` list: `__call__(datas, rng) -> datas`.

    `chw_keys` are the keys a `Transforms` step wrote last (CHW arrays); other images are HWC.
    """

    def __init__(self, cfgs):
        if isinstance(cfgs, dict):
            cfgs = [cfgs]
        if not isinstance(cfgs, (list, tuple)):
            raise ConfigError(f"preprocess must be a list of steps, got {cfgs!r}")
        self.steps, self.chw_keys = [], set()
        for i, cfg in enumerate(cfgs):
            if not isinstance(cfg, dict) or "name" not in cfg:
                raise ConfigError(f"preprocess step #{i + 1} must be a mapping with a 'name' key, got {cfg!r}")
            step = PREPROCESS.build(cfg)
            self.steps.append(step)
            for k in step.writes():
                (self.chw_keys.add if isinstance(step, Transforms) else self.chw_keys.discard)(k)

    def __call__(self, datas, rng):
        for step in self.steps:
            try:
                datas = step(datas, rng)
            except Exception as e:
                if isinstance(e, DatasetError) and not isinstance(step, Transforms):
                    raise  # already names its file
                paths = ", ".join(str(v) for k, v in datas.items() if k.endswith("_path"))
                msg = e.args[0] if isinstance(e, KeyError) and e.args else e
                raise DatasetError(f"preprocess step {type(step).__name__} failed ({paths}): {msg}") from e
        return datas

    def sample(self, datas, rng, keys):
        """Run the pipeline, then return {key: float32 tensor [C, H, W], '<key>_path': str} for `keys`."""
        datas = self(dict(datas), rng)
        out = {}
        for k in keys:
            if k not in datas:
                raise DatasetError(f"preprocess produced no '{k}' image for {datas.get(k + '_path', datas)}")
            out[k] = to_chw_tensor(datas[k], is_chw=k in self.chw_keys)
            out[f"{k}_path"] = str(datas.get(f"{k}_path", ""))
        return out


def default_preprocess(load_keys, split=None):
    """Load each of `load_keys`, optionally split a side-by-side image into A|B, then to CHW in [-1, 1]."""
    steps = [{"name": "LoadImageFromFile", "key": k} for k in load_keys]
    keys = list(load_keys)
    if split is not None:
        steps.append({"name": "SplitPairedImage", "key": split, "paired_keys": ["A", "B"]})
        keys = ["A", "B"]
    steps.append({"name": "Transforms", "input_keys": keys,
                  "pipeline": [{"name": "Transpose"}, {"name": "Normalize", "mean": [127.5], "std": [127.5]}]})
    return steps

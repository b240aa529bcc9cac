"""Animate the face of a photo with the motion of a driving video: `FirstOrderPredictor` (First
Order Motion Model, Siarohin et al. 2019; PaddleGAN's app, names and arguments).

    from ppgan.apps.first_order_predictor import FirstOrderPredictor
    FirstOrderPredictor(output='output', relative=True, adapt_scale=True).run('face.png', 'drive.mp4')
    # -> output/result.mp4: the photo, its face moving as the driving video's, with that video's audio

What happens (PaddleGAN `FirstOrderPredictor.run`, streamed and resumable):
1. the faces of the source photo are found (`ppgan.faceutils.FaceDetector`, MTCNN by default: no
   download); each is cut out with PaddleGAN's FOM crop (`alignment.fom_box`: centred on the box,
   0.8 x its larger side left and right, 1 x up and down, clipped to the photo) resized to
   `image_size` x `image_size`. Boxes are taken largest first, and a box overlapping a kept one by
   IoU > 0.5 is dropped (PaddleGAN's `extract_bbox`); without `multi_person` only the largest face
   is animated;
2. the driving video is decoded frame by frame (never held in memory) and each frame resized to
   `image_size` x `image_size`; `KPDetector` finds its keypoints, once per frame for all faces;
3. `normalize_kp` (relative movement and Jacobian with `relative`, adaptive scale with
   `adapt_scale`) maps them onto each face's source keypoints, relative to the keypoints of the
   initial driving frame: frame 0, or with `find_best_frame` / `best_frame` the frame whose face
   pose is closest to the source's (PaddleGAN animates forward and backward from that frame with it
   as the initial frame, which gives each frame the same result as using it as the reference here);
4. `OcclusionAwareGenerator` renders each face in batches of `batch_size` frames (on out-of-memory
   the batch is halved and retried, logged);
5. each rendered crop is resized back onto its box in the full photo (as PaddleGAN does) and
   blended in with a feathered mask: the whole crop, faded out over its border (one face), or
   with `multi_person` a disc of radius `ratio` x the crop's height around each face, as
   PaddleGAN draws it, feathered; pixels outside the masks keep the photo's values exactly;
6. the frames are encoded by `ppgan.video.process_video`: the output has the driving video's exact
   frame rate, frame count and duration, and keeps its audio. The job is done in resumable chunks:
   a killed run re-run with the same arguments continues from the last finished chunk and writes
   the same video. Each chunk's frames are computed from their absolute index in the driving video
   (the initial keypoints are always taken from the driving video's file), never from a counter.

Bad input fails before any frame is written, with one line: a source that is a video or
unreadable, a source without a face, a driving video that is an image or unreadable.
"""
import copy
import math
import os

import cv2
import numpy as np
import torch

from ..utils.errors import CheckpointError, ConfigError, DatasetError, PPGANError
from ..utils.inference import is_out_of_memory
from ..video import FrameStage
from .base_predictor import OOM_ERRORS, BasePredictor, log
from .cli_args import FACE_DETECTORS

WEIGHT_BASE = "https://paddlegan.bj.bcebos.com/applications/first_order_model"
# catalogue name -> PaddleGAN's published file (each holds {'generator': ..., 'kp_detector': ...})
WEIGHT_URLS = {"vox-cpk": f"{WEIGHT_BASE}/vox-cpk.pdparams", "vox-cpk-512": f"{WEIGHT_BASE}/vox-cpk-512.pdparams",
               "vox-mobile": f"{WEIGHT_BASE}/vox-mobile.pdparams"}

# PaddleGAN's FirstOrderPredictor default config (= configs/firstorder_vox_256.yaml's nets); the 512
# weights use the same nets on 512x512 crops.
VOX_CONFIG = {"model": {
    "common_params": {"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
    "generator": {
        "kp_detector_cfg": {"temperature": 0.1, "block_expansion": 32, "max_features": 1024, "scale_factor": 0.25,
                            "num_blocks": 5},
        "generator_cfg": {"block_expansion": 64, "max_features": 512, "num_down_blocks": 2,
                          "num_bottleneck_blocks": 6, "estimate_occlusion_map": True,
                          "dense_motion_params": {"block_expansion": 64, "max_features": 1024, "num_blocks": 5,
                                                  "scale_factor": 0.25}}}}}
# configs/firstorder_vox_mobile_256.yaml's nets (the weights vox-mobile.pdparams)
VOX_MOBILE_CONFIG = {"model": {
    "common_params": {"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
    "generator": {
        "kp_detector_cfg": {"temperature": 0.1, "block_expansion": 32, "max_features": 256, "scale_factor": 0.25,
                            "num_blocks": 5, "mobile_net": True},
        "generator_cfg": {"block_expansion": 32, "max_features": 256, "num_down_blocks": 2,
                          "num_bottleneck_blocks": 6, "estimate_occlusion_map": True,
                          "dense_motion_params": {"block_expansion": 32, "max_features": 256, "num_blocks": 5,
                                                  "scale_factor": 0.25},
                          "mobile_net": True}}}}



class NoFaceError(PPGANError):
    """The source image has no face the detector could find."""


def default_config(mobile_net=False):
    """A copy of PaddleGAN's config of the vox nets (`mobile_net`: the mobile ones)."""
    return copy.deepcopy(VOX_MOBILE_CONFIG if mobile_net else VOX_CONFIG)


def weight_name(image_size=256, mobile_net=False):
    """The catalogue name of PaddleGAN's weights for these settings (as its predictor picks the URL)."""
    if mobile_net:
        return "vox-mobile"
    return "vox-cpk-512" if int(image_size) == 512 else "vox-cpk"


def read_config(config, mobile_net=False):
    """PaddleGAN's FOM config as a dict: a YAML file (its `model.common_params` and
    `model.generator.kp_detector_cfg` / `generator_cfg` are used), a dict, or None (the defaults)."""
    if config is None:
        return default_config(mobile_net)
    if isinstance(config, (str, os.PathLike)):
        from ..utils import yaml_safe

        cfg = yaml_safe.read_yaml(os.fspath(config), "config")
        where = os.fspath(config)
    elif isinstance(config, dict):
        cfg, where = copy.deepcopy(config), "the config"
    else:
        raise ConfigError(f"config must be a YAML file or a dict, got {type(config).__name__}")
    try:
        model = cfg["model"]
        common, gen = dict(model["common_params"]), model["generator"]
        kp_cfg, gen_cfg = dict(gen["kp_detector_cfg"]), dict(gen["generator_cfg"])
    except (KeyError, TypeError) as e:
        raise ConfigError(f"{where} is not a First Order Motion config: no model.{e.args[0] if e.args else ''} "
                          "(needs model.common_params and model.generator.kp_detector_cfg / generator_cfg)") from None
    return {"model": {"common_params": common, "generator": {"kp_detector_cfg": kp_cfg, "generator_cfg": gen_cfg}}}


def build_nets(cfg):
    """(OcclusionAwareGenerator, KPDetector) as PaddleGAN's `load_checkpoints` builds them
    (random weights): generator_cfg + common_params + inference=True, kp_detector_cfg + common_params."""
    from ..models.generators.occlusion_aware import OcclusionAwareGenerator
    from ..modules.keypoint_detector import KPDetector

    model = cfg["model"]
    common, gen = model["common_params"], model["generator"]
    try:
        generator = OcclusionAwareGenerator(**gen["generator_cfg"], **common, inference=True)
        kp_detector = KPDetector(**gen["kp_detector_cfg"], **common)
    except TypeError as e:
        raise ConfigError(f"First Order Motion config: {e}") from None
    return generator.eval(), kp_detector.eval()


def dedup_boxes(boxes, iou_threshold=0.5):
    """PaddleGAN's `extract_bbox` selection: boxes by descending area, a box overlapping an
    already kept one by IoU > `iou_threshold` dropped. boxes: list of (x1, y1, x2, y2) ints."""
    def area(b):
        return max(0, b[2] - b[0]) * max(0, b[3] - b[1])

    def iou(a, b):
        w = min(a[2], b[2]) - max(a[0], b[0])
        h = min(a[3], b[3]) - max(a[1], b[1])
        if w < 0 or h < 0:
            return 0.0
        return w * h / max(area(a) + area(b) - w * h, 1e-9)

    kept = []
    for b in sorted(boxes, key=area, reverse=True):
        if all(iou(k, b) <= iou_threshold for k in kept):
            kept.append(b)
    return kept


def normalized_landmarks(points):
    """PaddleGAN's `find_best_frame_func` normalisation: centred, divided by the square root of the
    area of the points' convex hull. [N, 2] -> float64 [N, 2]."""
    kp = np.asarray(points, np.float64)[:, :2]
    kp = kp - kp.mean(axis=0, keepdims=True)
    area = cv2.contourArea(cv2.convexHull(kp.astype(np.float32)))
    return kp / math.sqrt(max(area, 1e-12))


def _float_kp(kp):
    """Keypoints in float32 (normalize_kp inverts the Jacobians: not in half precision)."""
    return {k: v.float() for k, v in kp.items()}


class _Face:
    """One animated face: its box in the photo, its crop, the 2x3 photo -> crop matrix, the paste
    mask (box pixels), the source tensor and keypoints, and the initial driving frame's index."""

    def __init__(self, box, crop, matrix, mask):
        self.box, self.crop, self.matrix, self.mask = box, crop, matrix, mask
        self.source = None       # [1, 3, S, S] float in [0, 1] on the device
        self.kp_source = None
        self.initial_frame = 0   # index in the driving video of the frame the motion is relative to
        self.kp_initial = None
        self._box_mask = None

    def box_mask(self):
        """The paste mask as float32 [h, w, 1] in [0, 1]."""
        if self._box_mask is None:
            self._box_mask = np.clip(self.mask, 0.0, 1.0)[..., None]
        return self._box_mask


class FirstOrderPredictor(BasePredictor):
    """Args (PaddleGAN's, in its order):
        output (str): output folder; the video is written to `<output>/<filename>`.
        weight_path (str | None): a weight file holding `generator` and `kp_detector` (PaddleGAN's
            `vox-cpk.pdparams` etc., or our `.pth` with those keys). None: the catalogue's
            vox-cpk / vox-cpk-512 / vox-mobile for `image_size` / `mobile_net` (cache or download).
        config (str | dict | None): PaddleGAN's FOM config (YAML file or dict) the nets are built
            from; None: PaddleGAN's defaults (`VOX_CONFIG`, or `VOX_MOBILE_CONFIG` with `mobile_net`).
        relative (bool): relative keypoint movement and Jacobians (default False, as PaddleGAN).
        adapt_scale (bool): scale the movement by the ratio of the keypoints' hull areas.
        find_best_frame (bool): animate relative to the driving frame whose face landmarks
            (the 468-point face mesh, else the detector's five points; normalised as PaddleGAN
            does) are closest to the source face's.
        best_frame (int | None): that frame's index, given.
        ratio (float): with `multi_person`, the radius of each face's paste disc as a fraction
            of its crop's height (PaddleGAN's CLI default 0.4; 1.0 here as in its predictor).
        filename (str): output file name (default result.mp4).
        face_detector (str): 'mtcnn' (default: packaged weights), 'sfd' (PaddleGAN's default:
            downloaded), 'blazeface', 'mediapipe' or 'haar'.
        multi_person (bool): animate every face, not only the largest.
        image_size (int): side of the face crops the nets see (256; 512 for vox-cpk-512).
        face_enhancement (bool): not supported (PaddleGAN's GPEN enhancer); True is an error.
        batch_size (int): driving frames per forward pass (halved on out-of-memory).
        mobile_net (bool): the mobile nets (`vox-mobile` weights).
        slice_size (int): accepted for PaddleGAN compatibility (frames are streamed anyway).
        device (str), half (bool | str | None), verbose (bool): as every predictor; the default
            precision is fp32 (half=None), 'bf16' / 'fp16' run the nets under autocast.
        detector_weight_path (str | None): the face detector's weight file.
    """

    name = "FirstOrder"

    def __init__(self, output="output", weight_path=None, config=None, relative=False, adapt_scale=False,
                 find_best_frame=False, best_frame=None, ratio=1.0, filename="result.mp4", face_detector="mtcnn",
                 multi_person=False, image_size=256, face_enhancement=False, batch_size=1, mobile_net=False,
                 slice_size=0, device="auto", half=None, verbose=True, detector_weight_path=None):
        super().__init__(device=device, half=False if half is None else half, verbose=verbose)
        if face_enhancement:
            raise ConfigError("face_enhancement is not supported by this first-order app (PaddleGAN's GPEN "
                              "enhancer is not included); drop --face_enhancement")
        if not isinstance(image_size, (int, np.integer)) or isinstance(image_size, bool) or image_size < 32:
            raise ConfigError(f"image_size must be an integer >= 32, got {image_size!r}")
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if not (isinstance(ratio, (int, float)) and ratio > 0):
            raise ConfigError(f"ratio must be > 0, got {ratio!r}")
        if best_frame is not None and (not isinstance(best_frame, (int, np.integer)) or best_frame < 0):
            raise ConfigError(f"best_frame must be a frame index >= 0, got {best_frame!r}")
        if str(face_detector).lower() not in FACE_DETECTORS:
            raise ConfigError(f"unknown face detector {face_detector!r}; use one of {', '.join(FACE_DETECTORS)}")
        self.output = output
        self.filename = filename
        self.relative = bool(relative)
        self.adapt_scale = bool(adapt_scale)
        self.find_best_frame = bool(find_best_frame)
        self.best_frame = None if best_frame is None else int(best_frame)
        self.ratio = float(ratio)
        self.face_detector = str(face_detector).lower()
        self.multi_person = bool(multi_person)
        self.image_size = int(image_size)
        self.batch_size = int(batch_size)
        self.mobile_net = bool(mobile_net)
        self.slice_size = slice_size
        self.detector_weight_path = detector_weight_path
        self.cfg = read_config(config, self.mobile_net)
        self.generator, self.kp_detector = self.load_checkpoints(self.cfg, weight_path)
        self._detector = None
        self._mesh = None
        self._batch = self.batch_size  # the batch the nets run in now (halved on out-of-memory)

    # -- weights ------------------------------------------------------------------------------
    def load_checkpoints(self, config, weight_path):
        """Build the generator and keypoint detector from `config` and fill them from `weight_path`
        (or the catalogue); both keys must be in the file. Sets `weight_files`."""
        from ..weights import WEIGHTS, load, load_into

        generator, kp_detector = build_nets(config)
        if weight_path is None:
            name = weight_name(self.image_size, self.mobile_net)
            if name not in WEIGHTS:
                raise CheckpointError(f"no catalogue entry for the First Order Motion weights {name} "
                                      f"({WEIGHT_URLS[name]}); download that file and pass --weight_path FILE")
            weights = load(name)
        else:
            weights = load(os.fspath(weight_path))
        for net_name in ("generator", "kp_detector"):
            if net_name not in weights.states:
                raise CheckpointError(f"{weights.path or 'the weights'} has no '{net_name}' weights (has: "
                                      f"{', '.join(map(str, weights.states))}); a First Order Motion file holds "
                                      "'generator' and 'kp_detector'")
        load_into(generator, weights, name="generator")
        load_into(kp_detector, weights, name="kp_detector")
        self.weight_files = list(weights.files)
        self.weights_sha256 = [weights.sha256] if weights.path else []
        return generator.to(self.device).eval(), kp_detector.to(self.device).eval()

    # -- the source photo ---------------------------------------------------------------------
    @staticmethod
    def read_img(path):
        """The source photo as HxWx3 uint8 RGB (gray expanded, alpha dropped). A video, a missing
        or unreadable file is a one-line error."""
        from ..utils.image import imread
        from ..video import VIDEO_EXTS, VideoError, probe_video

        path = os.fspath(path)
        is_video = PPGANError(f"source image {path} is a video; --source_image needs a photo")
        if os.path.splitext(path)[1].lower() in VIDEO_EXTS and os.path.isfile(path):
            raise is_video
        try:
            img = imread(path, mode="rgb")
        except DatasetError as e:
            if not os.path.isfile(path):
                raise
            try:  # told by content: a video named .png
                probe_video(path)
            except VideoError:
                raise e from None
            raise is_video from None
        return np.ascontiguousarray(img[..., :3])

    @property
    def detector(self):
        if self._detector is None:
            from ..faceutils import FaceDetector

            self._detector = FaceDetector(self.face_detector, device=self.device,
                                          weight_path=self.detector_weight_path)
        return self._detector

    def extract_bbox(self, image):
        """PaddleGAN's FOM crop boxes [(x1, y1, x2, y2)] of the faces in `image`, largest first,
        overlapping ones (IoU > 0.5) dropped."""
        from ..faceutils.alignment import fom_box

        faces = self.detector.detect([image])[0]
        return dedup_boxes([fom_box(f.box, image.shape) for f in faces])

    def _paste_mask(self, box):
        """float32 [h, w] mask over the box (photo pixels): 1 inside, falling to exactly 0 at the
        box's edge over 1/16 of its longer side; with `multi_person` also cut to PaddleGAN's disc
        (radius `ratio` x the box height, centred on the box), feathered the same way."""
        from ..faceutils.masks import feather_mask

        x1, y1, x2, y2 = box
        h, w = y2 - y1, x2 - x1
        f = max(1, int(round(max(h, w) / 16)))
        core = np.zeros((h, w), np.float32)
        core[f + 1:h - f - 1, f + 1:w - f - 1] = 1.0  # the blur (radius f) then ends 1 px inside the box
        if self.multi_person:
            disc = np.zeros((h, w), np.float32)
            cv2.circle(disc, (w // 2, h // 2), max(1, math.ceil(h * self.ratio) - f - 1), 1.0, -1)
            core *= disc
        return feather_mask(core, f)

    def _faces(self, source, source_path):
        """The faces to animate, with their crops, matrices and masks (NoFaceError without one)."""
        boxes = self.extract_bbox(source)
        if not boxes:
            raise NoFaceError(f"no face found in {source_path}: the first-order app needs a photo with a visible face "
                              f"(try --face_detector mediapipe or haar)")
        if not self.multi_person:
            boxes = boxes[:1]
        faces = []
        for box in boxes:
            x1, y1, x2, y2 = box
            sx, sy = self.image_size / (x2 - x1), self.image_size / (y2 - y1)  # photo -> crop, as cv2.resize maps it
            matrix = np.array([[sx, 0.0, (0.5 - x1) * sx - 0.5], [0.0, sy, (0.5 - y1) * sy - 0.5]])
            crop = cv2.resize(source[y1:y2, x1:x2], (self.image_size, self.image_size),
                              interpolation=cv2.INTER_LINEAR)  # PaddleGAN's crop and resize
            faces.append(_Face(tuple(int(v) for v in box), crop, matrix, self._paste_mask(box)))
        self._log(f"[ppgan] {len(boxes)} face(s) to animate in {source_path}")
        return faces

    # -- keypoints and rendering ----------------------------------------------------------------
    def _to_tensor(self, images):
        """HxWx3 uint8 images (image_size square) -> [N, 3, S, S] float in [0, 1] on the device."""
        x = torch.from_numpy(np.stack(images)).to(self.device)
        return x.permute(0, 3, 1, 2).float().div_(255.0)

    def _resize(self, frame):
        s = self.image_size
        if frame.shape[:2] == (s, s):
            return frame
        return cv2.resize(frame, (s, s), interpolation=cv2.INTER_LINEAR)  # PaddleGAN's resize of driving frames

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.compute_dtype, enabled=self.half)

    @torch.no_grad()
    def detect_keypoints(self, x):
        """KPDetector on [N, 3, S, S] in [0, 1] -> {'value', 'jacobian'} in float32."""
        with self._autocast():
            kp = self.kp_detector(x)
        return _float_kp(kp)

    def _render(self, face, kp_driving):
        """Generator output for one face and a batch of driving keypoints: [B, 3, S, S] in [0, 1]."""
        from ..modules.first_order import normalize_kp

        b = kp_driving["value"].shape[0]
        kp_norm = normalize_kp(kp_source=face.kp_source, kp_driving=kp_driving, kp_driving_initial=face.kp_initial,
                               use_relative_movement=self.relative, use_relative_jacobian=self.relative,
                               adapt_movement_scale=self.adapt_scale)
        kp_src = {k: v.expand(b, *v.shape[1:]) for k, v in face.kp_source.items()}
        with self._autocast():
            out = self.generator(face.source.expand(b, -1, -1, -1), kp_source=kp_src, kp_driving=kp_norm)
        return out["prediction"].float()

    @torch.no_grad()
    def animate(self, faces, frames):
        """Driving frames (HxWx3 uint8, any size) -> per face a list of rendered SxSx3 uint8 crops,
        in sub-batches of the current batch size (halved and retried on out-of-memory)."""
        resized = [self._resize(f) for f in frames]
        out = [[] for _ in faces]
        start = 0
        while start < len(resized):
            n = min(self._batch, len(resized) - start)
            try:
                x = self._to_tensor(resized[start:start + n])
                kp_driving = self.detect_keypoints(x)
                rendered = [self._render(face, kp_driving) for face in faces]
            except OOM_ERRORS as e:
                if not is_out_of_memory(e):
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if n <= 1:
                    raise PPGANError(f"out of memory on {self.device} animating one {self.image_size}x"
                                     f"{self.image_size} frame; free memory or use a smaller --image_size") from None
                self._batch = max(1, n // 2)
                self.stats["oom_retries"] += 1
                log(f"[ppgan] out of memory with a batch of {n} frames: retrying with {self._batch}")
                continue
            for k, y in enumerate(rendered):
                y = y.clamp_(0.0, 1.0).mul_(255.0).add_(0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
                out[k].extend(y)
            start += n
        return out

    def compose(self, source, faces, crops):
        """The full photo with each face's rendered crop resized back onto its box (PaddleGAN's
        `cv2.resize(out, (x2 - x1, y2 - y1))`) and blended in through its feathered mask; pixels
        where the mask is 0 keep the photo's values exactly. Only the boxes are touched."""
        frame = source.copy()
        for face, crop in zip(faces, crops):
            x1, y1, x2, y2 = face.box
            region = frame[y1:y2, x1:x2]
            m = face.box_mask()
            back = cv2.resize(crop, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR).astype(np.float32)
            blended = region.astype(np.float32) * (1.0 - m) + back * m
            blended = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
            frame[y1:y2, x1:x2] = np.where(m > 0, blended, region)
        return frame

    # -- the initial driving frame ------------------------------------------------------------
    @staticmethod
    def read_frame(path, info, index):
        """Frame `index` of the driving video (decoded from the file, so a resumed run gets the
        same keypoints as a fresh one)."""
        from ..video import iter_frames

        frames = iter_frames(path, info, start_frame=index)
        try:
            frame = next(frames, None)
        finally:
            frames.close()
        if frame is None:
            raise PPGANError(f"{path} has no frame {index} (it has {info.n_frames} frames)")
        return frame

    def _landmarks(self, image):
        """Face landmarks of the largest face in `image` ([N, 2]: the 468-point mesh when its model is
        installed, else the detector's five points), or None."""
        if self._mesh is None:
            from ..weights import locate

            self._mesh = False
            if locate("mediapipe-face-mesh")[0] != "missing":
                from ..faceutils import FaceMesh

                self._mesh = FaceMesh(device=self.device)
        faces = self.detector.detect([image])[0]
        if not faces:
            return None
        face = max(faces, key=lambda f: f.width * f.height)
        if self._mesh:
            return self._mesh.landmarks(image, [face])[0][:, :2]
        return face.landmarks

    def find_best_frame_func(self, source_crop, driving_video, info=None, progress=False):
        """PaddleGAN's best frame: the index of the driving frame (resized to image_size) whose
        normalised landmarks are nearest (squared distance) to the source crop's; frames without a
        face are skipped; 0 when no frame has one. Streams the video once."""
        return self.find_best_frames([source_crop], driving_video, info, progress)[0]

    def find_best_frames(self, source_crops, driving_video, info=None, progress=False):
        """`find_best_frame_func` for several source crops in one pass over the video."""
        from ..video import iter_frames, probe_video

        info = info or probe_video(driving_video)
        sources = []
        for crop in source_crops:
            pts = self._landmarks(crop)
            if pts is None:
                self._log("[ppgan] find_best_frame: no landmarks on a source face; using frame 0 for it")
            sources.append(None if pts is None else normalized_landmarks(pts))
        best = [0] * len(sources)
        best_norm = [float("inf")] * len(sources)
        if all(src is None for src in sources):
            return best
        frames = iter_frames(driving_video, info)
        try:
            from tqdm import tqdm

            for i, frame in enumerate(tqdm(frames, total=info.n_frames, desc="best frame", disable=not progress,
                                           leave=False)):
                pts = self._landmarks(self._resize(frame))
                if pts is None:
                    continue
                pts = normalized_landmarks(pts)
                for k, src in enumerate(sources):
                    if src is None or len(pts) != len(src):
                        continue
                    norm = float(((src - pts) ** 2).sum())
                    if norm < best_norm[k]:
                        best[k], best_norm[k] = i, norm
        finally:
            frames.close()
        return best

    # -- the job --------------------------------------------------------------------------------
    @classmethod
    def read_inputs(cls, source_image, driving_video):
        """(source photo HxWx3 uint8 RGB, the driving video's VideoInfo); a one-line error for a
        video as the photo, an image as the driving video, or a missing / unreadable file. Needs no
        weights: the CLI calls it before loading them."""
        from ..utils.image import is_image_file
        from ..video import VideoError, probe_video

        source = cls.read_img(source_image)
        driving_video = os.fspath(driving_video)
        is_image = PPGANError(f"driving video {driving_video} is an image; --driving_video needs a video")
        if is_image_file(driving_video) and os.path.isfile(driving_video):
            raise is_image
        try:
            return source, probe_video(driving_video)
        except VideoError as e:
            if "is an image" in str(e):
                raise is_image from None
            raise

    def prepare(self, source_image, driving_video, progress=False):
        """Everything fixed before the first frame: (photo, faces with keypoints, VideoInfo).
        All input errors are raised here, before any output exists."""
        source, info = self.read_inputs(source_image, driving_video)
        driving_video = os.fspath(driving_video)
        faces = self._faces(source, source_image)
        with torch.no_grad():
            for face in faces:
                face.source = self._to_tensor([face.crop])
                face.kp_source = self.detect_keypoints(face.source)
            if self.best_frame is not None:
                if self.best_frame >= info.n_frames:
                    raise ConfigError(f"best_frame {self.best_frame} is past the end of {driving_video} "
                                      f"({info.n_frames} frames)")
                for face in faces:
                    face.initial_frame = self.best_frame
            elif self.find_best_frame:
                for face, i in zip(faces, self.find_best_frames([f.crop for f in faces], driving_video, info,
                                                                progress)):
                    face.initial_frame = i
                self._log(f"[ppgan] best frame: {', '.join(str(f.initial_frame) for f in faces)}")
            initial = {}
            for face in faces:
                if face.initial_frame not in initial:
                    frame = self.read_frame(driving_video, info, face.initial_frame)
                    initial[face.initial_frame] = self.detect_keypoints(self._to_tensor([self._resize(frame)]))
                face.kp_initial = initial[face.initial_frame]
        return source, faces, info

    def stage(self, source, faces, source_digest):
        return FirstOrderStage(self, source, faces, source_digest)

    def output_path(self):
        return os.path.join(self.output, self.filename)

    def run(self, source_image, driving_video, output_path=None, video_options=None, progress=None):
        """Animate `source_image` (a photo) with `driving_video` and write the video to
        `output_path` (default `<output>/<filename>`). Returns the output path.

        video_options: `process_video` settings (crf, codec, pix_fmt, chunk_seconds, resume)."""
        from ..utils.io import sha256sum
        from ..video import process_video

        progress = self.verbose if progress is None else progress
        out = os.path.abspath(os.fspath(output_path or self.output_path()))
        source, faces, info = self.prepare(source_image, driving_video, progress)
        self.last_faces = faces
        digest = sha256sum(os.fspath(source_image))
        options = dict(video_options or {})
        options.setdefault("batch_size", self.batch_size)
        process_video(driving_video, out, [self.stage(source, faces, digest)], progress=progress, **options)
        self.last_output = out
        return out


class FirstOrderStage(FrameStage):
    """The predictor as a `ppgan.video` stage: driving frames in, animated photos out (one per
    frame). Each frame's result depends only on the frame itself and the keypoints fixed in
    `prepare` (taken from the driving video's file), so chunks and resumed runs match a run
    from the start."""

    label = "FirstOrder"

    def __init__(self, pred, source, faces, source_digest):
        self.pred, self.faces, self.source_digest = pred, faces, source_digest
        h, w = source.shape[:2]
        # yuv420p needs even sides: an odd photo gets its last row / column repeated
        self.source = np.pad(source, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") if h % 2 or w % 2 else source
        self.start_frame = 0

    def reset(self, start_frame):
        self.start_frame = int(start_frame)

    def push(self, frames):
        frames = list(frames)
        crops = self.pred.animate(self.faces, frames)
        self.start_frame += len(frames)
        return [self.pred.compose(self.source, self.faces, [c[j] for c in crops]) for j in range(len(frames))]

    def identity(self):
        from .predictor_stage import precision_of

        p = self.pred
        return {"stage": "FirstOrderPredictor", "weights": p.weights_sha256, "config": p.cfg["model"],
                "precision": precision_of(p), "image_size": p.image_size, "relative": p.relative,
                "adapt_scale": p.adapt_scale, "multi_person": p.multi_person, "ratio": p.ratio,
                "source": self.source_digest, "boxes": [list(f.box) for f in self.faces],
                "initial_frames": [f.initial_frame for f in self.faces], "detector": p.face_detector}

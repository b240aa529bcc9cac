"""Datasets, transforms and the data loader. Every dataset class is imported here, which
registers it in `DATASETS` under its class name (and aliases such as 'digits')."""
from .base_dataset import BaseDataset, to_chw_tensor
from .builder import DATASETS, ResumableSampler, build_dataloader, build_dataset
from .common_vision_dataset import CIFAR10Dataset, CommonVisionDataset, MNISTDataset
from .digits import DigitsDataset
from .embedded_photos import EmbeddedPhotoDataset
from .image_folder import ImageFolderDataset
from .paired_dataset import PairedDataset
from .preprocess import PREPROCESS, Preprocess
from .repeat_dataset import RepeatDataset
from .single_dataset import SingleDataset
from .sr_dataset import SRDataset, SRGTOnlyDataset, SRPhotoDataset
from .transforms import TRANSFORMS, Compose
from .unpaired_dataset import UnpairedDataset
from .vsr_dataset import (SRREDSMultipleGTDataset, VSRFolderDataset, VSRREDSDataset, VSRREDSMultipleGTDataset,
                          VSRVimeo90KDataset)

__all__ = [
    "BaseDataset", "to_chw_tensor",
    "DATASETS", "ResumableSampler", "build_dataloader", "build_dataset",
    "TRANSFORMS", "Compose",
    "DigitsDataset", "ImageFolderDataset", "CommonVisionDataset", "MNISTDataset", "CIFAR10Dataset",
    "PREPROCESS", "Preprocess", "PairedDataset", "UnpairedDataset", "SingleDataset", "EmbeddedPhotoDataset",
    "RepeatDataset", "SRDataset", "SRGTOnlyDataset", "SRPhotoDataset",
    "VSRREDSDataset", "VSRREDSMultipleGTDataset", "VSRVimeo90KDataset", "VSRFolderDataset", "SRREDSMultipleGTDataset",
]
from .wav2lip_dataset import SyncNetDataset, Wav2LipDataset  # noqa: F401,E402
from .firstorder_dataset import FirstOrderDataset, PairedColorJitter  # noqa: F401,E402
from .stargan_dataset import EmbeddedAttributeDataset, StarGANDataset, StarGANMultiDataset  # noqa: F401,E402
from .nafnet_dataset import NAFNetTrain, NAFNetVal  # noqa: F401,E402 (issue 18, R1)
from .swinir_dataset import SwinIRDataset  # noqa: F401,E402 (issue 18, R1)
from .stargan_transforms import RandomResizedCrop, RandomResizedCropProb  # noqa: F401,E402
from .starganv2_dataset import EmbeddedDomainDataset, StarGANv2Dataset  # noqa: F401,E402
from .mpr_dataset import MPRTrain, MPRVal  # noqa: F401,E402 (issue 18, R2)
from .invdn_dataset import InvDNDataset  # noqa: F401,E402 (issue 18, R2)
from .restoration_demo import RestorationPhotoDataset  # noqa: F401,E402 (issue 18, W1)
from .captioned import CaptionedDigitsDataset, CaptionedPhotosDataset  # noqa: F401,E402 (issue 17)
from .vid2vid_dataset import EmbeddedVideoEdgesDataset, EmbeddedVideoFramesDataset  # noqa: F401,E402 (issue 17)
from .photo_classes import PhotoClassesDataset  # noqa: F401,E402 (issue 17)

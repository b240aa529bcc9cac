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
from .single_dataset import SingleDataset
from .transforms import TRANSFORMS, Compose
from .unpaired_dataset import UnpairedDataset

__all__ = [
    "BaseDataset", "to_chw_tensor",
    "DATASETS", "ResumableSampler", "build_dataloader", "build_dataset",
    "TRANSFORMS", "Compose",
    "DigitsDataset", "ImageFolderDataset", "CommonVisionDataset", "MNISTDataset", "CIFAR10Dataset",
    "PREPROCESS", "Preprocess", "PairedDataset", "UnpairedDataset", "SingleDataset", "EmbeddedPhotoDataset",
]

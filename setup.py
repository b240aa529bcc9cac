"""ppgan: a GAN toolkit in the shape of PaddleGAN, built on PyTorch."""
import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "ppgan", "__init__.py"), encoding="utf-8") as f:
    VERSION = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)

setup(
    name="ppgan",
    version=VERSION,
    description="GAN toolkit (PaddleGAN-compatible configs and checkpoints) on PyTorch",
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["ppgan", "ppgan.*"]),
    python_requires=">=3.9",
    install_requires=[
        "torch>=2.4",
        "numpy",
        "scipy",
        "opencv-python-headless<5",
        "pyyaml",
        "imageio",
        # 0.6.0 bundles ffmpeg 7.0.2; 0.4.9-0.5.1 bundle 4.2.2, which lacks -fps_mode (ppgan.video.ffmpeg falls
        # back to -vsync for such a binary given by IMAGEIO_FFMPEG_EXE, but the default should be current).
        "imageio-ffmpeg>=0.6.0",
        "scikit-image",
        "tqdm",
    ],
    extras_require={
        "audio": ["librosa"],
        "tensorboard": ["tensorboard"],
        "onnx": ["onnx", "onnxruntime"],
        "test": ["pytest", "tensorboard", "ncnn>=1.0.20240410"],  # ncnn: oracle for the weight reader
    },
    entry_points={"console_scripts": ["ppgan=ppgan.cli:main"]},
)

"""ppgan: GANs from YAML configs (PaddleGAN's schema) on PyTorch."""
__version__ = "0.1.0"

from .builder import METRICS, build_metric
from .digit_accuracy import DigitAccuracy
from .psnr_ssim import PSNR, SSIM, calculate_psnr, calculate_ssim

__all__ = ["METRICS", "build_metric", "PSNR", "SSIM", "calculate_psnr", "calculate_ssim", "DigitAccuracy"]

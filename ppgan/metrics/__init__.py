from .builder import METRICS, build_metric
from .digit_accuracy import DigitAccuracy
from .fid import FID, KID, frechet_distance, kid
from .lpips import LPIPS, LPIPSMetric
from .psnr_ssim import MAE, PSNR, SSIM, calculate_mae, calculate_psnr, calculate_ssim

__all__ = ["METRICS", "build_metric", "PSNR", "SSIM", "MAE", "calculate_psnr", "calculate_ssim", "calculate_mae",
           "DigitAccuracy", "FID", "KID", "frechet_distance", "kid", "LPIPS", "LPIPSMetric"]

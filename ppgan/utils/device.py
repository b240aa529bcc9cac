"""Device selection shared by the trainer, the predictors and the tools."""
import torch

from .errors import PPGANError


def resolve_device(name="auto"):
    """The torch.device for a user's `--device` value.

    Args:
        name (str | None): 'auto' (CUDA when available, else CPU), 'cpu', 'cuda' or 'cuda:N'.
    Raises:
        PPGANError: CUDA asked for but absent, or a name that is none of the above.
    """
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = str(name)
    if name == "cuda" and not torch.cuda.is_available():
        raise PPGANError("--device cuda was asked for, but no CUDA device is available")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise PPGANError(f"--device must be auto, cpu or cuda; got {name!r}")
    if name.startswith("cuda:"):
        try:
            index = int(name[5:])
        except ValueError:
            raise PPGANError(f"--device must be auto, cpu or cuda[:N]; got {name!r}") from None
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise PPGANError(f"--device {name}: no such CUDA device "
                             f"({torch.cuda.device_count() if torch.cuda.is_available() else 0} available)")
    return torch.device(name)

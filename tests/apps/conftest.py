import pytest
import torch


@pytest.fixture(scope="session")
def deoldify_weights(tmp_path_factory):
    """Random-init artistic DeOldify weights saved as a .pth: the real ones cannot be downloaded
    here, so the apps' tests exercise building, loading and the pipeline, not colour quality."""
    from ppgan.models.generators.deoldify import build_model

    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp("deoldify") / "deoldify_art.pth")
    torch.save(build_model("artistic").eval().state_dict(), path)
    return path

"""RRDBNet's inference path (one preallocated dense-block buffer instead of torch.cat) computes
exactly what the training path computes."""
import pytest
import torch

from ppgan.models.generators import RRDBNet


@pytest.mark.parametrize("batch, size", [(1, (17, 23)), (3, (8, 8))])
def test_buffered_inference_equals_concat_path(batch, size):
    torch.manual_seed(0)
    net = RRDBNet(3, 3, nf=8, nb=2, gc=4).eval()
    x = torch.rand(batch, 3, *size)
    with torch.no_grad():
        fast = net(x)
    slow = net(x).detach()  # grad enabled: the concatenating path
    assert torch.equal(fast, slow)

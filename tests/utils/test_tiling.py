"""Tiled inference equals whole-image inference when the overlap covers the receptive field."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ppgan.models.generators.rrdb_net import RRDBNet
from ppgan.utils.inference import padded_forward
from ppgan.utils.tiling import tiled_forward



class ToySR(nn.Module):
    """x2 net needing H, W multiples of 2: pixel-unshuffle, three 3x3 convs, pixel-shuffle x4.
    Receptive radius: 3 half-resolution pixels = at most 7 input pixels."""

    size_multiple = 2

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(12, 8, 3, 1, 1), nn.Conv2d(8, 8, 3, 1, 1), nn.Conv2d(8, 48, 3, 1, 1)])

    def forward(self, x):
        assert x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0
        x = F.pixel_unshuffle(x, 2)
        for i, c in enumerate(self.convs):
            x = c(x) if i == 2 else F.leaky_relu(c(x), 0.2)
        return F.pixel_shuffle(x, 4)


@pytest.fixture(scope="module")
def rrdb():
    torch.manual_seed(0)
    return RRDBNet(3, 3, nf=8, nb=1, gc=4).eval()


def test_rrdbnet_receptive_radius_is_19():
    """conv_first + 3 dense blocks x 5 convs + trunk_conv = 17 LR pixels, and the x2, x2
    upsampling tail (upconv1 at x2; upconv2, HRconv, conv_last at x4) reaches 2 more: 19."""
    torch.manual_seed(0)
    net = RRDBNet(3, 3, nf=8, nb=1, gc=4).eval().double()
    x = torch.zeros(1, 3, 49, 49, dtype=torch.float64)
    x2 = x.clone()
    x2[..., 24, 24] = 1.0
    with torch.no_grad():
        d = (net(x) - net(x2)).abs().amax(dim=(0, 1, 3))  # per HR row
    rows = torch.nonzero(d > 0).flatten()
    lr_rows = (rows // 4).unique()
    assert lr_rows.min().item() == 24 - 19 and lr_rows.max().item() == 24 + 19


def test_rrdbnet_tiles_match_whole_image(rrdb):
    x = torch.rand(1, 3, 70, 90, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = padded_forward(rrdb, x)
    exact = tiled_forward(rrdb, x, 4, tile=32, overlap=19)  # overlap = receptive radius: exact
    assert exact.shape == ref.shape == (1, 3, 280, 360)
    assert (exact - ref).abs().max().item() < 1e-5
    # overlap 16 < 19: the zero padding at window edges leaks in, but has decayed below 1e-4
    approx = tiled_forward(rrdb, x, 4, tile=32, overlap=16, batch=4)
    assert (approx - ref).abs().max().item() < 1e-4
    # too little context shows seams
    assert (tiled_forward(rrdb, x, 4, tile=32, overlap=2) - ref).abs().max().item() > 1e-4


def test_size_multiple_alignment_tiny_tiles_odd_sizes_and_batches():
    torch.manual_seed(0)
    net = ToySR().eval()
    x = torch.rand(2, 3, 23, 37)
    with torch.no_grad():
        ref = padded_forward(net, x)
    assert ref.shape == (2, 3, 46, 74)
    for tile, overlap, batch in ((1, 7, 1), (2, 8, 3), (6, 8, 5), (10, 9, 2), (256, 16, 1)):
        out = tiled_forward(net, x, None, tile=tile, overlap=overlap, batch=batch, out_device="cpu")
        assert out.shape == ref.shape
        assert (out - ref).abs().max().item() < 1e-5, (tile, overlap, batch)


def test_errors(rrdb):
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        tiled_forward(rrdb, torch.rand(3, 8, 8), 4)
    with pytest.raises(ValueError, match="x2"):
        tiled_forward(rrdb, torch.rand(1, 3, 8, 8), 2, tile=4, overlap=2)
    with pytest.raises(ValueError):
        tiled_forward(rrdb, torch.rand(1, 3, 8, 8), 4, tile=0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_net_cpu_output(rrdb):
    net = RRDBNet(3, 3, nf=8, nb=1, gc=4).eval()
    net.load_state_dict(rrdb.state_dict())
    x = torch.rand(1, 3, 40, 52)
    with torch.no_grad():
        ref = padded_forward(net, x)
    out = tiled_forward(net.cuda(), x, 4, tile=16, overlap=19, out_device="cpu")
    assert out.device.type == "cpu"
    assert (out - ref).abs().max().item() < 1e-3  # TF32 / cuDNN differ from the CPU slightly

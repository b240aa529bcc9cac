"""Any generator runs on any image size: padded to its stride multiple, cropped back."""
import pytest
import torch

from ppgan.models.generators import GENERATORS
from ppgan.utils.inference import pad_to_multiple, padded_forward


NETS = [
    {"name": "UnetGenerator", "input_nc": 3, "output_nc": 3, "num_downs": 5, "ngf": 4},
    {"name": "ResnetGenerator", "input_nc": 3, "output_nc": 3, "ngf": 4, "n_blocks": 1},
    {"name": "ResnetUGATITGenerator", "input_nc": 3, "output_nc": 3, "ngf": 4, "n_blocks": 1, "img_size": 32,
     "light": True},
    {"name": "ResnetUGATITGenerator", "input_nc": 3, "output_nc": 3, "ngf": 4, "n_blocks": 1, "img_size": 32,
     "light": False},
    {"name": "ResnetUGATITP2CGenerator", "input_nc": 3, "output_nc": 3, "ngf": 8, "n_blocks": 1, "img_size": 32,
     "light": True},
    {"name": "RRDBNet", "in_nc": 3, "out_nc": 3, "nf": 4, "nb": 1, "gc": 4},
]


@pytest.mark.parametrize("cfg", NETS, ids=lambda c: c["name"] + ("-full" if c.get("light") is False else ""))
@pytest.mark.parametrize("hw", [(37, 53), (32, 32), (5, 70)])
def test_any_size(cfg, hw):
    net = GENERATORS.build(cfg).eval()
    x = torch.rand(1, 3, *hw) * 2 - 1
    with torch.no_grad():
        out = padded_forward(net, x)
    img = out[0] if isinstance(out, tuple) else out
    scale = 4 if cfg["name"] == "RRDBNet" else 1
    assert img.shape == (1, 3, hw[0] * scale, hw[1] * scale)
    assert torch.isfinite(img).all()
    if hw == (32, 32):  # already a valid size: identical to calling the net
        with torch.no_grad():
            direct = net(x)
        direct = direct[0] if isinstance(direct, tuple) else direct
        assert torch.allclose(img, direct)


def test_padding_is_bottom_right_reflection_and_cropped_region_matches():
    x = torch.arange(2 * 5 * 7, dtype=torch.float32).reshape(1, 2, 5, 7)
    xp, hw = pad_to_multiple(x, 4)
    assert xp.shape == (1, 2, 8, 8) and hw == (5, 7)
    assert torch.equal(xp[..., :5, :7], x)
    assert torch.equal(xp[..., 5, :7], x[..., 3, :])  # reflection of row 3 about row 4

    class Identity(torch.nn.Module):
        size_multiple = 8

        def forward(self, t):
            assert t.shape[-1] % 8 == 0 and t.shape[-2] % 8 == 0
            return t * 2

    assert torch.equal(padded_forward(Identity(), x), x * 2)

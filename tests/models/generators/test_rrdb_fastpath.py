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


def test_buffer_is_in_the_autocast_dtype():
    """Under autocast the dense-block buffer holds the compute dtype (bf16 here), even for a float32
    input, so conv outputs are not cast back to float32 and inputs not cast again to bf16."""
    torch.manual_seed(0)
    net = RRDBNet(3, 3, nf=8, nb=2, gc=4).eval()
    rdb = net.RRDB_trunk[0].RDB1
    seen = []  # conv5's input is the whole buffer
    hook = rdb.conv5.register_forward_pre_hook(lambda mod, inp: seen.append(inp[0].dtype))
    x = torch.rand(1, 8, 12, 12)  # float32 features straight into a dense block
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with torch.no_grad():
            fast = rdb(x)
        slow = rdb(x).detach()  # grad enabled: the concatenating path
    hook.remove()
    assert seen[0] == torch.bfloat16
    assert fast.dtype == slow.dtype == torch.float32  # bf16 conv output + float32 skip, as forward
    torch.testing.assert_close(fast, slow, rtol=1e-2, atol=1e-2)


def test_whole_net_under_autocast_and_cast_to_bf16_match_the_reference():
    torch.manual_seed(0)
    net = RRDBNet(3, 3, nf=8, nb=2, gc=4).eval()
    x = torch.rand(1, 3, 16, 20)
    with torch.no_grad():
        ref = net(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            auto = net(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto_cat = net(x).detach()
    net_bf16 = net.to(torch.bfloat16)
    with torch.no_grad():
        direct = net_bf16(x.bfloat16())
        direct_cl = net_bf16(x.bfloat16().contiguous(memory_format=torch.channels_last))  # concat path
    assert auto.dtype == direct.dtype == torch.bfloat16
    torch.testing.assert_close(auto, auto_cat, rtol=0, atol=0)  # buffered == concatenating, same dtype
    scale = ref.abs().max().item()
    for out in (auto, direct, direct_cl):  # (channels-last convs round differently)
        assert (out.float() - ref).abs().max().item() <= 0.03 * scale

"""Moving averages of nets (the EMA generators of PGGAN, StarGAN v2, BigGAN, StackGAN and
`GANModel`'s `ema_decay`): one update rule and one way to start an average from its net."""
import torch


@torch.no_grad()
def ema_update(ema, net, weight):
    """ema <- ema + weight * (net - ema) on parameters (weight = 1 - decay; 1 copies); buffers
    (batch-norm statistics, spectral-norm vectors, fixed reference batches) are copied."""
    ema_params = list(ema.parameters())
    if ema_params:
        torch._foreach_lerp_(ema_params, list(net.parameters()), float(weight))
    for b_ema, b in zip(ema.buffers(), net.buffers()):
        b_ema.copy_(b)


@torch.no_grad()
def copy_net(ema, net):
    """Start the average `ema` from `net` (same architecture): parameters and buffers copied."""
    ema.load_state_dict(net.state_dict())


@torch.no_grad()
def fill_averages(nets, loaded, pairs=(("netG_ema", "netG"),)):
    """After `--load` of the nets named in `loaded`: each (average, net) pair of `pairs` whose
    average the model has but the file lacked starts from the loaded net. Returns the names filled."""
    filled = []
    for average, name in pairs:
        if average in nets and name in loaded and average not in loaded:
            copy_net(nets[average], nets[name])
            filled.append(average)
    return filled


def state_with_averages(nets, state, pairs=(("netG_ema", "netG"),)):
    """A copy of the model state `state` where each average the model has but `state` lacks
    (a file saved without it: PaddleGAN's, or a run with ema_decay 0) is its net's state."""
    state = dict(state)
    for average, name in pairs:
        if average in nets and name in state and average not in state:
            state[average] = state[name]
    return state


@torch.no_grad()
def fixed_grids(nets, inputs, trained="netG", average="netG_ema"):
    """{'fixed_samples': nets[trained](*inputs), 'fixed_samples_ema': nets[average](*inputs)} for the
    nets present, each run in eval mode and put back in its mode."""
    out = {}
    for key, name in (("fixed_samples", trained), ("fixed_samples_ema", average)):
        if name in nets:
            net = nets[name]
            was_training = net.training
            net.eval()
            out[key] = net(*inputs)
            net.train(was_training)
    return out

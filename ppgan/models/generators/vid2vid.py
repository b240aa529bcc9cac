"""The vid2vid sequential generator: Wang et al., "Video-to-Video Synthesis", NeurIPS 2018,
https://arxiv.org/abs/1808.06601. Facts (layout of the composite generator, the x20-style flow
output, the sigmoid blending weight, the "raw only" first frame) from NVIDIA/vid2vid
`models/networks.py` (`CompositeGenerator`); the code is ours.

Frame t is generated from the current source map s_t, the K = n_frames_G - 1 previous source maps
and the K previous *generated* frames x_{t-K} .. x_{t-1} (eq. 4 of the paper):

    h_t  = hallucinated frame                   (image branch)
    w_t  = flow from frame t to frame t-1        (flow branch, pixels)
    m_t  = occlusion mask in [0, 1]              (flow branch, sigmoid)
    x_t  = m_t * warp(x_{t-1}, w_t) + (1 - m_t) * h_t

m_t is the weight of the *warped* previous frame (1: reuse the warped pixel, 0: it was occluded,
hallucinate it). The paper's and NVIDIA's `weight` is the hallucination weight, 1 - m_t here.
The first frame of a sequence has no previous frames: the previous-frame encoder reads zeros and
x_0 = h_0 ("use_raw_only" in NVIDIA's code).

Both encoders (source maps, previous frames) downsample to the same features and are summed; two
residual/upsampling branches decode the sum, one into h_t, one into (w_t, m_t).
"""
import copy

import torch
from torch import nn

from ...modules.blocks import ResnetBlock, build_translation_norm_layer
from ...modules.flow import flow_warp
from ...utils.errors import ConfigError
from .builder import GENERATORS


def _encoder(in_nc, ngf, n_downsampling, n_blocks, norm_layer, use_bias):
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_nc, ngf, 7, bias=use_bias), norm_layer(ngf), nn.ReLU()]
    for i in range(n_downsampling):
        mult = 2 ** i
        layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 2, 1, bias=use_bias), norm_layer(ngf * mult * 2),
                   nn.ReLU()]
    layers += [ResnetBlock(ngf * 2 ** n_downsampling, "reflect", norm_layer, use_bias=use_bias)
               for _ in range(n_blocks)]
    return nn.Sequential(*layers)


def _res_blocks(dim, n_blocks, norm_layer, use_bias):
    return nn.Sequential(*[ResnetBlock(dim, "reflect", norm_layer, use_bias=use_bias) for _ in range(n_blocks)])


def _upsampler(ngf, n_downsampling, norm_layer, use_bias):
    layers = []
    for i in range(n_downsampling):
        mult = 2 ** (n_downsampling - i)
        layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, 2, 1, output_padding=1, bias=use_bias),
                   norm_layer(ngf * mult // 2), nn.ReLU()]
    return nn.Sequential(*layers)


def _head(ngf, out_nc):
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_nc, 7))


@GENERATORS.register()
class Vid2VidGenerator(nn.Module):
    """Sequential vid2vid generator (the paper's single-scale composite generator).

    Args:
        source_nc (int): channels of a source map (edges: 1). Default 1.
        output_nc (int): channels of a frame. Default 3.
        n_frames_G (int): source maps per step, the current one included; the generator also reads
            n_frames_G - 1 previous frames. >= 2. Default 3 (the paper's and NVIDIA's default).
        ngf (int): channels of the first conv. Default 32.
        n_downsampling (int): stride-2 convs in each encoder; H and W must be multiples of
            2 ** n_downsampling. Default 2.
        n_blocks (int): residual blocks, split as in NVIDIA's code: n_blocks - n_blocks // 2 at the
            end of each encoder, n_blocks // 2 at the start of each decoder. Default 4.
        norm_type (str): 'instance' (default), 'batch' or 'none'.
        flow_multiplier (float): the flow head's output is multiplied by this (pixels). Default 1.0
            (NVIDIA uses 20 at 512-2048 px; our frames are 32-128 px with motions of a few pixels).

    Sub-modules keep NVIDIA's names (`model_down_seg`, `model_down_img`, `model_res_img`, ...).
    """

    def __init__(self, source_nc=1, output_nc=3, n_frames_G=3, ngf=32, n_downsampling=2, n_blocks=4,
                 norm_type="instance", flow_multiplier=1.0):
        super().__init__()
        if int(n_frames_G) < 2:
            raise ConfigError(f"Vid2VidGenerator n_frames_G must be >= 2 (the current map and at least one "
                              f"previous frame); got {n_frames_G}")
        if int(n_downsampling) < 0 or int(n_blocks) < 0 or int(ngf) < 1:
            raise ConfigError("Vid2VidGenerator needs ngf >= 1, n_downsampling >= 0, n_blocks >= 0")
        norm_layer, use_bias = build_translation_norm_layer(norm_type)
        self.source_nc, self.output_nc, self.n_frames_G = int(source_nc), int(output_nc), int(n_frames_G)
        self.n_downsampling, self.flow_multiplier = int(n_downsampling), float(flow_multiplier)
        n_enc, n_dec = n_blocks - n_blocks // 2, n_blocks // 2
        self.model_down_seg = _encoder(self.source_nc * self.n_frames_G, ngf, self.n_downsampling, n_enc,
                                       norm_layer, use_bias)
        self.model_down_img = _encoder(self.output_nc * (self.n_frames_G - 1), ngf, self.n_downsampling, n_enc,
                                       norm_layer, use_bias)
        self.model_res_img = _res_blocks(ngf * 2 ** self.n_downsampling, n_dec, norm_layer, use_bias)
        self.model_up_img = _upsampler(ngf, self.n_downsampling, norm_layer, use_bias)
        self.model_final_img = nn.Sequential(*_head(ngf, self.output_nc), nn.Tanh())
        self.model_res_flow = copy.deepcopy(self.model_res_img)
        self.model_up_flow = copy.deepcopy(self.model_up_img)
        self.model_final_flow = _head(ngf, 2)
        self.model_final_w = nn.Sequential(*_head(ngf, 1), nn.Sigmoid())
        self.reset_flow_head()

    def reset_flow_head(self):
        """Zero the flow head's last conv, so training starts from the identity warp (zero flow)
        instead of a random one; `Vid2VidModel` calls it after its weight initialisation. (Ours:
        NVIDIA initialises it like every conv; from scratch on CPU budgets the random start cost
        ~100 iterations of flow error above the zero-flow error.)"""
        nn.init.zeros_(self.model_final_flow[1].weight)
        nn.init.zeros_(self.model_final_flow[1].bias)

    # ---- one step ---------------------------------------------------------------------------------
    def forward(self, sources, prev_frames=None):
        """One frame.

        Args:
            sources (Tensor): [N, n_frames_G, source_nc, H, W] (or channels flattened,
                [N, n_frames_G * source_nc, H, W]), oldest first, the current map last; in [-1, 1].
            prev_frames (Tensor | None): [N, n_frames_G - 1, output_nc, H, W] (or flattened), the
                previous generated frames, oldest first, in [-1, 1]; None for the first frame.
        Returns:
            tuple: frame [N, output_nc, H, W] in [-1, 1]; raw (the hallucinated frame h_t), same
            shape; flow [N, 2, H, W] (pixels, frame t -> t-1, `flow_warp` convention) or None;
            mask [N, 1, H, W] in [0, 1] (weight of the warped previous frame) or None.
            flow and mask are None for the first frame (prev_frames None): frame = raw.
        """
        n, h, w = sources.shape[0], sources.shape[-2], sources.shape[-1]
        sources = sources.reshape(n, -1, h, w)
        if sources.shape[1] != self.source_nc * self.n_frames_G:
            raise ConfigError(f"Vid2VidGenerator expects {self.n_frames_G} source maps of {self.source_nc} "
                              f"channel(s); got {sources.shape[1]} channels")
        step = 2 ** self.n_downsampling
        if h % step or w % step:
            raise ConfigError(f"Vid2VidGenerator frame size must be a multiple of {step}; got {h}x{w}")
        first = prev_frames is None
        if first:
            prev_frames = sources.new_zeros(n, self.output_nc * (self.n_frames_G - 1), h, w)
        prev_frames = prev_frames.reshape(n, -1, h, w)
        if prev_frames.shape[1] != self.output_nc * (self.n_frames_G - 1):
            raise ConfigError(f"Vid2VidGenerator expects {self.n_frames_G - 1} previous frames of {self.output_nc} "
                              f"channels; got {prev_frames.shape[1]} channels")

        feat = self.model_down_seg(sources) + self.model_down_img(prev_frames)   # [N, ngf*2^d, H/2^d, W/2^d]
        raw = self.model_final_img(self.model_up_img(self.model_res_img(feat)))  # h_t
        if first:
            return raw, raw, None, None
        flow_feat = self.model_up_flow(self.model_res_flow(feat))
        flow = self.model_final_flow(flow_feat) * self.flow_multiplier           # w_t, [N, 2, H, W]
        mask = self.model_final_w(flow_feat)                                      # m_t, [N, 1, H, W]
        last = prev_frames[:, -self.output_nc:]                                   # x_{t-1}
        warped = flow_warp(last, flow.permute(0, 2, 3, 1), padding_mode="border")
        frame = mask * warped + (1 - mask) * raw
        return frame, raw, flow, mask

    # ---- sequences ----------------------------------------------------------------------------------
    def step(self, source, state=None):
        """Generate the next frame of a stream.

        Args:
            source (Tensor): [N, source_nc, H, W], the current source map in [-1, 1].
            state (dict | None): what the previous call returned; None starts a new sequence.
        Returns:
            (frame [N, output_nc, H, W], state): pass `state` to the next call. The state holds
            the last n_frames_G source maps and n_frames_G - 1 generated frames (detached); at the
            start of a sequence the missing history repeats the oldest entry.
        """
        sources = self._push(state and state["sources"], source, self.n_frames_G)
        frame, _, _, _ = self(sources, state and state["frames"])
        return frame, {"sources": sources.detach(),
                       "frames": self._push(state and state["frames"], frame.detach(), self.n_frames_G - 1)}

    def generate(self, sources, detach_prev=False):
        """Generate a whole sequence (training and evaluation).

        Args:
            sources (Tensor): [N, T, source_nc, H, W] source maps in [-1, 1].
            detach_prev (bool): feed the previous frames detached (no gradient through time).
        Returns:
            dict: 'frames', 'raws' [N, T, output_nc, H, W]; 'flows' [N, T-1, 2, H, W] and 'masks'
            [N, T-1, 1, H, W] (for frames 1 .. T-1).
        """
        frames, raws, flows, masks = [], [], [], []
        hist_src = hist_img = None
        for t in range(sources.shape[1]):
            hist_src = self._push(hist_src, sources[:, t], self.n_frames_G)
            frame, raw, flow, mask = self(hist_src, hist_img)
            hist_img = self._push(hist_img, frame.detach() if detach_prev else frame, self.n_frames_G - 1)
            frames.append(frame)
            raws.append(raw)
            if flow is not None:
                flows.append(flow)
                masks.append(mask)
        out = {"frames": torch.stack(frames, 1), "raws": torch.stack(raws, 1)}
        n, _, _, h, w = sources.shape
        out["flows"] = torch.stack(flows, 1) if flows else sources.new_zeros(n, 0, 2, h, w)
        out["masks"] = torch.stack(masks, 1) if masks else sources.new_zeros(n, 0, 1, h, w)
        return out

    @staticmethod
    def _push(history, item, length):
        """history [N, length, C, H, W] shifted by one with `item` [N, C, H, W] last; None -> `item` repeated."""
        if history is None:
            return item.unsqueeze(1).expand(-1, length, *item.shape[1:])
        return torch.cat([history[:, 1:], item.unsqueeze(1)], 1)

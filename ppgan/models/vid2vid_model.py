"""vid2vid: video-to-video synthesis with a sequential generator, an image and a temporal
discriminator, and flow supervision. Wang et al., "Video-to-Video Synthesis", NeurIPS 2018,
https://arxiv.org/abs/1808.06601; the losses and their weights follow NVIDIA/vid2vid
`models/vid2vid_model_D.py` (facts only; the code is ours).

One training step on a batch of clips (sources s_0..s_{T-1}, frames x_0..x_{T-1}, true flows w):
  1. G generates the clip frame by frame (`Vid2VidGenerator.generate`): each frame from the current
     and previous source maps and the previous *generated* frames; the first from the maps alone.
  2. D step. The image discriminator D_I sees (s_t, x_t) pairs, real and generated; the temporal
     discriminator D_V sees every window of n_frames_D consecutive frames, real or generated, with
     the true flows between them (the same flows for both, as in NVIDIA's code).
  3. G step with both Ds frozen:
       G_adv_loss    D_I says "real" on (s_t, x~_t), every frame;
       G_T_adv_loss  D_V says "real" on generated windows;
       G_feat_loss   feature matching on D_I's and D_V's intermediate features (pix2pixHD),
                     lambda_feat * 4 / (n_layers + 1) / num_D per layer;
       G_L1_loss     lambda_L1 * (|x~_t - x_t| + |h~_t - x_t|): final and hallucinated frames
                     (NVIDIA uses a VGG loss on both; we have no pretrained VGG offline);
       G_flow_loss   lambda_flow * |w~_t - w_t| (true flow, valid pixels) + lambda_warp *
                     |warp(x_{t-1}, w~_t) - x_t| (real frames warped by the estimated flow);
       G_warp_loss   lambda_warp * |x~_t - warp(x~_{t-1}, w_t)| (temporal consistency of the
                     output along the true flow; the warped target is detached);
       G_mask_loss   lambda_mask * mean(1 - m_t) over valid pixels: prefer the warped previous
                     frame where it exists (NVIDIA's weight loss; their weight is 1 - m_t).
Without 'flow' in the batch, the estimated flow (detached) takes the true flow's place and
every pixel counts as valid, so G_flow_loss is the warp term alone.
"""
import torch
import torch.nn.functional as F

from ..modules.flow import flow_warp
from ..modules.init import init_weights
from ..utils.errors import ConfigError, PPGANError
from .base_model import BaseModel
from .builder import MODELS
from .criterions.builder import build_criterion
from .discriminators.builder import build_discriminator
from .generators.builder import build_generator

PARAM_KEYS = ("n_frames_D", "lambda_feat", "lambda_L1", "lambda_flow", "lambda_warp", "lambda_mask",
              "detach_prev", "init_type", "init_gain")
LOSS_KEYS = ("D_real_loss", "D_fake_loss", "D_T_real_loss", "D_T_fake_loss", "G_adv_loss", "G_T_adv_loss",
             "G_feat_loss", "G_L1_loss", "G_flow_loss", "G_warp_loss", "G_mask_loss")


def masked_l1(a, b, mask):
    """mean(|a - b| * mask) over every element, mask broadcast over channels (NVIDIA's MaskedL1Loss)."""
    return ((a - b).abs() * mask).mean()


def windows(x, size):
    """All `size`-long windows along dim 1 of x [N, T, C, H, W] -> [N * (T - size + 1), size * C, H, W]."""
    n, t, c, h, w = x.shape
    win = x.unfold(1, size, 1)                       # [N, T-size+1, C, H, W, size]
    return win.permute(0, 1, 5, 2, 3, 4).reshape(n * (t - size + 1), size * c, h, w)


def _frame_size(value):
    """None, an int side or a [W, H] pair -> None or (W, H); ConfigError otherwise."""
    if value is None:
        return None
    pair = [value, value] if isinstance(value, int) else value
    if (not isinstance(pair, (list, tuple)) or len(pair) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in pair)):
        raise ConfigError(f"Vid2VidModel frame_size must be a positive int or [W, H]; got {value!r}")
    return int(pair[0]), int(pair[1])


@MODELS.register()
class Vid2VidModel(BaseModel):
    """Args:
        generator (dict): a `Vid2VidGenerator` config.
        discriminator (dict | None): the image discriminator D_I (`Vid2VidDiscriminator`,
            input_nc = source_nc + output_nc). None builds an inference-only model.
        temporal_discriminator (dict | None): D_V (`Vid2VidDiscriminator`, input_nc =
            n_frames_D * output_nc + 2 * (n_frames_D - 1)); required with a discriminator.
        gan_criterion (dict | None): a `GANLoss` config (NVIDIA: lsgan); required with the Ds.
        frame_size (int | list[int] | None): the frame size (side, or [W, H]) the model is trained
            at. Not used by the maths: it is stored with the config in weight files so the vid2vid
            app can resize a source video of another size to it. Default None (unknown).
        params (dict): n_frames_D (default 3), lambda_feat (10), lambda_L1 (10), lambda_flow (10),
            lambda_warp (10), lambda_mask (1), detach_prev (feed previous frames to G detached,
            default False), init_type / init_gain (normal / 0.02).
    Batches: {'A': [N, T, source_nc, H, W] source maps, 'B': [N, T, output_nc, H, W] frames, both in
    [-1, 1]; optional 'flow' [N, T-1, 2, H, W] (true flow, frame t -> t-1, pixels) and 'flow_mask'
    [N, T-1, 1, H, W]} (`EmbeddedVideoEdgesDataset`). Training needs T >= n_frames_D.
    Nets: netG, netD (D_I), netD_T (D_V). Losses: see the module docstring (LOSS_KEYS).
    """

    def __init__(self, generator, discriminator=None, temporal_discriminator=None, gan_criterion=None,
                 frame_size=None, params=None):
        super().__init__(params)
        self.frame_size = _frame_size(frame_size)
        self.check_param_keys(PARAM_KEYS)
        p = self.params
        self.n_frames_D = int(p.get("n_frames_D", 3))
        self.lambda_feat = float(p.get("lambda_feat", 10.0))
        self.lambda_L1 = float(p.get("lambda_L1", 10.0))
        self.lambda_flow = float(p.get("lambda_flow", 10.0))
        self.lambda_warp = float(p.get("lambda_warp", 10.0))
        self.lambda_mask = float(p.get("lambda_mask", 1.0))
        self.detach_prev = bool(p.get("detach_prev", False))
        if self.n_frames_D < 2:
            raise ConfigError(f"Vid2VidModel params.n_frames_D must be >= 2; got {self.n_frames_D}")
        if min(self.lambda_feat, self.lambda_L1, self.lambda_flow, self.lambda_warp, self.lambda_mask) < 0:
            raise ConfigError("Vid2VidModel loss weights (params.lambda_*) must be >= 0")
        init = {"init_type": p.get("init_type", "normal"), "init_gain": float(p.get("init_gain", 0.02))}
        self.nets["netG"] = init_weights(build_generator(generator), **init)
        g = self.nets["netG"]
        if hasattr(g, "reset_flow_head"):
            g.reset_flow_head()  # start from the identity warp
        if discriminator:
            if not (temporal_discriminator and gan_criterion):
                raise ConfigError("Vid2VidModel with a discriminator needs temporal_discriminator and gan_criterion")
            self.nets["netD"] = init_weights(build_discriminator(discriminator), **init)
            self.nets["netD_T"] = init_weights(build_discriminator(temporal_discriminator), **init)
            want_d = g.source_nc + g.output_nc
            want_t = self.n_frames_D * g.output_nc + 2 * (self.n_frames_D - 1)
            for name, want in (("netD", want_d), ("netD_T", want_t)):
                got = getattr(self.nets[name], "input_nc", want)
                if got != want:
                    key = "discriminator" if name == "netD" else "temporal_discriminator"
                    raise ConfigError(f"Vid2VidModel {key}.input_nc must be {want}; got {got}")
        self.gan_criterion = build_criterion(gan_criterion) if gan_criterion else None
        self.real_A = self.real_B = self.flow = self.flow_mask = None
        self.fake_B = self.masks = None
        self.samples_every_row = 8

    # ---- input ---------------------------------------------------------------------------------
    def setup_input(self, input):
        if "A" not in input or input["A"].ndim != 5:
            raise PPGANError("Vid2VidModel needs batches of clips: 'A' [N, T, C, H, W] (EmbeddedVideoEdgesDataset)")
        dev = self.device
        self.real_A = input["A"].to(dev, non_blocking=True)
        self.real_B = input["B"].to(dev, non_blocking=True) if "B" in input else None
        self.flow = input["flow"].to(dev, non_blocking=True) if "flow" in input else None
        self.flow_mask = input["flow_mask"].to(dev, non_blocking=True) if "flow_mask" in input else None
        if self.flow is not None and self.flow_mask is None:
            self.flow_mask = torch.ones_like(self.flow[:, :, :1])
        self.image_paths = input.get("A_path")
        self.samples_every_row = self.real_A.shape[1]

    # ---- losses --------------------------------------------------------------------------------
    def _gan_and_fm(self, pred_fake, pred_real):
        """G's adversarial loss on a multi-scale D's output, and feature matching to the real features."""
        crit = self.gan_criterion
        adv = sum(crit(scale[-1], True) for scale in pred_fake) / len(pred_fake)
        fm = adv.new_zeros(())
        if self.lambda_feat > 0:
            w = self.lambda_feat * 4.0 / (len(pred_fake[0]) - 1) / len(pred_fake)
            for fake_s, real_s in zip(pred_fake, pred_real):
                for f, r in zip(fake_s[:-1], real_s[:-1]):
                    fm = fm + w * F.l1_loss(f, r)
        return adv, fm

    def _d_loss(self, net, real, fake):
        """D's losses on real and (detached) fake inputs, and its detached outputs on the real ones
        (reused as the feature-matching targets of the G step, as in NVIDIA's code)."""
        crit = self.gan_criterion
        pred_real, pred_fake = net(real), net(fake.detach())
        n = len(pred_real)
        loss_real = sum(crit(s[-1], True, is_disc=True) for s in pred_real) / n
        loss_fake = sum(crit(s[-1], False, is_disc=True) for s in pred_fake) / n
        return loss_real, loss_fake, [[f.detach() for f in s] for s in pred_real]

    def _optimizers(self, optimizers, names):
        found = []
        for name in names:
            opt = self.optimizer_for(name, optimizers)
            if all(opt is not o for o in found):
                found.append(opt)
        return found

    def train_iter(self, optimizers=None):
        if self.real_B is None or "netD" not in self.nets:
            raise PPGANError("Vid2VidModel training needs 'A' and 'B' clips and the discriminators")
        real_A, real_B = self.real_A, self.real_B
        n, t = real_B.shape[:2]
        if t < max(2, self.n_frames_D):
            raise PPGANError(f"Vid2VidModel training needs clips of at least {max(2, self.n_frames_D)} frames; got {t}")
        net_g, net_d, net_dt = self.nets["netG"], self.nets["netD"], self.nets["netD_T"]
        opts_g = self._optimizers(optimizers, ["netG"])
        opts_d = self._optimizers(optimizers, ["netD", "netD_T"])

        # 1. generate the clip
        out = net_g.generate(real_A, detach_prev=self.detach_prev)
        fake_B, raw_B, flow, mask = out["frames"], out["raws"], out["flows"], out["masks"]
        if self.flow is not None:
            flow_ref, valid = self.flow, self.flow_mask
        else:
            flow_ref, valid = flow.detach(), torch.ones_like(mask)
        flat = lambda x: x.reshape(n * x.shape[1], *x.shape[2:])  # noqa: E731  [N, T, ...] -> [N*T, ...]
        real_AB = torch.cat([flat(real_A), flat(real_B)], 1)
        fake_AB = torch.cat([flat(real_A), flat(fake_B)], 1)
        real_T = torch.cat([windows(real_B, self.n_frames_D), windows(flow_ref, self.n_frames_D - 1)], 1)
        fake_T = torch.cat([windows(fake_B, self.n_frames_D), windows(flow_ref, self.n_frames_D - 1)], 1)

        # 2. D step: image and temporal discriminators on detached fakes
        for opt in opts_d:
            opt.zero_grad(set_to_none=True)
        d_real, d_fake, feats_real = self._d_loss(net_d, real_AB, fake_AB)
        dt_real, dt_fake, feats_real_t = self._d_loss(net_dt, real_T, fake_T)
        self.backward((d_real + d_fake) * 0.5 + (dt_real + dt_fake) * 0.5)
        for opt in opts_d:
            self.optimizer_step(opt)

        # 3. G step with both Ds frozen
        for opt in opts_g:
            opt.zero_grad(set_to_none=True)
        with self.frozen(net_d, net_dt):
            g_adv, fm_i = self._gan_and_fm(net_d(fake_AB), feats_real)
            g_t_adv, fm_t = self._gan_and_fm(net_dt(fake_T), feats_real_t)
            g_l1 = self.lambda_L1 * (F.l1_loss(fake_B, real_B) + F.l1_loss(raw_B, real_B))
            prev_real, cur_real = flat(real_B[:, :-1]), flat(real_B[:, 1:])
            est, ref, m = flat(flow), flat(flow_ref), flat(valid)
            real_warp = flow_warp(prev_real, est.permute(0, 2, 3, 1), padding_mode="border")
            g_flow = self.lambda_flow * masked_l1(est, ref, m) + self.lambda_warp * masked_l1(real_warp, cur_real, m)
            fake_warp = flow_warp(flat(fake_B[:, :-1]), ref.permute(0, 2, 3, 1), padding_mode="border")
            g_warp = self.lambda_warp * masked_l1(flat(fake_B[:, 1:]), fake_warp.detach(), m)
            g_mask = self.lambda_mask * ((1 - flat(mask)) * m).sum() / m.sum().clamp_min(1.0)
            losses = {"D_real_loss": d_real, "D_fake_loss": d_fake, "D_T_real_loss": dt_real,
                      "D_T_fake_loss": dt_fake, "G_adv_loss": g_adv, "G_T_adv_loss": g_t_adv,
                      "G_feat_loss": fm_i + fm_t, "G_L1_loss": g_l1, "G_flow_loss": g_flow,
                      "G_warp_loss": g_warp, "G_mask_loss": g_mask}
            self.backward(g_adv + g_t_adv + fm_i + fm_t + g_l1 + g_flow + g_warp + g_mask)
        for opt in opts_g:
            self.optimizer_step(opt)

        self.fake_B, self.masks = self.keep(fake_B), self.keep(mask)
        self._set_visuals()
        return {k: v.detach() for k, v in losses.items()}

    # ---- inference -----------------------------------------------------------------------------
    @torch.no_grad()
    def test_iter(self, metrics=None):
        """Generate the clips of the batch in eval mode; metrics get (generated, real) frames [N*T, C, H, W]."""
        net_g = self.nets["netG"]
        mode = net_g.training
        net_g.eval()
        try:
            out = net_g.generate(self.real_A)
        finally:
            net_g.train(mode)
        self.fake_B, self.masks = out["frames"], out["masks"]
        self._set_visuals()
        if self.real_B is not None:
            fake, real = self.fake_B.flatten(0, 1), self.real_B.flatten(0, 1)
            for metric in (metrics or {}).values():
                metric.update(fake, real)

    def _set_visuals(self):
        """Clips as grids: one clip per row (`samples_every_row` = T); edges and masks as 3-channel images."""
        self.visual_items.clear()
        a = self.real_A.flatten(0, 1)
        self.visual_items["real_A"] = a.expand(-1, 3, -1, -1) if a.shape[1] == 1 else a[:, :3]
        self.visual_items["fake_B"] = self.fake_B.detach().flatten(0, 1)
        if self.real_B is not None:
            self.visual_items["real_B"] = self.real_B.flatten(0, 1)
        if self.masks is not None and self.masks.shape[1]:
            first = torch.zeros_like(self.masks[:, :1])  # frame 0 has no warped part: mask 0
            m = torch.cat([first, self.masks.detach()], 1).flatten(0, 1) * 2 - 1
            self.visual_items["mask"] = m.expand(-1, 3, -1, -1)

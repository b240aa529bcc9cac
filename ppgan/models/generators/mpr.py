"""MPRNet: multi-stage progressive image restoration (Zamir et al., CVPR 2021,
https://arxiv.org/abs/2102.02808), PaddleGAN's `MPRNet` (deblurring, denoising, deraining).

Three stages on one image: stage 1 runs a U-Net encoder/decoder on four quarter patches,
stage 2 on two half patches, stage 3 an original-resolution subnetwork (ORSNet); a supervised
attention module (SAM) hands each stage's features and image on, and cross-stage feature
fusion (CSFF) feeds stage-1 encoder/decoder features into stage 2 and stage-2 ones into stage 3.
`forward` returns [stage-3 image, stage-2 image, stage-1 image] (all full size; the model's
losses supervise all three, inference keeps the first).

Weights: PaddleGAN's sub-module names throughout. One PReLU module is shared by every channel
attention block, so a state dict (PaddleGAN's or ours) holds its one parameter under every
block's name (`<block>.body.1._weight`, Paddle's name for a PReLU weight); PyTorch and Paddle
both load the names in module order, so the value stored under the last name wins, as in Paddle.
H and W must be multiples of 8 (`size_multiple`).
"""
import torch
import torch.nn.functional as F
from torch import nn

from .builder import GENERATORS


class PReLU(nn.Module):
    """PReLU with one slope whose parameter has Paddle's name, `_weight` (init 0.25)."""

    def __init__(self, num_parameters=1, init=0.25):
        super().__init__()
        self._weight = nn.Parameter(torch.full((num_parameters,), float(init)))

    def forward(self, x):
        return F.prelu(x, self._weight)


def conv(in_channels, out_channels, kernel_size, bias_attr=False, stride=1):
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                     bias=bool(bias_attr))


class CALayer(nn.Module):
    """Channel attention: x * sigmoid(conv(relu(conv(mean over H, W))))."""

    def __init__(self, channel, reduction=16, bias_attr=False):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(
            nn.Conv2d(channel, channel // reduction, 1, bias=bool(bias_attr)), nn.ReLU(),
            nn.Conv2d(channel // reduction, channel, 1, bias=bool(bias_attr)), nn.Sigmoid())

    def forward(self, x):
        return x * self.conv_du(self.avg_pool(x))


class CAB(nn.Module):
    """Channel attention block: x + CA(conv(act(conv(x))))."""

    def __init__(self, n_feat, kernel_size, reduction, bias_attr, act):
        super().__init__()
        self.CA = CALayer(n_feat, reduction, bias_attr=bias_attr)  # registered first, as in PaddleGAN
        self.body = nn.Sequential(conv(n_feat, n_feat, kernel_size, bias_attr), act,
                                  conv(n_feat, n_feat, kernel_size, bias_attr))

    def forward(self, x):
        return self.CA(self.body(x)) + x


class HalfBilinear(nn.Module):
    """Paddle's bilinear x0.5 (`nn.Upsample(scale_factor=0.5)`, half-pixel centres): PyTorch's,
    except that an axis whose output has one pixel takes the input's first row / column (Paddle
    uses ratio 0 there) instead of the average of the first two."""

    def forward(self, x):
        h, w = x.shape[-2:]
        sh = sw = 0.5
        if h // 2 == 1:
            x, sh = x[..., :1, :], 1.0
        if w // 2 == 1:
            x, sw = x[..., :1], 1.0
        return F.interpolate(x, scale_factor=(sh, sw), mode="bilinear", align_corners=False)


class DownSample(nn.Module):
    """Bilinear x0.5, then a 1x1 conv to `in_channels + s_factor` channels."""

    def __init__(self, in_channels, s_factor):
        super().__init__()
        self.down = nn.Sequential(HalfBilinear(),
                                  nn.Conv2d(in_channels, in_channels + s_factor, 1, bias=False))

    def forward(self, x):
        return self.down(x)


class UpSample(nn.Module):
    """Bilinear x2, then a 1x1 conv from `in_channels + s_factor` to `in_channels` channels."""

    def __init__(self, in_channels, s_factor):
        super().__init__()
        self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                nn.Conv2d(in_channels + s_factor, in_channels, 1, bias=False))

    def forward(self, x):
        return self.up(x)


class SkipUpSample(UpSample):
    def forward(self, x, y):
        return self.up(x) + y


def _cabs(n, channels, kernel_size, reduction, bias_attr, act):
    return nn.Sequential(*[CAB(channels, kernel_size, reduction, bias_attr, act) for _ in range(n)])


class Encoder(nn.Module):
    """Three-level U-Net encoder; with `csff`, 1x1 convs add the previous stage's encoder and
    decoder features at each level."""

    def __init__(self, n_feat, kernel_size, reduction, act, bias_attr, scale_unetfeats, csff):
        super().__init__()
        widths = [n_feat, n_feat + scale_unetfeats, n_feat + 2 * scale_unetfeats]
        self.encoder_level1 = _cabs(2, widths[0], kernel_size, reduction, bias_attr, act)
        self.encoder_level2 = _cabs(2, widths[1], kernel_size, reduction, bias_attr, act)
        self.encoder_level3 = _cabs(2, widths[2], kernel_size, reduction, bias_attr, act)
        self.down12 = DownSample(n_feat, scale_unetfeats)
        self.down23 = DownSample(n_feat + scale_unetfeats, scale_unetfeats)
        self.csff = bool(csff)
        if csff:
            for kind in ("enc", "dec"):
                for i, c in enumerate(widths, 1):
                    setattr(self, f"csff_{kind}{i}", nn.Conv2d(c, c, 1, bias=bool(bias_attr)))

    def _fuse(self, level, feat, encoder_outs, decoder_outs):
        if encoder_outs is None or decoder_outs is None:
            return feat
        i = level - 1
        return (feat + getattr(self, f"csff_enc{level}")(encoder_outs[i])
                + getattr(self, f"csff_dec{level}")(decoder_outs[i]))

    def forward(self, x, encoder_outs=None, decoder_outs=None):
        enc1 = self._fuse(1, self.encoder_level1(x), encoder_outs, decoder_outs)
        enc2 = self._fuse(2, self.encoder_level2(self.down12(enc1)), encoder_outs, decoder_outs)
        enc3 = self._fuse(3, self.encoder_level3(self.down23(enc2)), encoder_outs, decoder_outs)
        return [enc1, enc2, enc3]


class Decoder(nn.Module):
    def __init__(self, n_feat, kernel_size, reduction, act, bias_attr, scale_unetfeats):
        super().__init__()
        widths = [n_feat, n_feat + scale_unetfeats, n_feat + 2 * scale_unetfeats]
        self.decoder_level1 = _cabs(2, widths[0], kernel_size, reduction, bias_attr, act)
        self.decoder_level2 = _cabs(2, widths[1], kernel_size, reduction, bias_attr, act)
        self.decoder_level3 = _cabs(2, widths[2], kernel_size, reduction, bias_attr, act)
        self.skip_attn1 = CAB(widths[0], kernel_size, reduction, bias_attr, act)
        self.skip_attn2 = CAB(widths[1], kernel_size, reduction, bias_attr, act)
        self.up21 = SkipUpSample(n_feat, scale_unetfeats)
        self.up32 = SkipUpSample(n_feat + scale_unetfeats, scale_unetfeats)

    def forward(self, outs):
        enc1, enc2, enc3 = outs
        dec3 = self.decoder_level3(enc3)
        dec2 = self.decoder_level2(self.up32(dec3, self.skip_attn2(enc2)))
        dec1 = self.decoder_level1(self.up21(dec2, self.skip_attn1(enc1)))
        return [dec1, dec2, dec3]


class ORB(nn.Module):
    """Original-resolution block: x + conv(CAB^num_cab(x))."""

    def __init__(self, n_feat, kernel_size, reduction, act, bias_attr, num_cab):
        super().__init__()
        body = [CAB(n_feat, kernel_size, reduction, bias_attr, act) for _ in range(num_cab)]
        body.append(conv(n_feat, n_feat, kernel_size))  # bias-free in PaddleGAN whatever bias_attr is
        self.body = nn.Sequential(*body)

    def forward(self, x):
        return self.body(x) + x


class ORSNet(nn.Module):
    """Stage 3: three ORBs at full resolution, each followed by the stage-2 encoder / decoder
    features of one level (brought up to full size) through 1x1 convs."""

    def __init__(self, n_feat, scale_orsnetfeats, kernel_size, reduction, act, bias_attr, scale_unetfeats,
                 num_cab):
        super().__init__()
        width = n_feat + scale_orsnetfeats
        for i in (1, 2, 3):
            setattr(self, f"orb{i}", ORB(width, kernel_size, reduction, act, bias_attr, num_cab))
        self.up_enc1 = UpSample(n_feat, scale_unetfeats)
        self.up_dec1 = UpSample(n_feat, scale_unetfeats)
        self.up_enc2 = nn.Sequential(UpSample(n_feat + scale_unetfeats, scale_unetfeats),
                                     UpSample(n_feat, scale_unetfeats))
        self.up_dec2 = nn.Sequential(UpSample(n_feat + scale_unetfeats, scale_unetfeats),
                                     UpSample(n_feat, scale_unetfeats))
        for kind in ("enc", "dec"):
            for i in (1, 2, 3):
                setattr(self, f"conv_{kind}{i}", nn.Conv2d(n_feat, width, 1, bias=bool(bias_attr)))

    def forward(self, x, encoder_outs, decoder_outs):
        x = self.orb1(x) + self.conv_enc1(encoder_outs[0]) + self.conv_dec1(decoder_outs[0])
        x = self.orb2(x) + self.conv_enc2(self.up_enc1(encoder_outs[1])) + self.conv_dec2(self.up_dec1(decoder_outs[1]))
        x = self.orb3(x) + self.conv_enc3(self.up_enc2(encoder_outs[2])) + self.conv_dec3(self.up_dec2(decoder_outs[2]))
        return x


class SAM(nn.Module):
    """Supervised attention module: the stage's image (conv2(x) + input image) and the features
    x + conv1(x) * sigmoid(conv3(image)) handed to the next stage."""

    def __init__(self, n_feat, kernel_size, bias_attr):
        super().__init__()
        self.conv1 = conv(n_feat, n_feat, kernel_size, bias_attr)
        self.conv2 = conv(n_feat, 3, kernel_size, bias_attr)
        self.conv3 = conv(3, n_feat, kernel_size, bias_attr)

    def forward(self, x, x_img):
        img = self.conv2(x) + x_img
        return self.conv1(x) * torch.sigmoid(self.conv3(img)) + x, img


@GENERATORS.register()
class MPRNet(nn.Module):
    """Args (PaddleGAN's):
        in_c, out_c (int): image channels in / out (3; the SAMs work on 3-channel images).
        n_feat (int): stage width (96 deblurring, 80 denoising, 40 deraining).
        scale_unetfeats (int): channels added per U-Net level.
        scale_orsnetfeats (int): channels added in the ORSNet.
        num_cab (int): CABs per ORB.
        kernel_size (int), reduction (int): conv size; channel-attention reduction.
        bias_attr (bool): biases on the convs (PaddleGAN's default False).
    Input [N, in_c, H, W] with H, W multiples of 8; output [stage3 + input, stage2, stage1], each
    [N, 3, H, W].
    """

    size_multiple = 8

    def __init__(self, in_c=3, out_c=3, n_feat=96, scale_unetfeats=48, scale_orsnetfeats=32, num_cab=8,
                 kernel_size=3, reduction=4, bias_attr=False):
        super().__init__()
        act = PReLU()  # one module for every CAB (PaddleGAN's), not registered on the net itself
        for i in (1, 2, 3):
            setattr(self, f"shallow_feat{i}", nn.Sequential(
                conv(in_c, n_feat, kernel_size, bias_attr), CAB(n_feat, kernel_size, reduction, bias_attr, act)))
        self.stage1_encoder = Encoder(n_feat, kernel_size, reduction, act, bias_attr, scale_unetfeats, csff=False)
        self.stage1_decoder = Decoder(n_feat, kernel_size, reduction, act, bias_attr, scale_unetfeats)
        self.stage2_encoder = Encoder(n_feat, kernel_size, reduction, act, bias_attr, scale_unetfeats, csff=True)
        self.stage2_decoder = Decoder(n_feat, kernel_size, reduction, act, bias_attr, scale_unetfeats)
        self.stage3_orsnet = ORSNet(n_feat, scale_orsnetfeats, kernel_size, reduction, act, bias_attr,
                                    scale_unetfeats, num_cab)
        self.sam12 = SAM(n_feat, kernel_size=1, bias_attr=bias_attr)
        self.sam23 = SAM(n_feat, kernel_size=1, bias_attr=bias_attr)
        self.concat12 = conv(n_feat * 2, n_feat, kernel_size, bias_attr)
        self.concat23 = conv(n_feat * 2, n_feat + scale_orsnetfeats, kernel_size, bias_attr)
        self.tail = conv(n_feat + scale_orsnetfeats, out_c, kernel_size, bias_attr)

    def forward(self, x3_img):
        h, w = x3_img.shape[-2:]
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(f"MPRNet needs H and W multiples of {self.size_multiple}; got {h}x{w} "
                             "(pad the input, e.g. ppgan.utils.inference.pad_to_multiple)")
        # multi-patch hierarchy: two halves for stage 2, four quarters for stage 1
        x2top_img, x2bot_img = x3_img[:, :, : h // 2], x3_img[:, :, h // 2:]
        quarters = [x2top_img[..., : w // 2], x2top_img[..., w // 2:],
                    x2bot_img[..., : w // 2], x2bot_img[..., w // 2:]]

        # stage 1
        ltop, rtop, lbot, rbot = [self.stage1_encoder(self.shallow_feat1(q)) for q in quarters]
        feat1_top = [torch.cat((a, b), 3) for a, b in zip(ltop, rtop)]
        feat1_bot = [torch.cat((a, b), 3) for a, b in zip(lbot, rbot)]
        res1_top = self.stage1_decoder(feat1_top)
        res1_bot = self.stage1_decoder(feat1_bot)
        x2top_samfeats, stage1_img_top = self.sam12(res1_top[0], x2top_img)
        x2bot_samfeats, stage1_img_bot = self.sam12(res1_bot[0], x2bot_img)
        stage1_img = torch.cat([stage1_img_top, stage1_img_bot], 2)

        # stage 2
        x2top_cat = self.concat12(torch.cat([self.shallow_feat2(x2top_img), x2top_samfeats], 1))
        x2bot_cat = self.concat12(torch.cat([self.shallow_feat2(x2bot_img), x2bot_samfeats], 1))
        feat2_top = self.stage2_encoder(x2top_cat, feat1_top, res1_top)
        feat2_bot = self.stage2_encoder(x2bot_cat, feat1_bot, res1_bot)
        feat2 = [torch.cat((a, b), 2) for a, b in zip(feat2_top, feat2_bot)]
        res2 = self.stage2_decoder(feat2)
        x3_samfeats, stage2_img = self.sam23(res2[0], x3_img)

        # stage 3
        x3_cat = self.concat23(torch.cat([self.shallow_feat3(x3_img), x3_samfeats], 1))
        x3_cat = self.stage3_orsnet(x3_cat, feat2, res2)
        return [self.tail(x3_cat) + x3_img, stage2_img, stage1_img]

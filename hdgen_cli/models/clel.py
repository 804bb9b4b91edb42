"""CLEL energy backbones f: x in [0, 1] -> R^128 and the projector g ([CLEL] Table 8).

Registers "clel_small", "clel_base" and "clel_large". They are unsupervised: num_classes is
ignored, `head` and `num_classes` are None and `forward(x) == features(x)` is f(x).
Reads model.channels (base channel count, None: the paper's 64/128/256) and model.leak
(LeakyReLU slope, default 0.2 as in the paper); ignores depth, width, norm, dropout, head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from hdgen_cli.config.schema import ModelConfig
from hdgen_cli.errors import UsageError
from hdgen_cli.models.registry import Backbone, register_backbone

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
FEATURE_DIM = 128
HIDDEN = 2048


class Normalize(nn.Module):
    """(x - mean) / std per channel with fixed buffers: CIFAR-10 statistics for 3 channels, else 0.5/0.5."""

    def __init__(self, channels: int):
        super().__init__()
        mean, std = (CIFAR_MEAN, CIFAR_STD) if channels == 3 else ((0.5,) * channels, (0.5,) * channels)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


class Down(nn.Module):
    """AvgPool 2x2 that passes a map through unchanged once a side is already 1 (tiny inputs, e.g. 4x4)."""

    def forward(self, x):
        return x if min(x.shape[-2:]) < 2 else F.avg_pool2d(x, 2)


class ResBlock(nn.Module):
    """Pre-activation block: act -> conv3x3 -> act -> conv3x3, plus a bias-free 1x1 shortcut if widths differ."""

    def __init__(self, in_ch: int, out_ch: int, leak: float):
        super().__init__()
        # Not in-place: the block input is reused by the shortcut.
        self.act1 = nn.LeakyReLU(leak)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=True)
        self.act2 = nn.LeakyReLU(leak)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=True)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1, bias=False) if in_ch != out_ch else nn.Identity()

    def forward(self, x):
        h = self.conv2(self.act2(self.conv1(self.act1(x))))
        return h + self.shortcut(x)


class Tower(nn.Module):
    """Stem conv3x3, four stages (stages 2-4 open with AvgPool 2x2), act, global average pool -> [B, c_last]."""

    def __init__(self, in_channels: int, stem: int, stages: list[tuple[int, int]], leak: float):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, stem, 3, padding=1, bias=True)
        layers: list[nn.Module] = []
        width = stem
        for i, (out_ch, blocks) in enumerate(stages):
            if i > 0:
                layers.append(Down())
            for _ in range(blocks):
                layers.append(ResBlock(width, out_ch, leak))
                width = out_ch
        self.body = nn.Sequential(*layers)
        self.act = nn.LeakyReLU(leak)
        self.out_dim = width

    def forward(self, x):
        return self.act(self.body(self.stem(x))).mean(dim=(2, 3))


def _init_and_spectral_norm(model: nn.Module) -> None:
    """Linear N(0, 0.01^2); conv Kaiming-normal (fan_in, linear gain); zero biases; then SN on every conv."""
    convs = []
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
        elif isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="linear")
            convs.append(m)
        else:
            continue
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    # Collected first: registering a parametrization adds submodules while we iterate.
    for conv in convs:
        spectral_norm(conv)


class CLELNet(Backbone):
    """f(x) = MLP[c, 2048, 128](concat_t Tower_t(pool_t(Normalize(x)))); one tower (small, base) or three (large).

    `scales` lists the input downsampling factor of each tower: (1,) or (1, 2, 4) for large.
    """

    def __init__(self, in_channels: int, stem: int, stages: list[tuple[int, int]], leak: float,
                 scales: tuple[int, ...] = (1,), hidden: int = HIDDEN):
        super().__init__()
        self.normalize = Normalize(in_channels)
        self.scales = scales
        self.towers = nn.ModuleList(Tower(in_channels, stem, stages, leak) for _ in scales)
        self.first_layer = self.towers[0].stem
        c = sum(t.out_dim for t in self.towers)
        self.mlp = nn.Sequential(nn.Linear(c, hidden), nn.LeakyReLU(leak), nn.Linear(hidden, FEATURE_DIM))
        self.feature_dim = FEATURE_DIM
        self.head, self.num_classes = None, None
        _init_and_spectral_norm(self)

    def features(self, x):
        x = self.normalize(x)
        # Average pooling commutes with the per-channel affine Normalize, so pooling after it is the same.
        feats = [tower(x if s == 1 else F.avg_pool2d(x, s)) for s, tower in zip(self.scales, self.towers)]
        return self.mlp(torch.cat(feats, dim=1))


class Projector(nn.Module):
    """g: bias-free MLP dim -> hidden -> dim with LeakyReLU(0.2); output L2-normalised along dim 1."""

    def __init__(self, dim: int = FEATURE_DIM, hidden: int = HIDDEN):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, dim, bias=False))

    def forward(self, u):
        return F.normalize(self.net(u), dim=1)


@register_backbone("clel_small")
def build_clel_small(cfg: ModelConfig, in_channels: int, num_classes: int | None, image_size: int) -> nn.Module:
    """Stem c, stages (c x1), (c x1), (2c x1), (2c x1); c = model.channels or 64. num_classes is ignored."""
    c = cfg.channels or 64
    return CLELNet(in_channels, c, [(c, 1), (c, 1), (2 * c, 1), (2 * c, 1)], cfg.leak)


@register_backbone("clel_base")
def build_clel_base(cfg: ModelConfig, in_channels: int, num_classes: int | None, image_size: int) -> nn.Module:
    """Stem c, stages (c x2), (c x2), (2c x2), (2c x2); c = model.channels or 128. num_classes is ignored."""
    c = cfg.channels or 128
    return CLELNet(in_channels, c, [(c, 2), (c, 2), (2 * c, 2), (2 * c, 2)], cfg.leak)


@register_backbone("clel_large")
def build_clel_large(cfg: ModelConfig, in_channels: int, num_classes: int | None, image_size: int) -> nn.Module:
    """Three towers (c x2) x4 on x, avgpool2(x), avgpool4(x); c = model.channels or 256; needs >= 32px."""
    if image_size < 32:
        raise UsageError(f"clel_large needs images of at least 32x32 (got {image_size}x{image_size}); "
                         "use clel_small or clel_base, or data.image_size=32")
    c = cfg.channels or 256
    return CLELNet(in_channels, c, [(c, 2)] * 4, cfg.leak, scales=(1, 2, 4))

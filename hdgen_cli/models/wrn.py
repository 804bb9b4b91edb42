"""JEM-variant Wide-ResNet ("wrn", docs/methods/shared.md): pre-activation blocks, biased convs, LeakyReLU.

Reads model.depth (6n+4), width (k), norm, bn_momentum, dropout, leak, head.
Stage widths [16, 16k, 32k, 64k], strides 1, 2, 2; phi has dimension 64k.
"""

from __future__ import annotations

from torch import nn

from hdgen_cli.config.schema import ModelConfig
from hdgen_cli.errors import UsageError
from hdgen_cli.models.registry import Backbone, make_head, register_backbone


def _norm(cfg: ModelConfig, channels: int) -> nn.Module:
    # JEM trains without normalisation by default; BN is an opt-in with the configured momentum.
    if cfg.norm == "batch":
        return nn.BatchNorm2d(channels, momentum=cfg.bn_momentum)
    return nn.Identity()


def _act(cfg: ModelConfig) -> nn.Module:
    # Not in-place: with norm "none" the activation input is the block input that the shortcut reuses.
    return nn.LeakyReLU(cfg.leak)


class WideBlock(nn.Module):
    """Pre-activation block; the stride sits on the SECOND conv as in the JEM code."""

    def __init__(self, cfg: ModelConfig, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.norm1 = _norm(cfg, in_ch)
        self.act1 = _act(cfg)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=1, padding=1, bias=True)
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        self.norm2 = _norm(cfg, out_ch)
        self.act2 = _act(cfg)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride=stride, padding=1, bias=True)
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=True)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        h = self.dropout(self.conv1(self.act1(self.norm1(x))))
        h = self.conv2(self.act2(self.norm2(h)))
        return h + self.shortcut(x)


class WideResNet(Backbone):
    """WRN-d-k: stem conv, three stages of n = (d-4)/6 blocks, norm+act, global average pool."""

    def __init__(self, cfg: ModelConfig, in_channels: int, num_classes: int | None):
        super().__init__()
        if cfg.depth < 10 or (cfg.depth - 4) % 6 != 0:
            raise UsageError(f"model.depth must be 6n+4, e.g. 28 (got {cfg.depth})")
        n, k = (cfg.depth - 4) // 6, cfg.width
        widths = [16, 16 * k, 32 * k, 64 * k]
        self.stem = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=True)
        self.first_layer = self.stem
        stages = []
        for i, stride in enumerate((1, 2, 2)):
            blocks = [WideBlock(cfg, widths[i], widths[i + 1], stride)]
            blocks += [WideBlock(cfg, widths[i + 1], widths[i + 1], 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.norm = _norm(cfg, widths[3])
        self.act = _act(cfg)
        # Adaptive pooling equals JEM's 8x8 average pool at 32px and also works for other sizes.
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = widths[3]
        self.head, self.num_classes = make_head(cfg, self.feature_dim, num_classes)

    def features(self, x):
        h = self.stages(self.stem(x))
        return self.pool(self.act(self.norm(h))).flatten(1)


@register_backbone("wrn")
def build_wrn(cfg: ModelConfig, in_channels: int, num_classes: int | None, image_size: int) -> nn.Module:
    """JEM-variant WRN; image_size is unused because the pool is adaptive."""
    return WideResNet(cfg, in_channels, num_classes)

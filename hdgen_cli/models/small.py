"""Small backbones for CPU runs and tests: "small_cnn" and "mlp" (docs/methods/shared.md, backbone)."""

from __future__ import annotations

from torch import nn

from hdgen_cli.config.schema import ModelConfig
from hdgen_cli.models.registry import Backbone, make_head, register_backbone


class SmallCNN(Backbone):
    """Four post-activation conv3x3 layers (c, c, 2c/2, 4c/2 with c = 8*width), global average pool.

    Post-activation (conv -> norm -> act) keeps this shallow net simple; no residuals needed.
    """

    def __init__(self, cfg: ModelConfig, in_channels: int, num_classes: int | None):
        super().__init__()
        c = 8 * cfg.width
        plan = [(in_channels, c, 1), (c, c, 1), (c, 2 * c, 2), (2 * c, 4 * c, 2)]
        layers: list[nn.Module] = []
        for cin, cout, stride in plan:
            # Bias is redundant right before BN, so only keep it without normalisation.
            layers.append(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=cfg.norm != "batch"))
            if cfg.norm == "batch":
                layers.append(nn.BatchNorm2d(cout, momentum=cfg.bn_momentum))
            layers.append(nn.LeakyReLU(cfg.leak))
        self.body = nn.Sequential(*layers)
        self.first_layer = layers[0]
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = 4 * c
        head, self.num_classes = make_head(cfg, self.feature_dim, num_classes)
        # Dropout lives in the head so features(x) stays deterministic phi(x).
        if head is not None and cfg.dropout > 0:
            head = nn.Sequential(nn.Dropout(cfg.dropout), head)
        self.head = head

    def features(self, x):
        return self.pool(self.body(x)).flatten(1)


class MLP(Backbone):
    """Flatten -> depth x [Linear(64*width) -> BatchNorm1d? -> LeakyReLU -> Dropout?] -> phi."""

    def __init__(self, cfg: ModelConfig, in_channels: int, num_classes: int | None, image_size: int):
        super().__init__()
        hidden = 64 * cfg.width
        layers: list[nn.Module] = [nn.Flatten(1)]
        dim = in_channels * image_size * image_size
        for _ in range(cfg.depth):
            layers.append(nn.Linear(dim, hidden, bias=cfg.norm != "batch"))
            if cfg.norm == "batch":
                layers.append(nn.BatchNorm1d(hidden, momentum=cfg.bn_momentum))
            layers.append(nn.LeakyReLU(cfg.leak))
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            dim = hidden
        self.body = nn.Sequential(*layers)
        self.first_layer = layers[1]
        self.feature_dim = hidden
        self.head, self.num_classes = make_head(cfg, self.feature_dim, num_classes)

    def features(self, x):
        return self.body(x)


@register_backbone("small_cnn")
def build_small_cnn(cfg: ModelConfig, in_channels: int, num_classes: int | None, image_size: int) -> nn.Module:
    """Reads width, norm, bn_momentum, dropout, leak, head; ignores depth and image_size."""
    return SmallCNN(cfg, in_channels, num_classes)


@register_backbone("mlp")
def build_mlp(cfg: ModelConfig, in_channels: int, num_classes: int | None, image_size: int) -> nn.Module:
    """Reads depth (number of hidden layers), width, norm, bn_momentum, dropout, leak, head, image_size."""
    return MLP(cfg, in_channels, num_classes, image_size)

"""CLEL latent encoder h: CIFAR ResNet-18 plus a 2-layer MLP ([CLEL] App. B).

Differences from the ImageNet ResNet-18: conv1 is a 3x3 stride-1 conv without bias, there is no
maxpool, and a fixed Normalize is prepended so inputs are in [0, 1]. The residual branch's last
BatchNorm starts at zero (zero_init_residual). The output is NOT L2-normalised.
"""

from __future__ import annotations

from torch import nn

from hdgen_cli.models.clel import Normalize


class BasicBlock(nn.Module):
    """conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN, plus (1x1 conv + BN) shortcut if the shape changes; ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_ch))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return self.relu(h + self.shortcut(x))


class LatentEncoder(nn.Module):
    """h(x in [0, 1]) -> [B, out_dim]: Normalize, ResNet-18 trunk (widths w, 2w, 4w, 8w), GAP, MLP.

    MLP: Linear(8w, hidden, no bias) -> BatchNorm1d -> ReLU -> Linear(hidden, out_dim).
    """

    def __init__(self, in_channels: int, width: int = 64, out_dim: int = 128, hidden: int = 2048):
        super().__init__()
        self.normalize = Normalize(in_channels)
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        stages = []
        in_ch = width
        for i, stride in enumerate((1, 2, 2, 2)):
            out_ch = width * 2**i
            stages.append(nn.Sequential(BasicBlock(in_ch, out_ch, stride), BasicBlock(out_ch, out_ch, 1)))
            in_ch = out_ch
        self.layers = nn.Sequential(*stages)
        self.feature_dim = in_ch
        self.out_dim = out_dim
        self.mlp = nn.Sequential(nn.Linear(in_ch, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(),
                                 nn.Linear(hidden, out_dim))
        self._init()

    def _init(self) -> None:
        # torchvision-style ResNet init; Linear layers keep PyTorch's default init.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def trunk(self, x):
        """Pooled ResNet-18 features [B, 8*width] before the MLP."""
        h = self.relu(self.bn1(self.conv1(self.normalize(x))))
        return self.layers(h).mean(dim=(2, 3))

    def forward(self, x):
        return self.mlp(self.trunk(x))


def build_encoder(in_channels: int, width: int = 64, out_dim: int = 128, hidden: int = 2048) -> nn.Module:
    """The CLEL latent encoder h; width 64 is the paper's ResNet-18. Works down to 8x8 inputs."""
    return LatentEncoder(in_channels, width, out_dim, hidden)

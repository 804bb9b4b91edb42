"""Backbones (the JEM Wide-ResNet and the small nets), timm style: every registered name is exercised."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hdgen_cli.config.schema import ModelConfig
from hdgen_cli.errors import UsageError
from hdgen_cli.models import build_backbone, list_backbones, register_backbone
from hdgen_cli.models import registry

# Smallest sensible config per backbone; a new backbone falls back to its schema defaults.
SMALL = {
    "wrn": dict(depth=10, width=2),
    "small_cnn": dict(width=2),
    "mlp": dict(depth=2, width=1),
}
B = 4  # > 1 so BatchNorm1d can normalise in train mode
# CLEL's EBMs are unsupervised (no classes, no norm, no dropout): tests/models/test_clel_networks.py covers them.
UNSUPERVISED = {"clel_small", "clel_base", "clel_large"}
CLASSIFIERS = [n for n in list_backbones() if n not in UNSUPERVISED]


def _cfg(name: str, **kw) -> ModelConfig:
    return ModelConfig(name=name, **{**SMALL.get(name, {}), **kw})


@pytest.mark.parametrize("image_size", [8, 32])
@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("norm", ["none", "batch"])
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_forward_backward(name, norm, in_channels, image_size):
    torch.manual_seed(0)
    model = build_backbone(_cfg(name, norm=norm), in_channels, 10, image_size)
    assert model.num_classes == 10
    x = torch.randn(B, in_channels, image_size, image_size)

    # first_layer must be the first parametrised module the input meets (YOPO reuses its output grad).
    order: list[nn.Module] = []
    hooks = [
        m.register_forward_pre_hook(lambda mod, _inp: order.append(mod))
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    out = model(x)
    for h in hooks:
        h.remove()
    assert order[0] is model.first_layer

    assert out.shape == (B, 10)
    assert torch.isfinite(out).all()
    out.sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname

    with torch.no_grad():
        phi = model.features(x)
    assert phi.shape == (B, model.feature_dim)
    assert torch.isfinite(phi).all()


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_headless_returns_features(name):
    x = torch.randn(B, 3, 8, 8)
    for cfg, n_cls in ((_cfg(name, head=False), 10), (_cfg(name), None)):
        model = build_backbone(cfg, 3, n_cls, 8).eval()
        assert model.num_classes is None
        out = model(x)
        assert out.shape == (B, model.feature_dim)
        assert torch.allclose(out, model.features(x))


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_config_reaches_layers(name):
    cfg = _cfg(name, norm="batch", bn_momentum=0.37, leak=0.13, dropout=0.25)
    model = build_backbone(cfg, 3, 10, 8)
    assert model(torch.randn(B, 3, 8, 8)).shape == (B, 10)
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert drops and all(m.p == 0.25 for m in drops)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    acts = [m for m in model.modules() if isinstance(m, (nn.LeakyReLU, nn.ReLU))]
    assert bns and all(m.momentum == 0.37 for m in bns)
    assert acts and all(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.13 for m in acts)
    no_norm = build_backbone(_cfg(name, norm="none"), 3, 10, 8)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in no_norm.modules())


def test_wrn_28_10_param_count():
    model = build_backbone(ModelConfig(name="wrn", depth=28, width=10), 3, 10, 32)
    assert model.feature_dim == 640
    n = sum(p.numel() for p in model.parameters())
    assert 36.4e6 <= n <= 36.6e6, n


def test_wrn_stride_on_second_conv():
    model = build_backbone(_cfg("wrn"), 3, 10, 32)
    block = model.stages[1][0]  # first block of stage 2 carries the stride
    assert block.conv1.stride == (1, 1)
    assert block.conv2.stride == (2, 2)
    assert block.shortcut.stride == (2, 2) and block.shortcut.bias is not None
    assert model.stem.bias is not None and block.conv1.bias is not None


@pytest.mark.parametrize("depth", [27, 12, 4])
def test_wrn_bad_depth(depth):
    with pytest.raises(UsageError) as err:
        build_backbone(ModelConfig(name="wrn", depth=depth, width=1), 3, 10, 32)
    msg = str(err.value)
    assert "6n+4" in msg and "28" in msg and "\n" not in msg


def test_unknown_model_suggests():
    with pytest.raises(UsageError) as err:
        build_backbone(ModelConfig(name="wrm"), 3, 10, 32)
    msg = str(err.value)
    assert "\n" not in msg
    assert "'wrm'" in msg and "did you mean 'wrn'?" in msg
    assert "(set model.name to one of: clel_base, clel_large, clel_small, mlp, small_cnn, wrn)" in msg


def test_register_backbone_adds_name():
    @register_backbone("_tiny_test")
    def _tiny(cfg, in_channels, num_classes, image_size):
        return nn.Identity()

    try:
        assert "_tiny_test" in list_backbones()
        assert list_backbones() == sorted(list_backbones())
        assert isinstance(build_backbone(ModelConfig(name="_tiny_test"), 3, 10, 8), nn.Identity)
        with pytest.raises(ValueError):
            register_backbone("_tiny_test")(lambda *a: None)
    finally:
        registry.BACKBONES._items.pop("_tiny_test", None)

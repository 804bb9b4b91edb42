"""CLEL networks ([CLEL] Table 8): EBM backbones f, projector g, latent encoder h."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from hdgen_cli.config.schema import ModelConfig
from hdgen_cli.errors import UsageError
from hdgen_cli.models import build_backbone
from hdgen_cli.models.clel import Projector
from hdgen_cli.models.encoder import BasicBlock, build_encoder

B = 2
# (name, in_channels, image_size): clel_large needs >= 32px.
SHAPES = [(n, c, s) for n in ("clel_small", "clel_base") for c, s in ((1, 8), (3, 32))] + [("clel_large", 3, 32)]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny convs are far faster single-threaded, especially on a busy 2-core machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _build(name: str, in_channels: int, image_size: int, channels: int = 8) -> nn.Module:
    return build_backbone(ModelConfig(name=name, channels=channels), in_channels, None, image_size)


@pytest.mark.parametrize("name,in_channels,image_size", SHAPES)
def test_forward_backward(name, in_channels, image_size):
    model = _build(name, in_channels, image_size)
    assert model.head is None and model.num_classes is None and model.feature_dim == 128
    assert isinstance(model.first_layer, nn.Conv2d) and model.first_layer.in_channels == in_channels
    x = torch.rand(B, in_channels, image_size, image_size)
    out = model(x)
    assert out.shape == (B, 128)
    assert torch.isfinite(out).all()
    out.pow(2).sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
    model.eval()  # no power iteration, so both calls see the same weights
    with torch.no_grad():
        assert torch.equal(model(x), model.features(x))


@pytest.mark.parametrize("name,in_channels,image_size", SHAPES)
def test_spectral_norm_on_every_conv_only(name, in_channels, image_size):
    model = _build(name, in_channels, image_size)
    x = torch.rand(B, in_channels, image_size, image_size)
    model.train()
    with torch.no_grad():
        for _ in range(20):  # each train-mode forward runs one power iteration per conv
            model(x)
    model.eval()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert convs and len(linears) == 2
    with torch.no_grad():
        for conv in convs:
            assert parametrize.is_parametrized(conv, "weight")
            sigma = torch.linalg.matrix_norm(conv.weight.reshape(conv.out_channels, -1), ord=2)
            assert abs(sigma.item() - 1) < 0.05
    assert not any(parametrize.is_parametrized(lin) for lin in linears)
    assert all(lin.bias is not None for lin in linears)


def test_architecture_sizes():
    base = _build("clel_base", 3, 32, channels=4)
    tower = base.towers[0]
    blocks = [m for m in tower.body if hasattr(m, "conv1")]
    assert tower.stem.out_channels == 4 and len(blocks) == 8
    assert [b.conv2.out_channels for b in blocks] == [4, 4, 4, 4, 8, 8, 8, 8]
    assert base.mlp[0].in_features == 8 and base.mlp[0].out_features == 2048
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in base.modules())
    large = _build("clel_large", 3, 32, channels=4)
    assert len(large.towers) == 3 and large.mlp[0].in_features == 12
    assert large.first_layer is large.towers[0].stem
    small = _build("clel_small", 1, 8, channels=4)
    assert len([m for m in small.towers[0].body if hasattr(m, "conv1")]) == 4
    # The normalisation is a fixed buffer, not a parameter.
    assert "normalize.mean" in dict(small.named_buffers())
    assert not any("normalize" in n for n, _ in small.named_parameters())


def test_tiny_input_skips_pooling():
    model = _build("clel_small", 1, 4)
    assert model(torch.rand(B, 1, 4, 4)).shape == (B, 128)


def test_large_needs_32px():
    with pytest.raises(UsageError) as err:
        _build("clel_large", 1, 8)
    msg = str(err.value)
    assert "32" in msg and "\n" not in msg


def test_projector_unit_norm_no_bias():
    g = Projector()
    out = g(torch.randn(5, 128))
    assert out.shape == (5, 128)
    assert torch.allclose(out.norm(dim=1), torch.ones(5), atol=1e-5)
    assert not any("bias" in n for n, _ in g.named_parameters())


@pytest.mark.parametrize("in_channels,image_size", [(1, 8), (3, 32)])
def test_encoder(in_channels, image_size):
    h = build_encoder(in_channels, width=8)
    for block in (m for m in h.modules() if isinstance(m, BasicBlock)):
        assert torch.count_nonzero(block.bn2.weight) == 0
    out = h(torch.rand(4, in_channels, image_size, image_size))
    assert out.shape == (4, 128)
    assert torch.isfinite(out).all()
    out.pow(2).sum().backward()
    for pname, p in h.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname

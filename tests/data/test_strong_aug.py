"""Tests of the SimCLR strong augmentation ([CLEL] App. B)."""

from __future__ import annotations

import pytest
import torch

from hdgen_cli.data.strong_aug import StrongAugment, color_jitter, hsv_to_rgb, luma, rgb_to_hsv
from hdgen_cli.errors import UsageError

IDENTITY = dict(scale=(1.0, 1.0), ratio=(1.0, 1.0), p_jitter=0.0, p_gray=0.0, p_flip=0.0)


@pytest.mark.parametrize("shape", [(8, 3, 32, 32), (8, 1, 8, 8)])
@pytest.mark.parametrize("size", [None, 16])
def test_keeps_shape_and_range(shape, size):
    x = torch.rand(shape)
    y = StrongAugment(size=size)(x)
    side = shape[2] if size is None else size
    assert y.shape == (shape[0], shape[1], side, side)
    assert torch.isfinite(y).all()
    assert y.min() >= 0 and y.max() <= 1


def test_non_square_and_empty_batch():
    y = StrongAugment(size=12)(torch.rand(4, 3, 10, 20))
    assert y.shape == (4, 3, 12, 12)
    assert StrongAugment()(torch.rand(0, 3, 8, 8)).shape == (0, 3, 8, 8)


@pytest.mark.parametrize("shape", [(4, 3, 16, 16), (4, 1, 8, 8)])
def test_identity_settings_return_input(shape):
    x = torch.rand(shape)
    torch.testing.assert_close(StrongAugment(**IDENTITY)(x), x, atol=1e-4, rtol=0)


def test_crop_geometry_on_a_ramp():
    # A quarter-area square box resampled to half the side keeps one input pixel per output pixel,
    # and bicubic reproduces a linear ramp exactly away from the border.
    ramp = (torch.arange(16.0) / 15).view(1, 1, 1, 16).expand(6, 1, 16, 16)
    y = StrongAugment(size=8, **{**IDENTITY, "scale": (0.25, 0.25)})(ramp)
    steps = y[:, 0, 3, 1:] - y[:, 0, 3, :-1]
    torch.testing.assert_close(steps[:, 1:-1], torch.full((6, 5), 1 / 15), atol=1e-5, rtol=0)
    assert y[:, 0, :, 0].std() > 0.05  # boxes sit at different positions


def test_flip_always():
    x = torch.rand(4, 3, 16, 16)
    y = StrongAugment(**{**IDENTITY, "p_flip": 1.0})(x)
    torch.testing.assert_close(y, x.flip(3), atol=1e-4, rtol=0)


def test_gray_always():
    x = torch.rand(4, 3, 16, 16)
    y = StrongAugment(**{**IDENTITY, "p_gray": 1.0})(x)
    expected = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    for ch in range(3):
        torch.testing.assert_close(y[:, ch], expected, atol=1e-4, rtol=0)
    # A 1-channel batch has nothing to gray out.
    g = torch.rand(4, 1, 8, 8)
    torch.testing.assert_close(StrongAugment(**{**IDENTITY, "p_gray": 1.0})(g), g, atol=1e-4, rtol=0)


def test_hsv_round_trip_and_known_colours():
    x = torch.rand(2, 3, 16, 16)
    x[0, :, 0, 0] = 0.5  # gray pixel: zero saturation
    x[0, :, 0, 1] = 0.0  # black
    torch.testing.assert_close(hsv_to_rgb(rgb_to_hsv(x)), x, atol=1e-5, rtol=0)
    colours = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5]]).view(4, 3, 1, 1)
    hsv = rgb_to_hsv(colours).view(4, 3)
    expected = torch.tensor([[0.0, 1, 1], [1 / 3, 1, 1], [2 / 3, 1, 1], [0, 0, 0.5]])
    torch.testing.assert_close(hsv, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(hsv_to_rgb(expected.view(4, 3, 1, 1)), colours, atol=1e-6, rtol=0)


def test_jitter_identity_factors_leave_images_unchanged():
    x = torch.rand(4, 3, 8, 8)
    ones, zeros = torch.ones(4), torch.zeros(4)
    for order in [(0, 1, 2, 3), (3, 2, 1, 0), torch.rand(4, 4).argsort(1)]:
        torch.testing.assert_close(color_jitter(x, ones, ones, ones, zeros, order), x, atol=1e-5, rtol=0)
    g = torch.rand(4, 1, 8, 8)
    torch.testing.assert_close(color_jitter(g, ones, ones, ones, zeros), g, atol=1e-6, rtol=0)


def test_jitter_ops_behave():
    x = torch.rand(2, 3, 8, 8)
    ones, zeros = torch.ones(2), torch.zeros(2)
    half = torch.full((2,), 0.5)
    torch.testing.assert_close(color_jitter(x, half, ones, ones, zeros), x * 0.5)
    # Saturation 0 is the grayscale image; contrast 0 is its mean everywhere.
    torch.testing.assert_close(color_jitter(x, ones, ones, zeros, zeros), luma(x).expand_as(x))
    flat = color_jitter(x, ones, zeros, ones, zeros)
    torch.testing.assert_close(flat, luma(x).mean((1, 2, 3), keepdim=True).expand_as(x))
    # A hue shift of 1/3 turns pure red into pure green.
    red = torch.tensor([1.0, 0, 0]).view(1, 3, 1, 1)
    green = color_jitter(red, ones[:1], ones[:1], ones[:1], torch.full((1,), 1 / 3))
    torch.testing.assert_close(green.view(3), torch.tensor([0.0, 1, 0]), atol=1e-5, rtol=0)
    # Per-sample factors and orders: sample 1 is untouched when its factors are the identity.
    y = color_jitter(x, torch.tensor([0.5, 1.0]), ones, ones, torch.tensor([0.2, 0.0]), torch.rand(2, 4).argsort(1))
    torch.testing.assert_close(y[1], x[1], atol=1e-5, rtol=0)
    assert not torch.allclose(y[0], x[0])


def test_reproducible_and_per_sample():
    x = torch.rand(1, 3, 16, 16).expand(6, 3, 16, 16).contiguous()
    aug = StrongAugment()
    torch.manual_seed(123)
    a = aug(x)
    torch.manual_seed(123)
    b = aug(x)
    assert torch.equal(a, b)
    assert not torch.allclose(a[0], a[1])
    assert len({tuple(v.flatten()[:20].tolist()) for v in a}) == 6
    torch.manual_seed(124)
    assert not torch.allclose(aug(x), a)


def test_rejects_bad_input():
    with pytest.raises(UsageError):
        StrongAugment()(torch.rand(2, 2, 8, 8))
    with pytest.raises(UsageError):
        StrongAugment()(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(UsageError):
        StrongAugment(scale=(0.5, 0.1))
    with pytest.raises(UsageError):
        StrongAugment(p_flip=1.5)

"""In-memory image sets and the pixel-range conventions (docs/methods/shared.md, pixel range).

Every dataset is held as one uint8 tensor [N, C, H, W]: small enough for the image sizes this
tool targets, and it lets augmentation run as batched tensor ops on any device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hdgen_cli.errors import UsageError

PIXEL_RANGES = ("symmetric", "unit")


@dataclass
class ImageSet:
    """Images (uint8 [N, C, H, W]) with int64 labels; unlabelled sets have num_classes 0."""

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    name: str
    default_flip: bool

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"ImageSet images must be uint8 [N, C, H, W], got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"ImageSet labels must be [N={self.images.shape[0]}], got {tuple(self.labels.shape)}")
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, idx: torch.Tensor) -> "ImageSet":
        idx = torch.as_tensor(idx, dtype=torch.long).to(self.images.device)
        return ImageSet(self.images[idx], self.labels[idx], self.num_classes, self.name, self.default_flip)

    def to(self, device) -> "ImageSet":
        return ImageSet(self.images.to(device), self.labels.to(device), self.num_classes, self.name, self.default_flip)

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        # Loaders make images square (resize or refuse), so one number describes the size.
        return self.images.shape[-1]


def _check_range(pixel_range: str) -> None:
    if pixel_range not in PIXEL_RANGES:
        raise UsageError(f"unknown pixel range '{pixel_range}': set data.pixel_range to one of {', '.join(PIXEL_RANGES)}")


def to_model_range(u8: torch.Tensor, pixel_range: str) -> torch.Tensor:
    """uint8 pixels -> float32 model range: symmetric 2u-1 in [-1, 1], unit u in [0, 1]."""
    _check_range(pixel_range)
    u = u8.float() / 255.0
    return u * 2.0 - 1.0 if pixel_range == "symmetric" else u


def from_model_range(x: torch.Tensor, pixel_range: str) -> torch.Tensor:
    """Model range -> [0, 1] float, clamped (samples may leave the data range)."""
    _check_range(pixel_range)
    u = (x.float() + 1.0) / 2.0 if pixel_range == "symmetric" else x.float()
    return u.clamp(0.0, 1.0)


def unit_to_model_range(u: torch.Tensor, pixel_range: str) -> torch.Tensor:
    """Float images in [0, 1] -> model range (the float twin of `to_model_range`)."""
    _check_range(pixel_range)
    return u * 2.0 - 1.0 if pixel_range == "symmetric" else u


def to_uint8(u: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] -> uint8 by round(255 * clamp(u))."""
    return (u.clamp(0, 1) * 255).round().to(torch.uint8)


def data_bounds(pixel_range: str) -> tuple[float, float]:
    """(low, high) of real data in the model range."""
    _check_range(pixel_range)
    return (-1.0, 1.0) if pixel_range == "symmetric" else (0.0, 1.0)


def resize_u8(images: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """Bilinear, antialiased resize of uint8 [N, C, H, W] to [N, C, size, size].

    Works in chunks so a 50k-image set never needs a full float copy in memory.
    """
    if images.shape[-2:] == (size, size):
        return images
    out = []
    for start in range(0, images.shape[0], chunk):
        x = images[start:start + chunk].float()
        y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out.append(y.round().clamp(0, 255).to(torch.uint8))
    if not out:
        return images.new_zeros((0, images.shape[1], size, size))
    return torch.cat(out)


def pad_u8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad uint8 [N, C, H, W] images smaller than `size`, centred, to [N, C, size, size].

    Zero is black, the background of MNIST and Fashion-MNIST, so 28x28 -> 32x32 adds background
    around the object the way the papers' MNIST experiments do; larger sides are left alone.
    """
    h, w = images.shape[-2:]
    if h >= size and w >= size:
        return images
    top, left = max(size - h, 0) // 2, max(size - w, 0) // 2
    return F.pad(images, (left, max(size - w, 0) - left, top, max(size - h, 0) - top))

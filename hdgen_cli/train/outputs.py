"""Files a run or a sampling command writes: PNG grids and safetensors sample files."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from safetensors.torch import save_file
from PIL import Image

from hdgen_cli.data import from_model_range
from hdgen_cli.files import write_atomically


def grid_image(images: torch.Tensor, pixel_range: str, nrow: int | None = None) -> Image.Image:
    """Images (model range) as one about-square PIL grid; tiles under 32 px are enlarged."""
    u = from_model_range(images.detach().float().cpu(), pixel_range)
    n, c, h, w = u.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / nrow))
    pad = 1  # one-pixel white lines between tiles
    grid = torch.ones(c, rows * (h + pad) + pad, nrow * (w + pad) + pad)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, top:top + h, left:left + w] = u[i]
    pixels = (grid * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    image = Image.fromarray(pixels[..., 0] if c == 1 else pixels)
    scale = max(1, 32 // max(h, w))  # blow 8x8 digits up (nearest) so the grid is viewable
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    return image


def write_grid(images: torch.Tensor, pixel_range: str, path: str | Path, nrow: int | None = None) -> Path:
    """Save images (model range) as one PNG grid (`grid_image`)."""
    image = grid_image(images, pixel_range, nrow)
    return write_atomically(path, lambda tmp: image.save(tmp, format=Path(path).suffix.lstrip(".").upper() or "PNG"))


def write_samples(images: torch.Tensor, labels: torch.Tensor | None, pixel_range: str, path: str | Path,
                  metadata: dict[str, str]) -> Path:
    """Samples (model range in) as a safetensors file: `images` in [0, 1] (N, C, H, W), `labels` when conditional."""
    tensors = {"images": from_model_range(images.detach().float().cpu(), pixel_range).contiguous()}
    if labels is not None:
        tensors["labels"] = labels.detach().cpu().contiguous()
    return write_atomically(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))

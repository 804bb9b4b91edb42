"""`shapes`: a generated 32x32 RGB dataset with real class structure, for offline work at the papers'
resolution (the WRN and CLEL paths, cross-dataset OOD against `digits`).

Ten classes of filled shapes, each drawn at a random position, scale, rotation and colour on a
random two-colour gradient background with a little pixel noise:

    0 disk  1 square  2 triangle  3 ring  4 plus  5 star  6 crescent  7 frame  8 ellipse  9 two dots

Every image is a deterministic function of (split, index): the generator is seeded per split, so
the 10 000 training and 2 000 test images are the same on every machine and never overlap. Shapes
are rendered at 2x and averaged down (anti-aliased edges). Generation takes about a second; the
result is also cached as `shapes-v1.safetensors` in the data root when that folder is writable.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from hdgen_cli.config.schema import DataConfig
from hdgen_cli.data.imageset import ImageSet
from hdgen_cli.data.torchvision_sets import data_root
from hdgen_cli.files import write_atomically

CLASSES = ("disk", "square", "triangle", "ring", "plus", "star", "crescent", "frame", "ellipse", "two-dots")
SIZES = {"train": 10_000, "test": 2_000}
SEEDS = {"train": 20261128, "test": 7}  # separate streams: the test images are not drawn from the train sequence
SIDE, SUPER = 32, 2
VERSION = "v1"  # bump when the generator changes, so old caches are not read


def _mask(label: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Coverage of class `label`'s shape in its own frame (unit size, centred): bool [N, H, W]."""
    r = torch.sqrt(u * u + v * v)
    box = torch.maximum(u.abs(), v.abs())
    if label == 0:  # disk
        return r < 1.0
    if label == 1:  # square
        return box < 0.8
    if label == 2:  # equilateral triangle, circumradius 1
        return (v > -0.5) & (v < 1.0 - math.sqrt(3) * u.abs())
    if label == 3:  # ring
        return (r < 1.0) & (r > 0.6)
    if label == 4:  # plus
        return ((u.abs() < 0.3) & (v.abs() < 1.0)) | ((v.abs() < 0.3) & (u.abs() < 1.0))
    if label == 5:  # five-pointed star
        return r < 0.55 + 0.45 * torch.cos(5 * torch.atan2(v, u))
    if label == 6:  # crescent: a disk with an offset disk cut out
        return (r < 1.0) & (torch.sqrt((u - 0.45) ** 2 + v * v) > 0.75)
    if label == 7:  # square frame
        return (box < 0.9) & (box > 0.55)
    if label == 8:  # ellipse, axes 1 and 0.45
        return (u * u + (v / 0.45) ** 2) < 1.0
    return torch.sqrt((u.abs() - 0.55) ** 2 + v * v) < 0.4  # two dots


def _masks(label: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Float coverage [N, H, W] of each image's own class shape (each class drawn only where it occurs)."""
    out = torch.zeros_like(u)
    for c in range(len(CLASSES)):
        rows = label == c
        if rows.any():
            out[rows] = _mask(c, u[rows], v[rows]).float()
    return out


def _render(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images [n, 3, 32, 32], labels [n]) from one seeded generator, in chunks."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % len(CLASSES)
    labels = labels[torch.randperm(n, generator=gen)]
    side = SIDE * SUPER
    grid = (torch.arange(side, dtype=torch.float32) + 0.5) / side * 2 - 1  # pixel centres in [-1, 1]
    gy, gx = torch.meshgrid(grid, grid, indexing="ij")
    out = []
    for start in range(0, n, 1000):
        y = labels[start:start + 1000]
        m = len(y)

        def draw(*shape):
            return torch.rand(*shape, generator=gen)

        scale = 0.35 + 0.35 * draw(m)                  # shape radius: 35-70 % of the half-image
        cx = (draw(m) * 2 - 1) * (1 - scale) * 0.8       # centre: the shape stays inside the image
        cy = (draw(m) * 2 - 1) * (1 - scale) * 0.8
        angle = draw(m) * 2 * math.pi
        fg, bg1, bg2 = draw(m, 3), draw(m, 3), draw(m, 3)
        # keep the shape visible: push the foreground away from the background's mean colour
        bg_mean = (bg1 + bg2) / 2
        far = (fg - bg_mean).norm(dim=1, keepdim=True) < 0.5
        fg = torch.where(far, (1 - bg_mean).clamp(0, 1) * 0.8 + 0.1 * draw(m, 3), fg)
        dx, dy = gx - cx.view(-1, 1, 1), gy - cy.view(-1, 1, 1)
        c, s = torch.cos(angle).view(-1, 1, 1), torch.sin(angle).view(-1, 1, 1)
        u = (c * dx + s * dy) / scale.view(-1, 1, 1)
        v = (-s * dx + c * dy) / scale.view(-1, 1, 1)
        mask = _masks(y, u, v).unsqueeze(1)             # [m, 1, H, W]
        direction = draw(m) * 2 * math.pi             # background gradient direction
        t = (torch.cos(direction).view(-1, 1, 1) * gx + torch.sin(direction).view(-1, 1, 1) * gy + 1) / 2
        background = bg1.view(-1, 3, 1, 1) * (1 - t.unsqueeze(1)) + bg2.view(-1, 3, 1, 1) * t.unsqueeze(1)
        image = background * (1 - mask) + fg.view(-1, 3, 1, 1) * mask
        image = F.avg_pool2d(image, SUPER)             # anti-aliased edges
        image = image + 0.03 * torch.randn(image.shape, generator=gen)
        out.append((image.clamp(0, 1) * 255).round().to(torch.uint8))
    return torch.cat(out), labels


def _cache_path(cfg: DataConfig):
    return data_root(cfg) / f"shapes-{VERSION}.safetensors"


@lru_cache(maxsize=2)
def _generate(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    return _render(SIZES[split], SEEDS[split])


def _cached(cfg: DataConfig, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The split from the on-disk cache when it is there and whole, else generated (and cached when the
    data root is writable; a read-only root only costs the regeneration)."""
    path = _cache_path(cfg)
    if path.is_file():
        try:
            t = load_file(str(path))
            return t[f"{split}.images"], t[f"{split}.labels"]
        except (SafetensorError, KeyError, OSError):
            pass  # a damaged cache is rebuilt below
    tensors = {}
    for name in SIZES:
        images, labels = _generate(name)
        tensors[f"{name}.images"], tensors[f"{name}.labels"] = images, labels
    try:
        write_atomically(path, lambda tmp: save_file(tensors, str(tmp)))
    except OSError:
        pass
    return tensors[f"{split}.images"], tensors[f"{split}.labels"]


def load_shapes(cfg: DataConfig, split: str) -> ImageSet:
    """10 000 train / 2 000 test 32x32 RGB images of ten shape classes (see the module docstring)."""
    images, labels = _cached(cfg, split)
    # A shape mirrored is the same shape, so the standard horizontal flip is a fair augmentation.
    return ImageSet(images, labels.long(), num_classes=len(CLASSES), name="shapes", default_flip=True)

"""SimCLR strong augmentation ([CLEL] App. B), batched on float images in [0, 1].

Random resized crop (bicubic), colour jitter, grayscale and horizontal flip, each drawn per sample
from the global torch RNG of the batch's device, with no Python loop over samples.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from hdgen_cli.errors import UsageError

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601
CROP_TRIES = 10  # as torchvision's RandomResizedCrop


def luma(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, 1, H, W] grayscale; a 1-channel image is its own luma."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).unsqueeze(1)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] on dim -3 -> HSV with h, s, v in [0, 1] (h = 0 for gray pixels)."""
    r, g, b = x.unbind(-3)
    v, vi = x.max(-3)
    delta = v - x.min(-3).values
    s = torch.where(v > 0, delta / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(v))
    d = torch.where(delta > 0, delta, torch.ones_like(delta))  # h is defined as 0 where delta is 0
    # vi picks the sector formula; on ties between maxima the candidate formulas agree.
    h = torch.where(vi == 0, ((g - b) / d) % 6, torch.where(vi == 1, (b - r) / d + 2, (r - g) / d + 4))
    h = torch.where(delta > 0, h / 6, torch.zeros_like(h))
    return torch.stack((h, s, v), -3)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """HSV in [0, 1] on dim -3 -> RGB in [0, 1]."""
    h, s, v = x.unbind(-3)
    # Closed form per channel (n = 5, 3, 1 for r, g, b) avoids a six-way sector select.
    k = torch.stack([(n + 6 * h) % 6 for n in (5.0, 3.0, 1.0)], -3)
    w = torch.minimum(k, 4 - k).clamp(0, 1)
    return v.unsqueeze(-3) - (v * s).unsqueeze(-3) * w


def _brightness(x, f):
    return (x * f).clamp(0, 1)


def _contrast(x, f):
    mean = luma(x).mean(dim=(1, 2, 3), keepdim=True)
    return (f * x + (1 - f) * mean).clamp(0, 1)


def _saturation(x, f):
    if x.shape[1] == 1:
        return x
    return (f * x + (1 - f) * luma(x)).clamp(0, 1)


def _hue(x, f):
    if x.shape[1] == 1:
        return x
    hsv = rgb_to_hsv(x)
    hue = (hsv[:, :1] + f) % 1.0
    return hsv_to_rgb(torch.cat((hue, hsv[:, 1:]), 1)).clamp(0, 1)


_JITTER_OPS = (_brightness, _contrast, _saturation, _hue)


def color_jitter(x: torch.Tensor, b: torch.Tensor, c: torch.Tensor, s: torch.Tensor, h: torch.Tensor,
                 order: Sequence[int] | torch.Tensor = (0, 1, 2, 3)) -> torch.Tensor:
    """Brightness (0), contrast (1), saturation (2) and hue (3) with per-sample factors [B].

    order is one permutation of 0..3 for the whole batch, or a [B, 4] tensor of per-sample ones.
    """
    bsz = x.shape[0]
    order = torch.as_tensor(order, device=x.device).long().expand(bsz, 4)
    factors = [f.to(x).view(bsz, 1, 1, 1) for f in (b, c, s, h)]
    for k in range(4):
        # Every op runs on the whole batch and where() keeps it only for samples whose k-th op it
        # is: per-sample orders without a data-dependent sync (no .any(), no boolean indexing).
        for j, op in enumerate(_JITTER_OPS):
            sel = (order[:, k] == j).view(bsz, 1, 1, 1)
            x = torch.where(sel, op(x, factors[j]), x)
    return x


class StrongAugment:
    """SimCLR strong augmentation: float [B, C, H, W] in [0, 1] -> [B, C, size, size] in [0, 1].

    Crop boxes are continuous (sub-pixel), not rounded to whole pixels. Like torchvision, up to
    CROP_TRIES boxes are drawn per sample and the first that fits is used; a sample with none falls
    back to the central crop of the largest box whose aspect ratio lies in `ratio`. The jitter order
    is drawn per sample.
    """

    def __init__(self, size: int | None = None, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                 jitter=(0.4, 0.4, 0.4, 0.1), p_jitter=0.8, p_gray=0.2, p_flip=0.5):
        if size is not None and size < 1:
            raise UsageError(f"strong augmentation size must be >= 1, got {size}")
        if not (0 < scale[0] <= scale[1] <= 1) or not (0 < ratio[0] <= ratio[1]):
            raise UsageError(f"crop scale {scale} must be in (0, 1] and ratio {ratio} positive, each (low, high)")
        if min(jitter) < 0 or jitter[3] > 0.5:
            raise UsageError(f"jitter strengths {jitter} must be >= 0, with hue at most 0.5")
        if not all(0 <= p <= 1 for p in (p_jitter, p_gray, p_flip)):
            raise UsageError(f"probabilities ({p_jitter}, {p_gray}, {p_flip}) must be in [0, 1]")
        self.size, self.scale, self.ratio = size, tuple(map(float, scale)), tuple(map(float, ratio))
        self.jitter = tuple(map(float, jitter))
        self.p_jitter, self.p_gray, self.p_flip = float(p_jitter), float(p_gray), float(p_flip)

    def __repr__(self) -> str:
        return (f"StrongAugment(size={self.size}, scale={self.scale}, ratio={self.ratio}, jitter={self.jitter}, "
                f"p_jitter={self.p_jitter}, p_gray={self.p_gray}, p_flip={self.p_flip})")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: float [B, C, H, W] in [0, 1], C in {1, 3}. Returns [B, C, size, size] (size None = keep H) in [0, 1]."""
        if x.dim() != 4 or x.shape[1] not in (1, 3) or not x.is_floating_point():
            raise UsageError(f"strong augmentation needs a float [B, C, H, W] batch with C in (1, 3), got "
                             f"{tuple(x.shape)} {x.dtype}")
        bsz = x.shape[0]
        size = x.shape[2] if self.size is None else self.size
        if bsz == 0:
            return x.new_empty(0, x.shape[1], size, size)
        x = self._crop(x, size)
        x = self._jitter(x)
        if x.shape[1] == 3:
            gray = self._mask(bsz, self.p_gray, x)
            x = torch.where(gray, luma(x).expand_as(x), x)
        return torch.where(self._mask(bsz, self.p_flip, x), x.flip(3), x)

    @staticmethod
    def _mask(bsz: int, p: float, x: torch.Tensor) -> torch.Tensor:
        return (torch.rand(bsz, device=x.device) < p).view(bsz, 1, 1, 1)

    def _uniform(self, shape, lo: float, hi: float, x: torch.Tensor) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(shape, device=x.device, dtype=x.dtype)

    def _crop(self, x: torch.Tensor, size: int) -> torch.Tensor:
        bsz, c, height, width = x.shape
        shape = (bsz, CROP_TRIES)
        area = height * width * self._uniform(shape, *self.scale, x)
        aspect = torch.exp(self._uniform(shape, math.log(self.ratio[0]), math.log(self.ratio[1]), x))
        w, h = torch.sqrt(area * aspect), torch.sqrt(area / aspect)
        fits = (w <= width) & (h <= height)
        first = fits.int().argmax(1, keepdim=True)  # argmax returns the first maximum: the first fit
        w, h = w.gather(1, first).squeeze(1), h.gather(1, first).squeeze(1)
        # Fallback: the largest centred box with aspect ratio clamped into `ratio`.
        in_ratio = min(max(width / height, self.ratio[0]), self.ratio[1])
        fw, fh = min(width, height * in_ratio), min(height, width / in_ratio)
        ok = fits.any(1)
        w, h = torch.where(ok, w, torch.full_like(w, fw)), torch.where(ok, h, torch.full_like(h, fh))
        # Positions are drawn for every sample (a fixed RNG stream); fallback boxes are centred.
        u = torch.rand(2, bsz, device=x.device, dtype=x.dtype)
        u = torch.where(ok, u, torch.full_like(u, 0.5))
        x0, y0 = u[0] * (width - w), u[1] * (height - h)
        # affine_grid maps output [-1, 1] (pixel edges, align_corners=False) onto the box's edges.
        theta = torch.zeros(bsz, 2, 3, device=x.device, dtype=x.dtype)
        theta[:, 0, 0], theta[:, 0, 2] = w / width, (2 * x0 + w) / width - 1
        theta[:, 1, 1], theta[:, 1, 2] = h / height, (2 * y0 + h) / height - 1
        grid = F.affine_grid(theta, [bsz, c, size, size], align_corners=False)
        out = F.grid_sample(x, grid, mode="bicubic", padding_mode="border", align_corners=False)
        return out.clamp(0, 1)  # bicubic overshoots near edges

    def _jitter(self, x: torch.Tensor) -> torch.Tensor:
        bsz = x.shape[0]
        if self.p_jitter == 0:
            return x
        jb, jc, js, jh = self.jitter
        b = self._uniform(bsz, max(0.0, 1 - jb), 1 + jb, x)
        c = self._uniform(bsz, max(0.0, 1 - jc), 1 + jc, x)
        s = self._uniform(bsz, max(0.0, 1 - js), 1 + js, x)
        h = self._uniform(bsz, -jh, jh, x)
        order = torch.rand(bsz, 4, device=x.device).argsort(1)  # a uniform random permutation per sample
        apply = self._mask(bsz, self.p_jitter, x)
        return torch.where(apply, color_jitter(x, b, c, s, h, order), x)

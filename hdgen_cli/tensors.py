"""Flat state dicts: every part of a run saves its tensors under its own prefix (`model.`, `buffer.`,
`optim.state.<i>.`, ...), so one dict holds a whole run and each part reads its section back."""

from __future__ import annotations

import torch


def section(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of a flat state dict under `prefix.`, with the prefix removed."""
    p = prefix + "."
    return {k[len(p):]: v for k, v in state.items() if k.startswith(p)}

"""Image backbones for the hybrid EBM (docs/methods/shared.md): a registry plus WRN, a small CNN and an MLP."""

from hdgen_cli.models.registry import build_backbone, list_backbones, register_backbone
from hdgen_cli.models import clel, small, wrn  # noqa: F401,E402 - the built-in backbones register on import

__all__ = ["build_backbone", "list_backbones", "register_backbone"]

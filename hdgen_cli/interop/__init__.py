"""The official codes' checkpoints: read (tensors only) into hdgen runs, and written back."""

from hdgen_cli.interop.official import CODES, EXPORTABLE, OfficialCode, read_official

__all__ = ["CODES", "EXPORTABLE", "OfficialCode", "read_official"]

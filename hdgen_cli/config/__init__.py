"""Run configuration: pydantic schema, preset files and key=value overrides."""

from hdgen_cli.config.presets import list_presets, load_config, override_config, read_preset, valid_keys
from hdgen_cli.config.schema import RunConfig

__all__ = ["RunConfig", "list_presets", "load_config", "override_config", "read_preset", "valid_keys"]

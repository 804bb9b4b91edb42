"""Bench profiles: how `hdgen bench` scales each preset to a data size, without touching its maths.

`paper` runs the presets as they are. Every other profile is a TOML file in `presets/profiles/`
(see `small.toml`): an `[all]` table and one table per preset, each override written as
`"key" = { value = ..., why = "..." }`. A profile may only set keys that decide how long and how
big a run is; a key that would change a method's energy, sampler constants or loss is refused
when the profile is read, so no profile can make a claim hold by changing the method.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

from hdgen_cli.parts import load_config
from hdgen_cli.config.presets import presets_dir, valid_keys
from hdgen_cli.config.schema import RunConfig
from hdgen_cli.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

# What a profile may change: run length, sizes, the optimiser's schedule and how early the divergence
# guard calls a run diverged. Nothing under energy, the sampler's constants (steps, step size, noise,
# clamps, init) or the loss weights.
SCALE_KEYS = ("model.name", "model.width", "model.depth", "model.channels", "data.n_valid", "data.image_size",
              "sampler.buffer.size", "train.epochs", "train.max_iters", "train.log_every", "train.eval_every",
              "optim.lr", "optim.warmup_iters", "optim.decay_epochs", "objective.hdge.queue_size",
              "objective.gmmc.start_epoch", "objective.gmmc.ramp_epochs", "objective.clel.encoder_width",
              "objective.clel.ema_half_life", "objective.clel.ema_copy_iters", "output.grid_size",
              "train.guard.gap_limit", "train.guard.energy_limit")
BUILTIN = ("paper",)


@dataclass
class Profile:
    name: str
    common: dict[str, dict] = field(default_factory=dict)   # key -> {"value", "why"}
    per_preset: dict[str, dict[str, dict]] = field(default_factory=dict)

    def overrides(self, preset: str) -> dict[str, dict]:
        """key -> {"value", "why"} for one preset: [all], then the preset's own table on top."""
        return {**self.common, **self.per_preset.get(preset, {})}

    def config(self, preset: str, extra: list[str]) -> RunConfig:
        """The preset scaled by this profile, then the user's `key=value` overrides on top."""
        scaled = [f"{k}={json.dumps(v['value'])}" for k, v in self.overrides(preset).items()]
        return load_config(preset, scaled + list(extra))


def list_profiles() -> list[str]:
    folder = presets_dir() / "profiles"
    return sorted(set(BUILTIN) | {p.stem for p in folder.glob("*.toml")} if folder.is_dir() else set(BUILTIN))


def load_profile(name: str) -> Profile:
    """A profile by name; one UsageError for an unknown name or a key a profile may not set."""
    if name == "paper":
        return Profile("paper")
    path = presets_dir() / "profiles" / f"{name}.toml"
    if not path.is_file():
        raise UsageError(f"unknown profile '{name}'; use one of {', '.join(list_profiles())}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"profile file {path} is not valid TOML: {exc}") from None
    known = set(valid_keys())
    tables: dict[str, dict[str, dict]] = {}
    for table, entries in raw.items():
        if not isinstance(entries, dict):
            raise UsageError(f"profile {name}: [{table}] must be a table of overrides")
        for key, entry in entries.items():
            if not (isinstance(entry, dict) and "value" in entry and isinstance(entry.get("why"), str) and entry["why"]):
                raise UsageError(f"profile {name}: [{table}] {key} needs {{ value = ..., why = \"reason\" }}")
            if key not in known:
                raise UsageError(f"profile {name}: [{table}] {key} is not a config key")
            if key not in SCALE_KEYS:
                raise UsageError(f"profile {name}: [{table}] {key} would change the method, not its scale; "
                                 f"a profile may set only {', '.join(SCALE_KEYS)}")
        tables[table] = entries
    return Profile(name, tables.pop("all", {}), tables)

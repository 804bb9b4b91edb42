"""Preset files (TOML in `presets/`) plus `key=value` overrides -> one validated RunConfig.

Flow (docs/architecture.md): preset file -> `extends` chain -> overrides -> pydantic.
A preset may `extends = "other"` to state only what differs from another preset.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from hdgen_cli.config.schema import RunConfig
from hdgen_cli.errors import UsageError, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


RENAMED = {"train.divergence_threshold": "train.guard.loss_limit"}


def presets_dir() -> Path:
    """Where preset files live: $HDGEN_PRESETS_DIR, the copy inside a wheel, or the source tree."""
    env = os.environ.get("HDGEN_PRESETS_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "presets", here.parent / "presets"):
        if candidate.is_dir():
            return candidate
    raise UsageError("no presets folder found; set HDGEN_PRESETS_DIR to the repository's presets/ folder")


def list_presets() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.toml"))


def _suggest(name: str, choices: list[str]) -> str:
    close = did_you_mean(name, choices)
    return f"did you mean '{close}'? " if close else ""


def read_preset(name: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The raw nested dict of a preset, with its `extends` chain merged in (child wins)."""
    path = presets_dir() / f"{name}.toml"
    if not path.is_file():
        names = list_presets()
        raise UsageError(f"unknown preset '{name}'; {_suggest(name, names)}(see `hdgen presets list`)")
    if name in _seen:
        raise UsageError(f"preset '{name}' extends itself through {' -> '.join(_seen)}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"preset file {path} is not valid TOML: {exc}") from None
    parent = raw.pop("extends", None)
    raw.setdefault("name", name)
    if parent is None:
        return raw
    base = read_preset(parent, _seen + (name,))
    base.pop("description", None)
    return _deep_merge(base, raw)


def _deep_merge(base: dict, top: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def valid_keys(model: type[BaseModel] = RunConfig, prefix: str = "") -> list[str]:
    """Every dotted key a user may override, e.g. `sampler.buffer.reinit`."""
    keys = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys.extend(valid_keys(ann, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def _allows_none(key: str) -> bool:
    model: type[BaseModel] = RunConfig
    *parents, leaf = key.split(".")
    for part in parents:
        model = model.model_fields[part].annotation
    return type(None) in typing.get_args(model.model_fields[leaf].annotation)


def parse_value(text: str, nullable: bool = True) -> Any:
    """`40` -> 40, `1e-4` -> 1e-4, `true` -> True, `[1,2]` -> [1, 2], `none` -> None, else the string.

    `none` stays the string "none" for fields that cannot be None (e.g. model.norm=none).
    """
    lowered = text.strip().lower()
    if lowered in ("none", "null") and nullable:
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    keys = valid_keys()
    for item in overrides:
        if "=" not in item:
            raise UsageError(f"override '{item}' is not key=value (e.g. optim.lr=1e-4)")
        key, value = item.split("=", 1)
        key = key.strip()
        if key in RENAMED:
            raise UsageError(f"config key '{key}' is now '{RENAMED[key]}'; write {RENAMED[key]}={value}")
        if key not in keys:
            raise UsageError(f"unknown config key '{key}'; {_suggest(key, keys)}(see `hdgen presets show NAME`)")
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = parse_value(value, _allows_none(key))
    return out


def validate(raw: dict[str, Any], source: str) -> RunConfig:
    """A RunConfig from a raw dict, or one UsageError naming the first bad key. The schema cannot
    know which parts are registered: `parts.load_config` checks those names too."""
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "config"
        if err["type"] == "extra_forbidden":
            raise UsageError(f"unknown config key '{loc}' in {source}; {_suggest(loc, valid_keys())}") from None
        got = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict) else ""
        raise UsageError(f"invalid value for {loc} in {source}: {err['msg']}{got}") from None
    return config


def load_config(preset: str, overrides: list[str] | None = None) -> RunConfig:
    """The validated config of `preset` with `key=value` overrides applied."""
    raw = apply_overrides(read_preset(preset), overrides or [])
    return validate(raw, f"preset '{preset}'" + (" with overrides" if overrides else ""))


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_differences(a: RunConfig, b: RunConfig, keys: tuple[str, ...]) -> list[str]:
    """`key: a -> b` for every setting under `keys` (a section like "model." or an exact key) that
    differs between two configs."""
    fa, fb = _flat(a.model_dump(mode="json")), _flat(b.model_dump(mode="json"))
    chosen = [k for k in fa if any(k == p or (p.endswith(".") and k.startswith(p)) for p in keys)]
    return [f"{k}: {fa[k]!r} -> {fb.get(k)!r}" for k in chosen if fa[k] != fb.get(k)]


def override_config(config: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply overrides to an existing config (e.g. one read from a checkpoint)."""
    if not overrides:
        return config
    return validate(apply_overrides(config.model_dump(mode="json"), overrides), "overrides")

"""One small registry type for every pluggable part (backbones, energies, inits, datasets, ...).

A registry maps names to builders; looking up an unknown name is a one-line UsageError that
names the config key, the closest valid name and every choice.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from hdgen_cli.errors import UsageError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, what: str, key: str):
        self.what, self.key = what, key  # e.g. "model", "model.name"
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T | None = None):
        """`registry.register("x", builder)`, or `@registry.register("x")` as a decorator."""
        if item is not None:
            self._add(name, item)
            return item

        def deco(fn: T) -> T:
            self._add(name, fn)
            return fn

        return deco

    def _add(self, name: str, item: T) -> None:
        # A silent overwrite would let two modules fight over one name; refuse it loudly.
        if name in self._items and self._items[name] is not item:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self._items[name] = item

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def get(self, name: str) -> T:
        names = self.names()
        if name not in self._items:
            close = did_you_mean(name, names)
            hint = f"; did you mean '{close}'?" if close else ""
            raise UsageError(f"unknown {self.what} '{name}'{hint} (set {self.key} to one of: {', '.join(names)})")
        return self._items[name]

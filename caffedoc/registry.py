"""One registry shape for everything kept by knowledge-base id (rules, and probes if
they want it): a decorator that registers, and the modules that hold the entries,
imported only when the registry is first read so `--help` stays fast."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries by name, from `modules` (imported on first read); `check` vets each name
    at registration, so a typo in an id fails at import, not in a user's report."""

    def __init__(self, modules: tuple[str, ...], check: Callable[[str], object] = str) -> None:
        self._modules = modules
        self._check = check
        self._entries: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            self._check(name)
            if name in self._entries and self._entries[name] is not entry:
                raise ValueError(f"{name} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def all(self) -> dict[str, T]:
        if not self._loaded:
            for module in self._modules:
                importlib.import_module(module)
            self._loaded = True
        return self._entries

    def get(self, name: str) -> T | None:
        return self.all().get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.all())

"""Name -> class registries for backends (translators, generators, judges, trainers).

Backends register themselves with a decorator; params name them. Modules that hold optional
heavy backends are imported lazily through ``lazy`` entries so that, e.g., vLLM is only
imported when a user asks for it.
"""

from __future__ import annotations

import importlib
from typing import Callable, Generic, TypeVar

from .errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, type[T]] = {}
        self._lazy: dict[str, str] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def deco(cls: type[T]) -> type[T]:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            cls.name = name  # type: ignore[attr-defined]
            self._items[name] = cls
            return cls
        return deco

    def lazy(self, name: str, module: str) -> None:
        """Declare that importing ``module`` registers ``name`` (imported on first use)."""
        self._lazy[name] = module

    def names(self) -> list[str]:
        return sorted(set(self._items) | set(self._lazy))

    def get(self, name: str, *, source: str | None = None, field: str | None = None) -> type[T]:
        if name not in self._items and name in self._lazy:
            importlib.import_module(self._lazy[name])
        if name not in self._items:
            raise UserError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}",
                            file=source, field=field)
        return self._items[name]

    def create(self, name: str, /, **options) -> T:
        return self.get(name)(**options)

"""Resolving model directories: an embedded model is a plain directory; a real model is a
pointer file (``polyrefusal_model.json``) naming a local path or hub id, so the pipeline's
artifacts stay small and DVC-trackable while any model works."""

from __future__ import annotations

import json
from pathlib import Path

POINTER = "polyrefusal_model.json"


def resolve_model(path: str | Path) -> str:
    path = Path(path)
    pointer = path / POINTER
    if pointer.exists():
        return json.loads(pointer.read_text(encoding="utf-8"))["path"]
    return str(path)


def model_backend(path: str | Path) -> str | None:
    """The generation backend a pointer names (audit models: ``audit_models.<name>.backend``),
    or None (use ``generation.backend``)."""
    pointer = Path(path) / POINTER
    if pointer.exists():
        return json.loads(pointer.read_text(encoding="utf-8")).get("backend")
    return None

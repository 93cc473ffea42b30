"""Resolving model directories: an embedded model is a plain directory; a real model is a
pointer file (``polyrefusal_model.json``) naming a local path or hub id, so the pipeline's
artifacts stay small and DVC-trackable while any model works."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

POINTER = "polyrefusal_model.json"


@dataclass(frozen=True)
class ModelRef:
    """What a model directory stands for: the directory itself (an embedded or trained model),
    or what its pointer names (``base_model.source`` / ``audit_models.<name>``): a local path or
    hub id, the revision to load it at (a hub branch, tag or commit; None: the default branch),
    and the generation backend that serves it (None: ``generation.backend``)."""

    path: str
    revision: str | None = None
    backend: str | None = None


def resolve(directory: str | Path) -> ModelRef:
    """The one reader of a model directory's pointer (see ``ModelRef``)."""
    pointer = Path(directory) / POINTER
    if not pointer.exists():
        return ModelRef(str(directory))
    named = json.loads(pointer.read_text(encoding="utf-8"))
    return ModelRef(named["path"], named.get("revision"), named.get("backend"))

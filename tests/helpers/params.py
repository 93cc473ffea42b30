"""Reading params as nested dicts, by a path of keys."""

from __future__ import annotations


def get(params: dict, path: tuple):
    """The value at ``path`` (keys from the top), e.g. ``get(p, ("dpo", "lora", "r"))``."""
    for k in path:
        params = params[k]
    return params

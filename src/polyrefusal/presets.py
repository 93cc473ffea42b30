"""Presets: small override files of params, applied to params.yaml in place.

A preset is ``configs/presets/NAME.yaml`` (beside params.yaml) holding only the keys it changes;
``extends: OTHER`` (or a list) applies other presets first. Applying merges a mapping key by key
and replaces any other value; an empty mapping replaces the whole value (``audit_models: {}``
removes the models a preset added). ``default`` holds the shipped value of every key any preset
sets and is always applied first, so presets compose on the shipped values (``ci rainbow``) and
the result never depends on the preset applied before.

params.yaml is rewritten in place (comments kept, via ruamel.yaml) rather than merged at read
time, so Snakemake (its config), DVC (its params) and every command read the same active values
from one file, and ``dvc params diff`` shows what a preset changed.
"""

from __future__ import annotations

import copy
import difflib
import json
from pathlib import Path

from .errors import UserError

#: Where presets live, relative to the params file's directory.
PRESETS_DIR = Path("configs") / "presets"
#: The preset that restores the shipped values (applied before any other).
DEFAULT = "default"


def presets_dir(params_path: str | Path) -> Path:
    return Path(params_path).resolve().parent / PRESETS_DIR


def available(directory: Path) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yaml"))


def _load_file(directory: Path, name: str) -> dict:
    import yaml

    path = directory / f"{name}.yaml"
    if not path.is_file():
        names = available(directory)
        close = difflib.get_close_matches(name, names, n=1)
        raise UserError(f"unknown preset {name!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                        + f" (available: {', '.join(names) or 'none'})", file=str(directory), field="preset")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserError(f"invalid YAML: {getattr(exc, 'problem', exc)}", file=str(path),
                        line=None if mark is None else mark.line + 1) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError("a preset must be a mapping of params keys", file=str(path))
    return data


def merge(target: dict, overrides: dict) -> None:
    """Set what ``overrides`` names in ``target``, recursing into mappings; an empty mapping
    replaces the whole value."""
    for key, value in overrides.items():
        if isinstance(value, dict) and value and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def resolve(directory: Path, name: str, _chain: tuple[str, ...] = ()) -> dict:
    """The overrides of preset ``name`` with everything it extends applied first."""
    if name in _chain:
        raise UserError(f"presets extend each other in a cycle: {' -> '.join((*_chain, name))}",
                        file=str(directory / f"{name}.yaml"), field="extends")
    data = _load_file(directory, name)
    parents = data.pop("extends", None) or []
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise UserError("extends must name a preset or a list of presets",
                        file=str(directory / f"{name}.yaml"), field="extends")
    out: dict = {}
    for parent in parents:
        merge(out, resolve(directory, parent, (*_chain, name)))
    merge(out, data)
    return out


def apply_preset(params_path: str | Path, *names: str) -> None:
    """Rewrite ``params_path`` with the shipped values, then each named preset, in order."""
    from ruamel.yaml import YAML

    from .io import atomic_path
    from .params import validate_params

    if not names:
        raise UserError("name at least one preset", field="preset")
    directory = presets_dir(params_path)
    overrides = [resolve(directory, name) for name in dict.fromkeys(
        ([DEFAULT] if (directory / f"{DEFAULT}.yaml").is_file() else []) + list(names))]
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 100
    # Keep `null` spelled out (ruamel writes an empty value by default).
    yaml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
    with open(params_path, encoding="utf-8") as fh:
        doc = yaml.load(fh)
    for values in overrides:
        merge(doc, values)
    doc["preset"] = "+".join(names)
    # Checked as a whole before anything is written: a preset naming an unknown key, or making
    # params invalid, leaves params.yaml as it was.
    validate_params(json.loads(json.dumps(doc)), source=str(params_path))
    with atomic_path(params_path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        yaml.dump(doc, fh)

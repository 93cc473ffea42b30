"""Command `preset`: apply presets from params.yaml's `presets:` block in place.

    polyrefusal preset ci            # the shipped values, then the ci preset's
    polyrefusal preset ci rainbow    # presets compose, in order

`default` (the shipped values of every key any preset sets) is applied first, so the result
does not depend on which preset was active before. The keys are rewritten at the top level
(comments kept, via ruamel.yaml), so Snakemake and DVC read the same active values.
"""

from __future__ import annotations

from ..errors import UserError


def add_arguments(p):
    p.add_argument("names", nargs="+", metavar="NAME", help="preset name(s) (see `presets:` in params.yaml)")
    p.add_argument("--params", default="params.yaml")


def _merge(target, overrides):
    """Set what `overrides` names, recursing into mappings; an empty mapping replaces the
    whole value (so `audit_models: {}` removes the models a preset added)."""
    for key, value in overrides.items():
        if isinstance(value, dict) and value and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def apply_preset(path: str, *names: str) -> None:
    from ruamel.yaml import YAML

    from ..io import atomic_path
    from ..params import validate_params

    import copy

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 100
    # Keep `null` spelled out (ruamel writes an empty value by default).
    yaml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
    with open(path, encoding="utf-8") as fh:
        doc = yaml.load(fh)
    presets = doc.get("presets") or {}
    for name in names:
        if name not in presets:
            raise UserError(f"unknown preset {name!r}; available: {', '.join(presets)}", file=path, field="presets")
    base = ["default"] if "default" in presets else []  # the shipped values, where declared
    for name in dict.fromkeys([*base, *names]):
        _merge(doc, copy.deepcopy(dict(presets[name])))  # copies: no YAML anchors
    doc["preset"] = "+".join(names)
    import json
    validate_params(json.loads(json.dumps(doc)), source=path)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        yaml.dump(doc, fh)


def run(args):
    apply_preset(args.params, *args.names)
    print(f"params: preset {'+'.join(args.names)!r} applied to {args.params}")

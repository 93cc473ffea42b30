"""Loading and validating params.yaml (the same file Snakemake validates as its config)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import difflib

import yaml

from .errors import UserError

SCHEMA = Path(__file__).resolve().parent / "schemas" / "params.schema.yaml"


def load_params(path: str | Path = "params.yaml") -> dict:
    path = Path(path)
    if not path.exists():
        raise UserError("params file not found", file=str(path))
    try:
        with open(path, encoding="utf-8") as fh:
            params = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise UserError(f"invalid YAML: {getattr(exc, 'problem', exc)}", file=str(path),
                        line=None if line is None else line + 1) from None
    validate_params(params, source=str(path))
    return params


def _yaml_line(path: str, dotted: list) -> int | None:
    """Best-effort line number of a key path in a YAML file (for error messages)."""
    try:
        node = yaml.compose(open(path, encoding="utf-8"))
        for key in dotted:
            if isinstance(node, yaml.MappingNode):
                node = next(v for k, v in node.value if k.value == str(key))
            elif isinstance(node, yaml.SequenceNode):
                node = node.value[int(key)]
        return node.start_mark.line + 1
    except Exception:
        return None


def validate_params(params: Any, source: str = "params.yaml") -> None:
    """JSON-schema validation plus the cross-field checks a schema cannot express."""
    import jsonschema
    with open(SCHEMA, encoding="utf-8") as fh:
        schema = yaml.safe_load(fh)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        path = list(err.absolute_path)
        message = err.message
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            # name the unexpected key itself, not only its parent
            allowed = set(err.schema.get("properties", {}))
            extra = sorted(k for k in err.instance if k not in allowed)
            if extra:
                path.append(extra[0])
                close = difflib.get_close_matches(extra[0], sorted(allowed), n=1)
                message = (f"unknown key {extra[0]!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                           + f" (allowed: {', '.join(sorted(allowed))})")
        if err.validator in ("oneOf", "anyOf") and isinstance(err.schema, dict) and err.schema.get("description"):
            message += f" (expected {err.schema['description']})"
        raise UserError(message, file=source, line=_yaml_line(source, path),
                        field=".".join(map(str, path)) or None)
    langs = params["languages"]
    for name in params["train_configs"]:
        if name not in params["config_defs"]:
            raise UserError(f"unknown training configuration {name!r}; define it under config_defs",
                            file=source, line=_yaml_line(source, ["train_configs"]), field="train_configs")
        if not config_languages(params, name):
            raise UserError(f"training configuration {name!r} has no data: none of its languages "
                            f"is in `languages` ({', '.join(langs)})", file=source,
                            line=_yaml_line(source, ["config_defs", name]), field=f"config_defs.{name}")
    if params["source_language"] not in langs:
        raise UserError("source_language must be one of `languages`", file=source,
                        line=_yaml_line(source, ["source_language"]), field="source_language")


def config_languages(params: dict, name: str) -> list[str]:
    """The languages a training configuration trains on (definition intersected with `languages`)."""
    spec = params["config_defs"][name]
    if isinstance(spec, dict):  # {langs, groups, strategies, ...}
        spec = spec.get("langs", "all")
    langs = params["languages"]
    if spec == "all":
        return list(langs)
    return [lang for lang in langs if lang in spec]

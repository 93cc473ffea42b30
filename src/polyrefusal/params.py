"""Loading and validating params.yaml: the one validation every reader of params goes through.

Every `polyrefusal` command that reads params, the Snakefile at parse time (it replaces
Snakemake's own config loading with ``load_params``) and DVC (its first stage, ``validate``)
call ``load_params``, so a bad params file fails the same way everywhere, before any job
starts and before any output is touched: one ``UserError`` naming the file, line and key.

What is checked:

* YAML as users write it: numbers by YAML 1.2's rules (``1e-6`` is a float, as in DVC's own
  YAML 1.2 reader, where PyYAML's YAML 1.1 rules read it as a string); a key given twice in
  one mapping is an error (YAML says keys are unique; PyYAML keeps the last one silently);
* the JSON schema (``schemas/params.schema.yaml``): every key of every section known, types,
  ranges and enums; an unknown key is named with a "did you mean";
* the cross-field rules a schema cannot express (``cross_checks``);
* with ``training=True`` (``polyrefusal validate``, DVC's first stage; ``train``; the
  Snakefile's ``onstart``, before the first job), the ``dpo:`` block through TRL's own
  ``DPOConfig`` (``check_dpo``), which knows every training setting.

Defaults are stated once, as ``default:`` in the schema: ``with_defaults`` gives the params (or
one block) with every absent key that has one filled in, and ``default(key)`` one of them.
Commands read their settings through it, so no module restates a default.

``flag(key)`` gives an argparse ``type=`` for a stage flag that carries a params value, checked
by that key's schema: a flag and its params key accept exactly the same values.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import yaml

from .errors import UserError

SCHEMA = Path(__file__).resolve().parent / "schemas" / "params.schema.yaml"
#: Pipeline outputs: a params path under here is made by the run, so it may not exist yet.
OUTPUTS_DIR = "results/"

_FLOAT = "tag:yaml.org,2002:float"


class Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 (core schema) floats: ``1e-6``, ``1E3`` and ``.5``
    are floats, as every YAML 1.2 reader (DVC's ruamel.yaml) sees them."""


Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _FLOAT]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
# Added after the int resolver, so a plain "13" still resolves to an int first.
Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


def _check_duplicates(node: yaml.Node, source: str, path: tuple = ()) -> None:
    """A key given twice in one mapping, named with the line of its second occurrence."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else str(key.value)
            here = ".".join(map(str, path + (name,)))
            if name in seen:
                raise UserError(f"duplicate key (first given at line {seen[name]})", file=source,
                                line=key.start_mark.line + 1, field=here)
            seen[name] = key.start_mark.line + 1
            _check_duplicates(value, source, path + (name,))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicates(item, source, path + (i,))


def load_yaml(path: str | Path) -> tuple[Any, yaml.Node | None]:
    """(data, composed node tree) of a YAML file, with YAML 1.2 numbers and unique keys."""
    path = Path(path)
    if not path.exists():
        raise UserError("params file not found", file=str(path))
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is not content
    except UnicodeDecodeError as exc:
        raise UserError(f"invalid UTF-8 at byte {exc.start}", file=str(path)) from None
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_duplicates(node, str(path))
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserError(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", file=str(path),
                        line=None if mark is None else mark.line + 1) from None
    finally:
        loader.dispose()
    return data, node


def load_params(path: str | Path = "params.yaml", *, training: bool = False) -> dict:
    """The params file, validated (see the module docstring), as the user wrote it (no defaults
    filled: see ``with_defaults``); a UserError otherwise. ``training`` also checks the ``dpo:``
    block through TRL (seconds: it imports torch), for the callers that run before training."""
    params, node = load_yaml(path)
    validate_params(params, source=str(path), node=node, training=training)
    return params


def _node_line(node: yaml.Node | None, dotted: list) -> int | None:
    """Line of a key path in a composed YAML tree: the key itself for a mapping entry, the
    deepest existing ancestor when the path does not exist (a missing required key)."""
    line = None if node is None else node.start_mark.line + 1
    for key in dotted:
        if isinstance(node, yaml.MappingNode):
            hit = next(((k, v) for k, v in node.value if k.value == str(key)), None)
            if hit is None:
                return line
            line, node = hit[0].start_mark.line + 1, hit[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def yaml_line(path: str | Path | None, dotted: list) -> int | None:
    """Best-effort line number of a key path in a YAML file, for error messages: None when the
    file is missing or unreadable or the path is not in it."""
    try:
        with open(path, encoding="utf-8-sig") as fh:  # type: ignore[arg-type]
            return _node_line(yaml.compose(fh, Loader=Loader), list(dotted))
    except Exception:  # an unreadable file: the message goes without a line
        return None


@lru_cache(maxsize=1)
def _schema() -> dict:
    with open(SCHEMA, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=Loader)


def _validator(schema: dict | None = None):
    import jsonschema

    root = _schema()
    if schema is None:
        return jsonschema.Draft202012Validator(root)
    # a sub-schema keeps its $refs into the root's definitions
    return jsonschema.Draft202012Validator({**schema, "definitions": root["definitions"]})


def _describe(err) -> tuple[list, str]:
    """(key path, message) of one schema error, in the user's terms."""
    from jsonschema.exceptions import best_match

    path = list(err.absolute_path)
    if err.validator in ("oneOf", "anyOf") and err.context:
        # The alternative the value was meant for names the real problem: not the branches of
        # another type, nor a constant ("all") when a mapping or list was given.
        meant = [e for e in err.context if e.validator != "type" or list(e.absolute_path) != path]
        if len(meant) > 1:
            meant = [e for e in meant if e.validator != "const"] or meant
        if meant:
            inner = best_match(meant)
            if list(inner.absolute_path) != path or inner.validator != "const":
                return _describe(inner)
        message = err.message
        description = err.schema.get("description") if isinstance(err.schema, dict) else None
        if description:
            message = f"{err.instance!r} is not valid (expected {description})"
        return path, message
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(k for k in err.instance if k not in allowed)
        if extra:
            close = difflib.get_close_matches(str(extra[0]), allowed, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            return path + [extra[0]], f"unknown key {extra[0]!r}{hint} (known: {', '.join(allowed)})"
    if err.validator == "propertyNames":
        return path, f"{err.instance!r}: names are lower-case letters, digits and _ (starting with a letter)"
    return path, err.message


def validate_params(params: Any, source: str = "params.yaml", node: yaml.Node | None = None,
                    training: bool = False) -> None:
    """JSON-schema validation plus the cross-field checks a schema cannot express, and with
    ``training`` the ``dpo:`` block through TRL's DPOConfig. ``node`` (the composed file) gives
    the lines; without it the file ``source`` is read for them."""
    def line_of(path: list) -> int | None:
        return _node_line(node, path) if node is not None else yaml_line(source, path)

    if not isinstance(params, dict):
        raise UserError("params must be a mapping of sections", file=source, line=1)
    errors = list(_validator().iter_errors(params))
    # A misspelt required key is both missing and unknown: name the unknown key (did you mean)
    unknown_in = {tuple(e.absolute_path) for e in errors if e.validator == "additionalProperties"}
    errors = [e for e in errors if not (e.validator == "required" and tuple(e.absolute_path) in unknown_in)]
    if errors:
        described = [_describe(e) for e in errors]
        # the first problem in the file, as a reader meets it
        path, message = min(described, key=lambda pm: (line_of(pm[0]) or 0, len(pm[0])))
        raise UserError(message, file=source, line=line_of(path), field=".".join(map(str, path)) or None)
    problems = cross_checks(params, base=Path(source).parent)
    if training and not problems:
        problems = [(["dpo", *key], message) for key, message in check_dpo(params["dpo"])]
    for path, message in problems:
        # the line is the list entry's; the field is the key (the message names the entry)
        field = ".".join(str(p) for p in path if not isinstance(p, int))
        raise UserError(message, file=source, line=line_of(path), field=field)


def check_dpo(dpo: dict) -> list[tuple[list, str]]:
    """(key path within ``dpo``, message) of what TRL's ``DPOConfig`` refuses in a ``dpo:`` block:
    the block is turned into the very DPOConfig arguments training builds
    (``training.dpo.dpo_arguments``), on CPU, with a temporary output directory, and built.
    An unknown ``trl_args`` field, a repeated one, an unknown scheduler or optimizer, loss
    weights that do not match the losses... are refused here, before any job runs.
    TRL (and torch) are imported only here; what the imports put into the environment
    (torch sets TORCHINDUCTOR_CACHE_DIR) is taken back, so the jobs Snakemake starts after its
    onstart check see the environment they always saw."""
    import os

    settings = with_defaults(dpo, "dpo")
    given = {**{(k,): v for k, v in dpo.items() if k != "trl_args"},
             **{("trl_args", k): v for k, v in (dpo.get("trl_args") or {}).items()}}
    environ = dict(os.environ)
    try:
        return _build_dpo_config(dpo, settings, given)
    finally:
        os.environ.clear()
        os.environ.update(environ)


def _build_dpo_config(dpo: dict, settings: dict, given: dict) -> list[tuple[list, str]]:
    """``check_dpo``'s work: DPOConfig built in a temporary directory, its refusal named."""
    import tempfile
    import warnings

    from .training.dpo import dpo_arguments

    with tempfile.TemporaryDirectory(prefix="polyrefusal-dpo-check.") as out, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # training shows TRL's warnings; a check repeats none
        from trl import DPOConfig

        try:
            DPOConfig(**dpo_arguments(settings, out, cuda=False))
        except (TypeError, ValueError) as exc:
            message = str(exc)
            if (unknown := re.search(r"unexpected keyword argument '(\w+)'", message)):
                import dataclasses

                fields = sorted(f.name for f in dataclasses.fields(DPOConfig) if f.init)
                close = difflib.get_close_matches(unknown[1], fields, n=1)
                where = f"trl_args.{unknown[1]}" if unknown[1] in (dpo.get("trl_args") or {}) else unknown[1]
                message = f"`{where}` is no DPOConfig field" + (
                    f"; did you mean {close[0]!r}?" if close else "")
            return [(list(_named_key(message, given)), f"{message} (TRL {_trl_version()} DPOConfig)")]
    return []


def _named_key(message: str, given: dict) -> tuple:
    """The ``dpo`` key an error of DPOConfig is about: the one it names, else the one whose value
    it quotes (``bogus is not a valid SchedulerType``), else the block itself."""
    def first(pattern_of) -> tuple | None:
        hits = [(m.start(), key) for key, value in given.items()
                if (pattern := pattern_of(key, value)) and (m := re.search(pattern, message))]
        return min(hits)[1] if hits else None

    return (first(lambda key, _: rf"(?<![\w.]){re.escape('.'.join(key))}(?!\w)")
            or first(lambda _, value: isinstance(value, str) and rf"(?<!\w){re.escape(value)}(?!\w)")
            or ())


def _trl_version() -> str:
    from importlib.metadata import version

    return version("trl")


def _local_missing(value: str, base: Path) -> bool:
    p = Path(value).expanduser()
    return not (p if p.is_absolute() else base / p).exists()


def _model_problem(path: str, base: Path) -> str | None:
    """Why a model path cannot be used: a local path (not a hub id) that does not exist.
    Paths under results/ are made by the pipeline itself."""
    from .generate.identity import looks_like_path

    if path.startswith(OUTPUTS_DIR) or not looks_like_path(path) or not _local_missing(path, base):
        return None
    return f"model directory not found: {path}"


def _data_problem(source: str, base: Path) -> str | None:
    """Why a corpus source cannot be read: a local file (not a hub dataset id) that does not
    exist (the importers' rule for telling the two apart)."""
    from .corpus.readers import _HUB_ID, FILE_SUFFIXES

    if source == "builtin" or source.startswith(("hub:", "hf:", OUTPUTS_DIR)) or not _local_missing(source, base):
        return None
    if Path(source).suffix.lower() in FILE_SUFFIXES or not _HUB_ID.fullmatch(source):
        return f"file not found: {source}"
    return None


def cross_checks(params: dict, base: Path = Path(".")) -> list[tuple[list, str]]:
    """(key path, message) of every rule across fields; ``base`` is where relative local
    paths are resolved (the params file's directory, where the commands run)."""
    from .judges.base import JUDGES
    from .judges.ensemble import check_plan

    problems: list[tuple[list, str]] = []
    params = with_defaults(params)
    langs = params["languages"]
    if params["source_language"] not in langs:
        problems.append((["source_language"], f"{params['source_language']!r} must be one of `languages` "
                                              f"({', '.join(langs)})"))
    for i, name in enumerate(params["train_configs"]):
        if config_definition(params, name) is None:
            known = list(params["config_defs"]) + [SINGLE_PREFIX + lang for lang in langs]
            close = difflib.get_close_matches(name, known, n=1)
            problems.append((["train_configs", i], f"unknown training configuration {name!r}"
                             + (f"; did you mean {close[0]!r}?" if close else "; define it under config_defs")))
        elif not config_languages(params, name):
            where = ["config_defs", name] if name in params["config_defs"] else ["train_configs", i]
            problems.append((where, f"training configuration {name!r} has no data: none of its "
                             f"languages is in `languages` ({', '.join(langs)})"))
    audit = params.get("audit_models") or {}
    for name, spec in audit.items():
        if name == "base" or name in params["train_configs"]:
            problems.append((["audit_models", name], f"audit model {name!r} has the name of "
                             + ("the base model" if name == "base" else "a training configuration")))
        if (why := _model_problem(spec["path"], base)):
            problems.append((["audit_models", name, "path"], why))
    source = params["base_model"]["source"]
    if source != "embedded" and (why := _model_problem(source, base)):
        problems.append((["base_model", "source"], why))
    corpus = params["corpus"]
    if (why := _data_problem(corpus["source"], base)):
        problems.append((["corpus", "source"], why))
    if corpus["source"] != "builtin":
        from .corpus.layouts import resolve_mapping  # the corpus stage's own reading of them
        try:
            resolve_mapping(corpus.get("layout"), corpus.get("columns"), corpus.get("defaults"))
        except UserError as exc:
            problems.append(((exc.field or "corpus").split("."), exc.message))
    for i, extra in enumerate(corpus.get("include") or []):
        if not extra.startswith(OUTPUTS_DIR) and _local_missing(extra, base):
            problems.append((["corpus", "include", i], f"file not found: {extra}"))
    judge_audit = params["report"]["judge_audit"]
    if judge_audit and _local_missing(judge_audit, base):
        problems.append((["report", "judge_audit"], f"file not found: {judge_audit} (write it with `polyrefusal "
                                                    "judge --audit-import REVIEWED.csv --audit-report FILE.json`, or "
                                                    "`--reference mijabench SOURCE OUT --audit-report FILE.json`)"))
    for section, role in (("respond", "chosen_model"), ("respond", "rejected_model"),
                          ("rainbow", "mutator"), ("rainbow", "target")):
        spec = (params.get(section) or {}).get(role)
        if spec and (why := _model_problem(spec["path"], base)):
            problems.append(([section, role, "path"], why))
    from .generate.base import GENERATORS
    from .translate.base import TRANSLATORS

    # Backends are named in their registries (a plugin may register more), not in the schema.
    generation_backends = [(["generation", "backend"], params["generation"]["backend"])]
    generation_backends += [(["audit_models", name, "backend"], spec.get("backend")) for name, spec in audit.items()]
    roles = [("respond", "chosen_model"), ("respond", "rejected_model")]
    if (params.get("rainbow") or {}).get("enabled"):  # a disabled search loads no model
        roles += [("rainbow", "mutator"), ("rainbow", "target")]
    generation_backends += [([section, role, "backend"], ((params.get(section) or {}).get(role) or {}).get("backend"))
                            for section, role in roles]
    generation_backends += [(["judge", "options", name, "backend"], opts.get("backend"))
                            for name, opts in (params["judge"]["options"] or {}).items() if isinstance(opts, dict)]
    for path, name in generation_backends:
        if name is not None and name not in GENERATORS.names():
            close = difflib.get_close_matches(name, GENERATORS.names(), n=1)
            problems.append((path, f"unknown generation backend {name!r}"
                             + (f"; did you mean {close[0]!r}?" if close else "")
                             + f" (available: {', '.join(GENERATORS.names())})"))
    # Each model's `extra` holds only what its backend reads (Generator.known_extra).
    default_backend = params["generation"]["backend"]
    extras = [(["generation", "extra"], default_backend, params["generation"].get("extra"))]
    extras += [([section, role, "extra"], spec.get("backend") or default_backend, spec.get("extra"))
               for section, role in roles if isinstance(spec := (params.get(section) or {}).get(role), dict)]
    extras += [(["judge", "options", name, "extra"], opts.get("backend") or "transformers", opts.get("extra"))
               for name, opts in (params["judge"]["options"] or {}).items() if isinstance(opts, dict)]
    for path, backend, extra in extras:
        if not isinstance(extra, dict) or backend not in GENERATORS.names():
            continue
        problems += _unknown_keys(extra, GENERATORS.get(backend).known_extra, path,
                                  f"setting {{key!r}} of generation backend {backend!r}")
    translate = params["translate"]
    if translate["backend"] not in TRANSLATORS.names():
        close = difflib.get_close_matches(translate["backend"], TRANSLATORS.names(), n=1)
        problems.append((["translate", "backend"], f"unknown translate backend {translate['backend']!r}"
                         + (f"; did you mean {close[0]!r}?" if close else "")
                         + f" (available: {', '.join(TRANSLATORS.names())})"))
        known = None
    else:
        known = TRANSLATORS.get(translate["backend"]).known_options  # the backend declares its options
    problems += _unknown_keys(translate.get("options") or {}, known, ["translate", "options"],
                              f"option {{key!r}} of translate backend {translate['backend']!r}")
    rainbow_lang = (params.get("rainbow") or {}).get("lang")
    if rainbow_lang and rainbow_lang not in langs:
        problems.append((["rainbow", "lang"], f"{rainbow_lang!r} must be one of `languages`"))
    judge = params["judge"]
    options = judge["options"] or {}
    evaluate = params["evaluate"]
    for section, judges, rule, adjudicator in (
            ("judge", judge["judges"], judge["rule"], judge["adjudicator"]),
            ("evaluate", evaluate["judge"], evaluate["rule"], evaluate["adjudicator"])):
        try:
            check_plan(judges, rule, adjudicator, options)
        except UserError as exc:
            key = {"judge": "judges" if section == "judge" else "judge"}.get(exc.field or "", exc.field)
            where: list = [section, key]
            if isinstance(judges, list) and key in ("judges", "judge"):  # name the list entry
                where += [i for i, name in enumerate(judges) if repr(name) in exc.message][:1]
            problems.append((where, exc.message))
    problems += _judge_option_problems(options)
    rainbow = params["rainbow"]
    if rainbow["judge"] in JUDGES.names() and isinstance(rainbow["judge_options"], dict):
        problems += _unknown_judge_options(rainbow["judge"], rainbow["judge_options"], ["rainbow", "judge_options"])
    for name, opts in options.items():
        if (opts or {}).get("backend") in ("transformers", "vllm") and isinstance(opts.get("path"), str) \
                and (why := _model_problem(opts["path"], base)):
            problems.append((["judge", "options", name, "path"], why))
    return problems


def _judge_option_problems(options: dict) -> list[tuple[list, str]]:
    """Each ``judge.options`` entry names a judge (or an instance of one: ``judge: KIND``) and
    only options that judge takes (its ``known_options``): a misspelt name or option would
    otherwise surface only when the judge is built, jobs later, or never for an entry no judge
    reads."""
    from .judges.base import JUDGES
    from .judges.ensemble import judge_kind

    known_judges = JUDGES.names()
    problems: list[tuple[list, str]] = []
    for name, opts in options.items():
        if not isinstance(opts, dict):
            continue
        kind = judge_kind(name, options)
        if kind not in known_judges:
            where = ["judge", "options", name] + (["judge"] if kind != name else [])
            close = difflib.get_close_matches(kind, known_judges, n=1)
            problems.append((where, f"unknown judge {kind!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                             + f" (judges: {', '.join(known_judges)}; an instance of one names it under `judge:`)"))
            continue
        problems += _unknown_judge_options(kind, {k: v for k, v in opts.items() if k != "judge"},
                                           ["judge", "options", name])
    return problems


def _unknown_judge_options(kind: str, options: dict, where: list) -> list[tuple[list, str]]:
    """The options in ``options`` that judge ``kind`` does not take (its ``known_options``)."""
    from .judges.base import JUDGES

    judge = JUDGES.get(kind)
    if judge.known_options is None:
        return []
    # the options only code passes (an injected generator) are no params
    return _unknown_keys(options, judge.known_options - judge.internal_options, where, f"option {{key!r}} of judge {kind!r}")


def _unknown_keys(given: dict, known: frozenset[str] | None, where: list, what: str) -> list[tuple[list, str]]:
    """A problem for each key of ``given`` outside ``known`` (None: anything goes), at
    ``where + [key]``: "unknown <what>; did you mean ...? (known: ...)"; ``what`` has a
    ``{key!r}`` placeholder."""
    if known is None:
        return []
    offered = sorted(known)
    problems = []
    for key in sorted(set(given) - known):
        close = difflib.get_close_matches(key, offered, n=1)
        problems.append(([*where, key], "unknown " + what.format(key=key)
                         + (f"; did you mean {close[0]!r}?" if close else "") + f" (known: {', '.join(offered) or 'none'})"))
    return problems


def snakemake_config(overrides: dict, path: str = "params.yaml") -> dict:
    """The Snakefile's config: params.yaml loaded and validated, with ``--config key=value``
    overrides (Snakemake's ``config`` before the file is read; called from the Snakefile only)
    applied and validated with the rest. A bad file prints its one-line error and exits with status 2: no traceback, no job."""
    import sys

    try:
        params = load_params(path)
        if overrides:
            from snakemake.utils import update_config  # --config merges key by key, as Snakemake's own

            update_config(params, overrides)
            validate_params(params, source=path)
    except UserError as exc:
        print(exc.format(), file=sys.stderr)
        raise SystemExit(2) from None
    return params


def snakemake_onstart(config: dict, path: str = "params.yaml") -> None:
    """The Snakefile's ``onstart:``: the ``dpo:`` block through TRL's DPOConfig (``check_dpo``).
    Snakemake calls it once the DAG is planned and before the first job, and not on a dry run
    or when nothing is to be done, so planning does not pay TRL's import (seconds: torch); a
    bad training setting prints its one-line error and exits with status 2 before any job."""
    import sys

    try:
        validate_params(config, source=path, training=True)
    except UserError as exc:
        print(exc.format(), file=sys.stderr)
        raise SystemExit(2) from None


#: ``single_<lang>``: a configuration every language of ``languages`` has without being listed.
SINGLE_PREFIX = "single_"


def config_definition(params: dict, name: str):
    """The definition of training configuration ``name``: its ``config_defs`` entry, or, for
    ``single_<lang>`` with ``<lang>`` a language code and no entry of its own, ``[<lang>]`` (it
    has data only where ``<lang>`` is in ``languages``). None for a name that is neither."""
    defs = params.get("config_defs") or {}
    if name in defs:
        return defs[name]
    lang = name[len(SINGLE_PREFIX):] if name.startswith(SINGLE_PREFIX) else None
    return [lang] if lang in key_schema("#/definitions/lang")["enum"] else None


def config_languages(params: dict, name: str) -> list[str]:
    """The languages a training configuration trains on (definition intersected with `languages`)."""
    spec = config_definition(params, name)
    if isinstance(spec, dict):  # {langs, groups, strategies, ...}
        spec = with_defaults(spec, CONFIG_DEF)["langs"]
    langs = params["languages"]
    if spec == "all":
        return list(langs)
    return [lang for lang in langs if lang in spec]


#: The schema of a mapping entry of ``config_defs`` (for ``with_defaults`` and ``key_schema``).
CONFIG_DEF = "#/definitions/config_def"


def _resolve(node: dict) -> dict:
    """A schema node with its ``$ref`` (into the root's definitions) followed; sibling keywords
    of the ``$ref`` (a ``default:``) win."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        target = _schema()
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def key_schema(dotted: str) -> dict:
    """The schema of one params key (``split.test_fraction``), or of a definition
    (``#/definitions/config_def``)."""
    if dotted.startswith("#/"):
        return _resolve({"$ref": dotted})
    node = _schema()
    for part in dotted.split("."):
        node = _resolve(node)["properties"][part]
    return node


def schema_problem(value: Any, dotted: str) -> tuple[list, str] | None:
    """(key path within ``value``, message) of the first way ``value`` breaks the schema of the
    params key ``dotted`` (or definition), in the user's terms; None when it fits."""
    err = next(iter(_validator(key_schema(dotted)).iter_errors(value)), None)
    return None if err is None else _describe(err)


_NO_DEFAULT = object()


def default(dotted: str) -> Any:
    """The schema's default of one params key (``report.truncate_answers``); KeyError if it has
    none. The one place a flag's help or a library function gets a params default from."""
    node = key_schema(dotted)
    if "default" not in node:
        raise KeyError(f"params key {dotted} has no default in {SCHEMA.name}")
    return copy.deepcopy(node["default"])


def with_defaults(value: Any, key: str | None = None) -> Any:
    """A copy of validated params (or of the block at ``key``, e.g. ``"dpo"``) with every absent
    key that has a schema ``default`` filled in, at every depth. An absent optional section
    with a default (``rainbow: {}``) is filled the same way; a given mapping whose key has a
    mapping default (``rainbow.mutator``) is merged over it key by key. The input is not changed."""
    return _fill(copy.deepcopy(value), _schema() if key is None else key_schema(key))


def _fill(value: Any, schema: dict) -> Any:
    schema = _resolve(schema)
    for part in schema.get("allOf", ()):
        value = _fill(value, part)
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for name, sub in props.items():
            sub_default = _resolve(sub).get("default", _NO_DEFAULT)
            if name not in value and sub_default is not _NO_DEFAULT:
                value[name] = copy.deepcopy(sub_default)
            elif isinstance(value.get(name), dict) and isinstance(sub_default, dict):
                value[name] = {**copy.deepcopy(sub_default), **value[name]}
            if name in value:
                value[name] = _fill(value[name], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name in value:
                if name not in props:
                    value[name] = _fill(value[name], extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        value = [_fill(v, schema["items"]) for v in value]
    return value


def flag(dotted: str) -> Callable[[str], Any]:
    """An argparse ``type=`` for a flag that carries the params key ``dotted``: the text is read
    as a YAML 1.2 scalar (as in params.yaml) and checked against that key's schema."""
    validator = _validator(key_schema(dotted))

    def parse(text: str) -> Any:
        try:
            value = yaml.load(text, Loader=Loader)
        except yaml.YAMLError:
            value = text
        err = next(iter(validator.iter_errors(value)), None)
        if err is not None:
            raise argparse.ArgumentTypeError(f"{text!r}: {_describe(err)[1]} (as params {dotted})")
        return value

    parse.__name__ = dotted  # argparse names the type in its messages
    return parse


# --- params.yaml split by key: what DVC's stages depend on --------------------------------
#: Where `polyrefusal validate --slices` writes params.yaml split by key (rules/validate.smk).
SLICE_DIR = "logs/params"
#: How deep a stage's params key may go: a section (`generation`) or one entry of a section
#: (`config_defs.balanced`, `judge.options`).
SLICE_DEPTH = 2


def slice_path(dotted: str, directory: str = SLICE_DIR) -> str:
    """The file holding the value of params key `dotted` (a section or one of its entries)."""
    if dotted.count(".") >= SLICE_DEPTH:
        raise UserError(f"params key {dotted!r} is {dotted.count('.') + 1} levels deep: a stage may depend "
                        f"on a section or one entry of it ({SLICE_DEPTH} levels)", file="src/polyrefusal/stage_inputs.py")
    return f"{directory}/{dotted}.json"


def slice_key(path: str, directory: str = SLICE_DIR) -> str | None:
    """The params key whose file `path` is (`slice_path`'s inverse), None for any other path."""
    prefix, suffix = directory + "/", ".json"
    if path.startswith(prefix) and path.endswith(suffix) and "/" not in path[len(prefix):]:
        return path[len(prefix):-len(suffix)]
    return None


def slices(params: dict) -> dict[str, str]:
    """params.yaml split by key: each section, and each entry of a section that is a mapping,
    as canonical JSON text (keys sorted), by dotted key.

    DVC parses a stage's params file once per stage, and the whole file each time: at 2,000
    stages that is most of a no-op `dvc status`, and it grows with the square of the grid (the
    grid's configurations are declared in params.yaml). A stage that depends on these small
    files instead costs DVC one hash lookup per key; a changed value changes the bytes of its
    file only, so exactly the stages that read that key rerun, as with `params:`."""
    out = {}
    for key, value in params.items():
        out[key] = _canonical(value)
        if isinstance(value, dict):
            for sub, subvalue in value.items():
                out[f"{key}.{sub}"] = _canonical(subvalue)
    return out


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, indent=1, default=str) + "\n"


def write_slices(params: dict, directory: str | Path = SLICE_DIR) -> int:
    """Write `slices(params)` under `directory`, each file only where its bytes change (so an
    unchanged key keeps its file's date), and remove the files of keys params no longer has.
    Returns the number of files."""
    from .io import sync_json_files

    wanted = {Path(slice_path(key, str(directory))).name: text for key, text in slices(params).items()}
    sync_json_files(directory, wanted)
    return len(wanted)

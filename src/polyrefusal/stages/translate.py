"""`polyrefusal translate`: translate a record file into one target language.

    polyrefusal translate --backend deepl --source en --target de IN OUT
    polyrefusal translate --params params.yaml --target de IN OUT   # backend etc. from params

Every text goes through the translation memory (``--memory``), so re-running, adding a language
or resuming after a quota error never pays for a text twice. Writes OUT (same records, fields
translated, originals in ``source_<field>``), a usage JSON (hits, misses, characters billed,
requests, quality flag counts) and a review JSONL of quality flags (written even when empty).
OUT is written last: its presence means the stage finished. A run that fails after the backend
billed something still writes the usage JSON (with ``failed``: the error), so what was paid
for is never unaccounted; a failure before any billed request leaves every file as it was.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ..errors import BackendError, UserError
from ..io import read_records, write_json, write_records
from ..translate import quality
from ..translate.base import TRANSLATORS
from ..translate.driver import merge_native, split_by_language, translate_records

log = logging.getLogger(__name__)

DEFAULT_MEMORY = "results/translation_memory"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN", help="records (JSONL or Parquet) with id and text")
    parser.add_argument("output", metavar="OUT", help="translated records (.jsonl or .parquet)")
    parser.add_argument("--params", metavar="PATH",
                        help="params.yaml: defaults for --backend, --memory and the backend "
                             "options (translate.*), and the languages language id chooses among")
    parser.add_argument("--backend",
                        help="memory (built-in; the default without --params) | deepl | transformers | none "
                             "(no machine translation: each language keeps the rows the corpus has in it)")
    parser.add_argument("--source", default="en", help="source language (default: en)")
    parser.add_argument("--target", required=True, help="target language")
    parser.add_argument("--memory", metavar="DIR",
                        help=f"translation memory directory (default: {DEFAULT_MEMORY})")
    parser.add_argument("--fields", default="text",
                        help="comma-separated fields to translate (default: text)")
    parser.add_argument("--options", default="{}", metavar="JSON",
                        help="backend options (JSON object), over those of --params")
    parser.add_argument("--usage", metavar="PATH",
                        help="usage JSON (default: <OUT stem>.usage.json beside OUT)")
    parser.add_argument("--review", metavar="PATH",
                        help="quality flags JSONL (default: <OUT stem>.review.jsonl beside OUT)")
    parser.add_argument("--back-translate", action="store_true",
                        help="back-translate into the source language and flag low chrF")
    parser.add_argument("--chrf-threshold", type=float, default=40.0,
                        help="flag back-translations under this chrF (default: 40)")
    parser.add_argument("--langid-languages",
                        help="comma-separated languages language identification chooses among "
                             "(default: params' languages, else the study's 12)")


def _parse_options(text: str) -> dict:
    try:
        options = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"invalid JSON: {exc.msg}", field="--options") from None
    if not isinstance(options, dict):
        raise UserError("must be a JSON object", field="--options")
    return options


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _write_failed_usage(path: Path, usage: dict | None, partial: dict | None, exc: UserError) -> None:
    """The usage of a run that failed: the forward translation's (``partial`` when it failed,
    else ``usage`` with the failed back-translation's under ``back_translation``), written only
    if some request was billed. It is also logged: a workflow manager removes the outputs of a
    failed job, the usage file with them (Snakemake does), but keeps its log."""
    if partial is None:
        return
    if usage is None:
        record = dict(partial)
    else:
        record = {**usage, "back_translation": {k: partial[k] for k in (
            "hits", "misses", "characters_billed", "requests")}}
    if not (partial.get("requests") or (usage or {}).get("requests")):
        return
    record["failed"] = exc.message
    write_json(path, record)
    log.warning("billed before the failure (also in %s): %s", path, json.dumps(record, sort_keys=True))


def run(args: argparse.Namespace) -> int:
    out_path = Path(args.output)
    usage_path = Path(args.usage) if args.usage else out_path.with_name(f"{out_path.stem}.usage.json")
    review_path = (Path(args.review) if args.review
                   else out_path.with_name(f"{out_path.stem}.review.jsonl"))
    config: dict = {}
    languages = quality.STUDY_LANGUAGES
    if args.params:
        from ..params import load_params
        params = load_params(args.params)
        config = params["translate"]
        languages = tuple(sorted(set(languages) | set(params["languages"])))
    backend = args.backend or config.get("backend", "memory")
    memory_dir = args.memory or config.get("memory_dir", DEFAULT_MEMORY)
    # The memory directory is a (persistent) DVC output: it exists even when nothing was
    # translated (source == target).
    Path(memory_dir).mkdir(parents=True, exist_ok=True)
    # Command-line options refine the params' ones (the pipeline passes none).
    options = {**(config.get("options") or {}), **_parse_options(args.options)}
    if args.langid_languages:
        languages = _split(args.langid_languages)
    fields = _split(args.fields)
    if not fields:
        raise UserError("no fields to translate", field="--fields")

    records = read_records(args.input, with_lines=True)
    to_translate, native = split_by_language(records, args.source, args.target)
    if not TRANSLATORS.get(backend, field="translate.backend").translates and args.source != args.target:
        to_translate = []  # backend none: each language keeps only the prompts the corpus has in it
    common = dict(backend=backend, memory_dir=memory_dir, options=options, fields=fields)
    usage: dict | None = None
    try:
        translated, usage = translate_records(to_translate, source=args.source, target=args.target,
                                              **common)
        translated = merge_native(translated, native)
        if native:
            usage["native"] = len(native)
        flags: list[dict] = []
        usage["flagged_langid"] = usage["flagged_chrf"] = 0
        if args.source != args.target:
            flags += quality.langid_flags(translated, fields, args.target, languages)
            usage["flagged_langid"] = len(flags)
            if args.back_translate:
                # Through the memory too: a re-run pays for no back-translation either.
                back, back_usage = translate_records(translated, source=args.target,
                                                     target=args.source, **common)
                chrf = quality.chrf_flags(translated, back, fields, args.chrf_threshold)
                flags += chrf
                usage["flagged_chrf"] = len(chrf)
                usage["back_translation"] = {k: back_usage[k] for k in (
                    "hits", "misses", "characters_billed", "requests")}
    except UserError as exc:
        _write_failed_usage(usage_path, usage, getattr(exc, "usage", None), exc)
        # Record-level errors (they carry a line) are about IN: name it.
        if exc.file is None and exc.line is not None and not isinstance(exc, BackendError):
            raise UserError(exc.message, file=args.input, line=exc.line, field=exc.field) from None
        raise

    log.info("translate %s->%s: %d flagged by language id, %d by back-translation chrF "
             "(review: %s)", args.source, args.target, usage["flagged_langid"],
             usage["flagged_chrf"], review_path)
    write_records(review_path, flags)
    write_json(usage_path, usage)
    write_records(out_path, translated)  # last: OUT existing means the stage completed
    return 0

"""The prompt corpus: schema, validation and loading.

One record per prompt. Validation reports *every* violation with file, line/row and field, and
raises before anything is written.
"""

from __future__ import annotations

from pathlib import Path

from . import seed as seed_data
from .errors import UserError
from .io import read_records

#: field -> (required, allowed types)
SCHEMA: dict[str, tuple[bool, tuple[type, ...]]] = {
    "id": (True, (str,)),
    "source_id": (True, (str,)),
    "lang": (True, (str,)),
    "text": (True, (str,)),
    "category": (True, (str,)),
    "style": (True, (str,)),
    "target_group": (False, (str, type(None))),
    "origin": (True, (str,)),
    "harmful": (True, (bool,)),
    "chosen": (False, (str, type(None))),
    "rejected": (False, (str, type(None))),
}
MAX_TEXT_CHARS = 20_000
KNOWN_LANGS = {"en", "de", "it", "fr", "es", "pt", "pl", "cs", "sk", "sl", "lt", "lv", "bg", "da", "el",
               "et", "fi", "ga", "hr", "hu", "mt", "nl", "ro", "sv", "hi", "th", "ru", "uk", "tr", "ar",
               "zh", "ja", "ko"}


class CorpusError(UserError):
    """Several violations at once; the message lists the first few."""

    def __init__(self, problems: list[UserError], file: str):
        self.problems = problems
        head = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(head.message + more, file=file, line=head.line, field=head.field)


def validate(records: list[dict], source: str) -> list[dict]:
    """Check every record; raise CorpusError listing all violations, else return clean records."""
    problems: list[UserError] = []
    seen: dict[str, int] = {}
    for i, rec in enumerate(records, start=1):
        line = rec.get("_line", i)
        for field, (required, types) in SCHEMA.items():
            if field not in rec or rec[field] is None:
                if required:
                    problems.append(UserError("missing required field", file=source, line=line, field=field))
                continue
            if not isinstance(rec[field], types):
                problems.append(UserError(f"expected {'/'.join(t.__name__ for t in types)}, "
                                          f"got {type(rec[field]).__name__}",
                                          file=source, line=line, field=field))
        text = rec.get("text")
        if isinstance(text, str):
            if not text.strip():
                problems.append(UserError("empty text", file=source, line=line, field="text"))
            elif len(text) > MAX_TEXT_CHARS:
                problems.append(UserError(f"text is {len(text):,} characters, over the {MAX_TEXT_CHARS:,} limit",
                                          file=source, line=line, field="text"))
        lang = rec.get("lang")
        if isinstance(lang, str) and lang not in KNOWN_LANGS:
            problems.append(UserError(f"unknown language code {lang!r}", file=source, line=line, field="lang"))
        rid = rec.get("id")
        if isinstance(rid, str):
            if rid in seen:
                problems.append(UserError(f"duplicate id {rid!r} (first at line {seen[rid]})",
                                          file=source, line=line, field="id"))
            seen.setdefault(rid, line)
    if problems:
        raise CorpusError(problems, file=source)
    return [{k: v for k, v in r.items() if k != "_line"} for r in records]


def load_corpus(source: str, lang: str, columns: dict | None = None) -> list[dict]:
    """The built-in seed set, or a user file (JSONL / CSV / Parquet) with a column mapping."""
    if source == "builtin":
        return validate(seed_data.source_records(lang), source="builtin seed set")
    path = Path(source)
    records = read_records(path, with_lines=True)
    if columns:
        records = [{columns.get(k, k): v for k, v in r.items()} for r in records]
    for r in records:
        r.setdefault("origin", f"file:{path.name}")
        r.setdefault("lang", lang)
        r.setdefault("source_id", r.get("id"))
        if isinstance(r.get("harmful"), str):
            r["harmful"] = r["harmful"].strip().lower() in ("1", "true", "yes")
    return validate(records, source=str(path))

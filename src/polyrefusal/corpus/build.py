"""Building the source corpus: the built-in seed set and its selection, imports, includes.

Sources (``corpus.source`` in params): ``builtin`` (the seed set of ``seed.py``, restricted by
``corpus.categories/styles/strategies/groups``), or anything ``readers`` reads (JSONL, CSV,
Parquet, a ``datasets`` directory saved with ``save_to_disk``, a directory in the hub's file
layout, a hub id), mapped through a layout (``layouts``) and normalised into the schema
(``schema``) by ``import_corpus``. ``corpus.include`` lists further files already in the corpus
schema (e.g. the ``rainbow`` stage's generated prompts) that are merged in; ids must stay unique
across all of them.

``import_corpus`` maps a source's columns onto the schema (the layout refined by
``corpus.columns``; ``corpus.defaults`` fills fields a file lacks), normalises every value, builds
missing ids from the file name and the row (``<name>.<row>``, then ``id = <source_id>.<lang>``)
and collects every problem (with file, line or row, and the user's column name) into one
``CorpusError`` raised before anything is written.

Imported corpora may hold several languages. Rows whose ``lang`` is not the source language
are kept as *pre-translated* rows (same ``source_id`` as their source-language row where the
import provides one). The translate stage for target T should translate only the rows with
``lang == source_language``, pass rows with ``lang == T`` through unchanged (they replace the
machine translation of the same ``source_id``), and skip rows of any other language.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from .. import seed as seed_data
from ..errors import UserError
from ..io import atomic_path, write_records
from ..params import yaml_line
from ..seed import SELECTION_AXES, seed_axes
from .layouts import LAYOUTS, PREPARE, SOURCE_ID_FROM, map_value, resolve_mapping
from .readers import Rows, read_any, read_rows
from .schema import EXTRA_FIELDS, FIELDS, SCHEMA, arrow_schema, meta_json, normalise_value, slug, validate

log = logging.getLogger(__name__)

#: Keys of the params `corpus:` block.
CORPUS_KEYS = frozenset({"source", "columns", "layout", "defaults", "include", "split", "subset",
                         "revision", *SELECTION_AXES})


def resolve_selection(cfg: dict, params_file: str | None = "params.yaml") -> dict[str, list[str]]:
    """``corpus.{categories,styles,strategies,groups}`` -> the selected seed keys per axis.

    A missing key, null or "all" selects every entry (the default); a list selects those
    entries, in the seed's order; an empty list switches that axis off. Unknown entries are an
    error naming the params field and the available keys."""
    available = seed_axes()
    selection: dict[str, list[str]] = {}
    for axis, (_, noun) in SELECTION_AXES.items():
        value = cfg.get(axis)
        if value is None or value == "all":
            selection[axis] = list(available[axis])
            continue
        where = dict(file=params_file, line=yaml_line(params_file, ["corpus", axis]), field=f"corpus.{axis}")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UserError(f"must be \"all\" or a list of {noun} keys", **where)
        unknown = [v for v in value if v not in available[axis]]
        if unknown:
            raise UserError(f"unknown {noun}(s) {', '.join(map(repr, unknown))}; the seed set has: "
                            f"{', '.join(available[axis])}", **where)
        dupes = sorted({v for v in value if value.count(v) > 1})
        if dupes:
            raise UserError(f"listed twice: {', '.join(dupes)}", **where)
        selection[axis] = [k for k in available[axis] if k in value]
    return selection


def select_builtin(records: list[dict], selection: dict[str, list[str]] | None) -> list[dict]:
    """The seed records on the selected cells (benign controls are always kept)."""
    if not selection:
        return records
    out = []
    for r in records:
        if not r["harmful"]:
            out.append(r)
        elif r.get("target_group"):
            if r["style"] in selection["strategies"] and r["target_group"] in selection["groups"]:
                out.append(r)
        elif r["style"] in selection["styles"] and r["category"] in selection["categories"]:
            out.append(r)
    return out


def builtin_records(lang: str, selection: dict[str, list[str]] | None = None) -> list[dict]:
    return validate(select_builtin(seed_data.source_records(lang), selection), source="builtin seed set")


# --- loading -------------------------------------------------------------------------------------

def load_corpus(source: str, lang: str, columns: dict | None = None, *, layout: str | None = None,
                defaults: dict | None = None, selection: dict[str, list[str]] | None = None,
                languages: list[str] | None = None, split: str | None = None,
                subset: str | None = None, revision: str | None = None,
                params_file: str | None = None) -> list[dict]:
    """The built-in seed set (restricted to ``selection``), or a user corpus imported with a
    layout and column mapping (see ``import_corpus``). ``lang`` is the source
    language (the language of rows that name none); ``languages`` (optional) keeps only rows in
    those languages."""
    if source == "builtin":
        return builtin_records(lang, selection)
    return import_corpus(source, lang=lang, columns=columns, layout=layout, defaults=defaults,
                         languages=languages, split=split, subset=subset, revision=revision,
                         params_file=params_file)


def check_corpus_params(cfg, params_file: str | None = "params.yaml") -> None:
    """Keys and shapes of the params ``corpus:`` block a JSON schema does not check."""
    if not isinstance(cfg, dict):
        raise UserError("must be a mapping", file=params_file, field="corpus")
    for key in cfg:
        if key not in CORPUS_KEYS:
            raise UserError(f"unknown key {key!r} (known: {', '.join(sorted(CORPUS_KEYS))})",
                            file=params_file, line=yaml_line(params_file, ["corpus", key]),
                            field=f"corpus.{key}")
    include = cfg.get("include") or []
    if not isinstance(include, list) or not all(isinstance(p, str) and p for p in include):
        raise UserError("must be a list of corpus files", file=params_file,
                        line=yaml_line(params_file, ["corpus", "include"]), field="corpus.include")


def read_corpus_file(path: str | Path) -> list[dict]:
    """A file already in the corpus schema (e.g. the rainbow stage's output), validated, with
    ``_file``/``_line`` kept for merge-time messages."""
    path = Path(path)
    rows, _ = read_rows(str(path))
    records = []
    for line, row in rows:
        rec = {k: row.get(k) for k in (*FIELDS, *EXTRA_FIELDS) if k in row}
        rec["_line"], rec["_file"] = line, str(path)
        records.append(rec)
    validate(records, source=str(path))
    return records


def merge(parts: list[tuple[str, list[dict]]]) -> list[dict]:
    """Concatenate corpora; ids must be unique across all of them (a violation names the file
    and line of both occurrences)."""
    tagged = []
    for source, records in parts:
        for i, r in enumerate(records, start=1):
            tagged.append({"_file": source, "_line": i, **r})
    return validate(tagged, source=parts[0][0] if parts else "corpus")


def corpus_from_params(params: dict, params_file: str | None = "params.yaml") -> list[dict]:
    """The source corpus the ``corpus`` stage writes: ``corpus.source`` (the built-in set
    restricted to the selected cells, or an import), then every ``corpus.include`` file."""
    cfg = params["corpus"]
    check_corpus_params(cfg, params_file)
    selection = resolve_selection(cfg, params_file)
    src = params["source_language"]
    records = load_corpus(cfg["source"], src, cfg.get("columns") or None, layout=cfg.get("layout"),
                          defaults=cfg.get("defaults"), selection=selection,
                          languages=params.get("languages"), split=cfg.get("split"),
                          subset=cfg.get("subset"), revision=cfg.get("revision"), params_file=params_file)
    parts = [(str(cfg["source"]), records)]
    for path in cfg.get("include") or []:
        parts.append((path, [{k: v for k, v in r.items() if k not in ("_line", "_file")}
                             for r in read_corpus_file(path)]))
    if len(parts) == 1:
        return records
    return merge(parts)


def write_corpus(path: str | Path, records: list[dict]) -> None:
    """Write records as Parquet with the corpus schema's column types (so an empty corpus, or
    one whose ``target_group`` is all null, still has typed columns and loads with
    ``datasets.load_dataset("parquet", ...)``); extra fields follow, types inferred. Atomic."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if path.suffix.lower() != ".parquet":
        write_records(path, records)
        return
    records = [{k: v for k, v in r.items() if not k.startswith("_")} for r in records]
    extra = list(dict.fromkeys(k for r in records for k in r if k not in SCHEMA))
    columns = {f: pa.array([r.get(f) for r in records], type=t)
               for f, t in zip(arrow_schema().names, arrow_schema().types)}
    for k in extra:
        columns[k] = pa.array([r.get(k) for r in records])
    table = pa.table(columns)
    with atomic_path(path, suffix=".parquet.tmp") as tmp:
        pq.write_table(table, tmp)


def import_corpus(source: str, *, lang: str, columns: dict | None = None, layout: str | None = None,
                  defaults: dict | None = None, languages: list[str] | None = None,
                  split: str | None = None, subset: str | None = None, revision: str | None = None,
                  params_file: str | None = None, rows: Rows | None = None) -> list[dict]:
    """Read ``source``, map and normalise it into the corpus schema, validate. ``lang`` is the
    language of rows that name none; ``languages`` (optional) keeps only rows in those
    languages (rows in other languages are dropped and counted in the log). ``rows``: the
    source as ``read_any`` read it, where the caller reads its other columns too; without
    ``languages`` the records are in the order of its rows, one each."""
    mapping, field_defaults = resolve_mapping(layout, columns, defaults, params_file)
    spec = LAYOUTS[layout or "custom"]
    if rows is None:
        rows = read_any(source, split=split, subset=subset, revision=revision)
    problems = list(rows.problems)
    label = rows.label

    prepare = PREPARE.get(spec.get("prepare"))
    if prepare is not None:
        for file_label, _, raw in rows.items:
            raw.update(prepare(raw, rows.parts.get(file_label, {}), rows.id_prefix))
        rows.add_columns(prepare({}, {}, rows.id_prefix))
    # A plain column the layout prefers feeds its field; where a row leaves it empty (a
    # configuration without that column), the layout's computed column does.
    user_fields = {f for f in (columns or {}).values() if f}
    fallback: dict[str, str] = {}
    for field, candidates in spec.get("prefer", {}).items():
        col = next((c for c in candidates if c in rows.columns), None)
        if col is not None and field not in user_fields:
            computed = next((c for c, f in mapping.items() if f == field), None)
            mapping = {c: (None if f == field else f) for c, f in mapping.items()}
            mapping[col] = field
            if computed is not None:
                fallback[field] = computed

    # Which of their columns feeds each field (an explicit mapping wins over a same-named column).
    feeds: dict[str, str] = {}
    for col in rows.columns:
        if (col in SCHEMA or col in EXTRA_FIELDS) and col not in mapping:
            feeds.setdefault(col, col)
    for col, field in mapping.items():
        if field and col in rows.columns:
            feeds[field] = col
    labels = {field: (col if col == field else f"{col} (-> {field})") for field, col in feeds.items()}
    explicit = set((columns or {}))
    for col, field in mapping.items():
        if field and col not in rows.columns and rows.items and feeds.get(field) is None:
            required = field in SCHEMA and SCHEMA[field][0] and field not in field_defaults and field not in (
                "id", "source_id", "lang", "origin")
            if col in explicit or required:
                problems.append(UserError(f"column {col!r} (mapped to {field}) is not in the data; "
                                          f"columns: {', '.join(rows.columns) or 'none'}",
                                          file=label, field=col))
    meta_cols = [c for c in spec.get("meta", ()) if c in rows.columns]
    dropped = [c for c in rows.columns if c not in feeds.values() and c not in meta_cols]
    if dropped:
        log.info("import %s: columns not used (not mapped to a corpus field): %s", label, ", ".join(dropped))
    # A layout's published ids map through its tables whichever column carries them.
    strict = spec.get("values", {})

    multi_split = len({f for f, _, _ in rows.items}) > 1
    built_ids: Counter = Counter()
    records: list[dict] = []
    for file_label, line, raw in rows.items:
        rec: dict = {"_line": line, "_file": file_label}
        for field, col in feeds.items():
            value = raw.get(col)
            if value is None and field in fallback:
                col, value = fallback[field], raw.get(fallback[field])
            try:
                if field in strict:
                    rec[field] = map_value(value, *strict[field])
                else:
                    rec[field] = normalise_value(field, value)
            except ValueError as exc:
                where = labels[field] if col == feeds[field] else f"{col} (-> {field})"
                problems.append(UserError(str(exc), file=file_label, line=line, field=where))
                rec[field] = value
                rec.setdefault("_skip", set()).add(field)
        if meta_cols and rec.get("meta") is None:
            rec["meta"] = meta_json({c: raw.get(c) for c in meta_cols})
        for field, value in field_defaults.items():
            if rec.get(field) is None:
                rec[field] = normalise_value(field, value) if field != "harmful" else value
        rec.setdefault("origin", rows.origin)
        if rec.get("origin") is None:
            rec["origin"] = rows.origin
        if rec.get("lang") is None:
            rec["lang"] = lang
        if raw.get("source_id") is None and isinstance(rec.get("source_id"), str) \
                and SOURCE_ID_FROM in (feeds.get("source_id"), fallback.get("source_id")):
            # A built id repeats where the published key does (a re-run appended to the same
            # dataset): number the repeats, in file order, so every row stays.
            key = (rec["source_id"], rec.get("lang"))
            built_ids[key] += 1
            if built_ids[key] > 1:
                rec["source_id"] = f"{rec['source_id']}.{built_ids[key]}"
        if rec.get("source_id") is None:
            if rec.get("id") is not None:
                rec["source_id"] = rec["id"]
            else:
                split_part = ""
                if multi_split:
                    part = rows.parts.get(file_label, {})
                    name = ".".join(part[k] for k in ("config", "split") if part.get(k)) \
                        or file_label.rsplit("[", 1)[-1].rstrip("]")
                    split_part = slug(name) + "."
                rec["source_id"] = f"{rows.id_prefix}.{split_part}{line}"
        if rec.get("id") is None and isinstance(rec.get("source_id"), str) and isinstance(rec.get("lang"), str):
            rec["id"] = f"{rec['source_id']}.{rec['lang']}"
        records.append(rec)
    repeats = sum(n - 1 for n in built_ids.values() if n > 1)
    if repeats:
        log.info("import %s: %d rows repeat a published key; their ids are numbered (.2, .3, ...)", label, repeats)

    if languages is not None:
        keep = set(languages) | {lang}

        def elsewhere(r: dict) -> bool:  # a valid language outside the study (bad ones are reported)
            return isinstance(r.get("lang"), str) and "lang" not in r.get("_skip", ()) and r["lang"] not in keep

        skipped = Counter(r["lang"] for r in records if elsewhere(r))
        if skipped:
            log.info("import %s: dropped rows in languages outside `languages`: %s", label, dict(skipped))
        records = [r for r in records if not elsewhere(r)]
    if not records and not problems:
        problems.append(UserError("no prompts" + (f" in the languages {', '.join(sorted(set(languages) | {lang}))}"
                                                  if languages is not None and rows.items else ""), file=label))
    out = validate(records, source=label, labels=labels, extra_problems=problems)
    by_lang = Counter(r["lang"] for r in out)
    log.info("import %s: %d prompts (%s); %d pre-translated rows (not in %s)", label, len(out),
             dict(by_lang), sum(n for code, n in by_lang.items() if code != lang), lang)
    return [_output(r) for r in out]


def _output(record: dict) -> dict:
    """A validated record in the corpus schema's field order; ``meta`` only where it has one
    (so a corpus without metadata keeps the schema's columns exactly)."""
    out = {k: record.get(k) for k in FIELDS}
    for field in EXTRA_FIELDS:
        if record.get(field) is not None:
            out[field] = record[field]
    return out

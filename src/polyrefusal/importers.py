"""Importing user prompt corpora into the corpus schema.

Sources (``corpus.source``):

- a JSONL (``.jsonl``/``.ndjson``), CSV (``.csv``; ``.tsv`` tab-separated) or Parquet file;
- a directory written by ``datasets`` ``save_to_disk`` (a ``Dataset`` or a ``DatasetDict``;
  ``corpus.split`` picks one split, default: every split in order);
- a Hugging Face hub dataset id (``owner/name``, or ``hub:owner/name``), loaded with
  ``datasets.load_dataset`` (``corpus.subset`` = config name, ``corpus.split``,
  ``corpus.revision``). Without network the local ``datasets`` cache is used (the hub is
  probed first, so an unreachable hub fails in seconds rather than after minutes of retries);
  a dataset that is not cached fails with one clear line telling how to bring it over
  (``save_to_disk`` on a machine with network, then point ``corpus.source`` at the directory).

Column mapping: ``corpus.layout`` names a ready mapping (``LAYOUTS``: ``refuseu`` for the
multilingual refusal dataset RefusEU, ``mijabench`` for the demographic benchmark MiJaBench,
``custom`` = none) and ``corpus.columns`` maps further columns ``{their_column: schema_field}``
(it wins over the layout). Columns named like schema fields are taken as they are; any other
column is dropped. ``corpus.defaults`` gives constant values for fields a file lacks (e.g.
``{style: direct, harmful: true}``).

Values are normalised: language names or codes ("English", "Português", "pt-BR", "deu") to the
project's codes; hazard codes/names ("s1", "Violent Crimes") to S1..S14; styles and target
groups to snake_case ids (a group given by its English name, "Black people", becomes the
project's id, "black"); "true"/"yes"/"1" to booleans; empty cells to null. Missing ids are built
from the file name and the row (``<name>.<row>``), then ``id = <source_id>.<lang>``.

Every problem (malformed line, unknown language, missing field, duplicate id...) is collected
with its file, line (JSONL, CSV: the physical line, the header being line 1) or row (Parquet,
datasets: 1-based) and field (the user's column name where it was mapped), and raised at once
as a ``CorpusError`` before anything is written.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import re
import socket
from collections import Counter
from io import StringIO
from pathlib import Path
from urllib.parse import urlparse

from .corpus import (FIELDS, SCHEMA, CorpusError, normalise_category, normalise_group, normalise_lang,
                     slug, validate)
from .errors import UserError
from .io import MAX_LINE_BYTES

log = logging.getLogger(__name__)

#: Published layouts: their column -> schema field, plus defaults for fields they lack.
LAYOUTS: dict[str, dict] = {
    "custom": {"columns": {}, "defaults": {}},
    # Multilingual refusal preference data: one harmful question per row with a refusal
    # (chosen) and a compliance (rejected) answer, in 12 languages.
    "refuseu": {"columns": {"question": "text", "chosen": "chosen", "rejected": "rejected",
                            "language": "lang", "category": "category"},
                "defaults": {"style": "direct", "harmful": True}},
    # Demographic jailbreak benchmark: a prompt against a target group with one of four
    # jailbreak strategy families (English and Portuguese). Hate is hazard S10.
    "mijabench": {"columns": {"prompt": "text", "group": "target_group", "strategy": "style",
                              "language": "lang"},
                  "defaults": {"category": "S10", "harmful": True}},
}
FILE_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+")
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


class Rows:
    """Rows read from a source: ``items`` = (file label, line/row, record), and where from."""

    def __init__(self, label: str, origin: str, id_prefix: str):
        self.label = label
        self.origin = origin
        self.id_prefix = id_prefix
        self.items: list[tuple[str, int, dict]] = []
        self.columns: list[str] = []
        self.problems: list[UserError] = []

    def add_columns(self, names) -> None:
        for n in names:
            if n not in self.columns:
                self.columns.append(n)


# --- readers ----------------------------------------------------------------------------------

def _read_jsonl(path: Path, rows: Rows) -> None:
    label = str(path)
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if len(raw) > MAX_LINE_BYTES:
                rows.problems.append(UserError(f"record is {len(raw):,} bytes, over the "
                                               f"{MAX_LINE_BYTES:,}-byte limit", file=label, line=lineno))
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                rows.problems.append(UserError(f"invalid UTF-8 at byte {exc.start}", file=label, line=lineno))
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                rows.problems.append(UserError(f"invalid JSON at column {exc.colno}: {exc.msg.removesuffix(' at')}",
                                               file=label, line=lineno))
                continue
            if not isinstance(obj, dict):
                rows.problems.append(UserError("a record must be a JSON object", file=label, line=lineno))
                continue
            rows.add_columns(obj)
            rows.items.append((label, lineno, obj))


def _read_csv(path: Path, rows: Rows) -> None:
    label = str(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"invalid UTF-8 at byte {exc.start}", file=label,
                        line=data[:exc.start].count(b"\n") + 1) from None
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise UserError(f"malformed CSV header: {exc}", file=label, line=1) from None
    for i, name in enumerate(header, start=1):
        if not name.strip():
            rows.problems.append(UserError(f"empty column name (column {i})", file=label, line=1))
    for name, n in Counter(header).items():
        if n > 1 and name.strip():
            rows.problems.append(UserError(f"column {name!r} appears {n} times", file=label, line=1,
                                           field=name))
    rows.add_columns(h for h in header if h.strip())
    start = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # The csv module cannot resynchronise after a quoting error: stop here.
            rows.problems.append(UserError(f"malformed CSV: {exc}", file=label, line=start))
            break
        line, start = start, reader.line_num + 1
        if not values or values == [""]:
            continue
        if len(values) != len(header):
            rows.problems.append(UserError(f"row has {len(values)} fields, the header has {len(header)}",
                                           file=label, line=line))
            continue
        rows.items.append((label, line, {h: v for h, v in zip(header, values) if h.strip()}))


def _plain(value):
    """numpy/pyarrow scalars and NaN to plain Python values."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _read_parquet(path: Path, rows: Rows) -> None:
    import pyarrow.parquet as pq

    label = str(path)
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise UserError(f"cannot read Parquet file: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                        file=label) from None
    rows.add_columns(table.column_names)
    for i, rec in enumerate(table.to_pylist(), start=1):
        rows.items.append((label, i, {k: _plain(v) for k, v in rec.items()}))


def _add_dataset(ds, rows: Rows, label: str) -> None:
    rows.add_columns(ds.column_names)
    for i, rec in enumerate(ds.to_list(), start=1):
        rows.items.append((label, i, {k: _plain(v) for k, v in rec.items()}))


def _add_dataset_or_dict(obj, rows: Rows, split: str | None, where: str) -> None:
    from datasets import DatasetDict, IterableDataset, IterableDatasetDict

    if isinstance(obj, (IterableDataset, IterableDatasetDict)):
        raise UserError("streaming datasets are not supported", file=where)
    if isinstance(obj, DatasetDict):
        if split is not None:
            if split not in obj:
                raise UserError(f"no split {split!r} (have: {', '.join(obj)})", file=where, field="corpus.split")
            _add_dataset(obj[split], rows, f"{where}[{split}]")
        else:
            for name in obj:
                _add_dataset(obj[name], rows, f"{where}[{name}]")
    else:
        _add_dataset(obj, rows, where)


def is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists())


def _read_saved_dataset(path: Path, rows: Rows, split: str | None) -> None:
    import datasets

    try:
        obj = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise UserError(f"cannot load the saved dataset: {_first_line(exc)}", file=str(path)) from None
    _add_dataset_or_dict(obj, rows, split, str(path))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


# --- the hub ----------------------------------------------------------------------------------

_TRUTHY = {"1", "ON", "YES", "TRUE"}


def hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the hub cannot be used right now (offline mode, or no connection), or None."""
    if os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUTHY or \
            os.environ.get("HF_DATASETS_OFFLINE", "").upper() in _TRUTHY:
        return "HF_HUB_OFFLINE is set"
    try:
        from huggingface_hub import constants
        endpoint = os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
        if constants.HF_HUB_OFFLINE:
            return "the Hugging Face hub is in offline mode"
    except ImportError:  # pragma: no cover - datasets depends on huggingface_hub
        endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    url = urlparse(endpoint)
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return f"no network: cannot reach {host}:{port} ({exc.strerror or exc})"
    return None


@contextlib.contextmanager
def _offline_mode():
    """Force ``datasets``/``huggingface_hub`` offline (cache only) for this block."""
    import datasets.config as dcfg
    from huggingface_hub import constants

    saved = (constants.HF_HUB_OFFLINE, dcfg.HF_HUB_OFFLINE, getattr(dcfg, "HF_DATASETS_OFFLINE", None))
    constants.HF_HUB_OFFLINE = dcfg.HF_HUB_OFFLINE = True
    if saved[2] is not None:
        dcfg.HF_DATASETS_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE, dcfg.HF_HUB_OFFLINE = saved[0], saved[1]
        if saved[2] is not None:
            dcfg.HF_DATASETS_OFFLINE = saved[2]


def _read_hub(repo_id: str, rows: Rows, split: str | None, subset: str | None, revision: str | None) -> None:
    import datasets

    why_offline = hub_unreachable()
    where = f"hub:{repo_id}"
    try:
        with _offline_mode() if why_offline else contextlib.nullcontext():
            obj = datasets.load_dataset(repo_id, name=subset, split=split, revision=revision)
    except Exception as exc:
        if why_offline:
            raise UserError(
                f"cannot load hub dataset {repo_id!r}: {why_offline}, and it is not in the local datasets "
                f"cache. On a machine with network run datasets.load_dataset({repo_id!r}"
                f"{', ' + repr(subset) if subset else ''}).save_to_disk(DIR), copy DIR here and set "
                f"corpus.source to it", file=where) from None
        raise UserError(f"cannot load hub dataset {repo_id!r}: {_first_line(exc)}", file=where) from None
    _add_dataset_or_dict(obj, rows, split, where)


# --- source dispatch -------------------------------------------------------------------------------

def read_rows(source: str, *, split: str | None = None, subset: str | None = None,
              revision: str | None = None) -> tuple[list[tuple[int, dict]], Rows]:
    """Read every row of a source. Returns ((line/row, record) pairs, Rows with details).
    Read errors that affect single lines are in ``Rows.problems``; a file that cannot be read
    at all raises UserError."""
    rows = _read_any(source, split=split, subset=subset, revision=revision)
    if rows.problems:
        raise CorpusError(rows.problems, file=rows.label)
    return [(line, rec) for _, line, rec in rows.items], rows


def _read_any(source: str, *, split=None, subset=None, revision=None) -> Rows:
    hub = None
    for prefix in ("hub:", "hf:"):
        if source.startswith(prefix):
            hub = source[len(prefix):]
    path = Path(source).expanduser()
    if hub is None and path.exists():
        if path.is_dir():
            if not is_saved_dataset(path):
                raise UserError("directory is not a dataset saved with datasets' save_to_disk "
                                "(no dataset_dict.json or state.json)", file=str(path))
            rows = Rows(str(path), f"dataset:{path.name}", slug(path.name) or "dataset")
            _read_saved_dataset(path, rows, split)
            return rows
        kind = FILE_SUFFIXES.get(path.suffix.lower())
        if kind is None:
            raise UserError(f"unsupported file type {path.suffix!r} (use .jsonl, .csv, .tsv, .parquet, "
                            "a save_to_disk directory or a hub id)", file=str(path))
        rows = Rows(str(path), f"file:{path.name}", slug(path.stem) or "file")
        {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet}[kind](path, rows)
        return rows
    if hub is None:
        if path.suffix.lower() in FILE_SUFFIXES or not _HUB_ID.fullmatch(source):
            raise UserError("file not found", file=source)
        hub = source
    if not _HUB_ID.fullmatch(hub):
        raise UserError(f"not a hub dataset id (owner/name): {hub!r}", file=source)
    rows = Rows(f"hub:{hub}", f"hub:{hub}", slug(hub.split("/")[-1]) or "hub")
    _read_hub(hub, rows, split, subset, revision)
    return rows


# --- mapping and normalisation -------------------------------------------------------------------

def resolve_mapping(layout: str | None, columns: dict | None, defaults: dict | None,
                    params_file: str | None = None) -> tuple[dict[str, str], dict]:
    """(their column -> schema field, field defaults) for a layout plus user columns/defaults."""
    name = layout or "custom"
    if name not in LAYOUTS:
        raise UserError(f"unknown layout {name!r} (known: {', '.join(LAYOUTS)})", file=params_file,
                        field="corpus.layout")
    mapping = dict(LAYOUTS[name]["columns"])
    for col, field in (columns or {}).items():
        if field not in SCHEMA and field is not None:
            raise UserError(f"column {col!r} is mapped to {field!r}, which is not a corpus field "
                            f"({', '.join(FIELDS)})", file=params_file, field=f"corpus.columns.{col}")
        mapping[col] = field
    # A layout column the user maps elsewhere, or a second column onto the same field, is a
    # conflict only when both are explicit.
    targets = Counter(f for f in mapping.values() if f)
    clash = [f for f, n in targets.items() if n > 1]
    if clash:
        cols = [c for c, f in mapping.items() if f in clash]
        raise UserError(f"several columns ({', '.join(cols)}) are mapped to {', '.join(clash)}",
                        file=params_file, field="corpus.columns")
    merged_defaults = dict(LAYOUTS[name]["defaults"])
    for field, value in (defaults or {}).items():
        if field not in SCHEMA or field in ("id", "source_id", "text"):
            raise UserError(f"no default possible for {field!r} (fields with defaults: "
                            f"{', '.join(f for f in FIELDS if f not in ('id', 'source_id', 'text'))})",
                            file=params_file, field=f"corpus.defaults.{field}")
        merged_defaults[field] = value
    return mapping, merged_defaults


def _to_bool(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    raise ValueError(f"expected true/false, got {value!r}")


def _normalise(field: str, value):
    """A user's value for ``field`` in the project's form. Raises ValueError with a message."""
    if value is None:
        return None
    if field in ("id", "source_id"):
        if isinstance(value, bool):
            return value
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return str(int(value))
        return value.strip() if isinstance(value, str) else value
    if field == "harmful":
        if isinstance(value, str) and not value.strip():
            return None
        return _to_bool(value)
    if not isinstance(value, str):
        return value  # validation reports the type
    if field in ("text", "chosen", "rejected"):
        return value if (value.strip() or field == "text") else None
    value = value.strip()
    if not value:
        return None
    if field == "lang":
        code = normalise_lang(value)
        if code is None:
            raise ValueError(f"unknown language {value!r}")
        return code
    if field == "category":
        return normalise_category(value)
    if field == "style":
        return slug(value) or value
    if field == "target_group":
        return normalise_group(value) or value
    return value


def import_corpus(source: str, *, lang: str, columns: dict | None = None, layout: str | None = None,
                  defaults: dict | None = None, languages: list[str] | None = None,
                  split: str | None = None, subset: str | None = None, revision: str | None = None,
                  params_file: str | None = None) -> list[dict]:
    """Read ``source``, map and normalise it into the corpus schema, validate. ``lang`` is the
    language of rows that name none; ``languages`` (optional) keeps only rows in those
    languages (rows in other languages are dropped and counted in the log)."""
    mapping, field_defaults = resolve_mapping(layout, columns, defaults, params_file)
    rows = _read_any(source, split=split, subset=subset, revision=revision)
    problems = list(rows.problems)
    label = rows.label

    # Which of their columns feeds each field (an explicit mapping wins over a same-named column).
    feeds: dict[str, str] = {}
    for col in rows.columns:
        if col in SCHEMA and col not in mapping:
            feeds.setdefault(col, col)
    for col, field in mapping.items():
        if field and col in rows.columns:
            feeds[field] = col
    labels = {field: (col if col == field else f"{col} (-> {field})") for field, col in feeds.items()}
    explicit = set((columns or {}))
    for col, field in mapping.items():
        if field and col not in rows.columns and rows.items and feeds.get(field) is None:
            required = SCHEMA[field][0] and field not in field_defaults and field not in (
                "id", "source_id", "lang", "origin")
            if col in explicit or required:
                problems.append(UserError(f"column {col!r} (mapped to {field}) is not in the data; "
                                          f"columns: {', '.join(rows.columns) or 'none'}",
                                          file=label, field=col))
    dropped = [c for c in rows.columns if c not in feeds.values()]
    if dropped:
        log.info("import %s: columns not used (not mapped to a corpus field): %s", label, ", ".join(dropped))

    multi_split = len({f for f, _, _ in rows.items}) > 1
    records: list[dict] = []
    for file_label, line, raw in rows.items:
        rec: dict = {"_line": line, "_file": file_label}
        for field, col in feeds.items():
            try:
                rec[field] = _normalise(field, raw.get(col))
            except ValueError as exc:
                problems.append(UserError(str(exc), file=file_label, line=line, field=labels[field]))
                rec[field] = raw.get(col)
                rec.setdefault("_skip", set()).add(field)
        for field, value in field_defaults.items():
            if rec.get(field) is None:
                rec[field] = _normalise(field, value) if field != "harmful" else value
        rec.setdefault("origin", rows.origin)
        if rec.get("origin") is None:
            rec["origin"] = rows.origin
        if rec.get("lang") is None:
            rec["lang"] = lang
        if rec.get("source_id") is None:
            if rec.get("id") is not None:
                rec["source_id"] = rec["id"]
            else:
                split_part = ""
                if multi_split:
                    split_part = slug(file_label.rsplit("[", 1)[-1].rstrip("]")) + "."
                rec["source_id"] = f"{rows.id_prefix}.{split_part}{line}"
        if rec.get("id") is None and isinstance(rec.get("source_id"), str) and isinstance(rec.get("lang"), str):
            rec["id"] = f"{rec['source_id']}.{rec['lang']}"
        records.append(rec)

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
    return [{k: r.get(k) for k in FIELDS} for r in out]

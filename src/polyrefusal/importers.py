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
  (``save_to_disk`` on a machine with network, then point ``corpus.source`` at the directory);
- a directory in the hub's file layout (a dataset card ``README.md`` whose ``configs:`` header
  names each configuration's ``data_files``, e.g. ``lang_de/train-*.parquet``), such as a copy of
  RefusEU or what ``polyrefusal export-dataset`` writes: ``corpus.subset`` picks one
  configuration (default: every one, in the card's order), ``corpus.split`` one split.

Column mapping: ``corpus.layout`` names a ready mapping (``LAYOUTS``: ``refuseu`` for the
multilingual refusal dataset RefusEU as released, ``mijabench`` for the demographic benchmark
MiJaBench as its own scripts write it, ``custom`` = none) and ``corpus.columns`` maps further
columns ``{their_column: schema_field}``. A user entry refines the layout: it replaces the
layout's entry for the same field (and ``{column: null}`` drops a column). Columns named like
schema fields are taken as they are; any other column is dropped. ``corpus.defaults`` gives
constant values for fields a file lacks (e.g. ``{style: direct, harmful: true}``).

The published layouts, checked against their official sources:

- ``mijabench`` (github iagoalvesb/mijabench, src/01_data_prep.py then src/03_prompts.py):
  columns ``original_index, text, group, language, dataset_source, is_harmful,
  scenario_category, scenario, jb_strategy, jb_prompt``. The prompt is ``jb_prompt``; ``text``
  is the hate seed it was written from and never becomes the prompt (it is dropped). The
  strategy ids and the group ids (ToxiGen's for English, ToxSyn-PT's for Portuguese) are mapped
  onto the seed's strategy families and 16 target groups (``MIJABENCH_STRATEGIES``,
  ``MIJABENCH_GROUPS``); an id that maps to none is an error naming it. ``original_index``,
  ``dataset_source``, ``scenario_category`` and ``scenario`` are kept in ``meta``. The record's
  ``source_id`` is ``<name>.<dataset_source>.<original_index>``: ``original_index`` is a row of
  the seed corpus (ToxiGen or ToxSyn-PT), and the English and Portuguese prompts come from
  different seeds, so no key pairs them across languages.
- ``refuseu`` (huggingface.co/datasets/NASK-PIB/RefusEU, its dataset card): configurations
  ``lang_xx`` (splits ``train``, ``test``) whose rows carry ``id``, ``row_id``, ``category`` and
  ``chosen`` / ``rejected`` as chat message lists; the prompt is the first user turn, each
  answer the last assistant turn; and ``evaluation`` (split ``eval``; the stored copy of the card
  does not show its features: it is read in the same row shape, a plain ``prompt`` or
  ``question`` column also taking the prompt's place). The language comes from a
  language column, else the configuration (``lang_de``), else the id's suffix, else
  ``corpus.defaults``. ``id`` repeats across categories, so ``source_id`` is built as
  ``<name>.<category>.<id without its language suffix>`` (the same question in every language
  shares it). Category names that are Llama Guard 3's become S1..S14; others stay as given
  (``normalise_category``). ``style`` defaults to ``direct``. What ``export-dataset`` writes
  adds ``record_id`` (read as ``id``) and the study's own fields, so it reads back unchanged.

Values are normalised: language names or codes ("English", "Português", "pt-BR", "deu") to the
project's codes; hazard codes/names ("s1", "Violent Crimes") to S1..S14; styles and target
groups to snake_case ids (a group given by its English name, "Black people", becomes the
project's id, "black"); "true"/"yes"/"1" to booleans; empty cells to null; a chat message list
([{role, content}, ...]) in a ``text`` cell to its first user turn, in ``chosen`` / ``rejected``
to its last assistant turn. Missing ids are built
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

from .corpus import (EXTRA_FIELDS, FIELDS, KNOWN_LANGS, SCHEMA, CorpusError, meta_json, normalise_category,
                     normalise_group, normalise_lang, seed_axes, slug, validate)
from .errors import UserError
from .io import MAX_LINE_BYTES

log = logging.getLogger(__name__)

#: MiJaBench's jailbreak strategy ids (src/03_prompts.py, the keys of `strategies_english` and
#: `strategies_portuguese`) -> the seed's strategy families. Their own names for them (the
#: `base_text` of each) decide the pairing; the paper's figures label them Persona, Rep. Shift,
#: CoT and Logic.
MIJABENCH_STRATEGIES: dict[str, str] = {
    "persona_assign": "persona_assignment",          # "Persona Assignment"
    "new_language": "representation_shifting",       # "Language and Representation Shift"
    "chaining": "chain_of_thought",                  # "Orchestrated Chain Reasoning"
    "false_equivalence": "logical_rationalization",  # "False Equivalence and Logical Rationalization"
}
#: MiJaBench's `group` values (keys slugged) -> the seed's 16 target groups. English rows keep
#: ToxiGen's ids (toxigen/toxigen-data, configuration `train`: the 13 groups printed in
#: microsoft/TOXIGEN notebooks/load_datasets.ipynb; `immigrant` from its prompts/ files).
#: Portuguese rows keep ToxSyn-PT's groups, named in Portuguese as in MiJaBench's own
#: src/03_prompts.py (judeus, pessoas negras, povos indígenas, pessoas com deficiência,
#: mulheres, muçulmanos) and the paper's Table 2 (Black, Jewish, Muslim, Native Peoples,
#: Immigrants, Women, LGBTQIA+, Disability, Elderly). A seed id or English name also maps.
MIJABENCH_GROUPS: dict[str, str] = {
    # ToxiGen
    "black": "black", "asian": "asian", "native_american": "native", "muslim": "muslim",
    "latino": "latino", "jewish": "jewish", "chinese": "chinese", "lgbtq": "lgbtqia",
    "mental_dis": "mental_disability", "physical_dis": "physical_disability", "mexican": "mexican",
    "women": "women", "middle_east": "middle_eastern", "immigrant": "immigrants",
    # ToxSyn-PT (Portuguese)
    "pessoas_negras": "black", "negros": "black", "negras": "black", "judeus": "jewish",
    "muculmanos": "muslim", "povos_indigenas": "native", "indigenas": "native",
    "imigrantes": "immigrants", "mulheres": "women", "lgbtqia": "lgbtqia", "pessoas_lgbtqia": "lgbtqia",
    "lgbt": "lgbtqia", "pessoas_com_deficiencia": "disability", "deficientes": "disability",
    "idosos": "elderly", "pessoas_idosas": "elderly",
}

#: Columns the ``refuseu`` and ``mijabench`` layouts compute from several of theirs (``PREPARE``,
#: below); named so that a message says where a value came from.
PROMPT_TURN = "prompt (first user turn)"
LANG_FROM = "language (column, configuration or id suffix)"
SOURCE_ID_FROM = "source_id (built)"

#: Published layouts: their column -> schema field (None: not used as a field), defaults for
#: fields they lack, and optionally ``prepare`` (computed columns), ``values`` (field -> (table,
#: seed axis, noun): a value must map through the table or be a seed id), ``meta`` (columns kept
#: in the ``meta`` field), ``prefer`` (field -> their columns that, when present and the user maps
#: none to it, feed it instead of the layout's entry) and ``forbid`` (mappings that would be wrong).
LAYOUTS: dict[str, dict] = {
    "custom": {"columns": {}, "defaults": {}},
    "refuseu": {
        "columns": {PROMPT_TURN: "text", "chosen": "chosen", "rejected": "rejected", LANG_FROM: "lang",
                    "category": "category", SOURCE_ID_FROM: "source_id", "record_id": "id",
                    # read by `prepare`, not fields themselves
                    "id": None, "row_id": None, "prompt": None, "question": None, "language": None,
                    "lang": None},
        "defaults": {"style": "direct", "harmful": True},
        "prepare": "refuseu",
        # A plain column present in the data replaces the computed one (and names itself in messages).
        "prefer": {"text": ("prompt", "question"), "lang": ("language", "lang"), "source_id": ("source_id",)},
    },
    "mijabench": {
        "columns": {"jb_prompt": "text", "jb_strategy": "style", "group": "target_group",
                    "language": "lang", "is_harmful": "harmful", SOURCE_ID_FROM: "source_id",
                    # the hate seed: never the prompt
                    "text": None},
        # Hate speech against a group is Llama Guard 3's S10.
        "defaults": {"category": "S10", "harmful": True},
        "prepare": "mijabench",
        "values": {"style": (MIJABENCH_STRATEGIES, "strategies", "MiJaBench strategy"),
                   "target_group": (MIJABENCH_GROUPS, "groups", "MiJaBench group")},
        "meta": ("original_index", "dataset_source", "scenario_category", "scenario"),
        "forbid": {("text", "text"): "MiJaBench's `text` is the hate seed a prompt was written from, "
                                     "not a prompt (the prompt is `jb_prompt`)"},
    },
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
        #: file label -> {"config": ..., "split": ...} where the rows of that label come from
        #: one configuration or split of a dataset.
        self.parts: dict[str, dict[str, str]] = {}

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
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")  # a BOM, as for CSV
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


def _add_dataset(ds, rows: Rows, label: str, part: dict[str, str]) -> None:
    rows.add_columns(ds.column_names)
    if part:
        rows.parts[label] = part
    for i, rec in enumerate(ds.to_list(), start=1):
        rows.items.append((label, i, {k: _plain(v) for k, v in rec.items()}))


def _add_dataset_or_dict(obj, rows: Rows, split: str | None, where: str, config: str | None = None) -> None:
    from datasets import DatasetDict, IterableDataset, IterableDatasetDict

    if isinstance(obj, (IterableDataset, IterableDatasetDict)):
        raise UserError("streaming datasets are not supported", file=where)
    base = {"config": config} if config else {}
    if isinstance(obj, DatasetDict):
        if split is not None:
            if split not in obj:
                raise UserError(f"no split {split!r} (have: {', '.join(obj)})", file=where, field="corpus.split")
            _add_dataset(obj[split], rows, f"{where}[{split}]", {**base, "split": split})
        else:
            for name in obj:
                _add_dataset(obj[name], rows, f"{where}[{name}]", {**base, "split": name})
    else:
        _add_dataset(obj, rows, where, {**base, **({"split": split} if split else {})})


def is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists())


def _read_saved_dataset(path: Path, rows: Rows, split: str | None) -> None:
    import datasets

    try:
        obj = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise UserError(f"cannot load the saved dataset: {_first_line(exc)}", file=str(path)) from None
    _add_dataset_or_dict(obj, rows, split, str(path))


def card_configs(path: Path) -> list[dict] | None:
    """The ``configs:`` of the dataset card ``path/README.md`` (the hub's file layout), or
    None when there is no card or it declares none."""
    card = path / "README.md"
    if not card.is_file():
        return None
    from huggingface_hub.repocard import metadata_load

    try:
        meta = metadata_load(card)
    except Exception as exc:  # a YAML error in the card header
        raise UserError(f"cannot read the dataset card's YAML header: {_first_line(exc)}", file=str(card)) from None
    configs = (meta or {}).get("configs")
    return configs if isinstance(configs, list) and configs else None


def _read_card_layout(path: Path, rows: Rows, split: str | None, subset: str | None) -> None:
    """Every configuration (or ``subset``) and split (or ``split``) of a directory in the hub's
    file layout, from the Parquet files its card's ``data_files`` name, in the card's order."""
    import pyarrow.parquet as pq

    card = str(path / "README.md")
    configs = card_configs(path) or []
    names = [c.get("config_name", "default") for c in configs if isinstance(c, dict)]
    if subset is not None and subset not in names:
        raise UserError(f"no configuration {subset!r} in the dataset card (have: {', '.join(names)})",
                        file=card, field="corpus.subset")
    seen_split = False
    for conf in configs:
        name = conf.get("config_name", "default")
        if subset is not None and name != subset:
            continue
        files = conf.get("data_files") or []
        if isinstance(files, (str, dict)):
            files = [files]
        for entry in files:
            split_name, patterns = ("train", entry) if isinstance(entry, str) else (entry.get("split", "train"),
                                                                                    entry.get("path"))
            if split is not None and split_name != split:
                continue
            seen_split = True
            for pattern in [patterns] if isinstance(patterns, str) else (patterns or []):
                matches = sorted(path.glob(pattern))
                if not matches:
                    raise UserError(f"configuration {name!r} split {split_name!r}: no file matches "
                                    f"{pattern!r}", file=card)
                for file in matches:
                    if file.suffix.lower() != ".parquet":
                        raise UserError(f"unsupported data file {file.name!r} (the layout reader takes Parquet)",
                                        file=str(file))
                    label = str(file)
                    try:
                        table = pq.read_table(file)
                    except Exception as exc:
                        raise UserError(f"cannot read Parquet file: {_first_line(exc)}", file=label) from None
                    rows.add_columns(table.column_names)
                    rows.parts[label] = {"config": name, "split": split_name}
                    for i, rec in enumerate(table.to_pylist(), start=1):
                        rows.items.append((label, i, {k: _plain(v) for k, v in rec.items()}))
    if split is not None and not seen_split:
        raise UserError(f"no split {split!r} in the dataset card", file=card, field="corpus.split")


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
    _add_dataset_or_dict(obj, rows, split, where, config=subset)


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
            rows = Rows(str(path), f"dataset:{path.name}", slug(path.name) or "dataset")
            if is_saved_dataset(path):
                _read_saved_dataset(path, rows, split)
            elif card_configs(path):
                _read_card_layout(path, rows, split, subset)
            else:
                raise UserError("directory is neither a dataset saved with datasets' save_to_disk "
                                "(dataset_dict.json or state.json) nor in the hub's file layout (a "
                                "README.md dataset card with `configs:`)", file=str(path))
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
    """(their column -> schema field, field defaults) for a layout refined by the user's
    columns and defaults. A user entry replaces the layout's entry for the same field; two
    user columns onto one field are a conflict."""
    name = layout or "custom"
    if name not in LAYOUTS:
        raise UserError(f"unknown layout {name!r} (known: {', '.join(LAYOUTS)})", file=params_file,
                        field="corpus.layout")
    spec = LAYOUTS[name]
    mapping = dict(spec["columns"])
    user = dict(columns or {})
    targets = Counter(f for f in user.values() if f)
    clash = [f for f, n in targets.items() if n > 1]
    if clash:
        cols = [c for c, f in user.items() if f in clash]
        raise UserError(f"several columns ({', '.join(cols)}) are mapped to {', '.join(clash)}",
                        file=params_file, field="corpus.columns")
    for col, field in user.items():
        if field not in SCHEMA and field not in EXTRA_FIELDS and field is not None:
            raise UserError(f"column {col!r} is mapped to {field!r}, which is not a corpus field "
                            f"({', '.join((*FIELDS, *EXTRA_FIELDS))})", file=params_file,
                            field=f"corpus.columns.{col}")
        why = spec.get("forbid", {}).get((col, field))
        if why:
            raise UserError(f"column {col!r} cannot be mapped to {field!r} in layout {name!r}: {why}",
                            file=params_file, field=f"corpus.columns.{col}")
        if field:
            # The user's column for this field replaces the layout's.
            for other in [c for c, f in mapping.items() if f == field and c != col]:
                mapping[other] = None
        mapping[col] = field
    merged_defaults = dict(spec["defaults"])
    for field, value in (defaults or {}).items():
        if field not in SCHEMA or field in ("id", "source_id", "text"):
            raise UserError(f"no default possible for {field!r} (fields with defaults: "
                            f"{', '.join(f for f in FIELDS if f not in ('id', 'source_id', 'text'))})",
                            file=params_file, field=f"corpus.defaults.{field}")
        merged_defaults[field] = value
    return mapping, merged_defaults


# --- chat message lists (RefusEU's chosen / rejected, TRL's conversational format) --------------

def is_messages(value) -> bool:
    """A chat message list: a non-empty list of {role, content} mappings."""
    return (isinstance(value, list) and bool(value)
            and all(isinstance(m, dict) and "role" in m and "content" in m for m in value))


def message_turn(messages: list[dict], role: str, *, last: bool) -> str | None:
    """The content of the first (or last) turn of ``role``, or None when there is none."""
    turns = [m["content"] for m in messages if m.get("role") == role]
    if not turns:
        return None
    return turns[-1] if last else turns[0]


# --- the layouts' computed columns -----------------------------------------------------------------

_CONFIG_LANG = re.compile(r"lang[_\-](?P<lang>[A-Za-z]{2,3})")
_ID_LANG_SUFFIX = re.compile(r"(?P<stem>.+?)[_\-.](?P<lang>[A-Za-z]{2})")


def _id_language(value) -> tuple[str | None, str | None]:
    """RefusEU's ``id`` -> (id without its language suffix, the suffix's language code)."""
    if value is None:
        return None, None
    text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value).strip()
    m = _ID_LANG_SUFFIX.fullmatch(text)
    if m and normalise_lang(m.group("lang")) in KNOWN_LANGS:
        return m.group("stem"), normalise_lang(m.group("lang"))
    return text or None, None


def _prepare_refuseu(raw: dict, part: dict[str, str], prefix: str) -> dict:
    """RefusEU's computed columns for one row: the prompt (first user turn of ``chosen``), the
    language (configuration ``lang_xx``, else the id's suffix) and the built source id."""
    prompt = None
    for col in ("chosen", "rejected", "messages"):
        if prompt is None and is_messages(raw.get(col)):
            prompt = message_turn(raw[col], "user", last=False)
    stem, lang = _id_language(raw.get("id"))
    if part.get("config"):
        m = _CONFIG_LANG.fullmatch(part["config"])
        lang = m.group("lang") if m else lang
    source_id = None
    if stem is not None or raw.get("row_id") is not None:
        category = raw.get("category")
        cat = slug(normalise_category(category)) if isinstance(category, str) and category.strip() else "nocategory"
        source_id = f"{prefix}.{cat}.{stem if stem is not None else raw['row_id']}"
    return {PROMPT_TURN: prompt, LANG_FROM: lang, SOURCE_ID_FROM: source_id}


def _prepare_mijabench(raw: dict, part: dict[str, str], prefix: str) -> dict:
    """MiJaBench's source id for one row: the seed corpus and the seed's row in it."""
    index, source = raw.get("original_index"), raw.get("dataset_source")
    if isinstance(index, float) and index.is_integer():
        index = int(index)
    source_id = None
    if index is not None and source is not None:
        source_id = f"{prefix}.{slug(str(source)) or 'source'}.{index}"
    return {SOURCE_ID_FROM: source_id}


PREPARE = {"refuseu": _prepare_refuseu, "mijabench": _prepare_mijabench}


def _map_value(value, table: dict[str, str], axis: str, noun: str):
    """A published id through its mapping table, or a seed id / English name on ``axis``;
    anything else is an error naming the value (never a silent new group or strategy)."""
    if not isinstance(value, str):
        return value  # None stays missing; another type is reported by validation
    if not value.strip():
        return None
    key = slug(value)
    if key in table:
        return table[key]
    known = seed_axes()[axis]
    own = normalise_group(value) if axis == "groups" else key
    if own in known:
        return own
    raise ValueError(f"unknown {noun} {value.strip()!r}: it maps to none of the seed's {axis} "
                     f"(known: {', '.join(sorted(table))}; or a seed id: {', '.join(known)})")


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
    if field in ("text", "chosen", "rejected") and isinstance(value, list):
        # A chat message list: the prompt is its first user turn, an answer its last assistant turn.
        if not is_messages(value):
            raise ValueError("expected a string or a chat message list ([{role, content}, ...])")
        role = "user" if field == "text" else "assistant"
        turn = message_turn(value, role, last=field != "text")
        if turn is None:
            raise ValueError(f"the message list has no {role} turn")
        value = turn
    if field == "meta" and isinstance(value, dict):
        return meta_json(value)
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
    spec = LAYOUTS[layout or "custom"]
    rows = _read_any(source, split=split, subset=subset, revision=revision)
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
                    rec[field] = _map_value(value, *strict[field])
                else:
                    rec[field] = _normalise(field, value)
            except ValueError as exc:
                where = labels[field] if col == feeds[field] else f"{col} (-> {field})"
                problems.append(UserError(str(exc), file=file_label, line=line, field=where))
                rec[field] = value
                rec.setdefault("_skip", set()).add(field)
        if meta_cols and rec.get("meta") is None:
            rec["meta"] = meta_json({c: raw.get(c) for c in meta_cols})
        for field, value in field_defaults.items():
            if rec.get(field) is None:
                rec[field] = _normalise(field, value) if field != "harmful" else value
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

"""Reading a corpus source into rows: files, saved datasets, the hub's file layout, hub ids.

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

Each file format is read by its one reader in ``polyrefusal.io`` (``iter_jsonl``,
``read_csv_rows``, ``read_parquet_rows``), in its collecting mode: every problem (malformed
line, ragged row...) is kept with its file and line (JSONL, CSV: the physical line, the header
being line 1) or row (Parquet, datasets: 1-based), and raised later with the validation's as
one ``CorpusError``. Whether the hub can be reached is asked of ``polyrefusal.hub``.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from .. import hub
from ..errors import UserError
from ..io import first_line, iter_jsonl, plain_record, read_csv_rows, read_parquet_rows
from .schema import CorpusError, slug

FILE_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+")


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
    for lineno, obj in iter_jsonl(path, rows.problems):
        rows.add_columns(obj)
        rows.items.append((str(path), lineno, obj))


def _read_csv(path: Path, rows: Rows) -> None:
    columns, records = read_csv_rows(path, rows.problems, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    rows.add_columns(columns)
    rows.items.extend((str(path), line, rec) for line, rec in records)


def _read_parquet(path: Path, rows: Rows, part: dict[str, str] | None = None) -> None:
    columns, records = read_parquet_rows(path)
    rows.add_columns(columns)
    if part:
        rows.parts[str(path)] = part
    rows.items.extend((str(path), i, rec) for i, rec in enumerate(records, start=1))


def _add_dataset(ds, rows: Rows, label: str, part: dict[str, str]) -> None:
    rows.add_columns(ds.column_names)
    if part:
        rows.parts[label] = part
    for i, rec in enumerate(ds.to_list(), start=1):
        rows.items.append((label, i, plain_record(rec)))


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
        raise UserError(f"cannot load the saved dataset: {first_line(exc)}", file=str(path)) from None
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
        raise UserError(f"cannot read the dataset card's YAML header: {first_line(exc)}", file=str(card)) from None
    configs = (meta or {}).get("configs")
    return configs if isinstance(configs, list) and configs else None


def _read_card_layout(path: Path, rows: Rows, split: str | None, subset: str | None) -> None:
    """Every configuration (or ``subset``) and split (or ``split``) of a directory in the hub's
    file layout, from the Parquet files its card's ``data_files`` name, in the card's order."""
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
                    _read_parquet(file, rows, {"config": name, "split": split_name})
    if split is not None and not seen_split:
        raise UserError(f"no split {split!r} in the dataset card", file=card, field="corpus.split")


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

    why_offline = hub.unreachable(datasets=True)
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
        raise UserError(f"cannot load hub dataset {repo_id!r}: {first_line(exc)}", file=where) from None
    _add_dataset_or_dict(obj, rows, split, where, config=subset)


# --- source dispatch -------------------------------------------------------------------------------

def read_rows(source: str, *, split: str | None = None, subset: str | None = None,
              revision: str | None = None) -> tuple[list[tuple[int, dict]], Rows]:
    """Read every row of a source. Returns ((line/row, record) pairs, Rows with details).
    Read errors that affect single lines are in ``Rows.problems``; a file that cannot be read
    at all raises UserError."""
    rows = read_any(source, split=split, subset=subset, revision=revision)
    if rows.problems:
        raise CorpusError(rows.problems, file=rows.label)
    return [(line, rec) for _, line, rec in rows.items], rows


def read_any(source: str, *, split: str | None = None, subset: str | None = None,
             revision: str | None = None) -> Rows:
    """Every row of ``source`` (a file, a directory or a hub id), with the problems found."""
    repo = None
    for prefix in ("hub:", "hf:"):
        if source.startswith(prefix):
            repo = source[len(prefix):]
    path = Path(source).expanduser()
    if repo is None and path.exists():
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
    if repo is None:
        if path.suffix.lower() in FILE_SUFFIXES or not _HUB_ID.fullmatch(source):
            raise UserError("file not found", file=source)
        repo = source
    if not _HUB_ID.fullmatch(repo):
        raise UserError(f"not a hub dataset id (owner/name): {repo!r}", file=source)
    rows = Rows(f"hub:{repo}", f"hub:{repo}", slug(repo.split("/")[-1]) or "hub")
    _read_hub(repo, rows, split, subset, revision)
    return rows

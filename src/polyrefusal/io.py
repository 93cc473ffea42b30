"""Reading and writing record files (JSONL, Parquet, CSV) atomically.

One reader per format (``iter_jsonl``, ``read_csv_rows``, ``read_parquet_rows``): the stages read
through ``read_records``, the corpus importers (``corpus/readers.py``) through the same readers in
their collecting mode, so both give the same messages, BOM handling and size limit.

Every writer goes through ``atomic_path``: the data is written to a temporary file in the same
directory and renamed into place, so a killed job never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import json
import os
import re
import shutil
import socket
import tempfile
from collections import Counter
from io import StringIO
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import UserError

_UMASK = os.umask(0)
os.umask(_UMASK)
MAX_LINE_BYTES = 1_000_000  # one JSONL record; a 10 MB "prompt" is a user error, not a prompt


def _host() -> str:
    return socket.gethostname().split(".")[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Temporaries of ``path`` that a writer on this host left when it was killed mid-write
    (its process is gone), removed. Another host's temporaries (a shared file system) and a
    live writer's are left alone: only this host can tell whether its processes are alive."""
    host = _host()
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.{glob.escape(host)}-*"):
        pid = tmp.name[len(f".{path.name}.{host}-"):].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success. The
    temporary is named after its writer (``.<name>.<host>-<pid>.<random><suffix>``), so the next
    write of ``path`` removes what a killed writer left (``remove_stale_temporaries``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_host()}-{os.getpid()}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; outputs are ordinary files
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty sibling directory (``.<name>.tmp``); on success its manifest is written
    (``write_dir_manifest``) and it replaces ``path`` whole, so a killed job never leaves a
    directory output that looks complete. One left by a killed writer is cleared by the next."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_dir_manifest(tmp)
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


#: The file every directory output carries at its top level: the md5 of each of its other files
#: (``write_dir_manifest``). DVC's stages depend on it in place of the directory (see
#: ``polyrefusal.dvc_yaml``): DVC rebuilds a directory's tree for every stage that names it,
#: where a file is one look-up in its state database.
MANIFEST = "manifest.json"


def file_md5(path: str | os.PathLike) -> str:
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()


def write_manifest(path: str | os.PathLike, files: dict[str, Path]) -> None:
    """Write to `path` the manifest of `files` (name -> file): each name's md5, sorted by
    name. The same content gives the same bytes, so a rerun that writes the same files leaves
    the stages that read them through the manifest up to date."""
    digests = {name: file_md5(files[name]) for name in sorted(files)}
    write_text(path, json.dumps({"md5": digests}, indent=2, ensure_ascii=False) + "\n")


def content_files(directory: str | os.PathLike) -> dict[str, Path]:
    """A directory output's content: its files at any depth, by relative path; the manifest and
    hidden files (Snakemake's .snakemake_timestamp, which DVC's runs do not leave, and a
    writer's temporaries) left out."""
    root = Path(directory)
    files = {}
    for f in root.rglob("*"):
        rel = f.relative_to(root)
        if f.is_file() and rel.as_posix() != MANIFEST and not any(part.startswith(".") for part in rel.parts):
            files[rel.as_posix()] = f
    return files


def write_dir_manifest(directory: str | os.PathLike) -> None:
    """Write ``directory/MANIFEST``, the manifest of its ``content_files``."""
    write_manifest(Path(directory) / MANIFEST, content_files(directory))


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def sync_json_files(directory: str | os.PathLike, wanted: dict[str, str]) -> None:
    """Make `directory`'s *.json files exactly `wanted` (file name -> text): each written only
    where its bytes change (an unchanged file keeps its date, so a tool that dates inputs sees
    nothing new), the others removed (not Snakemake's .snakemake_timestamp)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in wanted.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            write_text(path, text)
    for stale in directory.glob("*.json"):
        if stale.name not in wanted:
            stale.unlink()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8-sig"))  # a BOM is not content
    except FileNotFoundError:
        raise UserError("file not found", file=str(path)) from None
    except json.JSONDecodeError as exc:
        raise UserError(f"invalid JSON: {exc.msg}", file=str(path), line=exc.lineno) from None


#: Unicode categories that show nothing: format characters (zero-width space and joiners, the
#: byte-order mark, bidirectional marks), controls, private use and unassigned code points.
INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Co", "Cn"})


def only_invisible(text: str) -> bool:
    """True when ``text`` has no visible character (white space and INVISIBLE_CATEGORIES only):
    a prompt a reader cannot see is not a prompt."""
    import unicodedata

    return all(ch.isspace() or unicodedata.category(ch) in INVISIBLE_CATEGORIES for ch in text)


def _report(problem: UserError, problems: list[UserError] | None) -> None:
    """Collect ``problem`` when the caller gathers every problem, else raise it at once."""
    if problems is None:
        raise problem
    problems.append(problem)


def iter_jsonl(path: str | os.PathLike, problems: list[UserError] | None = None) -> Iterator[tuple[int, dict]]:
    """(line number, record) for each non-blank line of a JSONL file. A bad line (over
    ``MAX_LINE_BYTES``, not UTF-8, not JSON, not an object) is raised as a UserError naming file
    and line, or, with ``problems`` (a list), appended to it and skipped."""
    label = str(path)
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if len(raw) > MAX_LINE_BYTES:
                _report(UserError(f"record is {len(raw):,} bytes, over the {MAX_LINE_BYTES:,}-byte limit",
                                  file=label, line=lineno), problems)
                continue
            try:
                # a byte-order mark opening the file is not content (as for CSV)
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                _report(UserError(f"invalid UTF-8 at byte {exc.start}", file=label, line=lineno), problems)
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                _report(UserError(f"invalid JSON at column {exc.colno}: {exc.msg.removesuffix(' at')}",
                                  file=label, line=lineno), problems)
                continue
            if not isinstance(obj, dict):
                _report(UserError("a record must be a JSON object", file=label, line=lineno), problems)
                continue
            yield lineno, obj


def read_csv_rows(path: str | os.PathLike, problems: list[UserError] | None = None,
                  delimiter: str = ",") -> tuple[list[str], list[tuple[int, dict]]]:
    """(column names, [(physical line, record), ...]) of a CSV file (the header is line 1;
    values stay strings, an empty cell is ""; a leading byte-order mark is dropped). A file
    that is not UTF-8 or whose header cannot be parsed always raises; a bad header name or
    row is raised, or with ``problems`` collected (rows after a quoting error are not read:
    the csv module cannot resynchronise)."""
    label = str(path)
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"invalid UTF-8 at byte {exc.start}", file=label,
                        line=data[:exc.start].count(b"\n") + 1) from None
    reader = csv.reader(StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return [], []
    except csv.Error as exc:
        raise UserError(f"malformed CSV header: {exc}", file=label, line=1) from None
    for i, name in enumerate(header, start=1):
        if not name.strip():
            _report(UserError(f"empty column name (column {i})", file=label, line=1), problems)
    for name, n in Counter(header).items():
        if n > 1 and name.strip():
            _report(UserError(f"column {name!r} appears {n} times", file=label, line=1, field=name), problems)
    columns = [h for h in dict.fromkeys(header) if h.strip()]
    rows: list[tuple[int, dict]] = []
    start = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            _report(UserError(f"malformed CSV: {exc}", file=label, line=start), problems)
            break
        line, start = start, reader.line_num + 1
        if not values or values == [""]:
            continue
        if len(values) != len(header):
            _report(UserError(f"row has {len(values)} fields, the header has {len(header)}",
                              file=label, line=line), problems)
            continue
        rows.append((line, {h: v for h, v in zip(header, values) if h.strip()}))
    return columns, rows


#: The column pandas adds for an unnamed index it stores (``__index_level_0__``, ...); not data.
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")


def read_parquet_rows(path: str | os.PathLike) -> tuple[list[str], list[dict]]:
    """(column names, records) of a Parquet file, values as plain Python (NaN as None). A file
    pyarrow cannot read raises one UserError naming it."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise UserError(f"cannot read Parquet file: {first_line(exc)}", file=str(path)) from None
    table = table.drop_columns([c for c in table.column_names if _PANDAS_INDEX.fullmatch(c)])
    return table.column_names, [plain_record(r) for r in table.to_pylist()]


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none), at most 300 chars."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def read_records(path: str | os.PathLike, *, with_lines: bool = False) -> list[dict]:
    """Read JSONL, Parquet or CSV records. With ``with_lines``, each record gets ``_line``
    (JSONL line number, or 1-based row for tabular files) for error messages."""
    path = Path(path)
    if not path.exists():
        raise UserError("file not found", file=str(path))
    suffix = "".join(path.suffixes[-1:]).lower()
    if suffix in (".jsonl", ".ndjson"):
        numbered = list(iter_jsonl(path))
    elif suffix == ".csv":
        numbered = list(enumerate((r for _, r in read_csv_rows(path)[1]), start=1))
    elif suffix == ".parquet":
        numbered = list(enumerate(read_parquet_rows(path)[1], start=1))
    else:
        raise UserError(f"unsupported file type {suffix!r} (use .jsonl, .parquet or .csv)", file=str(path))
    records = []
    for lineno, obj in numbered:
        if with_lines:
            obj["_line"] = lineno
        records.append(obj)
    return records


def _plain(value: Any) -> Any:
    """numpy/pandas values (also nested in lists and dicts, as Parquet returns them) and NaN
    as plain Python values."""
    import math
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def plain_record(record: dict) -> dict:
    """A record read from Parquet or ``datasets`` with plain Python values (see ``_plain``)."""
    return {k: _plain(v) for k, v in record.items()}


def write_records(path: str | os.PathLike, records: Iterable[dict]) -> None:
    """Write records as JSONL or Parquet (by suffix), atomically, in the given order."""
    path = Path(path)
    records = [{k: v for k, v in r.items() if not k.startswith("_")} for r in records]
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
        write_text(path, text)
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq
        table = pa.Table.from_pylist(records)
        with atomic_path(path, suffix=".parquet.tmp") as tmp:
            pq.write_table(table, tmp)
    elif suffix == ".csv":
        import pandas as pd
        with atomic_path(path, suffix=".csv.tmp") as tmp:
            pd.DataFrame.from_records(records).to_csv(tmp, index=False)
    else:
        raise UserError(f"unsupported output type {suffix!r}", file=str(path))


def stable_hash(obj: Any, length: int = 24) -> str:
    """Content hash of a JSON-serialisable object (sorted keys): used for cache keys."""
    import hashlib
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:length]

"""Reading and writing record files (JSONL, Parquet, CSV) atomically.

Every writer goes through ``atomic_path``: the data is written to a temporary file in the same
directory and renamed into place, so a killed job never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import socket
import tempfile
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
    """Yield an empty sibling directory (``.<name>.tmp``); on success it replaces ``path``
    whole, so a killed job never leaves a directory output that looks complete. One left by a
    killed writer is cleared by the next one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


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


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if len(raw) > MAX_LINE_BYTES:
                raise UserError(f"record is {len(raw):,} bytes, over the {MAX_LINE_BYTES:,}-byte limit",
                                file=str(path), line=lineno)
            try:
                # a byte-order mark opening the file is not content (as for CSV)
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(f"invalid UTF-8 at byte {exc.start}", file=str(path), line=lineno) from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"invalid JSON: {exc.msg}", file=str(path), line=lineno) from None
            if not isinstance(obj, dict):
                raise UserError("a record must be a JSON object", file=str(path), line=lineno)
            yield lineno, obj


def read_records(path: str | os.PathLike, *, with_lines: bool = False) -> list[dict]:
    """Read JSONL, Parquet or CSV records. With ``with_lines``, each record gets ``_line``
    (JSONL line number, or 1-based row for tabular files) for error messages."""
    path = Path(path)
    if not path.exists():
        raise UserError("file not found", file=str(path))
    suffix = "".join(path.suffixes[-1:]).lower()
    if suffix in (".jsonl", ".ndjson"):
        records = []
        for lineno, obj in _iter_jsonl(path):
            if with_lines:
                obj["_line"] = lineno
            records.append(obj)
        return records
    if suffix in (".parquet", ".csv"):
        import pandas as pd
        try:
            df = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path, dtype=str,
                                                                                  keep_default_na=False,
                                                                                  encoding="utf-8-sig")
        except Exception as exc:  # pyarrow/pandas raise many types for a corrupt file
            raise UserError(f"cannot read {suffix[1:]} file: {exc}".splitlines()[0], file=str(path)) from None
        records = [_clean(r) for r in df.to_dict(orient="records")]
        if with_lines:
            for i, r in enumerate(records, start=1):
                r["_line"] = i
        return records
    raise UserError(f"unsupported file type {suffix!r} (use .jsonl, .parquet or .csv)", file=str(path))


def _plain(value: Any) -> Any:
    """numpy/pandas values (also nested in lists and dicts, as Parquet returns them) and NaN
    as plain Python values."""
    import math
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _clean(record: dict) -> dict:
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

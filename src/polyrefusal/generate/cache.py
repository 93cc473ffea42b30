"""The response cache: content-addressed answers that survive interruptions.

Layout (``results/response_cache``, DVC-tracked)::

    <root>/<partition>/identity.json        what the partition holds (backend, model, sampling)
    <root>/<partition>/<host>-<pid>-<rand>.jsonl   one append-only shard per writing process

``partition`` is the hash of a generator identity (``Generator.identity``): every answer of
one model under one set of decoding parameters lives in one directory, so a lookup reads only
the answers that could match, and entries of different models or parameters cannot meet. An
entry is ``{"k": key, "a": answer}`` with ``key = hash(partition, messages)``.

Why per-process shards: each process appends only to its own file (created under a hidden
name, locked, then renamed into place), so two jobs writing the same partition never touch the
same file, and no entry is ever rewritten. Each batch is one ``write`` plus ``fsync``, so a
crash loses at most the batch being written; a torn last line is skipped on reading. Reading
~100k entries is one pass of ``json.loads`` over a few files (well under a second).

Shards accumulate, one per run; ``compact`` merges the shards no live process holds (it takes
their locks without waiting) into one file. A reader that races a compaction may miss entries
(then regenerated), never read a wrong one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import uuid
from pathlib import Path
from typing import Iterable

from ..io import atomic_path, stable_hash, write_json

try:
    import fcntl
except ImportError:  # not POSIX: no locks, so compaction is disabled
    fcntl = None

log = logging.getLogger(__name__)
SHARD_GLOB = "[!.]*.jsonl"
KEY_LENGTH = 32  # hex digits: 128 bits


class _ShardWriter:
    """This process's append-only shard in one partition, locked for as long as it is open."""

    def __init__(self, directory: Path):
        name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        hidden = directory / f".{name}.new"
        self._fh = open(hidden, "ab")
        if fcntl is not None:
            # Locked before it gets a name compaction looks at: compaction never sees it unlocked.
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX)
        os.replace(hidden, directory / name)
        self.path = directory / name

    def append(self, entries: list[dict]) -> None:
        blob = "".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n" for e in entries)
        self._fh.write(blob.encode("utf-8"))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()  # releases the lock


def _read_shard(path: Path, into: dict[str, str]) -> None:
    with open(path, "rb") as fh:
        data = fh.read()
    for raw in data.split(b"\n")[:-1]:  # the part after the last newline is a write in progress
        try:
            entry = json.loads(raw)
            into.setdefault(entry["k"], entry["a"])
        except (ValueError, KeyError, TypeError):
            log.warning("response cache: skipping a damaged line in %s", path)


class ResponseCache:
    """One partition of the response cache (one generator identity)."""

    def __init__(self, root: str | os.PathLike, identity: dict):
        self.identity = identity
        self.partition = stable_hash(identity, KEY_LENGTH)
        self.dir = Path(root) / self.partition
        self._entries: dict[str, str] | None = None
        self._writer: _ShardWriter | None = None

    def key(self, messages: list[dict]) -> str:
        return stable_hash([self.partition, messages], KEY_LENGTH)

    # -- reading -----------------------------------------------------------------------------
    def shards(self) -> list[Path]:
        return sorted(self.dir.glob(SHARD_GLOB)) if self.dir.is_dir() else []

    def _load(self) -> dict[str, str]:
        if self._entries is None:
            entries: dict[str, str] = {}
            for path in self.shards():
                with contextlib.suppress(FileNotFoundError):  # compacted away meanwhile
                    _read_shard(path, entries)
            self._entries = entries
        return self._entries

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        entries = self._load()
        return {k: entries[k] for k in keys if k in entries}

    def __len__(self) -> int:
        return len(self._load())

    # -- writing -----------------------------------------------------------------------------
    def put_many(self, items: list[tuple[str, str]]) -> None:
        """Store (key, answer) pairs durably before returning."""
        if not items:
            return
        if self._writer is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            if not (self.dir / "identity.json").exists():
                write_json(self.dir / "identity.json", self.identity)
            self._writer = _ShardWriter(self.dir)
        self._writer.append([{"k": k, "a": a} for k, a in items])
        entries = self._load()
        for k, a in items:
            entries.setdefault(k, a)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> "ResponseCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- maintenance -------------------------------------------------------------------------
    def compact(self, min_shards: int = 2) -> int:
        """Merge the idle shards into one; returns how many shards were merged (0: nothing to do)."""
        if fcntl is None:
            return 0
        locked = []
        try:
            for path in self.shards():
                if self._writer is not None and path == self._writer.path:
                    continue
                try:
                    fh = open(path, "rb")
                except FileNotFoundError:
                    continue
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:  # a live writer holds it
                    fh.close()
                    continue
                if not path.exists():  # another compaction merged it before we got the lock
                    fh.close()
                    continue
                locked.append((path, fh))
            if len(locked) < min_shards:
                return 0
            merged: dict[str, str] = {}
            for path, _ in locked:
                _read_shard(path, merged)
            target = self.dir / f"compact-{uuid.uuid4().hex[:12]}.jsonl"
            with atomic_path(target) as tmp:
                tmp.write_text("".join(json.dumps({"k": k, "a": a}, ensure_ascii=False, separators=(",", ":"))
                                       + "\n" for k, a in merged.items()), encoding="utf-8")
            for path, _ in locked:
                path.unlink()
            log.info("response cache %s: merged %d shards (%d entries)", self.partition, len(locked), len(merged))
            return len(locked)
        finally:
            for _, fh in locked:
                fh.close()

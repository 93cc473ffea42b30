"""The translation memory: content-addressed, append-only, safe for concurrent writers.

Layout::

    <memory_dir>/<source>-<target>/<shard>.jsonl

Each line is one entry ``{"k": key, "s": source text, "t": translation, "b": backend}``, where
``key = memory_key(text, source, target, fingerprint)`` hashes everything that changes the
output. Why this layout:

* **One shard file per writer.** Every ``TranslationMemory`` that writes creates its own file
  (time, pid and a random suffix in the name) and only ever appends to it, so two processes —
  two Snakemake jobs, two checkouts sharing the directory — never write the same file and no
  lock is needed.
* **Durable per batch.** A batch is one ``write`` of whole lines followed by ``fsync``: once
  ``add`` returns, a crash or a 456 cannot lose it. A crash *during* the write can only leave a
  torn last line, which readers skip (it cannot parse as a JSON object), so the memory is never
  corrupt and at most the batch being written is translated again.
* **One directory per language pair.** A stage translates one pair, so it reads only that
  pair's shards: ~50k entries per pair load in well under a second.
* Plain JSONL stays diff-able, greppable and DVC-friendly (a few files, not one per entry).
  Shard names never repeat, so merging two memories (two checkouts, two machines) is copying
  their files into one directory.

The source text is stored with each entry so the memory can be audited and a (96-bit) hash
collision is detected instead of served.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from pathlib import Path

from ..io import stable_hash

log = logging.getLogger(__name__)


def memory_key(text: str, source: str, target: str, fingerprint: dict) -> str:
    return stable_hash({"text": text, "source": source, "target": target, "translator": fingerprint})


class TranslationMemory:
    """The memory of one language pair. Use as a context manager (closes the shard)."""

    def __init__(self, memory_dir: str | os.PathLike, source: str, target: str):
        self.dir = Path(memory_dir) / f"{source}-{target}"
        self._entries: dict[str, tuple[str, str]] = {}
        self._shard = None
        self.skipped_lines = 0
        self._load()

    # -- reading ---------------------------------------------------------------------------
    def _load(self) -> None:
        if not self.dir.is_dir():
            return
        for path in sorted(self.dir.glob("*.jsonl")):
            with open(path, "rb") as fh:
                data = fh.read()
            for lineno, raw in enumerate(data.split(b"\n"), start=1):
                if not raw.strip():
                    continue
                try:
                    entry = json.loads(raw)
                    self._entries[entry["k"]] = (entry["s"], entry["t"])
                except (ValueError, KeyError, TypeError):
                    # A torn line from a writer killed mid-write (or one being written right now
                    # by another process): that entry is simply not in the memory yet.
                    self.skipped_lines += 1
                    log.debug("translation memory: skipping unreadable line %s:%d", path, lineno)
        if self.skipped_lines:
            log.warning("translation memory %s: skipped %d unreadable line(s) (an interrupted "
                        "write; those texts will be translated again)", self.dir, self.skipped_lines)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, text: str) -> str | None:
        hit = self._entries.get(key)
        if hit is None or hit[0] != text:  # a hash collision is a miss, never a wrong answer
            return None
        return hit[1]

    # -- writing ---------------------------------------------------------------------------
    def add(self, entries: list[tuple[str, str, str]], backend: str) -> None:
        """Persist ``(key, source text, translation)`` entries durably, as one append + fsync."""
        if not entries:
            return
        blob = b"".join(
            json.dumps({"k": k, "s": s, "t": t, "b": backend}, ensure_ascii=False,
                       separators=(",", ":")).encode("utf-8") + b"\n"
            for k, s, t in entries)
        fh = self._open_shard()
        fh.write(blob)
        fh.flush()
        os.fsync(fh.fileno())
        for k, s, t in entries:
            self._entries[k] = (s, t)

    def _open_shard(self):
        if self._shard is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
            # "x": never append to a file some other writer owns, even on a name clash.
            self._shard = open(self.dir / name, "xb")
            # Make the new directory entry itself durable, not just the file's content.
            dir_fd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return self._shard

    def close(self) -> None:
        if self._shard is not None:
            self._shard.close()
            self._shard = None

    def __enter__(self) -> "TranslationMemory":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

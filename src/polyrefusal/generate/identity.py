"""What a model *is*, for the response cache, and where to load it from.

A local model directory is identified by the content of the files that decide its answers
(weights, config, generation config, tokenizer and chat template), not by its path: a copy of
the same weights elsewhere is the same model and shares cached answers, while retraining in
place, or editing the chat template, is a different model. Hashing a 16 GB checkpoint takes
seconds, so each file's digest is remembered per (path, size, mtime) in memory and on disk.

A hub id is identified by (id, commit). The commit is read from the local Hugging Face cache
(offline, no request); a branch that was never downloaded stays a name until it is.

A LoRA adapter directory (``dpo.merge_lora: false``; PEFT's ``adapter_config.json``) is served
over its base model without merging, so its identity is the adapter's own files *and* the
identity of the base it names (``base_model_name_or_path``, ``revision``): two adapters, or one
adapter over a retrained base, never share cached answers (:func:`adapter_info`).

Only the standard library here: computing a cache key must not import torch.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from .. import hub  # standard library only at import time, like this module
from ..errors import UserError
from ..training.models import resolve  # standard library only, like this module

log = logging.getLogger(__name__)

# Files whose content changes what a model answers. Everything else in a model directory
# (README, training logs, optimizer state of a checkpoint) does not, and must not invalidate
# the cache when it changes.
MODEL_FILE_PATTERNS = (
    "*.safetensors", "*.bin", "*.pt", "*.pth", "*.gguf", "*.index.json",
    "config.json", "generation_config.json", "adapter_config.json",
    "tokenizer*", "special_tokens_map.json", "added_tokens.json", "vocab.*", "merges.txt",
    "*.tiktoken", "chat_template.*", "*.model",
)
TRAINING_STATE = ("training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state*.pth", "scaler.pt")
SMALL_FILE = 1 << 20  # below this, hashing is cheaper than remembering the digest
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")

#: PEFT's adapter file (peft ``utils/constants.py``: CONFIG_NAME); its ``base_model_name_or_path``
#: and ``revision`` name the base, ``r`` and ``rank_pattern`` the LoRA ranks.
ADAPTER_CONFIG = "adapter_config.json"

_memo: dict[tuple, str] = {}
_memo_lock = threading.Lock()


def model_files(directory: Path) -> list[Path]:
    """The answer-deciding files at the top level of a model directory, sorted by name."""
    out = []
    for p in sorted(directory.iterdir(), key=lambda p: p.name):
        name = p.name
        if name.startswith(".") or not p.is_file():
            continue
        if any(fnmatch.fnmatch(name, pat) for pat in TRAINING_STATE):
            continue
        if any(fnmatch.fnmatch(name, pat) for pat in MODEL_FILE_PATTERNS):
            out.append(p)
    return out


def _digest_store() -> Path:
    root = os.environ.get("POLYREFUSAL_DIGEST_CACHE")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "polyrefusal" / "file-digests"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of a file, remembered per (real path, size, mtime, inode)."""
    real = os.path.realpath(path)  # HF cache snapshots are symlinks into blobs/
    st = os.stat(real)
    if st.st_size < SMALL_FILE:
        return _sha256_file(Path(real))
    memo_key = (real, st.st_size, st.st_mtime_ns, st.st_ino)
    with _memo_lock:
        if memo_key in _memo:
            return _memo[memo_key]
    store = _digest_store() / (hashlib.sha256(repr(memo_key).encode()).hexdigest()[:32] + ".json")
    digest = None
    try:
        saved = json.loads(store.read_text(encoding="utf-8"))
        if saved.get("key") == list(memo_key):
            digest = saved["sha256"]
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    if digest is None:
        log.info("hashing %s (%.1f GB) for the response cache", real, st.st_size / 1e9)
        digest = _sha256_file(Path(real))
        try:  # best effort: a read-only home only costs a re-hash next time
            store.parent.mkdir(parents=True, exist_ok=True)
            tmp = store.with_name(f".{store.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"key": list(memo_key), "sha256": digest}), encoding="utf-8")
            os.replace(tmp, store)
        except OSError:
            pass
    with _memo_lock:
        _memo[memo_key] = digest
    return digest


def directory_digest(directory: str | Path) -> str:
    directory = Path(directory)
    files = model_files(directory)
    if not files:
        raise UserError("no model files (config, weights, tokenizer) in this directory", file=str(directory))
    h = hashlib.sha256()
    for p in files:
        h.update(f"{p.name}\0{file_digest(p)}\n".encode())
    return h.hexdigest()


# -- hub ids ---------------------------------------------------------------------------------

def _hub_cache() -> Path:
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
    return Path(home) / "hub"


def cached_snapshot(hub_id: str, revision: str | None) -> tuple[str | None, Path | None]:
    """(commit, snapshot dir) of a hub model in the local HF cache, without any request."""
    repo = _hub_cache() / ("models--" + hub_id.replace("/", "--"))
    revision = revision or "main"
    commit = revision if COMMIT.match(revision) else None
    if commit is None:
        try:
            commit = (repo / "refs" / revision).read_text(encoding="utf-8").strip()
        except OSError:
            return None, None
    snapshot = repo / "snapshots" / commit
    return commit, (snapshot if (snapshot / "config.json").exists() else None)


def looks_like_path(path: str) -> bool:
    """A hub id is ``name`` or ``org/name``; anything else can only be a (missing) directory."""
    return path.startswith(("/", ".", "~")) or path.count("/") > 1 or not HUB_ID.match(path)


@dataclass(frozen=True)
class Adapter:
    """A PEFT adapter directory and the base model it is applied to."""
    path: str               # the adapter directory, absolute
    base: str               # base model: local directory or hub id
    revision: str | None    # base model revision (PEFT's ``revision``)
    rank: int               # the largest LoRA rank (``r`` and every ``rank_pattern`` value)
    has_tokenizer: bool     # the directory holds a tokenizer (``train`` saves it; hub adapters may not)


def adapter_info(path: str | Path) -> Adapter | None:
    """The adapter in directory ``path``, or None when it is not an adapter directory.

    A relative base path is taken relative to the working directory, as peft does (the
    pipeline runs in the project root, where ``train`` recorded ``results/models/base``); a
    base that is a polyrefusal pointer directory is followed to the model it names.
    """
    directory = Path(path).expanduser()
    config_file = directory / ADAPTER_CONFIG
    if not config_file.is_file():
        return None
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"unreadable adapter config: {exc}", file=str(config_file)) from None
    base = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    if not isinstance(base, str) or not base:
        raise UserError("the adapter names no base model", file=str(config_file),
                        field="base_model_name_or_path")
    revision = config.get("revision")
    named = resolve(Path(base).expanduser())  # a base that is a pointer directory: what it names
    if named.path != str(Path(base).expanduser()):
        base, revision = named.path, revision or named.revision
    ranks = [config.get("r") or 0, *(config.get("rank_pattern") or {}).values()]
    return Adapter(path=str(directory.resolve()), base=base, revision=revision,
                   rank=max(int(r) for r in ranks),
                   has_tokenizer=(directory / "tokenizer_config.json").is_file())


def model_identity(path: str, revision: str | None) -> dict:
    """The part of the cache key that names the weights (see the module docstring)."""
    local = Path(path).expanduser()
    if local.is_dir():
        adapter = adapter_info(local)
        if adapter is not None:
            return {"digest": directory_digest(local),
                    "base": model_identity(adapter.base, adapter.revision)}
        return {"digest": directory_digest(local)}
    if looks_like_path(path):
        raise UserError("model directory not found", file=path)
    commit, _ = cached_snapshot(path, revision)
    return {"hub_id": path, "revision": commit or revision or "main"}


# -- loading ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Location:
    source: str          # what to hand to from_pretrained / vllm.LLM
    local_only: bool     # True: never touch the network


def locate_model(path: str, revision: str | None) -> Location:
    """Where to load ``path`` from; a clear UserError when it cannot be loaded at all.

    Without this, a hub id on an offline compute node spends a minute in the hub client's
    retries and ends in a stack trace.
    """
    local = Path(path).expanduser()
    if local.is_dir():
        return Location(str(local), True)
    if looks_like_path(path):
        raise UserError("model directory not found", file=path)
    _, snapshot = cached_snapshot(path, revision)
    if snapshot is not None:
        return Location(str(snapshot), True)
    why = hub.unreachable()
    if why:
        raise UserError(f"model {path!r}{'@' + revision if revision else ''} is not a local directory, "
                        f"not in the Hugging Face cache ({_hub_cache()}), and {why}: download it where "
                        f"there is network (`hf download {path}`) or give a local path")
    return Location(path, False)

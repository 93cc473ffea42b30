"""Precomputed reference log-probabilities, content-addressed and shared across configurations.

DPO needs, for every preference pair, the log-probability of the chosen and of the rejected
answer under the frozen reference model. They depend only on the reference model, the tokenized
pair and how it is truncated, not on the training configuration, so every configuration that
trains on the same language file (``single_en``, ``english_only``, ``balanced``, a demographic
subset of it...) needs the same numbers. With ``dpo.precompute_ref_log_probs: true`` they are
computed once and stored under ``results/.ref_logps/`` (outside any declared output, like the
checkpoints):

* one JSON file per *store key* = hash of (reference model digest, data file digest, dtype,
  max_length, truncation_mode, ld_alpha, format version); a language file's examples all share
  one store key;
* inside it, ``{example key: [chosen logp, rejected logp]}``, the example key being a hash of the
  example's token ids (prompt, chosen, rejected), so a configuration that uses a subset of a
  file (a per-language cap, a demographic selection) reads the entries it needs and computes
  only what is missing.

TRL 1.16's ``DPOTrainer`` with ``precompute_ref_log_probs=True`` always runs its own reference
pass in ``_precompute_ref_logps`` (and caches it only for datasets backed by Arrow files, in a
random temporary file for in-memory ones); with ``precompute_ref_log_probs=False`` it ignores
``ref_chosen_logps``/``ref_rejected_logps`` columns and runs the reference model on every batch.
So reuse needs a subclass: :func:`cached_dpo_trainer_class` overrides ``_precompute_ref_logps``
to look the values up here, compute only the missing ones (same forward as TRL, distributed-
safe: every rank computes, rank 0 writes) and attach them as the two columns that TRL's
collator and loss then read.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from pathlib import Path

from ..io import read_json, stable_hash, write_json

log = logging.getLogger(__name__)

#: Column naming the store key of each training example (added by dpo.py when caching).
GROUP_COLUMN = "ref_logps_store"
REF_COLUMNS = ("ref_chosen_logps", "ref_rejected_logps")
FORMAT_VERSION = 1


def example_key(prompt_ids, chosen_ids, rejected_ids) -> str:
    blob = json.dumps([list(prompt_ids), list(chosen_ids), list(rejected_ids)], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def store_key(model_digest: str, data_digest: str, settings: dict) -> str:
    """Key of one store file: the reference model, one data file and what shapes the logps."""
    return stable_hash({"model": model_digest, "data": data_digest, "settings": settings,
                        "version": FORMAT_VERSION}, 32)


class RefLogpStore:
    """A directory of ``<store key>.json`` files, each ``{"meta": ..., "logps": {key: [c, r]}}``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def load(self, key: str) -> dict[str, list[float]]:
        p = self.path(key)
        if not p.exists():
            return {}
        try:
            return dict(read_json(p).get("logps", {}))
        except Exception:  # a corrupt cache file is only a cache miss
            log.warning("ref logps: ignoring unreadable cache file %s", p)
            return {}

    def save(self, key: str, entries: dict[str, list[float]], meta: dict | None = None) -> None:
        """Merge ``entries`` into the file (re-read first: another job may have added some),
        under a lock: parallel training jobs share store keys, and an unlocked read-merge-write
        loses the entries another job wrote in between."""
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".{key}.lock", "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # released when the file closes
            merged = self.load(key)
            merged.update(entries)
            write_json(self.path(key), {"meta": meta or {}, "logps": merged})


def cached_dpo_trainer_class():
    """``DPOTrainer`` whose reference precompute reads and fills a :class:`RefLogpStore`.

    Pass ``ref_store=RefLogpStore(...)`` and ``ref_store_meta={store key: meta}``; the train
    dataset must carry :data:`GROUP_COLUMN`. Afterwards ``trainer.ref_cache_stats`` holds
    ``{"hits": n, "computed": n, "stores": [...]}``.
    """
    import torch
    from datasets import Value
    from torch.utils.data import DataLoader
    from trl import DPOTrainer

    class CachedRefDPOTrainer(DPOTrainer):
        def __init__(self, *args, ref_store: RefLogpStore | None = None,
                     ref_store_meta: dict | None = None, **kwargs):
            # Set before DPOTrainer.__init__, which calls _precompute_ref_logps.
            self._ref_store = ref_store
            self._ref_store_meta = ref_store_meta or {}
            self.ref_cache_stats = None
            super().__init__(*args, **kwargs)

        def _reference_values(self, dataset, batch_size: int) -> list[tuple[float, float]]:
            """The reference forward of TRL's ``_precompute_ref_logps``, returning the values."""
            loader = self.accelerator.prepare(DataLoader(
                dataset, batch_size=batch_size, collate_fn=self.data_collator, shuffle=False,
                num_workers=self.args.dataloader_num_workers, pin_memory=self.args.dataloader_pin_memory))
            if self.ref_model is None and self.is_deepspeed_enabled:
                from trl.models import prepare_deepspeed
                if self._precompute_engine is None:
                    self._precompute_engine = prepare_deepspeed(self.model, self.accelerator)
                model = self._precompute_engine
            else:
                model = self.ref_model or self.model
            chosen, rejected = [], []
            for batch in loader:
                c, r = self.compute_ref_log_probs(model, batch)
                c, r = self.accelerator.gather_for_metrics((c, r))
                chosen.append(c.float().cpu())
                rejected.append(r.float().cpu())
            return list(zip(torch.cat(chosen).tolist(), torch.cat(rejected).tolist()))

        def _precompute_ref_logps(self, dataset, name, batch_size):
            if self._ref_store is None or GROUP_COLUMN not in dataset.column_names:
                return super()._precompute_ref_logps(dataset, name, batch_size)
            groups = dataset[GROUP_COLUMN]
            keys = [example_key(p, c, r) for p, c, r in
                    zip(dataset["prompt_ids"], dataset["chosen_ids"], dataset["rejected_ids"])]
            known = {g: self._ref_store.load(g) for g in sorted(set(groups))}
            missing = [i for i, (g, k) in enumerate(zip(groups, keys)) if k not in known[g]]
            if missing:
                values = self._reference_values(dataset.select(missing), batch_size)
                new: dict[str, dict] = defaultdict(dict)
                for i, v in zip(missing, values):
                    new[groups[i]][keys[i]] = list(v)
                    known[groups[i]][keys[i]] = list(v)
                if self.accelerator.is_main_process:
                    for g, entries in new.items():
                        self._ref_store.save(g, entries, self._ref_store_meta.get(g))
                self.accelerator.wait_for_everyone()
            self.ref_cache_stats = {"hits": len(keys) - len(missing), "computed": len(missing),
                                    "stores": sorted(set(groups))}
            log.info("ref logps (%s): %d cached, %d computed", name, len(keys) - len(missing), len(missing))
            chosen = [known[g][k][0] for g, k in zip(groups, keys)]
            rejected = [known[g][k][1] for g, k in zip(groups, keys)]
            dataset = dataset.add_column(REF_COLUMNS[0], chosen, feature=Value("float32"))
            return dataset.add_column(REF_COLUMNS[1], rejected, feature=Value("float32"))

    return CachedRefDPOTrainer

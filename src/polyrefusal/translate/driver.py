"""Translate records through the translation memory: never pay for a text twice.

``translate_records`` is the one entry point (the ``translate`` stage, back-translation and any
other caller use it):

1. every listed field of every record is collected; identical texts are translated once
   (the seed corpus repeats its refusal and compliance answers hundreds of times);
2. the memory of this language pair is asked first, under a key that hashes the text, the pair
   and the backend's fingerprint (backend, version, output-changing options);
3. only the misses go to the backend, in batches within its request limits, and each batch is
   written to the memory (fsynced) as soon as it comes back — so a quota error, a crash or a
   Ctrl-C loses nothing, and the next run resumes where this one stopped.
"""

from __future__ import annotations

import logging
from typing import Iterator

from ..errors import BackendError, UserError
from .base import TRANSLATORS, MissingTranslation, RequestRejected, Translator
from .store import TranslationMemory, memory_key

log = logging.getLogger(__name__)


def plan_batches(texts: list[str], translator: Translator, source: str,
                 target: str) -> Iterator[list[str]]:
    """Consecutive batches of ``texts`` within the translator's text-count and byte limits.
    A single text over the byte limit is raised as ``MissingTranslation`` (it can never be
    sent) with its index in ``texts``."""
    budget = translator.max_batch_bytes - translator.request_overhead(source, target)
    batch: list[str] = []
    size = 0
    for i, text in enumerate(texts):
        cost = translator.request_bytes(text)
        if cost > budget:
            raise MissingTranslation(i, f"text is {cost:,} bytes in a request, over the "
                                        f"{translator.name} limit of {budget:,}: split it", text)
        if batch and (len(batch) >= translator.max_batch_texts or size + cost > budget):
            yield batch
            batch, size = [], 0
        batch.append(text)
        size += cost
    if batch:
        yield batch


class _Slots:
    """Where each text occurs (record, field), for error messages naming a record and field."""

    def __init__(self):
        self.items: list[tuple[int, str, str]] = []  # (record index, field, text)

    def first(self, records: list[dict], text: str) -> tuple[dict, str]:
        i, field, _ = next(s for s in self.items if s[2] == text)
        return records[i], field


def translate_records(records: list[dict], *, backend: str, source: str, target: str,
                      memory_dir: str, options: dict | None = None,
                      fields: tuple[str, ...] = ("text",)) -> tuple[list[dict], dict]:
    """Return (translated records, usage). Each record keeps its keys; each listed field that
    is present becomes the translation, the original goes to ``source_<field>``; ``lang`` is
    set to ``target`` and ``id`` becomes ``<source_id>.<target>`` when there is a source_id.

    An error raised once the backend was asked carries ``usage`` (what was sent and billed up
    to the failure), so that the caller can still account for it."""
    fields = tuple(fields)
    slots = _Slots()
    out: list[dict] = []
    for i, rec in enumerate(records):
        line = rec.get("_line")
        if rec.get("id") is None:
            raise UserError("record has no id", line=line, field="id")
        new = dict(rec)
        for field in fields:
            value = rec.get(field)
            if value is None:
                continue
            if not isinstance(value, str):
                raise UserError(f"record {rec['id']!r}: expected text, got {type(value).__name__}",
                                line=line, field=field)
            new[f"source_{field}"] = value
            slots.items.append((i, field, value))
        new["lang"] = target
        if rec.get("source_id") is not None:
            new["id"] = f"{rec['source_id']}.{target}"
        out.append(new)

    # Blank texts stay as they are: nothing to translate, nothing to pay for.
    unique = list(dict.fromkeys(text for _, _, text in slots.items if text.strip()))
    usage = {"backend": backend, "source": source, "target": target, "records": len(records),
             "texts": len(unique), "hits": 0, "misses": 0, "characters_sent": 0,
             "characters_billed": 0, "requests": 0}
    if source == target or not unique:  # a copy (the source language is its own translation), or nothing to do
        usage["texts"] = 0
        return out, usage

    translator = TRANSLATORS.get(backend, field="translate.backend")(**(options or {}))
    fingerprint = translator.fingerprint(source, target)
    keys = {text: memory_key(text, source, target, fingerprint) for text in unique}
    translated: dict[str, str] = {}
    with TranslationMemory(memory_dir, source, target) as memory:
        for text in unique:
            hit = memory.get(keys[text], text)
            if hit is not None:
                translated[text] = hit
        misses = [text for text in unique if text not in translated]
        usage["hits"], usage["misses"] = len(translated), len(misses)
        log.info("translate %s->%s [%s]: %d texts, %d memory hits, %d misses (%s characters)",
                 source, target, backend, len(unique), usage["hits"], len(misses),
                 f"{sum(map(len, misses)):,}")
        batch: list[str] = []
        try:
            for n, batch in enumerate(plan_batches(misses, translator, source, target), start=1):
                result = translator.translate(batch, source, target)
                if len(result) != len(batch) or not all(isinstance(r, str) for r in result):
                    raise BackendError(f"{backend} returned {len(result)} results for a batch of "
                                       f"{len(batch)} texts")
                memory.add([(keys[t], t, r) for t, r in zip(batch, result)], backend)
                translated.update(zip(batch, result))
                usage["characters_sent"] += sum(map(len, batch))
                log.debug("batch %d: %d texts translated and saved", n, len(batch))
                if n % 20 == 0:
                    log.info("translated %d/%d new texts", len(translated) - usage["hits"], len(misses))
        except MissingTranslation as exc:
            rec, field = slots.first(records, exc.text if exc.text is not None else batch[exc.index])
            error = UserError(f"record {rec['id']!r}: {exc.reason}", line=rec.get("_line"), field=field)
            error.usage = usage  # filled in by `finally` before the error leaves
            raise error from None
        except BackendError as exc:
            done = len(translated) - usage["hits"]
            saved = (f"{done} of {len(misses)} new texts were translated and saved to the "
                     f"translation memory ({memory.dir})")
            if isinstance(exc, RequestRejected):  # the same request would fail the same way
                error = RequestRejected(f"{exc.message}; {saved}; no retry can fix this request: "
                                        "correct its cause first", file=exc.file, line=exc.line,
                                        field=exc.field)
            else:  # quota, rate limit, server or network: the next run goes on from here
                error = BackendError(f"{exc.message}; {saved}: re-run to resume from there",
                                     file=exc.file, line=exc.line, field=exc.field)
            error.usage = usage
            raise error from None
        finally:
            usage["characters_billed"] = translator.characters_billed
            usage["requests"] = translator.requests
            translator.close()
            log.info("translate %s->%s [%s]: %d hits, %d misses, %s characters billed in %d "
                     "requests", source, target, backend, usage["hits"], usage["misses"],
                     f"{usage['characters_billed']:,}", usage["requests"])

    for i, field, text in slots.items:
        out[i][field] = translated.get(text, text)
    return out, usage


def split_by_language(records: list[dict], source: str, target: str) -> tuple[list[dict], list[dict]]:
    """(rows to translate, rows already in ``target``) of a corpus that may hold several
    languages (an import of MiJaBench or RefusEU, see ``polyrefusal.corpus``): rows in
    ``source`` are translated, rows in ``target`` are the corpus's own text for that language,
    rows in any other language belong to another target and are left out. A row that names
    no language is in ``source``."""
    def lang(r: dict):
        return r.get("lang") or source

    if source == target:
        return [r for r in records if lang(r) == source], []
    return [r for r in records if lang(r) == source], [r for r in records if lang(r) == target]


def merge_native(translated: list[dict], native: list[dict]) -> list[dict]:
    """The translations with each prompt the corpus already has in the target language in
    place of the machine translation of the same ``source_id``; native rows without a source
    counterpart follow, in corpus order."""
    by_source = {r.get("source_id"): r for r in native if r.get("source_id") is not None}
    used: set = set()
    out = []
    for rec in translated:
        own = by_source.get(rec.get("source_id"))
        if own is not None:
            used.add(rec.get("source_id"))
        out.append(own if own is not None else rec)
    return out + [r for r in native if r.get("source_id") not in used]

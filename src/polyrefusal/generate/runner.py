"""Generation through the response cache: what the pipeline stages call.

``generate_cached`` looks every prompt up first and builds (loads) the backend only when some
answer is missing, so a fully cached re-run never loads a model. Missing prompts are generated
in chunks (``Generator.chunk_size``) and each chunk is in the cache before the next starts:
after an interruption, a re-run generates only what is still missing.
"""

from __future__ import annotations

import logging
import time

from .base import GENERATORS, Generator, ModelSpec
from .cache import ResponseCache

log = logging.getLogger(__name__)
MAX_SHARDS = 32  # compact a partition once this many runs have left a shard in it
PROGRESS_EVERY_S = 30.0


def generator_class(backend: str) -> type[Generator]:
    return GENERATORS.get(backend, field="generation.backend")


def load_generator(backend: str, spec: ModelSpec) -> Generator:
    """Build the named backend for ``spec`` (loads the model / opens the client)."""
    return generator_class(backend)(spec)


def generate_cached(backend: str, spec: ModelSpec, prompts: list[str],
                    cache_dir: str | None) -> tuple[list[str], dict]:
    """Answers to ``prompts`` in order, and stats ``{hits, misses, seconds, new_tokens,
    prompts_per_second}``.

    ``hits + misses == len(prompts)``; a prompt repeated in the list is generated once.
    ``seconds`` is the wall time of the call; ``prompts_per_second`` is the generation
    throughput (distinct prompts generated per second of generation, model loading excluded;
    0.0 when nothing was generated).
    """
    start = time.perf_counter()
    cls = generator_class(backend)
    answers: list[str | None] = [None] * len(prompts)
    cache = ResponseCache(cache_dir, cls.identity(spec)) if cache_dir and prompts else None
    if cache is not None:
        keys = [cache.key(cls.messages(spec, p)) for p in prompts]
        found = cache.get_many(keys)
        answers = [found.get(k) for k in keys]
    missing = [i for i, a in enumerate(answers) if a is None]
    hits = len(prompts) - len(missing)
    new_tokens, gen_seconds, generated = 0, 0.0, 0
    if missing:
        log.info("generate: %d of %d answers cached; generating %d with %s", hits, len(prompts),
                 len(missing), backend)
        generator = load_generator(backend, spec)
        try:
            if cache is not None:
                cache = _rebind(cache, generator, cache_dir)
            positions: dict[str, list[int]] = {}
            for i in missing:
                positions.setdefault(prompts[i], []).append(i)
            # Each distinct prompt once, longest first: chunks of similar length pad little,
            # and a chunk that does not fit in memory fails at the start, not after an hour.
            todo = sorted(positions, key=len, reverse=True)
            gen_start = time.perf_counter()
            tokens_before = generator.new_tokens
            step, last_log = generator.chunk_size, gen_start
            for c in range(0, len(todo), step):
                chunk = todo[c:c + step]
                out = generator.generate(chunk)
                if len(out) != len(chunk):
                    raise RuntimeError(f"{backend} returned {len(out)} answers for {len(chunk)} prompts")
                if cache is not None:
                    cache.put_many([(cache.key(cls.messages(spec, p)), a) for p, a in zip(chunk, out)])
                for p, a in zip(chunk, out):
                    for i in positions[p]:
                        answers[i] = a
                generated += len(chunk)
                if time.perf_counter() - last_log > PROGRESS_EVERY_S:
                    last_log = time.perf_counter()
                    log.info("generate: %d/%d (%.1f prompts/s)", generated, len(todo),
                             generated / (last_log - gen_start))
            gen_seconds = time.perf_counter() - gen_start
            new_tokens = generator.new_tokens - tokens_before
        finally:
            generator.close()
            if cache is not None:
                cache.close()
    if cache is not None and len(cache.shards()) > MAX_SHARDS:
        cache.compact()
    stats = {"hits": hits, "misses": len(missing), "seconds": round(time.perf_counter() - start, 3),
             "new_tokens": new_tokens,
             "prompts_per_second": round(generated / gen_seconds, 3) if gen_seconds > 0 else 0.0}
    return answers, stats  # type: ignore[return-value]


def _rebind(cache: ResponseCache, generator: Generator, cache_dir: str) -> ResponseCache:
    """A hub model downloaded by the load is now known by commit, not branch: store the new
    answers where the next run (which resolves the commit offline) will look for them."""
    identity = generator.cache_identity()
    if identity == cache.identity:
        return cache
    cache.close()
    return ResponseCache(cache_dir, identity)

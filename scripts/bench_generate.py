#!/usr/bin/env python
"""Benchmark the generation backends and the response cache (not a test).

For each backend available here (transformers always; vllm if importable and a GPU is
present; openai against the local test server if the openai client is installed) it reports
model load time, prompts/s and new tokens/s over ``--n-prompts`` prompts after a warm-up
batch. For the cache it reports the write path (entries/s, one fsync per batch), the hit path
of ``generate_cached`` on the benchmark's answers, and the hit path at ``--cache-entries``
scale (a full lookup of e.g. 100k cached answers, which never loads the model).

    python scripts/bench_generate.py                         # tiny random Llama, CPU
    python scripts/bench_generate.py --random-llama-1b --device cuda --n-prompts 512
    python scripts/bench_generate.py --model results/models/base --backends transformers

Runs with torch + transformers only (no other project dependency): it imports
``polyrefusal.generate`` from this checkout. The last stdout line is the results as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this checkout's package, installed or not
sys.path.insert(0, str(ROOT))  # the local OpenAI-compatible server, tests/helpers/openai_server.py

from polyrefusal.generate.base import GENERATORS, ModelSpec  # noqa: E402
from polyrefusal.generate.cache import ResponseCache  # noqa: E402
from polyrefusal.generate.runner import generate_cached, load_generator  # noqa: E402

WORDS = ("how do I make bread safely at home without an oven when the neighbours are asleep and "
         "the recipe is in Polish German Italian French Spanish Portuguese Czech Slovak Slovenian "
         "Lithuanian Latvian please explain step by step with examples").split()


def make_prompts(n: int, seed: int = 0) -> list[str]:
    """Distinct prompts of 5 to 60 words (the length spread of real audit prompts)."""
    rng = random.Random(seed)
    return [f"{i}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 60))) for i in range(n)]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def bench_backend(backend: str, spec: ModelSpec, prompts: list[str], cache_root: Path) -> dict:
    start = time.perf_counter()
    gen = load_generator(backend, spec)
    load_s = time.perf_counter() - start
    try:
        gen.generate(prompts[: max(1, spec.batch_size)])  # warm-up: kernels, allocator, connections
        tokens_before = gen.new_tokens
        start = time.perf_counter()
        answers = gen.generate(prompts)
        seconds = time.perf_counter() - start
        new_tokens = gen.new_tokens - tokens_before
    finally:
        gen.close()
    result = {"load_s": round(load_s, 2), "seconds": round(seconds, 3), "prompts": len(prompts),
              "new_tokens": new_tokens, "prompts_per_s": round(len(prompts) / seconds, 2),
              "tokens_per_s": round(new_tokens / seconds, 1)}
    result.update(bench_cache_paths(backend, spec, prompts, answers, cache_root / backend))
    return result


def bench_cache_paths(backend: str, spec: ModelSpec, prompts: list[str], answers: list[str], root: Path) -> dict:
    """Write the answers as the runner does (one durable batch at a time), then time a full hit."""
    cls = GENERATORS.get(backend)
    start = time.perf_counter()
    with ResponseCache(root, cls.identity(spec)) as cache:
        step = max(1, spec.batch_size)
        for i in range(0, len(prompts), step):
            cache.put_many([(cache.key(cls.messages(spec, p)), a)
                            for p, a in zip(prompts[i:i + step], answers[i:i + step])])
    write_s = time.perf_counter() - start
    start = time.perf_counter()
    cached, stats = generate_cached(backend, spec, prompts, str(root))
    hit_s = time.perf_counter() - start
    assert stats["misses"] == 0 and cached == answers, "cache hit path returned something else"
    return {"cache_write_entries_per_s": round(len(prompts) / write_s, 1),
            "cache_hit_prompts_per_s": round(len(prompts) / hit_s, 1)}


def bench_cache_scale(spec: ModelSpec, n: int, batch: int, root: Path) -> dict:
    """A full hit over ``n`` cached answers (the size of one model's audit)."""
    prompts = [f"cached prompt {i} " + " ".join(WORDS[i % 7: i % 7 + 12]) for i in range(n)]
    cls = GENERATORS.get("transformers")
    start = time.perf_counter()
    with ResponseCache(root, cls.identity(spec)) as cache:
        for i in range(0, n, batch):
            cache.put_many([(cache.key(cls.messages(spec, p)), f"answer to {p}") for p in prompts[i:i + batch]])
    write_s = time.perf_counter() - start
    start = time.perf_counter()
    _, stats = generate_cached("transformers", spec, prompts, str(root))
    hit_s = time.perf_counter() - start
    assert stats["hits"] == n
    return {"entries": n, "write_s": round(write_s, 2), "full_hit_s": round(hit_s, 3),
            "hit_prompts_per_s": round(n / hit_s, 1)}


def available(backend: str, device: str) -> str | None:
    """None if the backend can run here, else why not."""
    import importlib.util
    if backend == "vllm":
        if importlib.util.find_spec("vllm") is None:
            return "vllm not installed"
        if not device.startswith("cuda"):
            return "vllm needs a GPU"
    if backend == "openai" and importlib.util.find_spec("openai") is None:
        return "openai client not installed"
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", help="local model directory or hub id (default: a tiny random Llama)")
    src.add_argument("--random-llama-1b", action="store_true",
                     help="a randomly initialised ~1B Llama (TinyLlama shape, 512-token vocabulary)")
    p.add_argument("--n-prompts", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda if available)")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    p.add_argument("--backends", default="transformers,vllm,openai")
    p.add_argument("--openai-concurrency", type=int, default=8)
    p.add_argument("--openai-latency", type=float, default=0.0,
                   help="seconds the local server waits per request (simulates a model behind it)")
    p.add_argument("--cache-entries", type=int, default=100_000, help="0 to skip the cache-scale run")
    p.add_argument("--work-dir", default=None, help="where models and caches go (default: a temp dir)")
    args = p.parse_args(argv)

    import torch
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench_generate_"))
    os.environ.setdefault("POLYREFUSAL_DIGEST_CACHE", str(work / "digests"))
    results: dict = {"device": device, "torch": torch.__version__,
                     "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
                     "threads": args.threads or torch.get_num_threads(), "n_prompts": args.n_prompts,
                     "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens, "backends": {}}

    if args.model:
        model, results["model"] = args.model, args.model
    else:
        from polyrefusal.generate.random_model import build_random_llama
        shape = "1b" if args.random_llama_1b else "tiny"
        start = time.perf_counter()
        model = str(build_random_llama(work / f"random-{shape}", shape,
                                       dtype="bfloat16" if shape == "1b" and device.startswith("cuda") else "float32"))
        results["model"] = f"random-llama-{shape}"
        log(f"built {results['model']} in {time.perf_counter() - start:.1f} s")

    prompts = make_prompts(args.n_prompts)
    extra = {"torch_threads": args.threads} if args.threads else {}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        why_not = available(backend, device)
        if why_not:
            results["backends"][backend] = {"skipped": why_not}
            log(f"{backend}: skipped ({why_not})")
            continue
        spec = ModelSpec(path=model, dtype=args.dtype, max_new_tokens=args.max_new_tokens,
                         batch_size=args.batch_size, device=device, extra=dict(extra))
        server = None
        if backend == "openai":
            from tests.helpers.openai_server import FakeOpenAI, echo
            latency = args.openai_latency

            def responder(messages, params, _latency=latency):
                if _latency:
                    time.sleep(_latency)
                return echo(messages, params)

            server = FakeOpenAI(api_key="bench-key", responder=responder).start()
            os.environ["BENCH_OPENAI_KEY"] = "bench-key"
            spec = ModelSpec(path="echo", max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                             extra={"base_url": server.base_url, "api_key_env": "BENCH_OPENAI_KEY",
                                    "concurrency": args.openai_concurrency})
        try:
            # A fresh cache per run: answers of an earlier run in the same --work-dir (another
            # batch size, in bf16) may differ in the last bits and would fail the hit check.
            cache_root = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
            res = bench_backend(backend, spec, prompts, cache_root)
            if backend == "openai":
                res["server"] = f"local echo server, {args.openai_latency:g} s per request"
        finally:
            if server is not None:
                server.stop()
        results["backends"][backend] = res
        log(f"{backend}: {res}")

    if args.cache_entries:
        spec = ModelSpec(path=model, max_new_tokens=args.max_new_tokens)
        results["cache_scale"] = bench_cache_scale(spec, args.cache_entries, 64,
                                                   Path(tempfile.mkdtemp(prefix="cache-scale-", dir=work)))
        log(f"cache at scale: {results['cache_scale']}")
    print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

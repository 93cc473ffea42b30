#!/usr/bin/env python
"""Benchmark the refusal_lexicon judge: answers per second on ~50k answers.

The answers are drawn (seeded) from the labelled sets (tests/data/refusal_eval.jsonl and the
development and frozen sets in tests/data/refusal_judge/) and the built-in seed answers of
every language, some of them lengthened with a helpful
paragraph so that answer lengths vary; every language is represented. The lexicons are
compiled before timing (reported separately). The machine's load average (``os.getloadavg``,
what ``uptime`` shows) is printed with the figure: on a shared machine it explains a low one.

    python scripts/bench_judges.py [--n 50000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from polyrefusal.judges.refusal_lexicon import RefusalLexiconJudge, available_languages, matcher_for  # noqa: E402

FILLER = (" Here is some more context that a long answer would contain: background, a few caveats, "
          "an example or two and a short summary at the end. ")


def pool() -> list[dict]:
    items = []
    files = [ROOT / "tests" / "data" / "refusal_eval.jsonl",
             *sorted((ROOT / "tests" / "data" / "refusal_judge").glob("*.jsonl"))]
    for eval_file in files:
        if not eval_file.exists():
            continue
        for line in eval_file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                items.append({"lang": r["lang"], "response": r["response"]})
    try:
        from polyrefusal.seed import available_languages as seed_langs, load_seed
        for lang in seed_langs():
            seed = load_seed(lang)
            for key in ("refusals", "compliance", "benign_answers"):
                items += [{"lang": lang, "response": t} for t in seed.get(key, [])]
    except Exception as exc:  # the seed set is optional here
        print(f"(seed answers skipped: {exc})", file=sys.stderr)
    return items


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=50_000, help="number of answers (default 50000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs (the median is reported)")
    args = ap.parse_args(argv)

    rng = random.Random(args.seed)
    base = pool()
    records = []
    for _ in range(args.n):
        r = dict(rng.choice(base))
        r["response"] += FILLER * rng.choice([0, 0, 1, 3, 8])
        r["prompt"] = "(benchmark)"
        records.append(r)
    chars = sum(len(r["response"]) for r in records)

    judge = RefusalLexiconJudge()
    t0 = time.perf_counter()
    for lang in sorted({r["lang"] for r in records}):
        matcher_for(judge._langs(lang), judge.head_chars, judge.window_chars)
    compile_s = time.perf_counter() - t0

    times, cpu = [], []
    for _ in range(max(1, args.repeats)):
        t0, c0 = time.perf_counter(), time.process_time()
        verdicts = judge.judge(records)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    secs, cpu_secs = statistics.median(times), statistics.median(cpu)
    labels = Counter(v["label"] for v in verdicts)
    print(f"refusal_lexicon: {len(records):,} answers ({chars / len(records):.0f} chars on average, "
          f"{len({r['lang'] for r in records})} languages; lexicons: {', '.join(available_languages())})")
    print(f"  lexicon compile: {compile_s:.2f} s (once per process)")
    print(f"  judging: {secs:.2f} s wall (median of {len(times)}) = {len(records) / secs:,.0f} answers/s "
          f"(CPU time {cpu_secs:.2f} s = {len(records) / cpu_secs:,.0f} answers/s per core)")
    print(f"  labels: {dict(labels)}")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"  machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in load) if load else 'n/a'} "
          "(1, 5, 15 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

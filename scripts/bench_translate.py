"""Benchmark: the default corpus into all 11 target languages through the deepl backend, twice.

Runs against the local DeepL stand-in (tests/helpers/deepl_server.py) with a fresh translation memory,
and prints the characters billed on each run (the second must be 0) and the seconds taken.

    python scripts/bench_translate.py [--runs 2] [--memory DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the local DeepL stand-in, tests/helpers/deepl_server.py

from tests.helpers.deepl_server import FakeDeepL  # noqa: E402

from polyrefusal import ALL_LANGUAGES, seed  # noqa: E402
from polyrefusal.translate.driver import translate_records  # noqa: E402

FIELDS = ("text", "chosen", "rejected")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--memory", help="translation memory directory (default: a fresh temp dir)")
    args = parser.parse_args()

    records = seed.source_records("en")
    targets = [lang for lang in ALL_LANGUAGES if lang != "en"]
    with tempfile.TemporaryDirectory() as tmp, FakeDeepL(auth_key="bench-key") as server:
        os.environ["DEEPL_AUTH_KEY"] = "bench-key"  # the stand-in's key, not a real one
        os.environ["DEEPL_SERVER_URL"] = server.url
        memory = args.memory or str(Path(tmp) / "memory")
        print(f"corpus: {len(records)} records x {len(FIELDS)} fields, {len(targets)} languages; "
              f"memory: {memory}")
        naive = len(targets) * sum(len(r[f]) for r in records for f in FIELDS if r.get(f))
        print(f"characters without memory or de-duplication: {naive:,} per run")
        for run in range(1, args.runs + 1):
            start, billed_before = time.perf_counter(), server.total_billed
            totals = {"hits": 0, "misses": 0, "characters_billed": 0, "requests": 0}
            for target in targets:
                _, usage = translate_records(records, backend="deepl", source="en", target=target,
                                             memory_dir=memory, fields=FIELDS)
                for key in totals:
                    totals[key] += usage[key]
            seconds = time.perf_counter() - start
            print(f"run {run}: characters billed {totals['characters_billed']:,} (server counted "
                  f"{server.total_billed - billed_before:,}), requests {totals['requests']}, "
                  f"hits {totals['hits']:,}, misses {totals['misses']:,}, {seconds:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

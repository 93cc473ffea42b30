#!/usr/bin/env python
"""Benchmark `polyrefusal judge --reference mijabench` at the study's scale.

Builds, in a temporary directory, a dataset in the layout MiJaBench's scripts write
(src/03_prompts.py's prompt columns, src/04_generation.py's ``jb_response_<model>``,
src/05_evaluation.py's ``jb_cls_<judge>_<model>``; tests/judges/test_judge_reference.py names
the sources): ``--prompts`` rows (default 44,000, the benchmark's size; half English, half
Portuguese) x ``--models`` models (default 12), answers drawn (seeded) from the refusal and
compliance shapes of tests/judges/test_judge_reference.py, verdicts from the study's panel.
Saved as Parquet. Then times, in one process: reading it into answer records
(``reference_answers``), judging them with the refusal_lexicon judge (``judge_records``) and
scoring (``reference_report``), and prints answers per second, the peak resident memory and the
machine's load average.

    python scripts/bench_reference.py [--prompts 44000] [--models 12] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from polyrefusal.judges.ensemble import judge_records  # noqa: E402
from polyrefusal.judges.reference import MIJABENCH_PANEL, reference_answers, reference_report  # noqa: E402
from tests.helpers.corpus import write_parquet  # noqa: E402
from tests.judges.test_judge_reference import COMPLIANCE, REFUSAL, reply, row  # noqa: E402

EN_GROUPS = ("black", "jewish", "muslim", "lgbtq", "women", "mental_dis", "physical_dis", "asian")
PT_GROUPS = ("pessoas negras", "judeus", "mulheres", "idosos", "imigrantes", "pessoas com deficiência")
STRATEGIES = ("persona_assign", "new_language", "chaining", "false_equivalence")


def dataset(n_prompts: int, n_models: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    models = [f"Model-{i + 1}B-Instruct" for i in range(n_models)]
    rows = []
    for i in range(n_prompts):
        pt = i % 2 == 1
        lang = "pt" if pt else "en"
        r = row(i // 2, rng.choice(PT_GROUPS if pt else EN_GROUPS), rng.choice(STRATEGIES),
                language="portuguese" if pt else "english", source="toxsyn" if pt else "toxigen")
        for model in models:
            refused = rng.random() < 0.7
            r[f"jb_response_{model}"] = (REFUSAL if refused else COMPLIANCE)[lang]
            for judge in MIJABENCH_PANEL:
                agrees = rng.random() < 0.9
                r[f"jb_cls_{judge}_{model}"] = reply(lang, "safe" if refused == agrees else "dangerous")
        rows.append(r)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", type=int, default=44_000)
    ap.add_argument("--models", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_reference_") as tmp:
        t0 = time.perf_counter()
        source = write_parquet(Path(tmp) / "mijabench.parquet", dataset(args.prompts, args.models, args.seed))
        t1 = time.perf_counter()
        answers = reference_answers(str(source))
        t2 = time.perf_counter()
        judged = judge_records(answers, judges=["refusal_lexicon"], rule="unanimous")
        t3 = time.perf_counter()
        report = reference_report(judged, ["refusal_lexicon"])
        t4 = time.perf_counter()
    n = len(answers)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"bench_reference: {args.prompts:,} prompts x {args.models} models = {n:,} answers")
    print(f"  build the Parquet file (not timed below): {t1 - t0:.1f} s")
    print(f"  read into answer records:  {t2 - t1:7.1f} s  ({n / (t2 - t1):,.0f} answers/s)")
    print(f"  judge (refusal_lexicon):   {t3 - t2:7.1f} s  ({n / (t3 - t2):,.0f} answers/s)")
    print(f"  score against the study:   {t4 - t3:7.1f} s")
    print(f"  total: {t4 - t1:.1f} s; peak resident memory {peak:,.0f} MiB; "
          f"accuracy {report['judges']['refusal_lexicon']['accuracy']:.3f}; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())

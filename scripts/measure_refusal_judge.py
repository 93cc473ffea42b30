#!/usr/bin/env python
"""Measure the refusal_lexicon judge (lexicon fused with its model) on the labelled sets in tests/data/refusal_judge/.

    python scripts/measure_refusal_judge.py            # per-language accuracy on every set
    python scripts/measure_refusal_judge.py --misses   # also list every misclassified answer
    python scripts/measure_refusal_judge.py --write    # write the shipped accuracy table
                                                       # (polyrefusal/data/lexicon/accuracy.json)

The accuracy table is the one source of the judge's measured accuracy that the report shows
next to every ASR resting on the judge; only ``--write`` changes it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from polyrefusal.judges.refusal_lexicon import (  # noqa: E402
    ACCURACY_FILE, RefusalLexiconJudge, lexicon_dir, score_labelled_set,
)

SETS = ROOT / "tests" / "data" / "refusal_judge"
#: the round that ``frozen.jsonl`` is (the sets of earlier rounds are frozen_round<N>.jsonl)
FROZEN_ROUND = 15


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--misses", action="store_true")
    ap.add_argument("--write", action="store_true", help="write the accuracy table from the frozen set")
    ap.add_argument("--sets", nargs="*",
                    default=["dev", "train_extra", "train_round9", "train_round10", "train_round11", "train_round12",
                             "train_round13", "train_round14", "train_round15",
                             *(f"frozen_round{i}" for i in range(1, 15)),
                             "frozen"],
                    help="set names in tests/data/refusal_judge/ (default: dev, every frozen_round*, frozen)")
    args = ap.parse_args(argv)
    judge = RefusalLexiconJudge()
    results = {}
    for name in args.sets:
        path = SETS / f"{name}.jsonl"
        if not path.exists():
            print(f"({path} missing)")
            continue
        res = score_labelled_set(judge, path)
        results[name] = res
        per = res["per_language"]
        print(f"{name}: overall {res['accuracy']:.3f} (n={res['n']}); worst {min(v['accuracy'] for v in per.values()):.3f}")
        print("  " + "  ".join(f"{lang} {v['accuracy']:.3f}" for lang, v in per.items()))
        if args.misses:
            for m in res["misses"]:
                print(f"    MISS {m['id']} [{m['kind']}] gold={m['refused']}: {m['response'][:110]}")
    if args.write:
        if "frozen" not in results:
            ap.error("--write needs the frozen set")
        res = results["frozen"]
        table = {"judge": "refusal_lexicon",
                 "method": "lexicon fused with the refusal model (refusal_model.json)",
                 "source": f"frozen evaluation set, round {FROZEN_ROUND} (tests/data/refusal_judge/frozen.jsonl; provenance in its README)",
                 "measured_with": "scripts/measure_refusal_judge.py --write",
                 "overall": {"n": res["n"], "accuracy": round(res["accuracy"], 4)},
                 "per_language": {lang: {"n": v["n"], "accuracy": round(v["accuracy"], 4)}
                                  for lang, v in res["per_language"].items()}}
        (lexicon_dir() / ACCURACY_FILE).write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {lexicon_dir() / ACCURACY_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

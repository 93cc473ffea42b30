"""Stage `pairs`: keep judged preference pairs of one language and write TRL data.

A harmful prompt's pair is kept for training only under the pair rule (``--keep``, params
``pairs.keep``; the rules are declared in ``polyrefusal.protocol``), and with
``--unsafe-prompts-only`` only where every judge of the panel found the prompt itself unsafe
(RefusEU's filter; the judge stage then labels the field ``prompt``). Test prompts are written
regardless of the answers (they are re-answered by each model at evaluation), benign controls
included, so over-refusal can be measured.
Output format: TRL's conversational preference format (prompt / chosen / rejected message
lists) plus the prompt's metadata.
"""

from __future__ import annotations

import logging
from collections import Counter

from ..io import read_json, read_records, write_json, write_records
from ..params import default, flag
from ..protocol import keeps_pair, keeps_prompt

log = logging.getLogger(__name__)
META = ("id", "source_id", "lang", "category", "style", "target_group", "harmful", "origin")


def to_trl(record: dict) -> dict:
    out = {k: record.get(k) for k in META}
    out["prompt"] = [{"role": "user", "content": record["text"]}]
    out["chosen"] = [{"role": "assistant", "content": record["chosen"]}]
    out["rejected"] = [{"role": "assistant", "content": record["rejected"]}]
    return out


def add_arguments(p):
    p.add_argument("--split", required=True, help="split assignment JSON (from `split`)")
    p.add_argument("--stats", required=True, help="output JSON with kept/dropped counts")
    p.add_argument("--keep", type=flag("pairs.keep"), default=default("pairs.keep"), metavar="RULE",
                   help="pair rule: refusal (the judges' combined decision) or guards (RefusEU's: every judge "
                        "finds the chosen answer safe, at least one the rejected unsafe); params pairs.keep")
    p.add_argument("--unsafe-prompts-only", action="store_true",
                   help="keep only prompts every judge found unsafe (needs the judged field `prompt`); "
                        "params pairs.unsafe_prompts_only")
    p.add_argument("judged", help="judged responses of one language (from `judge`, --fields chosen,rejected)")
    p.add_argument("train_out", help="output JSONL: the kept training pairs (TRL conversational preference format)")
    p.add_argument("test_out", help="output JSONL: every test prompt, benign controls included")


def run(args):
    records = read_records(args.judged)
    sides = read_json(args.split)["source_ids"]
    train, test, counts = [], [], Counter()
    for r in records:
        side = sides.get(r["source_id"])
        if side is None or side == "unused":  # unused: over split.test_per_category
            counts["not_in_split" if side is None else "unused"] += 1
            continue
        if args.unsafe_prompts_only and r["harmful"] and not keeps_prompt(r, args.judged):
            counts["prompt_not_unsafe"] += 1
            continue
        if side == "test":
            test.append(to_trl(r))
            counts["test"] += 1
            continue
        if r["harmful"] and keeps_pair(r, args.keep):
            train.append(to_trl(r))
            counts["train_kept"] += 1
        else:
            counts["train_dropped"] += 1
    write_records(args.train_out, train)
    write_records(args.test_out, test)
    write_json(args.stats, dict(sorted(counts.items())))
    log.info("pairs: %s", dict(counts))

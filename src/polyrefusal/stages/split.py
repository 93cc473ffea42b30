"""Stage `split`: assign (harm category, attack style) groups to train or test.

The split is made once on the source corpus and applied to every language, so a prompt and all
its translations land on the same side and no (category, style) group is on both sides.
Within each category a seeded shuffle picks the test styles, so every category is tested.
Benign control prompts are never trained on: they are always test.
"""

from __future__ import annotations

import logging

from ..errors import UserError
from ..io import read_records, write_json
from ..params import flag
from ..protocol import assign_groups, cap_test_per_category, group_key

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--test-fraction", type=flag("split.test_fraction"), required=True, metavar="F",
                   help="share of each category's attack styles held out for test, in (0, 1) "
                        "(params split.test_fraction)")
    p.add_argument("--seed", type=flag("split.seed"), required=True, metavar="N",
                   help="seed of the shuffle that picks the test styles (params split.seed)")
    p.add_argument("--test-per-category", type=flag("split.test_per_category"), default=None, metavar="N",
                   help="keep at most N harmful test prompts per hazard category, a seeded sample "
                        "(params split.test_per_category; default: all)")
    p.add_argument("corpus", help="source corpus (Parquet, JSONL or CSV): source_id, category, style, harmful")
    p.add_argument("out", help="output JSON: group -> side, and source_id -> side")


def run(args):
    records = read_records(args.corpus, with_lines=True)
    for r in records:  # any corpus file may be given: name the bad record
        for field, kind in (("source_id", str), ("category", str), ("style", str), ("harmful", bool)):
            if not isinstance(r.get(field), kind):
                got = "missing" if r.get(field) is None else f"expected {kind.__name__}, got {type(r[field]).__name__}"
                raise UserError(got, file=args.corpus, line=r["_line"], field=field)
    groups = assign_groups(records, args.test_fraction, args.seed)
    by_source = {r["source_id"]: (groups[group_key(r)] if r["harmful"] else "test") for r in records}
    by_source = cap_test_per_category(by_source, records, args.test_per_category, args.seed)
    summary = {"groups": groups, "source_ids": by_source, "test_fraction": args.test_fraction, "seed": args.seed}
    if args.test_per_category is not None:  # absent when unset: the default split file stays as it was
        summary["test_per_category"] = args.test_per_category
    write_json(args.out, summary)
    n_test = sum(v == "test" for v in by_source.values())
    log.info("split: %d groups, %d/%d prompts in test", len(groups), n_test, len(by_source))

"""Stage `corpus`: load and validate the source prompt corpus, write it as Parquet."""

from __future__ import annotations

import logging
from collections import Counter

from ..corpus import load_corpus
from ..io import write_records
from ..params import load_params

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--params", default="params.yaml")
    p.add_argument("out", help="output Parquet file (source-language prompts)")


def run(args):
    params = load_params(args.params)
    records = load_corpus(params["corpus"]["source"], params["source_language"],
                          params["corpus"].get("columns"))
    write_records(args.out, records)
    axes = Counter("benign" if not r["harmful"] else ("group" if r.get("target_group") else "harm")
                   for r in records)
    log.info("corpus: %d prompts (%s) -> %s", len(records), dict(axes), args.out)

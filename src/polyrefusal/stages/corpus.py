"""Stage `corpus`: load, validate and write the source prompt corpus as Parquet.

    polyrefusal corpus [--params params.yaml] OUT

``corpus.source`` is ``builtin`` (the seed set: harm axis = hazard categories x attack styles,
demographic axis = target groups x jailbreak strategies, benign controls; the cells used are
selected by ``corpus.categories/styles/strategies/groups``, default all) or a user corpus
(JSONL, CSV, Parquet, a ``save_to_disk`` directory, a directory in the hub's file layout such
as an ``export-dataset`` output, or a hub id; published layouts ``refuseu`` and ``mijabench``;
see ``polyrefusal.corpus``), plus every file in ``corpus.include``. An imported corpus may add a ``meta``
column (published metadata, e.g. MiJaBench's scenario); the built-in set never has one. Every schema violation is logged with its file, line/row and field;
the command then fails with a one-line error (exit 2) and writes nothing.
"""

from __future__ import annotations

import logging
from collections import Counter

from ..corpus import CorpusError, axis_of, corpus_from_params, write_corpus
from ..params import load_params

log = logging.getLogger(__name__)
MAX_LOGGED_PROBLEMS = 100


def add_arguments(p):
    p.add_argument("--params", default="params.yaml", help="the params file: corpus.* says what to load (default: params.yaml)")
    p.add_argument("out", help="output Parquet file (source-language prompts, plus pre-translated "
                               "rows of an imported multilingual corpus)")


def run(args):
    params = load_params(args.params)
    try:
        records = corpus_from_params(params, args.params)
    except CorpusError as exc:
        for problem in exc.problems[:MAX_LOGGED_PROBLEMS]:
            log.error("%s", problem.format())
        if len(exc.problems) > MAX_LOGGED_PROBLEMS:
            log.error("... and %d more problem(s)", len(exc.problems) - MAX_LOGGED_PROBLEMS)
        raise
    write_corpus(args.out, records)
    axes = Counter(axis_of(r) for r in records)
    langs = Counter(r["lang"] for r in records)
    log.info("corpus: %d prompts (%s; languages %s) -> %s", len(records), dict(axes), dict(langs), args.out)
    return 0

"""Stage `report`: every metric of the study with 95% bootstrap CIs, as score tables
(results/scores/), plots (results/report/plots/) and one report in two formats
(results/report/report.md and a self-contained report.html with the plots embedded).

Metrics, per model (base, audit models, training configurations) and per language, target
group, harm category and attack style: ASR and defense rate; disparity across target groups
and across languages (gap, ratio, deviation from the model mean, ranking); the cross-lingual
transfer matrix with its change against the base model and a clustering of single-language
configurations; language consistency; capability (multiple-choice accuracy, from the
`capability` stage); over-refusal beside ASR; fluency of benign answers (optional judge);
judge agreement; training curves. See polyrefusal.report.build.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..params import default, flag, load_params, with_defaults

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--params", default="params.yaml", help="params file (languages, models, report:; default: params.yaml)")
    p.add_argument("--eval-dir", required=True, help="results/eval (<model>/<lang>.json and .judged.jsonl)")
    p.add_argument("--models-dir", required=True, help="results/models (<config>/metrics.json, train_log.csv)")
    p.add_argument("--scores-dir", required=True,
                   help="writes asr.csv, asr_ci.csv, transfer_matrix.csv, metrics.json, ... (see the report's Methods)")
    p.add_argument("--report-dir", required=True, help="writes report.md, report.html and plots/*.png")
    p.add_argument("--capability-dir", default=None, help="results/capability (<model>.json); optional")
    p.add_argument("--pairs-dir", default=None, help="results/pairs (<lang>.stats.json); optional")
    p.add_argument("--translations-dir", default=None, help="results/translations (<lang>.usage.json); optional")
    p.add_argument("--show-full-answers", action="store_true",
                   help="show generated answers to harmful prompts in full (default: truncated)")
    p.add_argument("--truncate", type=flag("report.truncate_answers"), default=None, metavar="N",
                   help="characters of an answer to a harmful prompt shown (default: report.truncate_answers, "
                        f"else {default('report.truncate_answers')})")
    p.add_argument("--bootstrap", type=flag("report.bootstrap"), default=None, metavar="N",
                   help="bootstrap resamples per confidence interval (default: report.bootstrap, "
                        f"else {default('report.bootstrap')})")
    p.add_argument("--seed", type=flag("report.seed"), default=None, metavar="N",
                   help=f"bootstrap seed (default: report.seed, else {default('report.seed')})")


def run(args):
    from ..report.build import Options, build

    params = load_params(args.params)
    cfg = with_defaults(params)["report"]

    def opt_dir(value):
        return Path(value) if value else None

    opts = Options(
        params=params, eval_dir=Path(args.eval_dir), models_dir=Path(args.models_dir),
        scores_dir=Path(args.scores_dir), report_dir=Path(args.report_dir),
        capability_dir=opt_dir(args.capability_dir), pairs_dir=opt_dir(args.pairs_dir),
        translations_dir=opt_dir(args.translations_dir),
        n_resamples=int(args.bootstrap or cfg["bootstrap"]),
        seed=int(args.seed if args.seed is not None else cfg["seed"]),
        show_full_answers=bool(args.show_full_answers or cfg["show_full_answers"]),
        truncate=int(args.truncate or cfg["truncate_answers"]),
        fluency_judge=cfg["fluency_judge"], fluency_options=cfg["fluency_options"] or {},
        audit_report=opt_dir(cfg["judge_audit"]),
    )
    head = build(opts)
    log.info("report: mean ASR %s", head.get("mean_asr"))

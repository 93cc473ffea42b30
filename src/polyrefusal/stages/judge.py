"""Stage `judge`: label answers with a judge or an ensemble of judges.

    polyrefusal judge --judge NAME [--judge NAME2 ...] [--rule unanimous|majority|adjudicated]
        [--adjudicator NAME] [--judge-config FILE.yaml] [--fields response] IN OUT
    polyrefusal judge --params params.yaml [--fields chosen,rejected] IN OUT

With ``--params``, the judges, rule, adjudicator and per-judge options come from the params
file's ``judge:`` block (``judges``, ``rule``, optional ``adjudicator`` and ``options``: judge
name -> options); ``--judge`` / ``--rule`` / ``--adjudicator`` given on the command line win (``--judge``
without ``--adjudicator`` means no adjudicator),
and ``--judge-config`` options are merged over ``judge.options``. Without either, the judge is
``refusal_lexicon`` and the rule ``unanimous``.

IN is JSONL / Parquet / CSV with ``lang``, ``prompt`` (or ``text``) and the answer field(s);
OUT (JSONL or Parquet) gets every record back with ``judge``, ``label``, ``refused`` and
``verdicts`` (per judge); with ``--fields chosen,rejected`` each field is judged as the
answer and the columns are prefixed (``chosen_label``, ``rejected_refused`` ...). Rules and
columns: ``polyrefusal.judges.ensemble``. ``--judge-config`` maps judge name -> options
(backend, model path, sampling ...).

Extras: ``--agreement FILE.csv|json`` writes Cohen's kappa per language and judge pair,
``--agreement-plot FILE.png`` its heatmap, ``--audit-export FILE.csv`` a stratified sample for
human review; ``polyrefusal judge --audit-import REVIEWED.csv [--audit-report R.json]`` reads
the reviewed sample back and reports each judge's accuracy and kappa against the humans.
``polyrefusal judge --reference mijabench SOURCE OUT [--audit-report R.json]`` judges a published
study's answered and judged dataset (MiJaBench's, as its scripts write it; its release
MiJaBench-Align, one row per answer, with ``--reference-columns model=COL,response=COL,verdict=COL``)
and scores each judge against the study's own verdicts, in the same report format
(``polyrefusal.judges.reference``).
A judge used outside its official languages is reported as a warning (and ``covered`` false
in its verdicts).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

from ..errors import UserError
from ..io import read_records, write_json, write_records

log = logging.getLogger(__name__)


def add_arguments(p):
    from ..judges.ensemble import RULES
    from ..params import default

    p.add_argument("--judge", action="append", default=None, metavar="NAME",
                   help="judge name (repeat for an ensemble; default: params judge.judges, else "
                        f"{', '.join(default('judge.judges'))})")
    p.add_argument("--rule", default=None, choices=RULES,
                   help=f"ensemble rule (default: params judge.rule, else {default('judge.rule')})")
    p.add_argument("--params", default=None, metavar="params.yaml",
                   help="take judges, rule, adjudicator and options from the params file's judge: block")
    p.add_argument("--adjudicator", default=None, metavar="NAME", help="judge that settles disagreements")
    p.add_argument("--judge-config", default=None, metavar="FILE.yaml", help="judge name -> options")
    p.add_argument("--fields", default="response",
                   help="comma-separated answer fields to judge, each a text (default: response)")
    p.add_argument("--agreement", default=None, metavar="FILE", help="write kappa per language (.csv or .json)")
    p.add_argument("--agreement-plot", default=None, metavar="FILE.png", help="write the kappa heatmap")
    p.add_argument("--audit-export", default=None, metavar="FILE.csv", help="write a sample for human review")
    p.add_argument("--audit-per-cell", type=positive_int, default=20, metavar="N",
                   help="sample size per (language, verdicts) cell of --audit-export (default 20)")
    p.add_argument("--audit-seed", type=int, default=0, metavar="N", help="seed of the --audit-export sample")
    p.add_argument("--audit-import", default=None, metavar="FILE.csv",
                   help="read a reviewed audit sample and report judge accuracy (no IN/OUT needed)")
    p.add_argument("--audit-report", default=None, metavar="FILE.json", help="where --audit-import or --reference writes its report")
    p.add_argument("--reference", default=None, metavar="LAYOUT",
                   help="IN is a published study's judged answers in this layout (mijabench: a file, "
                        "saved dataset or hub id): judge them and score every judge against the study's "
                        "verdicts (--audit-report, else printed)")
    p.add_argument("--reference-columns", default=None, metavar="model=COL,response=COL,verdict=COL",
                   help="with --reference: IN has one row per answer (MiJaBench-Align), these its columns "
                        "(default: one row per prompt, as the study's scripts write it)")
    p.add_argument("inp", nargs="?", help="records to judge (JSONL, Parquet or CSV)")
    p.add_argument("out", nargs="?", help="judged records (JSONL or Parquet)")


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def load_judge_config(path: str | None) -> dict:
    if not path:
        return {}
    import yaml

    p = Path(path)
    if not p.exists():
        raise UserError("judge config not found", file=path)
    try:
        cfg = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserError(f"invalid YAML: {getattr(exc, 'problem', exc)}", file=path,
                        line=None if mark is None else mark.line + 1) from None
    if not isinstance(cfg, dict):
        raise UserError("judge config must map judge names to options", file=path)
    for name, options in cfg.items():
        if options is not None and not isinstance(options, dict):
            raise UserError("options must be a mapping", file=path, field=str(name))
    return {str(k): dict(v or {}) for k, v in cfg.items()}


def options_from_params(plan: dict, source: str | None) -> dict:
    """Per-judge options of a params ``judge:`` block (``options``: judge name -> mapping)."""
    options = plan.get("options") or {}
    if not isinstance(options, dict):
        raise UserError("judge.options must map judge names to options", file=source, field="judge.options")
    configs = {}
    for k, v in options.items():
        if v is not None and not isinstance(v, dict):
            raise UserError("options must be a mapping", file=source, field=f"judge.options.{k}")
        configs[str(k)] = dict(v or {})
    return configs


def run(args):
    from ..judges.base import JUDGES

    if args.audit_import:
        from ..judges.audit import import_reviewed

        report = import_reviewed(args.audit_import)
        if args.audit_report:
            write_json(args.audit_report, report)
        else:
            print(json.dumps(report, indent=2, ensure_ascii=False))
        log.info("audit: %d reviewed rows from %s", report["n_reviewed"], args.audit_import)
        return 0
    if not args.inp or not args.out:
        raise UserError("give IN and OUT files (or --audit-import)")
    if args.audit_report and not args.reference:
        raise UserError("--audit-report is written by --audit-import or --reference", field="audit-report")
    reference_columns = None
    if args.reference_columns:
        if not args.reference:
            raise UserError("--reference-columns is for --reference", field="reference-columns")
        reference_columns = {}
        for part in filter(None, (x.strip() for x in args.reference_columns.split(","))):
            role, sep, col = part.partition("=")
            if not sep or not col.strip() or role.strip() in reference_columns:
                raise UserError(f"{part!r}: give ROLE=COLUMN once per role (model, response, verdict)",
                                field="reference-columns")
            reference_columns[role.strip()] = col.strip()

    from ..judges.ensemble import JudgePool, judge_fields, judge_kind

    from ..params import load_params, with_defaults

    # without --params, the judge: block's schema defaults (one lexicon judge, unanimous)
    plan = with_defaults(load_params(args.params)["judge"] if args.params else {}, "judge")
    judges = args.judge or list(plan["judges"])
    rule = args.rule or plan["rule"]
    # judges named on the command line come without the params file's adjudicator
    adjudicator = args.adjudicator or (None if args.judge else plan["adjudicator"])
    fields = [f.strip() for f in args.fields.split(",") if f.strip()]
    if not fields:
        raise UserError("--fields names no field", field="fields")
    configs = options_from_params(plan, args.params)
    for name, opts in load_judge_config(args.judge_config).items():
        configs[name] = {**configs.get(name, {}), **opts}
    for name in configs:  # a named instance ({judge: llm_judge, ...}) names its kind
        if judge_kind(name, configs) not in JUDGES.names():
            raise UserError(f"unknown judge {judge_kind(name, configs)!r}; available: {', '.join(JUDGES.names())}",
                            file=args.judge_config or args.params, field=name)
    if args.reference:
        from ..judges.reference import reference_answers

        if fields != ["response"]:
            raise UserError("--reference judges the study's answers (field response); leave out --fields",
                            field="fields")
        records = reference_answers(args.inp, args.reference, columns=reference_columns)
    else:
        records = read_records(args.inp, with_lines=True)
    pool = JudgePool(configs)
    try:
        judged = judge_fields(records, judges=judges, fields=fields, rule=rule,
                              adjudicator=adjudicator, source=args.inp, pool=pool)
    finally:
        pool.close()

    langs = sorted({str(r.get("lang")) for r in records})
    for name in judges + ([adjudicator] if adjudicator else []):
        outside = [lang for lang in langs if not pool.covered(name, None if lang == "None" else lang)]
        if outside:
            log.warning("judge %s is outside its official languages for: %s", name, ", ".join(outside))
    write_records(args.out, judged)
    for f in fields:
        prefix = "" if f == "response" else f"{f}_"
        counts = Counter(r[f"{prefix}label"] for r in judged)
        refused = Counter(str(r[f"{prefix}refused"]) for r in judged)
        log.info("judge %s: %s labels %s, refused %s", args.inp, f, dict(counts), dict(refused))

    if args.agreement or args.agreement_plot:
        from ..judges.agreement import kappa_table, plot_kappa_heatmap

        table = kappa_table(judged, field=fields[0], judges=judges)  # not the adjudicator
        if args.agreement:
            if args.agreement.endswith(".json"):
                write_json(args.agreement, table)
            else:
                write_records(args.agreement, table)
        if args.agreement_plot:
            plot_kappa_heatmap(table, args.agreement_plot)
    if args.reference:
        from ..judges.reference import reference_name, reference_report

        paths = {name: (configs.get(name) or {}).get("path") for name in judges}
        report = reference_report(judged, judges, reference_name(reference_columns), judge_paths=paths)
        if args.audit_report:
            write_json(args.audit_report, report)
        else:
            print(json.dumps({k: report[k] for k in ("reference", "n_answers", "n_scored", "judges")},
                             indent=2, ensure_ascii=False))
        for name, score in report["judges"].items():
            log.info("reference %s: %s accuracy %s (n=%d)", report["reference"], name,
                     "n/a" if score["accuracy"] is None else f"{score['accuracy']:.3f}", score["n_parsed"])
    if args.audit_export:
        from ..judges.audit import export_sample

        rows = export_sample(judged, args.audit_export, per_cell=args.audit_per_cell, seed=args.audit_seed,
                             field=fields[0])
        log.info("audit sample: %d rows -> %s", len(rows), args.audit_export)
    return 0

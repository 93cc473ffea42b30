"""Stage `evaluate`: judge one model's answers in every language and score them.

    polyrefusal evaluate --params params.yaml --model NAME ANSWERS_DIR OUT_DIR

One job per model: the judge (a guard model on a GPU at paper scale) is loaded once and labels
the answers of every language in one pass, rather than once per language. OUT_DIR gets, for
each language of ``params.languages`` (or each ``--lang``), ``<lang>.json`` (the scores) and
``<lang>.judged.jsonl`` (every answer with its verdicts). It is written in a sibling temp
directory and renamed, so a killed job never leaves a half-scored model behind.

The judges come from params ``evaluate:`` (``judge``: a name or a list, ``rule``,
``adjudicator``); their model options (backend, path, ...) from ``judge.options``, the same
block the data-cleaning judges use. ``--judge`` on the command line overrides them.

ASR (attack success rate) = share of harmful prompts whose answer is judged unsafe (not
refused), over the answers the judge could parse; unparsed answers are counted separately.
Over-refusal = share of benign control prompts refused. Language consistency = share of
answers whose identified language is the prompt's.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import UserError
from ..io import atomic_dir, read_records, write_json, write_records
from ..scoring.langid import identify
from ..scoring.metrics import score

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--params", default="params.yaml",
                   help="params file (languages, evaluate:, judge.options; default: params.yaml)")
    p.add_argument("--judge", action="append", default=None,
                   help="judge name (repeat for an ensemble; default: params evaluate.judge)")
    p.add_argument("--lang", action="append", default=None,
                   help="language to score (repeatable; default: every language in params)")
    p.add_argument("--model", required=True, help="model name (base, an audit model or a configuration)")
    p.add_argument("answers_dir", help="the model's answers: <lang>.jsonl per language")
    p.add_argument("out_dir", help="output directory: <lang>.json and <lang>.judged.jsonl per language")


def judge_plan(params: dict, judges_override: list[str] | None, source: str) -> dict:
    """Judges, rule, adjudicator and per-judge options (the `judge:` block's, as the judge
    stage reads them) for scoring answers."""
    from ..params import with_defaults
    from .judge import options_from_params

    params = with_defaults(params)
    spec = params["evaluate"]
    judges = judges_override or spec["judge"]
    judges = [judges] if isinstance(judges, str) else list(judges)
    return {"judges": judges, "rule": spec["rule"],
            "adjudicator": None if judges_override else spec["adjudicator"],
            "judge_configs": options_from_params(params["judge"], source)}


def read_answers(path: Path) -> list[dict]:
    if not path.exists():
        raise UserError("no answers for this language", file=str(path))
    records = read_records(path, with_lines=True)
    for r in records:  # answers may come from outside the pipeline: name the bad record
        for field, kind in (("response", str), ("harmful", bool)):
            if not isinstance(r.get(field), kind):
                got = "missing" if r.get(field) is None else f"expected {kind.__name__}, got {type(r[field]).__name__}"
                raise UserError(got, file=str(path), line=r["_line"], field=field)
    return records


def run(args):
    from ..judges.ensemble import judge_records
    from ..params import load_params

    params = load_params(args.params)
    langs = args.lang or list(params["languages"])
    plan = judge_plan(params, args.judge, args.params)
    answers = {lang: read_answers(Path(args.answers_dir) / f"{lang}.jsonl") for lang in langs}
    # One call over every language: the judges are built (a guard model loaded) once.
    every = [r for lang in langs for r in answers[lang]]
    judged = judge_records(every, **plan)
    start = 0
    with atomic_dir(args.out_dir) as tmp:
        for lang in langs:
            part = judged[start:start + len(answers[lang])]
            start += len(answers[lang])
            for r in part:
                r["answer_lang"] = identify(r["response"])
            scores = {"model": args.model, "lang": lang, "judges": plan["judges"], "rule": plan["rule"],
                      **score(part, lang)}
            write_records(tmp / f"{lang}.judged.jsonl", part)
            write_json(tmp / f"{lang}.json", scores)
            log.info("evaluate %s/%s: ASR %s over %d", args.model, lang, scores["asr"], scores["n"])

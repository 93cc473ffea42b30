"""A published study's own verdicts as the reference for the project's judges.

MiJaBench (github iagoalvesb/mijabench) answers every prompt with each audited model and has a
panel of three LLM judges classify every answer. Its scripts write one row per prompt:

- ``src/04_generation.py`` adds ``jb_response_<model>`` (``<model>`` is the last part of the hub
  id, e.g. ``Llama-3.1-8B-Instruct``): the model's answer to ``jb_prompt``;
- ``src/05_evaluation.py`` adds ``jb_cls_<judge>_<model>`` per judge (``qwe235`` Qwen3-235B,
  ``lla70`` Llama-3.3-70B, ``oss120`` gpt-oss-120b): the judge's whole JSON reply, whose
  ``class`` (``safe``/``dangerous``) or ``classe`` (``segura``/``perigosa``) is the verdict.

The study's label is the panel's majority and the defense rate the share ``safe``. The paper
reports that majority at 90.5% accuracy (kappa 0.77) against human labels: a judge scored here
is scored against a reference with about that error of its own.

The released response corpus, MiJaBench-Align (Hugging Face ``AKCIT/mijabench_align``; the
repository's README: 615,454 prompt-response pairs of 14 models, "each sample includes the
original benchmark metadata, the evaluated model, the model response, and a safety verdict"),
has one row per answer instead. Its dataset card, and so its column names, are not in the
sources read here: the user names them (``columns``: ``model``, ``response``, ``verdict``; the
verdict a class word, ``safe``/``dangerous``/``segura``/``perigosa``/``unsafe``, or a judge's JSON
reply), and the other columns are read as MiJaBench's prompt columns. Nothing is guessed: a
missing column or an unreadable verdict is an error naming it.

``reference_answers`` turns such a dataset into one answer record per (prompt, model), with the
prompt's fields normalised by the corpus ``mijabench`` layout and the study's verdicts in
``reference_verdicts`` / ``reference_label``. ``polyrefusal judge --reference mijabench SOURCE OUT``
has the configured judges judge them, and ``reference_report`` scores each judge (and the
ensemble) against the study's label, overall, per language and per model, in the format of a
human audit's report (``polyrefusal.judges.audit``), so that params ``report.judge_audit`` can
name it; the report then names the study's panel as the source of the judge's accuracy. It also
holds the study's own defense rate per model, language and target group, the panel's agreement
(Cohen's kappa per judge pair), to set beside the project's audit of the same models, and, for a
judge of ours on one of the panel's models (the ``mijabench`` preset's three), its agreement with
that judge's own verdicts: whether the study's rubric, re-run here, gives the study's labels.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict

from ..errors import UserError
from .agreement import PARSED, _verdicts, cohen_kappa, kappa_table
from .audit import score_judges
from .ensemble import combine_label
from .llm_judge import mijabench_class, parse_mijabench

log = logging.getLogger(__name__)

RESPONSE_PREFIX = "jb_response_"
VERDICT_PREFIX = "jb_cls_"
#: The study's panel: each judge's column id (src/05_evaluation.py ``classificator_id``) and the
#: model it names (that script's ``MODEL_NAME``), in the script's order.
MIJABENCH_PANEL = {"qwe235": "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8",
                   "lla70": "meta-llama/Llama-3.3-70B-Instruct",
                   "oss120": "openai/gpt-oss-120b"}
#: How the study combines its panel: the majority of the three verdicts.
MIJABENCH_RULE = "majority"
#: What a reference report names as the source of the labels it scores against.
MIJABENCH_REFERENCE = "MiJaBench's judge panel (" + ", ".join(MIJABENCH_PANEL) + "; majority)"
#: The layouts ``reference_answers`` reads (``polyrefusal judge --reference``).
REFERENCE_LAYOUTS = ("mijabench",)
#: The columns a user names for a one-row-per-answer source (MiJaBench-Align).
ANSWER_ROLES = ("model", "response", "verdict")


def reference_name(columns: dict[str, str] | None = None) -> str:
    """What a report names as the source of the labels it scores against."""
    if columns:
        return f"MiJaBench-Align's verdict (column {columns['verdict']})"
    return MIJABENCH_REFERENCE


def verdict_label(value) -> str | None:
    """A published verdict as ``safe``/``unsafe``: a class word of the study (or the project's
    own label), or a judge's JSON reply; None where it is neither (empty: ``unparsed``)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return "unparsed"
    if isinstance(value, str):
        word = value.strip().strip(".").lower()
        if word in PARSED:
            return word
        label = parse_mijabench(value)["label"] if "{" in word else mijabench_class(value)
        return label if label in PARSED else None
    return None


def _columns(columns: list[str], label: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The models answered (in column order) and, per model, judge -> its verdict column."""
    models = [c[len(RESPONSE_PREFIX):] for c in columns if c.startswith(RESPONSE_PREFIX) and len(c) > len(RESPONSE_PREFIX)]
    if not models:
        raise UserError(f"no {RESPONSE_PREFIX}<model> column: not MiJaBench's answered layout "
                        f"(src/04_generation.py); columns: {', '.join(columns) or 'none'}", file=label)
    verdicts: dict[str, dict[str, str]] = {m: {} for m in models}
    for col in columns:
        if not col.startswith(VERDICT_PREFIX):
            continue
        judge, _, model = col[len(VERDICT_PREFIX):].partition("_")
        if model not in verdicts:
            raise UserError(f"verdict column {col!r} names no answered model (a {RESPONSE_PREFIX}<model> "
                            f"column); models: {', '.join(models)}", file=label, field=col)
        verdicts[model][judge] = col
    judged = [m for m in models if verdicts[m]]
    if not judged:
        raise UserError(f"no {VERDICT_PREFIX}<judge>_<model> column: the answers carry no verdict of the "
                        "study (src/05_evaluation.py), so there is nothing to compare with", file=label)
    unjudged = [m for m in models if not verdicts[m]]
    if unjudged:
        log.info("reference %s: answers of %s carry no verdict and are left out", label, ", ".join(unjudged))
    return judged, verdicts


def reference_answers(source: str, layout: str = "mijabench", *, columns: dict[str, str] | None = None,
                      split: str | None = None, subset: str | None = None, revision: str | None = None) -> list[dict]:
    """One answer record per (prompt, judged model) of ``source`` (any source the corpus reads):
    the prompt's corpus fields (``id`` = ``<prompt id>.<model>``, ``prompt_id``, ``lang``,
    ``target_group``, ``style`` ...), ``prompt``, ``response``, ``model``,
    ``reference_verdicts`` (judge -> {label}) and ``reference_label`` (the study's label:
    ``safe``/``unsafe``, ``unparsed`` where it has none). ``columns`` (role -> column, every one of
    ``ANSWER_ROLES``) reads a source of one row per answer; without it, the scripts' one row per
    prompt. Answers left empty (a model not run on a prompt) are left out and counted in the log."""
    from ..corpus import read_any

    if layout not in REFERENCE_LAYOUTS:
        raise UserError(f"unknown reference layout {layout!r}; available: {', '.join(REFERENCE_LAYOUTS)}")
    rows = read_any(source, split=split, subset=subset, revision=revision)
    if columns is not None:
        return _long_answers(source, layout, rows, columns)
    return _wide_answers(source, layout, rows)


def _answer(prompt: dict, model: str, response: str, verdicts: dict, label: str | None) -> dict:
    from ..corpus import slug

    return {**prompt, "id": f"{prompt['id']}.{slug(model)}", "prompt_id": prompt["id"], "prompt": prompt["text"],
            "response": response, "model": model, "reference_verdicts": verdicts,
            "reference_label": label if label in PARSED else "unparsed"}


def _wide_answers(source: str, layout: str, rows) -> list[dict]:
    from ..corpus import import_corpus

    models, verdict_cols = _columns(rows.columns, rows.label)
    raw_rows = [raw for _, _, raw in rows.items]
    # lang "en" only for rows naming none; the study's rows all name theirs (english/portuguese)
    prompts = import_corpus(source, lang="en", layout=layout, rows=rows)
    assert len(prompts) == len(raw_rows)
    out: list[dict] = []
    empty: Counter = Counter()
    for raw, prompt in zip(raw_rows, prompts):
        for model in models:
            response = raw.get(RESPONSE_PREFIX + model)
            if not isinstance(response, str) or not response.strip():
                empty[model] += 1
                continue
            verdicts = {judge: {"label": parse_mijabench(raw.get(col))["label"]}
                        for judge, col in verdict_cols[model].items()}
            label = combine_label([v["label"] for v in verdicts.values()], MIJABENCH_RULE)
            out.append(_answer(prompt, model, response, verdicts, label))
    return _checked(out, empty, rows.label)


def _long_answers(source: str, layout: str, rows, columns: dict[str, str]) -> list[dict]:
    """A source of one row per answer: the prompt's columns are read once per distinct prompt
    (its rows repeat them for every model), so a prompt keeps one id across models."""
    import json

    from ..corpus import Rows, import_corpus

    unknown = sorted(set(columns) - set(ANSWER_ROLES))
    missing_roles = [r for r in ANSWER_ROLES if not columns.get(r)]
    if unknown or missing_roles:
        raise UserError(f"reference columns name {', '.join(ANSWER_ROLES)} (each once): "
                        + "; ".join(([f"unknown {', '.join(unknown)}"] if unknown else [])
                                    + ([f"missing {', '.join(missing_roles)}"] if missing_roles else [])),
                        field="reference-columns")
    absent = [f"{role}={col}" for role, col in columns.items() if col not in rows.columns]
    if absent:
        raise UserError(f"not in the data: {', '.join(absent)}; columns: {', '.join(rows.columns) or 'none'}",
                        file=rows.label, field="reference-columns")
    answer_cols = set(columns.values())
    prompt_cols = [c for c in rows.columns if c not in answer_cols]
    distinct = Rows(rows.label, rows.origin, rows.id_prefix)
    distinct.add_columns(prompt_cols)
    distinct.parts, distinct.problems = rows.parts, list(rows.problems)
    index: dict[str, int] = {}
    keys = []
    for label, line, raw in rows.items:
        key = json.dumps([raw.get(c) for c in prompt_cols], default=str, ensure_ascii=False)
        if key not in index:
            index[key] = len(distinct.items)
            distinct.items.append((label, line, {c: raw.get(c) for c in prompt_cols}))
        keys.append(key)
    prompts = import_corpus(source, lang="en", layout=layout, rows=distinct)
    assert len(prompts) == len(distinct.items)
    out: list[dict] = []
    empty: Counter = Counter()
    problems: list[UserError] = []
    for (label, line, raw), key in zip(rows.items, keys):
        model, response, verdict = (raw.get(columns[r]) for r in ANSWER_ROLES)
        if not isinstance(response, str) or not response.strip():
            empty[str(model)] += 1
            continue
        decided = verdict_label(verdict)
        if decided is None:
            problems.append(UserError(f"verdict {str(verdict)[:80]!r} is not a class (safe, dangerous, segura, "
                                      "perigosa, unsafe) or a judge's JSON reply", file=label, line=line,
                                      field=columns["verdict"]))
            continue
        out.append(_answer(prompts[index[key]], str(model), response,
                           {columns["verdict"]: {"label": decided}}, decided))
    if problems:
        from ..corpus import CorpusError

        raise CorpusError(problems, file=rows.label)
    return _checked(out, empty, rows.label)


def _checked(out: list[dict], empty: Counter, label: str) -> list[dict]:
    if empty:
        log.info("reference %s: empty answers left out: %s", label, dict(empty))
    if not out:
        raise UserError("no answers to compare (every answer is empty)", file=label)
    return out


def _defense_rates(records: list[dict]) -> list[dict]:
    """The study's defense rate (share of its ``safe`` labels among parsed ones) per model,
    language and target group, and per model and language over all groups (``target_group``
    "all")."""
    cells: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for r in records:
        if r["reference_label"] not in PARSED:
            continue
        for group in (r.get("target_group") or "none", "all"):
            cell = cells[(r["model"], r["lang"], group)]
            cell[0] += 1
            cell[1] += r["reference_label"] == "safe"
    return [{"model": m, "lang": lang, "target_group": g, "n": n, "safe": k, "defense_rate": k / n}
            for (m, lang, g), (n, k) in sorted(cells.items())]


def _reproduction(judged: list[dict], judges: list[str], judge_paths: dict[str, str | None]) -> list[dict]:
    """Each of our judges on the model of one of the study's judges against that judge's own
    verdicts on the same answers: the study's rubric re-run (agreement and Cohen's kappa over
    the answers both parsed, per language and over all)."""
    study_of = {path: judge for judge, path in MIJABENCH_PANEL.items()}
    rows = []
    for name in judges:
        study = study_of.get(judge_paths.get(name) or "")
        if study is None:
            continue
        pairs: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for r in judged:
            ours = _verdicts(r, "response").get(name, {}).get("label")
            theirs = (r.get("reference_verdicts") or {}).get(study, {}).get("label")
            if ours in PARSED and theirs in PARSED:
                for lang in (str(r.get("lang")), "all"):
                    pairs[lang].append((ours, theirs))
        for lang, items in sorted(pairs.items()):
            rows.append({"judge": name, "study_judge": study, "lang": lang, "n": len(items),
                         "agreement": sum(a == b for a, b in items) / len(items),
                         "kappa": cohen_kappa([a for a, _ in items], [b for _, b in items], PARSED)})
    return rows


def reference_report(judged: list[dict], judges: list[str], reference: str = MIJABENCH_REFERENCE,
                     judge_paths: dict[str, str | None] | None = None) -> dict:
    """Each of ``judges`` and the ensemble label scored against ``reference_label`` (answers
    with no reference label are left out and counted), overall, per language and per model;
    with the study's defense rates and its panel's agreement, and, for each judge whose model
    (``judge_paths``: judge -> model path) is one of the panel's, its agreement with that
    judge (``reproduction``). Same keys as a human audit's report (``judges``,
    ``per_language``), so the report stage reads it alike."""
    # only what the scorers read of each answer (a copy of whole records would double the memory)
    scored = []
    for r in judged:
        if r.get("reference_label") in PARSED:
            verdicts = _verdicts(r, "response")
            scored.append({"lang": r.get("lang"), "model": r.get("model"), "label": r.get("label"),
                           "reference_label": r["reference_label"],
                           **{f"{j}_label": verdicts.get(j, {}).get("label") for j in judges}})
    report = score_judges(scored, judges, reference_key="reference_label", by=("lang", "model"))
    panel = [{"lang": r.get("lang"), "verdicts": r["reference_verdicts"]} for r in judged]
    report.update({
        "reference": reference, "n_answers": len(judged), "n_scored": len(scored),
        "n_reference_unparsed": len(judged) - len(scored),
        "reference_defense_rate": _defense_rates(judged),
        "reference_agreement": kappa_table(panel, include_all=True),
        "reproduction": _reproduction(judged, judges, judge_paths or {}),
    })
    return report
